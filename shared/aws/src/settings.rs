//! Where Vigilo's AWS resources are: names from the environment, never from the code.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use crate::DynamoTable;

/// The names of Vigilo's resources, as the template passes them to every function.
/// `Debug` shows whether the link secret is set, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// `VIGILO_TABLE`: the DynamoDB table.
    pub table: String,
    /// `VIGILO_EVIDENCE_BUCKET`: evidence packs.
    pub evidence_bucket: Option<String>,
    /// `VIGILO_ARCHIVE_BUCKET`: audit archives, under Object Lock.
    pub archive_bucket: Option<String>,
    /// `VIGILO_TOPIC_ARN`: approver notifications.
    pub topic_arn: Option<String>,
    /// `VIGILO_MAIL_FROM`: the sender of every email (an SES-verified identity).
    pub mail_from: Option<String>,
    /// `VIGILO_BASE_URL`: the API's public URL, where decision links point.
    pub base_url: Option<String>,
    /// `VIGILO_REPLY_DOMAIN`: the SES receiving domain for email replies.
    pub reply_domain: Option<String>,
    /// `VIGILO_LINK_SECRET`: the key that signs decision links (from a secret the
    /// template references).
    pub link_secret: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("table", &self.table)
            .field("evidence_bucket", &self.evidence_bucket)
            .field("archive_bucket", &self.archive_bucket)
            .field("topic_arn", &self.topic_arn)
            .field("mail_from", &self.mail_from)
            .field("base_url", &self.base_url)
            .field("reply_domain", &self.reply_domain)
            .field("link_secret", &self.link_secret.as_ref().map(|_| "(redacted)"))
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0} is not set; it names the DynamoDB table to use")]
pub struct MissingSetting(&'static str);

impl Settings {
    pub fn from_env() -> Result<Settings, MissingSetting> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get`, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, MissingSetting> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        Ok(Settings {
            table: get("VIGILO_TABLE").ok_or(MissingSetting("VIGILO_TABLE"))?,
            evidence_bucket: get("VIGILO_EVIDENCE_BUCKET"),
            archive_bucket: get("VIGILO_ARCHIVE_BUCKET"),
            topic_arn: get("VIGILO_TOPIC_ARN"),
            mail_from: get("VIGILO_MAIL_FROM"),
            base_url: get("VIGILO_BASE_URL"),
            reply_domain: get("VIGILO_REPLY_DOMAIN"),
            link_secret: get("VIGILO_LINK_SECRET"),
        })
    }
}

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
            link_secret: std::sync::Arc::new(secret.as_bytes().to_vec()),
        })
    }

    pub fn table(&self, settings: &Settings) -> DynamoTable {
        DynamoTable::new(self.dynamodb(), &settings.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_must_be_named_and_blank_values_count_as_unset() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert!(Settings::from_lookup(env(&[])).is_err());
        assert!(Settings::from_lookup(env(&[("VIGILO_TABLE", " ")])).is_err());
        let s = Settings::from_lookup(env(&[("VIGILO_TABLE", "t"), ("VIGILO_ARCHIVE_BUCKET", "a")])).unwrap();
        assert_eq!(s.table, "t");
        assert_eq!(s.archive_bucket.as_deref(), Some("a"));
        assert_eq!(s.topic_arn, None);
    }

    #[test]
    fn debug_never_shows_the_link_secret() {
        let env = |k: &str| match k {
            "VIGILO_TABLE" => Some("t".to_owned()),
            "VIGILO_LINK_SECRET" => Some("hunter2-hunter2-hunter2".to_owned()),
            _ => None,
        };
        let shown = format!("{:?}", Settings::from_lookup(env).unwrap());
        assert!(!shown.contains("hunter2") && shown.contains("(redacted)"), "{shown}");
    }
}
