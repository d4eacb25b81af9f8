//! `GET /v2/_catalog` through a gateway: the upstream's page, keeping only the
//! images the actor may pull.

use crate::listing;
use crate::reply::Refusal;
use policy_core::{Actor, PullRequest, Request};

/// The catalog page `body` as the actor may see it: `{"repositories":[…]}` with
/// only the images `may_pull` allows (an image it cannot decide on stays
/// hidden). The upstream's `Link` to the next page stays valid, so a filtered
/// page may be shorter than asked for.
pub fn visible(
    body: &[u8],
    actor: &Actor,
    mut may_pull: impl FnMut(&Request) -> bool,
) -> Result<Vec<u8>, Refusal> {
    let images = listing::catalog_items(body).map_err(|err| {
        Refusal::unavailable(format!("the upstream's catalog is not JSON: {err}"))
    })?;
    let mut asked = Request::Pull(PullRequest {
        image: String::new(),
        actor: actor.clone(),
    });
    let mut shown = Vec::with_capacity(images.len());
    for image in images {
        if let Request::Pull(pull) = &mut asked {
            pull.image = image;
        }
        if may_pull(&asked)
            && let Request::Pull(pull) = &mut asked
        {
            shown.push(std::mem::take(&mut pull.image));
        }
    }
    #[derive(serde::Serialize)]
    struct Page<'a> {
        repositories: &'a [String],
    }
    serde_json::to_vec(&Page {
        repositories: &shown,
    })
    .map_err(|err| Refusal::unavailable(format!("cannot write the catalog: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_the_actor_may_pull() {
        let body = br#"{"repositories":["acme/web","acme/secret"]}"#;
        let actor = Actor::user("alice", &[]);
        let page = visible(body, &actor, |asked| asked.image() != "acme/secret").unwrap();
        assert_eq!(page, br#"{"repositories":["acme/web"]}"#);
        let none = visible(body, &actor, |_| false).unwrap();
        assert_eq!(none, br#"{"repositories":[]}"#);
        let odd = br#"{"repositories":["a\"b","\u00e9\u2028"]}"#;
        let shown = visible(odd, &actor, |_| true).unwrap();
        let as_value = serde_json::json!({ "repositories": ["a\"b", "\u{e9}\u{2028}"] });
        assert_eq!(shown, serde_json::to_vec(&as_value).unwrap());
        assert_eq!(visible(b"nope", &actor, |_| true).unwrap_err().status, 503);
    }
}
