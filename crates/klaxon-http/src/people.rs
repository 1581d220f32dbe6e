//! `/api/v1/users`, `/api/v1/teams` and `/api/v1/escalation-policies`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use klaxon_domain::escalation::{EscalationPolicy, EscalationTarget};
use klaxon_domain::people::{Team, User};
use klaxon_domain::wire::{ErrorBody, TokenRole};
use klaxon_store::Collection;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, ApiJson, Caller};
use crate::state::AppState;

fn same_id(path: &str, body: &str) -> ApiResult<()> {
    if path != body {
        return Err(ApiError::invalid(
            "id",
            format!("body names {body:?} but the path names {path:?}"),
        ));
    }
    Ok(())
}

/// Create or replace a user with contact methods and notification rules.
#[utoipa::path(put, path = "/api/v1/users/{id}", tag = "on-call", request_body = User, security(("bearer" = [])),
    params(("id" = String, Path, description = "User ID")), responses((status = 200, body = User), (status = 422, body = ErrorBody)))]
pub async fn put_user(
    State(s): State<AppState>,
    Admin(_c): Admin,
    Path(id): Path<String>,
    ApiJson(u): ApiJson<User>,
) -> ApiResult<Json<User>> {
    same_id(&id, &u.id)?;
    u.validate().map_err(|e| ApiError::invalid(&e.field, e.to_string()))?;
    s.store.put_document(Collection::Users, &id, &u, s.clock.now()).await?;
    Ok(Json(u))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "on-call", security(("bearer" = [])), responses((status = 200, body = Vec<User>)))]
pub async fn list_users(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<User>>> {
    caller.require(TokenRole::Viewer)?;
    Ok(Json(s.store.documents(Collection::Users).await?))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "on-call", security(("bearer" = [])),
    params(("id" = String, Path, description = "User ID")), responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
pub async fn get_user(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<User>> {
    caller.require(TokenRole::Viewer)?;
    s.store
        .document(Collection::Users, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("user {id} not found")))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "on-call", security(("bearer" = [])),
    params(("id" = String, Path, description = "User ID")), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_user(State(s): State<AppState>, Admin(_c): Admin, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.store.delete_document(Collection::Users, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create or replace a team; its members must be known users.
#[utoipa::path(put, path = "/api/v1/teams/{id}", tag = "on-call", request_body = Team, security(("bearer" = [])),
    params(("id" = String, Path, description = "Team ID")), responses((status = 200, body = Team), (status = 422, body = ErrorBody)))]
pub async fn put_team(
    State(s): State<AppState>,
    Admin(_c): Admin,
    Path(id): Path<String>,
    ApiJson(t): ApiJson<Team>,
) -> ApiResult<Json<Team>> {
    same_id(&id, &t.id)?;
    t.validate().map_err(|e| ApiError::invalid(&e.field, e.to_string()))?;
    for (i, m) in t.members.iter().enumerate() {
        if s.store.document::<User>(Collection::Users, m).await?.is_none() {
            return Err(ApiError::invalid(&format!("members[{i}]"), format!("no user {m:?}")));
        }
    }
    s.store.put_document(Collection::Teams, &id, &t, s.clock.now()).await?;
    Ok(Json(t))
}

#[utoipa::path(get, path = "/api/v1/teams", tag = "on-call", security(("bearer" = [])), responses((status = 200, body = Vec<Team>)))]
pub async fn list_teams(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Team>>> {
    caller.require(TokenRole::Viewer)?;
    Ok(Json(s.store.documents(Collection::Teams).await?))
}

#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "on-call", security(("bearer" = [])),
    params(("id" = String, Path, description = "Team ID")), responses((status = 200, body = Team), (status = 404, body = ErrorBody)))]
pub async fn get_team(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Team>> {
    caller.require(TokenRole::Viewer)?;
    s.store
        .document(Collection::Teams, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("team {id} not found")))
}

#[utoipa::path(delete, path = "/api/v1/teams/{id}", tag = "on-call", security(("bearer" = [])),
    params(("id" = String, Path, description = "Team ID")), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_team(State(s): State<AppState>, Admin(_c): Admin, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.store.delete_document(Collection::Teams, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every target must exist: users, teams, schedules (and their role).
async fn check_targets(s: &AppState, p: &EscalationPolicy) -> ApiResult<()> {
    for (i, l) in p.levels.iter().enumerate() {
        for (j, t) in l.targets.iter().enumerate() {
            let field = format!("levels[{i}].targets[{j}]");
            let missing = match t {
                EscalationTarget::User(id) => s
                    .store
                    .document::<User>(Collection::Users, id)
                    .await?
                    .is_none()
                    .then(|| format!("no user {id:?}")),
                EscalationTarget::Team(id) => s
                    .store
                    .document::<Team>(Collection::Teams, id)
                    .await?
                    .is_none()
                    .then(|| format!("no team {id:?}")),
                EscalationTarget::Schedule { id, role } => match s.store.schedule(id, s.clock.now()).await? {
                    None => Some(format!("no schedule {id:?}")),
                    Some(sch) => {
                        let role = role.clone().unwrap_or_else(|| "primary".into());
                        (!sch.spec.roles.contains_key(&role)).then(|| format!("schedule {id:?} has no role {role:?}"))
                    }
                },
            };
            if let Some(m) = missing {
                return Err(ApiError::invalid(&field, m));
            }
        }
    }
    Ok(())
}

/// Create or replace an escalation policy; every target must exist.
#[utoipa::path(put, path = "/api/v1/escalation-policies/{id}", tag = "on-call", request_body = EscalationPolicy, security(("bearer" = [])),
    params(("id" = String, Path, description = "Policy ID")), responses((status = 200, body = EscalationPolicy), (status = 422, body = ErrorBody)))]
pub async fn put_policy(
    State(s): State<AppState>,
    Admin(_c): Admin,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<EscalationPolicy>,
) -> ApiResult<Json<EscalationPolicy>> {
    same_id(&id, &p.id)?;
    p.validate().map_err(|e| ApiError::invalid(&e.field, e.to_string()))?;
    check_targets(&s, &p).await?;
    s.store
        .put_document(Collection::EscalationPolicies, &id, &p, s.clock.now())
        .await?;
    Ok(Json(p))
}

#[utoipa::path(get, path = "/api/v1/escalation-policies", tag = "on-call", security(("bearer" = [])), responses((status = 200, body = Vec<EscalationPolicy>)))]
pub async fn list_policies(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<EscalationPolicy>>> {
    caller.require(TokenRole::Viewer)?;
    Ok(Json(s.store.documents(Collection::EscalationPolicies).await?))
}

#[utoipa::path(get, path = "/api/v1/escalation-policies/{id}", tag = "on-call", security(("bearer" = [])),
    params(("id" = String, Path, description = "Policy ID")), responses((status = 200, body = EscalationPolicy), (status = 404, body = ErrorBody)))]
pub async fn get_policy(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<EscalationPolicy>> {
    caller.require(TokenRole::Viewer)?;
    s.store
        .document(Collection::EscalationPolicies, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("escalation policy {id} not found")))
}

#[utoipa::path(delete, path = "/api/v1/escalation-policies/{id}", tag = "on-call", security(("bearer" = [])),
    params(("id" = String, Path, description = "Policy ID")), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_policy(
    State(s): State<AppState>,
    Admin(_c): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_document(Collection::EscalationPolicies, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
