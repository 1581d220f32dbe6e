//! `/api/v1/tokens`: create, list and revoke API tokens (admin only).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use klaxon_domain::wire::{CreateToken, CreatedToken, ErrorBody, TokenInfo};
use klaxon_store::new_secret;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, ApiJson};
use crate::state::AppState;

/// Create a token. Its secret is in this answer and never again.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateToken, security(("bearer" = [])),
    responses((status = 201, body = CreatedToken), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    Admin(caller): Admin,
    ApiJson(b): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let name = b.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid("name", "name must be 1-100 printable characters"));
    }
    let secret = new_secret();
    let info = s.store.create_token(name, b.role, &secret, s.clock.now()).await?;
    tracing::info!(token = %info.id, name = %info.name, role = info.role.as_str(), by = %caller.name, "token created");
    Ok((StatusCode::CREATED, Json(CreatedToken { info, token: secret })))
}

/// List tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])),
    responses((status = 200, body = Vec<TokenInfo>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(s): State<AppState>, Admin(_caller): Admin) -> ApiResult<Json<Vec<TokenInfo>>> {
    Ok(Json(s.store.list_tokens().await?))
}

/// Revoke a token by ID or name.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "Token ID or name")),
    responses((status = 200, body = TokenInfo), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(s): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<TokenInfo>> {
    let info = s.store.revoke_token(&id, s.clock.now()).await?;
    tracing::info!(token = %info.id, by = %caller.name, "token revoked");
    Ok(Json(info))
}
