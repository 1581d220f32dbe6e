//! Ingest endpoints, each answering the way its sender expects:
//! `POST /ingest/alertmanager/{key}`, `/ingest/grafana/{key}`,
//! `/ingest/generic/{key}` and PagerDuty's `POST /v2/enqueue`.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use klaxon_domain::alert::{AlertAction, AlertInput, AlertLink, labels_fingerprint};
use klaxon_domain::wire::{AlertOutcome, IntegrationFormat, IntegrationInfo};
use klaxon_store::{Store, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::extract::parse_json;
use crate::state::AppState;

/// Integration lookups by key, cached briefly so ingest does not query per request.
#[derive(Debug, Default)]
pub struct KeyCache {
    map: RwLock<HashMap<String, (IntegrationInfo, Instant)>>,
}

const KEY_TTL: Duration = Duration::from_secs(10);

impl KeyCache {
    pub async fn get(&self, store: &Store, key: &str) -> Result<Option<IntegrationInfo>, StoreError> {
        if let Ok(map) = self.map.read()
            && let Some((info, at)) = map.get(key)
            && at.elapsed() < KEY_TTL
        {
            return Ok(Some(info.clone()));
        }
        let found = store.integration_by_key(key).await?;
        if let (Some(info), Ok(mut map)) = (&found, self.map.write()) {
            if map.len() > 10_000 {
                map.clear();
            }
            map.insert(key.to_string(), (info.clone(), Instant::now()));
        }
        Ok(found)
    }

    pub fn clear(&self) {
        if let Ok(mut map) = self.map.write() {
            map.clear();
        }
    }
}

fn zero_time(t: &Option<String>) -> Option<Timestamp> {
    let t = t.as_deref()?.trim();
    if t.is_empty() || t.starts_with("0001-01-01") {
        return None;
    }
    t.parse().ok()
}

fn time_field(field: &str, t: &Option<String>) -> ApiResult<Option<Timestamp>> {
    match t.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.starts_with("0001-01-01") => Ok(None),
        Some(s) => parse_time(s)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(field, format!("{field}: {s:?} is not an RFC 3339 time"))),
    }
}

/// RFC 3339, plus the `+0000` offsets PagerDuty's examples use.
fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse::<Timestamp>().ok().or_else(|| {
        let z = jiff::fmt::strtime::parse("%Y-%m-%dT%H:%M:%S%.f%z", s).ok()?;
        z.to_timestamp().ok()
    })
}

#[derive(Deserialize)]
struct AmAlert {
    status: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(rename = "endsAt")]
    ends_at: Option<String>,
    #[serde(rename = "generatorURL", default)]
    generator_url: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
    // Grafana extras.
    #[serde(rename = "silenceURL", default)]
    silence_url: Option<String>,
    #[serde(rename = "dashboardURL", default)]
    dashboard_url: Option<String>,
    #[serde(rename = "panelURL", default)]
    panel_url: Option<String>,
    #[serde(default)]
    values: Option<Value>,
    #[serde(rename = "valueString", default)]
    value_string: Option<String>,
}

#[derive(Deserialize)]
struct AmMessage {
    #[serde(rename = "groupKey", default)]
    group_key: Option<String>,
    #[serde(default)]
    status: Option<String>,
    alerts: Vec<AmAlert>,
}

const MAX_ALERTS_PER_REQUEST: usize = 10_000;

/// Alertmanager v4 and Grafana v1 share one parser.
fn parse_alertmanager(body: &[u8], grafana: bool) -> ApiResult<Vec<AlertInput>> {
    let msg: AmMessage = parse_json(body)?;
    if msg.alerts.len() > MAX_ALERTS_PER_REQUEST {
        return Err(ApiError::invalid(
            "alerts",
            format!("at most {MAX_ALERTS_PER_REQUEST} alerts per request"),
        ));
    }
    let mut out = Vec::with_capacity(msg.alerts.len());
    for (i, a) in msg.alerts.into_iter().enumerate() {
        let field = |f: &str| format!("alerts[{i}].{f}");
        let action = match a.status.as_deref().or(msg.status.as_deref()) {
            Some("firing") | Some("alerting") => AlertAction::Trigger,
            Some("resolved") | Some("ok") | Some("normal") => AlertAction::Resolve,
            other => {
                return Err(ApiError::invalid(
                    &field("status"),
                    format!("{}: expected firing or resolved, got {other:?}", field("status")),
                ));
            }
        };
        let starts_at = time_field(&field("startsAt"), &a.starts_at)?;
        let ends_at = if action == AlertAction::Resolve {
            time_field(&field("endsAt"), &a.ends_at)?
        } else {
            zero_time(&a.ends_at)
        };
        let dedup_key = a
            .fingerprint
            .filter(|f| !f.trim().is_empty())
            .unwrap_or_else(|| labels_fingerprint(&a.labels));
        if dedup_key.len() > 255 {
            return Err(ApiError::invalid(
                &field("fingerprint"),
                "fingerprint is longer than 255 characters",
            ));
        }
        let summary = a
            .annotations
            .get("summary")
            .or_else(|| a.annotations.get("title"))
            .or_else(|| a.labels.get("alertname"))
            .cloned()
            .unwrap_or_else(|| dedup_key.clone());
        let mut links = Vec::new();
        for (text, href) in [
            ("Source", a.generator_url),
            ("Silence", a.silence_url),
            ("Dashboard", a.dashboard_url),
            ("Panel", a.panel_url),
        ] {
            if let Some(h) = href.filter(|h| !h.is_empty()) {
                links.push(AlertLink {
                    href: h,
                    text: Some(text.into()),
                });
            }
        }
        if let Some(rb) = a.annotations.get("runbook_url") {
            links.push(AlertLink {
                href: rb.clone(),
                text: Some("Runbook".into()),
            });
        }
        let details = if grafana {
            json!({"values": a.values, "valueString": a.value_string})
        } else {
            Value::Null
        };
        out.push(AlertInput {
            action,
            dedup_key,
            summary,
            severity: a.labels.get("severity").cloned(),
            source: a.labels.get("instance").or_else(|| a.labels.get("job")).cloned(),
            labels: a.labels,
            annotations: a.annotations,
            starts_at,
            ends_at,
            links,
            group_key: msg.group_key.clone(),
            details,
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericAlert {
    title: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    dedup_key: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    links: Vec<AlertLink>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    details: Option<Value>,
}

/// The generic format: one alert object, or an array of them.
fn parse_generic(body: &[u8]) -> ApiResult<Vec<AlertInput>> {
    let value: Value = parse_json(body)?;
    let items: Vec<Value> = match value {
        Value::Array(a) => a,
        v @ Value::Object(_) => vec![v],
        _ => {
            return Err(ApiError::invalid(
                "body",
                "expected an alert object or an array of them",
            ));
        }
    };
    if items.len() > MAX_ALERTS_PER_REQUEST {
        return Err(ApiError::invalid(
            "body",
            format!("at most {MAX_ALERTS_PER_REQUEST} alerts per request"),
        ));
    }
    let many = items.len() > 1;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let prefix = |f: &str| if many { format!("[{i}].{f}") } else { f.to_string() };
        let g: GenericAlert = parse_json(item.to_string().as_bytes()).map_err(|mut e| {
            e.field = e.field.map(|f| prefix(&f));
            e
        })?;
        if g.title.trim().is_empty() || g.title.chars().count() > 1024 {
            return Err(ApiError::invalid(&prefix("title"), "title must be 1-1024 characters"));
        }
        let action = match g.status.as_deref().unwrap_or("firing") {
            "firing" | "trigger" | "triggered" => AlertAction::Trigger,
            "resolved" | "resolve" | "ok" => AlertAction::Resolve,
            "acknowledged" | "acknowledge" => AlertAction::Acknowledge,
            other => {
                return Err(ApiError::invalid(
                    &prefix("status"),
                    format!("status {other:?}: expected firing, resolved or acknowledged"),
                ));
            }
        };
        let dedup_key = match g.dedup_key.filter(|k| !k.trim().is_empty()) {
            Some(k) if k.len() > 255 => {
                return Err(ApiError::invalid(
                    &prefix("dedup_key"),
                    "dedup_key is longer than 255 characters",
                ));
            }
            Some(k) => k,
            None => {
                let mut l = g.labels.clone();
                l.insert("__title".into(), g.title.clone());
                labels_fingerprint(&l)
            }
        };
        let starts_at = time_field(&prefix("starts_at"), &g.starts_at)?;
        out.push(AlertInput {
            action,
            dedup_key,
            summary: g.title,
            severity: g.severity,
            source: g.source,
            labels: g.labels,
            annotations: g.annotations,
            starts_at,
            ends_at: None,
            links: g.links,
            group_key: None,
            details: g.details.unwrap_or(Value::Null),
        });
    }
    Ok(out)
}

async fn integration_for(s: &AppState, key: &str, format: IntegrationFormat) -> ApiResult<IntegrationInfo> {
    if key.is_empty() || key.len() > 128 {
        return Err(ApiError::not_found("unknown integration key"));
    }
    let info = s
        .keys
        .get(&s.store, key)
        .await?
        .ok_or_else(|| ApiError::not_found("unknown integration key"))?;
    if info.format != format {
        return Err(ApiError::invalid(
            "key",
            format!(
                "integration {:?} takes {} payloads at {}",
                info.name,
                info.format.as_str(),
                info.format.ingest_path("<key>")
            ),
        ));
    }
    Ok(info)
}

fn rate_limited() -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many alerts for this integration; retry later",
    )
}

fn store_failed(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "ingest failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the alerts were not stored; retry",
    )
}

/// `Prefer: return=representation` (RFC 7240): answer with what applying the
/// alerts came to (incidents opened or joined), not only once they are committed.
fn wants_outcome(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("return=representation"))
        })
    })
}

/// Commit the alerts; with `outcome`, wait until they are applied too.
async fn submit(
    s: &AppState,
    info: IntegrationInfo,
    alerts: Vec<AlertInput>,
    outcome: bool,
) -> ApiResult<Option<Vec<AlertOutcome>>> {
    let n = alerts.len();
    let applied = s
        .ingestor
        .accept(info, alerts, s.clock.now(), outcome)
        .await
        .map_err(ingest_failed)?;
    metrics::counter!("klaxon_alerts_ingested_total").increment(n as u64);
    match applied {
        None => Ok(None),
        Some(rx) => {
            let out = rx
                .await
                .map_err(|_| store_failed(StoreError::Conflict("the ingest applier stopped".into())))?
                .map_err(ingest_failed)?;
            Ok(Some(out))
        }
    }
}

fn ingest_failed(e: StoreError) -> ApiError {
    match e {
        StoreError::Domain(d) => d.into(),
        e @ StoreError::Overloaded(_) => e.into(),
        e => store_failed(e),
    }
}

/// An error answer; a refusal for overload says when to come back.
fn error_response(e: ApiError) -> Response {
    match e.status == StatusCode::SERVICE_UNAVAILABLE {
        true => retry_after(e.into_response()),
        false => e.into_response(),
    }
}

/// Tell the sender to come back in a second.
fn retry_after(mut r: Response) -> Response {
    r.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    );
    r
}

/// A payload the sender got wrong (a missing field, a wrong type or value) is
/// 400 on the ingest endpoints, as senders expect of a webhook receiver; the
/// error still names the field (`invalid_field`).
fn bad_payload(e: ApiError) -> ApiError {
    match e.status == StatusCode::UNPROCESSABLE_ENTITY {
        true => ApiError {
            status: StatusCode::BAD_REQUEST,
            ..e
        },
        false => e,
    }
}

async fn ingest_path(s: AppState, key: String, headers: HeaderMap, body: Bytes, format: IntegrationFormat) -> Response {
    match ingest_path_inner(s, key, headers, body, format).await {
        Ok(r) => r,
        Err(e) => error_response(e),
    }
}

async fn ingest_path_inner(
    s: AppState,
    key: String,
    headers: HeaderMap,
    body: Bytes,
    format: IntegrationFormat,
) -> ApiResult<Response> {
    // A full backlog holds the request (or refuses it) before the body is parsed.
    s.ingestor.wait_for_room().await.map_err(ingest_failed)?;
    let info = integration_for(&s, &key, format).await?;
    let alerts = match format {
        IntegrationFormat::Alertmanager => parse_alertmanager(&body, false),
        IntegrationFormat::Grafana => parse_alertmanager(&body, true),
        _ => parse_generic(&body),
    }
    .map_err(bad_payload)?;
    if !s.limiter.allow(&info.id, alerts.len()) {
        return Err(rate_limited());
    }
    let keys: Vec<String> = alerts.iter().map(|a| a.dedup_key.clone()).collect();
    Ok(match submit(&s, info, alerts, wants_outcome(&headers)).await? {
        Some(out) => (StatusCode::OK, Json(json!({"status": "success", "alerts": out}))).into_response(),
        None => {
            let accepted: Vec<Value> = keys
                .into_iter()
                .map(|k| json!({"dedup_key": k, "result": "accepted"}))
                .collect();
            (
                StatusCode::ACCEPTED,
                Json(json!({"status": "success", "alerts": accepted})),
            )
                .into_response()
        }
    })
}

/// Prometheus Alertmanager webhook (version 4).
#[utoipa::path(post, path = "/ingest/alertmanager/{key}", tag = "ingest", params(("key" = String, Path, description = "Integration key")),
    request_body(content = Object, description = "Alertmanager webhook payload, version 4"),
    responses((status = 202, description = "Committed; applied next"), (status = 200, description = "Committed and applied (with `Prefer: return=representation`)"), (status = 400), (status = 404), (status = 413), (status = 422), (status = 429), (status = 503, description = "Too many alerts waiting to be applied; retry after `Retry-After`")))]
pub async fn alertmanager(
    State(s): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    ingest_path(s, key, headers, body, IntegrationFormat::Alertmanager).await
}

/// Grafana unified alerting webhook contact point.
#[utoipa::path(post, path = "/ingest/grafana/{key}", tag = "ingest", params(("key" = String, Path, description = "Integration key")),
    request_body(content = Object, description = "Grafana webhook payload"),
    responses((status = 202, description = "Committed; applied next"), (status = 200, description = "Committed and applied (with `Prefer: return=representation`)"), (status = 400), (status = 404), (status = 413), (status = 422), (status = 429), (status = 503, description = "Too many alerts waiting to be applied; retry after `Retry-After`")))]
pub async fn grafana(State(s): State<AppState>, Path(key): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    ingest_path(s, key, headers, body, IntegrationFormat::Grafana).await
}

/// Generic JSON: `{"title", "status": "firing|resolved", "dedup_key", "severity", "labels", "annotations", "links"}` or an array of them.
#[utoipa::path(post, path = "/ingest/generic/{key}", tag = "ingest", params(("key" = String, Path, description = "Integration key")),
    request_body(content = Object, description = "Generic alert or array of alerts"),
    responses((status = 202, description = "Committed; applied next"), (status = 200, description = "Committed and applied (with `Prefer: return=representation`)"), (status = 400), (status = 404), (status = 413), (status = 422), (status = 429), (status = 503, description = "Too many alerts waiting to be applied; retry after `Retry-After`")))]
pub async fn generic(State(s): State<AppState>, Path(key): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    ingest_path(s, key, headers, body, IntegrationFormat::Generic).await
}

/// A PagerDuty-shaped answer.
fn pd(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// PagerDuty's answer to a sender that should slow down and retry.
fn throttled() -> Response {
    retry_after(pd(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"status": "throttle event", "message": "Too many events are waiting to be processed. Please retry later."}),
    ))
}

fn pd_invalid(errors: Vec<String>) -> Response {
    pd(
        StatusCode::BAD_REQUEST,
        json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors}),
    )
}

/// Validate a PagerDuty Events v2 event; errors name the field as PagerDuty does.
fn parse_pagerduty(v: &Value) -> Result<(String, AlertInput), Vec<String>> {
    let mut errors = Vec::new();
    let obj = match v.as_object() {
        Some(o) => o,
        None => return Err(vec!["Event object format is unrecognized".into()]),
    };
    let str_field = |name: &str, errors: &mut Vec<String>| -> Option<String> {
        match obj.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                errors.push(format!("'{name}' must be a string"));
                None
            }
        }
    };
    let routing_key = str_field("routing_key", &mut errors);
    if routing_key.as_deref().is_none_or(str::is_empty) {
        errors.push("'routing_key' is missing or blank".into());
    }
    let action = match str_field("event_action", &mut errors).as_deref() {
        Some("trigger") => Some(AlertAction::Trigger),
        Some("acknowledge") => Some(AlertAction::Acknowledge),
        Some("resolve") => Some(AlertAction::Resolve),
        Some(other) => {
            errors.push(format!(
                "'event_action' is invalid: {other:?} (expected trigger, acknowledge or resolve)"
            ));
            None
        }
        None => {
            errors.push("'event_action' is missing or blank".into());
            None
        }
    };
    let dedup_key = str_field("dedup_key", &mut errors).filter(|k| !k.is_empty());
    if dedup_key.as_ref().is_some_and(|k| k.chars().count() > 255) {
        errors.push("'dedup_key' must be at most 255 characters".into());
    }
    if matches!(action, Some(AlertAction::Acknowledge | AlertAction::Resolve)) && dedup_key.is_none() {
        errors.push("'dedup_key' is required for acknowledge and resolve events".into());
    }
    let payload = obj.get("payload").and_then(Value::as_object);
    let mut summary = String::new();
    let mut severity = None;
    let mut source = None;
    let mut labels = BTreeMap::new();
    let mut starts_at = None;
    let mut details = Value::Null;
    if action == Some(AlertAction::Trigger) {
        match payload {
            None => errors.push("'payload' is missing or not an object".into()),
            Some(p) => {
                let ps = |name: &str| p.get(name).and_then(Value::as_str).map(str::to_string);
                match ps("summary") {
                    Some(s) if !s.trim().is_empty() && s.chars().count() <= 1024 => summary = s,
                    Some(s) if !s.trim().is_empty() => errors.push(format!(
                        "'payload.summary' must be at most 1024 characters, is {}",
                        s.chars().count()
                    )),
                    _ => errors.push("'payload.summary' is missing or blank".into()),
                }
                match ps("source") {
                    Some(s) if !s.trim().is_empty() => source = Some(s),
                    _ => errors.push("'payload.source' is missing or blank".into()),
                }
                match ps("severity").as_deref() {
                    Some(s @ ("critical" | "error" | "warning" | "info")) => severity = Some(s.to_string()),
                    Some(other) => errors.push(format!(
                        "'payload.severity' is invalid: {other:?} (expected critical, error, warning or info)"
                    )),
                    None => errors.push("'payload.severity' is missing or blank".into()),
                }
                if let Some(t) = ps("timestamp") {
                    match parse_time(&t) {
                        Some(ts) => starts_at = Some(ts),
                        None => errors.push(format!("'payload.timestamp' is not an ISO 8601 time: {t:?}")),
                    }
                }
                for k in ["component", "group", "class"] {
                    if let Some(v) = ps(k) {
                        labels.insert(k.to_string(), v);
                    }
                }
                if let Some(s) = &source {
                    labels.insert("source".into(), s.clone());
                }
                if let Some(s) = &severity {
                    labels.insert("severity".into(), s.clone());
                }
                details = p.get("custom_details").cloned().unwrap_or(Value::Null);
            }
        }
    }
    let mut links = Vec::new();
    if let Some(ls) = obj.get("links") {
        match ls.as_array() {
            Some(arr) => {
                for (i, l) in arr.iter().enumerate() {
                    match l.get("href").and_then(Value::as_str) {
                        Some(h) => links.push(AlertLink {
                            href: h.into(),
                            text: l.get("text").and_then(Value::as_str).map(str::to_string),
                        }),
                        None => errors.push(format!("'links[{i}].href' is required")),
                    }
                }
            }
            None => errors.push("'links' must be an array".into()),
        }
    }
    if let Some(imgs) = obj.get("images") {
        match imgs.as_array() {
            Some(arr) => {
                for (i, img) in arr.iter().enumerate() {
                    if img.get("src").and_then(Value::as_str).is_none() {
                        errors.push(format!("'images[{i}].src' is required"));
                    }
                }
            }
            None => errors.push("'images' must be an array".into()),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let (Some(routing_key), Some(action)) = (routing_key, action) else {
        return Err(vec!["Event object format is unrecognized".into()]);
    };
    let dedup_key = dedup_key.unwrap_or_else(|| klaxon_store::random_hex("", 16));
    let mut annotations = BTreeMap::new();
    if let Some(c) = obj.get("client").and_then(Value::as_str) {
        annotations.insert("client".to_string(), c.to_string());
    }
    if let Some(c) = obj.get("client_url").and_then(Value::as_str) {
        annotations.insert("client_url".to_string(), c.to_string());
        links.push(AlertLink {
            href: c.to_string(),
            text: Some("Client".into()),
        });
    }
    if let Some(imgs) = obj.get("images") {
        details = json!({"custom_details": details, "images": imgs});
    }
    Ok((
        routing_key,
        AlertInput {
            action,
            dedup_key,
            summary,
            severity,
            source,
            labels,
            annotations,
            starts_at,
            ends_at: None,
            links,
            group_key: None,
            details,
        },
    ))
}

/// PagerDuty Events API v2 compatible endpoint.
#[utoipa::path(post, path = "/v2/enqueue", tag = "ingest",
    request_body(content = Object, description = "PagerDuty Events API v2 event; routing_key is the integration key"),
    responses((status = 202, description = "{\"status\":\"success\",\"message\":\"Event processed\",\"dedup_key\":\"...\"}"),
        (status = 400, description = "{\"status\":\"invalid event\",\"message\":...,\"errors\":[...]}"), (status = 429)))]
pub async fn pagerduty(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if s.ingestor.wait_for_room().await.is_err() {
        return throttled();
    }
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return pd(
                StatusCode::BAD_REQUEST,
                json!({"status": "invalid event", "message": "Event object is invalid", "errors": [format!("JSON parse error: {e}")]}),
            );
        }
    };
    let (key, alert) = match parse_pagerduty(&value) {
        Ok(x) => x,
        Err(errors) => return pd_invalid(errors),
    };
    let info = match s.keys.get(&s.store, &key).await {
        Ok(Some(i)) if i.format == IntegrationFormat::Pagerduty => i,
        Ok(Some(i)) => {
            return pd_invalid(vec![format!(
                "routing_key belongs to integration {:?}, which takes {} payloads at {}",
                i.name,
                i.format.as_str(),
                i.format.ingest_path("<key>")
            )]);
        }
        Ok(None) => {
            return pd(
                StatusCode::NOT_FOUND,
                json!({"status": "invalid event", "message": "Unknown routing key", "errors": ["'routing_key' is not the key of any integration"]}),
            );
        }
        Err(e) => return store_failed(e).into_response(),
    };
    if !s.limiter.allow(&info.id, 1) {
        return pd(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"status": "throttle event", "message": "Requests for this service are arriving too quickly. Please retry later."}),
        );
    }
    let dedup_key = alert.dedup_key.clone();
    match submit(&s, info, vec![alert], wants_outcome(&headers)).await {
        Ok(_) => pd(
            StatusCode::ACCEPTED,
            json!({"status": "success", "message": "Event processed", "dedup_key": dedup_key}),
        ),
        Err(e) if e.code == "overloaded" => throttled(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagerduty_errors_name_every_field() {
        let e = parse_pagerduty(&json!({"event_action": "trigger", "payload": {"severity": "bad"}})).unwrap_err();
        let text = e.join("\n");
        for needle in ["routing_key", "payload.summary", "payload.source", "payload.severity"] {
            assert!(text.contains(needle), "{text}");
        }
        let e = parse_pagerduty(&json!({"routing_key": "k", "event_action": "resolve"})).unwrap_err();
        assert!(e.join("").contains("dedup_key"));
        let (_, a) = parse_pagerduty(&json!({"routing_key": "k", "event_action": "trigger",
            "payload": {"summary": "s", "source": "h", "severity": "critical", "timestamp": "2015-07-17T08:42:58.315+0000"}})).unwrap();
        assert_eq!(a.dedup_key.len(), 32, "a trigger without dedup_key gets one");
        assert_eq!(a.starts_at.unwrap().to_string(), "2015-07-17T08:42:58.315Z");
    }

    #[test]
    fn alertmanager_zero_end_time_means_firing() {
        let body = br#"{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"A"},"annotations":{},
            "startsAt":"2023-02-06T13:08:45.828Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"1a30ba71cca2921f"}]}"#;
        let a = parse_alertmanager(body, false).unwrap();
        assert_eq!(a[0].ends_at, None);
        assert_eq!(a[0].summary, "A");
        let bad = br#"{"alerts":[{"status":"exploding","labels":{}}]}"#;
        assert_eq!(
            parse_alertmanager(bad, false).unwrap_err().field.as_deref(),
            Some("alerts[0].status")
        );
    }
}
