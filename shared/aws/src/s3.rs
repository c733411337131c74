//! The blob port on S3: write-once objects in a bucket (the archive bucket is under
//! Object Lock, so an object, once written, outlives any attempt to delete it).

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ObjectLockMode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use vigilo_app::blobs::{check_folder, check_key, sha256_hex, BlobError, Blobs, ObjectHead, Stored};

#[derive(Debug, Clone)]
pub struct S3Blobs {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// Object Lock retention each new object is given, in days (compliance mode).
    retain_days: Option<u32>,
}

impl S3Blobs {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> S3Blobs {
        S3Blobs { client, bucket: bucket.into(), retain_days: None }
    }

    /// Locks every new object in compliance mode until `days` from its writing: an
    /// explicit date on each object, whatever the bucket's default says.
    pub fn locked_for(mut self, days: u32) -> S3Blobs {
        self.retain_days = Some(days);
        self
    }
}

fn hex_of_base64(b64: &str) -> Option<String> {
    STANDARD.decode(b64).ok().filter(|b| b.len() == 32).map(hex::encode)
}

fn backend(e: impl std::fmt::Debug) -> BlobError {
    BlobError::Backend(format!("{e:?}"))
}

#[async_trait]
impl Blobs for S3Blobs {
    async fn put_new(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<Stored, BlobError> {
        check_key(key)?;
        if self.client.head_object().bucket(&self.bucket).key(key).send().await.is_ok() {
            return Err(BlobError::Exists(key.to_owned()));
        }
        let sha256 = sha256_hex(&body);
        let digest = hex::decode(&sha256).map_err(backend)?;
        let mut put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            // S3 refuses the body unless it hashes to this, and keeps it for HeadObject.
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(STANDARD.encode(digest))
            // S3 refuses the write if the key appeared since the check above.
            .if_none_match("*");
        if let Some(days) = self.retain_days {
            let until = std::time::SystemTime::now() + std::time::Duration::from_secs(u64::from(days) * 86_400);
            put = put
                .object_lock_mode(ObjectLockMode::Compliance)
                .object_lock_retain_until_date(aws_sdk_s3::primitives::DateTime::from(until));
        }
        match put.body(ByteStream::from(body)).send().await {
            Ok(out) => Ok(Stored { sha256, version_id: out.version_id().map(str::to_owned) }),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {
                Err(BlobError::Exists(key.to_owned()))
            }
            Err(e) => Err(backend(e.into_service_error())),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        check_key(key)?;
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Some(out.body.collect().await.map_err(backend)?.into_bytes().to_vec())),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(backend(e.into_service_error())),
        }
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, BlobError> {
        check_key(key)?;
        let out =
            self.client.head_object().bucket(&self.bucket).key(key).checksum_mode(ChecksumMode::Enabled).send().await;
        match out {
            Ok(h) => Ok(Some(ObjectHead {
                size: h.content_length().unwrap_or(0).max(0) as u64,
                sha256: h.checksum_sha256().and_then(hex_of_base64),
                lock_mode: h.object_lock_mode().map(|m| m.as_str().to_owned()),
                retain_until: h
                    .object_lock_retain_until_date()
                    .and_then(|d| d.fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime).ok()),
                version_id: h.version_id().map(str::to_owned),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => Err(backend(e.into_service_error())),
        }
    }

    async fn list(&self, folder: &str) -> Result<Vec<String>, BlobError> {
        check_folder(folder)?;
        let mut keys = Vec::new();
        let mut pages =
            self.client.list_objects_v2().bucket(&self.bucket).prefix(folder).delimiter("/").into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| backend(e.into_service_error()))?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        }
        keys.sort();
        Ok(keys)
    }
}
