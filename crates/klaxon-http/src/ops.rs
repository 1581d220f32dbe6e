//! Health, readiness, metrics and the catalog in force.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use klaxon_domain::config::{Category, RoleDef, ServiceDef};
use klaxon_domain::severity::SeverityScheme;
use serde::Serialize;

use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        database: None,
        error: None,
    })
}

/// Readiness: migrations are applied (the server only listens after) and the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    match s.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(Health {
                status: "ready",
                database: Some(s.store.backend().as_str()),
                error: None,
            }),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable",
                database: Some(s.store.backend().as_str()),
                error: Some(e.to_string()),
            }),
        ),
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics() -> impl IntoResponse {
    let body = crate::metrics::render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SeveritiesResponse {
    #[serde(flatten)]
    pub scheme: SeverityScheme,
    /// Used when a declaration names no severity.
    pub default_severity: String,
}

/// The severity scheme in force.
#[utoipa::path(get, path = "/api/v1/severities", tag = "catalog", responses((status = 200, body = SeveritiesResponse)))]
pub async fn severities(State(s): State<AppState>) -> Json<SeveritiesResponse> {
    Json(SeveritiesResponse {
        scheme: s.catalog.severities.clone(),
        default_severity: s.catalog.default_severity.clone(),
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CatalogResponse {
    pub categories: Vec<Category>,
    pub roles: Vec<RoleDef>,
    pub services: Vec<ServiceDef>,
    pub id_format: String,
}

/// Categories, roles, services and the incident ID format in force.
#[utoipa::path(get, path = "/api/v1/catalog", tag = "catalog", responses((status = 200, body = CatalogResponse)))]
pub async fn catalog(State(s): State<AppState>) -> Json<CatalogResponse> {
    Json(CatalogResponse {
        categories: s.catalog.categories.clone(),
        roles: s.catalog.roles.clone(),
        services: s.catalog.services.clone(),
        id_format: s.catalog.id_format.template().to_string(),
    })
}
