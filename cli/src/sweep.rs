//! `vigilo sweep NAME --data DIR`: runs one sweep once, as its schedule would, and
//! prints its report as JSON: for operators (run the freeze sweep now, after filing a
//! window) and for tests that need a sweep at a moment of their choosing.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use vigilo_app::services::sweeps::Sweep;
use vigilo_app::{Settings, SystemClock, Vigilo};

use crate::backend::{self, Backend};

pub fn run(name: &str, data: &Path, backend: Backend) -> Result<ExitCode, String> {
    let sweep =
        Sweep::parse(name).ok_or_else(|| format!("no sweep named {name:?}; the sweeps are {}", Sweep::names()))?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let settings = Settings::from_env();
        let sender = Arc::new(vigilo_http::outbound::HttpSender::new()?);
        // Locally the notices go to the data folder's outbox and checkpoints to its
        // archive; on AWS through SES and SNS (when configured) and to the archive bucket.
        let app = match backend {
            Backend::Local => {
                let dir = vigilo_local::DataDir::existing(data).map_err(|e| e.to_string())?;
                let (table, _) = backend::open(backend, dir.root(), false).await?;
                let base = settings.base_url.clone().unwrap_or_else(|| "http://127.0.0.1:3000".into());
                Vigilo::new(table, Arc::new(SystemClock))
                    .with_delivery(crate::serve::local_delivery(&dir, &settings, &base)?)
            }
            Backend::Aws => {
                let aws = vigilo_aws::Aws::load().await;
                let mut app = Vigilo::new(Arc::new(aws.table(&settings)), Arc::new(SystemClock));
                if let Some(d) = aws.delivery(&settings) {
                    app = app.with_delivery(d);
                }
                app
            }
        };
        let (signer, archive) = crate::backend::audit_keeping(backend, data).await?;
        let app = app.with_webhooks(sender).with_audit_keeping(signer, archive);
        let report = app.run_sweep(sweep).await.map_err(|e| format!("the {} sweep failed: {e}", sweep.name()))?;
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
        // A sweep that passed over a workspace it could not sweep says so in its report
        // and in its exit status.
        let failed = ["failed", "failed_workspaces"]
            .iter()
            .any(|k| report.get(k).and_then(|v| v.as_array()).is_some_and(|a| !a.is_empty()));
        Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
    })
}
