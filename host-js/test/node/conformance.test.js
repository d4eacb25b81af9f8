// The whole conformance corpus through the JS package: every expectation the native
// runner checks holds here too.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadCorpus, compareDecision, compareTagTest, compareLoad, MIN_CASES } from './corpus.js';
import { outcome } from './run.js';

/** Every mismatch of one case, run through the package. */
function mismatches(c) {
  const got = outcome(c);
  if (c.kind === 'load') return compareLoad(c.expect, got.valid ? null : got.errors, got.lints);
  if (got.refused) return [`policy does not load: ${JSON.stringify(got.refused)}`];
  if (c.kind === 'test_tag') return compareTagTest(c.expect, got);
  return c.pairs.flatMap(([, expect], i) =>
    compareDecision(expect, got[i]).map((m) =>
      `${c.pairs.length > 1 ? `request #${i}: ` : ''}${m}\n      decision: ${JSON.stringify(got[i])}`));
}

test('the conformance corpus passes through the JS package', () => {
  const cases = loadCorpus();
  const names = new Set();
  const duplicates = cases.filter((c) => names.has(c.name) || !names.add(c.name)).map((c) => c.name);
  assert.deepEqual(duplicates, [], 'duplicate case names');
  assert.ok(cases.length >= MIN_CASES, `the corpus holds ${cases.length} cases; it must hold at least ${MIN_CASES}`);
  const failures = [];
  for (const c of cases) {
    const found = mismatches(c);
    if (found.length > 0) {
      failures.push(`${c.name} (${c.file}, ${c.spec}, ${c.policyName ? `policy ${c.policyName}` : 'inline policy'}):\n    ${found.join('\n    ')}`);
    }
  }
  assert.equal(failures.length, 0, `${failures.length} of ${cases.length} conformance cases failed:\n\n${failures.join('\n\n')}`);
});

test('the comparison rules reject mismatches', () => {
  const actual = {
    allowed: false, would_deny: false, reason: 'tag_immutable', message: 'tag v1 of a is immutable',
    rule: 'semver', protected_tags: [], status: 403,
    error: { errors: [{ code: 'DENIED', message: 'tag v1 of a is immutable',
      detail: { reason: 'tag_immutable', rule: 'semver', pattern: null, tag: 'v1', current_digest: null } }] },
  };
  const good = { allowed: false, would_deny: false, reason: 'tag_immutable', rule: 'semver', status: 403,
    protected_tags: [], code: 'DENIED', message_contains: ['v1'], detail: { tag: 'v1' } };
  assert.deepEqual(compareDecision(good, actual), []);
  for (const [key, value] of [['allowed', true], ['rule', null], ['status', 400], ['code', 'TAG_INVALID'],
    ['message_contains', ['v2']], ['detail', { tag: 'v2' }]]) {
    assert.notDeepEqual(compareDecision({ ...good, [key]: value }, actual), [], `${key} mismatch went unnoticed`);
  }
  const errors = [{ code: 'schema', path: 'mode' }, { code: 'schema', path: 'x' }];
  assert.deepEqual(compareLoad({ valid: false, errors: [{ code: 'schema', path: 'x' }, { code: 'schema' }] }, errors, []), []);
  assert.notDeepEqual(compareLoad({ valid: false, errors: [{ code: 'schema' }] }, errors, []), []);
  assert.notDeepEqual(compareLoad({ valid: true, lints: ['no-rules'] }, null, []), []);
  const tag = { protected: true, rule: 'semver', because: 'rule', matches: [{ rule: 'semver', start: 0, end: 6 }], exception: null };
  assert.deepEqual(compareTagTest({ protected: true, rule: 'semver', because: 'rule', matches: ['semver'] }, tag), []);
  assert.notDeepEqual(compareTagTest({ protected: true, rule: 'semver', because: 'rule', matches: [{ rule: 'semver', start: 1, end: 6 }] }, tag), []);
});
