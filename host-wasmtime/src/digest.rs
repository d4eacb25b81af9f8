//! sha256 digests of components, as hex and as the `sha256:<hex>` notation.

use crate::error::HostError;
use sha2::{Digest, Sha256};

/// The sha256 of `bytes`, as 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Normalises an expected digest: `sha256:<hex>` or `<hex>`, 64 hex digits, any case.
pub(crate) fn parse_expected(expected: &str) -> Result<String, HostError> {
    let trimmed = expected.trim();
    let hex = trimmed.strip_prefix("sha256:").unwrap_or(trimmed);
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex.to_ascii_lowercase())
    } else {
        Err(HostError::InvalidDigest(expected.to_owned()))
    }
}

/// Refuses `bytes` unless their sha256 is `expected` (already normalised).
pub(crate) fn verify(bytes: &[u8], expected: &str) -> Result<String, HostError> {
    let actual = sha256_hex(bytes);
    if actual == expected {
        Ok(actual)
    } else {
        Err(HostError::DigestMismatch {
            expected: expected.to_owned(),
            actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_notations() {
        let hex = "AB".repeat(32);
        assert_eq!(
            parse_expected(&format!("sha256:{hex}")).unwrap(),
            "ab".repeat(32)
        );
        assert_eq!(parse_expected(&hex).unwrap(), "ab".repeat(32));
        assert!(parse_expected("sha256:abc").is_err());
        assert!(parse_expected(&"g".repeat(64)).is_err());
    }

    #[test]
    fn hex_of_empty_input() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
