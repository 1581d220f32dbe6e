//! `/api/v1/templates`: the message templates in force, and previews
//! rendered for a real incident.

use axum::Json;
use axum::extract::{Path, State};
use klaxon_domain::id::looks_like_id;
use klaxon_domain::templates::{Rendered, TemplateContext, TemplateSource};
use klaxon_domain::wire::{ErrorBody, RenderRequest, TemplateInfo, TokenRole};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;

/// The templates, each with its sources.
#[utoipa::path(get, path = "/api/v1/templates", tag = "communication", security(("bearer" = [])),
    responses((status = 200, body = Vec<TemplateInfo>), (status = 401, body = ErrorBody)))]
pub async fn list(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<TemplateInfo>>> {
    caller.require(TokenRole::Viewer)?;
    Ok(Json(
        s.templates
            .names()
            .filter_map(|n| {
                s.templates.source(n).map(|src| TemplateInfo {
                    name: n.to_string(),
                    source: src.clone(),
                })
            })
            .collect(),
    ))
}

/// One template's sources.
#[utoipa::path(get, path = "/api/v1/templates/{name}", tag = "communication", security(("bearer" = [])),
    params(("name" = String, Path, description = "Template name")),
    responses((status = 200, body = TemplateSource), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<TemplateSource>> {
    caller.require(TokenRole::Viewer)?;
    s.templates
        .source(&name)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("template {name} not found")))
}

/// Render a template for an incident, as it would be sent now.
#[utoipa::path(post, path = "/api/v1/templates/{name}/render", tag = "communication", request_body = RenderRequest, security(("bearer" = [])),
    params(("name" = String, Path, description = "Template name")),
    responses((status = 200, body = Rendered), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn render(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<RenderRequest>,
) -> ApiResult<Json<Rendered>> {
    caller.require(TokenRole::Viewer)?;
    if s.templates.source(&name).is_none() {
        return Err(ApiError::not_found(format!("template {name} not found")));
    }
    let missing = || ApiError::invalid("incident", format!("incident {} not found", req.incident));
    if !looks_like_id(&req.incident) {
        return Err(missing());
    }
    let inc = s.store.get(&req.incident).await?.ok_or_else(missing)?;
    let timeline = s.store.timeline(&req.incident).await?.unwrap_or_default();
    let cx = TemplateContext::new(
        &inc,
        &timeline,
        req.message,
        req.update_number.unwrap_or(1),
        s.clock.now(),
        None,
    );
    s.templates
        .render(&name, &cx)
        .map(Json)
        .map_err(|e| ApiError::invalid("template", format!("{}: {}", e.key, e.message)))
}
