//! Tests on emulated AWS: a fresh table per test on the emulator the environment
//! points at (`AWS_ENDPOINT_URL`, started by `scripts/test`). It refuses any endpoint
//! that is not on this machine, so a test can never touch a real account.

use crate::provision::{create_table, Blueprint};
use crate::{Aws, DynamoTable};

/// Set by `scripts/test` once the emulator is up; tests that need it are skipped
/// (reported as ignored) without it.
pub const ENABLE_VAR: &str = "VIGILO_AWS_TESTS";

/// Whether the emulated-AWS tests should run in this process.
pub fn enabled() -> bool {
    std::env::var(ENABLE_VAR).is_ok_and(|v| v == "1")
}

/// The emulator's endpoint, checked to be a loopback address.
pub fn endpoint() -> String {
    let url = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL names the emulator (scripts/test sets it)");
    let host = url.trim_start_matches("http://").split([':', '/']).next().unwrap_or_default();
    assert!(
        matches!(host, "127.0.0.1" | "localhost" | "[::1]"),
        "emulated-AWS tests run against a loopback emulator only, not {url}"
    );
    url
}

/// The SDK configuration for the emulator.
pub async fn aws() -> Aws {
    endpoint();
    Aws::load().await
}

/// A new, empty table shaped by the template, with a unique name.
pub async fn fresh_table() -> DynamoTable {
    let aws = aws().await;
    let name = format!("vigilo-test-{}", uuid::Uuid::new_v4().simple());
    let blueprint = Blueprint::deployed().expect("template");
    create_table(&aws.dynamodb(), &name, &blueprint.table).await.expect("create the test table");
    DynamoTable::new(aws.dynamodb(), name)
}

/// A new checkpoint signer and archive on the emulator: a KMS key of the template's
/// kind and a bucket under Object Lock, with unique names.
pub async fn fresh_audit_keeping() -> (crate::KmsSigner, crate::S3Blobs) {
    use aws_sdk_kms::types::{KeySpec, KeyUsageType};
    let aws = aws().await;
    let key = aws
        .kms()
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .expect("create the test signing key");
    let arn = key.key_metadata().and_then(|m| m.arn()).expect("the key's ARN").to_owned();
    let signer = crate::KmsSigner::load(aws.kms(), &arn).await.expect("the test signing key");
    let bucket = format!("vigilo-archive-{}", uuid::Uuid::new_v4().simple());
    aws.s3()
        .create_bucket()
        .bucket(&bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("create the test archive bucket");
    (signer, crate::S3Blobs::new(aws.s3(), bucket))
}
