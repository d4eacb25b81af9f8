// The core's codes, generated from policy-core's enums by
// `cargo test -p taglock-policy-core --test code_lists`, which rewrites this
// file when a code changes. Do not edit.

/** A decision's stable machine code. */
export type Reason =
  | 'allowed'
  | 'invalid_request'
  | 'authentication_required'
  | 'image_not_linked'
  | 'permission_denied'
  | 'pipelines_only'
  | 'tag_immutable';

/** The OCI error code a registry returns with a denial. */
export type OciErrorCode =
  | 'DENIED'
  | 'UNAUTHORIZED'
  | 'NAME_INVALID'
  | 'TAG_INVALID'
  | 'DIGEST_INVALID';

/** Why a policy was refused. */
export type LoadErrorCode =
  | 'json-syntax'
  | 'schema'
  | 'unsupported-version'
  | 'regex-syntax'
  | 'regex-unsupported'
  | 'regex-too-large'
  | 'glob-syntax'
  | 'empty-glob-list'
  | 'pattern-too-long'
  | 'too-many-rules'
  | 'invalid-limits'
  | 'empty-rule-name'
  | 'duplicate-rule-name'
  | 'invalid-principal'
  | 'invalid-image-entry'
  | 'invalid-image-name'
  | 'duplicate-image'
  | 'invalid-repository'
  | 'policy-too-large'
  | 'name-too-long'
  | 'invalid-rule-name';

/** What a lint warns about. */
export type LintCode =
  | 'unanchored-regex'
  | 'unescaped-dot'
  | 'never-matches'
  | 'excluding-does-not-subtract'
  | 'shadowed-rule'
  | 'protects-latest'
  | 'exceptions-cancel-rules'
  | 'rules-ignored'
  | 'no-rules'
  | 'unknown-repository'
  | 'matches-every-tag';

/** Why a tag is, or is not, protected. */
export type TagVerdict =
  | 'rule'
  | 'all'
  | 'exception'
  | 'referrer'
  | 'no-rule'
  | 'mode-none'
  | 'invalid';

/** `none < read < write < admin`. */
export type Role =
  | 'none'
  | 'read'
  | 'write'
  | 'admin';

/** The kind of actor. */
export type ActorKind =
  | 'user'
  | 'pipeline'
  | 'token'
  | 'anonymous';

/** Enforcement mode. */
export type Mode =
  | 'enforce'
  | 'audit';

/** Which tags are protected. */
export type Protect =
  | 'none'
  | 'all'
  | 'some';

/** What an identical re-push of an immutable tag gets. */
export type IdenticalRepush =
  | 'allow'
  | 'deny';

/** How legacy referrer tags are treated. */
export type ReferrerTags =
  | 'mutable'
  | 'protected';

/** Who may publish an image. */
export type Publish =
  | 'anyone'
  | 'pipelines-only';
