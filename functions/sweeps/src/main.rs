//! Bootstrap of the sweeps function: EventBridge Scheduler invokes it with the name
//! of a sweep (see infra/template.yaml), such as the hourly audit checkpoints.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    vigilo_lambda::run_sweeps().await
}
