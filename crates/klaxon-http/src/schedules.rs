//! `/api/v1/schedules`: on-call schedules, overrides, who is on call, shifts.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use klaxon_domain::schedule::{CreateOverride, OnCall, Schedule, ScheduleOverride, ScheduleSpec, ShiftOut};
use klaxon_domain::wire::{ErrorBody, TokenRole};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, ApiJson, ApiQuery, Caller, Responder};
use crate::state::AppState;

/// Longest range `shifts` answers for.
const MAX_RANGE_DAYS: i64 = 93;

async fn load(s: &AppState, id: &str) -> ApiResult<Schedule> {
    s.store
        .schedule(id, s.clock.now())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("schedule {id} not found")))
}

fn checked(spec: &ScheduleSpec) -> ApiResult<()> {
    spec.validate().map_err(|e| ApiError::invalid(&e.field, e.to_string()))
}

/// Create a schedule.
#[utoipa::path(post, path = "/api/v1/schedules", tag = "on-call", request_body = ScheduleSpec, security(("bearer" = [])),
    responses((status = 201, body = Schedule), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    Admin(_c): Admin,
    ApiJson(spec): ApiJson<ScheduleSpec>,
) -> ApiResult<(StatusCode, Json<Schedule>)> {
    checked(&spec)?;
    s.store.put_schedule(&spec, false, s.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(load(&s, &spec.name).await?)))
}

/// Create or replace a schedule.
#[utoipa::path(put, path = "/api/v1/schedules/{id}", tag = "on-call", request_body = ScheduleSpec, security(("bearer" = [])),
    params(("id" = String, Path, description = "Schedule ID")), responses((status = 200, body = Schedule), (status = 422, body = ErrorBody)))]
pub async fn replace(
    State(s): State<AppState>,
    Admin(_c): Admin,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<ScheduleSpec>,
) -> ApiResult<Json<Schedule>> {
    if spec.name != id {
        return Err(ApiError::invalid(
            "name",
            format!("body names schedule {:?} but the path names {id:?}", spec.name),
        ));
    }
    checked(&spec)?;
    s.store.put_schedule(&spec, true, s.clock.now()).await?;
    Ok(Json(load(&s, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/schedules", tag = "on-call", security(("bearer" = [])), responses((status = 200, body = Vec<Schedule>)))]
pub async fn list(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Schedule>>> {
    caller.require(TokenRole::Viewer)?;
    Ok(Json(s.store.schedules(s.clock.now()).await?))
}

#[utoipa::path(get, path = "/api/v1/schedules/{id}", tag = "on-call", security(("bearer" = [])),
    params(("id" = String, Path, description = "Schedule ID")), responses((status = 200, body = Schedule), (status = 404, body = ErrorBody)))]
pub async fn get(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Schedule>> {
    caller.require(TokenRole::Viewer)?;
    Ok(Json(load(&s, &id).await?))
}

#[utoipa::path(delete, path = "/api/v1/schedules/{id}", tag = "on-call", security(("bearer" = [])),
    params(("id" = String, Path, description = "Schedule ID")), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(State(s): State<AppState>, Admin(_c): Admin, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.store.delete_schedule(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn role_of(schedule: &Schedule, role: Option<&str>) -> ApiResult<String> {
    match role {
        Some(r) if schedule.spec.roles.contains_key(r) => Ok(r.to_string()),
        Some(r) => Err(ApiError::invalid(
            "role",
            format!(
                "schedule {} has no role {r:?}; it has: {}",
                schedule.spec.name,
                schedule.spec.roles.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )),
        None if schedule.spec.roles.len() == 1 => Ok(schedule.spec.roles.keys().next().cloned().unwrap_or_default()),
        None if schedule.spec.roles.contains_key("primary") => Ok("primary".into()),
        None => Err(ApiError::invalid("role", "this schedule has several roles: name one")),
    }
}

/// Put someone on call for a role over a period; wins over every layer.
#[utoipa::path(post, path = "/api/v1/schedules/{id}/overrides", tag = "on-call", request_body = CreateOverride, security(("bearer" = [])),
    params(("id" = String, Path, description = "Schedule ID")), responses((status = 201, body = ScheduleOverride), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_override(
    State(s): State<AppState>,
    Responder(c): Responder,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<CreateOverride>,
) -> ApiResult<(StatusCode, Json<ScheduleOverride>)> {
    let schedule = load(&s, &id).await?;
    let role = role_of(&schedule, b.role.as_deref())?;
    let user = b.user.trim();
    if user.is_empty() || user.chars().count() > 200 || user.chars().any(char::is_control) {
        return Err(ApiError::invalid("user", "user must be 1-200 printable characters"));
    }
    if b.end <= b.start {
        return Err(ApiError::invalid("end", "end must be after start"));
    }
    let o = ScheduleOverride {
        id: String::new(),
        role,
        user: user.to_string(),
        start: b.start,
        end: b.end,
        created_by: c.name,
    };
    let o = s.store.add_schedule_override(&id, o, s.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(o)))
}

#[utoipa::path(get, path = "/api/v1/schedules/{id}/overrides", tag = "on-call", security(("bearer" = [])),
    params(("id" = String, Path, description = "Schedule ID")), responses((status = 200, body = Vec<ScheduleOverride>), (status = 404, body = ErrorBody)))]
pub async fn list_overrides(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ScheduleOverride>>> {
    caller.require(TokenRole::Viewer)?;
    Ok(Json(load(&s, &id).await?.overrides))
}

#[utoipa::path(delete, path = "/api/v1/schedules/{id}/overrides/{override_id}", tag = "on-call", security(("bearer" = [])),
    params(("id" = String, Path, description = "Schedule ID"), ("override_id" = String, Path, description = "Override ID")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_override(
    State(s): State<AppState>,
    Responder(_c): Responder,
    Path((id, oid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.store.delete_schedule_override(&id, &oid).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AtQuery {
    /// RFC 3339 instant; default now.
    pub at: Option<Timestamp>,
}

/// Who is on call, per role, at an instant.
#[utoipa::path(get, path = "/api/v1/schedules/{id}/oncall", tag = "on-call", params(("id" = String, Path, description = "Schedule ID"), AtQuery),
    security(("bearer" = [])), responses((status = 200, body = OnCall), (status = 404, body = ErrorBody)))]
pub async fn oncall(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<AtQuery>,
) -> ApiResult<Json<OnCall>> {
    caller.require(TokenRole::Viewer)?;
    let at = q.at.unwrap_or_else(|| s.clock.now());
    let schedule = s
        .store
        .schedule(&id, at)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("schedule {id} not found")))?;
    let oncall = schedule
        .spec
        .roles
        .keys()
        .map(|role| {
            let who = schedule
                .spec
                .plan(role, &schedule.overrides)
                .and_then(|p| p.who_at(at).map(str::to_string));
            (role.clone(), who)
        })
        .collect();
    Ok(Json(OnCall {
        schedule: id,
        at,
        oncall,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    pub from: Timestamp,
    pub to: Timestamp,
    /// Only this role.
    pub role: Option<String>,
}

/// The shifts tiling [from, to), per role (at most 93 days).
#[utoipa::path(get, path = "/api/v1/schedules/{id}/shifts", tag = "on-call", params(("id" = String, Path, description = "Schedule ID"), RangeQuery),
    security(("bearer" = [])), responses((status = 200, body = Vec<ShiftOut>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn shifts(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Json<Vec<ShiftOut>>> {
    caller.require(TokenRole::Viewer)?;
    if q.to <= q.from {
        return Err(ApiError::invalid("to", "to must be after from"));
    }
    if q.to.duration_since(q.from).as_secs() > MAX_RANGE_DAYS * 86_400 {
        return Err(ApiError::invalid(
            "to",
            format!("at most {MAX_RANGE_DAYS} days per request"),
        ));
    }
    let schedule = s
        .store
        .schedule(&id, q.from)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("schedule {id} not found")))?;
    let roles: Vec<String> = match &q.role {
        Some(_) => vec![role_of(&schedule, q.role.as_deref())?],
        None => schedule.spec.roles.keys().cloned().collect(),
    };
    let mut out = Vec::new();
    for role in roles {
        if let Some(plan) = schedule.spec.plan(&role, &schedule.overrides) {
            out.extend(plan.shifts(q.from, q.to).into_iter().map(|sh| ShiftOut {
                role: role.clone(),
                user: sh.user,
                start: sh.start,
                end: sh.end,
            }));
        }
    }
    Ok(Json(out))
}
