//! Creates Vigilo's table, buckets and topic from the SAM template's own resource
//! definitions, for emulators and first runs: the template is the one description of
//! the table's keys and indexes, so the two cannot drift apart.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, Projection, ProjectionType, ScalarAttributeType, StreamSpecification,
    StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, DefaultRetention,
    ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule,
    PublicAccessBlockConfiguration, VersioningConfiguration,
};
use serde::Deserialize;
use serde_norway::Value;

use crate::settings::{Aws, Settings};

/// The SAM template, as deployed.
pub const TEMPLATE: &str = include_str!("../../../infra/template.yaml");

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("the template is unreadable: {0}")]
    Template(String),
    #[error("{resource}: {message}")]
    Aws { resource: String, message: String },
}

fn aws_err(resource: &str, e: impl std::fmt::Debug) -> ProvisionError {
    ProvisionError::Aws { resource: resource.to_owned(), message: format!("{e:?}") }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDef {
    pub attribute_name: String,
    pub attribute_type: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct KeyDef {
    pub attribute_name: String,
    pub key_type: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectionDef {
    pub projection_type: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct IndexDef {
    pub index_name: String,
    pub key_schema: Vec<KeyDef>,
    pub projection: ProjectionDef,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TtlDef {
    pub attribute_name: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDef {
    pub stream_view_type: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct PitrDef {
    pub point_in_time_recovery_enabled: bool,
}

/// The `Table` resource's properties that shape the table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TableDef {
    pub attribute_definitions: Vec<AttributeDef>,
    pub key_schema: Vec<KeyDef>,
    pub global_secondary_indexes: Vec<IndexDef>,
    pub time_to_live_specification: Option<TtlDef>,
    pub stream_specification: Option<StreamDef>,
    pub point_in_time_recovery_specification: Option<PitrDef>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct RetentionDef {
    mode: String,
    days: i32,
}

/// What the template says about each resource `vigilo aws init` creates.
#[derive(Debug, Clone, PartialEq)]
pub struct Blueprint {
    pub table: TableDef,
    /// Object Lock default retention of the archive bucket: (mode, days).
    pub archive_retention: (String, i32),
}

/// `!Ref Parameter` becomes the parameter's default; other intrinsics stay tagged.
fn resolve_refs(v: Value, params: &Value) -> Value {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => {
            let name = t.value.as_str().unwrap_or_default();
            params.get(name).and_then(|p| p.get("Default")).cloned().unwrap_or(Value::Tagged(t))
        }
        Value::Mapping(m) => Value::Mapping(m.into_iter().map(|(k, v)| (k, resolve_refs(v, params))).collect()),
        Value::Sequence(s) => Value::Sequence(s.into_iter().map(|v| resolve_refs(v, params)).collect()),
        other => other,
    }
}

impl Blueprint {
    pub fn from_template(text: &str) -> Result<Blueprint, ProvisionError> {
        let bad = |m: &str| ProvisionError::Template(m.to_owned());
        let doc: Value = serde_norway::from_str(text).map_err(|e| bad(&e.to_string()))?;
        let params = doc.get("Parameters").cloned().unwrap_or(Value::Null);
        let props = |name: &str| {
            doc.get("Resources")
                .and_then(|r| r.get(name))
                .and_then(|r| r.get("Properties"))
                .cloned()
                .map(|p| resolve_refs(p, &params))
                .ok_or_else(|| bad(&format!("no resource {name}")))
        };
        let table: TableDef = serde_norway::from_value(props("Table")?).map_err(|e| bad(&format!("Table: {e}")))?;
        let lock = props("ArchiveBucket")?;
        let retention: RetentionDef = lock
            .get("ObjectLockConfiguration")
            .and_then(|c| c.get("Rule"))
            .and_then(|r| r.get("DefaultRetention"))
            .cloned()
            .map(serde_norway::from_value)
            .transpose()
            .map_err(|e| bad(&format!("ArchiveBucket: {e}")))?
            .ok_or_else(|| bad("ArchiveBucket has no default retention"))?;
        Ok(Blueprint { table, archive_retention: (retention.mode, retention.days) })
    }

    /// The blueprint of the template compiled into this binary.
    pub fn deployed() -> Result<Blueprint, ProvisionError> {
        Blueprint::from_template(TEMPLATE)
    }
}

/// What happened to one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub resource: String,
    pub name: String,
    pub created: bool,
}

/// Creates the table as the template defines it; an existing table is left alone.
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    def: &TableDef,
) -> Result<Outcome, ProvisionError> {
    let key = |k: &KeyDef| {
        KeySchemaElement::builder()
            .attribute_name(&k.attribute_name)
            .key_type(KeyType::from(k.key_type.as_str()))
            .build()
            .map_err(|e| aws_err(name, e))
    };
    let mut req = client.create_table().table_name(name).billing_mode(BillingMode::PayPerRequest);
    for a in &def.attribute_definitions {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&a.attribute_name)
                .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                .build()
                .map_err(|e| aws_err(name, e))?,
        );
    }
    for k in &def.key_schema {
        req = req.key_schema(key(k)?);
    }
    for g in &def.global_secondary_indexes {
        let mut index = GlobalSecondaryIndex::builder().index_name(&g.index_name).projection(
            Projection::builder().projection_type(ProjectionType::from(g.projection.projection_type.as_str())).build(),
        );
        for k in &g.key_schema {
            index = index.key_schema(key(k)?);
        }
        req = req.global_secondary_indexes(index.build().map_err(|e| aws_err(name, e))?);
    }
    if let Some(s) = &def.stream_specification {
        req = req.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(s.stream_view_type.as_str()))
                .build()
                .map_err(|e| aws_err(name, e))?,
        );
    }
    match req.send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => {
            return Ok(Outcome { resource: "table".into(), name: name.into(), created: false });
        }
        Err(e) => return Err(aws_err(name, e.into_service_error())),
    }
    if let Some(t) = &def.time_to_live_specification {
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(&t.attribute_name)
            .enabled(t.enabled)
            .build()
            .map_err(|e| aws_err(name, e))?;
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(|e| aws_err(name, e.into_service_error()))?;
    }
    if let Some(p) = &def.point_in_time_recovery_specification {
        let spec = PointInTimeRecoverySpecification::builder()
            .point_in_time_recovery_enabled(p.point_in_time_recovery_enabled)
            .build()
            .map_err(|e| aws_err(name, e))?;
        client
            .update_continuous_backups()
            .table_name(name)
            .point_in_time_recovery_specification(spec)
            .send()
            .await
            .map_err(|e| aws_err(name, e.into_service_error()))?;
    }
    Ok(Outcome { resource: "table".into(), name: name.into(), created: true })
}

/// Creates a private, versioned bucket; with `lock`, under Object Lock with that
/// default retention. An existing bucket of ours is left alone.
async fn create_bucket(
    aws: &Aws,
    name: &str,
    lock: Option<&(String, i32)>,
    resource: &str,
) -> Result<Outcome, ProvisionError> {
    let s3 = aws.s3();
    // In us-east-1, CreateBucket succeeds again on a bucket one already owns, so ask first.
    if s3.head_bucket().bucket(name).send().await.is_ok() {
        return Ok(Outcome { resource: resource.into(), name: name.into(), created: false });
    }
    let mut req = s3.create_bucket().bucket(name).object_lock_enabled_for_bucket(lock.is_some());
    let region = aws.sdk.region().map(|r| r.as_ref().to_owned()).unwrap_or_default();
    if !region.is_empty() && region != "us-east-1" {
        let c = CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(region.as_str()))
            .build();
        req = req.create_bucket_configuration(c);
    }
    match req.send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_bucket_already_owned_by_you()) => {
            return Ok(Outcome { resource: resource.into(), name: name.into(), created: false });
        }
        Err(e) => return Err(aws_err(name, e.into_service_error())),
    }
    let versioning = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    s3.put_bucket_versioning()
        .bucket(name)
        .versioning_configuration(versioning)
        .send()
        .await
        .map_err(|e| aws_err(name, e.into_service_error()))?;
    let block = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .block_public_policy(true)
        .ignore_public_acls(true)
        .restrict_public_buckets(true)
        .build();
    s3.put_public_access_block()
        .bucket(name)
        .public_access_block_configuration(block)
        .send()
        .await
        .map_err(|e| aws_err(name, e.into_service_error()))?;
    if let Some((mode, days)) = lock {
        let retention =
            DefaultRetention::builder().mode(ObjectLockRetentionMode::from(mode.as_str())).days(*days).build();
        let conf = ObjectLockConfiguration::builder()
            .object_lock_enabled(ObjectLockEnabled::Enabled)
            .rule(ObjectLockRule::builder().default_retention(retention).build())
            .build();
        s3.put_object_lock_configuration()
            .bucket(name)
            .object_lock_configuration(conf)
            .send()
            .await
            .map_err(|e| aws_err(name, e.into_service_error()))?;
    }
    Ok(Outcome { resource: resource.into(), name: name.into(), created: true })
}

/// Creates every resource the settings name: the table always, the buckets and the
/// topic when named. Safe to run again.
pub async fn init(aws: &Aws, settings: &Settings, topic_name: Option<&str>) -> Result<Vec<Outcome>, ProvisionError> {
    let blueprint = Blueprint::deployed()?;
    let mut done = vec![create_table(&aws.dynamodb(), &settings.table, &blueprint.table).await?];
    if let Some(b) = &settings.evidence_bucket {
        done.push(create_bucket(aws, b, None, "evidence bucket").await?);
    }
    if let Some(b) = &settings.archive_bucket {
        done.push(create_bucket(aws, b, Some(&blueprint.archive_retention), "archive bucket").await?);
    }
    done.push(create_signing_key(aws, &settings.audit_key_id).await?);
    if let Some(t) = topic_name {
        // CreateTopic is idempotent: it returns the existing topic's ARN.
        let out = aws.sns().create_topic().name(t).send().await.map_err(|e| aws_err(t, e.into_service_error()))?;
        done.push(Outcome { resource: "topic".into(), name: out.topic_arn().unwrap_or(t).to_owned(), created: true });
    }
    Ok(done)
}

/// The checkpoint signing key: an alias's key is made (ECC_NIST_P256, sign and
/// verify) when the alias names none; a key named by id or ARN must exist.
pub async fn create_signing_key(aws: &Aws, key: &str) -> Result<Outcome, ProvisionError> {
    use aws_sdk_kms::types::{KeySpec, KeyUsageType};
    let kms = aws.kms();
    let outcome =
        |created: bool, name: &str| Outcome { resource: "signing key".into(), name: name.to_owned(), created };
    match kms.describe_key().key_id(key).send().await {
        Ok(found) => {
            let arn = found.key_metadata().and_then(|m| m.arn()).unwrap_or(key);
            return Ok(outcome(false, arn));
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) && key.starts_with("alias/") => {}
        Err(e) => return Err(aws_err(key, e.into_service_error())),
    }
    let made = kms
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .description("Vigilo audit checkpoint signing key (ECDSA P-256)")
        .send()
        .await
        .map_err(|e| aws_err(key, e.into_service_error()))?;
    let id = made.key_metadata().map(|m| m.key_id().to_owned()).unwrap_or_default();
    kms.create_alias()
        .alias_name(key)
        .target_key_id(&id)
        .send()
        .await
        .map_err(|e| aws_err(key, e.into_service_error()))?;
    let arn = made.key_metadata().and_then(|m| m.arn()).unwrap_or(key).to_owned();
    Ok(outcome(true, &arn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigilo_app::keys;

    #[test]
    fn the_template_defines_one_index_per_slot_and_the_keys_the_adapter_writes() {
        let b = Blueprint::deployed().unwrap();
        let names: Vec<&str> = b.table.global_secondary_indexes.iter().map(|g| g.index_name.as_str()).collect();
        let slots: Vec<String> = (1..=keys::INDEX_SLOT_COUNT).map(crate::attrs::slot_index).collect();
        assert_eq!(names, slots);
        for g in &b.table.global_secondary_indexes {
            let slot: u8 = g.index_name.trim_start_matches("gsi").parse().unwrap();
            let (pk, sk) = crate::attrs::slot_attrs(slot);
            let schema: Vec<(&str, &str)> =
                g.key_schema.iter().map(|k| (k.attribute_name.as_str(), k.key_type.as_str())).collect();
            assert_eq!(schema, [(pk.as_str(), "HASH"), (sk.as_str(), "RANGE")]);
            assert_eq!(g.projection.projection_type, "ALL", "queries read items from the index alone");
        }
        let table_keys: Vec<&str> = b.table.key_schema.iter().map(|k| k.attribute_name.as_str()).collect();
        assert_eq!(table_keys, [crate::attrs::PK, crate::attrs::SK]);
        assert_eq!(b.table.time_to_live_specification.as_ref().unwrap().attribute_name, crate::attrs::TTL);
        assert!(b.table.point_in_time_recovery_specification.as_ref().unwrap().point_in_time_recovery_enabled);
        assert!(b.table.stream_specification.is_some());
        assert_eq!(b.archive_retention.0, "COMPLIANCE");
        assert!(b.archive_retention.1 >= 1, "the parameter default is resolved");
    }

    #[test]
    fn a_broken_template_is_a_clear_error() {
        assert!(matches!(Blueprint::from_template("Resources: {}"), Err(ProvisionError::Template(_))));
        assert!(matches!(Blueprint::from_template(": : :"), Err(ProvisionError::Template(_))));
    }
}
