//! How an OCI Distribution (`/v2/`) request becomes a taglock decision, for
//! every HTTP host — `taglock serve` and the Envoy filter — without any I/O.
//!
//! A host reads this crate as a translation table:
//!
//! 1. [`Route::classify`] reads the request head exactly as the upstream
//!    registry will, or refuses it ([`Refusal`]): endpoints the gateway does
//!    not forward, form bodies and queries a registry could read another way.
//! 2. The host authenticates the actor (its own business: Basic, trusted
//!    headers, a verified JWT) and, for a write, serializes it against other
//!    writes as [`Route::write_lock`] says.
//! 3. [`Gathering`] says which look-ups the facts need ([`Lookup`]), only
//!    those the deciding policy says its decision depends on ([`Needs`]); the
//!    host sends them to the upstream with its own client and hands back each
//!    [`Answer`]; [`Gathering::finish`] gives the core's request — or a 503
//!    refusal when a push's facts are unknown. A fact not understood is
//!    unknown, and unknown fails closed.
//! 4. The host asks the decision engine. A denial becomes
//!    [`Reply::denial`]; an allowed request is forwarded, with
//!    [`audit_warning`] added in audit mode.
//! 5. [`AuditRecord`] says what the audit log records, for a decision and for
//!    a refusal alike.
//!
//! When the upstream registry authenticates, a host signs its own look-ups
//! (and, with its own credentials, its forwards) as [`upstream_auth`] says:
//! the `WWW-Authenticate` parser, scopes, the realm trust rule, token answers
//! and the bounded token cache of the Docker/OCI token protocol.
//!
//! ```
//! use taglock_gateway::{AllFacts, Answer, Gathering, RequestHead, Route};
//! use policy_core::{Actor, Request};
//!
//! let head = RequestHead {
//!     method: "POST",
//!     path: "/v2/acme/web/blobs/uploads/",
//!     query: Some("mount=sha256:0000000000000000000000000000000000000000000000000000000000000000&from=acme/base"),
//!     content_types: &[],
//! };
//! let route = Route::classify(&head).unwrap();
//! // `AllFacts`: every fact; a host passes the policy that will decide.
//! let mut gathering = Gathering::new(route, Actor::user("alice", &[]), None, &AllFacts).unwrap();
//! while let Some(lookup) = gathering.next_lookup() {
//!     assert_eq!(lookup.path, "/v2/acme/web/tags/list?n=1");
//!     let answer = Answer::Reply { status: 404, headers: vec![], body: vec![] };
//!     gathering.answer(lookup.id, answer);
//! }
//! let gathered = gathering.finish().unwrap();
//! let Request::Mount(mount) = gathered.request else { unreachable!() };
//! assert_eq!((mount.from.as_str(), mount.image_exists), ("acme/base", false));
//! ```

pub mod audit;
pub mod catalog;
pub mod claims;
pub mod facts;
pub mod listing;
pub mod login;
pub mod manifest;
pub mod query;
pub mod reply;
pub mod route;
pub mod upstream_auth;

pub use audit::{AuditRecord, Exchange};
pub use claims::ClaimNames;
pub use facts::{AllFacts, Answer, Gathered, Gathering, Lookup, LookupId, Needs};
pub use login::Credentials;
pub use reply::{Refusal, RefusalCode, Reply, audit_warning};
pub use route::{Reference, RequestHead, Route, WriteLock};
