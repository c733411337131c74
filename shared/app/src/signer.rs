//! The signer port: the key that signs audit checkpoints. On AWS a KMS key whose
//! private half never leaves KMS; locally a key file in the data folder. Signing is
//! the only thing the application may do with it: nothing here can read the key.

use async_trait::async_trait;
use vigilo_domain::checkpoint::{Checkpoint, NoteSignature, PublicKey};

#[derive(Debug, thiserror::Error)]
#[error("signing failed: {0}")]
pub struct SignError(pub String);

#[async_trait]
pub trait Signer: Send + Sync {
    /// The name on the note's signature line (no spaces).
    fn key_name(&self) -> &str;

    /// The public half, as auditors are given it.
    fn public_key(&self) -> &PublicKey;

    /// The public halves of keys that signed earlier checkpoints and sign no more (a
    /// rotated key): their notes still verify.
    fn retired_keys(&self) -> &[PublicKey] {
        &[]
    }

    /// A DER-encoded ECDSA P-256 signature over SHA-256 of `message`.
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// Signs `checkpoint`'s body and appends the signature line, after checking the
/// signature the key made: a key that signs wrongly (a misconfigured KMS key, a
/// damaged key file) must never write a note auditors would reject.
pub async fn sign_checkpoint(signer: &dyn Signer, checkpoint: &mut Checkpoint) -> Result<(), SignError> {
    let signature = signer.sign(checkpoint.body().as_bytes()).await?;
    let key = signer.public_key();
    checkpoint.signatures.push(NoteSignature { key_name: signer.key_name().to_owned(), key_id: key.id, signature });
    if !checkpoint.signed_by(key) {
        checkpoint.signatures.pop();
        return Err(SignError("the key's signature does not verify with its public key".into()));
    }
    Ok(())
}
