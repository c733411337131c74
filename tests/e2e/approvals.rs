use vigilo_app::services::members::MemberInput;
use vigilo_e2e::{actor, in_hours, json, normal_change, TestServer};

async fn team() -> TestServer {
    let s = TestServer::start().await;
    s.workspace(
        "alice",
        "acme",
        &[
            ("bob", "approver"),
            ("carol", "approver"),
            ("dan", "approver"),
            ("mia", "member"),
            ("vic", "viewer"),
            ("erin", "member"),
        ],
    )
    .await;
    s
}

async fn submitted(s: &TestServer, author: &str, mut body: serde_json::Value, risk: &str) -> String {
    body["risk_level"] = json!(risk);
    let n = s.change(author, "acme", body).await;
    s.act(author, "acme", &n, "submit", json!({})).await.expect(200);
    n
}

fn queue_len(v: &serde_json::Value) -> usize {
    v["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn authors_never_approve_their_own_change() {
    let s = team().await;
    let n = submitted(&s, "bob", normal_change("t"), "low").await;
    s.act("bob", "acme", &n, "approve", json!({})).await.refused(403, "self_approval_forbidden");
    s.act("bob", "acme", &n, "reject", json!({"comment": "no"})).await.refused(403, "self_approval_forbidden");
    assert_eq!(queue_len(&s.get("bob", "/ws/acme/approvals").await.expect(200)), 0);
    let n = submitted(&s, "alice", normal_change("t"), "low").await;
    s.act("alice", "acme", &n, "approve", json!({})).await.refused(403, "self_approval_forbidden");
}

#[tokio::test]
async fn only_holders_of_a_pending_step_decide() {
    let s = team().await;
    let n = submitted(&s, "mia", normal_change("t"), "low").await;
    s.act("vic", "acme", &n, "approve", json!({})).await.refused(403, "not_an_approver");
    s.act("erin", "acme", &n, "approve", json!({})).await.refused(403, "not_an_approver");
    s.act("outsider", "acme", &n, "approve", json!({})).await.refused(404, "not_found");
    assert_eq!(queue_len(&s.get("erin", "/ws/acme/approvals").await.expect(200)), 0);
    let q = s.get("carol", "/ws/acme/approvals").await.expect(200);
    assert_eq!(queue_len(&q), 1);
    assert_eq!(
        (q["items"][0]["change_number"].as_str(), q["items"][0]["change_title"].as_str()),
        (Some(n.as_str()), Some("t"))
    );
    // A demoted approver loses the seat they were offered.
    s.put("alice", "/ws/acme/members/dan", json!({"email": "d@example.com", "role": "member"})).await.expect(200);
    s.act("dan", "acme", &n, "approve", json!({})).await.refused(403, "not_an_approver");
    assert_eq!(queue_len(&s.get("dan", "/ws/acme/approvals").await.expect(200)), 0);
    s.act("carol", "acme", &n, "approve", json!({})).await.expect(200);
    assert_eq!(queue_len(&s.get("carol", "/ws/acme/approvals").await.expect(200)), 0);
}

#[tokio::test]
async fn high_risk_needs_two_distinct_approvers() {
    let s = team().await;
    let n = submitted(&s, "mia", normal_change("t"), "high").await;
    let c = s.act("bob", "acme", &n, "approve", json!({"comment": "one"})).await.expect(200);
    assert_eq!(c["status"], "review");
    s.act("bob", "acme", &n, "approve", json!({})).await.refused(409, "already_decided");
    assert_eq!(queue_len(&s.get("bob", "/ws/acme/approvals").await.expect(200)), 0);
    let c = s.act("carol", "acme", &n, "approve", json!({})).await.expect(200);
    assert_eq!(c["status"], "approved");
    let steps = s.get("vic", &format!("/ws/acme/changes/{n}/approvals")).await.expect(200);
    let step = &steps["items"][0];
    assert_eq!(
        (step["mode"].as_str(), step["quorum"].as_u64(), step["status"].as_str()),
        (Some("quorum"), Some(2), Some("approved"))
    );
    let deciders: Vec<&str> =
        step["decisions"].as_array().unwrap().iter().map(|d| d["user"].as_str().unwrap()).collect();
    assert_eq!(deciders, ["bob", "carol"]);
    assert_eq!(step["decisions"][0]["comment"], "one");
}

#[tokio::test]
async fn a_rejection_ends_the_change() {
    let s = team().await;
    let n = submitted(&s, "mia", normal_change("t"), "high").await;
    s.act("bob", "acme", &n, "reject", json!({})).await.refused(422, "validation_failed");
    s.act("bob", "acme", &n, "approve", json!({})).await.expect(200);
    let c = s.act("carol", "acme", &n, "reject", json!({"comment": "too risky on a Friday"})).await.expect(200);
    assert_eq!(c["status"], "rejected");
    s.act("dan", "acme", &n, "approve", json!({})).await.refused(409, "invalid_transition");
    let steps = s.get("mia", &format!("/ws/acme/changes/{n}/approvals")).await.expect(200);
    assert_eq!(steps["items"][0]["status"], "rejected");
}

#[tokio::test]
async fn requested_changes_send_the_draft_back_for_a_new_round() {
    let s = team().await;
    let n = submitted(&s, "mia", normal_change("t"), "low").await;
    s.act("bob", "acme", &n, "request-changes", json!({})).await.refused(422, "validation_failed");
    let c = s.act("bob", "acme", &n, "request-changes", json!({"comment": "add a test plan"})).await.expect(200);
    assert_eq!(c["status"], "draft");
    s.patch("mia", &format!("/ws/acme/changes/{n}"), json!({"test_plan": "curl /health"})).await.expect(200);
    let c = s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    assert_eq!((c["status"].as_str(), c["approval_round"].as_u64()), (Some("review"), Some(2)));
    let steps = s.get("mia", &format!("/ws/acme/changes/{n}/approvals")).await.expect(200);
    let statuses: Vec<(u64, &str)> = steps["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["round"].as_u64().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(statuses, [(1, "changes_requested"), (2, "pending")]);
    assert_eq!(s.act("carol", "acme", &n, "approve", json!({})).await.expect(200)["status"], "approved");
}

#[tokio::test]
async fn emergencies_need_two_from_ecab_when_it_exists() {
    let s = team().await;
    let body = json!({"title": "hotfix", "change_type": "emergency", "affected_assets": ["db"], "rollback_plan": "revert",
                      "planned_start": in_hours(1), "planned_end": in_hours(2)});
    let open = submitted(&s, "mia", body.clone(), "medium").await;
    let open_step = &s.get("mia", &format!("/ws/acme/changes/{open}/approvals")).await.expect(200)["items"][0];
    assert!(open_step["group"].is_null(), "without ecab any eligible role may approve");

    s.put("alice", "/ws/acme/groups/ecab", json!({"members": ["bob", "carol"]})).await.expect(200);
    let n = submitted(&s, "mia", body.clone(), "medium").await;
    s.act("dan", "acme", &n, "approve", json!({})).await.refused(403, "not_an_approver");
    assert_eq!(s.act("bob", "acme", &n, "approve", json!({})).await.expect(200)["status"], "review");
    assert_eq!(s.act("carol", "acme", &n, "approve", json!({})).await.expect(200)["status"], "approved");

    s.put("alice", "/ws/acme/groups/ecab", json!({"members": ["bob", "mia"]})).await.expect(200);
    let m = s.change("mia", "acme", body).await;
    let r = s.act("mia", "acme", &m, "submit", json!({})).await;
    r.refused(409, "no_eligible_approvers");
}

#[tokio::test]
async fn a_delegate_approves_for_the_delegator_while_it_holds() {
    let s = team().await;
    let n = submitted(&s, "mia", normal_change("t"), "high").await;
    let window = json!({"delegate": "erin", "from": in_hours(-1), "until": in_hours(8)});
    s.put("bob", "/ws/acme/members/bob/delegate", window).await.expect(200);
    let q = s.get("erin", "/ws/acme/approvals").await.expect(200);
    assert_eq!(queue_len(&q), 1);
    assert_eq!(q["items"][0]["on_behalf_of"], json!(["bob"]));
    assert_eq!(s.act("erin", "acme", &n, "approve", json!({})).await.expect(200)["status"], "review");
    s.act("bob", "acme", &n, "approve", json!({})).await.refused(409, "already_decided");
    assert_eq!(s.act("carol", "acme", &n, "approve", json!({})).await.expect(200)["status"], "approved");
    let step = &s.get("mia", &format!("/ws/acme/changes/{n}/approvals")).await.expect(200)["items"][0];
    assert_eq!(
        (step["decisions"][0]["user"].as_str(), step["decisions"][0]["on_behalf_of"].as_str()),
        (Some("erin"), Some("bob"))
    );

    let later = json!({"delegate": "erin", "from": in_hours(24), "until": in_hours(48)});
    s.put("carol", "/ws/acme/members/carol/delegate", later).await.expect(200);
    let m = submitted(&s, "mia", normal_change("u"), "low").await;
    s.put("bob", "/ws/acme/members/bob/delegate", json!({"delegate": null})).await.expect(200);
    s.act("erin", "acme", &m, "approve", json!({})).await.refused(403, "not_an_approver");
}

#[tokio::test]
async fn racing_approvers_fill_a_quorum_exactly_once() {
    let s = std::sync::Arc::new(team().await);
    let n = submitted(&s, "mia", normal_change("t"), "high").await;
    let mut tasks = Vec::new();
    for who in ["bob", "carol", "dan", "alice"] {
        let (s, n) = (s.clone(), n.clone());
        tasks.push(tokio::spawn(async move { s.act(who, "acme", &n, "approve", json!({})).await }));
    }
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            200 => ok += 1,
            409 => assert_eq!(r.code(), "invalid_transition", "{}", r.body),
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    let step = &s.get("mia", &format!("/ws/acme/changes/{n}/approvals")).await.expect(200)["items"][0];
    let approvals = step["decisions"].as_array().unwrap().len();
    assert_eq!(approvals, 2, "the step closes at its quorum");
    assert_eq!(ok, 2, "exactly the quorum's two approvals are recorded; the others are refused");
    assert_eq!(s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200)["status"], "approved");
    let report = s.verify("alice", "acme").await;
    assert_eq!(report["ok"], true, "{report}");
}

#[tokio::test]
async fn approve_racing_cancel_never_leaves_an_open_step_on_a_closed_change() {
    let s = std::sync::Arc::new(team().await);
    for i in 0..6 {
        let n = submitted(&s, "mia", normal_change(&format!("t{i}")), "low").await;
        let (s1, n1) = (s.clone(), n.clone());
        let approve = tokio::spawn(async move { s1.act("bob", "acme", &n1, "approve", json!({})).await });
        let (s2, n2) = (s.clone(), n.clone());
        let cancel = tokio::spawn(async move { s2.act("mia", "acme", &n2, "cancel", json!({})).await.status });
        let (approved, c) = (approve.await.unwrap(), cancel.await.unwrap());
        assert_eq!(c, 200, "cancel is allowed from review and from approved");
        let a = approved.status;
        match a {
            200 => {}
            409 => assert_eq!(approved.code(), "invalid_transition", "{}", approved.body),
            other => panic!("approve answered {other}: {}", approved.body),
        }
        let change = s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200);
        assert_eq!(change["status"], "cancelled");
        let steps = s.get("mia", &format!("/ws/acme/changes/{n}/approvals")).await.expect(200);
        let step = steps["items"][0]["status"].as_str().unwrap().to_owned();
        assert_eq!(step, if a == 200 { "approved" } else { "cancelled" });
    }
    assert!(s.get("bob", "/ws/acme/approvals").await.expect(200)["items"].as_array().unwrap().is_empty());
    assert_eq!(s.verify("alice", "acme").await["ok"], true);
}

/// Alice demotes Bob between his read and his write: the demotion moved the chain
/// head his commit is conditioned on, so his approval is re-decided on his new role
/// and refused, and leaves no row.
#[tokio::test]
async fn an_approver_demoted_while_deciding_does_not_decide() {
    let s = team().await;
    let n = submitted(&s, "mia", normal_change("t"), "low").await;
    let _rival = s.before_next_write(|app| async move {
        let viewer = MemberInput { email: "bob@example.com".into(), role: "viewer".into(), name: None };
        app.put_member(&actor("alice"), &vigilo_e2e::slug("acme"), "bob", viewer).await.expect("the demotion commits");
    });
    s.act("bob", "acme", &n, "approve", json!({})).await.refused(403, "not_an_approver");
    let audit = s.get("alice", "/ws/acme/audit?limit=200").await.expect(200);
    let rows = audit["items"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["action"] == "member.update"));
    assert!(!rows.iter().any(|r| r["actor"] == "bob"), "{audit}");
    assert_eq!(s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200)["status"], "review");
}

/// Carol and Dan must both approve; Dan's approval commits between Carol's read and
/// her write. Carol's commit holds the step (and the round's other steps) as read, so
/// it fails, is decided again on the round as it now stands, and passes the stage: two
/// approvers deciding at once cannot leave the change waiting for a decision already
/// made.
#[tokio::test]
async fn two_approvers_deciding_at_once_both_count() {
    let s = team().await;
    s.put("alice", "/ws/acme/groups/cab", json!({"members": ["carol", "dan"]})).await.expect(200);
    let stages = json!([{"name": "CAB", "mode": "all", "approvers": {"groups": ["cab"]}}]);
    let policy = json!({"name": "cab", "priority": 1, "match": {}, "stages": stages});
    s.post("alice", "/ws/acme/approval-policies", policy).await.expect(201);
    let n = s.change("mia", "acme", normal_change("both must agree")).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    let number = n.clone();
    let _rival = s.before_next_write(move |app| async move {
        let input = vigilo_app::services::transitions::ActionInput::default();
        let c = app
            .act(&actor("dan"), &vigilo_e2e::slug("acme"), vigilo_e2e::number(&number), "approve", input, None)
            .await
            .expect("dan's approval commits");
        assert_eq!(c.status.as_str(), "review", "alone, dan's approval leaves the stage open");
    });
    let c = s.act("carol", "acme", &n, "approve", json!({})).await.expect(200);
    assert_eq!(c["status"], "approved", "carol's decision saw dan's");
    let rows = s.get("alice", &format!("/ws/acme/changes/{n}/activity")).await.expect(200);
    let approves = rows["items"].as_array().unwrap().iter().filter(|r| r["action"] == "change.approve").count();
    assert_eq!(approves, 1, "the change was approved once");
    assert_eq!(s.verify("alice", "acme").await["ok"], true);
}

/// Alice and Bob are the two owners and each steps down at once. Neither write touches
/// the other's record, so nothing but the owners' epoch (held by every write that
/// makes or unmakes an owner, read before the members are) stops both from committing
/// and leaving no owner: the second is decided again and refused as the last owner.
#[tokio::test]
async fn two_owners_stepping_down_at_once_leave_one_owner() {
    let s = team().await;
    s.put("alice", "/ws/acme/members/bob", json!({"email": "bob@example.com", "role": "owner"})).await.expect(200);
    let _rival = s.before_next_write(|app| async move {
        let admin = MemberInput { email: "bob@example.com".into(), role: "admin".into(), name: None };
        app.put_member(&actor("bob"), &vigilo_e2e::slug("acme"), "bob", admin).await.expect("bob steps down first");
    });
    let r = s.put("alice", "/ws/acme/members/alice", json!({"email": "alice@example.com", "role": "admin"})).await;
    r.refused(409, "last_owner");
    let members = s.get("alice", "/ws/acme/members").await.expect(200);
    let owners: Vec<&str> = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "owner")
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(owners, ["alice"]);
}

/// Sixteen creates race in one workspace: none waits for another (each takes its number
/// from the counter), all succeed, and the numbers and the audit chain have no gap.
#[tokio::test]
async fn racing_creates_take_every_number_once() {
    let s = std::sync::Arc::new(team().await);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.change("mia", "acme", normal_change(&format!("racer {i}"))).await }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap());
    }
    numbers.sort();
    let expected: Vec<String> = (1..=16).map(|i| format!("CHG-{i:05}")).collect();
    assert_eq!(numbers, expected);
    let report = s.verify("alice", "acme").await;
    assert_eq!(report["ok"], true, "{report}");
    let audit = s.get("alice", "/ws/acme/audit?action=change.create&limit=100").await.expect(200);
    assert_eq!(audit["items"].as_array().unwrap().len(), 16);
}
