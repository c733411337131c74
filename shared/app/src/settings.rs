//! Every setting Vigilo reads from its environment, read in one place: the Lambda
//! functions (the template passes them), `vigilo serve` and the CLI. Secrets are
//! [`Secret`]s, so printing the settings (or a struct holding them) never shows one.

/// The table `vigilo aws init` creates and every command uses when `VIGILO_TABLE` is
/// not set, so trying the AWS backend against an emulator needs only its endpoint.
pub const DEFAULT_TABLE: &str = "vigilo";

/// A value that must never reach a log: `Debug` says only that it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that uses it (signing, verifying).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(redacted)")
    }
}

/// The KMS alias of the checkpoint signing key when `VIGILO_AUDIT_KEY_ID` is unset.
pub const DEFAULT_AUDIT_KEY: &str = "alias/vigilo-audit";

/// Seven years, as auditors commonly ask, and a day.
pub const DEFAULT_ARCHIVE_RETENTION_DAYS: u32 = 2557;

/// The settings, each named by its environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `VIGILO_TABLE`: the DynamoDB table ([`DEFAULT_TABLE`] when unset).
    pub table: String,
    /// `VIGILO_EVIDENCE_BUCKET`: evidence packs.
    pub evidence_bucket: Option<String>,
    /// `VIGILO_ARCHIVE_BUCKET`: audit archives, under Object Lock.
    pub archive_bucket: Option<String>,
    /// `VIGILO_ARCHIVE_RETENTION_DAYS`: how long each archived object is locked
    /// (S3 Object Lock, compliance mode); [`DEFAULT_ARCHIVE_RETENTION_DAYS`] when unset.
    pub archive_retention_days: u32,
    /// `VIGILO_AUDIT_KEY_ID`: the KMS key (id, ARN or alias) that signs audit
    /// checkpoints on AWS ([`DEFAULT_AUDIT_KEY`] when unset; `vigilo aws init` makes
    /// an alias's key); locally the data folder keeps a key file.
    pub audit_key_id: String,
    /// `VIGILO_AUDIT_RETIRED_KEY_IDS`: comma-separated KMS keys that signed earlier
    /// checkpoints (before a rotation); their notes still verify, they sign no more.
    pub audit_retired_key_ids: Vec<String>,
    /// `VIGILO_INBOUND_BUCKET`: where SES stores the email replies it receives.
    pub inbound_bucket: Option<String>,
    /// `VIGILO_TOPIC_ARN`: approver notifications.
    pub topic_arn: Option<String>,
    /// `VIGILO_MAIL_FROM`: the sender of every email (an SES-verified identity).
    pub mail_from: Option<String>,
    /// `VIGILO_BASE_URL`: the API's public URL, where decision links point.
    pub base_url: Option<String>,
    /// `VIGILO_REPLY_DOMAIN`: the receiving domain for email replies.
    pub reply_domain: Option<String>,
    /// `VIGILO_LINK_SECRET`: the key that signs decision links (on AWS, from a secret
    /// the template references; locally the data folder keeps one).
    pub link_secret: Option<Secret>,
    /// `VIGILO_SLACK_SIGNING_SECRET`: verifies Slack's requests; without it, Slack
    /// actions are refused.
    pub slack_signing_secret: Option<Secret>,
    /// `VIGILO_LOG`, else `RUST_LOG`: the log filter (`info`, `debug`, `vigilo_app=debug`).
    pub log: Option<String>,
}

impl Settings {
    pub fn from_env() -> Settings {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get`, so tests need not touch the process environment.
    /// A blank value counts as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Settings {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        Settings {
            table: get("VIGILO_TABLE").unwrap_or_else(|| DEFAULT_TABLE.to_owned()),
            evidence_bucket: get("VIGILO_EVIDENCE_BUCKET"),
            archive_bucket: get("VIGILO_ARCHIVE_BUCKET"),
            audit_key_id: get("VIGILO_AUDIT_KEY_ID").unwrap_or_else(|| DEFAULT_AUDIT_KEY.to_owned()),
            audit_retired_key_ids: get("VIGILO_AUDIT_RETIRED_KEY_IDS")
                .map(|v| v.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default(),
            archive_retention_days: get("VIGILO_ARCHIVE_RETENTION_DAYS")
                .and_then(|d| d.trim().parse().ok())
                .filter(|&d| d > 0)
                .unwrap_or(DEFAULT_ARCHIVE_RETENTION_DAYS),
            inbound_bucket: get("VIGILO_INBOUND_BUCKET"),
            topic_arn: get("VIGILO_TOPIC_ARN"),
            mail_from: get("VIGILO_MAIL_FROM"),
            base_url: get("VIGILO_BASE_URL"),
            reply_domain: get("VIGILO_REPLY_DOMAIN"),
            link_secret: get("VIGILO_LINK_SECRET").map(Secret),
            slack_signing_secret: get("VIGILO_SLACK_SIGNING_SECRET").map(Secret),
            log: get("VIGILO_LOG").or_else(|| get("RUST_LOG")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn the_table_defaults_to_the_one_aws_init_creates_and_blank_values_count_as_unset() {
        assert_eq!(Settings::from_lookup(env(&[])).table, DEFAULT_TABLE);
        assert_eq!(Settings::from_lookup(env(&[("VIGILO_TABLE", " ")])).table, DEFAULT_TABLE);
        let s = Settings::from_lookup(env(&[
            ("VIGILO_TABLE", "t"),
            ("VIGILO_ARCHIVE_BUCKET", "a"),
            ("VIGILO_MAIL_FROM", ""),
        ]));
        assert_eq!((s.table.as_str(), s.archive_bucket.as_deref()), ("t", Some("a")));
        assert_eq!((s.topic_arn, s.mail_from), (None, None));
    }

    #[test]
    fn the_log_filter_prefers_vigilo_log() {
        assert_eq!(Settings::from_lookup(env(&[("RUST_LOG", "warn")])).log.as_deref(), Some("warn"));
        let both = Settings::from_lookup(env(&[("RUST_LOG", "warn"), ("VIGILO_LOG", "debug")]));
        assert_eq!(both.log.as_deref(), Some("debug"));
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let s = Settings::from_lookup(env(&[
            ("VIGILO_LINK_SECRET", "hunter2-hunter2-hunter2"),
            ("VIGILO_SLACK_SIGNING_SECRET", "8f742231b10e8888abcd99yyyzzz85a5"),
        ]));
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("8f742231"), "{shown}");
        assert_eq!(shown.matches("(redacted)").count(), 2, "{shown}");
        assert_eq!(s.link_secret.as_ref().map(Secret::expose), Some("hunter2-hunter2-hunter2"));
    }
}
