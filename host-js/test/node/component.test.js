// The very component registries run (host-wasmtime/component/taglock_policy.wasm),
// transpiled by jco and run in Node.
//
// The whole conformance corpus goes through it in the one conformance runner
// (tests/conformance/, `cargo test -p taglock-conformance --test node`), which
// drives test/conformance-adapter.mjs with `component`: every expectation, and
// every answer equal to the native core's. This file keeps a quick check that
// jco can still transpile and run it from `npm test` alone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as component from '../component/component.js';

test('the jco-transpiled component decides, and a change to a decision is noticed', async () => {
  const { instantiate, cleanup } = await component.loadComponent();
  try {
    const { policy } = component.load(instantiate, JSON.stringify({ version: 1, immutability: { protect: 'all' } }));
    const digest = (c) => `sha256:${c.repeat(64)}`;
    const overwrite = {
      operation: 'push', image: 'acme/web', digest: digest('a'),
      tags: [{ name: 'v1', current: digest('b') }], image_exists: true,
    };
    const d = component.evaluate(policy, overwrite);
    assert.equal(d.reason, 'tag_immutable');
    assert.equal(d.status, 403);
    assert.equal(d.error.errors[0].code, 'DENIED');
    assert.equal(d.error.errors[0].detail.current_digest, digest('b'));
    assert.notDeepEqual(d, { ...d, allowed: true });

    // One policy per instance: a second policy does not replace the first.
    const { policy: open } = component.load(instantiate, JSON.stringify({ version: 1 }));
    assert.equal(component.evaluate(open, overwrite).allowed, true);
    assert.equal(component.evaluate(policy, overwrite).allowed, false);
  } finally {
    cleanup();
  }
});
