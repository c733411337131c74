//! `vigilo audit verify`, `archive` and `key`: a workspace's audit log straight from
//! the data folder (or DynamoDB), its archive and its signing key.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use vigilo_app::{SystemClock, Vigilo};
use vigilo_domain::audit::VerifyReport;

use crate::backend::{self, Backend};

/// Chains shorter than this verify too fast for a bar to help.
const BAR_THRESHOLD: u64 = 5_000;

/// When to draw a progress bar (only ever on a terminal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Progress {
    /// On a terminal, for chains of 5,000 rows or more.
    Auto,
    /// On a terminal, whatever the chain's length.
    Always,
    Never,
}

impl Progress {
    fn wanted(self, total: u64) -> bool {
        let long_enough = match self {
            Progress::Auto => total >= BAR_THRESHOLD,
            Progress::Always => true,
            Progress::Never => false,
        };
        long_enough && std::io::stderr().is_terminal()
    }

    /// A bar over `total` steps, when one is wanted.
    pub fn bar(self, total: u64, what: &str) -> Option<ProgressBar> {
        if !self.wanted(total) {
            return None;
        }
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} {what} [{{wide_bar}}] {{pos}}/{{len}} rows, eta {{eta}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.tick();
        Some(b)
    }
}

/// Prints a verification's outcome: exit 0 when intact, 1 on a break.
pub fn print_report(report: &VerifyReport, what: &str) -> ExitCode {
    match &report.chain_break {
        None => {
            println!(
                "intact: {} rows and {} signed checkpoints verified in {what}",
                report.rows_checked, report.checkpoints_checked
            );
            if let (Some(first), Some(last)) = (&report.first_hash, &report.last_hash) {
                println!("first hash: {first}\nlast hash:  {last}");
            }
            ExitCode::SUCCESS
        }
        Some(b) => {
            println!("BROKEN: {what}, {} rows verified before the break", report.rows_checked);
            println!("row id: {}", b.row_id.as_deref().unwrap_or("(missing)"));
            println!("seq:    {}", b.seq);
            println!("reason: {} ({})", b.reason, b.detail);
            ExitCode::from(1)
        }
    }
}

/// Opens the application over a backend with its audit keeping, and finds `slug`.
pub(crate) async fn open(
    data: &Path,
    backend: Backend,
    slug: &str,
) -> Result<(Vigilo, vigilo_domain::workspace::Workspace), String> {
    let (table, storage) = backend::open(backend, data, false).await?;
    let (signer, archive) = backend::audit_keeping(backend, data).await?;
    let app = Vigilo::new(table, Arc::new(SystemClock)).with_audit_keeping(signer, archive);
    let slug = vigilo_domain::ids::Slug::parse(slug).map_err(|e| format!("--workspace {slug}: {e}"))?;
    let ws = app
        .workspace_by_slug(&slug)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no workspace {slug} in {storage}"))?;
    Ok((app, ws))
}

/// `vigilo audit archive --before`: archives now what the sweep would at that cut-off.
pub fn archive(data: &Path, backend: Backend, slug: &str, before: &str) -> Result<ExitCode, String> {
    let before: jiff::Timestamp =
        before.parse().map_err(|e| format!("--before {before}: not an RFC 3339 time ({e})"))?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let (app, ws) = open(data, backend, slug).await?;
        let summary = app.archive_workspace(&ws.id, before).await.map_err(|e| e.to_string())?;
        println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
        Ok(if summary.broken.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
    })
}

/// `vigilo audit rotate-key`: a new local signing key; the old one's public half stays
/// in the data folder, so its checkpoints still verify.
pub fn rotate_key(data: &Path) -> Result<ExitCode, String> {
    let dir = vigilo_local::DataDir::existing(data).map_err(|e| e.to_string())?;
    let (old, new) = vigilo_local::KeyFileSigner::rotate(dir.audit_key_path(), &dir.retired_keys_path())
        .map_err(|e| e.to_string())?;
    println!("the audit signing key {old} is retired; checkpoints are now signed by {new}");
    println!("give auditors the new public key (vigilo audit key) beside the old one");
    Ok(ExitCode::SUCCESS)
}

/// `vigilo audit key`: the public key that signs checkpoints, as PEM.
pub fn key(data: &Path, backend: Backend) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let (signer, _) = backend::audit_keeping(backend, data).await?;
        print!("{}", signer.public_key().pem());
        Ok(ExitCode::SUCCESS)
    })
}

pub fn verify(data: &Path, backend: Backend, slug: &str, progress: Progress) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let (app, ws) = open(data, backend, slug).await?;
        let mut bar: Option<Option<ProgressBar>> = None;
        let report = app
            .verify_chain(&ws.id, |checked, total| {
                if let Some(b) = bar.get_or_insert_with(|| progress.bar(total, "verifying")) {
                    b.set_position(checked);
                }
            })
            .await
            .map_err(|e| e.to_string())?;
        if let Some(Some(b)) = bar {
            b.finish_and_clear();
        }
        Ok(print_report(&report, &format!("workspace {slug}")))
    })
}
