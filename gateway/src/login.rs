//! Who must log in before anything is decided.
//!
//! Registry clients send credentials only once challenged: `docker login` and
//! skopeo ask `GET /v2/` and log in only if it answers 401. So a gateway that
//! identifies its clients challenges an anonymous API version check, and an
//! anonymous catalog (which it would filter down to what the actor may read).
//! Every request for an image goes on to the policy instead, which decides
//! what an anonymous actor may do there (`authentication_required` when the
//! answer depends on who asks).

use crate::reply::Refusal;
use crate::route::Route;
use policy_core::Actor;

/// How a gateway learns who asks, as far as telling a client to log in goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// Nobody is identified: every client is anonymous, and none is asked to
    /// log in.
    None,
    /// A user name and password, checked by the gateway or by an
    /// authenticating front that passes the identity on.
    Password,
    /// A bearer token (a JWT).
    BearerToken,
}

impl Route {
    /// The 401 refusal of a request that must come from someone known: the API
    /// version check and the catalog, asked anonymously of a gateway that
    /// identifies its clients. `None`: the request goes on.
    pub fn login_required(&self, actor: &Actor, credentials: Credentials) -> Option<Refusal> {
        let how = match credentials {
            Credentials::None => return None,
            Credentials::Password => "log in first (docker login, or skopeo --creds)",
            Credentials::BearerToken => "log in first: send a bearer token",
        };
        let challenged = matches!(self, Route::Base | Route::Catalog);
        (challenged && !actor.is_authenticated()).then(|| Refusal::unauthorized(how))
    }
}

#[cfg(test)]
mod tests {
    use super::Credentials;
    use crate::route::Route;
    use policy_core::Actor;

    fn user() -> Actor {
        Actor::user("alice", &[])
    }

    fn read() -> Route {
        Route::Read {
            image: "acme/web".to_owned(),
        }
    }

    #[test]
    fn an_identifying_gateway_challenges_anonymous_version_checks_and_catalogs() {
        for credentials in [Credentials::Password, Credentials::BearerToken] {
            for route in [Route::Base, Route::Catalog] {
                let refusal = route.login_required(&Actor::anonymous(), credentials);
                assert_eq!(refusal.map(|r| r.status), Some(401), "{route:?}");
                assert_eq!(route.login_required(&user(), credentials), None);
            }
            // The policy decides what an anonymous actor may do with an image.
            assert_eq!(
                read().login_required(&Actor::anonymous(), credentials),
                None
            );
        }
    }

    #[test]
    fn a_gateway_that_identifies_nobody_challenges_nobody() {
        for route in [Route::Base, Route::Catalog, read()] {
            assert_eq!(
                route.login_required(&Actor::anonymous(), Credentials::None),
                None
            );
        }
    }

    #[test]
    fn the_challenge_says_which_credentials_to_send() {
        let message = |credentials| {
            Route::Base
                .login_required(&Actor::anonymous(), credentials)
                .map(|r| r.message)
        };
        assert!(message(Credentials::Password).is_some_and(|m| m.contains("docker login")));
        assert!(message(Credentials::BearerToken).is_some_and(|m| m.contains("bearer token")));
    }
}
