//! `vigilo audit verify`: walks a workspace's chain straight from the data folder.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use vigilo_app::{SystemClock, Vigilo};

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
}

pub fn verify(data: &Path, backend: Backend, slug: &str, progress: Progress) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let (table, storage) = backend::open(backend, data, false).await?;
        let (signer, archive) = backend::audit_keeping(backend, data).await?;
        let app = Vigilo::new(table, Arc::new(SystemClock)).with_audit_keeping(signer, archive);
        let slug = vigilo_domain::ids::Slug::parse(slug).map_err(|e| format!("--workspace {slug}: {e}"))?;
        let ws = app
            .workspace_by_slug(&slug)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no workspace {slug} in {storage}"))?;
        let mut bar: Option<ProgressBar> = None;
        let report = app
            .verify_chain(&ws.id, |checked, total| {
                if bar.is_none() && progress.wanted(total) {
                    let b = ProgressBar::new(total);
                    b.set_style(
                        ProgressStyle::with_template("{spinner} verifying [{wide_bar}] {pos}/{len} rows, eta {eta}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    b.tick();
                    bar = Some(b);
                }
                if let Some(b) = &bar {
                    b.set_position(checked);
                }
            })
            .await
            .map_err(|e| e.to_string())?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        match &report.chain_break {
            None => {
                println!(
                    "intact: {} rows and {} signed checkpoints verified in workspace {slug}",
                    report.rows_checked, report.checkpoints_checked
                );
                if let (Some(first), Some(last)) = (&report.first_hash, &report.last_hash) {
                    println!("first hash: {first}\nlast hash:  {last}");
                }
                Ok(ExitCode::SUCCESS)
            }
            Some(b) => {
                println!("BROKEN: workspace {slug}, {} rows verified before the break", report.rows_checked);
                println!("row id: {}", b.row_id.as_deref().unwrap_or("(missing)"));
                println!("seq:    {}", b.seq);
                println!("reason: {} ({})", b.reason, b.detail);
                Ok(ExitCode::from(1))
            }
        }
    })
}
