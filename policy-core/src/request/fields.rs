//! Reading a request from JSON: its `operation` first, wherever it is in the
//! object, then the fields of that request, named once each below, read in the
//! order of the text. A field another kind of request has is an unknown field of
//! this one; every error is located by path, line and column.

use super::{
    Actor, ActorKind, DeleteRequest, DeleteTarget, MountRequest, Operation, PullRequest,
    PushRequest, Request, TagState, UploadRequest,
};
use crate::json::{JsonError, Path, Read, Value, fields};
use crate::role::Role;

/// The operations, as `operation` names them: "`push`, `delete`, …".
fn operations() -> String {
    let names: Vec<String> = Operation::ALL.iter().map(|op| format!("`{op}`")).collect();
    names.join(", ")
}

/// The `operation` of the request object `value`.
fn operation<'a>(value: &Value<'a>, at: &Path<'_>) -> Result<Operation, JsonError> {
    let path = at.key("operation");
    let Some((_, _, given)) = value
        .entries(at, "a request")?
        .find(|(key, ..)| key == "operation")
    else {
        return Err(value.error(
            &path,
            "missing field `operation` (push, delete, upload, pull or mount)",
        ));
    };
    let name = given.string(&path, &format!("one of {}", operations()))?;
    Operation::from_name(&name).ok_or_else(|| {
        given.error(
            &path,
            format!(
                "unknown operation `{name}`, expected one of {}",
                operations()
            ),
        )
    })
}

impl Read for Request {
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Request, JsonError> {
        match operation(&value, at)? {
            Operation::Push => push(value, at),
            Operation::Delete => delete(value, at),
            Operation::Upload => upload(value, at),
            Operation::Pull => pull(value, at),
            Operation::Mount => mount(value, at),
        }
    }
}

fn push(value: Value<'_>, at: &Path<'_>) -> Result<Request, JsonError> {
    fields!(value, at, "a push request", {
        operation: String,
        image: String,
        digest: String,
        tags: Vec<TagState> = Vec::new(),
        image_exists: bool = false,
        actor: Actor = Actor::default(),
    });
    let _ = operation;
    Ok(Request::Push(PushRequest {
        image,
        digest,
        tags,
        image_exists,
        actor,
    }))
}

fn delete(value: Value<'_>, at: &Path<'_>) -> Result<Request, JsonError> {
    fields!(value, at, "a delete request", {
        operation: String,
        image: String,
        target: DeleteTarget,
        // `null` when the host does not know the tags.
        tags: Option<Vec<TagState>> = None,
        actor: Actor = Actor::default(),
    });
    let _ = operation;
    Ok(Request::Delete(DeleteRequest {
        image,
        target,
        tags,
        actor,
    }))
}

fn upload(value: Value<'_>, at: &Path<'_>) -> Result<Request, JsonError> {
    fields!(value, at, "an upload request", {
        operation: String,
        image: String,
        image_exists: bool = false,
        actor: Actor = Actor::default(),
    });
    let _ = operation;
    Ok(Request::Upload(UploadRequest {
        image,
        image_exists,
        actor,
    }))
}

fn pull(value: Value<'_>, at: &Path<'_>) -> Result<Request, JsonError> {
    fields!(value, at, "a pull request", {
        operation: String,
        image: String,
        actor: Actor = Actor::default(),
    });
    let _ = operation;
    Ok(Request::Pull(PullRequest { image, actor }))
}

fn mount(value: Value<'_>, at: &Path<'_>) -> Result<Request, JsonError> {
    fields!(value, at, "a mount request", {
        operation: String,
        image: String,
        from: String,
        image_exists: bool = false,
        actor: Actor = Actor::default(),
    });
    let _ = operation;
    Ok(Request::Mount(MountRequest {
        image,
        from,
        image_exists,
        actor,
    }))
}

impl Read for TagState {
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError> {
        fields!(value, at, "a tag", {
            name: String,
            current: Option<String> = None,
            locked: bool = false,
            via: Vec<String> = Vec::new(),
        });
        Ok(TagState {
            name,
            current,
            locked,
            via,
        })
    }
}

impl Read for Actor {
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError> {
        fields!(value, at, "an actor", {
            kind: ActorKind,
            id: String = String::new(),
            groups: Vec<String> = Vec::new(),
            workspace_admin: bool = false,
            role: Option<Role> = None,
        });
        Ok(Actor {
            kind,
            id,
            groups,
            workspace_admin,
            role,
        })
    }
}

/// `"image"`, `{"tag": …}` or `{"digest": …}`.
impl Read for DeleteTarget {
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError> {
        const EXPECTING: &str = r#"`"image"`, `{"tag": …}` or `{"digest": …}`"#;
        match value.first() {
            b'"' => match &*value.string(at, EXPECTING)? {
                "image" => Ok(DeleteTarget::Image),
                other => Err(value.error(
                    at,
                    format!("unknown delete target `{other}`, expected {EXPECTING}"),
                )),
            },
            b'{' => {
                fields!(value, at, "a delete target", {
                    tag: Option<String> = None,
                    digest: Option<String> = None,
                });
                match (tag, digest) {
                    (Some(tag), None) => Ok(DeleteTarget::Tag(tag)),
                    (None, Some(digest)) => Ok(DeleteTarget::Digest(digest)),
                    _ => {
                        Err(value.error(at, "a delete target has exactly one of `tag` or `digest`"))
                    }
                }
            }
            _ => Err(value.wrong_type(at, EXPECTING)),
        }
    }
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
        assert!(message.starts_with("invalid type: number `3`"), "{message}");
        assert_eq!(line, 2);
        let (path, _, _) = error(r#"{"operation": "pull", "image": null}"#);
        assert_eq!(path, "image");
        let (path, message, _) = error(r#"{"operation": "pull", "image": "a", "extra": 1}"#);
        assert_eq!(path, "extra");
        assert!(message.starts_with("unknown field `extra`"), "{message}");
        // Refused, not last-wins; the path and the position are the second key's.
        let (path, message, line) =
            error("{\"operation\": \"pull\",\n \"image\": \"a\",\n \"image\": \"b\"}");
        assert_eq!(path, "image");
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
        assert!(
            message.contains("expected a request (an object)"),
            "{message}"
        );
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
        assert!(message.starts_with("invalid type: number `7`"), "{message}");
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
