//! The pushed tags a decision makes immutable.

/// The names of the pushed tags a decision makes immutable, in push order,
/// each once. Most pushes set one tag: held without a list, that tag costs a
/// push one allocation instead of two (a tenth of a native decision).
///
/// Every constructor keeps the form canonical (`One` for one tag, `Many` for
/// two or more), so equal lists compare equal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum ProtectedTags {
    /// No tag.
    #[default]
    None,
    /// One tag.
    One(String),
    /// Two tags or more.
    Many(Vec<String>),
}

impl ProtectedTags {
    /// The names, in push order.
    pub(crate) fn as_slice(&self) -> &[String] {
        match self {
            ProtectedTags::None => &[],
            ProtectedTags::One(tag) => std::slice::from_ref(tag),
            ProtectedTags::Many(tags) => tags,
        }
    }

    /// Adds `tag` unless it is there already; `more` is how many tags may
    /// still follow (a list is sized once).
    pub(crate) fn add(&mut self, tag: &str, more: usize) {
        match self {
            ProtectedTags::None => *self = ProtectedTags::One(tag.to_owned()),
            ProtectedTags::One(first) if first == tag => {}
            ProtectedTags::One(first) => {
                let mut tags = Vec::with_capacity(2 + more);
                tags.push(std::mem::take(first));
                tags.push(tag.to_owned());
                *self = ProtectedTags::Many(tags);
            }
            ProtectedTags::Many(tags) => {
                if !tags.iter().any(|t| t == tag) {
                    tags.push(tag.to_owned());
                }
            }
        }
    }

    /// The names as a list.
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            ProtectedTags::None => Vec::new(),
            ProtectedTags::One(tag) => vec![tag],
            ProtectedTags::Many(tags) => tags,
        }
    }
}

impl From<Vec<String>> for ProtectedTags {
    fn from(mut tags: Vec<String>) -> ProtectedTags {
        match tags.len() {
            0 => ProtectedTags::None,
            1 => tags.pop().map_or(ProtectedTags::None, ProtectedTags::One),
            _ => ProtectedTags::Many(tags),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ProtectedTags;

    #[test]
    fn each_tag_once_in_push_order_and_one_form_per_list() {
        let mut tags = ProtectedTags::default();
        assert_eq!(tags.as_slice(), [] as [String; 0]);
        tags.add("v1", 3);
        assert_eq!(tags, ProtectedTags::One("v1".to_owned()));
        tags.add("v1", 2);
        assert_eq!(tags.as_slice(), ["v1"]);
        tags.add("prod", 1);
        tags.add("v1", 0);
        tags.add("latest", 0);
        assert_eq!(tags.as_slice(), ["v1", "prod", "latest"]);
        assert_eq!(
            ProtectedTags::from(tags.clone().into_vec()),
            tags,
            "a list and back"
        );
        for list in [vec![], vec!["v1".to_owned()]] {
            let back = ProtectedTags::from(list.clone());
            assert_eq!(back.as_slice(), list.as_slice());
            assert_eq!(back.into_vec(), list);
        }
        assert_eq!(
            ProtectedTags::from(vec!["v1".to_owned()]),
            ProtectedTags::One("v1".to_owned())
        );
    }
}
