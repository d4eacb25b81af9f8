//! Real signed tokens for the tests that let Envoy's `jwt_authn` verify an
//! identity: an ES256 key made for one test, the JWKS that names it, and tokens
//! it signs.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

/// The issuer every test token names.
pub const ISSUER: &str = "https://ci.example.test";
/// The audience every test token names.
pub const AUDIENCE: &str = "taglock";

/// An ES256 key made for one test.
pub struct Issuer {
    key: EcdsaKeyPair,
    kid: &'static str,
}

impl Issuer {
    /// A fresh key named `kid`.
    pub fn new(kid: &'static str) -> Issuer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Issuer { key, kid }
    }

    /// The JWKS that names the key.
    pub fn jwks(&self) -> Value {
        let point = self.key.public_key().as_ref();
        assert_eq!(point.len(), 65);
        json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }] })
    }

    /// A compact JWS of `claims`, signed with the key.
    pub fn token(&self, claims: &Value) -> String {
        let header = json!({ "alg": "ES256", "typ": "JWT", "kid": self.kid });
        compact_jws(&self.key, &header, claims)
    }
}

/// The compact JWS (`header.claims.signature`, base64url) of `claims`, signed
/// ES256 with `key`: what both the Envoy JWT issuer and the registry's token
/// issuer hand out.
pub fn compact_jws(key: &EcdsaKeyPair, header: &Value, claims: &Value) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .unwrap();
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    )
}

/// The claims of a token for `sub` in `groups`, valid for ten minutes.
pub fn claims(sub: &str, groups: &[&str]) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": sub,
        "groups": groups, "iat": now, "exp": now + 600
    })
}

/// An unsigned (`alg: none`) token with `claims`.
pub fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}
