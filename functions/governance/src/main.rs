//! Bootstrap of the governance function: freeze windows and approval policies (see
//! infra/template.yaml), served by the shared Lambda runtime setup.

use vigilo_lambda::Group;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    vigilo_lambda::run(Group::Governance, vigilo_lambda::http::governance_router, vigilo_lambda::plain).await
}
