//! `/api/v1/incidents`: declare, list, read and work incidents.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use klaxon_domain::decide::Command;
use klaxon_domain::event::VerifyReport;
use klaxon_domain::id::looks_like_id;
use klaxon_domain::wire::{
    AckRequest, DeclareIncident, ErrorBody, IncidentPage, IncidentPatch, IncidentQuery, NoteRequest, ReopenRequest,
    RoleAssignment, SeverityChange, StatusChange, Timeline, TokenRole,
};
use klaxon_domain::{Incident, Status};
use klaxon_store::ListFilter;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, Caller, Responder};
use crate::state::AppState;

fn check_read(s: &AppState, caller: &Caller) -> ApiResult<()> {
    if s.auth.require_token_for_reads {
        caller.require(TokenRole::Viewer)?;
    }
    Ok(())
}

/// Load an incident the caller may see; private ones are 404 to anonymous callers.
pub(crate) async fn load(s: &AppState, caller: &Caller, id: &str) -> ApiResult<Incident> {
    check_read(s, caller)?;
    let not_found = || ApiError::not_found(format!("incident {id} not found"));
    if !looks_like_id(id) {
        return Err(not_found());
    }
    match s.store.get(id).await? {
        Some(inc) if !inc.private || caller.is_authenticated() => Ok(inc),
        _ => Err(not_found()),
    }
}

pub(crate) async fn run(s: &AppState, caller: &Caller, id: &str, cmd: Command) -> ApiResult<Json<Incident>> {
    if !looks_like_id(id) {
        return Err(ApiError::not_found(format!("incident {id} not found")));
    }
    let name = command_name(&cmd);
    let (inc, events) = s
        .store
        .command(id, cmd, &caller.name, s.clock.now(), &s.catalog)
        .await?;
    if !events.is_empty() {
        metrics::counter!("klaxon_incident_commands_total", "command" => name).increment(1);
    }
    tracing::info!(incident = %inc.id, command = name, events = events.len(), "incident command");
    Ok(Json(inc))
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Status { .. } => "status",
        Command::Ack { .. } => "ack",
        Command::Reopen { .. } => "reopen",
        Command::Severity { .. } => "severity",
        Command::Patch(_) => "update",
        Command::Role { .. } => "role",
        Command::Note { .. } => "note",
        Command::Unack { .. } => "unack",
        Command::Snooze { .. } => "snooze",
        Command::Reassign { .. } => "reassign",
        Command::EscalateNow { .. } => "escalate",
        Command::PostUpdate { .. } => "update",
    }
}

/// Declare an incident.
#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents", request_body = DeclareIncident,
    security(("bearer" = [])),
    responses((status = 201, body = Incident), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn declare(
    State(s): State<AppState>,
    Responder(caller): Responder,
    ApiJson(req): ApiJson<DeclareIncident>,
) -> ApiResult<(StatusCode, Json<Incident>)> {
    if let Some(p) = req
        .escalation_policy
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        && klaxon_domain::config::is_slug(p)
        && s.store
            .document::<klaxon_domain::escalation::EscalationPolicy>(klaxon_store::Collection::EscalationPolicies, p)
            .await?
            .is_none()
    {
        return Err(ApiError::invalid(
            "escalation_policy",
            format!("escalation policy {p:?} does not exist"),
        ));
    }
    let (inc, _) = s.store.declare(&req, &caller.name, s.clock.now(), &s.catalog).await?;
    metrics::counter!("klaxon_incidents_declared_total", "severity" => inc.severity.clone()).increment(1);
    tracing::info!(incident = %inc.id, severity = %inc.severity, "incident declared");
    Ok((StatusCode::CREATED, Json(inc)))
}

fn split(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn time_param(field: &str, v: &Option<String>) -> ApiResult<Option<jiff::Timestamp>> {
    v.as_deref()
        .map(|t| {
            t.parse::<jiff::Timestamp>().map_err(|e| {
                ApiError::invalid(
                    field,
                    format!("{field}: expected an RFC 3339 time such as 2026-11-23T10:00:00Z ({e})"),
                )
            })
        })
        .transpose()
}

/// List incidents, newest first, with filters and cursor pagination.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", params(IncidentQuery),
    responses((status = 200, body = IncidentPage), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<IncidentQuery>,
) -> ApiResult<Json<IncidentPage>> {
    check_read(&s, &caller)?;
    let mut f = ListFilter {
        include_private: caller.is_authenticated(),
        limit: 50,
        ..Default::default()
    };
    if let Some(st) = &q.status {
        for part in split(st) {
            if part.eq_ignore_ascii_case("open") {
                f.statuses.extend(Status::ALL.into_iter().filter(|s| s.is_open()));
            } else {
                f.statuses
                    .push(part.parse().map_err(|e: String| ApiError::invalid("status", e))?);
            }
        }
    }
    if let Some(sev) = &q.severity {
        for part in split(sev) {
            let level = s.catalog.severities.find(part).ok_or_else(|| {
                ApiError::invalid(
                    "severity",
                    format!(
                        "unknown severity {part:?}; expected one of: {}",
                        s.catalog.severities.keys().join(", ")
                    ),
                )
            })?;
            f.severities.push(level.key.clone());
        }
    }
    if let Some(c) = &q.category {
        let cat = s
            .catalog
            .find_category(c)
            .ok_or_else(|| ApiError::invalid("category", format!("unknown category {c:?}")))?;
        f.category = Some(cat.key.clone());
    }
    f.service = q.service.clone().filter(|s| !s.is_empty());
    f.from = time_param("from", &q.from)?;
    f.to = time_param("to", &q.to)?;
    if let Some(limit) = q.limit {
        if !(1..=500).contains(&limit) {
            return Err(ApiError::invalid("limit", "limit must be between 1 and 500"));
        }
        f.limit = limit;
    }
    if let Some(c) = &q.cursor {
        f.before_pk = Some(
            c.parse()
                .map_err(|_| ApiError::invalid("cursor", "cursor is not one this server issued"))?,
        );
    }
    let (items, next) = s.store.list(&f).await?;
    Ok(Json(IncidentPage {
        items,
        next_cursor: next.map(|n| n.to_string()),
    }))
}

/// Read one incident.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents", params(("id" = String, Path, description = "Incident ID")),
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody)))]
pub async fn get(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Incident>> {
    load(&s, &caller, &id).await.map(Json)
}

/// Change fields (title, description, category, services, impact, workaround, labels, started_at, detected_at, private).
#[utoipa::path(patch, path = "/api/v1/incidents/{id}", tag = "incidents", request_body = IncidentPatch, security(("bearer" = [])),
    params(("id" = String, Path, description = "Incident ID")),
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(s): State<AppState>,
    Responder(caller): Responder,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<IncidentPatch>,
) -> ApiResult<Json<Incident>> {
    run(&s, &caller, &id, Command::Patch(Box::new(p))).await
}

/// Move the status forward. Going back needs `reopen`.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/status", tag = "incidents", request_body = StatusChange, security(("bearer" = [])),
    params(("id" = String, Path, description = "Incident ID")),
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn status(
    State(s): State<AppState>,
    Responder(caller): Responder,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<StatusChange>,
) -> ApiResult<Json<Incident>> {
    run(
        &s,
        &caller,
        &id,
        Command::Status {
            to: b.status,
            message: b.message,
        },
    )
    .await
}

/// Acknowledge. Idempotent while the incident is open.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/ack", tag = "incidents", request_body(content = Option<AckRequest>), security(("bearer" = [])),
    params(("id" = String, Path, description = "Incident ID")),
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn ack(
    State(s): State<AppState>,
    Responder(caller): Responder,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<AckRequest>,
) -> ApiResult<Json<Incident>> {
    run(&s, &caller, &id, Command::Ack { message: b.message }).await
}

/// Return to an earlier open status; recorded with its reason.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/reopen", tag = "incidents", request_body(content = Option<ReopenRequest>), security(("bearer" = [])),
    params(("id" = String, Path, description = "Incident ID")),
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reopen(
    State(s): State<AppState>,
    Responder(caller): Responder,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ReopenRequest>,
) -> ApiResult<Json<Incident>> {
    run(
        &s,
        &caller,
        &id,
        Command::Reopen {
            to: b.status,
            reason: b.reason,
        },
    )
    .await
}

/// Change severity; deadlines and update cadence follow the new level.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/severity", tag = "incidents", request_body = SeverityChange, security(("bearer" = [])),
    params(("id" = String, Path, description = "Incident ID")),
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn severity(
    State(s): State<AppState>,
    Responder(caller): Responder,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<SeverityChange>,
) -> ApiResult<Json<Incident>> {
    run(
        &s,
        &caller,
        &id,
        Command::Severity {
            to: b.severity,
            reason: b.reason,
        },
    )
    .await
}

/// Assign (or with `null`, clear) a role; hand-over is recorded.
#[utoipa::path(put, path = "/api/v1/incidents/{id}/roles/{role}", tag = "incidents", request_body = RoleAssignment, security(("bearer" = [])),
    params(("id" = String, Path, description = "Incident ID"), ("role" = String, Path, description = "Role key or alias, e.g. incident_commander or ic")),
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn role(
    State(s): State<AppState>,
    Responder(caller): Responder,
    Path((id, role)): Path<(String, String)>,
    ApiJson(b): ApiJson<RoleAssignment>,
) -> ApiResult<Json<Incident>> {
    run(
        &s,
        &caller,
        &id,
        Command::Role {
            role,
            assignee: b.assignee,
        },
    )
    .await
}

/// Add a note to the timeline.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/notes", tag = "incidents", request_body = NoteRequest, security(("bearer" = [])),
    params(("id" = String, Path, description = "Incident ID")),
    responses((status = 201, body = Incident), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn note(
    State(s): State<AppState>,
    Responder(caller): Responder,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<NoteRequest>,
) -> ApiResult<(StatusCode, Json<Incident>)> {
    run(&s, &caller, &id, Command::Note { text: b.text })
        .await
        .map(|j| (StatusCode::CREATED, j))
}

/// The incident's timeline, oldest first.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/timeline", tag = "incidents", params(("id" = String, Path, description = "Incident ID")),
    responses((status = 200, body = Timeline), (status = 404, body = ErrorBody)))]
pub async fn timeline(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Timeline>> {
    load(&s, &caller, &id).await?;
    let events = s
        .store
        .timeline(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("incident {id} not found")))?;
    Ok(Json(Timeline {
        incident_id: id,
        events,
    }))
}

/// Recompute the timeline's hash chain and report the first broken link.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/timeline/verify", tag = "incidents", params(("id" = String, Path, description = "Incident ID")),
    responses((status = 200, body = VerifyReport), (status = 404, body = ErrorBody)))]
pub async fn verify(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<VerifyReport>> {
    load(&s, &caller, &id).await?;
    let report = s
        .store
        .verify(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("incident {id} not found")))?;
    Ok(Json(report))
}
