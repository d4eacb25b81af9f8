//! Roles, ordered `none < read < write < admin`.

use crate::unit_enum::{self, UnitEnum};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// What an actor may do with an image, inherited from its code repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// No access.
    #[default]
    None,
    /// Pull images, and mount their blobs elsewhere.
    Read,
    /// Push images and delete tags.
    Write,
    /// Create images linked to the repository, delete manifests and images.
    Admin,
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Role, D::Error> {
        const ENUM: UnitEnum = UnitEnum {
            name: "Role",
            variants: &["none", "read", "write", "admin"],
        };
        Ok(match unit_enum::deserialize(deserializer, &ENUM)? {
            0 => Role::None,
            1 => Role::Read,
            2 => Role::Write,
            _ => Role::Admin,
        })
    }
}

impl Role {
    /// The role's name as written in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
