//! The blob port on a folder: each object a file, written once. A new object is
//! written to a temporary file and then linked into place, which fails if the name is
//! taken: no object is ever replaced or seen half-written.

use std::path::PathBuf;

use async_trait::async_trait;
use vigilo_app::blobs::{check_folder, check_key, sha256_hex, BlobError, Blobs, ObjectHead, Stored};

#[derive(Debug, Clone)]
pub struct FolderBlobs {
    root: PathBuf,
}

impl FolderBlobs {
    pub fn new(root: impl Into<PathBuf>) -> FolderBlobs {
        FolderBlobs { root: root.into() }
    }
}

fn backend(e: impl std::fmt::Display) -> BlobError {
    BlobError::Backend(e.to_string())
}

#[async_trait]
impl Blobs for FolderBlobs {
    async fn put_new(&self, key: &str, body: Vec<u8>, _content_type: &str) -> Result<Stored, BlobError> {
        check_key(key)?;
        let path = self.root.join(key);
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let dir = path.parent().ok_or_else(|| backend("no parent folder"))?;
            std::fs::create_dir_all(dir).map_err(backend)?;
            let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(backend)?;
            tmp.write_all(&body).map_err(backend)?;
            // Read-only before it is linked into place: never seen writable under its name.
            let mut perms = tmp.as_file().metadata().map_err(backend)?.permissions();
            perms.set_readonly(true);
            tmp.as_file().set_permissions(perms).map_err(backend)?;
            tmp.as_file().sync_all().map_err(backend)?;
            match std::fs::hard_link(tmp.path(), &path) {
                Ok(()) => Ok(Stored { sha256: sha256_hex(&body), version_id: None }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(BlobError::Exists(key)),
                Err(e) => Err(backend(e)),
            }
        })
        .await
        .map_err(backend)?
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        check_key(key)?;
        match tokio::fs::read(self.root.join(key)).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, BlobError> {
        check_key(key)?;
        let path = self.root.join(key);
        let meta = match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(backend(e)),
        };
        let body = tokio::fs::read(&path).await.map_err(backend)?;
        Ok(Some(ObjectHead {
            size: meta.len(),
            sha256: Some(sha256_hex(&body)),
            lock_mode: meta.permissions().readonly().then(|| "write-once".to_owned()),
            retain_until: None,
            version_id: None,
        }))
    }

    async fn list(&self, folder: &str) -> Result<Vec<String>, BlobError> {
        check_folder(folder)?;
        let mut entries = match tokio::fs::read_dir(self.root.join(folder)).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(backend(e)),
        };
        let mut keys = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(backend)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Objects only: not folders, nor a write's temporary file (`.tmp…`).
            let key = format!("{folder}{name}");
            if entry.file_type().await.map_err(backend)?.is_file() && !name.starts_with('.') && check_key(&key).is_ok()
            {
                keys.push(key);
            }
        }
        keys.sort();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn objects_are_written_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FolderBlobs::new(dir.path());
        blobs.put_new("a/b.json", b"one".to_vec(), "application/json").await.unwrap();
        assert!(matches!(blobs.put_new("a/b.json", b"two".to_vec(), "x").await, Err(BlobError::Exists(_))));
        assert_eq!(blobs.get("a/b.json").await.unwrap().as_deref(), Some(&b"one"[..]));
        let head = blobs.head("a/b.json").await.unwrap().unwrap();
        assert_eq!((head.size, head.sha256.as_deref()), (3, Some(sha256_hex(b"one").as_str())));
        assert_eq!(head.lock_mode.as_deref(), Some("write-once"), "written read-only");
        assert_eq!(blobs.head("a/none.json").await.unwrap(), None);
        assert_eq!(blobs.get("a/c.json").await.unwrap(), None);
        assert!(blobs.put_new("../escape", vec![], "x").await.is_err());
        let leftovers = std::fs::read_dir(dir.path().join("a")).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file stays behind");
        blobs.put_new("a/a.note", b"x".to_vec(), "text/plain").await.unwrap();
        blobs.put_new("a/deeper/c.note", b"x".to_vec(), "text/plain").await.unwrap();
        assert_eq!(blobs.list("a/").await.unwrap(), ["a/a.note", "a/b.json"]);
        assert!(blobs.list("none/").await.unwrap().is_empty());
        assert!(blobs.list("a").await.is_err() && blobs.list("../").await.is_err());
    }
}
