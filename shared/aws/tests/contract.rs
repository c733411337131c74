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
    blobs.put_new("checkpoints/w/0.note", b"n".to_vec(), "text/plain").await.unwrap();
    blobs.put_new("checkpoints/w/deeper/3.note", b"n".to_vec(), "text/plain").await.unwrap();
    assert_eq!(blobs.list("checkpoints/w/").await.unwrap(), ["checkpoints/w/0.note", "checkpoints/w/1.json"]);
    assert!(blobs.list("checkpoints/none/").await.unwrap().is_empty());
    let head = blobs.head("checkpoints/w/1.json").await.unwrap().unwrap();
    assert_eq!((head.size, head.sha256.as_deref()), (2, Some(vigilo_app::blobs::sha256_hex(b"{}").as_str())));
    assert_eq!(blobs.head("checkpoints/w/none.json").await.unwrap(), None);
}

/// The archive under Object Lock: each object locked in compliance mode until an
/// explicit date, with its SHA-256 checked by S3 and its version recorded.
#[tokio::test]
#[ignore = "needs emulated AWS; ./scripts/test starts moto and runs it"]
async fn archived_objects_are_locked_with_their_checksum() {
    use vigilo_app::blobs::{sha256_hex, Blobs};
    let aws = emulator::aws().await;
    let bucket = format!("vigilo-locked-{}", jiff_free_suffix());
    aws.s3().create_bucket().bucket(&bucket).object_lock_enabled_for_bucket(true).send().await.unwrap();
    let blobs = vigilo_aws::S3Blobs::new(aws.s3(), &bucket).locked_for(30);
    let stored =
        blobs.put_new("segments/w/1-2.jsonl", b"{\"seq\":1}\n".to_vec(), "application/x-ndjson").await.unwrap();
    assert_eq!(stored.sha256, sha256_hex(b"{\"seq\":1}\n"));
    assert!(stored.version_id.is_some(), "a versioned bucket names the version");
    let head = blobs.head("segments/w/1-2.jsonl").await.unwrap().unwrap();
    assert_eq!(head.lock_mode.as_deref(), Some("COMPLIANCE"));
    assert_eq!(head.sha256.as_deref(), Some(stored.sha256.as_str()));
    assert_eq!(head.version_id, stored.version_id);
    let until = head.retain_until.expect("an explicit retain-until date");
    let days = until.parse::<jiff::Timestamp>().unwrap().duration_since(jiff::Timestamp::now()).as_hours() / 24;
    assert!((29..=30).contains(&days), "{until}");
    // Locked: the version cannot be deleted.
    let gone = aws
        .s3()
        .delete_object()
        .bucket(&bucket)
        .key("segments/w/1-2.jsonl")
        .set_version_id(stored.version_id.clone())
        .send()
        .await;
    assert!(gone.is_err(), "a locked version outlives a delete");
}

fn jiff_free_suffix() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// The checkpoint signer on KMS: the key's public half read once, a note signed by KMS
/// that verifies with it alone, and a key of the wrong kind refused at start.
#[tokio::test]
#[ignore = "needs emulated AWS; ./scripts/test starts moto and runs it"]
async fn kms_signs_checkpoints_that_verify_with_the_public_key() {
    use aws_sdk_kms::types::{KeySpec, KeyUsageType};
    use vigilo_app::signer::{sign_checkpoint, Signer};
    use vigilo_domain::checkpoint::{Checkpoint, PublicKey};
    let aws = emulator::aws().await;
    let kms = aws.kms();
    let key = kms.create_key().key_spec(KeySpec::EccNistP256).key_usage(KeyUsageType::SignVerify).send().await.unwrap();
    let arn = key.key_metadata().unwrap().arn().unwrap().to_owned();
    let signer = vigilo_aws::KmsSigner::load(kms.clone(), &arn).await.unwrap();
    let mut c = Checkpoint {
        workspace_id: "ws-kms".into(),
        tree_size: 3,
        root: [9u8; 32],
        head_hash: "cd".repeat(32),
        created_at: "2026-12-07T23:00:00Z".into(),
        signatures: vec![],
    };
    sign_checkpoint(&signer, &mut c).await.unwrap();
    // An auditor's copy of the key: the PEM alone.
    let pem = signer.public_key().pem();
    let parsed = Checkpoint::parse(&c.note()).unwrap();
    assert!(parsed.signed_by(&PublicKey::from_pem(&pem).unwrap()));
    assert!(c.note().contains("\u{2014} vigilo.audit.kms "));
    let forged = Checkpoint::parse(&c.note().replacen("\n3\n", "\n4\n", 1)).unwrap();
    assert!(!forged.signed_by(signer.public_key()));

    let symmetric = kms.create_key().send().await.unwrap();
    let id = symmetric.key_metadata().unwrap().key_id().to_owned();
    let refused = vigilo_aws::KmsSigner::load(kms.clone(), &id).await;
    assert!(
        matches!(
            refused,
            Err(vigilo_aws::kms::KmsError::WrongKind { .. } | vigilo_aws::kms::KmsError::Unreadable { .. })
        ),
        "{refused:?}"
    );
    assert!(vigilo_aws::KmsSigner::load(kms.clone(), "alias/none").await.is_err());

    // After a rotation the old key's notes still verify through its public half.
    let newer =
        kms.create_key().key_spec(KeySpec::EccNistP256).key_usage(KeyUsageType::SignVerify).send().await.unwrap();
    let newer = newer.key_metadata().unwrap().arn().unwrap().to_owned();
    let rotated = vigilo_aws::KmsSigner::load(kms.clone(), &newer)
        .await
        .unwrap()
        .with_retired(std::slice::from_ref(&arn))
        .await
        .unwrap();
    assert_eq!(rotated.retired_keys(), std::slice::from_ref(signer.public_key()));
    assert!(parsed.signed_by(&rotated.retired_keys()[0]) && !parsed.signed_by(rotated.public_key()));
    assert!(vigilo_aws::KmsSigner::load(kms.clone(), &newer).await.unwrap().with_retired(&[id]).await.is_err());
}
