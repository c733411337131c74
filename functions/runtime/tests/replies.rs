//! SES inbound, end to end: a reply stored in the inbound bucket, the SES event in
//! `events/replies/`, and the replies handler deciding from it, with SES's verdicts.
//! On SQLite with a folder, and on DynamoDB with S3 (emulated).

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Value};
use vigilo_app::notify::Delivery;
use vigilo_app::services::members::MemberInput;
use vigilo_app::services::transitions::ActionInput;
use vigilo_app::services::workspaces::NewWorkspace;
use vigilo_app::{Actor, Blobs, RequestInfo, SystemClock, Table, Vigilo};
use vigilo_domain::change::RawChange;
use vigilo_domain::ids::UserId;

fn actor(id: &str) -> Actor {
    Actor { user_id: UserId::parse(id).unwrap(), email: None, name: None, request: RequestInfo::default() }
}

fn event(message_id: &str, token: &str, dkim: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/replies/ses-inbound.json");
    let text = std::fs::read_to_string(path).unwrap().replace("MESSAGE_ID", message_id).replace("TOKEN", token);
    let mut e: Value = serde_json::from_str(&text).unwrap();
    e["Records"][0]["ses"]["receipt"]["dkimVerdict"]["status"] = json!(dkim);
    e
}

fn reply(from: &str, token: &str, body: &str) -> Vec<u8> {
    format!("From: {from}\r\nTo: r+{token}@reply.example.com\r\nSubject: Re: approval\r\n\r\n{body}\r\n").into_bytes()
}

async fn story(table: Arc<dyn Table>, inbound: Arc<dyn Blobs>) {
    let tmp = tempfile::tempdir().unwrap();
    let outbox = Arc::new(vigilo_local::OutboxFolder::new(tmp.path().join("outbox")));
    let delivery = Delivery {
        mailer: outbox.clone(),
        chat: outbox,
        from: "vigilo@example.com".into(),
        base_url: "https://vigilo.example.com".into(),
        reply_domain: Some("reply.example.com".into()),
        link_secret: Arc::new(b"a link secret for the replies story".to_vec()),
    };
    let app = Vigilo::new(table, Arc::new(SystemClock)).with_delivery(delivery);
    let alice = actor("alice");
    let ws = NewWorkspace { slug: "acme".into(), name: "Acme".into(), locale: None, timezone: None };
    app.create_workspace(&alice, ws, None).await.unwrap();
    let bob = MemberInput { email: "bob@example.com".into(), role: "approver".into(), name: None };
    app.put_member(&alice, &acme(), "bob", bob).await.unwrap();
    let raw = RawChange { title: Some("Rotate cert".into()), ..RawChange::default() };
    app.create_change(&alice, &acme(), raw, None).await.unwrap();
    app.act(&alice, &acme(), vigilo_domain::ids::ChangeNumber::new(1).unwrap(), "submit", ActionInput::default(), None)
        .await
        .unwrap();
    let mail = std::fs::read_dir(tmp.path().join("outbox"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .find(|t| t.contains("To: bob@example.com"))
        .unwrap();
    let line = mail.lines().find(|l| l.starts_with("Reply-To:")).unwrap();
    let token = &line[line.find("r+").unwrap() + 2..line.find('@').unwrap()];

    let cases = [
        ("m-forged", "mallory@example.net", "PASS", json!({"refused": "wrong_sender"})),
        ("m-dkim", "bob@example.com", "FAIL", json!({"refused": "unauthenticated"})),
        (
            "m-good",
            "bob@example.com",
            "PASS",
            json!({"decided": "approve", "change": "CHG-00001", "status": "approved"}),
        ),
        ("m-replay", "bob@example.com", "PASS", json!({"refused": "used"})),
    ];
    for (id, from, dkim, expected) in cases {
        let key = format!("{}{id}", vigilo_lambda::INBOUND_PREFIX);
        inbound.put_new(&key, reply(from, token, "approve\nfine"), "message/rfc822").await.unwrap();
        let out = vigilo_lambda::replies(&app, &*inbound, &event(id, token, dkim)).await.unwrap();
        assert_eq!(out[0]["outcome"], expected, "{id}");
    }
    let missing = vigilo_lambda::replies(&app, &*inbound, &event("m-lost", token, "PASS")).await.unwrap();
    assert_eq!(missing[0]["outcome"], "missing");
    assert!(vigilo_lambda::replies(&app, &*inbound, &json!({"sweep": "x"})).await.is_err());
    let owner = actor("alice");
    let rows = app
        .list_audit(
            &owner,
            &acme(),
            &serde_json::from_value(json!({"action": "decision_link.refuse"})).unwrap(),
            50,
            None,
        )
        .await
        .unwrap();
    let reasons: Vec<&str> = rows.items.iter().map(|r| r["metadata"]["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["used", "unauthenticated", "wrong_sender"]);
}

#[tokio::test]
async fn an_inbound_reply_is_decided_from_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let table = vigilo_local::SqliteTable::open(&dir.path().join("t.db")).unwrap();
    story(Arc::new(table), Arc::new(vigilo_local::FolderBlobs::new(dir.path().join("inbound")))).await;
}

#[tokio::test]
#[ignore = "needs emulated AWS; ./scripts/test starts moto and runs it"]
async fn an_inbound_reply_stored_in_s3_is_decided_end_to_end() {
    let aws = vigilo_aws::emulator::aws().await;
    let bucket = format!("vigilo-inbound-{}", uuid::Uuid::new_v4().simple());
    aws.s3().create_bucket().bucket(&bucket).send().await.expect("an inbound bucket");
    let table = vigilo_aws::emulator::fresh_table().await;
    story(Arc::new(table), Arc::new(vigilo_aws::S3Blobs::new(aws.s3(), bucket))).await;
}

fn acme() -> vigilo_domain::ids::Slug {
    vigilo_domain::ids::Slug::parse("acme").unwrap()
}
