// Same input, same output: every corpus case through the JS package and through the
// native `taglock` CLI (`check --json`, `test --json`, `eval`), compared as whole
// JSON objects — messages, OCI error bodies, load errors and lints included.
//
// The CLI is built with cargo (honouring CARGO_TARGET_DIR) unless TAGLOCK_BIN names
// a binary. Without cargo and without TAGLOCK_BIN the test is skipped, saying why.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCorpus } from './corpus.js';
import { outcome } from './run.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function nativeBinary() {
  if (process.env.TAGLOCK_BIN) return { bin: process.env.TAGLOCK_BIN };
  const build = spawnSync('cargo', ['build', '--quiet', '--package', 'taglock-cli'], {
    cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'inherit', 'pipe'],
  });
  if (build.error) return { skip: `cargo is not available (${build.error.code}); set TAGLOCK_BIN to compare with native` };
  if (build.status !== 0) throw new Error(`cargo build -p taglock-cli failed:\n${build.stderr}`);
  const target = resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target');
  const bin = join(target, 'debug', 'taglock');
  if (!existsSync(bin)) throw new Error(`cargo built taglock-cli but ${bin} does not exist`);
  return { bin };
}

/** Runs the CLI; returns exit code and parsed stdout (null when stdout is not JSON). */
function cli(bin, args) {
  const run = spawnSync(bin, args, { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  if (run.error) throw run.error;
  let json = null;
  try {
    json = JSON.parse(run.stdout);
  } catch {
    json = null;
  }
  return { code: run.status, json, stderr: run.stderr };
}

test('decisions, tag tests, load errors and lints are identical to the native CLI', (t) => {
  const found = nativeBinary();
  if (found.skip) {
    t.skip(found.skip);
    return;
  }
  const { bin } = found;
  const dir = mkdtempSync(join(tmpdir(), 'taglock-js-native-'));
  try {
    const cases = loadCorpus();
    // One file per distinct policy text; one CLI run per policy for all its requests.
    const files = new Map();
    const policyFile = (text) => {
      if (!files.has(text)) {
        const path = join(dir, `policy-${files.size}.json`);
        writeFileSync(path, text);
        files.set(text, path);
      }
      return files.get(text);
    };
    const failures = [];
    let compared = 0;
    const byPolicy = new Map();
    for (const c of cases) {
      const js = outcome(c);
      const policy = policyFile(c.policyText);
      if (c.kind === 'load') {
        const native = cli(bin, ['check', '--json', policy]);
        if (native.json === null) {
          failures.push(`${c.name}: check printed no JSON (exit ${native.code}): ${native.stderr}`);
        } else if (!isDeepEqual(native.json, js)) {
          failures.push(`${c.name}:\n    native ${JSON.stringify(native.json)}\n    js     ${JSON.stringify(js)}`);
        }
        compared += 1;
      } else if (c.kind === 'test_tag') {
        const native = cli(bin, ['test', policy, '--image', c.image, '--json', '--', c.tag]);
        if (native.code === 2 && native.json === null) {
          // The CLI refuses an invalid image name outright; the package reports it per tag.
          if (js.because !== 'invalid') failures.push(`${c.name}: native refused the image (${native.stderr.trim()}) but JS says ${JSON.stringify(js)}`);
        } else if (!isDeepEqual(native.json, [js])) {
          failures.push(`${c.name}:\n    native ${JSON.stringify(native.json)}\n    js     ${JSON.stringify([js])}`);
        }
        compared += 1;
      } else {
        if (!byPolicy.has(policy)) byPolicy.set(policy, []);
        byPolicy.get(policy).push({ c, js });
      }
    }
    for (const [policy, entries] of byPolicy) {
      const requests = entries.flatMap(({ c }) => c.pairs.map(([request]) => request));
      const requestFile = `${policy}.requests.json`;
      writeFileSync(requestFile, JSON.stringify(requests));
      const native = cli(bin, ['eval', policy, requestFile, '--compact']);
      if (native.json === null) {
        const jsRefused = entries.every(({ js }) => js.refused);
        if (!(native.code === 1 && jsRefused)) failures.push(`eval ${policy} (exit ${native.code}): ${native.stderr}`);
        continue;
      }
      let index = 0;
      for (const { c, js } of entries) {
        const mine = native.json.slice(index, index + c.pairs.length);
        index += c.pairs.length;
        if (!isDeepEqual(mine, js)) failures.push(`${c.name}:\n    native ${JSON.stringify(mine)}\n    js     ${JSON.stringify(js)}`);
        compared += 1;
      }
    }
    assert.equal(compared, cases.length, 'every case was compared');
    assert.equal(failures.length, 0, `${failures.length} of ${cases.length} cases differ from native:\n${failures.join('\n')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function isDeepEqual(a, b) {
  try {
    assert.deepStrictEqual(a, b);
    return true;
  } catch {
    return false;
  }
}
