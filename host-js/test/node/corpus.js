// Reads the conformance corpus (tests/conformance/ at the repository root) for
// native.test.js, which compares the package with the native CLI.
//
// This is only a reader. The corpus's format is validated, and every expectation
// checked, by the one conformance runner (the Rust crate in tests/conformance/):
// `cargo test -p taglock-conformance --test node` runs this package and the
// jco-transpiled component through it over test/conformance-adapter.mjs.

import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const CORPUS_ROOT = fileURLToPath(new URL('../../../tests/conformance/', import.meta.url));

const jsonFiles = (dir) => readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => join(dir, f));
const read = (path) => JSON.parse(readFileSync(path, 'utf8'));

/**
 * Every case: `{file, name, policyText, kind, ...}` where kind is `decisions`
 * (with `pairs` of request and expect), `test_tag` (with `image`, `tag`) or `load`.
 */
export function loadCorpus(root = CORPUS_ROOT) {
  const policies = new Map(jsonFiles(join(root, 'policies')).map((p) => [p.split('/').pop().replace(/\.json$/, ''), read(p)]));
  return jsonFiles(join(root, 'cases')).flatMap((path) => read(path).cases.map((raw) => {
    const policyText = raw.policy_text ?? JSON.stringify(typeof raw.policy === 'string' ? policies.get(raw.policy) : raw.policy);
    const base = { file: `cases/${path.split('/').pop()}`, name: raw.name, policyText };
    if ('request' in raw) return { ...base, kind: 'decisions', pairs: [[raw.request, raw.expect]] };
    if ('requests' in raw) return { ...base, kind: 'decisions', pairs: raw.requests.map((r, i) => [r, raw.expect[i]]) };
    if ('test_tag' in raw) return { ...base, kind: 'test_tag', image: raw.test_tag.image, tag: raw.test_tag.tag };
    return { ...base, kind: 'load' };
  }));
}
