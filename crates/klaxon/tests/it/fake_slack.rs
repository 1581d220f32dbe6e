//! A loopback stand-in for Slack: incoming webhooks (`POST /services/…`)
//! and the Web API (`POST /api/{method}`). It validates every request as
//! Slack documents it (bearer token, JSON content type, required fields,
//! Block Kit shape and limits), answers like Slack (`ok`/`error`, `ts`,
//! channel IDs), records what it accepted, and can be told to fail.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub const BOT_TOKEN: &str = "xoxb-test-bot-token";

/// One request the fake accepted or refused.
#[derive(Debug, Clone)]
pub struct Call {
    /// Web API method (`chat.postMessage`), or `webhook`.
    pub method: String,
    pub body: Value,
    /// The problem found with the request, if any.
    pub invalid: Option<String>,
    /// The fault it was answered with, if any.
    pub faulted: Option<String>,
}

/// What the next Web API calls of a method get instead of success.
#[derive(Debug, Clone)]
pub enum Fault {
    /// HTTP 429 with `Retry-After`.
    Http429(u64),
    /// HTTP 200 `{"ok":false,"error":"ratelimited"}` with `Retry-After`.
    RateLimited(u64),
    /// HTTP 503.
    Down,
    /// HTTP 200 `{"ok":false,"error":…}`.
    Error(&'static str),
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    /// Per method: faults to answer, first first.
    faults: HashMap<String, Vec<Fault>>,
    /// Incoming webhook answer (`None`: 200 "ok").
    webhook_fault: Option<(u16, &'static str)>,
    taken: HashSet<String>,
    next_ts: u64,
    next_channel: u64,
}

#[derive(Clone)]
pub struct FakeSlack {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.to_string()) }
}

fn text_obj(v: &Value, max: usize, plain_only: bool, what: &str) -> Result<(), String> {
    let t = v["type"].as_str().unwrap_or("");
    check(
        t == "plain_text" || (!plain_only && t == "mrkdwn"),
        &format!("{what}: text type {t:?}"),
    )?;
    let s = v["text"].as_str().ok_or(format!("{what}: text missing"))?;
    check(
        !s.is_empty() && s.chars().count() <= max,
        &format!("{what}: text length {} not in 1..={max}", s.chars().count()),
    )
}

/// Block Kit rules used by Klaxon's messages (docs.slack.dev/reference/block-kit).
pub fn validate_blocks(blocks: &Value) -> Result<(), String> {
    let list = blocks.as_array().ok_or("blocks is not an array")?;
    check(!list.is_empty() && list.len() <= 50, "1 to 50 blocks")?;
    for (i, b) in list.iter().enumerate() {
        let w = format!("blocks[{i}]");
        match b["type"].as_str().unwrap_or("") {
            "header" => text_obj(&b["text"], 150, true, &w)?,
            "section" => {
                let has_text = !b["text"].is_null();
                let fields = b["fields"].as_array();
                check(
                    has_text || fields.is_some(),
                    &format!("{w}: section needs text or fields"),
                )?;
                if has_text {
                    text_obj(&b["text"], 3000, false, &w)?;
                }
                if let Some(f) = fields {
                    check(!f.is_empty() && f.len() <= 10, &format!("{w}: 1 to 10 fields"))?;
                    for x in f {
                        text_obj(x, 2000, false, &w)?;
                    }
                }
            }
            "context" => {
                let e = b["elements"].as_array().ok_or(format!("{w}: elements"))?;
                check(!e.is_empty() && e.len() <= 10, &format!("{w}: 1 to 10 elements"))?;
                for x in e {
                    text_obj(x, 3000, false, &w)?;
                }
            }
            "actions" => {
                let e = b["elements"].as_array().ok_or(format!("{w}: elements"))?;
                check(!e.is_empty() && e.len() <= 25, &format!("{w}: 1 to 25 elements"))?;
                for x in e {
                    check(x["type"] == "button", &format!("{w}: only buttons expected"))?;
                    text_obj(&x["text"], 75, true, &w)?;
                    let id = x["action_id"].as_str().unwrap_or("");
                    check(!id.is_empty() && id.len() <= 255, &format!("{w}: action_id"))?;
                    let v = x["value"].as_str().unwrap_or("");
                    check(v.len() <= 2000, &format!("{w}: value"))?;
                    if let Some(s) = x["style"].as_str() {
                        check(s == "primary" || s == "danger", &format!("{w}: style"))?;
                    }
                }
            }
            "divider" => {}
            other => return Err(format!("{w}: unexpected block type {other:?}")),
        }
    }
    Ok(())
}

fn need_str<'a>(body: &'a Value, field: &str) -> Result<&'a str, String> {
    body[field]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or(format!("{field} is required"))
}

/// Required arguments per method (docs.slack.dev/reference/methods).
fn validate_method(method: &str, body: &Value) -> Result<(), String> {
    match method {
        "chat.postMessage" | "chat.update" => {
            need_str(body, "channel")?;
            if method == "chat.update" {
                need_str(body, "ts")?;
            }
            check(
                body["text"].is_string() || body["blocks"].is_array(),
                "text or blocks is required",
            )?;
            if !body["blocks"].is_null() {
                validate_blocks(&body["blocks"])?;
                check(
                    body["text"].as_str().is_some_and(|t| !t.is_empty()),
                    "text (the fallback) should accompany blocks",
                )?;
            }
            Ok(())
        }
        "conversations.create" => {
            let name = need_str(body, "name")?;
            check(
                name.len() <= 80
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'),
                "invalid_name_specials",
            )
        }
        "conversations.invite" => {
            need_str(body, "channel")?;
            need_str(body, "users").map(|_| ())
        }
        "views.open" => {
            need_str(body, "trigger_id")?;
            let v = &body["view"];
            check(v["type"] == "modal", "view.type must be modal")?;
            text_obj(&v["title"], 24, true, "view.title")?;
            text_obj(&v["submit"], 24, true, "view.submit")?;
            need_str(v, "callback_id")?;
            let blocks = v["blocks"].as_array().ok_or("view.blocks")?;
            check(
                blocks.iter().any(|b| {
                    b["type"] == "input"
                        && b["block_id"].is_string()
                        && b["element"]["type"] == "plain_text_input"
                        && b["element"]["action_id"].is_string()
                }),
                "an input block with a plain_text_input",
            )
        }
        other => Err(format!("unknown method {other}")),
    }
}

async fn webhook(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> Response {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let invalid = match &parsed {
        _ if !ct.starts_with("application/json") => Some(format!("content-type {ct:?}")),
        Err(e) => Some(format!("not JSON: {e}")),
        Ok(v) => (|| {
            check(v["text"].as_str().is_some_and(|t| !t.is_empty()), "text is required")?;
            validate_blocks(&v["blocks"])?;
            check(
                v.as_object()
                    .is_some_and(|o| o.keys().all(|k| k == "text" || k == "blocks")),
                "only text and blocks",
            )
        })()
        .err(),
    };
    let mut g = inner.lock().unwrap();
    g.calls.push(Call {
        method: "webhook".into(),
        body: parsed.unwrap_or(Value::Null),
        invalid: invalid.clone(),
        faulted: None,
    });
    if invalid.is_some() {
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    }
    if let Some((code, text)) = g.webhook_fault {
        if let Some(last) = g.calls.last_mut() {
            last.faulted = Some(format!("{code} {text}"));
        }
        let mut r = (StatusCode::from_u16(code).unwrap(), text).into_response();
        if code == 429 {
            r.headers_mut().insert("retry-after", "60".parse().unwrap());
        }
        return r;
    }
    (StatusCode::OK, "ok").into_response()
}

/// `response_url` of an interaction: a message to show in place of the clicked one.
async fn respond(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> Response {
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let invalid = (|| {
        check(ct.starts_with("application/json"), "content-type")?;
        check(
            parsed["text"].as_str().is_some_and(|t| !t.is_empty()),
            "text is required",
        )?;
        if !parsed["blocks"].is_null() {
            validate_blocks(&parsed["blocks"])?;
        }
        Ok::<(), String>(())
    })()
    .err();
    inner.lock().unwrap().calls.push(Call {
        method: "response_url".into(),
        body: parsed,
        invalid: invalid.clone(),
        faulted: None,
    });
    if invalid.is_some() {
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    }
    (StatusCode::OK, "ok").into_response()
}

async fn api(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let auth = h("authorization");
    let ct = h("content-type");
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let invalid = if auth != format!("Bearer {BOT_TOKEN}") {
        Some("invalid_auth".to_string())
    } else if ct != "application/json; charset=utf-8" {
        Some(format!("content-type {ct:?}"))
    } else if parsed.is_null() {
        Some("invalid_json".into())
    } else {
        validate_method(&method, &parsed).err()
    };
    let mut g = inner.lock().unwrap();
    g.calls.push(Call {
        method: method.clone(),
        body: parsed.clone(),
        invalid: invalid.clone(),
        faulted: None,
    });
    if let Some(e) = invalid {
        let code = if e == "invalid_auth" {
            "invalid_auth"
        } else {
            "invalid_arguments"
        };
        return axum::Json(json!({"ok": false, "error": code, "detail": e})).into_response();
    }
    let fault = g
        .faults
        .get_mut(&method)
        .and_then(|f| (!f.is_empty()).then(|| f.remove(0)));
    if let (Some(f), Some(last)) = (&fault, g.calls.last_mut()) {
        last.faulted = Some(format!("{f:?}"));
    }
    match fault {
        Some(Fault::Http429(s)) => {
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", s.to_string())], "").into_response();
        }
        Some(Fault::RateLimited(s)) => {
            return (
                [("retry-after", s.to_string())],
                axum::Json(json!({"ok": false, "error": "ratelimited"})),
            )
                .into_response();
        }
        Some(Fault::Down) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Some(Fault::Error(e)) => return axum::Json(json!({"ok": false, "error": e})).into_response(),
        None => {}
    }
    let answer = match method.as_str() {
        "chat.postMessage" => {
            g.next_ts += 1;
            let ts = format!("1764900000.{:06}", g.next_ts);
            let to = parsed["channel"].as_str().unwrap_or("");
            let channel = if let Some(u) = to.strip_prefix('U') {
                format!("D{u}")
            } else if let Some(n) = to.strip_prefix('#') {
                format!("CNAMED{}", n.to_uppercase().replace(['-', '_'], ""))
            } else {
                to.to_string()
            };
            json!({"ok": true, "channel": channel, "ts": ts, "message": {"text": parsed["text"]}})
        }
        "chat.update" => json!({"ok": true, "channel": parsed["channel"], "ts": parsed["ts"]}),
        "conversations.create" => {
            let name = parsed["name"].as_str().unwrap_or("").to_string();
            if !g.taken.insert(name.clone()) {
                if let Some(last) = g.calls.last_mut() {
                    last.faulted = Some("name_taken".into());
                }
                return axum::Json(json!({"ok": false, "error": "name_taken"})).into_response();
            }
            g.next_channel += 1;
            let id = format!("CINC{:04}", g.next_channel);
            json!({"ok": true, "channel": {"id": id, "name": name, "is_channel": true}})
        }
        "conversations.invite" => json!({"ok": true, "channel": {"id": parsed["channel"]}}),
        "views.open" => json!({"ok": true, "view": {"id": "V0001", "callback_id": parsed["view"]["callback_id"]}}),
        _ => json!({"ok": false, "error": "unknown_method"}),
    };
    axum::Json(answer).into_response()
}

impl FakeSlack {
    pub async fn start() -> FakeSlack {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/services/{*path}", post(webhook))
            .route("/api/{method}", post(api))
            .route("/actions/{*path}", post(respond))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeSlack { base, inner }
    }

    /// The Web API base (`channels.slack.api_url`).
    pub fn api_url(&self) -> String {
        format!("{}/api", self.base)
    }

    /// An incoming-webhook URL on this fake.
    pub fn webhook_url(&self) -> String {
        format!("{}/services/T000/B000/XXXXSECRET", self.base)
    }

    /// A `response_url` on this fake.
    pub fn response_url(&self) -> String {
        format!("{}/actions/T1/1/x", self.base)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    /// Accepted calls of one method.
    pub fn accepted(&self, method: &str) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method && c.invalid.is_none() && c.faulted.is_none())
            .map(|c| c.body)
            .collect()
    }

    /// Every refused (invalid) request, for assertions that there are none.
    pub fn invalid(&self) -> Vec<(String, String)> {
        self.calls()
            .into_iter()
            .filter_map(|c| c.invalid.map(|i| (c.method, i)))
            .collect()
    }

    /// The next calls of `method` get these faults, in order.
    pub fn fail(&self, method: &str, faults: Vec<Fault>) {
        self.inner.lock().unwrap().faults.insert(method.to_string(), faults);
    }

    pub fn fail_webhook(&self, fault: Option<(u16, &'static str)>) {
        self.inner.lock().unwrap().webhook_fault = fault;
    }

    /// Mark a channel name as taken.
    pub fn take_name(&self, name: &str) {
        self.inner.lock().unwrap().taken.insert(name.to_string());
    }
}
