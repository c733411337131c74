//! The local outbox: each email a `.eml` file and each chat message a `.json` file, in
//! the data folder's `outbox/`, named so that they sort in sending order. A person can
//! open them with a mail client or an editor; tests read them back.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::Value;
use vigilo_app::notify::{ChatSink, Mailer, OutgoingEmail};

#[derive(Debug, Clone)]
pub struct OutboxFolder {
    dir: PathBuf,
}

impl OutboxFolder {
    pub fn new(dir: impl Into<PathBuf>) -> OutboxFolder {
        OutboxFolder { dir: dir.into() }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes a whole file under a temporary name, then renames it, so a reader never
    /// sees half a message.
    async fn write(&self, id: &str, ext: &str, bytes: Vec<u8>) -> Result<String, String> {
        let safe: String = id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        let micros = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
        let name = format!("{micros:020}-{safe}.{ext}");
        let (dir, target) = (self.dir.clone(), self.dir.join(&name));
        let tmp = dir.join(format!(".{name}.tmp"));
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &target)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{}: {e}", self.dir.display()))?;
        Ok(name)
    }
}

#[async_trait]
impl Mailer for OutboxFolder {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, String> {
        self.write(&email.id, "eml", email.raw.clone()).await
    }
}

#[async_trait]
impl ChatSink for OutboxFolder {
    async fn publish(&self, id: &str, message: &Value) -> Result<String, String> {
        let bytes = serde_json::to_vec_pretty(message).map_err(|e| e.to_string())?;
        self.write(id, "json", bytes).await
    }
}
