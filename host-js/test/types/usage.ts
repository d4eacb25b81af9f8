// Compile-time check of index.d.ts: typical use type-checks, and misuse does not
// (each `@ts-expect-error` fails the check if the line stops being an error).
import {
  Policy, PolicyLoadError, RequestError, TaglockError, limitsFor, patternLength,
  type Decision, type LoadError, type Lint, type PolicyDocument, type Request, type TagTest,
  type LintCode, type Reason, type TagVerdict,
} from '../../index.js';

const doc: PolicyDocument = {
  version: 1,
  limits: 'bitbucket',
  immutability: { protect: 'some', rules: [{ name: 'semver', tags: { regex: '^v\\d+$' } }] },
};

export function use(): void {
  let policy: Policy;
  try {
    policy = Policy.load(doc);
  } catch (err) {
    if (err instanceof PolicyLoadError) {
      const first: LoadError | undefined = err.errors[0];
      console.log(first?.path, first?.offset, first?.code);
    }
    throw err;
  }
  const request: Request = {
    operation: 'delete', image: 'acme/web', target: { tag: 'v1' }, tags: null,
    actor: { kind: 'user', id: 'root', workspace_admin: true },
  };
  const decision: Decision = policy.evaluate(request);
  const code: string | undefined = decision.error?.errors[0].code;
  const reason: 'allowed' | 'tag_immutable' | string = decision.reason;
  const many: Decision[] = policy.evaluateAll([request, { operation: 'pull', image: 'acme/web' }]);
  const tests: TagTest[] = policy.testTags('acme/web', ['v1', 'latest']);
  const spans = tests.flatMap((t) => t.matches.map((m) => [m.start, m.end] as const));
  const words: string[] = tests.map((t) => t.why);
  const verdict: TagVerdict = tests[0].because;
  const lintCode: LintCode = 'matches-every-tag';
  const denied: Reason = 'tag_immutable';
  const lints: Lint[] = policy.lints();
  const limits = limitsFor('harbor').max_rules + patternLength({ matching: ['a', 'b'] });
  try {
    policy.evaluate('{"operation": "pull"}');
  } catch (err) {
    if (err instanceof RequestError) console.log(err.path, err.line, err.column, err.detail);
    if (err instanceof TaglockError) console.log(err.message);
  }
  const child: Request = {
    operation: 'delete', image: 'acme/web', target: { digest: 'sha256:c' },
    tags: [{ name: 'v1', current: 'sha256:a', via: ['sha256:a'] }],
  };
  const path: string[] | undefined = policy.evaluate(child).error?.errors[0].detail.via;
  console.log(code, reason, many, spans, words, verdict, lintCode, denied, lints, limits, path, policy.freed);
  policy.free();
  {
    using scoped = Policy.load('{"version": 1}');
    scoped.lints();
  }

  // @ts-expect-error: operation must be one of the five
  policy.evaluate({ operation: 'fly', image: 'x' });
  // @ts-expect-error: the constructor is private; use Policy.load
  new Policy();
  // @ts-expect-error: via is a list of digests
  policy.evaluate({ operation: 'delete', image: 'x', target: 'image', tags: [{ name: 'v1', via: 'sha256:a' }] });
  // @ts-expect-error: tags are strings
  policy.testTags('acme/web', [1]);
  // @ts-expect-error: reasons are the core's codes
  const unknown: Reason = 'forbidden';
  console.log(unknown);
  // @ts-expect-error: a selector has one of regex, matching, excluding
  patternLength({ glob: 'x' });
}
