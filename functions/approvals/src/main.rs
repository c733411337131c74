//! Bootstrap of the approvals function: the route group behind its API Gateway routes
//! (see infra/template.yaml), served by the shared Lambda runtime setup.

use vigilo_lambda::Group;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    vigilo_lambda::run(Group::Approvals, vigilo_lambda::http::approvals_router, vigilo_lambda::application).await
}
