//! Every sample event in `events/` goes through its function's handler, in the order
//! of a small story on one table, and gets the status the story expects.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use serde_json::Value;
use tower::ServiceExt;
use vigilo_app::Table;
use vigilo_lambda::Group;

/// (function, event file without `.json`, expected status), in story order.
const STORY: &[(Group, &str, u16)] = &[
    (Group::Workspaces, "health", 200),
    (Group::Workspaces, "openapi", 200),
    (Group::Workspaces, "list-workspaces-without-claims", 401),
    (Group::Workspaces, "create-workspace", 201),
    (Group::Workspaces, "put-member", 200),
    (Group::Changes, "create-change", 201),
    (Group::Changes, "list-changes", 200),
    (Group::Changes, "get-change", 200),
    (Group::Transitions, "start-before-approval", 409),
    (Group::Transitions, "submit", 200),
    (Group::Approvals, "my-approvals", 200),
    (Group::Approvals, "approve", 200),
    (Group::Audit, "list-audit", 200),
    (Group::Audit, "verify", 200),
    (Group::Audit, "list-audit-as-a-stranger", 404),
    (Group::Governance, "create-freeze-window", 201),
    (Group::Governance, "list-freeze-windows", 200),
    (Group::Governance, "create-policy-as-an-approver", 403),
    (Group::Planning, "add-task", 201),
    (Group::Planning, "add-comment", 201),
    (Group::Planning, "conflicts", 200),
];

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn event(function: Group, name: &str) -> String {
    let path = events_dir().join(function.name()).join(format!("{name}.json"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Feeds one API Gateway event through a function's handler, as the runtime would.
async fn invoke(table: &Arc<dyn Table>, function: Group, text: &str) -> (u16, Value) {
    let request = lambda_http::request::from_str(text).expect("an API Gateway v2 event");
    let response = vigilo_lambda::router(function, table.clone()).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn tell_the_story(table: Arc<dyn Table>) {
    let mut bodies = std::collections::HashMap::new();
    for (function, name, expected) in STORY {
        let (status, body) = invoke(&table, *function, &event(*function, name)).await;
        assert_eq!(status, *expected, "{}/{name}: {body}", function.name());
        bodies.insert(*name, body);
    }
    assert_eq!(bodies["openapi"]["openapi"], "3.1.0");
    assert!(bodies["openapi"]["paths"]["/ws/{slug}/changes"]["post"].is_object());
    assert_eq!(bodies["create-change"]["number"], "CHG-00001");
    assert_eq!(bodies["create-change"]["author"], "alice", "the author comes from the verified claims");
    assert_eq!(bodies["start-before-approval"]["error"]["code"], "invalid_transition");
    assert_eq!(bodies["my-approvals"]["items"].as_array().unwrap().len(), 1);
    assert_eq!(bodies["approve"]["status"], "approved");
    let rows = bodies["list-audit"]["items"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["actor"], "bob");
    assert_eq!(rows[0]["metadata"]["ip"], "203.0.113.7", "the source IP API Gateway saw reaches the audit row");
    assert_eq!(rows[0]["metadata"]["request_id"], "Q2hhbmdlTWdtdA=", "so does its request id");
    assert_eq!(bodies["verify"]["ok"], true);
    assert_eq!(bodies["list-workspaces-without-claims"]["error"]["code"], "unauthenticated");
    assert_eq!(bodies["list-freeze-windows"]["items"][0]["name"], "Year-end freeze");
    assert_eq!(bodies["create-policy-as-an-approver"]["error"]["code"], "forbidden");
    assert_eq!((bodies["add-task"]["id"].as_str(), bodies["add-task"]["gate"].as_str()), (Some("T001"), Some("start")));
    assert_eq!(bodies["add-comment"]["author"], "bob");
    assert_eq!(bodies["conflicts"]["items"], serde_json::json!([]));
}

#[tokio::test]
async fn sample_events_through_each_handler() {
    let dir = tempfile::tempdir().unwrap();
    let table = vigilo_local::SqliteTable::open(&dir.path().join("t.db")).unwrap();
    tell_the_story(Arc::new(table)).await;
}

#[tokio::test]
#[ignore = "needs emulated AWS; ./scripts/test starts moto and runs it"]
async fn sample_events_through_each_handler_on_dynamodb() {
    tell_the_story(Arc::new(vigilo_aws::emulator::fresh_table().await)).await;
}

#[test]
fn every_function_has_events_and_every_event_is_in_the_story() {
    for f in Group::ALL {
        let mut files: Vec<String> = std::fs::read_dir(events_dir().join(f.name()))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(".json").to_owned())
            .collect();
        files.sort();
        let mut told: Vec<String> = STORY.iter().filter(|(g, _, _)| g == f).map(|(_, n, _)| (*n).to_owned()).collect();
        told.sort();
        assert!(!files.is_empty(), "{} has no sample events", f.name());
        assert_eq!(files, told, "{}", f.name());
    }
}

#[tokio::test]
async fn a_function_answers_only_its_own_routes_and_ignores_forged_claim_headers() {
    let dir = tempfile::tempdir().unwrap();
    let table: Arc<dyn Table> = Arc::new(vigilo_local::SqliteTable::open(&dir.path().join("t.db")).unwrap());
    let create = event(Group::Workspaces, "create-workspace");
    let (status, body) = invoke(&table, Group::Audit, &create).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));

    // Without the authorizer's context, a token the function could read for itself
    // proves nothing: an unsigned JWT naming alice in the Authorization header (which
    // API Gateway passes through) and her claims in a header are both ignored.
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = format!(
        "Bearer {}.{}.",
        b64(serde_json::json!({"alg": "none", "typ": "JWT"})),
        b64(serde_json::json!({"sub": "alice", "email": "alice@example.com", "exp": 4_102_444_800u64}))
    );
    let mut forged: Value = serde_json::from_str(&create).unwrap();
    forged["requestContext"].as_object_mut().unwrap().remove("authorizer");
    forged["headers"]["authorization"] = unsigned.clone().into();
    forged["headers"]["x-amzn-oidc-identity"] = "alice".into();
    forged["headers"]["x-amzn-oidc-data"] = unsigned.into();
    let (status, body) = invoke(&table, Group::Workspaces, &forged.to_string()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthenticated")), "{body}");
    // The same request with the authorizer's verified claims is served: the refusal
    // above came from the missing claims, not from anything else about the event.
    let (status, body) = invoke(&table, Group::Workspaces, &create).await;
    assert_eq!(status, 201, "{body}");
}

/// One API event of the template: its name, the function it invokes, and whether it
/// opts out of the JWT authorizer.
#[derive(Debug, PartialEq, Eq)]
struct Event {
    name: String,
    function: String,
    public: bool,
}

fn template_events() -> std::collections::BTreeMap<(String, String), Event> {
    let template: serde_norway::Value = serde_norway::from_str(vigilo_aws::provision::TEMPLATE).unwrap();
    let mut events = std::collections::BTreeMap::new();
    for (id, resource) in template["Resources"].as_mapping().unwrap() {
        let Some(list) = resource["Properties"]["Events"].as_mapping() else { continue };
        for (name, e) in list {
            if e["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let p = &e["Properties"];
            let key = (p["Method"].as_str().unwrap().to_ascii_lowercase(), p["Path"].as_str().unwrap().to_owned());
            let event = Event {
                name: name.as_str().unwrap().to_owned(),
                function: id.as_str().unwrap().to_owned(),
                public: p["Auth"]["Authorizer"].as_str() == Some("NONE"),
            };
            if let Some(twice) = events.insert(key.clone(), event) {
                panic!("{key:?} has two events: {twice:?} and another");
            }
        }
    }
    events
}

/// The route table and the template agree in both directions: every route has an
/// event of the same name on its group's function with the same authorizer, and every
/// event is a route. A route missing from the template would be a 404 on AWS only.
#[test]
fn the_template_and_the_route_table_agree() {
    let doc = vigilo_http::api::openapi();
    let mut routes = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let tag = op["tags"][0].as_str().unwrap();
            let group = Group::ALL.iter().find(|g| g.name() == tag).unwrap_or_else(|| panic!("{method} {path}: {tag}"));
            let route = Event {
                name: op["operationId"].as_str().unwrap().to_owned(),
                function: group.function().to_owned(),
                public: vigilo_http::api::is_public(op),
            };
            routes.insert((method.clone(), path.clone()), route);
        }
    }
    let events = template_events();
    for (key, route) in &routes {
        match events.get(key) {
            None => panic!("{key:?} ({}) has no event in infra/template.yaml", route.name),
            Some(e) => assert_eq!(e, route, "{key:?}: the template's event differs from the route table"),
        }
    }
    for (key, e) in &events {
        assert!(routes.contains_key(key), "the template's event {} ({key:?}) is no route of the table", e.name);
    }
    assert_eq!(routes.len(), events.len());
    assert!(routes.len() >= 50, "only {} routes", routes.len());
}

/// A route's operation id names it in the template, in logs and in generated
/// clients: each is used once.
#[test]
fn operation_ids_are_unique_and_every_operation_is_tagged_with_its_group() {
    let doc = vigilo_http::api::openapi();
    let mut seen = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(seen.insert(id.to_owned()), "{id} is used twice");
            assert_eq!(op["tags"].as_array().map(Vec::len), Some(1), "{method} {path}");
            assert!(op["responses"].as_object().unwrap().keys().any(|s| s.starts_with('2')), "{id} has no success");
        }
    }
}

/// Every route the template sends to a function is one its router serves: without
/// claims it is refused as unauthenticated (or answered, for `/health`), never 404/405.
#[tokio::test]
async fn every_template_route_is_served_by_its_function() {
    let template: serde_norway::Value = serde_norway::from_str(vigilo_aws::provision::TEMPLATE).unwrap();
    let resources = template["Resources"].as_mapping().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let table: Arc<dyn Table> = Arc::new(vigilo_local::SqliteTable::open(&dir.path().join("t.db")).unwrap());
    let mut routes = 0;
    for f in Group::ALL {
        let binary = format!("vigilo-fn-{}", f.name());
        let (_, resource) = resources
            .iter()
            .find(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary.as_str()))
            .unwrap_or_else(|| panic!("no function builds {binary}"));
        assert_eq!(resource["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"));
        for (_, e) in resource["Properties"]["Events"].as_mapping().unwrap() {
            let (method, path) =
                (e["Properties"]["Method"].as_str().unwrap(), e["Properties"]["Path"].as_str().unwrap());
            let concrete = path
                .replace("{slug}", "acme")
                .replace("{number}", "CHG-00001")
                .replace("{action}", "submit")
                .replace("{user_id}", "bob")
                .replace("{name}", "cab")
                .replace("{id}", "row")
                .replace("{task_id}", "T001")
                .replace("{other}", "CHG-00002");
            let request = axum::http::Request::builder()
                .method(method)
                .uri(&concrete)
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{}"))
                .unwrap();
            let response = vigilo_lambda::router(*f, table.clone()).oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            if path.starts_with("/a/") {
                // Signed links need no caller: anything but "no such route" is served.
                assert!(![404, 405].contains(&status), "{} {method} {path}: {status}", f.name());
            } else {
                let expected = if path == "/health" || path == "/openapi.json" { 200 } else { 401 };
                assert_eq!(status, expected, "{} {method} {path}", f.name());
            }
            routes += 1;
        }
    }
    assert!(routes >= 40, "only {routes} routes found in the template");
}

/// The scheduled checkpoint event through the sweeps handler: one signed checkpoint
/// per workspace, naming the chain head and the tree's root; every run signs anew.
#[tokio::test]
async fn the_checkpoint_schedule_event_signs_each_workspace_tree() {
    use vigilo_app::{Blobs, SystemClock, Vigilo};
    use vigilo_domain::checkpoint::Checkpoint;

    let dir = tempfile::tempdir().unwrap();
    let table: Arc<dyn Table> = Arc::new(vigilo_local::SqliteTable::open(&dir.path().join("t.db")).unwrap());
    invoke(&table, Group::Workspaces, &event(Group::Workspaces, "create-workspace")).await;
    invoke(&table, Group::Workspaces, &event(Group::Workspaces, "put-member")).await;
    let signer = Arc::new(vigilo_local::KeyFileSigner::open_or_create(dir.path().join("key.pem")).unwrap());
    let archive = Arc::new(vigilo_local::FolderBlobs::new(dir.path().join("archive")));
    let app = Vigilo::new(table.clone(), Arc::new(SystemClock)).with_audit_keeping(signer.clone(), archive.clone());
    let schedule: Value =
        serde_json::from_str(&std::fs::read_to_string(events_dir().join("sweeps/checkpoint.json")).unwrap()).unwrap();

    let summary = vigilo_lambda::sweep(&app, &schedule).await.unwrap();
    assert_eq!((summary["workspaces"].as_u64(), summary["written"].as_u64()), (Some(1), Some(1)), "{summary}");
    let ws = app.workspace_by_slug(&vigilo_domain::ids::Slug::parse("acme").unwrap()).await.unwrap().unwrap();
    let head = vigilo_app::txn::load_head(&*table, &ws.id).await.unwrap().unwrap();
    let keys = archive.list(&format!("checkpoints/{}/", ws.id)).await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let note = String::from_utf8(archive.get(&keys[0]).await.unwrap().unwrap()).unwrap();
    let checkpoint = Checkpoint::parse(&note).unwrap();
    assert_eq!((checkpoint.tree_size, checkpoint.head_hash.as_str()), (head.seq, head.hash.as_str()));
    assert!(checkpoint.signed_by(vigilo_app::signer::Signer::public_key(&*signer)));

    assert!(vigilo_lambda::sweep(&app, &serde_json::json!({"sweep": "nope"})).await.is_err());
    let notices: Value =
        serde_json::from_str(&std::fs::read_to_string(events_dir().join("sweeps/notices.json")).unwrap()).unwrap();
    let report = vigilo_lambda::sweep(&app, &notices).await.unwrap();
    assert_eq!(report["notices"]["sent"], 0, "nothing waits: {report}");
    let escalations: Value =
        serde_json::from_str(&std::fs::read_to_string(events_dir().join("sweeps/escalate.json")).unwrap()).unwrap();
    let report = vigilo_lambda::sweep(&app, &escalations).await.unwrap();
    assert_eq!((report["workspaces"].as_u64(), report["escalated"].as_u64()), (Some(1), Some(0)), "{report}");
    let freeze: Value =
        serde_json::from_str(&std::fs::read_to_string(events_dir().join("sweeps/freeze.json")).unwrap()).unwrap();
    let report = vigilo_lambda::sweep(&app, &freeze).await.unwrap();
    assert_eq!((report["workspaces"].as_u64(), report["unscheduled"].as_array().map(Vec::len)), (Some(1), Some(0)));
    // Schedules deployed before the sweeps took the names they have now still run.
    let old = vigilo_lambda::sweep(&app, &serde_json::json!({"sweep": "escalations"})).await.unwrap();
    assert_eq!(old["workspaces"].as_u64(), Some(1), "{old}");
}

/// Every sample event of the sweeps function names a sweep, and every schedule in the
/// template sends one of those events.
#[test]
fn every_schedule_sends_a_sweep_with_a_sample_event() {
    let template = std::fs::read_to_string(events_dir().join("../infra/template.yaml")).unwrap();
    let mut scheduled: Vec<String> = template
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Input: '"))
        .filter_map(|l| l.strip_suffix('\''))
        .map(|json| serde_json::from_str::<Value>(json).unwrap()["sweep"].as_str().unwrap().to_owned())
        .collect();
    scheduled.sort();
    let mut samples: Vec<String> = std::fs::read_dir(events_dir().join("sweeps"))
        .unwrap()
        .map(|e| {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            serde_json::from_str::<Value>(&text).unwrap()["sweep"].as_str().unwrap().to_owned()
        })
        .collect();
    samples.sort();
    assert_eq!(scheduled, samples);
    for name in &samples {
        let sweep = vigilo_app::services::sweeps::Sweep::parse(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(sweep.name(), name, "schedules send the sweeps' own names");
    }
}
