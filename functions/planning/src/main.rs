//! Bootstrap of the planning function: runbook tasks, comments, conflicts, similar
//! changes and risk assessments (see infra/template.yaml), served by the shared Lambda
//! runtime setup.

use vigilo_lambda::Group;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    vigilo_lambda::run(Group::Planning, vigilo_lambda::http::planning_router, vigilo_lambda::plain).await
}
