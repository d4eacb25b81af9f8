//! Which facts a write's decision depends on, so that a host can leave out the
//! look-ups whose answers cannot change it.
//!
//! A push reads two kinds of registry facts: each tag's current digest and
//! whether the image exists. A tag's digest is read only when the tag is
//! protected on that image (an unprotected tag may move, whatever it points at);
//! whether the image exists is read only by the permission check, which asks
//! for more (admin instead of write) to create an image. An upload or a mount
//! reads only whether the image exists.
//!
//! The answers are exact: a decision made with a fact that is not needed set to
//! any value of its domain (a digest, or none; true or false) is the decision
//! made with the real one. Where the answer could depend on something not known
//! here, the fact is needed.

use crate::names;
use crate::permissions::Action;
use crate::policy::Policy;
use crate::request::{Actor, PushRequest};

/// What a push's decision depends on ([`Policy::push_needs`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushNeeds {
    /// Whether the decision depends on `image_exists`.
    pub image_exists: bool,
    /// For each of the request's tags, in order: whether the decision depends on
    /// the tag's `current` digest.
    pub current: Vec<bool>,
}

impl PushNeeds {
    /// Every fact of a push with `tags` tags: what a host gathers when it
    /// cannot ask the policy (fail closed).
    pub fn all(tags: usize) -> PushNeeds {
        PushNeeds {
            image_exists: true,
            current: vec![true; tags],
        }
    }

    /// Whether the decision depends on no fact at all.
    pub fn nothing(&self) -> bool {
        !self.image_exists && !self.current.contains(&true)
    }
}

impl Policy {
    /// Which facts the decision of `request` depends on. Only the request's
    /// image, digest, tag names, `locked` flags and actor are read: its
    /// `image_exists` and the tags' `current` are the facts asked about.
    ///
    /// A tag's current digest matters when the tag is protected on the image;
    /// whether the image exists matters as [`Policy::existence_matters`] says.
    /// A malformed image name, digest or tag makes the decision
    /// `invalid_request` whatever the facts, so then nothing is needed.
    ///
    /// ```
    /// use policy_core::{Actor, Policy, PushRequest, TagState};
    ///
    /// let policy = Policy::from_json(r#"{"version": 1, "immutability": {
    ///   "protect": "some", "rules": [{"name": "semver", "tags": {"regex": "^v\\d+$"}}]}}"#).unwrap();
    /// let push = PushRequest {
    ///     image: "acme/web".into(),
    ///     digest: format!("sha256:{}", "a".repeat(64)),
    ///     tags: vec![TagState::new_tag("latest"), TagState::new_tag("v1")],
    ///     image_exists: false,
    ///     actor: Actor::user("alice", &[]),
    /// };
    /// let needs = policy.push_needs(&push);
    /// assert_eq!(needs.current, [false, true]);
    /// assert!(!needs.image_exists, "no permissions section: anyone may create it");
    /// ```
    pub fn push_needs(&self, request: &PushRequest) -> PushNeeds {
        let image = request.image.as_str();
        let malformed = names::check_image_name(image).is_err()
            || names::check_digest(&request.digest).is_err()
            || request
                .tags
                .iter()
                .any(|tag| names::check_tag(&tag.name).is_err());
        if malformed {
            return PushNeeds {
                image_exists: false,
                current: vec![false; request.tags.len()],
            };
        }
        PushNeeds {
            image_exists: self.existence_matters(image, &request.actor),
            current: request
                .tags
                .iter()
                .map(|tag| self.immutability.protection(image, &tag.name).is_some())
                .collect(),
        }
    }

    /// Whether a write of `actor` to `image` (a push, an upload, the target of a
    /// mount) is decided differently when the image exists and when it does not:
    /// false when the permission check lets the write through either way (no
    /// permissions section, or a role that may both write and create), or when
    /// the image name is malformed (`invalid_request` either way).
    pub fn existence_matters(&self, image: &str, actor: &Actor) -> bool {
        if names::check_image_name(image).is_err() {
            return false;
        }
        [true, false].into_iter().any(|image_exists| {
            self.check_access(image, actor, Action::Publish { image_exists }, "push to")
                .is_some()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::PushNeeds;
    use crate::request::{Actor, PushRequest, TagState};
    use crate::{Policy, Role};

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn load(json: &str) -> Policy {
        Policy::from_json(json).unwrap()
    }

    fn push(image: &str, tags: &[&str], actor: Actor) -> PushRequest {
        PushRequest {
            image: image.into(),
            digest: digest('a'),
            tags: tags.iter().map(|tag| TagState::new_tag(*tag)).collect(),
            image_exists: false,
            actor,
        }
    }

    const SEMVER: &str = r#"{"version": 1, "immutability": {"protect": "some",
        "rules": [{"name": "semver", "tags": {"regex": "^v\\d+\\.\\d+\\.\\d+$"}}]}}"#;

    #[test]
    fn only_protected_tags_need_their_digest() {
        let policy = load(SEMVER);
        let needs = policy.push_needs(&push(
            "acme/web",
            &["latest", "v1.2.0", "main", "v1.2.0"],
            Actor::anonymous(),
        ));
        assert_eq!(
            needs,
            PushNeeds {
                image_exists: false,
                current: vec![false, true, false, true],
            }
        );
        assert!(!needs.nothing());
        let latest = policy.push_needs(&push("acme/web", &["latest"], Actor::anonymous()));
        assert!(latest.nothing(), "{latest:?}");
        // A push by digest reads nothing under an immutability-only policy.
        assert!(
            policy
                .push_needs(&push("acme/web", &[], Actor::anonymous()))
                .nothing()
        );
    }

    #[test]
    fn protection_follows_mode_scope_exceptions_and_referrer_tags() {
        let all = load(r#"{"version": 1, "immutability": {"protect": "all"}}"#);
        assert_eq!(
            all.push_needs(&push("acme/web", &["latest"], Actor::anonymous()))
                .current,
            [true]
        );
        let none = load(r#"{"version": 1, "immutability": {"protect": "none"}}"#);
        assert!(
            none.push_needs(&push("acme/web", &["v1.0.0"], Actor::anonymous()))
                .nothing()
        );
        let scoped = load(
            r#"{"version": 1, "immutability": {"protect": "some", "exceptions": [{"matching": ["*-rc"]}],
                "rules": [{"name": "web", "tags": {"matching": ["*"]}, "repositories": {"matching": ["acme/web"]}}]}}"#,
        );
        let needs = |image: &str, tag: &str| {
            scoped
                .push_needs(&push(image, &[tag], Actor::anonymous()))
                .current
        };
        assert_eq!(needs("acme/web", "v1"), [true]);
        assert_eq!(needs("acme/api", "v1"), [false], "another repository");
        assert_eq!(needs("acme/web", "v1-rc"), [false], "an exception");
        // Referrer tags (`sha256-<hex>`) are mutable by default, protected when
        // `referrer_tags` says so.
        let referrer = format!("sha256-{}", "b".repeat(64));
        assert_eq!(needs("acme/web", &referrer), [false]);
        let protected = load(
            r#"{"version": 1, "immutability": {"protect": "all", "referrer_tags": "protected"}}"#,
        );
        assert_eq!(
            protected
                .push_needs(&push("acme/web", &[&referrer], Actor::anonymous()))
                .current,
            [true]
        );
    }

    #[test]
    fn a_locked_tag_needs_its_digest_only_when_protected() {
        let policy = load(SEMVER);
        let mut request = push("acme/web", &["latest", "v1.0.0"], Actor::anonymous());
        for tag in &mut request.tags {
            tag.locked = true;
        }
        assert_eq!(policy.push_needs(&request).current, [false, true]);
    }

    #[test]
    fn malformed_names_need_nothing() {
        let policy = load(r#"{"version": 1, "immutability": {"protect": "all"}}"#);
        for request in [
            push("Acme/../web", &["v1"], Actor::anonymous()),
            push("acme/web", &["v1", "-bad"], Actor::anonymous()),
            PushRequest {
                digest: "sha256:short".into(),
                ..push("acme/web", &["v1"], Actor::anonymous())
            },
        ] {
            let needs = policy.push_needs(&request);
            assert!(needs.nothing(), "{request:?}: {needs:?}");
            assert_eq!(needs.current.len(), request.tags.len());
        }
        assert!(!policy.existence_matters("Acme/../web", &Actor::anonymous()));
    }

    const PERMISSIONS: &str = r#"{"version": 1, "immutability": {"protect": "none"},
        "permissions": {
          "repositories": {"web-app": {"write": ["user:dev"], "admin": ["user:ops"]}},
          "images": [
            {"name": "acme/web", "repository": "web-app"},
            {"pattern": "acme/web-*", "repository": "web-app"}
          ]}}"#;

    #[test]
    fn existence_matters_only_when_the_permission_check_depends_on_it() {
        let policy = load(PERMISSIONS);
        let dev = Actor::user("dev", &[]);
        let ops = Actor::user("ops", &[]);
        // A record: writers may create the image, so existence cannot matter.
        assert!(!policy.existence_matters("acme/web", &dev));
        // A pattern link: creating needs admin, writing needs write.
        assert!(policy.existence_matters("acme/web-api", &dev));
        assert!(!policy.existence_matters("acme/web-api", &ops));
        // Refused either way: said to matter (the refusal may be worded by it).
        assert!(policy.existence_matters("acme/web", &Actor::anonymous()));
        assert!(policy.existence_matters("other/image", &ops));
        // A host-resolved role under no permissions section vouches for the image.
        let none = load(r#"{"version": 1, "immutability": {"protect": "none"}}"#);
        assert!(!none.existence_matters("acme/web", &Actor::anonymous()));
        let reader = Actor {
            role: Some(Role::Read),
            ..Actor::user("r", &[])
        };
        assert!(none.existence_matters("acme/web", &reader));
        let writer = Actor {
            role: Some(Role::Write),
            ..Actor::user("w", &[])
        };
        assert!(!none.existence_matters("acme/web", &writer));
    }

    #[test]
    fn push_needs_carries_existence() {
        let policy = load(PERMISSIONS);
        let needs = policy.push_needs(&push("acme/web-api", &["v1"], Actor::user("dev", &[])));
        assert_eq!(
            needs,
            PushNeeds {
                image_exists: true,
                current: vec![false],
            }
        );
        assert_eq!(PushNeeds::all(2).current, [true, true]);
        assert!(PushNeeds::all(0).image_exists);
    }
}
