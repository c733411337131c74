//! The blob port: write-once objects (audit checkpoints and archives, evidence packs).
//! On AWS it is an S3 bucket under Object Lock; locally, a folder.

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// An object with this key already exists; archives are never overwritten.
    #[error("the object {0} already exists")]
    Exists(String),
    #[error("blob store failure: {0}")]
    Backend(String),
}

/// What storing an object came to: its SHA-256 (lowercase hex, which the store checked
/// on arrival where it can) and the version the store gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub sha256: String,
    pub version_id: Option<String>,
}

/// What the store says of an object, read back after writing it: before rows leave the
/// table, their archive must be there, whole, and locked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    /// Lowercase hex, as the store computed or checked it.
    pub sha256: Option<String>,
    /// `COMPLIANCE` under S3 Object Lock; `write-once` for a read-only local file.
    pub lock_mode: Option<String>,
    /// RFC 3339; `None` where the store keeps objects without an end date.
    pub retain_until: Option<String>,
    pub version_id: Option<String>,
}

/// Lowercase hex SHA-256 of `body`.
pub fn sha256_hex(body: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(body))
}

#[async_trait]
pub trait Blobs: Send + Sync {
    /// Stores a new object; refuses to replace an existing one.
    async fn put_new(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<Stored, BlobError>;

    /// The object's size, checksum and lock, if it exists.
    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, BlobError>;

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError>;

    /// The keys of the objects in `folder` (a key prefix ending in `/`, itself a
    /// valid key once the `/` is dropped), sorted, without those in folders below it.
    async fn list(&self, folder: &str) -> Result<Vec<String>, BlobError>;
}

/// Checks a folder as [`Blobs::list`] takes it.
pub fn check_folder(folder: &str) -> Result<(), BlobError> {
    match folder.strip_suffix('/') {
        Some(f) => check_key(f),
        None => Err(BlobError::Backend(format!("invalid folder {folder:?}"))),
    }
}

/// Keys are paths of `[A-Za-z0-9._-]` segments joined by `/`, so every adapter can
/// store them as they are (a folder must not be escaped with `..`).
pub fn check_key(key: &str) -> Result<(), BlobError> {
    let ok = !key.is_empty()
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        });
    if ok {
        Ok(())
    } else {
        Err(BlobError::Backend(format!("invalid object key {key:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_plain_relative_paths() {
        assert!(check_key("checkpoints/ws-1/00000000000000000042.json").is_ok());
        for bad in ["", "/abs", "a//b", "../x", "a/./b", "a b", "a/b/", "ä"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }
}
