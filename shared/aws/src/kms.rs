//! The checkpoint signer on AWS: a KMS key (`ECC_NIST_P256`, `ECDSA_SHA_256`). Its
//! private half never leaves KMS, and its key policy lets only the function that writes
//! checkpoints sign; every other function reads the public half.

use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, MessageType, SigningAlgorithmSpec};
use vigilo_app::signer::{SignError, Signer};
use vigilo_domain::checkpoint::PublicKey;

/// The name on signature lines the KMS key makes.
pub const KMS_KEY_NAME: &str = "vigilo.audit.kms";

#[derive(Debug, Clone)]
pub struct KmsSigner {
    client: aws_sdk_kms::Client,
    key_id: String,
    public: PublicKey,
    retired: Vec<PublicKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    #[error("cannot read the audit signing key {key}: {reason}")]
    Unreadable { key: String, reason: String },
    #[error("the audit signing key {key} is {spec}, not an ECC_NIST_P256 signing key")]
    WrongKind { key: String, spec: String },
}

impl KmsSigner {
    /// Reads the key's public half (once, at start) and checks its kind.
    pub async fn load(client: aws_sdk_kms::Client, key_id: &str) -> Result<KmsSigner, KmsError> {
        let unreadable = |reason: String| KmsError::Unreadable { key: key_id.to_owned(), reason };
        let out = client
            .get_public_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(|e| unreadable(format!("{:?}", e.into_service_error())))?;
        // `KeySpec`, or the older name of the same field, which some endpoints still
        // answer alone.
        #[allow(deprecated)]
        let older = out.customer_master_key_spec().map(|s| s.as_str().to_owned());
        let spec = out.key_spec().map(|s| s.as_str().to_owned()).or(older);
        let signs = out.signing_algorithms().contains(&SigningAlgorithmSpec::EcdsaSha256);
        if spec.as_deref() != Some(KeySpec::EccNistP256.as_str()) || !signs {
            let spec = spec.unwrap_or_else(|| "of no known spec".to_owned());
            return Err(KmsError::WrongKind { key: key_id.to_owned(), spec });
        }
        let der = out.public_key().ok_or_else(|| unreadable("no public key returned".into()))?;
        let public = PublicKey::from_der(der.as_ref()).map_err(|e| unreadable(e.to_string()))?;
        Ok(KmsSigner { client, key_id: key_id.to_owned(), public, retired: Vec::new() })
    }

    /// Also accepts notes signed by the keys `retired` names (the keys this one
    /// replaced; only their public halves are read).
    pub async fn with_retired(mut self, retired: &[String]) -> Result<KmsSigner, KmsError> {
        for id in retired {
            let old = KmsSigner::load(self.client.clone(), id).await?;
            self.retired.push(old.public);
        }
        Ok(self)
    }
}

#[async_trait]
impl Signer for KmsSigner {
    fn key_name(&self) -> &str {
        KMS_KEY_NAME
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn retired_keys(&self) -> &[PublicKey] {
        &self.retired
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let out = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(message))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| SignError(format!("{:?}", e.into_service_error())))?;
        // KMS answers ECDSA signatures DER-encoded, as the note carries them.
        out.signature().map(|s| s.as_ref().to_vec()).ok_or_else(|| SignError("KMS returned no signature".into()))
    }
}
