//! Managing the status page through the API: the page as it is now, and
//! component statuses set by hand (they win over incidents and checks until
//! cleared).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use klaxon_domain::status_page::{ComponentOverride, ComponentStatus};
use klaxon_store::Collection;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller, Responder};
use crate::state::AppState;

/// Body of `PUT /api/v1/status-page/components/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetComponent {
    /// `operational`, `degraded_performance`, `partial_outage`, `major_outage` or `under_maintenance`.
    pub status: ComponentStatus,
    /// Why (kept with the override; at most 500 characters).
    #[serde(default)]
    pub note: Option<String>,
}

async fn rebuild(s: &AppState) -> ApiResult<()> {
    s.status_page
        .refresh(&s.store, &s.catalog, s.clock.now())
        .await
        .map_err(ApiError::internal)
}

/// The public page's summary (as `/api/v2/summary.json`) and the overrides in force.
#[utoipa::path(get, path = "/api/v1/status-page", tag = "status page",
    responses((status = 200, description = "summary and overrides")))]
pub async fn show(State(s): State<AppState>, _caller: Caller) -> ApiResult<Json<serde_json::Value>> {
    rebuild(&s).await?;
    let summary: serde_json::Value = s
        .status_page
        .summary_json()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let overrides: Vec<ComponentOverride> = s.store.documents(Collection::ComponentOverrides).await?;
    Ok(Json(serde_json::json!({"summary": summary, "overrides": overrides})))
}

fn known(s: &AppState, id: &str) -> ApiResult<()> {
    let comps = s.status_page.config().components(&s.catalog);
    if comps.iter().any(|c| c.id == id) {
        return Ok(());
    }
    let names: Vec<&str> = comps.iter().map(|c| c.id.as_str()).collect();
    Err(ApiError::not_found(format!(
        "no component {id:?} on the status page (components: {})",
        names.join(", ")
    )))
}

/// Set a component's status by hand.
#[utoipa::path(put, path = "/api/v1/status-page/components/{id}", tag = "status page", request_body = SetComponent,
    params(("id" = String, Path, description = "Component ID")),
    responses((status = 200, body = ComponentOverride), (status = 404), (status = 422)))]
pub async fn set_component(
    State(s): State<AppState>,
    Responder(_caller): Responder,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SetComponent>,
) -> ApiResult<Json<ComponentOverride>> {
    known(&s, &id)?;
    if req.note.as_ref().is_some_and(|n| n.chars().count() > 500) {
        return Err(ApiError::invalid("note", "at most 500 characters"));
    }
    let o = ComponentOverride {
        component: id.clone(),
        status: req.status,
        note: req.note,
    };
    s.store
        .put_document(Collection::ComponentOverrides, &id, &o, s.clock.now())
        .await?;
    rebuild(&s).await?;
    Ok(Json(o))
}

/// Go back to the status incidents and checks give the component.
#[utoipa::path(delete, path = "/api/v1/status-page/components/{id}", tag = "status page",
    params(("id" = String, Path, description = "Component ID")),
    responses((status = 204), (status = 404)))]
pub async fn clear_component(
    State(s): State<AppState>,
    Responder(_caller): Responder,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    known(&s, &id)?;
    s.store.delete_document(Collection::ComponentOverrides, &id).await?;
    rebuild(&s).await?;
    Ok(StatusCode::NO_CONTENT)
}
