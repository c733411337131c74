//! Where Vigilo's AWS resources are: names from the environment, never from the code.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use std::sync::Arc;

use crate::DynamoTable;

pub use vigilo_app::settings::{Secret, Settings, DEFAULT_TABLE};

/// The shared SDK configuration; build once per process and derive every client from it.
#[derive(Clone, Debug)]
pub struct Aws {
    pub sdk: SdkConfig,
}

impl Aws {
    /// Standard AWS configuration, with SDK retries (jittered, bounded) for throttling
    /// and transient faults of single requests.
    pub async fn load() -> Aws {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(4))
            .load()
            .await;
        Aws { sdk }
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        // Emulators and custom endpoints serve buckets by path, not by host name.
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk).force_path_style(self.sdk.endpoint_url().is_some());
        aws_sdk_s3::Client::from_conf(conf.build())
    }

    pub fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.sdk)
    }

    pub fn ses(&self) -> aws_sdk_sesv2::Client {
        aws_sdk_sesv2::Client::new(&self.sdk)
    }

    /// Email through SES and chat through SNS, when the settings name a sender, a
    /// topic, a base URL and a link secret; `None` (no notices) otherwise.
    pub fn delivery(&self, settings: &Settings) -> Option<vigilo_app::notify::Delivery> {
        let (Some(from), Some(topic), Some(base_url), Some(secret)) =
            (&settings.mail_from, &settings.topic_arn, &settings.base_url, &settings.link_secret)
        else {
            return None;
        };
        Some(vigilo_app::notify::Delivery {
            mailer: std::sync::Arc::new(crate::notify::SesMailer::new(self.ses())),
            chat: std::sync::Arc::new(crate::notify::SnsChat::new(self.sns(), topic)),
            from: from.clone(),
            base_url: base_url.clone(),
            reply_domain: settings.reply_domain.clone(),
            link_secret: std::sync::Arc::new(secret.expose().as_bytes().to_vec()),
        })
    }

    pub fn table(&self, settings: &Settings) -> DynamoTable {
        DynamoTable::new(self.dynamodb(), &settings.table)
    }

    pub fn kms(&self) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.sdk)
    }

    /// The audit log's signer (the KMS key `VIGILO_AUDIT_KEY_ID` names) and its
    /// write-once archive (the bucket `VIGILO_ARCHIVE_BUCKET` names).
    #[allow(clippy::type_complexity)]
    pub async fn audit_keeping(
        &self,
        settings: &Settings,
    ) -> Result<(Arc<dyn vigilo_app::signer::Signer>, Arc<dyn vigilo_app::Blobs>), String> {
        let bucket = settings.archive_bucket.clone().ok_or("VIGILO_ARCHIVE_BUCKET is not set")?;
        let signer = crate::KmsSigner::load(self.kms(), &settings.audit_key_id).await.map_err(|e| e.to_string())?;
        let signer = signer.with_retired(&settings.audit_retired_key_ids).await.map_err(|e| e.to_string())?;
        let archive = crate::S3Blobs::new(self.s3(), bucket).locked_for(settings.archive_retention_days);
        Ok((Arc::new(signer), Arc::new(archive)))
    }
}
