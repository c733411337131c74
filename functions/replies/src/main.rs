//! Bootstrap of the replies function: SES receives an approver's email reply, stores it
//! in the inbound bucket and invokes this function, which decides from it (see
//! infra/template.yaml).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    vigilo_lambda::run_replies().await
}
