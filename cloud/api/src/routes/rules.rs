//! `/api/rules` (automation rules) and `/api/webhooks` (outgoing event notifications).
//!
//! Reading rules needs any role; writing them and everything about webhooks needs admin.
//! Rule documents are validated here (trigger, conditions, actions); the rule engine that runs
//! them is a separate piece and writes the history (`GET /api/rules/{id}/history`).
//! Webhook secrets are write-only; URLs must be `https://` to a public host name or address.

use std::net::IpAddr;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use cloud_store::{Role, Rule, RuleExecution, RuleSpec, Webhook};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;
use vigil_proto::EventKind;

use crate::error::ApiError;
use crate::extract::{AuthUser, EdgeAuth, JsonBody};
use crate::openapi::{Envelope, ErrorEnvelope};
use crate::response::ApiResponse;
use crate::routes::cameras::check_text;
use crate::state::AppState;

/// Largest rule document accepted (trigger + conditions + actions, as JSON).
const MAX_RULE_BYTES: usize = 16 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/rules", get(list).post(create))
        .route("/api/rules/{id}", put(update).delete(remove))
        .route("/api/rules/{id}/enable", post(enable))
        .route("/api/rules/{id}/disable", post(disable))
        .route("/api/rules/{id}/history", get(history))
        .route("/api/edge/rule-executions", post(edge_executions))
        .route("/api/webhooks/register", post(register_webhook))
        .route("/api/webhooks", get(list_webhooks))
        .route("/api/webhooks/{id}", axum::routing::delete(delete_webhook))
}

fn path_id(path: Result<Path<Uuid>, PathRejection>) -> Result<Uuid, ApiError> {
    path.map(|Path(id)| id).map_err(|_| ApiError::validation("id", "must be a uuid"))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RuleRequest {
    name: String,
    #[serde(default)]
    description: Option<String>,
    /// `{"type":"event","event_kind":"detection.person"}`, `{"type":"schedule","cron":"0 18 * * *"}`,
    /// `{"type":"condition",…}` or `{"type":"composite",…}`: the edge rule format (see `edge-rules`).
    #[schema(value_type = Object)]
    trigger: Value,
    /// Objects, each with a `type`.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    conditions: Option<Value>,
    /// One or more objects, each with a `type`: notify, alert, lock_doors, unlock_doors, lockdown,
    /// start_recording, save_clip, device_command, webhook, log.
    #[schema(value_type = Vec<Object>)]
    actions: Value,
    #[serde(default)]
    enabled: Option<bool>,
}

/// Checks a rule with the edge's own rule engine ([`edge_rules`]), so every rule the cloud accepts
/// is one the edges can run. Returns the conditions (default `[]`).
fn check_rule(body: &RuleRequest) -> Result<Value, ApiError> {
    check_text("name", &body.name, 200)?;
    if let Some(d) = &body.description
        && d.chars().count() > 2000
    {
        return Err(ApiError::validation("description", "must be at most 2000 characters"));
    }
    let conditions = body.conditions.clone().unwrap_or_else(|| Value::Array(Vec::new()));
    let size = body.trigger.to_string().len() + conditions.to_string().len() + body.actions.to_string().len();
    if size > MAX_RULE_BYTES {
        return Err(ApiError::validation("actions", format!("the rule must be at most {MAX_RULE_BYTES} bytes")));
    }
    let part = |field: &'static str, v: &Value| -> Result<(), ApiError> {
        let checked = match field {
            "trigger" => serde_json::from_value::<edge_rules::TriggerSpec>(v.clone()).map(drop),
            "conditions" => serde_json::from_value::<Vec<edge_rules::ConditionSpec>>(v.clone()).map(drop),
            _ => serde_json::from_value::<Vec<edge_rules::ActionSpec>>(v.clone()).map(drop),
        };
        checked.map_err(|e| ApiError::validation(field, e.to_string()))
    };
    part("trigger", &body.trigger)?;
    part("conditions", &conditions)?;
    part("actions", &body.actions)?;
    let spec: edge_rules::RuleSpec = serde_json::from_value(serde_json::json!({
        "id": "rule",
        "name": body.name.trim(),
        "trigger": body.trigger,
        "conditions": conditions,
        "actions": body.actions,
    }))
    .map_err(|e| ApiError::validation("trigger", e.to_string()))?;
    if let Err(problems) = spec.validate()
        && let Some(first) = problems.first()
    {
        return Err(ApiError::validation(first.path.clone(), first.message.clone()));
    }
    Ok(conditions)
}

#[utoipa::path(get, path = "/api/rules", tag = "rules", security(("bearer" = [])), responses((status = 200, description = "the tenant's rules", body = Envelope<Vec<Rule>>), (status = 401, description = "missing or invalid credential", body = ErrorEnvelope)))]
async fn list(State(state): State<AppState>, caller: AuthUser) -> Result<ApiResponse<Vec<Rule>>, ApiError> {
    Ok(ApiResponse(state.store.list_rules(caller.tenant_id).await?))
}

#[utoipa::path(post, path = "/api/rules", tag = "rules", request_body = RuleRequest, security(("bearer" = [])), responses((status = 201, description = "created (admin)", body = Envelope<Rule>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 403, description = "role too low", body = ErrorEnvelope), (status = 409, description = "name taken", body = ErrorEnvelope)))]
async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    JsonBody(body): JsonBody<RuleRequest>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let conditions = check_rule(&body)?;
    let spec = RuleSpec {
        name: body.name.trim(),
        description: body.description.as_deref(),
        trigger: &body.trigger,
        conditions: &conditions,
        actions: &body.actions,
        enabled: body.enabled.unwrap_or(true),
    };
    let rule = state.store.create_rule(caller.tenant_id, &spec, caller.user_id).await?;
    Ok((StatusCode::CREATED, ApiResponse(rule)).into_response())
}

#[utoipa::path(put, path = "/api/rules/{id}", tag = "rules", request_body = RuleRequest, params(("id" = Uuid, Path, description = "rule id")), security(("bearer" = [])), responses((status = 200, description = "replaced (admin)", body = Envelope<Rule>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 403, description = "role too low", body = ErrorEnvelope), (status = 404, description = "no such rule in the tenant", body = ErrorEnvelope)))]
async fn update(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
    JsonBody(body): JsonBody<RuleRequest>,
) -> Result<ApiResponse<Rule>, ApiError> {
    caller.require(Role::Admin)?;
    let id = path_id(id)?;
    let conditions = check_rule(&body)?;
    let spec = RuleSpec {
        name: body.name.trim(),
        description: body.description.as_deref(),
        trigger: &body.trigger,
        conditions: &conditions,
        actions: &body.actions,
        enabled: body.enabled.unwrap_or(true),
    };
    Ok(ApiResponse(state.store.update_rule(caller.tenant_id, id, &spec).await?.ok_or(ApiError::NotFound)?))
}

#[utoipa::path(delete, path = "/api/rules/{id}", tag = "rules", params(("id" = Uuid, Path, description = "rule id")), security(("bearer" = [])), responses((status = 204, description = "deleted (admin)"), (status = 403, description = "role too low", body = ErrorEnvelope), (status = 404, description = "no such rule in the tenant", body = ErrorEnvelope)))]
async fn remove(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let id = path_id(id)?;
    if !state.store.delete_rule(caller.tenant_id, id).await? {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn set_enabled(
    state: &AppState,
    caller: &AuthUser,
    id: Uuid,
    enabled: bool,
) -> Result<ApiResponse<Rule>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(ApiResponse(state.store.set_rule_enabled(caller.tenant_id, id, enabled).await?.ok_or(ApiError::NotFound)?))
}

#[utoipa::path(post, path = "/api/rules/{id}/enable", tag = "rules", params(("id" = Uuid, Path, description = "rule id")), security(("bearer" = [])), responses((status = 200, description = "enabled (admin)", body = Envelope<Rule>), (status = 403, description = "role too low", body = ErrorEnvelope), (status = 404, description = "no such rule in the tenant", body = ErrorEnvelope)))]
async fn enable(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<ApiResponse<Rule>, ApiError> {
    set_enabled(&state, &caller, path_id(id)?, true).await
}

#[utoipa::path(post, path = "/api/rules/{id}/disable", tag = "rules", params(("id" = Uuid, Path, description = "rule id")), security(("bearer" = [])), responses((status = 200, description = "disabled (admin)", body = Envelope<Rule>), (status = 403, description = "role too low", body = ErrorEnvelope), (status = 404, description = "no such rule in the tenant", body = ErrorEnvelope)))]
async fn disable(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<ApiResponse<Rule>, ApiError> {
    set_enabled(&state, &caller, path_id(id)?, false).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/rules/{id}/history", tag = "rules", params(("id" = Uuid, Path, description = "rule id"), ("limit" = Option<u32>, Query, description = "1..=1000, default 100")), security(("bearer" = [])), responses((status = 200, description = "executions, newest first", body = Envelope<Vec<RuleExecution>>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 404, description = "no such rule in the tenant", body = ErrorEnvelope)))]
async fn history(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<ApiResponse<Vec<RuleExecution>>, ApiError> {
    let id = path_id(id)?;
    let Query(query) = query.map_err(|_| ApiError::validation("limit", "must be an integer from 1 to 1000"))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation("limit", "must be an integer from 1 to 1000"));
    }
    Ok(ApiResponse(state.store.rule_history(caller.tenant_id, id, limit).await?.ok_or(ApiError::NotFound)?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct WebhookRequest {
    /// `https://` URL of a public host.
    url: String,
    /// Event kinds to deliver, e.g. `["detection.person", "alert.triggered"]`.
    events: Vec<String>,
    /// Signs deliveries (HMAC-SHA256); 16 to 256 characters; never returned.
    secret: String,
}

#[utoipa::path(post, path = "/api/webhooks/register", tag = "webhooks", request_body = WebhookRequest, security(("bearer" = [])), responses((status = 201, description = "registered (admin)", body = Envelope<Webhook>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 403, description = "role too low", body = ErrorEnvelope)))]
async fn register_webhook(
    State(state): State<AppState>,
    caller: AuthUser,
    JsonBody(body): JsonBody<WebhookRequest>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let url = check_webhook_url(&body.url)?;
    if body.events.is_empty() || body.events.len() > EventKind::ALL.len() {
        return Err(ApiError::validation("events", "list one or more event kinds"));
    }
    for kind in &body.events {
        if EventKind::parse(kind).is_none_or(|k| k == EventKind::Unknown) {
            return Err(ApiError::validation("events", format!("unknown event kind {kind:?}")));
        }
    }
    let secret_len = body.secret.chars().count();
    if !(16..=256).contains(&secret_len) || body.secret.chars().any(char::is_control) {
        return Err(ApiError::validation("secret", "must be 16 to 256 printable characters"));
    }
    let hook = state.store.create_webhook(caller.tenant_id, url, &body.events, &body.secret, caller.user_id).await?;
    Ok((StatusCode::CREATED, ApiResponse(hook)).into_response())
}

#[utoipa::path(get, path = "/api/webhooks", tag = "webhooks", security(("bearer" = [])), responses((status = 200, description = "the tenant's webhooks, without secrets (admin)", body = Envelope<Vec<Webhook>>), (status = 403, description = "role too low", body = ErrorEnvelope)))]
async fn list_webhooks(State(state): State<AppState>, caller: AuthUser) -> Result<ApiResponse<Vec<Webhook>>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(ApiResponse(state.store.list_webhooks(caller.tenant_id).await?))
}

#[utoipa::path(delete, path = "/api/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path, description = "webhook id")), security(("bearer" = [])), responses((status = 204, description = "deleted (admin)"), (status = 403, description = "role too low", body = ErrorEnvelope), (status = 404, description = "no such webhook in the tenant", body = ErrorEnvelope)))]
async fn delete_webhook(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let id = path_id(id)?;
    if !state.store.delete_webhook(caller.tenant_id, id).await? {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `https://host[:port][/path]` where host is a name other than localhost, or a public address
/// (a first defence against SSRF; the delivery worker must re-check the resolved address).
fn check_webhook_url(url: &str) -> Result<&str, ApiError> {
    let invalid = |why: &str| ApiError::validation("url", why.to_owned());
    let url = url.trim();
    if url.len() > 2048 || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid("must be a URL of at most 2048 characters without spaces"));
    }
    let rest = url.strip_prefix("https://").ok_or_else(|| invalid("must start with https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(invalid("must not contain credentials"));
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    }
    .to_ascii_lowercase();
    if host.is_empty() || host == "localhost" || host.ends_with(".localhost") || host.ends_with(".internal") {
        return Err(invalid("must name a public host"));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        let private = match ip {
            IpAddr::V4(v4) => {
                v4.is_private() || v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast()
            }
            IpAddr::V6(v6) => v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xfe00) == 0xfc00,
        };
        if private {
            return Err(invalid("must name a public host"));
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls() {
        assert!(check_webhook_url("https://hooks.example.com/vigil?x=1").is_ok());
        assert!(check_webhook_url("https://8.8.8.8:8443/h").is_ok());
        for bad in [
            "http://hooks.example.com",
            "https://localhost/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/x",
            "https://user:pw@example.com/",
            "https:///x",
        ] {
            assert!(check_webhook_url(bad).is_err(), "{bad}");
        }
    }
}

/// Most executions in one report.
const MAX_EXECUTIONS: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecutionsReport {
    executions: Vec<edge_rules::Execution>,
}

#[utoipa::path(post, path = "/api/edge/rule-executions", tag = "edge", request_body(content = Object, description = "{executions: [...]}: what the edge's rule engine did (at most 500), as in its history file; executions of rules that are not the tenant's cloud rules are skipped"), security(("bearer" = [])), responses((status = 200, description = "recorded: how many were new", body = Envelope<serde_json::Value>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 401, description = "missing or invalid edge token", body = ErrorEnvelope)))]
async fn edge_executions(
    State(state): State<AppState>,
    EdgeAuth(edge): EdgeAuth,
    JsonBody(report): JsonBody<ExecutionsReport>,
) -> Result<ApiResponse<Value>, ApiError> {
    if report.executions.len() > MAX_EXECUTIONS {
        return Err(ApiError::validation("executions", format!("at most {MAX_EXECUTIONS} per report")));
    }
    let rows: Vec<cloud_store::NewExecution> = report
        .executions
        .iter()
        .filter_map(|e| {
            let rule_id = Uuid::parse_str(&e.rule_id).ok()?;
            let outcome = match e.outcome {
                edge_rules::ExecutionOutcome::Fired => "fired",
                edge_rules::ExecutionOutcome::Suppressed { .. } => "suppressed",
            };
            let detail = serde_json::to_value(e).ok()?;
            if detail.to_string().contains("\\u0000") {
                return None;
            }
            Some(cloud_store::NewExecution {
                rule_id,
                fired_at: e.at,
                event_id: e.trigger_event,
                outcome: outcome.to_owned(),
                detail,
            })
        })
        .collect();
    let stored = state.store.record_edge_rule_executions(&edge, &rows).await?;
    Ok(ApiResponse(serde_json::json!({ "received": report.executions.len(), "stored": stored })))
}
