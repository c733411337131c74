//! The route table: every route of the API, declared once.
//!
//! A route is a handler whose `#[utoipa::path]` attribute names its method, path,
//! operation id (the name of its event in `infra/template.yaml`), parameters, bodies and
//! the errors it can answer; its place in [`route_table!`] names the Lambda function
//! (the [`Group`]) that serves it. From this one table come the router of each Lambda
//! function, the router of `vigilo serve`, and the OpenAPI document at
//! `GET /openapi.json`; the template's API events are checked against it in both
//! directions by a test (`functions/runtime/tests/template.rs`).

use axum::Router;
use serde_json::{json, Value};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi, OpenApiBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::routes::{audit, changes, chat, governance, health, links, planning, workspaces};
use crate::AppState;

/// Declares the groups, the handlers each serves, and a router function per group, so
/// that a bootstrap links only the handlers of its own group.
macro_rules! route_table {
    ($(
        $(#[$doc:meta])*
        $group:ident => $router:ident, $name:literal, $function:literal: [$($module:ident::$handler:ident),+ $(,)?]
    ),+ $(,)?) => {
        /// The route groups: one Lambda function each; `vigilo serve` serves them all.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Group { $($(#[$doc])* $group),+ }

        impl Group {
            pub const ALL: &'static [Group] = &[$(Group::$group),+];

            /// The group's name: its OpenAPI tag and its folder under `events/`.
            pub fn name(self) -> &'static str {
                match self { $(Group::$group => $name),+ }
            }

            /// The logical id of its function in `infra/template.yaml`.
            pub fn function(self) -> &'static str {
                match self { $(Group::$group => $function),+ }
            }

            /// Its router over `state`, as its Lambda function serves it.
            pub fn router(self, state: AppState) -> Router {
                match self { $(Group::$group => $router(state)),+ }
            }

            /// Its routes, with their OpenAPI operations.
            pub fn routes(self) -> OpenApiRouter<AppState> {
                match self { $(Group::$group => { OpenApiRouter::new()$(.routes(routes!($module::$handler)))+ }),+ }
            }

            /// Its OpenAPI paths and schemas alone, from the handlers' attributes
            /// without the handlers: the function that serves the document does not
            /// link every other function's code.
            pub fn document(self) -> OpenApi {
                use utoipa::__dev::{SchemaReferences, Tags};
                use utoipa::Path;
                let mut doc = OpenApiBuilder::new().build();
                match self {
                    $(Group::$group => {
                        $(utoipa_axum::paste! {{
                            type P = $module::[<__path_ $handler>];
                            let mut schemas = Vec::new();
                            <P as SchemaReferences>::schemas(&mut schemas);
                            let mut operation = <P as Path>::operation();
                            let tags = <P as Tags>::tags();
                            if !tags.is_empty() {
                                operation.tags.get_or_insert_with(Vec::new).extend(tags.iter().map(ToString::to_string));
                            }
                            let mut paths = utoipa::openapi::path::Paths::new();
                            paths.add_path_operation(&<P as Path>::path(), <P as Path>::methods(), operation);
                            for (path, item) in paths.paths {
                                match doc.paths.paths.get_mut(&path) {
                                    Some(it) => it.merge_operations(item),
                                    None => {
                                        doc.paths.paths.insert(path, item);
                                    }
                                }
                            }
                            doc.components.get_or_insert_with(Default::default).schemas.extend(schemas);
                        }})+
                    }),+
                }
                doc
            }
        }

        $(
            $(#[$doc])*
            pub fn $router(state: AppState) -> Router {
                let routes = OpenApiRouter::new()$(.routes(routes!($module::$handler)))+;
                crate::finish(routes.split_for_parts().0, state)
            }
        )+
    };
}

route_table! {
    /// Workspaces, members, groups, delegation and subscriptions, plus `/health` and this document
    /// (the function that serves them answers the unauthenticated checks).
    Workspaces => workspaces_router, "workspaces", "WorkspacesFunction": [
        health::health,
        health::openapi_document,
        workspaces::list,
        workspaces::create,
        workspaces::show,
        workspaces::update,
        workspaces::members,
        workspaces::put_member,
        workspaces::remove_member,
        workspaces::delegate,
        workspaces::subscriptions,
        workspaces::put_subscriptions,
        workspaces::chat_link,
        workspaces::groups,
        workspaces::put_group,
    ],
    /// Changes: create, read, list, edit in draft, activity.
    Changes => changes_router, "changes", "ChangesFunction": [
        changes::list,
        changes::create,
        changes::show,
        changes::update,
        changes::activity,
    ],
    /// Lifecycle actions of a change (submit, schedule, start, complete, ...).
    Transitions => transitions_router, "transitions", "TransitionsFunction": [
        changes::act,
    ],
    /// Approve and reject, a change's approval steps, the caller's queue, the decision
    /// links (`/a/{token}`) that decide without signing in, and Slack's buttons.
    Approvals => approvals_router, "approvals", "ApprovalsFunction": [
        changes::approve,
        changes::reject,
        changes::change_approvals,
        changes::my_approvals,
        links::show,
        links::decide,
        chat::actions,
    ],
    /// Freeze windows, approval policies and webhooks.
    Governance => governance_router, "governance", "GovernanceFunction": [
        governance::list_windows,
        governance::create_window,
        governance::show_window,
        governance::delete_window,
        governance::list_policies,
        governance::create_policy,
        governance::show_policy,
        governance::put_policy,
        governance::delete_policy,
        governance::list_webhooks,
        governance::create_webhook,
        governance::delete_webhook,
        governance::webhook_deliveries,
    ],
    /// Around one change: runbook tasks, comments, conflicts, similar changes, risk;
    /// and around all of them: the calendar and its feed tokens, the CAB's agenda, the DORA
    /// metrics.
    Planning => planning_router, "planning", "PlanningFunction": [
        planning::tasks,
        planning::add_task,
        planning::generate,
        planning::task_action,
        planning::comments,
        planning::add_comment,
        planning::conflicts,
        planning::accept,
        planning::probe,
        planning::similar,
        planning::risk,
        planning::assess,
        planning::cab_agenda,
        planning::dora,
        planning::calendar,
        planning::create_feed,
        planning::delete_feed,
    ],
    /// The audit log: list, read, verify; its signing key, checkpoints and proofs.
    Audit => audit_router, "audit", "AuditFunction": [
        audit::list,
        audit::verify,
        audit::key,
        audit::checkpoints,
        audit::latest_checkpoint,
        audit::consistency,
        audit::show,
        audit::proof,
    ],
}

/// Every route group: what `vigilo serve` runs.
pub fn router(state: AppState) -> Router {
    let all = Group::ALL.iter().fold(OpenApiRouter::new(), |all, g| all.merge(g.routes()));
    crate::finish(all.split_for_parts().0, state)
}

/// The OpenAPI 3.1 document of every route, built from the table once per process.
pub fn openapi() -> &'static Value {
    static DOC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = OpenApiBuilder::new()
            .info(
                utoipa::openapi::InfoBuilder::new()
                    .title("Vigilo")
                    .version(env!("CARGO_PKG_VERSION"))
                    .description(Some(
                        "The change-management API: changes filed, approved, scheduled, executed and closed, \
                         with a hash-chained audit log.",
                    ))
                    .build(),
            )
            .build();
        for g in Group::ALL {
            let mut part = g.document();
            for item in part.paths.paths.values_mut() {
                for op in operations(item) {
                    op.tags = Some(vec![g.name().to_owned()]);
                }
            }
            doc.merge(part);
        }
        finish_document(doc)
    })
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
        item.head.as_mut(),
        item.options.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// What every operation shares, added once here rather than on each handler: bearer
/// authentication (unless the operation opts out), the error schema, and the errors any
/// route can answer (a malformed request, a missing token, a workspace the caller
/// cannot see, a role that does not allow it, an oversized body, load).
fn finish_document(mut doc: OpenApi) -> Value {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::builder().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );
    let mut schemas = Vec::new();
    <crate::error::ErrorEnvelope as utoipa::ToSchema>::schemas(&mut schemas);
    components.schemas.extend(schemas);
    components.schemas.insert(
        <crate::error::ErrorEnvelope as utoipa::ToSchema>::name().into_owned(),
        <crate::error::ErrorEnvelope as utoipa::PartialSchema>::schema(),
    );
    doc.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new())]);

    let mut v = serde_json::to_value(&doc).expect("the document serializes");
    let Some(paths) = v["paths"].as_object_mut() else { return v };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (_, op) in item.iter_mut() {
            let public = is_public(op);
            let has_body = op.get("requestBody").is_some();
            let Some(responses) = op["responses"].as_object_mut() else { continue };
            for (status, response) in responses.iter_mut() {
                if response.get("description").is_none() {
                    let reason = status.parse().ok().and_then(|s| axum::http::StatusCode::from_u16(s).ok());
                    response["description"] = json!(reason.and_then(|r| r.canonical_reason()).unwrap_or("Answered"));
                }
            }
            let mut add = |status: &str, codes: &str| {
                responses.entry(status.to_owned()).or_insert_with(|| error_response(codes));
            };
            add("400", "bad_request: malformed JSON, a wrong type, a bad parameter or header");
            if !public {
                add("401", "unauthenticated: no valid bearer token");
            }
            if path.starts_with("/ws/") {
                add("403", "forbidden: the caller's role does not allow it");
                add("404", "not_found: no such workspace for the caller, or no such resource");
            }
            if has_body {
                add("413", "payload_too_large");
            }
            if path != "/health" && path != "/openapi.json" {
                add("503", "unavailable: overloaded or a dependency is down; retry after `Retry-After`");
            }
        }
    }
    v["openapi"] = json!("3.1.0");
    v
}

/// An operation that needs no bearer token declares `security: [{}]`.
pub fn is_public(op: &Value) -> bool {
    op["security"].as_array().is_some_and(|s| s.iter().any(|r| r.as_object().is_some_and(|o| o.is_empty())))
}

fn error_response(codes: &str) -> Value {
    json!({
        "description": codes,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document a function serves is the one its routers are built with: the
    /// handler-free paths and schemas equal the routers' own, group by group.
    #[test]
    fn each_groups_document_is_its_routers_document() {
        for g in Group::ALL {
            let served = serde_json::to_value(g.document()).unwrap();
            let routed = serde_json::to_value(g.routes().into_openapi()).unwrap();
            assert_eq!(served["paths"], routed["paths"], "{g:?}");
            assert_eq!(served["components"], routed["components"], "{g:?}");
        }
    }

    #[test]
    fn the_document_covers_every_route_and_declares_its_errors() {
        let doc = openapi();
        assert_eq!(doc["openapi"], "3.1.0");
        let ops: usize = doc["paths"].as_object().unwrap().values().map(|i| i.as_object().unwrap().len()).sum();
        assert_eq!(ops, 66);
        let act = &doc["paths"]["/ws/{slug}/changes/{number}/{action}"]["post"];
        for status in ["200", "400", "401", "403", "404", "409", "412", "413", "422", "503"] {
            assert!(act["responses"][status].is_object(), "Act answers {status}");
        }
        assert!(act["responses"]["409"]["description"].as_str().unwrap().contains("freeze_window_blocked"));
        assert!(is_public(&doc["paths"]["/health"]["get"]) && !is_public(act));
    }
}
