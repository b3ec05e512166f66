//! armorlet-images: the node's local image store.
//!
//! This crate owns `D/images/`: content-addressed blobs (`blobs/sha256/<hex>`), the reference
//! index (`index.json`, replaced atomically), and unpacked image roots (`roots/<config hex>`),
//! shared by every container of every node on the machine. Images enter the store only through
//! [`ImageStore::load_archive`] (OCI image layout, directory or tar, or docker-archive tar),
//! which [`pull`] also uses for what it downloads from a registry; every digest is verified
//! on the way in.

mod archive;
mod error;
mod pull;
mod reference;
mod store;
mod unpack;

pub use error::ImageError;
pub use pull::{credentials_for, pull, Credential, Pulled, RegistryOptions};
pub use reference::{normalize_reference, repository};
pub use store::{ImageConfig, ImageRecord, ImageStore};
