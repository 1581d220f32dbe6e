//! `/api/v1/templates` (the message templates in force, previews rendered
//! for a real incident) and `/api/v1/incidents/{id}/updates` (stakeholder updates).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use klaxon_domain::EventKind;
use klaxon_domain::decide::Command;
use klaxon_domain::id::looks_like_id;
use klaxon_domain::templates::{Rendered, TemplateContext, TemplateSource};
use klaxon_domain::wire::{
    ErrorBody, IncidentUpdate, PostUpdateRequest, PostedUpdate, RenderRequest, TemplateInfo, TokenRole,
};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller, Responder};
use crate::incidents::{load, run};
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

fn updates_of(timeline: &[klaxon_domain::TimelineEvent]) -> Vec<IncidentUpdate> {
    timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::UpdatePosted {
                number,
                message,
                public,
                status,
                ..
            } => Some(IncidentUpdate {
                number: *number,
                at: e.at,
                by: e.actor.clone(),
                message: message.clone(),
                public: *public,
                status: *status,
            }),
            _ => None,
        })
        .collect()
}

/// Post a stakeholder update: recorded on the timeline, the next update's due
/// time moves by the severity's cadence, `update_overdue` clears; the answer
/// carries the `status-update` template rendered for it.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/updates", tag = "communication", request_body = PostUpdateRequest, security(("bearer" = [])),
    params(("id" = String, Path, description = "Incident ID")),
    responses((status = 201, body = PostedUpdate), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_update(
    State(s): State<AppState>,
    Responder(caller): Responder,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PostUpdateRequest>,
) -> ApiResult<(StatusCode, Json<PostedUpdate>)> {
    let Json(inc) = run(
        &s,
        &caller,
        &id,
        Command::PostUpdate {
            message: req.message,
            public: req.public,
            status: req.status,
        },
    )
    .await?;
    let timeline = s.store.timeline(&id).await?.unwrap_or_default();
    let update = updates_of(&timeline)
        .pop()
        .ok_or_else(|| ApiError::internal("the update was not recorded"))?;
    let cx = TemplateContext::new(
        &inc,
        &timeline,
        Some(update.message.clone()),
        update.number,
        s.clock.now(),
        None,
    );
    let rendered = s
        .templates
        .render("status-update", &cx)
        .map_err(|e| ApiError::internal(format!("{}: {}", e.key, e.message)))?;
    Ok((
        StatusCode::CREATED,
        Json(PostedUpdate {
            incident: inc,
            update,
            rendered,
        }),
    ))
}

/// The incident's stakeholder updates, oldest first.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/updates", tag = "communication",
    params(("id" = String, Path, description = "Incident ID")),
    responses((status = 200, body = Vec<IncidentUpdate>), (status = 404, body = ErrorBody)))]
pub async fn list_updates(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<IncidentUpdate>>> {
    load(&s, &caller, &id).await?;
    let timeline = s.store.timeline(&id).await?.unwrap_or_default();
    Ok(Json(updates_of(&timeline)))
}
