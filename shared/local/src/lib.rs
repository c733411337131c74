//! Local adapters, so the whole service runs on a laptop with no AWS account:
//! SQLite for the table, and a key file for the token-signing secret.

pub mod data_dir;
pub mod folder;
pub mod sqlite;

pub use data_dir::DataDir;
pub use folder::FolderBlobs;
pub use sqlite::SqliteTable;
