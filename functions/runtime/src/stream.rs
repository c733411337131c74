//! The stream function: the sequencer of the audit chain and the sender of what a
//! write left behind. The table's stream invokes it with the new audit-queue entries
//! (the event source mapping's filter in infra/template.yaml lets only those through);
//! for each workspace they name it seals the queue, sends the outbox and feeds the
//! webhooks ([`Vigilo::follow_up`]).
//!
//! Nothing is lost when a pass fails. The work itself stays in the table (queued
//! entries, outbox notices, each subscription's cursor), so a pass only ever resumes it.
//! A workspace whose pass failed is reported as a batch item failure at its first
//! record, so Lambda hands the batch back from there; every pass is safe to repeat, so
//! the workspaces of that batch that had succeeded lose nothing by being run again.
//! And the notices sweep follows every workspace up every five minutes, for records
//! Lambda gave up on.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};
use vigilo_app::keys;
use vigilo_app::services::follow_up::FollowUp;
use vigilo_app::Vigilo;

/// The part of a DynamoDB stream record the function reads.
#[derive(Debug, Deserialize)]
struct Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    dynamodb: Change,
}

#[derive(Debug, Deserialize)]
struct Change {
    #[serde(rename = "Keys")]
    keys: BTreeMap<String, Attribute>,
    #[serde(rename = "SequenceNumber")]
    sequence_number: String,
}

#[derive(Debug, Deserialize)]
struct Attribute {
    #[serde(rename = "S")]
    s: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StreamEvent {
    #[serde(rename = "Records")]
    records: Vec<Record>,
}

/// The workspaces a batch names, each with the sequence number of its first record,
/// in the order they first appear. Records of anything other than a new queue entry
/// are passed over with a warning (the filter should not let them through).
fn workspaces(event: StreamEvent) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for r in event.records {
        let pk = r.dynamodb.keys.get(vigilo_aws::attrs::PK).and_then(|a| a.s.as_deref());
        let ws = pk.and_then(keys::workspace_of_queue).filter(|_| r.event_name == "INSERT");
        match ws {
            Some(ws) if !out.iter().any(|(w, _)| w == ws) => out.push((ws.to_owned(), r.dynamodb.sequence_number)),
            Some(_) => {}
            None => tracing::warn!(pk, event = %r.event_name, "a stream record that is not a new audit-queue entry"),
        }
    }
    out
}

/// Follows up every workspace a stream batch names, at once, and answers Lambda's
/// partial-batch response: the first record of each workspace whose pass failed.
pub async fn stream(app: &Vigilo, event: Value) -> Result<Value, lambda_http::Error> {
    let event: StreamEvent = serde_json::from_value(event).map_err(|e| format!("not a DynamoDB stream event: {e}"))?;
    let named = workspaces(event);
    let mut passes = tokio::task::JoinSet::new();
    for (i, (ws, _)) in named.iter().enumerate() {
        let (app, ws) = (app.clone(), ws.clone());
        passes.spawn(async move { (i, app.follow_up(&ws).await.map_err(|e| e.to_string())) });
    }
    let mut outcomes: Vec<Result<FollowUp, String>> = vec![Err("the pass did not finish".into()); named.len()];
    while let Some(joined) = passes.join_next().await {
        match joined {
            Ok((i, outcome)) => outcomes[i] = outcome,
            Err(e) => tracing::error!(error = %e, "a follow-up pass panicked"),
        }
    }
    let mut done = FollowUp::default();
    let mut failures = Vec::new();
    for ((ws, first), outcome) in named.iter().zip(outcomes) {
        match outcome {
            Ok(r) => vigilo_app::services::sweeps::Tally::add(&mut done, r),
            Err(e) => {
                tracing::error!(workspace_id = %ws, error = %e, "follow-up failed; the batch is handed back from here");
                failures.push(json!({"itemIdentifier": first}));
            }
        }
    }
    tracing::info!(workspaces = named.len(), failed = failures.len(), report = ?done, "stream batch followed up");
    Ok(json!({"batchItemFailures": failures}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, pk: &str, seq: &str) -> Value {
        json!({"eventName": name, "dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"S": "x"}}, "SequenceNumber": seq}})
    }

    #[test]
    fn a_batch_names_each_workspace_once_at_its_first_record() {
        let event = json!({"Records": [
            record("INSERT", "AUDITQ#w1", "100"),
            record("INSERT", "AUDITQ#w2", "101"),
            record("INSERT", "AUDITQ#w1", "102"),
            record("REMOVE", "AUDITQ#w3", "103"),
            record("INSERT", "WS#w4#OUTBOX", "104"),
            record("INSERT", "AUDITQ#", "105"),
        ]});
        let named = workspaces(serde_json::from_value(event).unwrap());
        assert_eq!(named, vec![("w1".into(), "100".into()), ("w2".into(), "101".into())]);
    }
}
