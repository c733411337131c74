//! The real bootstrap binary under the Lambda Runtime API protocol: it starts, asks
//! for an event, routes it through the workspaces router, and answers.

use std::process::{Command, Stdio};

use vigilo_lambda::stand_in::{lambda_env, RuntimeApi};

#[tokio::test]
async fn the_bootstrap_serves_an_event_through_the_runtime_api() {
    let event = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/workspaces/health.json"))
        .expect("the health sample event");
    let api = RuntimeApi::start(event).await.unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigilo-fn-workspaces"))
        .env_clear()
        .envs(lambda_env(&api, "workspaces"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the bootstrap");
    let seen = tokio::time::timeout(std::time::Duration::from_secs(30), api.finished()).await;
    let _ = child.kill();
    let _ = child.wait();
    let seen = seen.expect("the bootstrap answered within 30 s");
    assert_eq!(seen.error, None);
    let response: serde_json::Value = serde_json::from_str(seen.response.as_deref().unwrap()).unwrap();
    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(response["body"], r#"{"status":"ok"}"#);
    assert!(seen.ready.unwrap() <= seen.responded.unwrap());
}
