//! Health checks: `GET /api/v1/checks` (each with its state, last result and
//! uptime), `GET /api/v1/checks/{name}/history?hours=N` (raw results) and
//! `POST /api/v1/checks/{name}/run` (run now, record, return the result).

use axum::Json;
use axum::extract::{Path, State};
use jiff::SignedDuration;
use klaxon_domain::wire::TokenRole;
use klaxon_probes::{Prober, ProberError, RunReport};
use klaxon_store::{ProbeRecord, ProbeState};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, Caller, Responder};
use crate::state::AppState;

/// Share of runs up (ok or degraded) over a window, with the run count.
#[derive(Debug, Serialize)]
pub struct Uptime {
    /// `null` without runs.
    pub ratio: Option<f64>,
    pub runs: i64,
    pub down: i64,
    /// Mean latency of the runs, ms.
    pub latency_avg_ms: Option<i64>,
}

/// One check as listed.
#[derive(Debug, Serialize)]
pub struct CheckInfo {
    pub name: String,
    pub kind: String,
    pub target: String,
    pub interval: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub severity: String,
    /// `up`, `down` or `unknown`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<jiff::Timestamp>,
    pub failures: i64,
    pub last: Option<ProbeRecord>,
    pub uptime_24h: Uptime,
    pub uptime_30d: Uptime,
}

fn prober(s: &AppState) -> ApiResult<&Prober> {
    s.checks
        .as_deref()
        .ok_or_else(|| ApiError::not_found("no checks are configured on this server"))
}

async fn uptime(s: &AppState, name: &str, hours: i64) -> ApiResult<Uptime> {
    let since = s.clock.now() - SignedDuration::from_hours(hours);
    let c = s.store.probe_uptime(name, since).await?;
    Ok(Uptime {
        ratio: c.uptime(),
        runs: c.total,
        down: c.down,
        latency_avg_ms: (c.total > 0).then(|| c.latency_sum / c.total),
    })
}

/// Every configured check.
/// Every configured check with its state, last result and uptime (24 h, 30 d).
#[utoipa::path(get, path = "/api/v1/checks", tag = "checks", security(("bearer" = [])),
    responses((status = 200, description = "name, kind, target, state, last result, uptime_24h, uptime_30d")))]
pub async fn list(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<CheckInfo>>> {
    caller.require(TokenRole::Viewer)?;
    let Some(p) = s.checks.as_deref() else {
        return Ok(Json(vec![]));
    };
    let states: std::collections::HashMap<String, ProbeState> = s
        .store
        .probe_states()
        .await?
        .into_iter()
        .map(|st| (st.check.clone(), st))
        .collect();
    let mut out = Vec::with_capacity(p.checks().len());
    for c in p.checks() {
        let st = states.get(&c.name);
        out.push(CheckInfo {
            name: c.name.clone(),
            kind: c.kind.as_str().into(),
            target: klaxon_probes::redact(&c.target()),
            interval: klaxon_domain::duration::format(c.interval),
            component: c.component.clone(),
            service: c.service.clone(),
            severity: c.severity.clone(),
            state: st.map(|s| s.state.clone()).unwrap_or_else(|| "unknown".into()),
            since: st.and_then(|s| s.changed_at),
            failures: st.map(|s| s.failures).unwrap_or(0),
            last: st.and_then(|s| s.last.clone()),
            uptime_24h: uptime(&s, &c.name, 24).await?,
            uptime_30d: uptime(&s, &c.name, 24 * 30).await?,
        });
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Hours back from now (1-48, default 24).
    pub hours: Option<i64>,
}

/// Raw results of one check, oldest first.
#[utoipa::path(get, path = "/api/v1/checks/{name}/history", tag = "checks", security(("bearer" = [])),
    params(("name" = String, Path, description = "Check name"), ("hours" = Option<i64>, Query, description = "1-48, default 24")),
    responses((status = 200, description = "results: check, at, outcome, latency_ms, message"), (status = 404), (status = 422)))]
pub async fn history(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<Vec<ProbeRecord>>> {
    caller.require(TokenRole::Viewer)?;
    let p = prober(&s)?;
    if p.check(&name).is_none() {
        return Err(ApiError::not_found(format!("check {name} not found")));
    }
    let hours = q.hours.unwrap_or(24);
    if !(1..=48).contains(&hours) {
        return Err(ApiError::invalid(
            "hours",
            "hours must be 1-48 (raw results are kept 48 hours)",
        ));
    }
    let since = s.clock.now() - SignedDuration::from_hours(hours);
    Ok(Json(s.store.probe_history(&name, since).await?))
}

/// Run a check now; the result is stored and may raise or resolve its alert.
#[utoipa::path(post, path = "/api/v1/checks/{name}/run", tag = "checks", security(("bearer" = [])),
    params(("name" = String, Path, description = "Check name")),
    responses((status = 200, description = "the result and the check's state"), (status = 404)))]
pub async fn run(
    State(s): State<AppState>,
    Responder(_c): Responder,
    Path(name): Path<String>,
) -> ApiResult<Json<RunReport>> {
    let p = prober(&s)?;
    match p.run_check(&name).await {
        Ok(r) => Ok(Json(r)),
        Err(ProberError::UnknownCheck(n)) => Err(ApiError::not_found(format!("check {n} not found"))),
        Err(ProberError::Store { source, .. }) => Err(source.into()),
    }
}
