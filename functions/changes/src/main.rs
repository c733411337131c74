//! Bootstrap of the changes function: the route group behind its API Gateway routes
//! (see infra/template.yaml), served by the shared Lambda runtime setup.

use vigilo_lambda::Group;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    vigilo_lambda::run(Group::Changes, vigilo_lambda::http::changes_router, vigilo_lambda::plain).await
}
