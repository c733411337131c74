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

#[async_trait]
pub trait Blobs: Send + Sync {
    /// Stores a new object; refuses to replace an existing one.
    async fn put_new(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), BlobError>;

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
