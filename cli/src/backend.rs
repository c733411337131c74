//! Where the command's table lives: SQLite in the data folder, or DynamoDB as the
//! standard AWS configuration and `VIGILO_TABLE` say (a real account or an emulator).

use std::path::Path;
use std::sync::Arc;

use vigilo_app::Table;
use vigilo_local::{DataDir, SqliteTable};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// SQLite in the data folder.
    Local,
    /// DynamoDB: `VIGILO_TABLE` (default `vigilo`), with `AWS_REGION`, `AWS_ENDPOINT_URL` and credentials
    /// from the standard AWS configuration.
    Aws,
}

/// Opens the table. Call inside the runtime: the AWS configuration loads asynchronously.
/// Returns the table and a description of where it is. `create` makes a new local
/// data folder where there is none; without it a missing folder is an error.
pub async fn open(backend: Backend, data: &Path, create: bool) -> Result<(Arc<dyn Table>, String), String> {
    match backend {
        Backend::Local => {
            let dir = if create { DataDir::create(data) } else { DataDir::existing(data) };
            let dir = dir.map_err(|e| e.to_string())?;
            let table = SqliteTable::open(&dir.table_path()).map_err(|e| e.to_string())?;
            Ok((Arc::new(table), dir.root().display().to_string()))
        }
        Backend::Aws => {
            let settings = vigilo_aws::Settings::from_env();
            let aws = vigilo_aws::Aws::load().await;
            let where_ = format!("DynamoDB table {}", settings.table);
            Ok((Arc::new(aws.table(&settings)), where_))
        }
    }
}

/// Where the audit log's checkpoints and archive are kept and what signs them: the
/// data folder's `archive/` and key file locally.
pub async fn audit_keeping(
    backend: Backend,
    data: &Path,
) -> Result<(Arc<dyn vigilo_app::signer::Signer>, Arc<dyn vigilo_app::Blobs>), String> {
    match backend {
        Backend::Local => {
            let dir = DataDir::create(data).map_err(|e| e.to_string())?;
            let signer = dir.audit_signer().map_err(|e| e.to_string())?;
            Ok((Arc::new(signer), Arc::new(vigilo_local::FolderBlobs::new(dir.archive_path()))))
        }
        Backend::Aws => {
            let settings = vigilo_aws::Settings::from_env();
            let aws = vigilo_aws::Aws::load().await;
            aws.audit_keeping(&settings).await.map_err(|e| e.to_string())
        }
    }
}

/// `vigilo aws init`: creates the table, buckets and topic the settings name.
pub fn init(topic_name: Option<&str>) -> Result<std::process::ExitCode, String> {
    let settings = vigilo_aws::Settings::from_env();
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let aws = vigilo_aws::Aws::load().await;
        let done = vigilo_aws::provision::init(&aws, &settings, topic_name).await.map_err(|e| e.to_string())?;
        for o in done {
            let what = if o.created { "created" } else { "exists" };
            println!("{:<15} {:<8} {}", o.resource, what, o.name);
        }
        Ok(std::process::ExitCode::SUCCESS)
    })
}
