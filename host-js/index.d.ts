// Types for @taglock/policy. Field names are the JSON contract's (docs/policy.md),
// shared by every taglock host: snake_case, exactly as the CLI prints them. The
// codes (reasons, lint codes, …) come from ./codes.d.ts, generated from the core.

import type * as Codes from './codes.js';

export type * from './codes.js';

/** A tag or repository selector: exactly one of `regex`, `matching`, `excluding`. */
export type Selector =
  | { regex: string }
  | { matching: string[] }
  | { excluding: string[] };

/** A limits profile by name, or custom numbers. */
export type LimitsSpec = 'bitbucket' | 'harbor' | Limits;

/** The caps a policy is held to. */
export interface Limits {
  max_rules: number;
  max_pattern_length: number;
}

/** One immutability rule. */
export interface RuleDocument {
  name: string;
  tags: Selector;
  repositories?: Selector;
}

/** The `immutability` section. */
export interface ImmutabilityDocument {
  protect?: Codes.Protect;
  rules?: RuleDocument[];
  exceptions?: Selector[];
  identical_repush?: Codes.IdenticalRepush;
  admin_delete?: boolean;
  referrer_tags?: Codes.ReferrerTags;
}

/** The grants of one code repository. */
export interface RepositoryGrants {
  admin?: string[];
  write?: string[];
  read?: string[];
}

/** One entry of `permissions.images`: exactly one of `name` (a record) or `pattern`. */
export interface ImageDocument {
  name?: string;
  pattern?: string;
  repository: string;
  public?: boolean;
  publish?: Codes.Publish;
  overrides?: Record<string, Codes.Role>;
}

/** The `permissions` section. */
export interface PermissionsDocument {
  workspace_admins?: string[];
  repositories?: Record<string, RepositoryGrants>;
  images?: ImageDocument[];
  pipelines_inherit_write?: boolean;
  publish?: Codes.Publish;
}

/** A policy document, version 1. Unknown fields are errors. */
export interface PolicyDocument {
  version: 1;
  mode?: Codes.Mode;
  limits?: LimitsSpec;
  immutability?: ImmutabilityDocument;
  permissions?: PermissionsDocument;
}

/** Who asks. */
export interface Actor {
  kind: Codes.ActorKind;
  id?: string;
  groups?: string[];
  workspace_admin?: boolean;
  /** The host's own resolution of the actor's role on this image. */
  role?: Codes.Role;
}

/** A tag a push sets, or a tag a delete concerns, with what the host knows of it. */
export interface TagState {
  name: string;
  /** The digest the tag points at now; `null`/absent when the tag is new. */
  current?: string | null;
  /** The host recorded the tag as protected earlier. */
  locked?: boolean;
  /**
   * For a digest delete only: the index manifests through which this tag reaches the
   * deleted manifest, first the tag's current digest, last the deleted manifest's
   * direct parent; absent/empty when the tag points at it directly. Each entry must be
   * a valid digest, at most 16 of them (else `invalid_request`). Ignored elsewhere.
   */
  via?: string[];
}

/** `PUT /v2/<name>/manifests/…`: a push with tags, or by digest (`tags: []`). */
export interface PushRequest {
  operation: 'push';
  image: string;
  digest: string;
  tags?: TagState[];
  image_exists?: boolean;
  actor?: Actor;
}

/** A tag, manifest or whole-image delete. */
export interface DeleteRequest {
  operation: 'delete';
  image: string;
  target: { tag: string } | { digest: string } | 'image';
  /** The tags concerned; `null` when the host does not know (fail closed). */
  tags?: TagState[] | null;
  actor?: Actor;
}

/** A blob upload session. */
export interface UploadRequest {
  operation: 'upload';
  image: string;
  image_exists?: boolean;
  actor?: Actor;
}

/** A read. */
export interface PullRequest {
  operation: 'pull';
  image: string;
  actor?: Actor;
}

/** A cross-repository blob mount from `from` into `image`. */
export interface MountRequest {
  operation: 'mount';
  image: string;
  from: string;
  image_exists?: boolean;
  actor?: Actor;
}

/** One of the five request kinds. */
export type Request = PushRequest | DeleteRequest | UploadRequest | PullRequest | MountRequest;

/** The OCI error a registry returns with a denial. */
export interface OciErrorBody {
  errors: [
    {
      code: Codes.OciErrorCode;
      message: string;
      detail: {
        reason: Codes.Reason;
        rule: string | null;
        pattern: string | null;
        tag: string | null;
        current_digest: string | null;
        /** The deciding tag's path through indexes (its `via`); present only when non-empty. */
        via?: string[];
      };
    },
  ];
}

/** The answer to one request (docs/policy.md, "Decisions"). */
export interface Decision {
  allowed: boolean;
  /** Audit mode: the request would have been denied under `enforce`. */
  would_deny: boolean;
  reason: Codes.Reason;
  /** One sentence for the developer at the terminal. */
  message: string;
  /** The rule that decided; `null` under `protect: all` or when no rule decided. */
  rule: string | null;
  /** For a push: the pushed tags that are immutable once it is done. */
  protected_tags: string[];
  /** 200 when allowed, else the OCI error's HTTP status. */
  status: number;
  error: OciErrorBody | null;
}

/** One problem of a refused policy, located. */
export interface LoadError {
  code: Codes.LoadErrorCode;
  message: string;
  /** JSON path of the offending value, e.g. `immutability.rules[2].tags.regex`. */
  path: string;
  /** The rule concerned, if the problem is inside a rule. */
  rule: string | null;
  /** Character offset inside the pattern. */
  offset: number | null;
  /** 1-based line in the JSON text, for structural problems. */
  line: number | null;
  column: number | null;
}

/** A warning about a policy that loads but probably does not do what its author meant. */
export interface Lint {
  /** The core's lint codes; a newer engine may report codes not listed yet. */
  code: Codes.LintCode | (string & {});
  message: string;
  /** JSON path of the value concerned. */
  path: string;
  rule: string | null;
  offset: number | null;
}

/** One rule matching a tag, and where (character range in the tag, end exclusive). */
export interface RuleMatch {
  rule: string;
  start: number;
  end: number;
}

/** The pattern tester's answer for one tag. */
export interface TagTest {
  tag: string;
  /** Why the tag or image name is malformed; nothing else is computed then. */
  error: string | null;
  /** Whether the tag is immutable once pushed to the image. */
  protected: boolean;
  /** The rule that protects it; `null` under `all` or when unprotected. */
  rule: string | null;
  because: Codes.TagVerdict;
  /** Every rule whose selectors match, in document order, with the matched span. */
  matches: RuleMatch[];
  /** Index of the first exception that exempts the tag. */
  exception: number | null;
  /** The verdict in words, naming rules and exceptions with their patterns. */
  why: string;
}

/** What every optional setting of a policy document is when it is absent. */
export interface Defaults {
  mode: Codes.Mode;
  limits: LimitsSpec;
  immutability: {
    protect: Codes.Protect;
    identical_repush: Codes.IdenticalRepush;
    admin_delete: boolean;
    referrer_tags: Codes.ReferrerTags;
  };
  permissions: { publish: Codes.Publish };
}

/** The engine's defaults for a policy document's optional settings (frozen). */
export const DEFAULTS: Readonly<Defaults>;

/** The base class of every error this package throws on bad input. */
export class TaglockError extends Error {}

/** A refused policy, with every problem located. */
export class PolicyLoadError extends TaglockError {
  readonly name: 'PolicyLoadError';
  readonly errors: LoadError[];
}

/** A request (or other JSON argument) that does not have the expected shape. */
export class RequestError extends TaglockError {
  readonly name: 'RequestError';
  /** JSON path of the offending value (empty for the root). */
  readonly path: string;
  /** 1-based line in the JSON text; 0 when unknown. */
  readonly line: number;
  /** 1-based column in the JSON text; 0 when unknown. */
  readonly column: number;
  /** The problem without its location. */
  readonly detail: string;
  /** Whether the text is not JSON at all. */
  readonly syntax: boolean;
}

/** A validated, compiled policy. Load once, evaluate many requests. */
export class Policy implements Disposable {
  private constructor();
  /** Parses, validates and compiles a policy; throws `PolicyLoadError`. */
  static load(policy: string | PolicyDocument): Policy;
  /** Decides one request; throws `RequestError` when it is not a request. */
  evaluate(request: string | Request): Decision;
  /** Decides many requests in order. */
  evaluateAll(requests: string | Request[]): Decision[];
  /** Tests tags of one image. */
  testTags(image: string, tags: string[]): TagTest[];
  /** Tests one tag of one image. */
  testTag(image: string, tag: string): TagTest;
  /** The policy's lints. */
  lints(): Lint[];
  /** The loaded document with defaults filled in. */
  document(): PolicyDocument;
  /** The limits the policy was validated against. */
  limits(): Limits;
  /** Releases the policy's memory now; later calls throw `TypeError`. */
  free(): void;
  /** Whether `free()` has been called. */
  readonly freed: boolean;
  [Symbol.dispose](): void;
}

/** The numbers behind a limits value, as the engine enforces them. */
export function limitsFor(limits?: LimitsSpec): Limits;

/** How many characters a selector counts against `max_pattern_length`. */
export function patternLength(selector: Selector): number;
