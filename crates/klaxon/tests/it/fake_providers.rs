//! Loopback stand-ins for Twilio (Messages, Calls), Microsoft Teams
//! webhooks and the PagerDuty Events API v2. Each validates requests the
//! way the provider documents them and answers like it: a request that
//! breaks the rules gets the provider's error answer and is recorded in
//! `rejected` (tests assert that list stays empty). Each provider can be
//! told to be down (503), slow, refuse with a status, or throttle (429 +
//! `Retry-After`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

pub const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const TWILIO_TOKEN: &str = "twilio-auth-token-0123456789abcdef";
pub const TWILIO_FROM: &str = "+14155550100";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Sms,
    Call,
    Teams,
    PagerDuty,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Up,
    /// 503 to everything.
    Down,
    /// Answer normally after this long.
    Slow(Duration),
    /// This status, with the provider's error document.
    Refuse(u16),
    /// 429 with `Retry-After: n` (PagerDuty sends no `Retry-After`: `None`).
    Throttle(Option<u64>),
    /// 200 with this text: how legacy Teams connectors report a refused card.
    Legacy200(&'static str),
}

/// One accepted request.
#[derive(Debug, Clone)]
pub struct Got {
    pub provider: Provider,
    pub path: String,
    /// Twilio: the Basic-auth user and password.
    pub auth: Option<(String, String)>,
    pub content_type: String,
    /// Twilio: the form fields in order.
    pub form: Vec<(String, String)>,
    /// Teams, PagerDuty: the JSON document.
    pub json: Value,
}

impl Got {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Inner {
    got: Vec<Got>,
    rejected: Vec<String>,
    /// Attempts answered with an injected failure.
    failed: usize,
    modes: HashMap<Provider, Mode>,
}

#[derive(Clone)]
pub struct Fakes {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

fn header(h: &HeaderMap, n: &str) -> String {
    h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

fn e164(s: &str) -> bool {
    s.starts_with('+')
        && (3..=16).contains(&s.len())
        && s[1..].chars().all(|c| c.is_ascii_digit())
        && !s.starts_with("+0")
}

fn twilio_error(status: u16, code: u32, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({"code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status})),
    )
        .into_response()
}

fn pd_error(status: u16, errors: Vec<String>) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors})),
    )
        .into_response()
}

/// The injected failure for this provider, if any (after any delay).
async fn injected(inner: &Arc<Mutex<Inner>>, p: Provider) -> Option<Response> {
    let mode = inner.lock().unwrap().modes.get(&p).copied().unwrap_or(Mode::Up);
    let fail = |inner: &Arc<Mutex<Inner>>| inner.lock().unwrap().failed += 1;
    match mode {
        Mode::Up => None,
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Mode::Down => {
            fail(inner);
            Some(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
        Mode::Refuse(code) => {
            fail(inner);
            Some(match p {
                Provider::Sms | Provider::Call => {
                    twilio_error(code, 21211, "The 'To' number is not a valid phone number.")
                }
                Provider::PagerDuty => pd_error(code, vec!["refused by the test".into()]),
                Provider::Teams => (StatusCode::from_u16(code).unwrap(), "Bad payload").into_response(),
            })
        }
        Mode::Legacy200(text) => {
            fail(inner);
            Some((StatusCode::OK, text).into_response())
        }
        Mode::Throttle(secs) => {
            fail(inner);
            let mut resp = match p {
                Provider::Sms | Provider::Call => twilio_error(429, 20429, "Too Many Requests"),
                Provider::PagerDuty => (
                    StatusCode::TOO_MANY_REQUESTS,
                    axum::Json(json!({"status": "throttle event", "message": "Requests for this service are arriving too quickly. Please retry later."})),
                )
                    .into_response(),
                Provider::Teams => StatusCode::TOO_MANY_REQUESTS.into_response(),
            };
            if let Some(s) = secs {
                resp.headers_mut().insert("retry-after", s.to_string().parse().unwrap());
            }
            Some(resp)
        }
    }
}

fn reject(inner: &Arc<Mutex<Inner>>, why: String) {
    inner.lock().unwrap().rejected.push(why);
}

/// Twilio Messages and Calls (REST API 2010-04-01).
async fn twilio(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((sid, resource)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match resource.as_str() {
        "Messages.json" => Provider::Sms,
        "Calls.json" => Provider::Call,
        _ => return twilio_error(404, 20404, "The requested resource was not found"),
    };
    if let Some(r) = injected(&inner, p).await {
        return r;
    }
    // HTTP Basic: AccountSid:AuthToken.
    let auth = header(&headers, "authorization")
        .strip_prefix("Basic ")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())));
    if auth.as_ref() != Some(&(TWILIO_SID.to_string(), TWILIO_TOKEN.to_string())) {
        reject(&inner, format!("bad Basic auth {auth:?}"));
        return twilio_error(401, 20003, "Authentication Error - invalid username");
    }
    if sid != TWILIO_SID {
        reject(&inner, format!("account SID {sid} in the path"));
        return twilio_error(404, 20404, "The requested resource was not found");
    }
    let ct = header(&headers, "content-type");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        reject(&inner, format!("content type {ct}"));
        return twilio_error(400, 20001, "Content-Type must be form encoded");
    }
    let form: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(e) => {
            reject(&inner, format!("form: {e}"));
            return twilio_error(400, 20001, "unreadable form");
        }
    };
    let get = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let (to, from) = (get("To").unwrap_or_default(), get("From").unwrap_or_default());
    if !e164(&to) {
        reject(&inner, format!("To {to:?}"));
        return twilio_error(
            400,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    if from != TWILIO_FROM {
        reject(&inner, format!("From {from:?}"));
        return twilio_error(
            400,
            21606,
            "The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination/account",
        );
    }
    match p {
        Provider::Sms => {
            let body = get("Body").unwrap_or_default();
            if body.is_empty() && get("MediaUrl").is_none() {
                reject(&inner, "no Body".into());
                return twilio_error(400, 21602, "Message body is required.");
            }
            if body.chars().count() > 1600 {
                reject(&inner, format!("Body of {} chars", body.chars().count()));
                return twilio_error(
                    400,
                    21617,
                    "The concatenated message body exceeds the 1600 character limit.",
                );
            }
        }
        _ => {
            let (twiml, url) = (get("Twiml"), get("Url"));
            if twiml.is_some() == url.is_some() {
                reject(&inner, "calls need exactly one of Twiml and Url".into());
                return twilio_error(400, 21205, "Url or Twiml is required");
            }
            if let Some(t) = twiml {
                let t = t.trim();
                if t.len() > 4000
                    || !(t.starts_with("<Response>") || t.starts_with("<?xml"))
                    || !t.ends_with("</Response>")
                {
                    reject(&inner, format!("Twiml {t:?}"));
                    return twilio_error(400, 12100, "Document parse failure");
                }
            }
        }
    }
    inner.lock().unwrap().got.push(Got {
        provider: p,
        path: format!("/2010-04-01/Accounts/{sid}/{resource}"),
        auth,
        content_type: ct,
        form: form.clone(),
        json: Value::Null,
    });
    let n = inner.lock().unwrap().got.len();
    let (prefix, status) = if p == Provider::Sms {
        ("SM", "queued")
    } else {
        ("CA", "queued")
    };
    (
        StatusCode::CREATED,
        axum::Json(json!({"sid": format!("{prefix}{n:032x}"), "account_sid": TWILIO_SID, "to": to, "from": from, "status": status})),
    )
        .into_response()
}

/// A Teams Workflows webhook: a `message` with Adaptive Card attachments.
async fn teams(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = injected(&inner, Provider::Teams).await {
        return r;
    }
    let ct = header(&headers, "content-type");
    let doc: Value = match serde_json::from_slice(&body) {
        Ok(v) if ct.starts_with("application/json") => v,
        _ => {
            reject(&inner, format!("not JSON ({ct})"));
            return (StatusCode::BAD_REQUEST, "Bad payload").into_response();
        }
    };
    let mut problems = vec![];
    if doc["type"] != "message" {
        problems.push("type must be message".to_string());
    }
    let atts = doc["attachments"].as_array().cloned().unwrap_or_default();
    if atts.is_empty() {
        problems.push("attachments must be a non-empty array".into());
    }
    for a in &atts {
        if a["contentType"] != "application/vnd.microsoft.card.adaptive" {
            problems.push(format!("contentType {}", a["contentType"]));
        }
        let card = &a["content"];
        if card["type"] != "AdaptiveCard" || !card["version"].is_string() {
            problems.push("content must be an AdaptiveCard with a version".into());
        }
        let body = card["body"].as_array().cloned().unwrap_or_default();
        if body.is_empty() || body.iter().any(|e| !e["type"].is_string()) {
            problems.push("card body must be a non-empty array of typed elements".into());
        }
        for e in &body {
            if e["type"] == "TextBlock" && !e["text"].is_string() {
                problems.push("TextBlock without text".into());
            }
            if e["type"] == "FactSet"
                && !e["facts"]
                    .as_array()
                    .is_some_and(|f| f.iter().all(|f| f["title"].is_string() && f["value"].is_string()))
            {
                problems.push("FactSet facts need string title and value".into());
            }
        }
        for act in card["actions"].as_array().cloned().unwrap_or_default() {
            if act["type"] == "Action.OpenUrl" && !act["url"].is_string() {
                problems.push("Action.OpenUrl without url".into());
            }
        }
    }
    if !problems.is_empty() {
        reject(&inner, problems.join("; "));
        return (StatusCode::BAD_REQUEST, "Bad payload").into_response();
    }
    inner.lock().unwrap().got.push(Got {
        provider: Provider::Teams,
        path: format!("/teams/{name}"),
        auth: None,
        content_type: ct,
        form: vec![],
        json: doc,
    });
    StatusCode::ACCEPTED.into_response()
}

/// PagerDuty Events API v2.
async fn pagerduty(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = injected(&inner, Provider::PagerDuty).await {
        return r;
    }
    let ct = header(&headers, "content-type");
    let doc: Value = match serde_json::from_slice(&body) {
        Ok(v) if ct.starts_with("application/json") => v,
        _ => {
            reject(&inner, format!("not JSON ({ct})"));
            return pd_error(400, vec!["JSON parse error".into()]);
        }
    };
    let mut errors = vec![];
    let key = doc["routing_key"].as_str().unwrap_or_default();
    if key.len() != 32 {
        errors.push("'routing_key' must be 32 characters".to_string());
    }
    let action = doc["event_action"].as_str().unwrap_or_default();
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        errors.push(format!("'event_action' {action:?} is invalid"));
    }
    let dedup = doc["dedup_key"].as_str();
    if dedup.is_some_and(|d| d.is_empty() || d.len() > 255) || (action != "trigger" && dedup.is_none()) {
        errors.push("'dedup_key' is required for acknowledge and resolve, at most 255 characters".into());
    }
    if action == "trigger" {
        let p = &doc["payload"];
        let summary = p["summary"].as_str().unwrap_or_default();
        if summary.is_empty() || summary.chars().count() > 1024 {
            errors.push("'payload.summary' is required, at most 1024 characters".into());
        }
        if p["source"].as_str().unwrap_or_default().is_empty() {
            errors.push("'payload.source' is required".into());
        }
        if !["critical", "error", "warning", "info"].contains(&p["severity"].as_str().unwrap_or_default()) {
            errors.push("'payload.severity' is invalid".into());
        }
        if let Some(t) = p.get("timestamp")
            && t.as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok()).is_none()
        {
            errors.push("'payload.timestamp' must be ISO 8601".into());
        }
        if let Some(c) = p.get("custom_details")
            && !c.is_object()
        {
            errors.push("'payload.custom_details' must be an object".into());
        }
        for l in doc["links"].as_array().cloned().unwrap_or_default() {
            if !l["href"].is_string() {
                errors.push("links[].href is required".into());
            }
        }
    }
    if !errors.is_empty() {
        reject(&inner, errors.join("; "));
        return pd_error(400, errors);
    }
    inner.lock().unwrap().got.push(Got {
        provider: Provider::PagerDuty,
        path: "/v2/enqueue".into(),
        auth: None,
        content_type: ct,
        form: vec![],
        json: doc.clone(),
    });
    (
        StatusCode::ACCEPTED,
        axum::Json(
            json!({"status": "success", "message": "Event processed", "dedup_key": dedup.unwrap_or("generated")}),
        ),
    )
        .into_response()
}

impl Fakes {
    pub async fn start() -> Fakes {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .route("/2010-04-01/Accounts/{sid}/{resource}", axum::routing::post(twilio))
            .route("/teams/{name}", axum::routing::post(teams))
            .route("/v2/enqueue", axum::routing::post(pagerduty))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Fakes { base, inner }
    }

    /// `channels.twilio` pointing at this fake.
    pub fn twilio_settings(&self) -> klaxon_engine::channels::settings::TwilioSettings {
        klaxon_engine::channels::settings::TwilioSettings {
            api_url: self.base.clone(),
            account_sid: TWILIO_SID.into(),
            auth_token: Some(TWILIO_TOKEN.into()),
            from: TWILIO_FROM.into(),
        }
    }

    /// `channels:` with Twilio and PagerDuty pointing at this fake.
    pub fn channels(&self) -> klaxon_engine::ChannelsConfig {
        klaxon_engine::ChannelsConfig {
            twilio: Some(self.twilio_settings()),
            pagerduty: klaxon_engine::channels::settings::PagerDutySettings {
                events_url: format!("{}/v2/enqueue", self.base),
            },
            ..Default::default()
        }
    }

    pub fn teams_url(&self, name: &str) -> String {
        format!("{}/teams/{name}", self.base)
    }

    pub fn set(&self, p: Provider, mode: Mode) {
        self.inner.lock().unwrap().modes.insert(p, mode);
    }

    pub fn got(&self, p: Provider) -> Vec<Got> {
        self.inner
            .lock()
            .unwrap()
            .got
            .iter()
            .filter(|g| g.provider == p)
            .cloned()
            .collect()
    }

    pub fn rejected(&self) -> Vec<String> {
        self.inner.lock().unwrap().rejected.clone()
    }

    pub fn failed(&self) -> usize {
        self.inner.lock().unwrap().failed
    }
}
