//! The OpenAPI 3.1 document, served at `/api/v1/openapi.json`.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{alerting, checks, incidents, ingest, ops, paging, people, schedules, status_admin, templates, tokens};

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Klaxon", description = "Self-hosted incident response: incidents, timelines, severities."),
    paths(
        incidents::declare, incidents::list, incidents::get, incidents::patch, incidents::status, incidents::ack,
        incidents::reopen, incidents::severity, incidents::role, incidents::note, incidents::timeline, incidents::verify,
        tokens::create, tokens::list, tokens::revoke,
        ingest::alertmanager, ingest::grafana, ingest::generic, ingest::pagerduty,
        alerting::create_integration, alerting::list_integrations, alerting::get_integration, alerting::rotate_key, alerting::delete_integration,
        alerting::list_alerts, alerting::get_alert, alerting::ack_alert, alerting::resolve_alert,
        alerting::create_silence, alerting::list_silences, alerting::expire_silence,
        alerting::list_routes, alerting::put_route, alerting::delete_route,
        people::put_user, people::list_users, people::get_user, people::delete_user,
        people::put_team, people::list_teams, people::get_team, people::delete_team,
        people::put_policy, people::list_policies, people::get_policy, people::delete_policy,
        schedules::create, schedules::replace, schedules::list, schedules::get, schedules::delete,
        schedules::add_override, schedules::list_overrides, schedules::delete_override, schedules::oncall, schedules::shifts,
        paging::unack, paging::snooze, paging::reassign, paging::escalate, paging::list_notifications, paging::retry_notification,
        templates::list, templates::get, templates::render, templates::post_update, templates::list_updates,
        status_admin::show, status_admin::set_component, status_admin::clear_component,
        checks::list, checks::history, checks::run,
        ops::severities, ops::catalog, ops::healthz, ops::readyz, ops::metrics,
    ),
    modifiers(&Bearer),
    tags((name = "incidents"), (name = "ingest"), (name = "alerting"), (name = "on-call"), (name = "paging"), (name = "communication"), (name = "status page"), (name = "checks"), (name = "tokens"), (name = "catalog"), (name = "operations"))
)]
pub struct ApiDoc;

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
