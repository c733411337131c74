//! Approval policies (matching, stages, delegates), comments and the activity feed,
//! the risk questionnaire and similar changes.

use serde_json::Value;
use vigilo_e2e::{in_hours, json, normal_change, TestServer};

async fn team() -> TestServer {
    let s = TestServer::start().await;
    s.workspace(
        "olga",
        "acme",
        &[
            ("alice", "admin"),
            ("bob", "approver"),
            ("carol", "approver"),
            ("dan", "approver"),
            ("erin", "approver"),
            ("mia", "member"),
            ("vic", "viewer"),
        ],
    )
    .await;
    s
}

fn policy(name: &str, priority: i64, matcher: Value, stages: Value) -> Value {
    json!({"name": name, "priority": priority, "match": matcher, "stages": stages})
}

fn any_of(users: &[&str]) -> Value {
    json!([{"name": "review", "mode": "any", "approvers": {"users": users}}])
}

async fn steps(s: &TestServer, n: &str) -> Vec<Value> {
    s.get("vic", &format!("/ws/acme/changes/{n}/approvals")).await.expect(200)["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn policies_are_admin_business_and_validated() {
    let s = team().await;
    let p = policy("db", 10, json!({"assets_any": ["db"]}), any_of(&["bob"]));
    s.post("mia", "/ws/acme/approval-policies", p.clone()).await.refused(403, "forbidden");
    s.post("bob", "/ws/acme/approval-policies", p.clone()).await.refused(403, "forbidden");
    let bad = json!({"name": "", "stages": [{"name": "s", "mode": "quorum", "approvers": {"roles": ["viewer"]}}]});
    let r = s.post("alice", "/ws/acme/approval-policies", bad).await;
    r.refused(422, "validation_failed");
    for f in ["name", "priority", "stages[0].quorum", "stages[0].approvers.roles"] {
        assert!(r.body["error"]["details"]["fields"][f].is_string(), "{f}: {}", r.body);
    }
    s.post("alice", "/ws/acme/approval-policies", json!({"stages": "x"})).await.refused(400, "bad_request");
    let made = s.post("alice", "/ws/acme/approval-policies", p).await.expect(201);
    let id = made["id"].as_str().unwrap().to_owned();
    let path = format!("/ws/acme/approval-policies/{id}");
    assert_eq!(s.get("vic", "/ws/acme/approval-policies").await.expect(200)["items"][0]["id"], id.as_str());
    let replaced = policy("db v2", 5, json!({"assets_any": ["db"]}), any_of(&["carol"]));
    let stale = [("if-match", "7")];
    let r = s.send(Some("alice"), reqwest::Method::PUT, &path, Some(replaced.clone()), &stale).await;
    r.refused(412, "version_conflict");
    let v2 = s.put("alice", &path, replaced).await.expect(200);
    assert_eq!((v2["name"].as_str(), v2["version"].as_u64()), (Some("db v2"), Some(2)));
    s.put("mia", &path, json!({})).await.refused(403, "forbidden");
    assert_eq!(s.delete("alice", &path).await.status, 204);
    s.get("vic", &path).await.refused(404, "not_found");
    let actions: Vec<String> = s.get("olga", "/ws/acme/audit?target_type=ApprovalPolicy").await.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["approval_policy.delete", "approval_policy.update", "approval_policy.create"]);
}

#[tokio::test]
async fn the_lowest_priority_number_among_matching_policies_decides() {
    let s = team().await;
    let p = |name: &str, prio: i64, m: Value, who: &str| policy(name, prio, m, any_of(&[who]));
    s.post("alice", "/ws/acme/approval-policies", p("any change", 100, json!({}), "dan")).await.expect(201);
    s.post("alice", "/ws/acme/approval-policies", p("db", 20, json!({"assets_any": ["db"]}), "bob")).await.expect(201);
    let payments = p("payments", 10, json!({"custom": {"team": "payments"}, "change_types": ["normal"]}), "carol");
    let payments = s.post("alice", "/ws/acme/approval-policies", payments).await.expect(201);
    let high = p("high risk", 1, json!({"risk_levels": ["high"]}), "erin");
    s.post("alice", "/ws/acme/approval-policies", high).await.expect(201);
    let file = |assets: Value, custom: Value| {
        let mut b = normal_change("t");
        b["affected_assets"] = assets;
        b["custom_fields"] = custom;
        b
    };
    let cases = [
        (file(json!(["db"]), json!({"team": "payments"})), "carol"),
        (file(json!(["db"]), json!({})), "bob"),
        (file(json!(["web"]), json!({"team": "search"})), "dan"),
    ];
    for (body, who) in cases {
        let n = s.change("mia", "acme", body).await;
        s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
        let st = steps(&s, &n).await;
        assert_eq!(st[0]["eligible"], json!([who]), "{n}");
    }
    let n = s.change("mia", "acme", file(json!(["db"]), json!({"team": "payments"}))).await;
    s.patch("mia", &format!("/ws/acme/changes/{n}"), json!({"risk_level": "high"})).await.expect(200);
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    assert_eq!(steps(&s, &n).await[0]["eligible"], json!(["erin"]));
    // The submit row names the policy that applied.
    let rows = s.get("olga", "/ws/acme/audit?action=change.submit").await.expect(200);
    let first_submit = rows["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(first_submit["metadata"]["approval_policy"]["id"], payments["id"]);
}

#[tokio::test]
async fn a_three_stage_policy_is_walked_to_approved() {
    let s = team().await;
    s.put("alice", "/ws/acme/groups/cab", json!({"members": ["carol", "dan"]})).await.expect(200);
    let stages = json!([
        {"name": "peer review", "mode": "any", "approvers": {"users": ["bob", "mia"]}},
        {"name": "CAB", "mode": "all", "approvers": {"groups": ["cab"]}},
        {"name": "management", "mode": "quorum", "quorum": 2, "approvers": {"roles": ["admin", "owner"]}}
    ]);
    s.post("alice", "/ws/acme/approval-policies", policy("prod", 1, json!({}), stages)).await.expect(201);
    let n = s.change("erin", "acme", normal_change("prod deploy")).await;
    s.act("erin", "acme", &n, "submit", json!({})).await.expect(200);
    let st = steps(&s, &n).await;
    let status: Vec<&str> = st.iter().map(|x| x["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["pending", "waiting", "waiting"]);
    assert_eq!(st[0]["eligible"], json!(["bob"]), "mia is named but holds no approving role");
    // Later stages wait their turn.
    s.act("carol", "acme", &n, "approve", json!({})).await.refused(403, "not_an_approver");
    s.act("bob", "acme", &n, "approve", json!({})).await.expect(200);
    let c = s.act("carol", "acme", &n, "approve", json!({})).await.expect(200);
    assert_eq!(c["status"], "review", "CAB needs all of its members");
    s.act("alice", "acme", &n, "approve", json!({})).await.refused(403, "not_an_approver");
    s.act("dan", "acme", &n, "approve", json!({})).await.expect(200);
    assert_eq!(s.act("alice", "acme", &n, "approve", json!({})).await.expect(200)["status"], "review");
    s.act("alice", "acme", &n, "approve", json!({})).await.refused(409, "already_decided");
    let c = s.act("olga", "acme", &n, "approve", json!({"comment": "go"})).await.expect(200);
    assert_eq!(c["status"], "approved");
    let st = steps(&s, &n).await;
    assert!(st.iter().all(|x| x["status"] == "approved" && x["policy_id"].is_string()));
    assert_eq!(s.verify("olga", "acme").await["ok"], true);
}

#[tokio::test]
async fn a_stage_nobody_can_take_refuses_the_submit() {
    let s = team().await;
    let stages = json!([{"name": "owners", "mode": "quorum", "quorum": 2, "approvers": {"roles": ["owner"]}}]);
    s.post("alice", "/ws/acme/approval-policies", policy("owners", 1, json!({}), stages)).await.expect(201);
    let n = s.change("mia", "acme", normal_change("t")).await;
    let r = s.act("mia", "acme", &n, "submit", json!({})).await;
    r.refused(409, "no_eligible_approvers");
    assert_eq!(r.body["error"]["details"], json!({"needed": 2, "available": 1}));
}

#[tokio::test]
async fn delegates_decide_policy_steps_only_inside_their_dates() {
    let s = team().await;
    s.post("alice", "/ws/acme/approval-policies", policy("p", 1, json!({}), any_of(&["bob", "carol"])))
        .await
        .expect(201);
    // carol's delegation to erin has not begun; bob's to erin holds now.
    let later = json!({"delegate": "erin", "from": in_hours(24), "until": in_hours(48)});
    s.put("carol", "/ws/acme/members/carol/delegate", later).await.expect(200);
    let n = s.change("mia", "acme", normal_change("t")).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    s.act("erin", "acme", &n, "approve", json!({})).await.refused(403, "not_an_approver");
    let now = json!({"delegate": "erin", "from": in_hours(-1), "until": in_hours(2)});
    s.put("bob", "/ws/acme/members/bob/delegate", now).await.expect(200);
    let c = s.act("erin", "acme", &n, "approve", json!({})).await.expect(200);
    assert_eq!(c["status"], "approved");
    let d = &steps(&s, &n).await[0]["decisions"][0];
    assert_eq!((d["user"].as_str(), d["on_behalf_of"].as_str()), (Some("erin"), Some("bob")));
}

#[tokio::test]
async fn the_author_never_approves_even_as_a_delegate() {
    let s = team().await;
    s.post("alice", "/ws/acme/approval-policies", policy("p", 1, json!({}), any_of(&["bob"]))).await.expect(201);
    let window = json!({"delegate": "mia", "from": in_hours(-1), "until": in_hours(2)});
    s.put("bob", "/ws/acme/members/bob/delegate", window).await.expect(200);
    let n = s.change("mia", "acme", normal_change("t")).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    s.act("mia", "acme", &n, "approve", json!({})).await.refused(403, "self_approval_forbidden");
    assert!(s.get("mia", "/ws/acme/approvals").await.expect(200)["items"].as_array().unwrap().is_empty());
    // A policy naming the author still never makes them eligible.
    s.post("alice", "/ws/acme/approval-policies", policy("q", 0, json!({}), any_of(&["erin"]))).await.expect(201);
    let m = s.change("erin", "acme", normal_change("t")).await;
    s.act("erin", "acme", &m, "submit", json!({})).await.refused(409, "no_eligible_approvers");
}

#[tokio::test]
async fn comments_and_moves_share_one_activity_feed() {
    let s = team().await;
    let n = s.change("mia", "acme", normal_change("t")).await;
    let path = format!("/ws/acme/changes/{n}/comments");
    s.post("vic", &path, json!({"body": "hi"})).await.refused(403, "forbidden");
    s.post("mia", &path, json!({"body": "  "})).await.refused(422, "validation_failed");
    s.post("mia", &path, json!({"body": 4})).await.refused(400, "bad_request");
    s.post("mia", "/ws/acme/changes/CHG-00404/comments", json!({"body": "x"})).await.refused(404, "not_found");
    let c = s.post("bob", &path, json!({"body": "what about the replica?"})).await.expect(201);
    assert_eq!(c["author"], "bob");
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    s.post("mia", &path, json!({"body": "covered in step 3"})).await.expect(201);
    let list = s.get("vic", &format!("{path}?limit=1")).await.expect(200);
    assert_eq!(list["items"][0]["body"], "what about the replica?");
    let next = list["next_cursor"].as_str().unwrap();
    let rest = s.get("vic", &format!("{path}?limit=1&cursor={next}")).await.expect(200);
    assert_eq!(rest["items"][0]["body"], "covered in step 3");
    let feed = s.get("vic", &format!("/ws/acme/changes/{n}/activity")).await.expect(200);
    let actions: Vec<&str> = feed["items"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["change.create", "comment.create", "change.submit", "approval_step.create", "comment.create"]);
}

#[tokio::test]
async fn the_risk_questionnaire_scores_and_suggests() {
    let s = team().await;
    let mut body = normal_change("upgrade postgres");
    body["affected_assets"] = json!((1..=11).map(|i| format!("db-{i}")).collect::<Vec<_>>());
    let n = s.change("mia", "acme", body).await;
    let path = format!("/ws/acme/changes/{n}/risk-assessment");
    s.put("vic", &path, json!({"answers": {"asset_criticality": "high"}})).await.refused(403, "forbidden");
    let r = s.put("mia", &path, json!({"answers": {"asset_criticality": "extreme"}})).await;
    r.refused(422, "validation_failed");
    assert!(r.body["error"]["details"]["fields"]["answers.asset_criticality"].is_string());
    s.put("mia", &path, json!({"answers": {"asset_criticality": "high", "colour": "red"}}))
        .await
        .refused(400, "bad_request");
    s.get("mia", &path).await.refused(404, "not_found");
    let calm = json!({"answers": {"asset_criticality": "low", "tested": true, "rollback_tested": true, "in_maintenance_window": true}});
    let a = s.put("mia", &path, calm).await.expect(200);
    assert_eq!((a["score"].as_u64(), a["suggested_risk_level"].as_str()), (Some(15), Some("low")));
    let factors: Vec<&str> = a["factors"].as_array().unwrap().iter().map(|f| f["factor"].as_str().unwrap()).collect();
    assert_eq!(factors, ["asset_criticality", "asset_count", "timing", "similar_failure_rate", "preparation"]);
    let wild =
        json!({"answers": {"asset_criticality": "critical", "customer_facing": true, "requires_downtime": true}});
    let a = s.put("mia", &path, wild).await.expect(200);
    assert_eq!(a["suggested_risk_level"], "high");
    assert!(a["score"].as_u64().unwrap() >= 65 && a["score"].as_u64().unwrap() <= 100);
    assert_eq!(s.get("vic", &path).await.expect(200)["score"], a["score"]);
    assert_eq!(s.get("vic", &format!("/ws/acme/changes/{n}")).await.expect(200)["risk_level"], "low", "people decide");
    let rows = s.get("olga", "/ws/acme/audit?action=change.risk_assess").await.expect(200);
    assert_eq!(rows["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn similar_changes_show_their_outcomes_and_feed_the_risk_score() {
    let s = team().await;
    let run = |title: &str, asset: &str| {
        let mut b = normal_change(title);
        b["affected_assets"] = json!([asset]);
        b["change_type"] = json!("standard");
        b["planned_start"] = json!(in_hours(10));
        b["planned_end"] = json!(in_hours(11));
        b
    };
    let mut done = Vec::new();
    for (title, asset, ending) in [
        ("rotate cert on api", "api", "ok"),
        ("rotate cert on api again", "api", "fail"),
        ("resize volume", "api", "rollback"),
        ("rotate cert on billing", "billing", "ok"),
        ("unrelated work", "search", "ok"),
    ] {
        let n = s.change("mia", "acme", run(title, asset)).await;
        s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
        s.act("mia", "acme", &n, "schedule", json!({})).await.expect(200);
        s.act("mia", "acme", &n, "start", json!({})).await.expect(200);
        let (action, body) = match ending {
            "ok" => ("complete", json!({"closure_code": "successful", "closure_notes": "fine"})),
            "fail" => ("fail", json!({"reason": "expired chain"})),
            _ => ("rollback", json!({"reason": "latency"})),
        };
        s.act("mia", "acme", &n, action, body).await.expect(200);
        done.push(n);
    }
    let n = s.change("mia", "acme", run("rotate cert on api", "api")).await;
    let similar = s.get("vic", &format!("/ws/acme/changes/{n}/similar")).await.expect(200);
    let items = similar["items"].as_array().unwrap();
    let by_number = |num: &str| items.iter().find(|i| i["number"] == num).cloned();
    assert_eq!(by_number(&done[0]).unwrap()["outcome"], "successful");
    assert_eq!(by_number(&done[1]).unwrap()["outcome"], "failed");
    assert_eq!(by_number(&done[2]).unwrap()["outcome"], "rolled_back");
    assert_eq!(by_number(&done[2]).unwrap()["shared_assets"], json!(["api"]));
    assert_eq!(by_number(&done[3]).unwrap()["shared_assets"], json!([]), "similar by title alone");
    assert!(by_number(&done[4]).is_none(), "neither asset nor title in common");
    assert!(by_number(&n).is_none());
    let path = format!("/ws/acme/changes/{n}/risk-assessment");
    let a = s.put("mia", &path, json!({"answers": {"asset_criticality": "low"}})).await.expect(200);
    let history =
        a["factors"].as_array().unwrap().iter().find(|f| f["factor"] == "similar_failure_rate").unwrap().clone();
    assert_eq!(history["detail"], "2 of 4 similar changes failed or were rolled back");
    assert_eq!(history["points"], 10);
}
