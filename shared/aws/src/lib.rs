//! AWS adapters: the storage port on DynamoDB, and the provisioning of the table,
//! buckets and topic from the SAM template's own definitions (for emulators and first
//! runs). Clients are built once per process from the standard AWS configuration
//! (`AWS_REGION`, `AWS_ENDPOINT_URL`, credentials chain) and Vigilo's own settings.

pub mod attrs;
pub mod dynamo;
pub mod emulator;
pub mod kms;
pub mod large;
pub mod notify;
pub mod provision;
pub mod s3;
pub mod settings;
pub mod usage;

pub use dynamo::DynamoTable;
pub use kms::KmsSigner;
pub use s3::S3Blobs;
pub use settings::{Aws, Secret, Settings, DEFAULT_TABLE};
pub use usage::{Usage, UsageSnapshot};
