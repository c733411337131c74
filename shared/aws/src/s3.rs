//! The blob port on S3: write-once objects in a bucket (the archive bucket is under
//! Object Lock, so an object, once written, outlives any attempt to delete it).

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use vigilo_app::blobs::{check_folder, check_key, BlobError, Blobs};

#[derive(Debug, Clone)]
pub struct S3Blobs {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Blobs {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> S3Blobs {
        S3Blobs { client, bucket: bucket.into() }
    }
}

fn backend(e: impl std::fmt::Debug) -> BlobError {
    BlobError::Backend(format!("{e:?}"))
}

#[async_trait]
impl Blobs for S3Blobs {
    async fn put_new(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), BlobError> {
        check_key(key)?;
        if self.client.head_object().bucket(&self.bucket).key(key).send().await.is_ok() {
            return Err(BlobError::Exists(key.to_owned()));
        }
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            // S3 refuses the write if the key appeared since the check above.
            .if_none_match("*")
            .body(ByteStream::from(body))
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
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
