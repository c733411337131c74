use vigilo_app::services::transitions::ActionInput;
use vigilo_e2e::{actor, in_hours, json, normal_change, TestServer};

async fn team() -> TestServer {
    let s = TestServer::start().await;
    s.workspace(
        "alice",
        "acme",
        &[("bob", "approver"), ("carol", "approver"), ("mia", "member"), ("vic", "viewer"), ("ada", "admin")],
    )
    .await;
    s
}

async fn status(s: &TestServer, n: &str) -> String {
    s.get("alice", &format!("/ws/acme/changes/{n}")).await.expect(200)["status"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_normal_change_runs_the_whole_lifecycle() {
    let s = team().await;
    let n = s.change("alice", "acme", normal_change("deploy api")).await;
    let c = s.act("alice", "acme", &n, "submit", json!({})).await.expect(200);
    assert_eq!(c["status"], "review");
    assert!(c["submitted_at"].is_string());
    let c = s.act("bob", "acme", &n, "approve", json!({"comment": "ok"})).await.expect(200);
    assert_eq!(c["status"], "approved");
    assert_eq!(s.act("alice", "acme", &n, "schedule", json!({})).await.expect(200)["status"], "scheduled");
    let c = s.act("alice", "acme", &n, "start", json!({})).await.expect(200);
    assert_eq!(c["status"], "in_progress");
    assert!(c["started_at"].is_string());
    let c = s
        .act("alice", "acme", &n, "complete", json!({"closure_code": "successful", "closure_notes": "went fine"}))
        .await
        .expect(200);
    assert_eq!((c["status"].as_str(), c["closure_code"].as_str()), (Some("completed"), Some("successful")));
    let c = s.act("alice", "acme", &n, "reopen", json!({"reason": "smoke test failed"})).await.expect(200);
    assert_eq!(c["status"], "in_progress");
    assert!(c["closure_code"].is_null(), "reopening clears the closure");
    let c = s.act("alice", "acme", &n, "rollback", json!({"reason": "errors spiked"})).await.expect(200);
    assert_eq!(
        (c["status"].as_str(), c["rollback_reason"].as_str(), c["rolled_back_by"].as_str()),
        (Some("rolled_back"), Some("errors spiked"), Some("alice"))
    );
    assert!(c["rolled_back_at"].is_string());
    let r = s.act("alice", "acme", &n, "reopen", json!({"reason": "x"})).await;
    r.refused(409, "invalid_transition");
    assert_eq!(r.body["error"]["details"]["allowed"], json!([]));

    let activity = s.get("alice", &format!("/ws/acme/changes/{n}/activity")).await.expect(200);
    let actions: Vec<&str> =
        activity["items"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "change.create",
            "change.submit",
            "approval_step.create",
            "approval_step.approve",
            "change.approve",
            "change.schedule",
            "change.start",
            "change.complete",
            "change.reopen",
            "change.rollback"
        ]
    );
    assert_eq!(s.verify("alice", "acme").await["ok"], true);
}

#[tokio::test]
async fn standard_changes_are_pre_approved() {
    let s = team().await;
    let n = s.change("mia", "acme", json!({"title": "rotate logs", "change_type": "standard"})).await;
    let c = s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    assert_eq!(c["status"], "approved");
    assert!(s.get("mia", &format!("/ws/acme/changes/{n}/approvals")).await.expect(200)["items"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn submit_checks_content_lead_time_and_approvers() {
    let s = team().await;
    let risky = s.change("alice", "acme", json!({"title": "t", "risk_level": "high"})).await;
    let r = s.act("alice", "acme", &risky, "submit", json!({})).await;
    r.refused(422, "validation_failed");
    assert!(r.body["error"]["details"]["fields"]["rollback_plan"].is_string());

    let emergency = s.change("alice", "acme", json!({"title": "t", "change_type": "emergency"})).await;
    let r = s.act("alice", "acme", &emergency, "submit", json!({})).await;
    assert!(r.body["error"]["details"]["fields"]["affected_assets"].is_string(), "{}", r.body);

    let half = s.change("alice", "acme", json!({"title": "t", "planned_start": in_hours(48)})).await;
    let r = s.act("alice", "acme", &half, "submit", json!({})).await;
    assert!(r.body["error"]["details"]["fields"]["planned_end"].is_string(), "{}", r.body);

    let soon = s
        .change("alice", "acme", json!({"title": "t", "planned_start": in_hours(2), "planned_end": in_hours(3)}))
        .await;
    let r = s.act("alice", "acme", &soon, "submit", json!({})).await;
    r.refused(409, "lead_time_violation");
    assert_eq!(r.body["error"]["details"]["required_hours"], 24);
    assert_eq!(status(&s, &soon).await, "draft", "a refused submit changes nothing");

    let urgent = json!({"title": "t", "change_type": "emergency", "affected_assets": ["db"], "planned_start": in_hours(1), "planned_end": in_hours(2)});
    let urgent = s.change("alice", "acme", urgent).await;
    assert_eq!(s.act("alice", "acme", &urgent, "submit", json!({})).await.expect(200)["status"], "review");

    let short =
        json!({"title": "t", "change_type": "standard", "planned_start": in_hours(3), "planned_end": in_hours(4)});
    let short = s.change("alice", "acme", short).await;
    s.act("alice", "acme", &short, "submit", json!({})).await.refused(409, "lead_time_violation");
    let custom =
        json!({"title": "t", "planned_start": in_hours(3), "planned_end": in_hours(4), "min_lead_time_hours": 2});
    let custom = s.change("alice", "acme", custom).await;
    s.act("alice", "acme", &custom, "submit", json!({})).await.expect(200);
}

#[tokio::test]
async fn without_another_approver_submit_is_refused() {
    let s = TestServer::start().await;
    s.workspace("alice", "solo", &[("mia", "member")]).await;
    let n = s.change("alice", "solo", json!({"title": "t"})).await;
    let r = s.act("alice", "solo", &n, "submit", json!({})).await;
    r.refused(409, "no_eligible_approvers");
    assert_eq!(r.body["error"]["details"]["available"], 0);
    s.put("alice", "/ws/solo/members/bob", json!({"email": "b@example.com", "role": "approver"})).await.expect(200);
    let high = s.change("alice", "solo", json!({"title": "t", "risk_level": "high", "rollback_plan": "undo"})).await;
    let r = s.act("alice", "solo", &high, "submit", json!({})).await;
    r.refused(409, "no_eligible_approvers");
    assert_eq!(r.body["error"]["details"]["needed"], 2);
    s.act("alice", "solo", &n, "submit", json!({})).await.expect(200);
}

#[tokio::test]
async fn actions_out_of_order_name_the_status_and_what_is_allowed() {
    let s = team().await;
    let n = s.change("alice", "acme", normal_change("t")).await;
    let r = s.act("alice", "acme", &n, "start", json!({})).await;
    r.refused(409, "invalid_transition");
    assert_eq!(r.body["error"]["details"]["status"], "draft");
    assert_eq!(r.body["error"]["details"]["allowed"], json!(["submit", "cancel"]));
    s.act("alice", "acme", &n, "complete", json!({"closure_code": "successful", "closure_notes": "x"}))
        .await
        .refused(409, "invalid_transition");
    s.act("bob", "acme", &n, "approve", json!({})).await.refused(409, "invalid_transition");
    s.act("alice", "acme", &n, "teleport", json!({})).await.refused(404, "not_found");
}

async fn in_progress(s: &TestServer) -> String {
    let n = s.change("alice", "acme", normal_change("t")).await;
    s.act("alice", "acme", &n, "submit", json!({})).await.expect(200);
    s.act("bob", "acme", &n, "approve", json!({})).await.expect(200);
    s.act("alice", "acme", &n, "schedule", json!({})).await.expect(200);
    s.act("alice", "acme", &n, "start", json!({})).await.expect(200);
    n
}

#[tokio::test]
async fn closing_actions_demand_their_reasons() {
    let s = team().await;
    let n = in_progress(&s).await;
    s.act("alice", "acme", &n, "complete", json!({})).await.refused(422, "closure_required");
    s.act("alice", "acme", &n, "complete", json!({"closure_code": "successful"}))
        .await
        .refused(422, "closure_required");
    s.act("alice", "acme", &n, "complete", json!({"closure_code": "successful", "closure_notes": "   "}))
        .await
        .refused(422, "closure_required");
    let r = s.act("alice", "acme", &n, "complete", json!({"closure_code": "meh", "closure_notes": "x"})).await;
    r.refused(422, "validation_failed");
    assert!(r.body["error"]["details"]["fields"]["closure_code"].is_string());
    s.act("alice", "acme", &n, "rollback", json!({})).await.refused(422, "rollback_reason_required");
    s.act("alice", "acme", &n, "rollback", json!({"reason": " "})).await.refused(422, "rollback_reason_required");
    s.act("alice", "acme", &n, "fail", json!({})).await.refused(422, "reason_required");
    assert_eq!(status(&s, &n).await, "in_progress");
    let c = s.act("alice", "acme", &n, "fail", json!({"reason": "disk full"})).await.expect(200);
    assert_eq!((c["status"].as_str(), c["failure_reason"].as_str()), (Some("failed"), Some("disk full")));

    let m = in_progress(&s).await;
    s.act("alice", "acme", &m, "complete", json!({"closure_code": "successful_with_issues", "closure_notes": "slow"}))
        .await
        .expect(200);
    s.act("alice", "acme", &m, "reopen", json!({})).await.refused(422, "reason_required");
    s.act("alice", "acme", &m, "complete", json!({"closure_code": "successful", "closure_notes": "x"}))
        .await
        .refused(409, "invalid_transition");
}

#[tokio::test]
async fn cancel_works_until_the_change_starts() {
    let s = team().await;
    for stop_at in ["draft", "review", "approved", "scheduled"] {
        let n = s.change("alice", "acme", normal_change(stop_at)).await;
        for (step, by) in [("submit", "alice"), ("approve", "bob"), ("schedule", "alice")] {
            if status(&s, &n).await == stop_at {
                break;
            }
            s.act(by, "acme", &n, step, json!({})).await.expect(200);
        }
        assert_eq!(status(&s, &n).await, stop_at);
        let c = s.act("alice", "acme", &n, "cancel", json!({"reason": "not needed"})).await.expect(200);
        assert_eq!((c["status"].as_str(), c["cancel_reason"].as_str()), (Some("cancelled"), Some("not needed")));
        s.act("alice", "acme", &n, "submit", json!({})).await.refused(409, "invalid_transition");
    }
    let n = in_progress(&s).await;
    s.act("alice", "acme", &n, "cancel", json!({})).await.refused(409, "invalid_transition");
}

#[tokio::test]
async fn cancelling_in_review_closes_the_pending_steps() {
    let s = team().await;
    let n = s.change("alice", "acme", normal_change("t")).await;
    s.act("alice", "acme", &n, "submit", json!({})).await.expect(200);
    assert_eq!(s.get("bob", "/ws/acme/approvals").await.expect(200)["items"].as_array().unwrap().len(), 1);
    s.act("alice", "acme", &n, "cancel", json!({})).await.expect(200);
    assert!(s.get("bob", "/ws/acme/approvals").await.expect(200)["items"].as_array().unwrap().is_empty());
    let steps = s.get("alice", &format!("/ws/acme/changes/{n}/approvals")).await.expect(200);
    assert_eq!(steps["items"][0]["status"], "cancelled");
    let activity = s.get("alice", &format!("/ws/acme/changes/{n}/activity")).await.expect(200);
    let actions: Vec<&str> =
        activity["items"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions[actions.len() - 2..], ["change.cancel", "approval_step.cancel"], "the change's row comes first");
}

#[tokio::test]
async fn who_may_move_a_change() {
    let s = team().await;
    s.put("alice", "/ws/acme/members/zoe", json!({"email": "z@example.com", "role": "member"})).await.expect(200);
    let mut body = normal_change("t");
    body["assignee"] = json!("zoe");
    let n = s.change("mia", "acme", body).await;
    s.act("vic", "acme", &n, "submit", json!({})).await.refused(403, "forbidden");
    s.act("alice", "acme", &n, "submit", json!({})).await.expect(200);
    s.act("bob", "acme", &n, "approve", json!({})).await.expect(200);
    s.act("carol", "acme", &n, "schedule", json!({})).await.refused(403, "forbidden");
    s.act("zoe", "acme", &n, "cancel", json!({})).await.refused(403, "forbidden");
    s.act("zoe", "acme", &n, "schedule", json!({})).await.expect(200);
    s.act("ada", "acme", &n, "start", json!({})).await.expect(200);
    s.act("mia", "acme", &n, "complete", json!({"closure_code": "successful", "closure_notes": "ok"}))
        .await
        .expect(200);
    assert_eq!(status(&s, &n).await, "completed");
    // The refused moves (vic's submit, carol's schedule, zoe's cancel) wrote nothing:
    // the change's rows are exactly the moves that were allowed, by who made them.
    let activity = s.get("alice", &format!("/ws/acme/changes/{n}/activity")).await.expect(200);
    let moves: Vec<(&str, &str)> = activity["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["target_type"] == "ChangeRequest")
        .map(|r| (r["action"].as_str().unwrap(), r["actor"].as_str().unwrap_or("-")))
        .collect();
    assert_eq!(
        moves,
        [
            ("change.create", "mia"),
            ("change.submit", "alice"),
            ("change.approve", "bob"),
            ("change.schedule", "zoe"),
            ("change.start", "ada"),
            ("change.complete", "mia"),
        ],
        "{activity}"
    );
    let everyone = s.get("alice", "/ws/acme/audit?limit=200").await.expect(200);
    for refused in ["vic", "carol", "zoe"] {
        let rows: Vec<&serde_json::Value> = everyone["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["actor"] == refused && r["action"] != "change.schedule")
            .collect();
        assert!(rows.is_empty(), "{refused}'s refused move wrote {rows:?}");
    }
}

#[tokio::test]
async fn schedule_needs_a_planned_window() {
    let s = team().await;
    let n = s.change("alice", "acme", json!({"title": "t"})).await;
    s.act("alice", "acme", &n, "submit", json!({})).await.expect(200);
    s.act("bob", "acme", &n, "approve", json!({})).await.expect(200);
    let r = s.act("alice", "acme", &n, "schedule", json!({})).await;
    r.refused(422, "validation_failed");
    assert!(r.body["error"]["details"]["fields"]["planned_start"].is_string());
    assert_eq!(status(&s, &n).await, "approved");
}

#[tokio::test]
async fn start_waits_for_dependencies() {
    let s = team().await;
    let a = s.change("alice", "acme", normal_change("first")).await;
    let mut body = normal_change("second");
    body["dependencies"] = json!([a.clone()]);
    body["affected_assets"] = json!(["billing"]);
    let b = s.change("alice", "acme", body).await;
    for n in [&a, &b] {
        s.act("alice", "acme", n, "submit", json!({})).await.expect(200);
        s.act("bob", "acme", n, "approve", json!({})).await.expect(200);
        s.act("alice", "acme", n, "schedule", json!({})).await.expect(200);
    }
    let r = s.act("alice", "acme", &b, "start", json!({})).await;
    r.refused(409, "dependencies_unmet");
    assert_eq!(r.body["error"]["details"]["blockers"], json!([{"number": a, "status": "scheduled"}]));
    s.act("alice", "acme", &a, "start", json!({})).await.expect(200);
    s.act("alice", "acme", &a, "complete", json!({"closure_code": "successful", "closure_notes": "ok"}))
        .await
        .expect(200);
    s.act("alice", "acme", &b, "start", json!({})).await.expect(200);
}

#[tokio::test]
async fn actions_honour_if_match() {
    let s = team().await;
    let n = s.change("alice", "acme", normal_change("t")).await;
    let path = format!("/ws/acme/changes/{n}/submit");
    s.send(Some("alice"), reqwest::Method::POST, &path, None, &[("if-match", "7")])
        .await
        .refused(412, "version_conflict");
    let c = s.send(Some("alice"), reqwest::Method::POST, &path, None, &[("if-match", "1")]).await.expect(200);
    assert_eq!(c["version"], 2);
}

#[tokio::test]
async fn racing_transitions_apply_once() {
    let s = std::sync::Arc::new(team().await);
    let n = s.change("alice", "acme", normal_change("t")).await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (s, n) = (s.clone(), n.clone());
        tasks.push(tokio::spawn(async move { s.act("alice", "acme", &n, "submit", json!({})).await.status }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    codes.sort();
    assert_eq!(codes, [200, 409, 409, 409, 409, 409]);
    let steps = s.get("alice", &format!("/ws/acme/changes/{n}/approvals")).await.expect(200);
    assert_eq!(steps["items"].as_array().unwrap().len(), 1, "one submit, one set of steps");
    assert_eq!(s.verify("alice", "acme").await["ok"], true);
}

#[tokio::test]
async fn words_given_with_a_move_are_audited() {
    let s = team().await;
    let n = in_progress(&s).await;
    s.act(
        "alice",
        "acme",
        &n,
        "complete",
        json!({"closure_code": "successful", "closure_notes": "done", "comment": "smooth"}),
    )
    .await
    .expect(200);
    s.act("alice", "acme", &n, "reopen", json!({"reason": "monitoring alert"})).await.expect(200);
    let rows = s.get("alice", "/ws/acme/audit?action=change.reopen").await.expect(200);
    assert_eq!(rows["items"][0]["metadata"]["reason"], "monitoring alert");
    let rows = s.get("alice", "/ws/acme/audit?action=change.complete").await.expect(200);
    assert_eq!(rows["items"][0]["metadata"]["comment"], "smooth");
}

#[tokio::test]
async fn a_draft_that_changes_type_takes_the_new_types_lead_time() {
    let s = team().await;
    let n = s.change("alice", "acme", json!({"title": "t", "change_type": "emergency"})).await;
    let c = s.patch("alice", &format!("/ws/acme/changes/{n}"), json!({"change_type": "normal"})).await.expect(200);
    assert_eq!(c["min_lead_time_hours"], 24);
}

/// Alice cancels between Bob's read and Bob's write: Bob's commit fails its condition,
/// his request re-reads, finds the change cancelled, and is refused. His attempt
/// leaves nothing in the audit log.
#[tokio::test]
async fn a_transition_on_a_change_that_moved_on_is_refused_without_an_audit_row() {
    let s = team().await;
    let n = s.change("alice", "acme", normal_change("t")).await;
    s.act("alice", "acme", &n, "submit", json!({})).await.expect(200);
    let number = n.clone();
    let _rival = s.before_next_write(move |app| async move {
        let input = ActionInput { reason: Some("superseded".into()), ..Default::default() };
        app.act(&actor("alice"), &vigilo_e2e::slug("acme"), vigilo_e2e::number(&number), "cancel", input, None)
            .await
            .expect("the rival cancel commits");
    });
    let r = s.act("bob", "acme", &n, "approve", json!({})).await;
    r.refused(409, "invalid_transition");
    assert_eq!(r.body["error"]["details"]["status"], "cancelled");
    let audit = s.get("alice", "/ws/acme/audit?limit=200").await.expect(200);
    let rows = audit["items"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["action"] == "change.cancel" && r["actor"] == "alice"));
    assert!(!rows.iter().any(|r| r["actor"] == "bob"), "bob's refused attempt wrote a row: {audit}");
    assert_eq!(s.verify("alice", "acme").await["ok"], true);
}

/// With If-Match, a change that moved on between read and write is a 412, and the
/// refused request writes nothing.
#[tokio::test]
async fn an_if_match_request_on_a_change_that_moved_on_gets_412_without_an_audit_row() {
    let s = team().await;
    let n = s.change("alice", "acme", normal_change("t")).await;
    let rows_before = s.verify("alice", "acme").await["rows_checked"].as_u64().unwrap();
    let number = n.clone();
    let _rival = s.before_next_write(move |app| async move {
        let edit = serde_json::from_value(json!({"title": "renamed meanwhile"})).unwrap();
        app.patch_change(&actor("alice"), &vigilo_e2e::slug("acme"), vigilo_e2e::number(&number), edit, None)
            .await
            .expect("the rival edit commits");
    });
    let path = format!("/ws/acme/changes/{n}/submit");
    let r = s.send(Some("alice"), reqwest::Method::POST, &path, None, &[("if-match", "1")]).await;
    r.refused(412, "version_conflict");
    assert_eq!(r.body["error"]["details"], json!({"expected": 1, "current": 2}));
    let c = s.get("alice", &format!("/ws/acme/changes/{n}")).await.expect(200);
    assert_eq!((c["status"].as_str(), c["title"].as_str()), (Some("draft"), Some("renamed meanwhile")));
    let report = s.verify("alice", "acme").await;
    assert_eq!(report["rows_checked"].as_u64().unwrap(), rows_before + 1, "only the edit was written");
}
