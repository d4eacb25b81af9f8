//! The gateway's replies as HTTP responses, and the proxy's own challenge.

use axum::body::Body;
use http::header::{HeaderName, HeaderValue};
use http::{Response, StatusCode};
use taglock_gateway::Reply;

/// The realm of the proxy's Basic challenge.
pub const REALM: &str = "taglock";

/// `WWW-Authenticate` on the proxy's 401s: Basic, realm `taglock`.
pub const CHALLENGE: &str = "Basic realm=\"taglock\"";

/// `reply` as a response.
pub fn response(reply: Reply) -> Response<Body> {
    let mut response = Response::new(Body::from(reply.body));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(HeaderName::from_static(name), value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;
    use taglock_gateway::Refusal;

    #[test]
    fn replies_become_responses() {
        let response = response(Refusal::unauthorized("log in").reply(Some(CHALLENGE)));
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], CHALLENGE);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }
}
