//! Bootstrap of the stream function: the table's stream invokes it with each new
//! audit-queue entry; it seals the chain and sends the notices and webhook deliveries
//! the write left (see infra/template.yaml).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    vigilo_lambda::run_stream().await
}
