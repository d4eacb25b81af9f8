//! A loaded policy: compiled once, immutable, shared freely across threads.

use crate::document::{IdenticalRepush, Mode, PolicyDocument, Protect, Publish, ReferrerTags};
use crate::error::LoadErrors;
use crate::limits::Limits;
use crate::lint::Lint;
use crate::principal::Principal;
use crate::role::Role;
use crate::selector::Selector;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A validated, compiled policy. Build it with [`Policy::from_json`] or
/// [`Policy::load`], then evaluate as many requests as you like.
///
/// ```
/// use policy_core::{Policy, Request};
/// let policy = Policy::from_json(r#"{"version": 1, "immutability": {"protect": "all"}}"#).unwrap();
/// let request = Request::from_json(&format!(
///     r#"{{"operation": "push", "image": "acme/web", "digest": "sha256:{}",
///         "tags": [{{"name": "v1", "current": "sha256:{}"}}]}}"#,
///     "a".repeat(64), "b".repeat(64))).unwrap();
/// let decision = policy.evaluate(&request);
/// assert!(!decision.allowed());
/// assert_eq!(decision.reason().as_str(), "tag_immutable");
/// ```
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) mode: Mode,
    pub(crate) limits: Limits,
    pub(crate) immutability: Immutability,
    pub(crate) permissions: Option<Permissions>,
    pub(crate) lints: Vec<Lint>,
    pub(crate) document: PolicyDocument,
}

/// The compiled `immutability` section.
#[derive(Debug, Clone)]
pub(crate) struct Immutability {
    pub(crate) protect: Protect,
    pub(crate) rules: Vec<Rule>,
    pub(crate) exceptions: Vec<Selector>,
    pub(crate) identical_repush: IdenticalRepush,
    pub(crate) admin_delete: bool,
    pub(crate) referrer_tags: ReferrerTags,
}

/// One compiled immutability rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) name: Arc<str>,
    pub(crate) tags: Selector,
    pub(crate) repositories: Option<Selector>,
}

impl Rule {
    /// Whether the rule applies to `image`; a repository selector that cannot
    /// decide applies, so a failed search widens protection rather than narrows it.
    #[inline]
    pub(crate) fn applies_to(&self, image: &str) -> bool {
        self.repositories
            .as_ref()
            .is_none_or(|s| s.matches(image).or_match())
    }
}

/// The compiled `permissions` section.
#[derive(Debug, Clone)]
pub(crate) struct Permissions {
    pub(crate) workspace_admins: Vec<Principal>,
    pub(crate) repositories: Grants,
    pub(crate) records: BTreeMap<String, ImageLink>,
    pub(crate) patterns: Vec<(Selector, ImageLink)>,
    pub(crate) pipelines_inherit_write: bool,
}

/// Each code repository's grants, strongest role first, sorted by repository
/// name and found by binary search. A sorted list rather than a `BTreeMap`: the
/// document's map already gives the names sorted and unique, and another map
/// type would be another copy of the B-tree's code (~4 KB of the component).
#[derive(Clone, Default)]
pub(crate) struct Grants(Vec<(String, Vec<(Principal, Role)>)>);

impl Grants {
    /// Adds a repository's grants; `name` sorts after every name already added.
    pub(crate) fn push(&mut self, name: String, grants: Vec<(Principal, Role)>) {
        debug_assert!(self.0.last().is_none_or(|(last, _)| *last < name));
        self.0.push((name, grants));
    }

    /// The position of `repository`'s grants, if the policy names it: resolved
    /// once per image link at load, and read with [`Grants::at`].
    pub(crate) fn index(&self, repository: &str) -> Option<usize> {
        self.0
            .binary_search_by(|(name, _)| name.as_str().cmp(repository))
            .ok()
    }

    /// The grants at `index` (from [`Grants::index`]); none for `None`.
    #[inline]
    pub(crate) fn at(&self, index: Option<usize>) -> &[(Principal, Role)] {
        index
            .and_then(|at| self.0.get(at))
            .map_or(&[], |(_, grants)| grants.as_slice())
    }

    /// The grants of `repository`, if the policy names it.
    #[cfg(test)]
    pub(crate) fn get(&self, repository: &str) -> Option<&[(Principal, Role)]> {
        self.index(repository).map(|at| self.at(Some(at)))
    }
}

/// Shown as the map it stands for.
impl std::fmt::Debug for Grants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(name, grants)| (name, grants)))
            .finish()
    }
}

/// What the policy says about one image (a record, or a pattern's link).
#[derive(Debug, Clone)]
pub(crate) struct ImageLink {
    pub(crate) repository: Arc<str>,
    /// Where the repository's grants are in [`Permissions::repositories`]
    /// (resolved at load; `None` when the repository has no grants).
    pub(crate) grants: Option<usize>,
    pub(crate) public: bool,
    pub(crate) publish: Publish,
    pub(crate) overrides: Vec<(Principal, Role)>,
}

impl Policy {
    /// Parses, validates and compiles policy JSON. A policy with any problem is
    /// refused whole, with every problem listed and located.
    pub fn from_json(text: &str) -> Result<Policy, LoadErrors> {
        Policy::load(crate::load::parse(text)?)
    }

    /// Validates and compiles a parsed document.
    pub fn load(document: PolicyDocument) -> Result<Policy, LoadErrors> {
        crate::load::compile(document)
    }

    /// The document this policy was loaded from.
    pub fn document(&self) -> &PolicyDocument {
        &self.document
    }

    /// `enforce` or `audit`.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The limits the policy was validated against.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Warnings a careful admin wants before saving.
    pub fn lints(&self) -> &[Lint] {
        &self.lints
    }

    /// Whether the policy checks permissions (it has a `permissions` section).
    pub fn checks_permissions(&self) -> bool {
        self.permissions.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Policy>();
    }

    #[test]
    fn grants_are_found_by_name_as_in_a_map() {
        let text = r#"{"version": 1, "permissions": {"repositories": {
            "web": {"read": ["user:w"]}, "api": {"admin": ["user:a"]},
            "Zeta": {"write": ["user:z"]}, "a/b": {}, "api-2": {"read": ["user:a2"]}}}}"#;
        let policy = Policy::from_json(text).unwrap();
        let grants = &policy.permissions.as_ref().unwrap().repositories;
        let document = &policy.document().permissions.as_ref().unwrap().repositories;
        for name in document.keys() {
            assert_eq!(
                grants.get(name).map(<[_]>::len),
                Some(
                    document[name].admin.len()
                        + document[name].write.len()
                        + document[name].read.len()
                ),
                "{name}"
            );
        }
        for missing in ["", "API", "ap", "api-", "b", "web/", "zeta"] {
            assert!(grants.get(missing).is_none(), "{missing}");
        }
        assert_eq!(grants.get("api").unwrap()[0].1, Role::Admin);
        assert!(
            format!("{grants:?}").starts_with(r#"{"Zeta": [("#),
            "{grants:?}"
        );
    }
}
