// The whole conformance corpus through the very component registries run
// (host-wasmtime/component/taglock_policy.wasm), transpiled by jco: every
// expectation holds, and every answer equals the JS package's (the wasm-bindgen
// build of the same core) field for field.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadCorpus, compareDecision, compareTagTest, compareLoad, MIN_CASES } from './corpus.js';
import { outcome as packageOutcome } from './run.js';
import * as component from '../component/component.js';

/** The case's outcome through the component, in the shapes run.js produces. */
function outcome(engine, c) {
  const { policy, errors } = component.load(engine, c.policyText);
  try {
    if (c.kind === 'load') {
      return { valid: errors === null, errors: errors ?? [], lints: policy ? component.lints(policy) : [] };
    }
    if (policy === null) return { refused: errors };
    if (c.kind === 'test_tag') return component.testTag(policy, c.image, c.tag);
    return c.pairs.map(([request]) => component.evaluate(policy, request));
  } finally {
    policy?.[Symbol.dispose]();
  }
}

test('the conformance corpus passes through the jco-transpiled component, identically to the package', async () => {
  const { engine, cleanup } = await component.loadComponent();
  try {
    const cases = loadCorpus();
    assert.ok(cases.length >= MIN_CASES);
    const failures = [];
    for (const c of cases) {
      const got = outcome(engine, c);
      let found;
      if (c.kind === 'load') found = compareLoad(c.expect, got.valid ? null : got.errors, got.lints);
      else if (got.refused) found = [`policy does not load: ${JSON.stringify(got.refused)}`];
      else if (c.kind === 'test_tag') found = compareTagTest(c.expect, got);
      else found = c.pairs.flatMap(([, expect], i) => compareDecision(expect, got[i]));
      const expected = packageOutcome(c);
      try {
        assert.deepStrictEqual(got, expected);
      } catch (err) {
        found.push(`differs from the JS package: ${err.message.split('\n').slice(0, 12).join('\n')}`);
      }
      if (found.length > 0) failures.push(`${c.name} (${c.file}):\n    ${found.join('\n    ')}`);
    }
    assert.equal(failures.length, 0, `${failures.length} of ${cases.length} cases failed:\n\n${failures.join('\n\n')}`);
  } finally {
    cleanup();
  }
});

test('a change to a decision is noticed', async () => {
  const { engine, cleanup } = await component.loadComponent();
  try {
    const { policy } = component.load(engine, JSON.stringify({ version: 1, immutability: { protect: 'all' } }));
    const digest = (c) => `sha256:${c.repeat(64)}`;
    const d = component.evaluate(policy, {
      operation: 'push', image: 'acme/web', digest: digest('a'),
      tags: [{ name: 'v1', current: digest('b') }], image_exists: true,
    });
    assert.equal(d.reason, 'tag_immutable');
    assert.equal(d.status, 403);
    assert.equal(d.error.errors[0].code, 'DENIED');
    assert.equal(d.error.errors[0].detail.current_digest, digest('b'));
    assert.notDeepEqual(d, { ...d, allowed: true });
    policy[Symbol.dispose]();
  } finally {
    cleanup();
  }
});
