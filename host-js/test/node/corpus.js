// The conformance corpus (tests/conformance/ at the repository root) and its
// comparison rules, as written down in tests/conformance/README.md and applied by
// the native runner (policy-core/tests/conformance.rs). Kept free of any engine
// call so it reads as the executable form of those rules.

import { readFileSync, readdirSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const CORPUS_ROOT = fileURLToPath(new URL('../../../tests/conformance/', import.meta.url));

/** The fewest cases the corpus may hold (as the native runner requires). */
export const MIN_CASES = 200;

const CASE_KEYS = ['name', 'spec', 'note', 'policy', 'policy_text', 'request', 'requests', 'test_tag', 'expect', 'expect_load'];
const DECISION_REQUIRED = ['allowed', 'would_deny', 'reason', 'rule', 'status', 'protected_tags'];
const DECISION_OPTIONAL = ['code', 'message_contains', 'detail'];
const TAG_REQUIRED = ['protected', 'rule', 'because', 'matches'];
const TAG_OPTIONAL = ['exception'];
const LOAD_KEYS = ['valid', 'errors', 'lints', 'lint_details'];
const LOCATED_KEYS = ['code', 'path', 'offset', 'rule'];

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const has = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

function jsonFiles(dir) {
  return readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => join(dir, f));
}

function onlyKeys(object, allowed, what) {
  const bad = Object.keys(object).find((k) => !allowed.includes(k));
  if (bad !== undefined) throw new Error(`unknown key \`${bad}\` in ${what}`);
}

function required(object, keys, what) {
  const missing = keys.find((k) => !has(object, k));
  if (missing !== undefined) throw new Error(`${what} lacks \`${missing}\``);
}

function checkDecisionExpect(expect) {
  if (!isObject(expect)) throw new Error('`expect` is an object');
  onlyKeys(expect, [...DECISION_REQUIRED, ...DECISION_OPTIONAL], '`expect`');
  required(expect, DECISION_REQUIRED, '`expect`');
}

/**
 * Every case of the corpus: `{file, name, spec, policyName, policyText, kind, ...}`
 * where kind is `decisions` (pairs of request and expect), `test_tag` or `load`.
 * Throws with every problem of the corpus itself.
 */
export function loadCorpus(root = CORPUS_ROOT) {
  const problems = [];
  const policies = new Map();
  for (const path of jsonFiles(join(root, 'policies'))) {
    const stem = path.split('/').pop().replace(/\.json$/, '');
    try {
      policies.set(stem, JSON.parse(readFileSync(path, 'utf8')));
    } catch (err) {
      problems.push(`${path}: ${err.message}`);
    }
  }
  const cases = [];
  for (const path of jsonFiles(join(root, 'cases'))) {
    const file = `cases/${path.split('/').pop()}`;
    let top;
    try {
      top = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      problems.push(`${file}: ${err.message}`);
      continue;
    }
    if (!isObject(top) || Object.keys(top).length !== 1 || !Array.isArray(top.cases)) {
      problems.push(`${file}: expected {"cases": [...]}`);
      continue;
    }
    top.cases.forEach((raw, index) => {
      try {
        cases.push(parseCase(raw, file, policies));
      } catch (err) {
        problems.push(`${file} case #${index}: ${err.message}`);
      }
    });
  }
  if (problems.length > 0) throw new Error(`the corpus itself is broken:\n  ${problems.join('\n  ')}`);
  return cases;
}

function parseCase(raw, file, policies) {
  if (!isObject(raw)) throw new Error('a case is an object');
  onlyKeys(raw, CASE_KEYS, 'a case');
  const name = raw.name;
  if (typeof name !== 'string' || name === '') throw new Error('a case needs a non-empty string `name`');
  const at = (msg) => new Error(`\`${name}\`: ${msg}`);
  if (typeof raw.spec !== 'string' || !raw.spec.startsWith('docs/policy.md#')) throw at('`spec` must name a section of docs/policy.md, like "docs/policy.md#selectors" (the Rust runner checks the section exists)');
  let policyName = null;
  let policyText;
  if (typeof raw.policy === 'string' && !has(raw, 'policy_text')) {
    if (!policies.has(raw.policy)) throw at(`no policy file policies/${raw.policy}.json`);
    policyName = raw.policy;
    policyText = JSON.stringify(policies.get(raw.policy));
  } else if (isObject(raw.policy) && !has(raw, 'policy_text')) {
    policyText = JSON.stringify(raw.policy);
  } else if (!has(raw, 'policy') && typeof raw.policy_text === 'string') {
    policyText = raw.policy_text;
  } else {
    throw at('exactly one of `policy` (a stem or an object) and `policy_text` (a string)');
  }
  const kinds = ['request', 'requests', 'test_tag', 'expect_load'].filter((k) => has(raw, k));
  if (kinds.length !== 1) throw at('exactly one of `request`, `requests`, `test_tag`, `expect_load`');
  const base = { file, name, spec: raw.spec, policyName, policyText };
  if (has(raw, 'request')) {
    if (!has(raw, 'expect')) throw at('`request` needs `expect`');
    checkDecisionExpect(raw.expect);
    return { ...base, kind: 'decisions', pairs: [[raw.request, raw.expect]] };
  }
  if (has(raw, 'requests')) {
    if (!Array.isArray(raw.requests) || raw.requests.length === 0) throw at('`requests` is a non-empty array');
    if (!Array.isArray(raw.expect) || raw.expect.length !== raw.requests.length) {
      throw at('`requests` needs an `expect` array of the same length');
    }
    raw.expect.forEach(checkDecisionExpect);
    return { ...base, kind: 'decisions', pairs: raw.requests.map((r, i) => [r, raw.expect[i]]) };
  }
  if (has(raw, 'test_tag')) {
    const test = raw.test_tag;
    if (!isObject(test)) throw at('`test_tag` is an object');
    onlyKeys(test, ['image', 'tag'], '`test_tag`');
    if (typeof test.image !== 'string' || typeof test.tag !== 'string') throw at('`test_tag.image` and `.tag` are strings');
    if (!isObject(raw.expect)) throw at('`test_tag` needs an `expect` object');
    onlyKeys(raw.expect, [...TAG_REQUIRED, ...TAG_OPTIONAL], '`expect`');
    required(raw.expect, TAG_REQUIRED, '`expect`');
    return { ...base, kind: 'test_tag', image: test.image, tag: test.tag, expect: raw.expect };
  }
  if (has(raw, 'expect')) throw at('`expect_load` cases have no `expect`');
  const load = raw.expect_load;
  if (!isObject(load)) throw at('`expect_load` is an object');
  onlyKeys(load, LOAD_KEYS, '`expect_load`');
  if (typeof load.valid !== 'boolean') throw at('`expect_load.valid` is a boolean');
  for (const key of ['errors', 'lint_details']) {
    for (const entry of load[key] ?? []) {
      if (!isObject(entry)) throw at(`\`${key}\` entries are objects`);
      onlyKeys(entry, LOCATED_KEYS, key);
      required(entry, ['code'], key);
    }
  }
  return { ...base, kind: 'load', expect: load };
}

const show = (v) => JSON.stringify(v);
const same = (a, b) => isDeepStrictEqual(a ?? null, b ?? null);

/** Every mismatch between a decision (docs/policy.md, "Decisions") and its expectation, plus the invariants. */
export function compareDecision(expect, actual) {
  const out = [];
  for (const key of ['allowed', 'would_deny', 'reason', 'message', 'rule', 'protected_tags', 'status', 'error']) {
    if (!has(actual, key)) out.push(`decision lacks \`${key}\``);
  }
  for (const key of DECISION_REQUIRED) {
    if (!same(expect[key], actual[key])) out.push(`${key}: expected ${show(expect[key])}, got ${show(actual[key])}`);
  }
  const error = actual.error ?? null;
  const first = error?.errors?.[0];
  if ((actual.allowed === true) !== (error === null)) out.push(`\`error\` must be null exactly when allowed; got ${show(error)}`);
  if (error !== null) {
    if (!Array.isArray(error.errors) || error.errors.length !== 1) out.push(`\`error.errors\` must hold one error; got ${show(error)}`);
    if (first?.message !== actual.message) out.push('`error.errors[0].message` differs from `message`');
    if (!same(first?.detail?.reason, actual.reason) || !same(first?.detail?.rule, actual.rule)) {
      out.push('`error.errors[0].detail` reason/rule differ from the decision');
    }
  }
  if (actual.allowed === true && actual.would_deny === false && actual.reason !== 'allowed') {
    out.push('an allowed decision without would_deny has reason `allowed`');
  }
  if (has(expect, 'code')) {
    const got = error === null ? null : first?.code;
    if (!same(expect.code, got)) out.push(`code: expected ${show(expect.code)}, got ${show(got)}`);
  }
  for (const part of expect.message_contains ?? []) {
    if (!String(actual.message).includes(part)) out.push(`message ${show(actual.message)} does not contain ${show(part)}`);
  }
  for (const [key, want] of Object.entries(expect.detail ?? {})) {
    const got = first?.detail?.[key];
    if (!same(want, got)) out.push(`detail.${key}: expected ${show(want)}, got ${show(got)}`);
  }
  return out;
}

/** Every mismatch between a `test_tag` answer and its expectation. */
export function compareTagTest(expect, actual) {
  const out = [];
  for (const key of ['protected', 'rule', 'because']) {
    if (!same(expect[key], actual[key])) out.push(`${key}: expected ${show(expect[key])}, got ${show(actual[key])}`);
  }
  const want = expect.matches ?? [];
  const got = actual.matches ?? [];
  // A string names the rule; an object also fixes the matched span.
  const ok = want.length === got.length &&
    want.every((w, i) => (typeof w === 'string' ? w === got[i].rule : same(w, got[i])));
  if (!ok) out.push(`matches: expected ${show(want)}, got ${show(got)}`);
  if (has(expect, 'exception') && !same(expect.exception, actual.exception)) {
    out.push(`exception: expected ${show(expect.exception)}, got ${show(actual.exception)}`);
  }
  return out;
}

const fits = (want, got) => LOCATED_KEYS.every((k) => !has(want, k) || same(want[k], got[k]));

function locatedMatch(want, got) {
  const used = got.map(() => false);
  const assign = (i) => {
    if (i === want.length) return true;
    for (let j = 0; j < got.length; j += 1) {
      if (!used[j] && fits(want[i], got[j])) {
        used[j] = true;
        if (assign(i + 1)) return true;
        used[j] = false;
      }
    }
    return false;
  };
  return want.length === got.length && assign(0);
}

/** Every mismatch of a load outcome: `errors` is null for a policy that loaded. */
export function compareLoad(expect, errors, lints) {
  const out = [];
  const valid = errors === null;
  if (expect.valid !== valid) {
    return [`valid: expected ${expect.valid}, got ${valid}; errors ${show(errors ?? [])}`];
  }
  const wantErrors = expect.errors ?? [];
  if (!locatedMatch(wantErrors, errors ?? [])) out.push(`errors: expected ${show(wantErrors)}, got ${show(errors ?? [])}`);
  const wantLints = [...new Set(expect.lints ?? [])].sort();
  const gotLints = [...new Set(lints.map((l) => l.code))].sort();
  if (!same(wantLints, gotLints)) out.push(`lints: expected ${show(wantLints)}, got ${show(gotLints)} (${show(lints)})`);
  for (const want of expect.lint_details ?? []) {
    if (!lints.some((l) => fits(want, l))) out.push(`no lint fits ${show(want)}; lints ${show(lints)}`);
  }
  return out;
}
