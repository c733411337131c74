//! Bootstrap of the audit function: the route group behind its API Gateway routes
//! (see infra/template.yaml), served by the shared Lambda runtime setup.

use vigilo_lambda::Group;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    vigilo_lambda::run(Group::Audit, vigilo_lambda::http::audit_router, vigilo_lambda::plain).await
}
