//! `vigilo serve`: the union of every route group, over SQLite in a data folder or
//! over DynamoDB (`--backend aws`).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use tracing_subscriber::EnvFilter;
use vigilo_app::notify::Delivery;
use vigilo_app::{Settings, SystemClock, Vigilo};
use vigilo_http::{AppState, AuthMode};

use crate::backend::{self, Backend};

fn init_logs(settings: &Settings) {
    let filter = settings
        .log
        .as_deref()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info,tower_http=info"));
    // A closed log pipe (`vigilo serve 2>&1 | head`) must not take requests down with
    // it: by default the subscriber reports a failed write with a print that panics.
    // Readable lines for a person at a terminal; JSON for pipes, files and collectors.
    let builder =
        tracing_subscriber::fmt().log_internal_errors(false).with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if std::io::stderr().is_terminal() {
        builder.compact().try_init()
    } else {
        builder.json().with_current_span(false).try_init()
    };
}

pub fn run(addr: &str, data: &Path, backend: Backend) -> Result<ExitCode, String> {
    let settings = Settings::from_env();
    init_logs(&settings);
    let addr: SocketAddr = addr.parse().map_err(|_| format!("--addr {addr} is not an address like 127.0.0.1:3000"))?;
    // The data folder keeps the token secret even when the table is elsewhere.
    let dir = vigilo_local::DataDir::create(data).map_err(|e| e.to_string())?;
    let key = dir.token_secret().map_err(|e| e.to_string())?;

    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let (table, storage) = backend::open(backend, dir.root(), true).await?;
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        let base = settings.base_url.clone().unwrap_or(format!("http://{bound}"));
        let sender = Arc::new(vigilo_http::outbound::HttpSender::new()?);
        let signer = Arc::new(dir.audit_signer().map_err(|e| e.to_string())?);
        let archive = Arc::new(vigilo_local::FolderBlobs::new(dir.archive_path()));
        let app = Vigilo::new(table, Arc::new(SystemClock))
            .with_delivery(local_delivery(&dir, &settings, &base)?)
            .with_webhooks(sender)
            .with_audit_keeping(signer, archive);
        let slack = settings.slack_signing_secret.as_ref().map(|s| s.expose().as_bytes().to_vec());
        let state = AppState::new(app.clone(), AuthMode::Hs256 { key }).with_slack_secret(slack);
        let router = vigilo_http::router(state);
        let root = dir.root().display().to_string();
        tracing::info!(
            addr = %bound,
            data = %storage,
            "Vigilo is serving on http://{bound}; data lives in {storage}; mint a token with: vigilo token --data {root} --sub you --email you@example.com"
        );
        // After the line above, which tells a reader where the server is.
        tokio::spawn(checkpoints(app.clone()));
        tokio::spawn(archive_nightly(app.clone()));
        tokio::spawn(redeliver(app));
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service).with_graceful_shutdown(shutdown()).await.map_err(|e| e.to_string())?;
        tracing::info!("Vigilo stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Notices go to the data folder's `outbox/` (`.eml` and `.json` files); links point
/// at `base_url` (this server, unless `VIGILO_BASE_URL` says otherwise). The sender and
/// reply domain come from the settings, with local defaults.
pub fn local_delivery(dir: &vigilo_local::DataDir, settings: &Settings, base_url: &str) -> Result<Delivery, String> {
    let outbox = Arc::new(vigilo_local::OutboxFolder::new(dir.outbox_path()));
    Ok(Delivery {
        mailer: outbox.clone(),
        chat: outbox,
        from: settings.mail_from.clone().unwrap_or_else(|| "Vigilo <vigilo@localhost>".into()),
        base_url: base_url.to_owned(),
        reply_domain: Some(settings.reply_domain.clone().unwrap_or_else(|| "reply.localhost".into())),
        link_secret: Arc::new(dir.link_secret().map_err(|e| e.to_string())?),
    })
}

/// Runs one pass of a schedule in a task of its own: a panic in it (release builds
/// unwind) ends that pass alone, logged as an error, and the schedule keeps its next
/// tick, where a panic in the loop itself would end the schedule for good, silently.
pub async fn pass<T: Send + 'static>(
    name: &'static str,
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    match tokio::spawn(work).await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(sweep = name, error = %e, "a sweep pass panicked; the next tick runs again");
            None
        }
    }
}

/// The local stand-in for the freeze, review, CAB, escalation, delivery retry and number
/// schedules: every minute, scheduled changes are taken out of freezes filed over them,
/// post-implementation reviews due are reminded of, the week's CAB agenda goes out on
/// Monday mornings, steps past their SLA are escalated, whatever failed to go out is tried again, and change
/// numbers taken by requests that died are voided.
async fn redeliver(app: Vigilo) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        every.tick().await;
        let a = app.clone();
        match pass("freeze", async move { a.freeze_sweep_all().await }).await {
            Some(Ok(r)) if !r.unscheduled.is_empty() || r.warned > 0 => tracing::info!(?r, "freeze sweep"),
            Some(Err(e)) => tracing::error!(error = %e, "the freeze sweep failed"),
            _ => {}
        }
        let a = app.clone();
        match pass("pir", async move { a.review_sweep_all().await }).await {
            Some(Ok(r)) if !r.reminded.is_empty() || !r.escalated.is_empty() => tracing::info!(?r, "review sweep"),
            Some(Err(e)) => tracing::error!(error = %e, "the review sweep failed"),
            _ => {}
        }
        let a = app.clone();
        match pass("cab", async move { a.cab_sweep_all().await }).await {
            Some(Ok(r)) if !r.mailed.is_empty() => tracing::info!(?r, "CAB agendas mailed"),
            Some(Err(e)) => tracing::error!(error = %e, "the CAB agenda sweep failed"),
            _ => {}
        }
        let a = app.clone();
        match pass("escalations", async move { a.escalate_all().await }).await {
            Some(Ok(r)) if r.escalated > 0 => tracing::info!(?r, "approval steps escalated"),
            Some(Err(e)) => tracing::error!(error = %e, "approval escalation failed"),
            _ => {}
        }
        let a = app.clone();
        match pass("notices", async move { a.deliver_all().await }).await {
            Some(Ok(r)) if r.sent + r.failed > 0 => tracing::info!(?r, "notices redelivered"),
            Some(Err(e)) => tracing::error!(error = %e, "notice redelivery failed"),
            _ => {}
        }
        let a = app.clone();
        match pass("webhooks", async move { a.dispatch_all_webhooks().await }).await {
            Some(Ok(r)) if r.delivered + r.failed > 0 => tracing::info!(?r, "webhook deliveries"),
            Some(Err(e)) => tracing::error!(error = %e, "webhook delivery failed"),
            _ => {}
        }
        let a = app.clone();
        match pass("numbers", async move { a.void_all_gaps().await }).await {
            Some(Ok(r)) if r.voided > 0 => tracing::warn!(?r, "change numbers taken and never filed were voided"),
            Some(Err(e)) => tracing::error!(error = %e, "the change number sweep failed"),
            _ => {}
        }
    }
}

/// The local stand-in for the hourly checkpoint schedule: signed checkpoints into the
/// data folder's `archive/`, at start and then every hour.
async fn checkpoints(app: Vigilo) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        let a = app.clone();
        match pass("checkpoints", async move { a.checkpoint_all().await }).await {
            Some(Ok(summary)) => tracing::info!(?summary, "audit checkpoints"),
            Some(Err(e)) => tracing::error!(error = %e, "audit checkpoints failed"),
            None => {}
        }
    }
}

/// The local stand-in for the nightly archive schedule: rows past each workspace's
/// retention move to the data folder's `archive/`, at start and then every 24 hours.
async fn archive_nightly(app: Vigilo) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(24 * 3600));
    loop {
        every.tick().await;
        let a = app.clone();
        match pass("archive", async move { a.archive_all().await }).await {
            Some(Ok(summary)) if summary.rows > 0 || !summary.broken.is_empty() => {
                tracing::info!(?summary, "audit rows archived")
            }
            Some(Err(e)) => tracing::error!(error = %e, "the archive sweep failed"),
            _ => {}
        }
    }
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_pass_ends_only_itself() {
        assert_eq!(pass("ok", async { 7 }).await, Some(7));
        let panicked: Option<()> = pass("boom", async { panic!("injected") }).await;
        assert_eq!(panicked, None);
        assert_eq!(pass("after", async { "still running" }).await, Some("still running"), "the next pass runs");
    }
}
