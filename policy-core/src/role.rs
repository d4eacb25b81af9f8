//! Roles, ordered `none < read < write < admin`.

use crate::unit_enum::codes;

codes! {
    /// What an actor may do with an image, inherited from its code repository.
    #[derive(PartialOrd, Ord, Default)]
    pub enum Role {
        /// No access.
        #[default]
        None = "none",
        /// Pull images, and mount their blobs elsewhere.
        Read = "read",
        /// Push images and delete tags.
        Write = "write",
        /// Create images linked to the repository, delete manifests and images.
        Admin = "admin",
    }
}
