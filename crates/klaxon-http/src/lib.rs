//! Klaxon's HTTP surface: the REST API (`/api/v1`) with its OpenAPI
//! document, health, readiness and metrics.

mod alerting;
mod checks;
mod error;
mod extract;
mod incidents;
pub mod ingest;
mod limits;
pub mod metrics;
mod openapi;
mod ops;
mod paging;
mod people;
mod schedules;
mod slack;
mod state;
mod status_admin;
pub mod status_page;
mod templates;
mod tokens;
mod twilio;

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

pub use alerting::{check_route, silence_from};
pub use error::ApiError;
pub use extract::MAX_BODY;
pub use openapi::ApiDoc;
pub use state::{AppParts, AppState, AuthSettings};

async fn fallback() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    let _ = metrics::handle();
    let api = Router::new()
        .route("/incidents", post(incidents::declare).get(incidents::list))
        .route("/incidents/{id}", get(incidents::get).patch(incidents::patch))
        .route("/incidents/{id}/status", post(incidents::status))
        .route("/incidents/{id}/ack", post(incidents::ack))
        .route("/incidents/{id}/reopen", post(incidents::reopen))
        .route("/incidents/{id}/severity", post(incidents::severity))
        .route("/incidents/{id}/roles/{role}", put(incidents::role))
        .route("/incidents/{id}/notes", post(incidents::note))
        .route("/incidents/{id}/unack", post(paging::unack))
        .route("/incidents/{id}/snooze", post(paging::snooze))
        .route("/incidents/{id}/reassign", post(paging::reassign))
        .route("/incidents/{id}/escalate", post(paging::escalate))
        .route("/notifications", get(paging::list_notifications))
        .route("/notifications/{id}/retry", post(paging::retry_notification))
        .route("/debug/clock", post(paging::debug_clock))
        .route(
            "/incidents/{id}/updates",
            post(templates::post_update).get(templates::list_updates),
        )
        .route("/status-page", get(status_admin::show))
        .route(
            "/status-page/components/{id}",
            put(status_admin::set_component).delete(status_admin::clear_component),
        )
        .route("/templates", get(templates::list))
        .route("/templates/{name}", get(templates::get))
        .route("/templates/{name}/render", post(templates::render))
        .route("/incidents/{id}/timeline", get(incidents::timeline))
        .route("/incidents/{id}/timeline/verify", get(incidents::verify))
        .route("/tokens", post(tokens::create).get(tokens::list))
        .route("/tokens/{id}", axum::routing::delete(tokens::revoke))
        .route(
            "/integrations",
            post(alerting::create_integration).get(alerting::list_integrations),
        )
        .route(
            "/integrations/{id}",
            get(alerting::get_integration).delete(alerting::delete_integration),
        )
        .route("/integrations/{id}/rotate-key", post(alerting::rotate_key))
        .route("/alerts", get(alerting::list_alerts))
        .route("/alerts/{id}", get(alerting::get_alert))
        .route("/alerts/{id}/ack", post(alerting::ack_alert))
        .route("/alerts/{id}/resolve", post(alerting::resolve_alert))
        .route("/silences", post(alerting::create_silence).get(alerting::list_silences))
        .route("/silences/{id}", axum::routing::delete(alerting::expire_silence))
        .route("/routes", get(alerting::list_routes))
        .route(
            "/routes/{name}",
            put(alerting::put_route).delete(alerting::delete_route),
        )
        .route("/users", get(people::list_users))
        .route(
            "/users/{id}",
            get(people::get_user).put(people::put_user).delete(people::delete_user),
        )
        .route("/teams", get(people::list_teams))
        .route(
            "/teams/{id}",
            get(people::get_team).put(people::put_team).delete(people::delete_team),
        )
        .route("/escalation-policies", get(people::list_policies))
        .route(
            "/escalation-policies/{id}",
            get(people::get_policy)
                .put(people::put_policy)
                .delete(people::delete_policy),
        )
        .route("/schedules", post(schedules::create).get(schedules::list))
        .route(
            "/schedules/{id}",
            get(schedules::get).put(schedules::replace).delete(schedules::delete),
        )
        .route(
            "/schedules/{id}/overrides",
            post(schedules::add_override).get(schedules::list_overrides),
        )
        .route(
            "/schedules/{id}/overrides/{override_id}",
            axum::routing::delete(schedules::delete_override),
        )
        .route("/schedules/{id}/oncall", get(schedules::oncall))
        .route("/schedules/{id}/shifts", get(schedules::shifts))
        .route("/checks", get(checks::list))
        .route("/checks/{name}/history", get(checks::history))
        .route("/checks/{name}/run", post(checks::run))
        .route("/severities", get(ops::severities))
        .route("/catalog", get(ops::catalog))
        .route("/openapi.json", get(openapi::document))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits::limit_api));
    Router::new()
        .nest("/api/v1", api)
        .route("/ingest/alertmanager/{key}", post(ingest::alertmanager))
        .route("/ingest/grafana/{key}", post(ingest::grafana))
        .route("/ingest/generic/{key}", post(ingest::generic))
        .route("/v2/enqueue", post(ingest::pagerduty))
        .route("/hooks/slack/commands", post(slack::commands))
        .route("/hooks/slack/interactions", post(slack::interactions))
        .route("/hooks/twilio/voice", post(twilio::voice))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(fallback)
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(TraceLayer::new_for_http())
        .with_state(state.clone())
        .merge(status_page::routes(state.status_page.clone()))
}

/// The bound server: bind first (port 0 works), then run.
pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    pub async fn build(state: AppState, listen: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        state
            .status_page
            .start(state.store.clone(), state.clock.clone(), state.catalog.clone());
        Ok(Self {
            listener,
            router: router(state),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn port(&self) -> u16 {
        self.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        axum::serve(
            self.listener,
            self.router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}
