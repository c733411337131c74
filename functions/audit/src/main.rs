//! Bootstrap of the audit function: the route group behind its API Gateway routes
//! (see infra/template.yaml), served by the shared Lambda runtime setup.

use vigilo_lambda::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    vigilo_lambda::run(Function::Audit, vigilo_lambda::http::audit_router, vigilo_lambda::plain).await
}
