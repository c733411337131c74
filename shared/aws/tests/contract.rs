//! The storage contract, run unchanged against DynamoDB on the emulator. Without it
//! (plain `cargo test`) every case is reported as ignored; `scripts/test` runs them.

use std::sync::Arc;

use vigilo_app::store::Table;
use vigilo_aws::emulator;

async fn fresh() -> (Arc<dyn Table>, ()) {
    (Arc::new(emulator::fresh_table().await), ())
}

vigilo_app::table_contract_tests!(
    fresh().await;
    #[ignore = "needs emulated AWS; ./scripts/test starts moto and runs it"]
);

/// The blob port on S3: written once, read back, a second write refused.
#[tokio::test]
#[ignore = "needs emulated AWS; ./scripts/test starts moto and runs it"]
async fn s3_objects_are_written_once() {
    use vigilo_app::blobs::{BlobError, Blobs};
    let aws = emulator::aws().await;
    let bucket = format!("vigilo-blobs-{}", jiff_free_suffix());
    aws.s3().create_bucket().bucket(&bucket).send().await.unwrap();
    let blobs = vigilo_aws::S3Blobs::new(aws.s3(), &bucket);
    blobs.put_new("checkpoints/w/1.json", b"{}".to_vec(), "application/json").await.unwrap();
    let again = blobs.put_new("checkpoints/w/1.json", b"[]".to_vec(), "application/json").await;
    assert!(matches!(again, Err(BlobError::Exists(_))), "{again:?}");
    assert_eq!(blobs.get("checkpoints/w/1.json").await.unwrap().as_deref(), Some(&b"{}"[..]));
    assert_eq!(blobs.get("checkpoints/w/2.json").await.unwrap(), None);
    assert!(blobs.put_new("../x", vec![], "x").await.is_err());
}

fn jiff_free_suffix() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{}-{}", std::process::id(), nanos % 1_000_000_000)
}
