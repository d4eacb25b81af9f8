//! What a refusal looks like to a client: taglock's OCI error on a raw reply,
//! and its sentence in a real client's error output.

use super::http::Reply;
use super::process::Output;

/// A client's error output with logrus's and JSON's quoting undone (skopeo,
/// podman and buildah quote the registry's message, sometimes twice).
pub fn unquoted(text: &str) -> String {
    let mut text = text.to_owned();
    while text.contains("\\\"") {
        text = text.replace("\\\"", "\"");
    }
    text
}

/// The message of the first OCI error of `reply` (empty when there is none).
pub fn message(reply: &Reply) -> String {
    serde_json::from_slice::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|body| body["errors"][0]["message"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `reply` is taglock's refusal (403, OCI `DENIED`) and its message carries
/// `sentence`.
pub fn assert_denied(reply: &Reply, sentence: &str) {
    assert_eq!(reply.status, 403, "{reply}");
    assert_eq!(reply.error_code().as_deref(), Some("DENIED"), "{reply}");
    assert!(
        message(reply).contains(sentence),
        "the refusal does not carry {sentence:?}: {reply}"
    );
}

/// `client` failed, and its error output carries `sentence`.
pub fn assert_refused(client: &str, output: &Output, sentence: &str) {
    assert!(
        !output.success(),
        "{client} succeeded, expected a refusal: {output}"
    );
    assert!(
        unquoted(&output.stderr).contains(sentence),
        "{client}'s error does not carry taglock's sentence\n  expected: {sentence}\n{output}"
    );
}
