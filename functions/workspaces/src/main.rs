//! Bootstrap of the workspaces function: the route group behind its API Gateway routes
//! (see infra/template.yaml), served by the shared Lambda runtime setup.

use vigilo_lambda::Group;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    vigilo_lambda::run(Group::Workspaces, vigilo_lambda::http::workspaces_router, vigilo_lambda::plain).await
}
