//! The `vigilo` command: run the change service locally, mint local tokens, and verify
//! a workspace's audit chain offline.

mod audit;
mod audit_offline;
mod backend;
mod bench;
mod bench_aws;
mod bench_conflicts;
mod bench_contention;
mod bench_limits;
mod bench_planning;
mod bench_verify;
mod mail;
mod serve;
mod sweep;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use backend::Backend;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "vigilo", version, about = "Vigilo: change management with a verifiable audit log")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole change service on this machine, on embedded storage.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000", env = "VIGILO_ADDR")]
        addr: String,
        /// Data folder (created if missing).
        #[arg(long, default_value = "./vigilo-data", env = "VIGILO_DATA")]
        data: PathBuf,
        /// Where the table lives; the data folder keeps the token secret either way.
        #[arg(long, value_enum, default_value = "local", env = "VIGILO_BACKEND")]
        backend: Backend,
    },
    /// Print a bearer token (valid 24 h) for the service running on DIR.
    Token {
        #[arg(long, default_value = "./vigilo-data", env = "VIGILO_DATA")]
        data: PathBuf,
        /// User id (the token's `sub`).
        #[arg(long)]
        sub: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Print the API's OpenAPI 3.1 document (the one `GET /openapi.json` serves), for
    /// generating clients or checking the contract without a running service.
    Openapi,
    /// Measure the service and print the figures: speed and memory on local storage,
    /// or, with --backend aws, DynamoDB requests and capacity units per operation;
    /// `--suite conflicts` measures conflict checks as a workspace grows, `--suite
    /// limits` how fast oversized requests are refused, `--suite planning` recurring
    /// freeze checks, DORA metrics and the calendar.
    Bench {
        #[arg(long, value_enum, default_value = "local")]
        backend: Backend,
        #[arg(long, value_enum, default_value = "lifecycle")]
        suite: Suite,
        /// How many changes to file (lifecycle: twice, once by one writer, once by
        /// eight racing; conflicts: the workspace's final size).
        #[arg(long, default_value_t = 2000)]
        changes: usize,
        /// Conflicts suite: how many assets the changes are spread over.
        #[arg(long, default_value_t = 5000)]
        assets: usize,
        /// Contention suite: the numbers of racing writers to run, one run each.
        #[arg(long, value_delimiter = ',', default_value = "1,16")]
        writers: Vec<usize>,
        /// Verify suite: how many audit rows the chain holds.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// Data folder to run in (default: a fresh temporary folder, removed after).
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// AWS resources.
    Aws {
        #[command(subcommand)]
        command: AwsCommand,
    },
    /// Run one sweep once, as its schedule would, and print its report as JSON (exit 1
    /// when it passed over a workspace it could not sweep).
    Sweep {
        /// checkpoint, freeze, escalate, notices, webhooks, numbers, pir or cab.
        name: String,
        #[arg(long, default_value = "./vigilo-data", env = "VIGILO_DATA")]
        data: PathBuf,
        #[arg(long, value_enum, default_value = "local", env = "VIGILO_BACKEND")]
        backend: Backend,
    },
    /// Email replies.
    Mail {
        #[command(subcommand)]
        command: MailCommand,
    },
}

#[derive(Subcommand)]
enum MailCommand {
    /// Decide from an email reply read on standard input (the local stand-in for SES
    /// inbound): exit 0 when it decided, 1 when it was refused (and audited).
    Receive {
        #[arg(long, default_value = "./vigilo-data", env = "VIGILO_DATA")]
        data: PathBuf,
        #[arg(long, value_enum, default_value = "local", env = "VIGILO_BACKEND")]
        backend: Backend,
    },
}

#[derive(Subcommand)]
enum AwsCommand {
    /// Create the table (VIGILO_TABLE, default `vigilo`), the buckets (VIGILO_EVIDENCE_BUCKET,
    /// VIGILO_ARCHIVE_BUCKET) and the topic as infra/template.yaml defines them, on the
    /// account or emulator the AWS configuration points at. Safe to run again.
    Init {
        /// Also create the approver topic with this name.
        #[arg(long, env = "VIGILO_TOPIC_NAME")]
        topic_name: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify a workspace's audit log (archive, live rows and every signed checkpoint),
    /// or with --offline an exported folder: exit 0 when intact, 1 on a break, 2 when
    /// the input is unusable.
    Verify {
        #[arg(long, default_value = "./vigilo-data", env = "VIGILO_DATA")]
        data: PathBuf,
        /// Where the table lives.
        #[arg(long, value_enum, default_value = "local", env = "VIGILO_BACKEND")]
        backend: Backend,
        /// The workspace's slug.
        #[arg(long, required_unless_present = "offline")]
        workspace: Option<String>,
        /// Verify a folder `vigilo audit export` wrote, with no store and no network.
        #[arg(long, conflicts_with = "workspace")]
        offline: Option<PathBuf>,
        /// With --offline: a public key (PEM) to check signatures with, repeated for
        /// keys rotated out; without it the folder's own, with a warning.
        #[arg(long, requires = "offline")]
        key: Vec<PathBuf>,
        /// When to show a progress bar on the terminal.
        #[arg(long, value_enum, default_value = "auto")]
        progress: audit::Progress,
    },
    /// Archive a workspace's rows made before a time now, as the nightly sweep does
    /// with the workspace's retention.
    Archive {
        #[arg(long, default_value = "./vigilo-data", env = "VIGILO_DATA")]
        data: PathBuf,
        #[arg(long, value_enum, default_value = "local", env = "VIGILO_BACKEND")]
        backend: Backend,
        #[arg(long)]
        workspace: String,
        /// RFC 3339: rows made before it are archived.
        #[arg(long)]
        before: String,
    },
    /// Write an offline copy of a workspace's audit log for an auditor: segments,
    /// live rows, checkpoints and the public key.
    Export {
        #[arg(long, default_value = "./vigilo-data", env = "VIGILO_DATA")]
        data: PathBuf,
        #[arg(long, value_enum, default_value = "local", env = "VIGILO_BACKEND")]
        backend: Backend,
        #[arg(long)]
        workspace: String,
        /// A new (or empty) folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Replace the local checkpoint signing key with a new one; the old key's public
    /// half is kept so the checkpoints it signed still verify. (On AWS: deploy a new
    /// KMS key and name the old one in `VIGILO_AUDIT_RETIRED_KEY_IDS`.)
    RotateKey {
        #[arg(long, default_value = "./vigilo-data", env = "VIGILO_DATA")]
        data: PathBuf,
    },
    /// Print the public key that signs checkpoints (PEM).
    Key {
        #[arg(long, default_value = "./vigilo-data", env = "VIGILO_DATA")]
        data: PathBuf,
        #[arg(long, value_enum, default_value = "local", env = "VIGILO_BACKEND")]
        backend: Backend,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { addr, data, backend } => serve::run(&addr, &data, backend),
        Command::Aws { command: AwsCommand::Init { topic_name } } => backend::init(topic_name.as_deref()),
        Command::Bench { suite: Suite::Conflicts, backend: Backend::Local, changes, assets, .. } => {
            bench_conflicts::run(changes, assets)
        }
        Command::Bench { suite: Suite::Conflicts, backend: Backend::Aws, .. } => {
            Err("the conflicts suite runs on local storage".into())
        }
        Command::Bench { suite: Suite::Contention, backend, writers, changes, .. } => {
            bench_contention::run(backend, &writers, changes)
        }
        Command::Bench { suite: Suite::Verify, backend: Backend::Local, rows, data, .. } => {
            bench_verify::run(rows, data)
        }
        Command::Bench { suite: Suite::Verify, backend: Backend::Aws, .. } => {
            Err("the verify suite runs on local storage".into())
        }
        Command::Bench { suite: Suite::Limits, backend: Backend::Local, .. } => bench_limits::run(),
        Command::Bench { suite: Suite::Planning, backend: Backend::Local, changes, .. } => bench_planning::run(changes),
        Command::Bench { suite: Suite::Planning, backend: Backend::Aws, .. } => {
            Err("the planning suite runs on local storage".into())
        }
        Command::Bench { suite: Suite::Limits, backend: Backend::Aws, .. } => {
            Err("the limits suite runs on local storage".into())
        }
        Command::Bench { backend: Backend::Local, changes, data, .. } => bench::run(changes, data),
        Command::Bench { backend: Backend::Aws, changes, .. } => bench_aws::run(changes),
        Command::Mail { command: MailCommand::Receive { data, backend } } => mail::receive(&data, backend),
        Command::Sweep { name, data, backend } => sweep::run(&name, &data, backend),
        Command::Openapi => {
            println!("{}", serde_json::to_string_pretty(vigilo_http::api::openapi()).unwrap_or_default());
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Token { data, sub, email, name } => token::run(&data, &sub, &email, name.as_deref()),
        Command::Audit { command: AuditCommand::Verify { offline: Some(dir), key, progress, .. } } => {
            audit_offline::verify(&dir, &key, progress)
        }
        Command::Audit { command: AuditCommand::Verify { data, backend, workspace, progress, .. } } => {
            audit::verify(&data, backend, workspace.as_deref().unwrap_or_default(), progress)
        }
        Command::Audit { command: AuditCommand::Archive { data, backend, workspace, before } } => {
            audit::archive(&data, backend, &workspace, &before)
        }
        Command::Audit { command: AuditCommand::Export { data, backend, workspace, out } } => {
            audit_offline::export(&data, backend, &workspace, &out)
        }
        Command::Audit { command: AuditCommand::Key { data, backend } } => audit::key(&data, backend),
        Command::Audit { command: AuditCommand::RotateKey { data } } => audit::rotate_key(&data),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("vigilo: {message}");
            ExitCode::from(2)
        }
    }
}

/// What `vigilo bench` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Suite {
    /// Creates, racing writers, the lifecycle, lists, verification, memory.
    Lifecycle,
    /// Items read and latency of a conflict check as the workspace grows.
    Conflicts,
    /// How fast oversized requests are refused, beside the time to parse their JSON.
    Limits,
    /// Writers racing in one workspace: throughput, latency, refusals and (on AWS)
    /// DynamoDB calls per write, beside the machine's own limit.
    Contention,
    /// Verification of an N-row chain: rows per second and peak memory, beside the
    /// machine's SHA-256 rate.
    Verify,
    /// Recurring freeze checks beside one-off ones; DORA metrics and the calendar as
    /// the workspace grows (items read and latency).
    Planning,
}
