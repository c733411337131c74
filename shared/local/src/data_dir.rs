//! The local data folder: where the table and the token secret live.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("cannot use data folder {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no Vigilo data in {0} (start `vigilo serve --data {0}` first)")]
    Missing(PathBuf),
    #[error("the key file {0} is unreadable")]
    BadSecret(PathBuf),
}

/// A data folder: `vigilo.db` (the table) and `token-secret` (HS256 key).
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + '_ {
    move |source| DataDirError::Io { path: path.to_owned(), source }
}

impl DataDir {
    /// Opens the folder, creating it if needed.
    pub fn create(root: &Path) -> Result<DataDir, DataDirError> {
        fs::create_dir_all(root).map_err(io(root))?;
        let root = fs::canonicalize(root).map_err(io(root))?;
        Ok(DataDir { root })
    }

    /// Opens a folder that must already hold a table (for offline tools).
    pub fn existing(root: &Path) -> Result<DataDir, DataDirError> {
        let dir = DataDir { root: fs::canonicalize(root).map_err(|_| DataDirError::Missing(root.to_owned()))? };
        if !dir.table_path().exists() {
            return Err(DataDirError::Missing(root.to_owned()));
        }
        Ok(dir)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where local audit checkpoints and archives are kept (the archive bucket on AWS).
    pub fn archive_path(&self) -> PathBuf {
        self.root.join("archive")
    }

    pub fn table_path(&self) -> PathBuf {
        self.root.join("vigilo.db")
    }

    /// Where notices go locally: `.eml` files for email, `.json` for chat.
    pub fn outbox_path(&self) -> PathBuf {
        self.root.join("outbox")
    }

    /// The HS256 secret for local tokens.
    pub fn token_secret(&self) -> Result<Vec<u8>, DataDirError> {
        self.secret("token-secret")
    }

    /// The key that signs decision links.
    pub fn link_secret(&self) -> Result<Vec<u8>, DataDirError> {
        self.secret("link-secret")
    }

    /// A secret of 32 random bytes, made on first use and kept readable by the owner only.
    fn secret(&self, name: &str) -> Result<Vec<u8>, DataDirError> {
        let path = self.root.join(name);
        let text = create_private(&path, || {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
            Ok(STANDARD.encode(key).into_bytes())
        })?;
        let text = String::from_utf8(text).map_err(|_| DataDirError::BadSecret(path.clone()))?;
        STANDARD.decode(text.trim()).ok().filter(|k| k.len() >= 32).ok_or(DataDirError::BadSecret(path))
    }

    /// The key that signs audit checkpoints, made on first start, with the public
    /// halves of the keys it replaced (`audit-keys-retired/*.pem`).
    pub fn audit_signer(&self) -> Result<crate::key_file::KeyFileSigner, DataDirError> {
        crate::key_file::KeyFileSigner::open_or_create(self.audit_key_path())?.with_retired(&self.retired_keys_path())
    }

    pub fn audit_key_path(&self) -> PathBuf {
        self.root.join("audit-signing-key.pem")
    }

    /// Where a rotated audit key's public half is kept.
    pub fn retired_keys_path(&self) -> PathBuf {
        self.root.join("audit-keys-retired")
    }
}

/// The contents of the file at `path`; when there is none, `make`'s, written to a new
/// file readable by its owner only. Two processes starting at once agree on one.
pub(crate) fn create_private(
    path: &Path,
    make: impl Fn() -> std::io::Result<Vec<u8>>,
) -> Result<Vec<u8>, DataDirError> {
    loop {
        match fs::read(path) {
            Ok(bytes) if !bytes.is_empty() => return Ok(bytes),
            Ok(_) => return Err(DataDirError::BadSecret(path.to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(DataDirError::Io { path: path.to_owned(), source: e }),
        }
        let bytes = make().map_err(io(path))?;
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut f) => {
                f.write_all(&bytes).map_err(io(path))?;
                f.sync_all().map_err(io(path))?;
                return Ok(bytes);
            }
            // Another process made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(DataDirError::Io { path: path.to_owned(), source: e }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_made_once_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::create(&tmp.path().join("data")).unwrap();
        let a = dir.token_secret().unwrap();
        let b = DataDir::create(&tmp.path().join("data")).unwrap().token_secret().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(tmp.path().join("data/token-secret")).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the secret is private to its owner");
        }
    }

    #[test]
    fn offline_tools_refuse_an_empty_folder() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(DataDir::existing(tmp.path()), Err(DataDirError::Missing(_))));
        assert!(matches!(DataDir::existing(&tmp.path().join("nope")), Err(DataDirError::Missing(_))));
    }
}
