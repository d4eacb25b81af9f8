//! Reading a request: every field any request has, read from the text in one pass,
//! then sorted into the request its `operation` names.
//!
//! A request is tagged by a field that may come anywhere in the object, so serde
//! cannot pick the request's type before reading it (its internally tagged enums
//! buffer the object and lose every location). Reading all fields into one struct
//! keeps serde_json's located errors for every value (a wrong type, an unknown
//! field) and needs no intermediate `serde_json::Value`; what only the operation
//! can tell (a field another request has, a missing field) is checked afterwards
//! and located by its path.

use super::{
    Actor, DeleteRequest, DeleteTarget, MountRequest, PullRequest, PushRequest, Request, TagState,
    UploadRequest,
};
use crate::json::JsonError;
use serde::{Deserialize, Deserializer};

/// The fields of every kind of request; `None` where the text has no such field.
/// Each present field is read with its own type: `null` is refused where the
/// request's field refuses it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a request object")]
pub(crate) struct Fields {
    #[serde(default, deserialize_with = "present")]
    operation: Option<String>,
    #[serde(default, deserialize_with = "present")]
    image: Option<String>,
    #[serde(default, deserialize_with = "present")]
    digest: Option<String>,
    /// `Some(None)` for `"tags": null` (a delete whose host does not know the tags).
    #[serde(default, deserialize_with = "present")]
    tags: Option<Option<Vec<TagState>>>,
    #[serde(default, deserialize_with = "present")]
    target: Option<DeleteTarget>,
    #[serde(default, deserialize_with = "present")]
    image_exists: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    from: Option<String>,
    #[serde(default, deserialize_with = "present")]
    actor: Option<Actor>,
}

/// A field that is in the text, read as its own type (so `null` only where `T` takes it).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// What `operation` names.
#[derive(Clone, Copy)]
enum Operation {
    Push,
    Delete,
    Upload,
    Pull,
    Mount,
}

/// The operations by name, with the fields each request has (`operation` aside).
const OPERATIONS: [(&str, Operation, &[&str]); 5] = [
    (
        "push",
        Operation::Push,
        &["image", "digest", "tags", "image_exists", "actor"],
    ),
    (
        "delete",
        Operation::Delete,
        &["image", "target", "tags", "actor"],
    ),
    (
        "upload",
        Operation::Upload,
        &["image", "image_exists", "actor"],
    ),
    ("pull", Operation::Pull, &["image", "actor"]),
    (
        "mount",
        Operation::Mount,
        &["image", "from", "image_exists", "actor"],
    ),
];

impl Fields {
    /// The request the fields make for their `operation`: every field belongs to
    /// it, and every field it requires is there.
    pub(crate) fn into_request(self) -> Result<Request, JsonError> {
        let given = self.operation.as_deref().ok_or_else(|| {
            JsonError::at(
                "operation",
                "missing field `operation` (push, delete, upload, pull or mount)",
            )
        })?;
        let Some(&(name, operation, allowed)) =
            OPERATIONS.iter().find(|(known, ..)| *known == given)
        else {
            return Err(JsonError::at(
                "operation",
                format!(
                    "unknown operation `{given}`, expected one of `push`, `delete`, `upload`, `pull`, `mount`"
                ),
            ));
        };
        if let Some(field) = self.names().find(|field| !allowed.contains(field)) {
            let expected: Vec<String> = allowed.iter().map(|f| format!("`{f}`")).collect();
            return Err(JsonError::at(
                field,
                format!(
                    "unknown field `{field}` in a {name} request, expected one of `operation`, {}",
                    expected.join(", ")
                ),
            ));
        }
        let actor = self.actor.unwrap_or_default();
        let image_exists = self.image_exists.unwrap_or(false);
        let image = required(self.image, "image")?;
        Ok(match operation {
            Operation::Push => Request::Push(PushRequest {
                image,
                digest: required(self.digest, "digest")?,
                tags: match self.tags {
                    None => Vec::new(),
                    Some(Some(tags)) => tags,
                    Some(None) => {
                        return Err(JsonError::at(
                            "tags",
                            "invalid type: null, expected a sequence (a push names its tags, `[]` for none)",
                        ));
                    }
                },
                image_exists,
                actor,
            }),
            Operation::Delete => Request::Delete(DeleteRequest {
                image,
                target: required(self.target, "target")?,
                tags: self.tags.flatten(),
                actor,
            }),
            Operation::Upload => Request::Upload(UploadRequest {
                image,
                image_exists,
                actor,
            }),
            Operation::Pull => Request::Pull(PullRequest { image, actor }),
            Operation::Mount => Request::Mount(MountRequest {
                image,
                from: required(self.from, "from")?,
                image_exists,
                actor,
            }),
        })
    }

    /// The names of the fields the text has, `operation` aside.
    fn names(&self) -> impl Iterator<Item = &'static str> {
        [
            ("image", self.image.is_some()),
            ("digest", self.digest.is_some()),
            ("tags", self.tags.is_some()),
            ("target", self.target.is_some()),
            ("image_exists", self.image_exists.is_some()),
            ("from", self.from.is_some()),
            ("actor", self.actor.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
    }
}

/// A field the request cannot do without; serde's words when it is missing.
fn required<T>(value: Option<T>, field: &str) -> Result<T, JsonError> {
    value.ok_or_else(|| JsonError::at("", format!("missing field `{field}`")))
}

#[cfg(test)]
mod tests {
    use crate::request::{DeleteTarget, Request};
    use crate::requests_from_json;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn error(text: &str) -> (String, String, usize) {
        let err = Request::from_json(text).unwrap_err();
        (err.path, err.message, err.line)
    }

    #[test]
    fn each_operation_reads_its_fields_in_any_order() {
        let push = Request::from_json(&format!(
            r#"{{"tags": [{{"name": "v1"}}], "digest": "{A}", "image": "acme/web", "operation": "push"}}"#
        ))
        .unwrap();
        let Request::Push(push) = push else {
            panic!("not a push: {push:?}")
        };
        assert_eq!((push.image.as_str(), push.tags.len()), ("acme/web", 1));
        assert!(!push.image_exists);

        let delete = Request::from_json(
            r#"{"operation": "delete", "image": "a", "target": "image", "tags": null}"#,
        )
        .unwrap();
        let Request::Delete(delete) = delete else {
            panic!("not a delete: {delete:?}")
        };
        assert_eq!((delete.target, delete.tags), (DeleteTarget::Image, None));

        let mount = Request::from_json(
            r#"{"operation": "mount", "image": "a", "from": "b", "image_exists": true}"#,
        )
        .unwrap();
        assert!(matches!(mount, Request::Mount(m) if m.from == "b" && m.image_exists));
    }

    #[test]
    fn a_wrong_value_is_located_in_the_text() {
        let (path, message, line) =
            error("{\"operation\": \"push\",\n \"image\": \"a\", \"digest\": 3}");
        assert_eq!(path, "digest");
        assert!(
            message.starts_with("invalid type: integer `3`"),
            "{message}"
        );
        assert_eq!(line, 2);
        let (path, _, _) = error(r#"{"operation": "pull", "image": null}"#);
        assert_eq!(path, "image");
        let (path, message, _) = error(r#"{"operation": "pull", "image": "a", "extra": 1}"#);
        assert_eq!(path, "extra");
        assert!(message.starts_with("unknown field `extra`"), "{message}");
        // Refused, not last-wins; serde names the object that has it twice (as
        // serde_path_to_error did), the line and column point at the second one.
        let (path, message, line) =
            error("{\"operation\": \"pull\",\n \"image\": \"a\",\n \"image\": \"b\"}");
        assert_eq!(path, "");
        assert!(message.starts_with("duplicate field `image`"), "{message}");
        assert_eq!(line, 3);
    }

    #[test]
    fn the_operation_decides_which_fields_belong() {
        let (path, message, _) = error(&format!(
            r#"{{"operation": "pull", "image": "a", "digest": "{A}"}}"#
        ));
        assert_eq!(path, "digest");
        assert_eq!(
            message,
            "unknown field `digest` in a pull request, expected one of `operation`, `image`, `actor`"
        );
        let (path, message, _) = error(r#"{"operation": "push", "image": "a"}"#);
        assert_eq!(
            (path.as_str(), message.as_str()),
            ("", "missing field `digest`")
        );
        let (path, message, _) = error(&format!(
            r#"{{"operation": "push", "image": "a", "digest": "{A}", "tags": null}}"#
        ));
        assert_eq!(path, "tags");
        assert!(message.starts_with("invalid type: null"), "{message}");
    }

    #[test]
    fn the_operation_is_named_and_known() {
        let (path, message, _) = error(r#"{"image": "a"}"#);
        assert_eq!(path, "operation");
        assert!(
            message.starts_with("missing field `operation`"),
            "{message}"
        );
        let (path, message, _) = error(r#"{"operation": "pul", "image": "a"}"#);
        assert_eq!(path, "operation");
        assert!(message.starts_with("unknown operation `pul`"), "{message}");
        let (_, message, _) = error("42");
        assert!(message.contains("expected a request object"), "{message}");
    }

    #[test]
    fn an_array_of_requests_locates_errors_by_index() {
        let (requests, array) = requests_from_json(
            r#" [{"operation": "pull", "image": "a"}, {"operation": "upload", "image": "b"}]"#,
        )
        .unwrap();
        assert!(array);
        assert_eq!(requests.len(), 2);
        let err =
            requests_from_json(r#"[{"operation": "pull", "image": "a"}, {"operation": "pul"}]"#)
                .unwrap_err();
        assert_eq!(err.path, "[1].operation");
        let err =
            requests_from_json(r#"[{"operation": "pull", "image": "a"}, {"operation": "pull"}]"#)
                .unwrap_err();
        assert_eq!(
            (err.path.as_str(), err.message.as_str()),
            ("[1]", "missing field `image`")
        );
        let err = requests_from_json(r#"[{"operation": "pull", "image": 5}]"#).unwrap_err();
        assert_eq!(err.path, "[0].image");
        let (single, array) = requests_from_json(r#"{"operation": "pull", "image": "a"}"#).unwrap();
        assert_eq!((single.len(), array), (1, false));
    }

    #[test]
    fn a_tag_state_reads_its_via_and_locates_a_wrong_entry() {
        let text = format!(
            r#"{{"operation": "delete", "image": "a", "target": {{"digest": "{A}"}}, "tags": [{{"name": "v1", "current": "{A}", "via": ["{A}", "x"]}}]}}"#
        );
        let Request::Delete(delete) = Request::from_json(&text).unwrap() else {
            panic!("not a delete")
        };
        let tags = delete.tags.unwrap_or_default();
        assert_eq!(tags[0].via, vec![A.to_owned(), "x".to_owned()]);
        // Absent: empty, and an empty list is not written back.
        let text = format!(
            r#"{{"operation": "delete", "image": "a", "target": {{"digest": "{A}"}}, "tags": [{{"name": "v1", "via": []}}]}}"#
        );
        let request = Request::from_json(&text).unwrap();
        let written = serde_json::to_string(&request).unwrap();
        assert!(!written.contains("via"), "{written}");

        let (path, message, line) = error(&format!(
            "{{\"operation\": \"delete\", \"image\": \"a\", \"target\": \"image\",\n \"tags\": [{{\"name\": \"v1\", \"via\": [\"{A}\", 7]}}]}}"
        ));
        assert_eq!(path, "tags[0].via[1]");
        assert!(
            message.starts_with("invalid type: integer `7`"),
            "{message}"
        );
        assert_eq!(line, 2);
        let (path, _, _) = error(
            r#"{"operation": "delete", "image": "a", "target": "image", "tags": [{"name": "v1", "via": null}]}"#,
        );
        assert_eq!(path, "tags[0].via");
    }

    #[test]
    fn serialized_requests_read_back() {
        let text = format!(
            r#"{{"operation": "delete", "image": "a", "target": {{"digest": "{A}"}}, "tags": [{{"name": "v1", "current": "{A}", "locked": true, "via": ["{A}"]}}], "actor": {{"kind": "user", "id": "u", "groups": ["g"], "workspace_admin": true, "role": "admin"}}}}"#
        );
        let request = Request::from_json(&text).unwrap();
        let again = Request::from_json(&serde_json::to_string(&request).unwrap()).unwrap();
        assert_eq!(request, again);
    }
}
