//! Bootstrap of the transitions function: the route group behind its API Gateway routes
//! (see infra/template.yaml), served by the shared Lambda runtime setup.

use vigilo_lambda::Group;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    vigilo_lambda::run(Group::Transitions, vigilo_lambda::http::transitions_router, vigilo_lambda::application).await
}
