//! Management API for alerting: integrations, alerts, silences and routes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use klaxon_domain::alert::{AlertAction, AlertInput, Matcher, Route, Silence};
use klaxon_domain::wire::{
    AlertOutcome, AlertRecord, CreateIntegration, CreateSilence, ErrorBody, IntegrationInfo, IntegrationWithKey,
};
use klaxon_store::{AlertFilter, new_integration_key};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, ApiJson, ApiQuery, Caller, Responder};
use crate::state::AppState;

fn with_key(info: IntegrationInfo, key: String) -> IntegrationWithKey {
    let ingest_path = info.format.ingest_path(&key);
    IntegrationWithKey { info, key, ingest_path }
}

/// Create an integration. Its key is in this answer (and after rotation) only.
#[utoipa::path(post, path = "/api/v1/integrations", tag = "alerting", request_body = CreateIntegration, security(("bearer" = [])),
    responses((status = 201, body = IntegrationWithKey), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_integration(
    State(s): State<AppState>,
    Admin(_c): Admin,
    ApiJson(b): ApiJson<CreateIntegration>,
) -> ApiResult<(StatusCode, Json<IntegrationWithKey>)> {
    let name = b.name.trim();
    if !klaxon_domain::config::is_slug(name) {
        return Err(ApiError::invalid(
            "name",
            "name must be 1-100 letters, digits, '-', '_', '.' or '/'",
        ));
    }
    let key = new_integration_key();
    let info = s.store.create_integration(name, b.format, &key, s.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(with_key(info, key))))
}

#[utoipa::path(get, path = "/api/v1/integrations", tag = "alerting", security(("bearer" = [])), responses((status = 200, body = Vec<IntegrationInfo>)))]
pub async fn list_integrations(State(s): State<AppState>, Admin(_c): Admin) -> ApiResult<Json<Vec<IntegrationInfo>>> {
    Ok(Json(s.store.integrations().await?))
}

#[utoipa::path(get, path = "/api/v1/integrations/{id}", tag = "alerting", security(("bearer" = [])),
    params(("id" = String, Path, description = "Integration ID or name")), responses((status = 200, body = IntegrationInfo), (status = 404, body = ErrorBody)))]
pub async fn get_integration(
    State(s): State<AppState>,
    Admin(_c): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<IntegrationInfo>> {
    s.store
        .integration(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("integration {id} not found")))
}

/// Replace the key; the old one stops working at once.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/rotate-key", tag = "alerting", security(("bearer" = [])),
    params(("id" = String, Path, description = "Integration ID or name")), responses((status = 200, body = IntegrationWithKey), (status = 404, body = ErrorBody)))]
pub async fn rotate_key(
    State(s): State<AppState>,
    Admin(_c): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<IntegrationWithKey>> {
    let key = new_integration_key();
    let info = s.store.rotate_integration_key(&id, &key, s.clock.now()).await?;
    s.keys.clear();
    Ok(Json(with_key(info, key)))
}

#[utoipa::path(delete, path = "/api/v1/integrations/{id}", tag = "alerting", security(("bearer" = [])),
    params(("id" = String, Path, description = "Integration ID or name")), responses((status = 200, body = IntegrationInfo), (status = 404, body = ErrorBody)))]
pub async fn delete_integration(
    State(s): State<AppState>,
    Admin(_c): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<IntegrationInfo>> {
    let info = s.store.delete_integration(&id).await?;
    s.keys.clear();
    Ok(Json(info))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// `firing`, `resolved` or `suppressed`.
    pub status: Option<String>,
    /// Integration ID or name.
    pub integration: Option<String>,
    /// Incident ID.
    pub incident: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertPage {
    pub items: Vec<AlertRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Alerts, newest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerting", params(AlertQuery), security(("bearer" = [])),
    responses((status = 200, body = AlertPage), (status = 422, body = ErrorBody)))]
pub async fn list_alerts(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AlertQuery>,
) -> ApiResult<Json<AlertPage>> {
    caller.require(klaxon_domain::wire::TokenRole::Viewer)?;
    if let Some(st) = &q.status
        && !["firing", "resolved", "suppressed"].contains(&st.as_str())
    {
        return Err(ApiError::invalid(
            "status",
            "status must be firing, resolved or suppressed",
        ));
    }
    let integration_id = match &q.integration {
        Some(i) => Some(
            s.store
                .integration(i)
                .await?
                .ok_or_else(|| ApiError::invalid("integration", format!("unknown integration {i:?}")))?
                .id,
        ),
        None => None,
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be between 1 and 500"));
    }
    let before_pk = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse()
                .map_err(|_| ApiError::invalid("cursor", "cursor is not one this server issued"))
        })
        .transpose()?;
    let (items, next) = s
        .store
        .alerts(&AlertFilter {
            status: q.status.clone(),
            integration_id,
            incident_id: q.incident.clone(),
            before_pk,
            limit,
        })
        .await?;
    Ok(Json(AlertPage {
        items,
        next_cursor: next.map(|n| n.to_string()),
    }))
}

async fn alert_or_404(s: &AppState, id: &str) -> ApiResult<AlertRecord> {
    let pk: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("alert {id} not found")))?;
    s.store
        .alert(pk)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("alert {id} not found")))
}

#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerting", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Alert ID")), responses((status = 200, body = AlertRecord), (status = 404, body = ErrorBody)))]
pub async fn get_alert(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AlertRecord>> {
    caller.require(klaxon_domain::wire::TokenRole::Viewer)?;
    alert_or_404(&s, &id).await.map(Json)
}

async fn act(s: &AppState, id: &str, action: AlertAction) -> ApiResult<Json<AlertOutcome>> {
    let a = alert_or_404(s, id).await?;
    if a.status != "firing" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("alert {id} is {}", a.status),
        ));
    }
    let info = s
        .store
        .integration(&a.integration_id)
        .await?
        .ok_or_else(|| ApiError::not_found("the alert's integration is gone"))?;
    let input = AlertInput {
        action,
        dedup_key: a.dedup_key.clone(),
        summary: a.summary.clone(),
        severity: a.severity.clone(),
        source: a.source.clone(),
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        starts_at: Some(a.starts_at),
        ends_at: None,
        links: vec![],
        group_key: None,
        details: serde_json::Value::Null,
    };
    let mut out = s
        .ingestor
        .submit(info, vec![input], s.clock.now())
        .await
        .map_err(ApiError::from)?;
    out.pop().map(Json).ok_or_else(|| ApiError::internal("no outcome"))
}

/// Acknowledge an alert by hand: its incidents are acknowledged.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/ack", tag = "alerting", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Alert ID")), responses((status = 200, body = AlertOutcome), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn ack_alert(
    State(s): State<AppState>,
    Responder(_c): Responder,
    Path(id): Path<String>,
) -> ApiResult<Json<AlertOutcome>> {
    act(&s, &id, AlertAction::Acknowledge).await
}

/// Resolve an alert by hand, as if its source had.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/resolve", tag = "alerting", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Alert ID")), responses((status = 200, body = AlertOutcome), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn resolve_alert(
    State(s): State<AppState>,
    Responder(_c): Responder,
    Path(id): Path<String>,
) -> ApiResult<Json<AlertOutcome>> {
    act(&s, &id, AlertAction::Resolve).await
}

/// Validate a silence request into a silence.
pub fn silence_from(req: &CreateSilence, who: &str, now: jiff::Timestamp) -> ApiResult<Silence> {
    if req.matchers.is_empty() {
        return Err(ApiError::invalid(
            "matchers",
            "a silence needs at least one matcher (it would silence everything)",
        ));
    }
    let matchers = req
        .matchers
        .iter()
        .enumerate()
        .map(|(i, m)| Matcher::parse(m).map_err(|e| ApiError::invalid(&format!("matchers[{i}]"), e)))
        .collect::<ApiResult<Vec<_>>>()?;
    let starts_at = req.starts_at.unwrap_or(now);
    let ends_at = match (&req.ends_at, &req.duration) {
        (Some(e), None) => *e,
        (None, Some(d)) => {
            let d = klaxon_domain::duration::parse(d).map_err(|e| ApiError::invalid("duration", e))?;
            starts_at
                .checked_add(klaxon_domain::duration::to_signed(d))
                .map_err(|e| ApiError::invalid("duration", e.to_string()))?
        }
        (Some(_), Some(_)) => return Err(ApiError::invalid("duration", "give ends_at or duration, not both")),
        (None, None) => return Err(ApiError::invalid("ends_at", "give ends_at or duration")),
    };
    if ends_at <= starts_at {
        return Err(ApiError::invalid("ends_at", "ends_at must be after starts_at"));
    }
    if req.comment.chars().count() > 2000 {
        return Err(ApiError::invalid("comment", "at most 2000 characters"));
    }
    let kind = req.kind.clone().unwrap_or_else(|| "silence".into());
    if kind != "silence" && kind != "maintenance" {
        return Err(ApiError::invalid("kind", "kind must be silence or maintenance"));
    }
    Ok(Silence {
        id: klaxon_store::random_hex("sil_", 6),
        matchers,
        starts_at,
        ends_at,
        created_by: who.to_string(),
        comment: req.comment.clone(),
        kind,
    })
}

/// Create a silence or maintenance window.
#[utoipa::path(post, path = "/api/v1/silences", tag = "alerting", request_body = CreateSilence, security(("bearer" = [])),
    responses((status = 201, body = Silence), (status = 422, body = ErrorBody)))]
pub async fn create_silence(
    State(s): State<AppState>,
    Responder(c): Responder,
    ApiJson(b): ApiJson<CreateSilence>,
) -> ApiResult<(StatusCode, Json<Silence>)> {
    let silence = silence_from(&b, &c.name, s.clock.now())?;
    s.store.create_silence(&silence, s.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(silence)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SilenceQuery {
    /// Include silences that have ended.
    #[serde(default)]
    pub all: bool,
}

/// Active and upcoming silences (`?all=true` for ended ones too).
#[utoipa::path(get, path = "/api/v1/silences", tag = "alerting", params(SilenceQuery), security(("bearer" = [])), responses((status = 200, body = Vec<Silence>)))]
pub async fn list_silences(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SilenceQuery>,
) -> ApiResult<Json<Vec<Silence>>> {
    caller.require(klaxon_domain::wire::TokenRole::Viewer)?;
    Ok(Json(s.store.silences(s.clock.now(), q.all).await?))
}

/// End a silence now.
#[utoipa::path(delete, path = "/api/v1/silences/{id}", tag = "alerting", security(("bearer" = [])),
    params(("id" = String, Path, description = "Silence ID")), responses((status = 200, body = Silence), (status = 404, body = ErrorBody)))]
pub async fn expire_silence(
    State(s): State<AppState>,
    Responder(_c): Responder,
    Path(id): Path<String>,
) -> ApiResult<Json<Silence>> {
    Ok(Json(s.store.expire_silence(&id, s.clock.now()).await?))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RouteEntry {
    /// `config`, `api` or `default`.
    pub source: String,
    #[serde(flatten)]
    pub route: Route,
}

/// Routes in evaluation order: configuration file, then API, then the default.
#[utoipa::path(get, path = "/api/v1/routes", tag = "alerting", security(("bearer" = [])), responses((status = 200, body = Vec<RouteEntry>)))]
pub async fn list_routes(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<RouteEntry>>> {
    caller.require(klaxon_domain::wire::TokenRole::Viewer)?;
    let mut out: Vec<RouteEntry> = s
        .ingest
        .routes
        .iter()
        .map(|r| RouteEntry {
            source: "config".into(),
            route: r.clone(),
        })
        .collect();
    out.extend(s.store.api_routes().await?.into_iter().map(|r| RouteEntry {
        source: "api".into(),
        route: r,
    }));
    out.push(RouteEntry {
        source: "default".into(),
        route: s.ingest.default_route.clone(),
    });
    Ok(Json(out))
}

/// Validate a route against the catalog.
pub fn check_route(r: &Route, cat: &klaxon_domain::config::Catalog) -> Result<(), (String, String)> {
    if !klaxon_domain::config::is_slug(&r.name) {
        return Err((
            "name".into(),
            "a route name is 1-100 letters, digits, '-', '_', '.' or '/'".into(),
        ));
    }
    if let Some(sev) = &r.severity
        && cat.severities.find(sev).is_none()
    {
        return Err((
            "severity".into(),
            format!(
                "unknown severity {sev:?}; expected one of: {}",
                cat.severities.keys().join(", ")
            ),
        ));
    }
    for (k, v) in &r.severity_map {
        if cat.severities.find(v).is_none() {
            return Err((format!("severity_map.{k}"), format!("unknown severity {v:?}")));
        }
    }
    if let Some(c) = &r.category
        && cat.find_category(c).is_none()
    {
        return Err(("category".into(), format!("unknown category {c:?}")));
    }
    if let Some(svc) = &r.service
        && (!klaxon_domain::config::is_slug(svc) || (!cat.services.is_empty() && cat.find_service(svc).is_none()))
    {
        return Err(("service".into(), format!("unknown service {svc:?}")));
    }
    Ok(())
}

/// Create or replace an API route (evaluated after the configuration's routes).
#[utoipa::path(put, path = "/api/v1/routes/{name}", tag = "alerting", request_body = Route, security(("bearer" = [])),
    params(("name" = String, Path, description = "Route name")), responses((status = 200, body = Route), (status = 422, body = ErrorBody)))]
pub async fn put_route(
    State(s): State<AppState>,
    Admin(_c): Admin,
    Path(name): Path<String>,
    ApiJson(mut r): ApiJson<Route>,
) -> ApiResult<Json<Route>> {
    if r.name.is_empty() {
        r.name = name.clone();
    }
    if r.name != name {
        return Err(ApiError::invalid(
            "name",
            format!("body names route {:?} but the path names {name:?}", r.name),
        ));
    }
    if s.ingest.routes.iter().any(|c| c.name == name) || name == s.ingest.default_route.name {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("route {name:?} comes from the configuration file; change it there"),
        ));
    }
    check_route(&r, &s.catalog).map_err(|(f, m)| ApiError::invalid(&f, m))?;
    if let Some(p) = &r.escalation_policy
        && (!klaxon_domain::config::is_slug(p)
            || s.store
                .document::<klaxon_domain::escalation::EscalationPolicy>(
                    klaxon_store::Collection::EscalationPolicies,
                    p,
                )
                .await?
                .is_none())
    {
        return Err(ApiError::invalid(
            "escalation_policy",
            format!("escalation policy {p:?} does not exist"),
        ));
    }
    s.store.put_route(&r, s.clock.now()).await?;
    Ok(Json(r))
}

#[utoipa::path(delete, path = "/api/v1/routes/{name}", tag = "alerting", security(("bearer" = [])),
    params(("name" = String, Path, description = "Route name")), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_route(
    State(s): State<AppState>,
    Admin(_c): Admin,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_route(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
