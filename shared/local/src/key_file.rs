//! The local checkpoint signer: an ECDSA P-256 key in the data folder
//! (`audit-signing-key.pem`, PKCS#8), made on first start and readable by its owner only.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use vigilo_app::signer::{SignError, Signer};
use vigilo_domain::checkpoint::PublicKey;

use crate::data_dir::{create_private, DataDirError};

/// The name on local signature lines.
pub const LOCAL_KEY_NAME: &str = "vigilo.audit.local";

pub struct KeyFileSigner {
    key: SigningKey,
    public: PublicKey,
    retired: Vec<PublicKey>,
}

impl std::fmt::Debug for KeyFileSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFileSigner").field("key_id", &self.public.id_hex()).finish_non_exhaustive()
    }
}

fn bad(path: &Path) -> DataDirError {
    DataDirError::BadSecret(path.to_owned())
}

impl KeyFileSigner {
    /// Opens the key at `path`, making a new one if there is none.
    pub fn open_or_create(path: PathBuf) -> Result<KeyFileSigner, DataDirError> {
        let text = create_private(&path, || {
            let key = loop {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
                // All but a 2^-128 share of 32-byte strings are valid scalars.
                if let Ok(k) = SigningKey::from_bytes(&bytes.into()) {
                    break k;
                }
            };
            let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| std::io::Error::other(e.to_string()))?;
            Ok(pem.as_bytes().to_vec())
        })?;
        let text = String::from_utf8(text).map_err(|_| bad(&path))?;
        let key = SigningKey::from_pkcs8_pem(&text).map_err(|_| bad(&path))?;
        let der = key.verifying_key().to_public_key_der().map_err(|_| bad(&path))?;
        let public = PublicKey::from_der(der.as_bytes()).map_err(|_| bad(&path))?;
        Ok(KeyFileSigner { key, public, retired: Vec::new() })
    }

    /// Also accepts notes signed by the public keys (PEM files) in `folder`: the keys
    /// this one replaced.
    pub fn with_retired(mut self, folder: &Path) -> Result<KeyFileSigner, DataDirError> {
        let Ok(entries) = std::fs::read_dir(folder) else { return Ok(self) };
        let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.retain(|p| p.extension().is_some_and(|x| x == "pem"));
        paths.sort();
        for p in paths {
            let text = std::fs::read_to_string(&p).map_err(|_| bad(&p))?;
            self.retired.push(PublicKey::from_pem(&text).map_err(|_| bad(&p))?);
        }
        Ok(self)
    }

    /// Replaces the key at `path` with a new one, keeping the old public half in
    /// `retired` (named by its key id) so the notes it signed still verify. Returns the
    /// old and the new key ids.
    pub fn rotate(path: PathBuf, retired: &Path) -> Result<(String, String), DataDirError> {
        let old = KeyFileSigner::open_or_create(path.clone())?;
        let io = |p: &Path| {
            let p = p.to_owned();
            move |source| DataDirError::Io { path: p, source }
        };
        std::fs::create_dir_all(retired).map_err(io(retired))?;
        let kept = retired.join(format!("{}.pem", old.public.id_hex()));
        std::fs::write(&kept, old.public.pem()).map_err(io(&kept))?;
        let aside = path.with_extension("pem.retired");
        std::fs::rename(&path, &aside).map_err(io(&path))?;
        let new = KeyFileSigner::open_or_create(path.clone())?;
        std::fs::remove_file(&aside).map_err(io(&aside))?;
        Ok((old.public.id_hex(), new.public.id_hex()))
    }
}

#[async_trait]
impl Signer for KeyFileSigner {
    fn key_name(&self) -> &str {
        LOCAL_KEY_NAME
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn retired_keys(&self) -> &[PublicKey] {
        &self.retired
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let sig: Signature = self.key.try_sign(message).map_err(|e| SignError(e.to_string()))?;
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigilo_domain::checkpoint::Checkpoint;

    #[tokio::test]
    async fn the_key_is_made_once_private_and_signs_notes_that_verify() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("audit-signing-key.pem");
        let a = KeyFileSigner::open_or_create(path.clone()).unwrap();
        let b = KeyFileSigner::open_or_create(path.clone()).unwrap();
        assert_eq!(a.public_key(), b.public_key(), "the same key on the next start");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the key is private to its owner");
        }
        let mut c = Checkpoint {
            workspace_id: "ws".into(),
            tree_size: 0,
            root: vigilo_domain::merkle::empty_root(),
            head_hash: vigilo_domain::audit::genesis_hash("ws"),
            created_at: "2026-12-07T00:00:00Z".into(),
            signatures: vec![],
        };
        vigilo_app::signer::sign_checkpoint(&a, &mut c).await.unwrap();
        let back = Checkpoint::parse(&c.note()).unwrap();
        assert!(back.signed_by(b.public_key()));
    }

    #[test]
    fn a_damaged_key_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("audit-signing-key.pem");
        std::fs::write(&path, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
        assert!(matches!(KeyFileSigner::open_or_create(path), Err(DataDirError::BadSecret(_))));
    }
}
