// The package's API: loading, the five request kinds, typed errors, tag tests,
// lints, freeing. The corpus covers the decisions themselves; this covers the
// JS surface around them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULTS, Policy, PolicyLoadError, RequestError, TaglockError, limitsFor, patternLength,
} from '../../index.js';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

const POLICY = {
  version: 1,
  limits: 'bitbucket',
  immutability: {
    protect: 'some',
    rules: [
      { name: 'semver', tags: { regex: '^v\\d+\\.\\d+\\.\\d+$' } },
      { name: 'team-a-prod', repositories: { matching: ['team-a/**'] }, tags: { matching: ['prod', 'prod-*'] } },
    ],
    exceptions: [{ regex: '^dev-' }],
  },
  permissions: {
    workspace_admins: ['user:root'],
    repositories: { 'web-app': { admin: ['user:alice'], write: ['group:devs', 'pipeline:web-app'], read: ['group:qa'] } },
    images: [{ name: 'acme/web', repository: 'web-app' }],
  },
};

const alice = { kind: 'user', id: 'alice', groups: ['devs'] };

test('Policy.load accepts text or an object, and evaluates all five request kinds', () => {
  for (const input of [POLICY, JSON.stringify(POLICY)]) {
    const policy = Policy.load(input);
    const push = policy.evaluate({ operation: 'push', image: 'acme/web', digest: A, tags: [{ name: 'v1.2.0', current: B }], image_exists: true, actor: alice });
    assert.equal(push.allowed, false);
    assert.equal(push.reason, 'tag_immutable');
    assert.equal(push.rule, 'semver');
    assert.equal(push.status, 403);
    assert.deepEqual(Object.keys(push), ['allowed', 'would_deny', 'reason', 'message', 'rule', 'protected_tags', 'status', 'error']);
    assert.equal(push.error.errors[0].code, 'DENIED');
    assert.equal(push.error.errors[0].detail.current_digest, B);
    assert.match(push.message, /^tag v1\.2\.0 of acme\/web is immutable \(rule "semver"\)/);

    const first = policy.evaluate({ operation: 'push', image: 'acme/web', digest: A, tags: [{ name: 'v1.2.0' }], image_exists: true, actor: alice });
    assert.deepEqual([first.allowed, first.status, first.error, first.protected_tags], [true, 200, null, ['v1.2.0']]);

    const del = policy.evaluate({ operation: 'delete', image: 'acme/web', target: { tag: 'v1.2.0' }, tags: [{ name: 'v1.2.0', current: B }], actor: { kind: 'user', id: 'root', workspace_admin: true } });
    assert.equal(del.allowed, true);
    const upload = policy.evaluate({ operation: 'upload', image: 'acme/web', image_exists: true, actor: { kind: 'user', id: 'eve' } });
    assert.equal(upload.reason, 'permission_denied');
    const pull = policy.evaluate({ operation: 'pull', image: 'acme/web', actor: { kind: 'anonymous' } });
    assert.deepEqual([pull.reason, pull.status, pull.error.errors[0].code], ['authentication_required', 401, 'UNAUTHORIZED']);
    const mount = policy.evaluate({ operation: 'mount', image: 'acme/web', from: 'acme/base', actor: alice });
    assert.equal(mount.reason, 'image_not_linked');
    policy.free();
  }
});

test('evaluate accepts JSON text and evaluateAll keeps order', () => {
  const policy = Policy.load(POLICY);
  const request = { operation: 'pull', image: 'acme/web', actor: alice };
  assert.deepEqual(policy.evaluate(JSON.stringify(request)), policy.evaluate(request));
  const decisions = policy.evaluateAll([request, { operation: 'pull', image: 'acme/web' }]);
  assert.deepEqual(decisions.map((d) => d.reason), ['allowed', 'authentication_required']);
  policy.free();
});

test('a refused policy throws PolicyLoadError with every located problem', () => {
  const bad = {
    version: 1,
    limits: 'bitbucket',
    immutability: {
      protect: 'some',
      rules: [
        { name: 'a', tags: { regex: 'v(' } },
        { name: 'a', tags: { matching: ['x'.repeat(101)] } },
        { name: 'c', tags: { regex: '(a)\\1' } },
      ],
    },
  };
  let thrown;
  try {
    Policy.load(bad);
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown instanceof PolicyLoadError);
  assert.ok(thrown instanceof TaglockError);
  assert.ok(thrown instanceof Error);
  assert.equal(thrown.name, 'PolicyLoadError');
  assert.match(thrown.message, /^policy refused: \d+ problems/);
  const codes = thrown.errors.map((e) => e.code).sort();
  assert.deepEqual(codes, ['duplicate-rule-name', 'pattern-too-long', 'regex-syntax', 'regex-unsupported']);
  const syntax = thrown.errors.find((e) => e.code === 'regex-syntax');
  assert.equal(syntax.path, 'immutability.rules[0].tags.regex');
  assert.equal(syntax.rule, 'a');
  assert.equal(typeof syntax.offset, 'number');
  for (const e of thrown.errors) {
    assert.deepEqual(Object.keys(e).sort(), ['code', 'column', 'line', 'message', 'offset', 'path', 'rule']);
  }
});

test('a policy that is not JSON is located by line and column', () => {
  assert.throws(() => Policy.load('{\n  "version": 1,\n  "mode": enforce\n}'), (err) => {
    assert.ok(err instanceof PolicyLoadError);
    assert.equal(err.errors.length, 1);
    assert.equal(err.errors[0].code, 'json-syntax');
    assert.equal(err.errors[0].line, 3);
    return true;
  });
  assert.throws(() => Policy.load({ version: 1, colour: 'blue' }), (err) =>
    err instanceof PolicyLoadError && err.errors[0].code === 'schema');
});

test('a request that is not a request throws RequestError with a path; the instance survives', () => {
  const policy = Policy.load(POLICY);
  const cases = [
    [{ operation: 'push', image: 'acme/web', digest: A, tags: [{ name: 'v1', colour: 1 }] }, 'tags[0]'],
    [{ operation: 'fly', image: 'acme/web' }, 'operation'],
    [{ image: 'acme/web' }, 'operation'],
    [{ operation: 'pull', image: 42 }, 'image'],
    [{ operation: 'delete', image: 'acme/web', target: { branch: 'x' } }, 'target'],
    [[1, 2], ''],
    ['{"operation": "pull", ', ''],
  ];
  for (const [request, path] of cases) {
    assert.throws(() => policy.evaluate(request), (err) => {
      assert.ok(err instanceof RequestError, `${JSON.stringify(request)} threw ${err}`);
      assert.ok(err instanceof TaglockError);
      assert.equal(err.name, 'RequestError');
      assert.ok(err.path.startsWith(path), `path ${JSON.stringify(err.path)} for ${JSON.stringify(request)}`);
      assert.equal(typeof err.detail, 'string');
      return true;
    });
  }
  assert.throws(() => policy.evaluate('not json'), (err) => err instanceof RequestError && err.syntax && err.line === 1);
  assert.throws(() => policy.evaluate({ operation: 'pull', image: 10n }), RequestError);
  assert.throws(() => policy.evaluateAll([{ operation: 'pull', image: 'a' }, { operation: 'pull' }]), (err) =>
    err instanceof RequestError && err.path.startsWith('[1]'));
  // Malformed names are decisions, not errors.
  const bad = policy.evaluate({ operation: 'push', image: 'Acme/Web', digest: A, tags: [{ name: 'v1' }] });
  assert.deepEqual([bad.reason, bad.status, bad.error.errors[0].code], ['invalid_request', 400, 'NAME_INVALID']);
  const badTag = policy.evaluate({ operation: 'push', image: 'acme/web', digest: A, tags: [{ name: '-x' }] });
  assert.equal(badTag.error.errors[0].code, 'TAG_INVALID');
  const badDigest = policy.evaluate({ operation: 'push', image: 'acme/web', digest: 'sha256:xyz', tags: [] });
  assert.equal(badDigest.error.errors[0].code, 'DIGEST_INVALID');
  // Still working after all of that.
  assert.equal(policy.evaluate({ operation: 'pull', image: 'acme/web', actor: alice }).allowed, true);
  policy.free();
});

test('hostile input neither crashes nor hangs the instance', () => {
  const policy = Policy.load(POLICY);
  const long = 'x'.repeat(1 << 20);
  const huge = policy.evaluate({ operation: 'push', image: long, digest: A, tags: [{ name: long }] });
  assert.equal(huge.reason, 'invalid_request');
  const nested = `${'['.repeat(100000)}${']'.repeat(100000)}`;
  assert.throws(() => policy.evaluate(nested), RequestError);
  assert.throws(() => Policy.load(nested), PolicyLoadError);
  const tests = policy.testTags('acme/web', [long, '', '\u0000', 'é', 'v1.2.3']);
  assert.deepEqual(tests.map((t) => t.because), ['invalid', 'invalid', 'invalid', 'invalid', 'rule']);
  assert.equal(policy.evaluate({ operation: 'pull', image: 'acme/web', actor: alice }).allowed, true);
  policy.free();
});

test('testTags reports the protecting rule and the matched span', () => {
  const policy = Policy.load(POLICY);
  const [semver, prod, dev, plain, bad] = policy.testTags('team-a/api', ['v1.2.3', 'prod-eu', 'dev-1', 'feature', 'Bad Tag']);
  const { why, ...rest } = semver;
  assert.deepEqual(rest, { tag: 'v1.2.3', error: null, protected: true, rule: 'semver', because: 'rule', matches: [{ rule: 'semver', start: 0, end: 6 }], exception: null });
  assert.match(why, /^rule "semver" \(/);
  assert.equal(plain.why, 'no rule matches');
  assert.equal(prod.rule, 'team-a-prod');
  assert.deepEqual([dev.protected, dev.because, dev.exception], [false, 'no-rule', 0]);
  assert.deepEqual([plain.protected, plain.because], [false, 'no-rule']);
  assert.equal(bad.because, 'invalid');
  assert.equal(typeof bad.error, 'string');
  assert.equal(policy.testTags('acme/web', ['prod'])[0].protected, false, 'the repository selector applies');
  assert.deepEqual(policy.testTag('acme/web', 'v0.0.1').rule, 'semver');
  assert.throws(() => policy.testTags('acme/web', 'v1'), TypeError);
  assert.throws(() => policy.testTags('acme/web', [1]), TypeError);
  assert.throws(() => policy.testTags(null, []), TypeError);
  policy.free();
});

test('lints are located', () => {
  const policy = Policy.load({ version: 1, immutability: { protect: 'some', rules: [{ name: 'p', tags: { regex: 'prod' } }] } });
  const lints = policy.lints();
  const lint = lints.find((l) => l.code === 'unanchored-regex');
  assert.ok(lint, JSON.stringify(lints));
  assert.equal(lint.path, 'immutability.rules[0].tags.regex');
  assert.equal(lint.rule, 'p');
  assert.deepEqual(Object.keys(lint).sort(), ['code', 'message', 'offset', 'path', 'rule']);
  assert.deepEqual(Policy.load({ version: 1 }).lints(), []);
  policy.free();
});

test('document and limits show what was loaded, defaults filled in', () => {
  const policy = Policy.load({ version: 1, limits: 'bitbucket' });
  assert.deepEqual(policy.limits(), { max_rules: 7, max_pattern_length: 100 });
  const doc = policy.document();
  assert.equal(doc.mode, 'enforce');
  assert.equal(doc.immutability.protect, 'none');
  assert.equal(doc.immutability.admin_delete, true);
  policy.free();
});

test('limitsFor and patternLength give the numbers the engine enforces', () => {
  assert.deepEqual(limitsFor('bitbucket'), { max_rules: 7, max_pattern_length: 100 });
  assert.deepEqual(limitsFor('harbor'), { max_rules: 15, max_pattern_length: 255 });
  assert.deepEqual(limitsFor(), { max_rules: 15, max_pattern_length: 255 });
  assert.deepEqual(limitsFor({ max_rules: 3, max_pattern_length: 40 }), { max_rules: 3, max_pattern_length: 40 });
  assert.throws(() => limitsFor('gitlab'), RequestError);
  assert.equal(patternLength({ regex: '^v\\d+$' }), 6);
  assert.equal(patternLength({ matching: ['rc', 'test', 'nightly'] }), 15);
  assert.equal(patternLength({ excluding: ['a'] }), 1);
  assert.throws(() => patternLength({ regex: 'a', matching: [] }), RequestError);
});

test('a freed policy refuses further use; free is idempotent; Symbol.dispose frees', () => {
  const policy = Policy.load(POLICY);
  assert.equal(policy.freed, false);
  policy.free();
  policy.free();
  assert.equal(policy.freed, true);
  assert.throws(() => policy.evaluate({ operation: 'pull', image: 'acme/web' }), /freed/);
  assert.throws(() => policy.lints(), /freed/);
  const disposable = Policy.load(POLICY);
  assert.equal(typeof Symbol.dispose, 'symbol');
  disposable[Symbol.dispose]();
  assert.equal(disposable.freed, true);
  assert.throws(() => new Policy({}), TypeError);
});

test('loading and freeing many policies does not grow memory without bound', () => {
  const before = Policy.load(POLICY);
  before.free();
  for (let i = 0; i < 2000; i += 1) Policy.load(POLICY).free();
  const policy = Policy.load(POLICY);
  assert.equal(policy.evaluate({ operation: 'pull', image: 'acme/web', actor: alice }).allowed, true);
  policy.free();
});

test('DEFAULTS are what the engine applies to an absent setting', () => {
  assert.ok(Object.isFrozen(DEFAULTS) && Object.isFrozen(DEFAULTS.immutability));
  assert.deepEqual(DEFAULTS, {
    mode: 'enforce', limits: 'harbor', permissions: { publish: 'anyone' },
    immutability: { protect: 'none', identical_repush: 'allow', admin_delete: true, referrer_tags: 'mutable' },
  });
  const bare = Policy.load('{"version": 1, "immutability": {"protect": "all"}}');
  const spelled = Policy.load({
    version: 1, mode: DEFAULTS.mode, limits: DEFAULTS.limits,
    immutability: { ...DEFAULTS.immutability, protect: 'all' },
  });
  assert.deepEqual(bare.limits(), limitsFor(DEFAULTS.limits));
  assert.deepEqual(limitsFor(), limitsFor(DEFAULTS.limits));
  const tags = ['v1', 'latest', `sha256-${'a'.repeat(64)}.sig`];
  assert.deepEqual(spelled.testTags('acme/web', tags), bare.testTags('acme/web', tags));
  // The referrer tag stays mutable under `all`: referrer_tags' default is `mutable`.
  assert.equal(bare.testTags('acme/web', tags)[2].because, 'referrer');
  bare.free();
  spelled.free();
});
