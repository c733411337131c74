//! Local adapters, so the whole service runs on a laptop with no AWS account:
//! SQLite for the table, folders for blobs and for outgoing email and chat, and key
//! files for the token and link secrets and the audit signing key.

pub mod data_dir;
pub mod folder;
pub mod key_file;
pub mod outbox;
pub mod sqlite;

pub use data_dir::DataDir;
pub use folder::FolderBlobs;
pub use key_file::KeyFileSigner;
pub use outbox::OutboxFolder;
pub use sqlite::SqliteTable;
