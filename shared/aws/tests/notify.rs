//! Notices on emulated AWS: a submitted change's approval request really leaves through
//! SES (its raw MIME) and SNS (its chat message), read back from the emulator's record
//! of what it was sent.

use std::sync::Arc;

use serde_json::Value;
use vigilo_app::services::members::MemberInput;
use vigilo_app::services::transitions::ActionInput;
use vigilo_app::services::workspaces::NewWorkspace;
use vigilo_app::{Actor, RequestInfo, SystemClock, Vigilo};
use vigilo_aws::{emulator, Settings};
use vigilo_domain::change::RawChange;
use vigilo_domain::ids::UserId;

fn actor(id: &str) -> Actor {
    Actor { user_id: UserId::parse(id).unwrap(), email: None, name: None, request: RequestInfo::default() }
}

/// What the emulator says it was sent (its model data, as its dashboard shows it).
async fn emulator_state() -> Value {
    let url = format!("{}/moto-api/data.json", emulator::endpoint().trim_end_matches('/'));
    let body = reqwest::get(url).await.expect("the emulator answers").text().await.unwrap();
    serde_json::from_str(&body).expect("model data")
}

#[tokio::test]
#[ignore = "needs emulated AWS; ./scripts/test starts moto and runs it"]
async fn approval_requests_leave_through_ses_and_sns() {
    let aws = emulator::aws().await;
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let from = format!("vigilo-{suffix}@example.com");
    aws.ses().create_email_identity().email_identity(&from).send().await.expect("a verified sender");
    let topic = aws.sns().create_topic().name(format!("approvers-{suffix}")).send().await.unwrap();
    let topic_arn = topic.topic_arn().unwrap().to_owned();
    let settings = Settings::from_lookup(|k| match k {
        "VIGILO_TABLE" => Some("unused".into()),
        "VIGILO_TOPIC_ARN" => Some(topic_arn.clone()),
        "VIGILO_MAIL_FROM" => Some(from.clone()),
        "VIGILO_BASE_URL" => Some("https://vigilo.example.com".into()),
        "VIGILO_REPLY_DOMAIN" => Some("reply.example.com".into()),
        "VIGILO_LINK_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
        _ => None,
    });
    let delivery = aws.delivery(&settings).expect("every notice setting is given");
    let app = Vigilo::new(Arc::new(emulator::fresh_table().await), Arc::new(SystemClock)).with_delivery(delivery);
    let alice = actor("alice");
    let slug = format!("n{}", &suffix[..12]);
    let ws = NewWorkspace { slug: slug.clone(), name: "Acme".into(), locale: None, timezone: None };
    app.create_workspace(&alice, ws, None).await.unwrap();
    let slug = vigilo_domain::ids::Slug::parse(&slug).unwrap();
    let member =
        MemberInput { email: format!("bob-{suffix}@example.com"), role: "approver".into(), name: Some("Bob".into()) };
    app.put_member(&alice, &slug, "bob", member).await.unwrap();
    let raw = RawChange {
        title: Some(format!("Rotate cert {suffix}")),
        planned_start: Some(Some("2031-03-04T09:00:00Z".into())),
        planned_end: Some(Some("2031-03-04T10:00:00Z".into())),
        ..RawChange::default()
    };
    let created = app.create_change(&alice, &slug, raw, None).await.unwrap();
    let vigilo_app::Created::New(c) = created else { panic!("a new change") };
    app.act(&alice, &slug, c.number, "submit", ActionInput::default(), None).await.unwrap();

    let state = emulator_state().await;
    let mails = state["ses"]["RawMessage"].as_array().expect("SES raw messages");
    let mail = mails
        .iter()
        .find(|m| m["raw_data"].as_str().is_some_and(|r| r.contains("Approval requested") && r.contains(&from)))
        .expect("the approval request went out through SES");
    let raw = mail["raw_data"].as_str().unwrap();
    assert!(raw.contains(&format!("To: Bob <bob-{suffix}@example.com>")), "{raw}");
    assert!(raw.contains("Reply-To: r+") && raw.contains("@reply.example.com"));
    assert!(raw.contains("text/plain") && raw.contains("text/html"));
    assert_eq!(mail["source"], from.as_str());

    let topics = state["sns"]["Topic"].as_array().expect("SNS topics");
    let ours = topics.iter().find(|t| t["arn"] == topic_arn.as_str()).expect("our topic");
    let sent = ours["sent_notifications"].as_array().unwrap();
    assert_eq!(sent.len(), 1);
    let message: Value = serde_json::from_str(sent[0][1].as_str().unwrap()).unwrap();
    assert_eq!((message["kind"].as_str(), message["recipient"].as_str()), (Some("approval.requested"), Some("bob")));
    assert_eq!(sent[0][3]["kind"]["Value"], "approval.requested");
    assert!(message["blocks"][2]["elements"][0]["value"].as_str().is_some_and(|t| t.len() == 37));
    let pending = vigilo_app::services::notices::outbox(&app, &c.workspace_id).await.unwrap();
    assert!(pending.is_empty(), "sent notices leave the outbox: {pending:?}");
}
