//! Paging people: unacknowledge, snooze, reassign and escalate-now on an
//! incident; the notification outbox (`/api/v1/notifications`); and the test
//! clock of servers started with `KLAXON_TEST_CLOCK`.

use axum::Json;
use axum::extract::{Path, State};
use jiff::SignedDuration;
use klaxon_domain::Incident;
use klaxon_domain::decide::{Command, SNOOZE_MAX};
use klaxon_domain::people::User;
use klaxon_domain::wire::{
    ClockRequest, ErrorBody, Notification, NotificationQuery, ReasonRequest, ReassignRequest, SnoozeRequest, TokenRole,
};
use klaxon_store::{Collection, NotificationFilter};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, ApiJson, ApiQuery, Caller, Responder};
use crate::incidents::run;
use crate::state::AppState;

/// Back to triggered: the escalation policy pages again from where it stopped.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/unack", tag = "paging", request_body(content = Option<ReasonRequest>), security(("bearer" = [])),
    params(("id" = String, Path, description = "Incident ID")),
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn unack(
    State(s): State<AppState>,
    Responder(caller): Responder,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ReasonRequest>,
) -> ApiResult<Json<Incident>> {
    run(&s, &caller, &id, Command::Unack { reason: b.reason }).await
}

/// Acknowledge until a time (`until`) or for a while (`for`, at most 24h); then page again.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/snooze", tag = "paging", request_body = SnoozeRequest, security(("bearer" = [])),
    params(("id" = String, Path, description = "Incident ID")),
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn snooze(
    State(s): State<AppState>,
    Responder(caller): Responder,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<SnoozeRequest>,
) -> ApiResult<Json<Incident>> {
    let until = match (b.until, b.duration.as_deref()) {
        (Some(_), Some(_)) => return Err(ApiError::invalid("for", "give either until or for, not both")),
        (Some(u), None) => u,
        (None, Some(d)) => {
            let d = klaxon_domain::duration::parse(d).map_err(|e| ApiError::invalid("for", e))?;
            if d > SNOOZE_MAX || d.is_zero() {
                return Err(ApiError::invalid("for", "a snooze lasts between 1s and 24h"));
            }
            let d = SignedDuration::try_from(d).map_err(|e| ApiError::invalid("for", e.to_string()))?;
            s.clock
                .now()
                .checked_add(d)
                .map_err(|e| ApiError::invalid("for", e.to_string()))?
        }
        (None, None) => return Err(ApiError::invalid("until", "give until (a time) or for (a duration)")),
    };
    run(&s, &caller, &id, Command::Snooze { until }).await
}

/// Hand the incident to these users and page them now; escalation goes on
/// after the current level's delay if nobody acknowledges.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/reassign", tag = "paging", request_body = ReassignRequest, security(("bearer" = [])),
    params(("id" = String, Path, description = "Incident ID")),
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reassign(
    State(s): State<AppState>,
    Responder(caller): Responder,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ReassignRequest>,
) -> ApiResult<Json<Incident>> {
    for (i, u) in b.users.iter().enumerate().take(20) {
        if klaxon_domain::config::is_slug(u) && s.store.document::<User>(Collection::Users, u).await?.is_none() {
            return Err(ApiError::invalid(
                &format!("users[{i}]"),
                format!("user {u:?} does not exist"),
            ));
        }
    }
    run(
        &s,
        &caller,
        &id,
        Command::Reassign {
            users: b.users,
            reason: b.reason,
        },
    )
    .await
}

/// Page the next level of the escalation policy now (even if acknowledged).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/escalate", tag = "paging", request_body(content = Option<ReasonRequest>), security(("bearer" = [])),
    params(("id" = String, Path, description = "Incident ID")),
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn escalate(
    State(s): State<AppState>,
    Responder(caller): Responder,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ReasonRequest>,
) -> ApiResult<Json<Incident>> {
    run(&s, &caller, &id, Command::EscalateNow { reason: b.reason }).await
}

const STATES: [&str; 4] = ["pending", "delivered", "dead", "cancelled"];

/// The notification outbox, newest first: `?state=dead` lists what was given up on.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "paging", params(NotificationQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<Notification>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_notifications(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<NotificationQuery>,
) -> ApiResult<Json<Vec<Notification>>> {
    caller.require(TokenRole::Viewer)?;
    if let Some(st) = &q.state
        && !STATES.contains(&st.as_str())
    {
        return Err(ApiError::invalid(
            "state",
            format!("unknown state {st:?}; expected one of: {}", STATES.join(", ")),
        ));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "between 1 and 1000"));
    }
    let f = NotificationFilter {
        state: q.state,
        incident_id: q.incident,
        limit,
    };
    Ok(Json(s.store.notifications(&f).await?))
}

/// Queue a dead (or cancelled) notification again, due now.
#[utoipa::path(post, path = "/api/v1/notifications/{id}/retry", tag = "paging", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Notification ID")),
    responses((status = 200, body = Notification), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn retry_notification(
    State(s): State<AppState>,
    Responder(_caller): Responder,
    Path(id): Path<String>,
) -> ApiResult<Json<Notification>> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("notification {id} not found")))?;
    Ok(Json(s.store.retry_notification(id, s.clock.now()).await?))
}

/// Move the manual clock (servers started with `KLAXON_TEST_CLOCK` only; 404 otherwise).
pub async fn debug_clock(
    State(s): State<AppState>,
    Admin(_caller): Admin,
    ApiJson(b): ApiJson<ClockRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let Some(clock) = &s.manual_clock else {
        return Err(ApiError::not_found("this server runs on the system clock"));
    };
    if let Some(a) = &b.advance {
        let d = klaxon_domain::duration::parse(a).map_err(|e| ApiError::invalid("advance", e))?;
        let d = SignedDuration::try_from(d).map_err(|e| ApiError::invalid("advance", e.to_string()))?;
        clock.advance(d);
        s.store.wake_engine();
    }
    Ok(Json(
        serde_json::json!({ "now": klaxon_domain::Clock::now(clock.as_ref()) }),
    ))
}
