// Runs one corpus case through the JS package and returns what it produced, in the
// shapes the native CLI prints (`check --json`, `test --json`, `eval`).

import { Policy, PolicyLoadError } from '../../index.js';

/** Loads `text`; `{policy}` or `{errors}` (the located load errors). */
export function load(text) {
  try {
    return { policy: Policy.load(text), errors: null };
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    return { policy: null, errors: err.errors };
  }
}

/**
 * Produces the case's outcome through the package:
 * - load cases: `{valid, errors, lints}`;
 * - test_tag cases: the TagTest;
 * - decision cases: the array of decisions.
 * A policy that does not load in a non-load case gives `{refused: errors}`.
 */
export function outcome(c) {
  const { policy, errors } = load(c.policyText);
  try {
    if (c.kind === 'load') {
      return { valid: errors === null, errors: errors ?? [], lints: policy ? policy.lints() : [] };
    }
    if (policy === null) return { refused: errors };
    if (c.kind === 'test_tag') return policy.testTags(c.image, [c.tag])[0];
    return c.pairs.map(([request]) => policy.evaluate(request));
  } finally {
    policy?.free();
  }
}
