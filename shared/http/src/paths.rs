//! The path parameters of every route, one struct per shape. Each is both the extractor
//! a handler reads and the parameter list its OpenAPI operation declares, so a path
//! segment is named and described in one place. Workspaces and changes arrive parsed
//! (`Slug`, `ChangeNumber`): a path that cannot name one is a 404, like one that
//! names nothing, and services never see a raw string.

use serde::Deserialize;
use utoipa::IntoParams;
use vigilo_domain::ids::{ChangeNumber, Slug, UserId};

/// `/ws/{slug}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WsPath {
    /// The workspace.
    #[param(inline)]
    pub slug: Slug,
}

/// `/ws/{slug}/changes/{number}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ChangePath {
    #[param(inline)]
    pub slug: Slug,
    /// The change, e.g. `CHG-00001`.
    #[param(inline)]
    pub number: ChangeNumber,
}

/// `/ws/{slug}/changes/{number}/{action}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ActionPath {
    #[param(inline)]
    pub slug: Slug,
    #[param(inline)]
    pub number: ChangeNumber,
    /// A lifecycle action (approve and reject have routes of their own).
    #[param(value_type = LifecycleAction, inline)]
    pub action: String,
}

/// The lifecycle actions served by the `{action}` route: every action of the domain's
/// state machine but the two decisions, which have routes of their own.
pub struct LifecycleAction;

impl utoipa::PartialSchema for LifecycleAction {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use vigilo_domain::fsm::Action;
        let actions = Action::ALL.iter().filter(|a| !matches!(a, Action::Approve | Action::Reject)).map(|a| a.as_str());
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(actions))
            .into()
    }
}

impl utoipa::ToSchema for LifecycleAction {}

/// `/ws/{slug}/changes/{number}/conflicts/{other}/accept`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OtherPath {
    #[param(inline)]
    pub slug: Slug,
    #[param(inline)]
    pub number: ChangeNumber,
    /// The other change of the conflict.
    #[param(inline)]
    pub other: ChangeNumber,
}

/// `/ws/{slug}/changes/{number}/tasks/{task_id}/{action}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TaskPath {
    #[param(inline)]
    pub slug: Slug,
    #[param(inline)]
    pub number: ChangeNumber,
    /// The task, e.g. `T001`.
    #[param(example = "T001")]
    pub task_id: String,
    #[param(value_type = vigilo_domain::task::TaskAction, inline)]
    pub action: String,
}

/// `/ws/{slug}/members/{user_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MemberPath {
    #[param(inline)]
    pub slug: Slug,
    #[param(value_type = UserId, inline)]
    pub user_id: String,
}

/// `/ws/{slug}/groups/{name}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct GroupPath {
    #[param(inline)]
    pub slug: Slug,
    /// e.g. `cab`.
    #[param(example = "cab")]
    pub name: String,
}

/// `/ws/{slug}/<collection>/{id}`: freeze windows, policies, webhooks, audit rows.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct IdPath {
    #[param(inline)]
    pub slug: Slug,
    pub id: String,
}

/// `/a/{token}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TokenPath {
    /// The signed decision token from the email or chat message.
    pub token: String,
}
