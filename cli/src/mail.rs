//! `vigilo mail receive --data DIR < message.eml`: the local stand-in for SES inbound.
//! The reply is checked and decided exactly as the replies function does on AWS; the
//! mail checks come from the message's own `Authentication-Results` header.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;
use vigilo_app::services::links::LinkOutcome;
use vigilo_app::{RequestInfo, SystemClock, Vigilo};

use crate::backend::{self, Backend};

/// The largest message read (SES's own limit for receiving is 40 MB).
const MAX_MESSAGE: u64 = 40 * 1024 * 1024;

pub fn receive(data: &Path, backend: Backend) -> Result<ExitCode, String> {
    let mut raw = Vec::new();
    std::io::stdin().take(MAX_MESSAGE).read_to_end(&mut raw).map_err(|e| format!("reading the message: {e}"))?;
    let dir = vigilo_local::DataDir::existing(data).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let (table, _) = backend::open(backend, dir.root(), false).await?;
        let settings = vigilo_app::Settings::from_env();
        let base = settings.base_url.clone().unwrap_or_else(|| "http://127.0.0.1:3000".into());
        let app = Vigilo::new(table, Arc::new(SystemClock))
            .with_delivery(crate::serve::local_delivery(&dir, &settings, &base)?);
        let request = RequestInfo { channel: Some("email".into()), ..RequestInfo::default() };
        let outcome = app.receive_reply(&raw, None, request).await.map_err(|e| e.to_string())?;
        Ok(match outcome {
            LinkOutcome::Decided { change, decision } => {
                let out = json!({"decided": decision, "change": change.number, "status": change.status});
                println!("{out}");
                ExitCode::SUCCESS
            }
            LinkOutcome::Refused(reason) => {
                println!("{}", json!({"refused": reason.as_str()}));
                ExitCode::from(1)
            }
        })
    })
}
