// The decision component that registries run (host-wasmtime/component/, checked in
// sync with the sources by `cargo xtask build-wasm --check`), transpiled by jco and
// run in Node: proof that JS can execute the very binary registries run.
//
// This file only translates: JSON requests into the component's typed WIT
// records, and its typed answers back into the JSON shapes every host prints.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const COMPONENT = join(here, '../../../host-wasmtime/component/taglock_policy.wasm');

/** Transpiles the component with jco and imports it; returns `{instantiate, cleanup}`.
 * An instance of the component holds one policy (its `load`), so each policy gets its
 * own: `instantiate()` makes one (the core modules are compiled once) and returns its
 * `engine` exports. */
export async function loadComponent() {
  const out = mkdtempSync(join(tmpdir(), 'taglock-jco-'));
  const jco = join(here, '../../node_modules/.bin/jco');
  execFileSync(jco, ['transpile', COMPONENT, '-o', out, '--name', 'taglock_policy', '--instantiation', 'sync', '--quiet'], {
    stdio: 'pipe',
  });
  const module = await import(pathToFileURL(join(out, 'taglock_policy.js')).href);
  const cores = new Map();
  const core = (name) => {
    if (!cores.has(name)) cores.set(name, new WebAssembly.Module(readFileSync(join(out, name))));
    return cores.get(name);
  };
  return {
    instantiate: () => module.instantiate(core, {}).engine,
    cleanup: () => rmSync(out, { recursive: true, force: true }),
  };
}

const snake = (text) => text.replaceAll('-', '_');
const orNull = (value) => (value === undefined ? null : value);

const utf8 = new TextEncoder();

/** A request's strings as the component takes them: one text, each string named by
 * its span (UTF-8 byte offset and length). */
class Strings {
  constructor() {
    this.parts = [];
    this.bytes = 0;
  }

  span(text) {
    const span = { start: this.bytes, len: utf8.encode(text).length };
    this.parts.push(text);
    this.bytes += span.len;
    return span;
  }

  spans(items) {
    return items.map((item) => this.span(item));
  }

  text() {
    return this.parts.join('');
  }
}

function actor(strings, a = {}) {
  return {
    kind: a.kind ?? 'anonymous',
    id: strings.span(a.id ?? ''),
    groups: strings.spans(a.groups ?? []),
    workspaceAdmin: a.workspace_admin ?? false,
    role: a.role ?? 'unresolved',
  };
}

/** A tag's state; an empty `via` crosses as none. */
function tagState(strings, t) {
  const via = t.via ?? [];
  return {
    name: strings.span(t.name),
    current: t.current == null ? undefined : strings.span(t.current),
    locked: t.locked ?? false,
    via: via.length === 0 ? undefined : strings.spans(via),
  };
}

function target(strings, t) {
  if (t === 'image') return { tag: 'image' };
  return 'tag' in t ? { tag: 'tag', val: strings.span(t.tag) } : { tag: 'digest', val: strings.span(t.digest) };
}

/** Decides a JSON request with the component's typed functions: a `verdict`, and the full
 * decision from `lastDecision` when the verdict is `detailed`. */
export function evaluate(policy, r) {
  return answer(policy, r, verdict(policy, r));
}

function verdict(policy, r) {
  const s = new Strings();
  switch (r.operation) {
    case 'push': {
      const request = {
        image: s.span(r.image), digest: s.span(r.digest), tags: (r.tags ?? []).map((t) => tagState(s, t)),
        imageExists: r.image_exists ?? false, actor: actor(s, r.actor),
      };
      return policy.evaluatePush({ text: s.text(), ...request });
    }
    case 'delete': {
      const request = {
        image: s.span(r.image), target: target(s, r.target),
        tags: r.tags == null ? undefined : r.tags.map((t) => tagState(s, t)), actor: actor(s, r.actor),
      };
      return policy.evaluateDelete({ text: s.text(), ...request });
    }
    case 'upload': {
      const request = { image: s.span(r.image), imageExists: r.image_exists ?? false, actor: actor(s, r.actor) };
      return policy.evaluateUpload({ text: s.text(), ...request });
    }
    case 'pull': {
      const request = { image: s.span(r.image), actor: actor(s, r.actor) };
      return policy.evaluatePull({ text: s.text(), ...request });
    }
    case 'mount': {
      const request = {
        image: s.span(r.image), from: s.span(r.from), imageExists: r.image_exists ?? false, actor: actor(s, r.actor),
      };
      return policy.evaluateMount({ text: s.text(), ...request });
    }
    default:
      throw new Error(`unknown operation ${r.operation}`);
  }
}

/** The decision a verdict stands for. `allowed` and `allowed-protecting` are the whole
 * decision, worded from the operation as the core words it (`policy-core`'s
 * `Decision::allow`; the corpus holds the two to the same text), with the protected tags
 * read off the mask (bit i: the request's tags[i]); `detailed` is read from the component. */
function answer(policy, r, v) {
  if (v.tag === 'allowed' || v.tag === 'allowed-protecting') {
    const mask = v.tag === 'allowed' ? 0n : v.val;
    const tags = r.tags ?? [];
    const protectedTags = [];
    for (let i = 0; i < 64; i += 1) {
      if ((mask >> BigInt(i)) & 1n) {
        if (i >= tags.length) throw new Error(`protected tag ${i} of a push of ${tags.length} tags`);
        protectedTags.push(tags[i].name);
      }
    }
    return {
      allowed: true, would_deny: false, reason: 'allowed', message: `${r.operation} allowed`,
      rule: null, protected_tags: protectedTags, status: 200, error: null,
    };
  }
  if (v.tag === 'unreadable') throw new Error('the component could not read the request');
  const d = policy.lastDecision();
  if (d === undefined) throw new Error('a `detailed` verdict with no decision behind it');
  return decision(d);
}

/** The decision object (docs/policy.md, "Decisions"); the OCI error body is laid out from the typed detail
 * (every denial carries its code: the component decides it, not this adapter). */
function decision(d) {
  const reason = snake(d.reason);
  const rule = orNull(d.rule);
  return {
    allowed: d.allowed,
    would_deny: d.wouldDeny,
    reason,
    message: d.message,
    rule,
    protected_tags: d.protectedTags,
    status: d.status,
    error: d.allowed ? null : {
      errors: [{
        code: snake(d.detail.code).toUpperCase(),
        message: d.message,
        detail: {
          reason, rule, pattern: orNull(d.detail?.pattern), tag: orNull(d.detail?.tag),
          current_digest: orNull(d.detail?.currentDigest),
          // Left out when empty, as every host prints it.
          ...(d.detail?.via?.length ? { via: d.detail.via } : {}),
        },
      }],
    },
  };
}

/** Loads a policy into a new instance: `{policy}` (the instance's `engine`) or `{errors}`
 * (the located load errors, as JSON). */
export function load(instantiate, text) {
  const engine = instantiate();
  try {
    engine.load(text);
    return { policy: engine, errors: null };
  } catch (err) {
    if (!Array.isArray(err?.payload)) throw err;
    return {
      policy: null,
      errors: err.payload.map((e) => ({
        code: e.code, message: e.message, path: e.path, rule: orNull(e.rule),
        offset: orNull(e.offset), line: orNull(e.line), column: orNull(e.column),
      })),
    };
  }
}

/** The policy's lints, as JSON. */
export function lints(policy) {
  return policy.lints().map((l) => ({
    code: l.code, message: l.message, path: l.path, rule: orNull(l.rule), offset: orNull(l.offset),
  }));
}

/** One tag test, in the shape `taglock test --json` prints. */
export function testTag(policy, image, tag) {
  const t = policy.testTag(image, tag);
  return {
    tag: t.tag, error: orNull(t.error), protected: t.protected, rule: orNull(t.rule), because: t.because,
    matches: t.matches.map((m) => ({ rule: m.rule, start: m.start, end: m.end })), exception: orNull(t.exception), why: t.why,
  };
}
