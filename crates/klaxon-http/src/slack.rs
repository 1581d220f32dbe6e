//! Slack's requests to Klaxon: the `/incident` slash command
//! (`POST /hooks/slack/commands`) and button clicks and modal submissions
//! (`POST /hooks/slack/interactions`).
//!
//! Every request is checked before anything else happens: Slack's v0
//! signature (`X-Slack-Signature` over `v0:{timestamp}:{body}` with the
//! signing secret), a timestamp within 5 minutes of now, and no replay of a
//! signature already seen (remembered in `channel_state` as `slack:seen:…`,
//! so every node behind a load balancer agrees).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use klaxon_domain::decide::Command;
use klaxon_domain::people::{ContactKind, User};
use klaxon_domain::wire::{DeclareIncident, TokenRole};
use klaxon_domain::{Incident, Status};
use klaxon_engine::channels::slack::escape as esc;
use klaxon_engine::channels::slack::{SlackApi, actions, message_blocks, status_word, verify_slack_signature};
use klaxon_store::{Collection, ListFilter};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::Caller;
use crate::incidents::run;
use crate::state::AppState;

/// How far a request's timestamp may be from now.
const MAX_SKEW_SECONDS: u64 = 300;

/// `callback_id` and input of the Update modal.
const UPDATE_VIEW: &str = "klaxon_update";
const UPDATE_BLOCK: &str = "klaxon_update_text";
const UPDATE_INPUT: &str = "text";

/// Check the signature, the timestamp and that this signature is new.
async fn verify(s: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    let Some(secret) = s.channels.slack.signing_secret_or_env() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "slack_not_configured",
            "Slack requests are not accepted: set channels.slack.signing_secret (or KLAXON_SLACK_SIGNING_SECRET)",
        ));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let (Some(ts), Some(sig)) = (header("x-slack-request-timestamp"), header("x-slack-signature")) else {
        return Err(ApiError::unauthorized(
            "X-Slack-Request-Timestamp and X-Slack-Signature are required",
        ));
    };
    let when: i64 = ts
        .parse()
        .map_err(|_| ApiError::unauthorized("X-Slack-Request-Timestamp is not a Unix time"))?;
    let now = s.clock.now();
    if now.as_second().abs_diff(when) > MAX_SKEW_SECONDS {
        return Err(ApiError::unauthorized(
            "X-Slack-Request-Timestamp is more than 5 minutes from now (stale or replayed request, or a clock off)",
        ));
    }
    if !verify_slack_signature(secret.as_bytes(), ts, body, sig) {
        return Err(ApiError::unauthorized(
            "X-Slack-Signature does not match the body and the signing secret",
        ));
    }
    let key = format!("slack:seen:{sig}");
    let nonce = klaxon_store::new_secret();
    if s.store.put_channel_state_once(&key, &nonce, now).await? != nonce {
        return Err(ApiError::unauthorized(
            "this signed request was already received (replay)",
        ));
    }
    // Signatures older than the window can never be replayed: forget them
    // (now and then, not on every request).
    if nonce.ends_with('0') {
        let before = now.checked_sub(jiff::SignedDuration::from_mins(10)).unwrap_or(now);
        if let Err(e) = s.store.prune_channel_state("slack:seen:", before).await {
            tracing::warn!(error = %e, "pruning Slack's replay guard failed");
        }
    }
    Ok(())
}

fn form<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::bad_request("malformed_form", format!("the form body cannot be read: {e}")))
}

/// The Klaxon user whose Slack contact method is this Slack user, else `slack:<name>`.
async fn actor(s: &AppState, slack_id: &str, slack_name: &str) -> Result<String, ApiError> {
    if !slack_id.is_empty() {
        let users: Vec<User> = s.store.documents(Collection::Users).await?;
        if let Some(u) = users.iter().find(|u| {
            u.contact_methods
                .iter()
                .any(|c| c.kind == ContactKind::Slack && c.address == slack_id)
        }) {
            return Ok(u.id.clone());
        }
    }
    let name = if slack_name.is_empty() { slack_id } else { slack_name };
    Ok(format!("slack:{name}"))
}

fn caller(name: String) -> Caller {
    Caller {
        name,
        role: Some(TokenRole::Responder),
    }
}

/// The incident an ID typed in Slack names (`inc-2026-…` works too).
async fn find(s: &AppState, raw: &str) -> Result<Option<Incident>, ApiError> {
    if !klaxon_domain::id::looks_like_id(raw) {
        return Ok(None);
    }
    if let Some(inc) = s.store.get(raw).await? {
        return Ok(Some(inc));
    }
    let upper = raw.to_uppercase();
    if upper != raw {
        return Ok(s.store.get(&upper).await?);
    }
    Ok(None)
}

fn reply(in_channel: bool, text: impl Into<String>) -> Response {
    let kind = if in_channel { "in_channel" } else { "ephemeral" };
    Json(json!({"response_type": kind, "text": text.into()})).into_response()
}

const HELP: &str = "*/incident* commands:\n\
• `/incident declare <title> [--sev SEV-1]` (or `declare SEV-1 <title>`): declare an incident\n\
• `/incident status [INC-…]`: one incident, or the open ones\n\
• `/incident update INC-… <text>`: post a stakeholder update\n\
• `/incident ack INC-…`: acknowledge\n\
• `/incident resolve INC-… [text]`: resolve\n\
• `/incident help`: this help";

fn problem(what: &str) -> Response {
    reply(false, format!("{what}\n\n{HELP}"))
}

fn line(inc: &Incident) -> String {
    format!(
        "• *{}* [{}] {}: {}",
        inc.id,
        inc.severity,
        status_word(inc.status.as_str()),
        esc(&inc.title)
    )
}

/// Slack escapes `&`, `<` and `>` in a command's text.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// Fields of a slash command (Slack sends more; they are ignored).
#[derive(Debug, Deserialize)]
struct SlashCommand {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    user_name: String,
    #[serde(default)]
    text: String,
}

/// `POST /hooks/slack/commands`: the `/incident` slash command.
pub async fn commands(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match command_inner(&s, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn command_inner(s: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    verify(s, headers, body).await?;
    let cmd: SlashCommand = form(body)?;
    let text = unescape(&cmd.text);
    let text = text.trim();
    let (sub, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let rest = rest.trim();
    let sub = sub.to_lowercase();
    if sub.is_empty() || sub == "help" {
        return Ok(reply(false, HELP));
    }
    let who = actor(s, &cmd.user_id, &cmd.user_name).await?;
    match sub.as_str() {
        "declare" => declare(s, who, rest).await,
        "status" => status(s, rest).await,
        "update" | "ack" | "resolve" => {
            let (raw_id, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if raw_id.is_empty() {
                return Ok(problem(&format!("`/incident {sub}` needs an incident ID.")));
            }
            let Some(inc) = find(s, raw_id).await? else {
                return Ok(problem(&format!("There is no incident `{raw_id}`.")));
            };
            let text = text.trim();
            let (cmd, done) = match sub.as_str() {
                "update" if text.is_empty() => {
                    return Ok(problem("`/incident update` needs the update's text after the ID."));
                }
                "update" => (
                    Command::PostUpdate {
                        message: text.to_string(),
                        public: false,
                        status: None,
                    },
                    "posted an update on",
                ),
                "ack" => (Command::Ack { message: None }, "acknowledged"),
                _ => (
                    Command::Status {
                        to: Status::Resolved.as_str().to_string(),
                        message: (!text.is_empty()).then(|| text.to_string()),
                    },
                    "resolved",
                ),
            };
            match run(s, &caller(who.clone()), &inc.id, cmd).await {
                Ok(Json(after)) => {
                    let mut msg = format!(
                        "{who} {done} *{}* ({}): {}",
                        after.id,
                        status_word(after.status.as_str()),
                        esc(&after.title)
                    );
                    if sub == "update" || (sub == "resolve" && !text.is_empty()) {
                        msg.push_str(&format!("\n> {}", esc(text)));
                    }
                    Ok(reply(true, msg))
                }
                Err(e) => Ok(reply(false, format!("Could not {sub} {}: {}", inc.id, e.message))),
            }
        }
        other => Ok(problem(&format!("Unknown subcommand `{other}`."))),
    }
}

/// `declare <title> [--sev SEV-1]` or `declare SEV-1 <title>`.
async fn declare(s: &AppState, who: String, rest: &str) -> Result<Response, ApiError> {
    let mut severity = None;
    let mut words = Vec::new();
    let mut it = rest.split_whitespace().peekable();
    while let Some(w) = it.next() {
        if w == "--sev" || w == "--severity" {
            match it.next() {
                Some(v) => severity = Some(v.to_string()),
                None => return Ok(problem("`--sev` needs a severity, e.g. `--sev SEV-1`.")),
            }
        } else if let Some(v) = w.strip_prefix("--sev=").or_else(|| w.strip_prefix("--severity=")) {
            severity = Some(v.to_string());
        } else {
            words.push(w);
        }
    }
    if severity.is_none()
        && let Some(first) = words.first()
        && s.catalog.severities.find(first).is_some()
    {
        severity = Some(first.to_string());
        words.remove(0);
    }
    let title = words.join(" ");
    if title.is_empty() {
        return Ok(problem("`/incident declare` needs a title."));
    }
    let req = DeclareIncident {
        title,
        severity,
        ..Default::default()
    };
    match s.store.declare(&req, &who, s.clock.now(), &s.catalog).await {
        Ok((inc, _)) => {
            metrics::counter!("klaxon_incidents_declared_total", "severity" => inc.severity.clone()).increment(1);
            tracing::info!(incident = %inc.id, severity = %inc.severity, "incident declared from Slack");
            Ok(reply(
                true,
                format!("{who} declared *{}* [{}]: {}", inc.id, inc.severity, esc(&inc.title)),
            ))
        }
        Err(e) => {
            let e = ApiError::from(e);
            if e.status.is_server_error() {
                return Err(e);
            }
            Ok(reply(false, format!("Could not declare: {}", e.message)))
        }
    }
}

/// `status INC-…` or `status` (the open incidents).
async fn status(s: &AppState, rest: &str) -> Result<Response, ApiError> {
    let raw = rest.split_whitespace().next().unwrap_or("");
    if !raw.is_empty() {
        let Some(inc) = find(s, raw).await? else {
            return Ok(problem(&format!("There is no incident `{raw}`.")));
        };
        let mut text = format!(
            "*{}* {}\nSeverity: {} · Status: {} · Declared: {}",
            inc.id,
            esc(&inc.title),
            inc.severity,
            status_word(inc.status.as_str()),
            inc.declared_at.strftime("%Y-%m-%d %H:%M UTC")
        );
        if !inc.assignees.is_empty() {
            text.push_str(&format!("\nAssigned: {}", inc.assignees.join(", ")));
        }
        return Ok(reply(false, text));
    }
    let f = ListFilter {
        statuses: Status::ALL.into_iter().filter(|s| s.is_open()).collect(),
        limit: 20,
        ..Default::default()
    };
    let (items, more) = s.store.list(&f).await?;
    if items.is_empty() {
        return Ok(reply(false, "No open incidents."));
    }
    let mut text = format!(
        "Open incidents ({}{}):",
        items.len(),
        if more.is_some() { "+" } else { "" }
    );
    for inc in &items {
        text.push('\n');
        text.push_str(&line(inc));
    }
    Ok(reply(false, text))
}

/// `POST /hooks/slack/interactions`: buttons and the Update modal.
pub async fn interactions(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match interaction_inner(&s, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct InteractionForm {
    payload: String,
}

async fn interaction_inner(s: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    verify(s, headers, body).await?;
    let f: InteractionForm = form(body)?;
    let p: Value = serde_json::from_str(&f.payload)
        .map_err(|e| ApiError::bad_request("malformed_payload", format!("payload is not JSON: {e}")))?;
    let user = &p["user"];
    let slack_id = user["id"].as_str().unwrap_or("");
    let slack_name = user["username"].as_str().or(user["name"].as_str()).unwrap_or("");
    match p["type"].as_str().unwrap_or("") {
        "block_actions" => {
            let who = actor(s, slack_id, slack_name).await?;
            let trigger = p["trigger_id"].as_str().unwrap_or("");
            for a in p["actions"].as_array().into_iter().flatten() {
                let id = a["value"].as_str().unwrap_or("");
                let cmd = match a["action_id"].as_str().unwrap_or("") {
                    actions::ACK => Command::Ack { message: None },
                    actions::RESOLVE => Command::Status {
                        to: Status::Resolved.as_str().to_string(),
                        message: None,
                    },
                    actions::UPDATE => {
                        open_update_modal(s, trigger, id).await?;
                        continue;
                    }
                    _ => continue,
                };
                let done = if matches!(cmd, Command::Ack { .. }) {
                    "acknowledged"
                } else {
                    "resolved"
                };
                match run(s, &caller(who.clone()), id, cmd).await {
                    Ok(Json(inc)) => {
                        if let Some(url) = p["response_url"].as_str() {
                            replace_original(s, url, &inc, &format!("{} {done} by {who}", inc.id)).await;
                        }
                    }
                    Err(e) if e.status.is_server_error() => return Err(e),
                    Err(e) => tracing::info!(incident = %id, error = %e.message, "Slack button had no effect"),
                }
            }
            Ok(StatusCode::OK.into_response())
        }
        "view_submission" if p["view"]["callback_id"] == UPDATE_VIEW => {
            let id = p["view"]["private_metadata"].as_str().unwrap_or("");
            let text = p["view"]["state"]["values"][UPDATE_BLOCK][UPDATE_INPUT]["value"]
                .as_str()
                .unwrap_or("")
                .trim();
            if text.is_empty() {
                return Ok(field_error("Write what changed."));
            }
            let who = actor(s, slack_id, slack_name).await?;
            let cmd = Command::PostUpdate {
                message: text.to_string(),
                public: false,
                status: None,
            };
            match run(s, &caller(who), id, cmd).await {
                Ok(_) => Ok(StatusCode::OK.into_response()),
                Err(e) if e.status.is_server_error() => Err(e),
                Err(e) => Ok(field_error(&e.message)),
            }
        }
        other => {
            tracing::info!(kind = other, "Slack interaction ignored");
            Ok(StatusCode::OK.into_response())
        }
    }
}

/// Show the clicked message as the incident is now (Slack's `response_url`,
/// `replace_original`): the new status, and no buttons once resolved. Best effort.
async fn replace_original(s: &AppState, url: &str, inc: &Incident, what: &str) {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return;
    }
    let event_type = if inc.status >= Status::Resolved {
        klaxon_domain::message::types::RESOLVED
    } else {
        klaxon_domain::message::types::ACKNOWLEDGED
    };
    // Built from JSON so that fields added to the envelope later default.
    let env = json!({
        "type": event_type,
        "idempotency_key": "",
        "incident": klaxon_domain::message::EnvelopeIncident::of(inc, s.public_url.as_deref()),
        "message": {"name": "slack-action", "subject": what, "body": what, "short": what},
        "sent_at": s.clock.now(),
        "reason": "slack",
    });
    let Ok(env) = serde_json::from_value::<klaxon_domain::message::Envelope>(env) else {
        return;
    };
    let body = json!({"replace_original": true, "text": what, "blocks": message_blocks(&env, true)});
    let Ok(http) = klaxon_engine::channels::http_client(s.channels.timeout().min(Duration::from_secs(2))) else {
        return;
    };
    let sent = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => tracing::info!(incident = %inc.id, status = %r.status(), "Slack response_url refused the update"),
        Err(e) => tracing::info!(incident = %inc.id, error = %e.without_url(), "Slack response_url"),
    }
}

/// The modal's answer that shows `message` under its text input.
fn field_error(message: &str) -> Response {
    Json(json!({"response_action": "errors", "errors": {UPDATE_BLOCK: message}})).into_response()
}

/// The Update modal: one text input; submitting it posts a stakeholder update.
pub fn update_view(incident_id: &str, title: &str) -> Value {
    let heading = format!("*{incident_id}* {}", esc(title));
    json!({
        "type": "modal",
        "callback_id": UPDATE_VIEW,
        "private_metadata": incident_id,
        "title": {"type": "plain_text", "text": "Post an update"},
        "submit": {"type": "plain_text", "text": "Post"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": heading.chars().take(3000).collect::<String>()}},
            {"type": "input", "block_id": UPDATE_BLOCK,
             "label": {"type": "plain_text", "text": "What changed?"},
             "element": {"type": "plain_text_input", "action_id": UPDATE_INPUT, "multiline": true, "max_length": 3000}}
        ]
    })
}

/// `views.open` with the Update modal (Slack wants it within 3 s of the click).
async fn open_update_modal(s: &AppState, trigger: &str, raw_id: &str) -> Result<(), ApiError> {
    let Some(inc) = find(s, raw_id).await? else {
        tracing::info!(incident = %raw_id, "Update button for an unknown incident");
        return Ok(());
    };
    let api = SlackApi::from_settings(&s.channels.slack, s.channels.timeout().min(Duration::from_secs(3)))
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "slack_not_configured", e))?;
    let view = update_view(&inc.id, &inc.title);
    if let Err(f) = api
        .call("views.open", &json!({"trigger_id": trigger, "view": view}))
        .await
    {
        tracing::warn!(incident = %inc.id, error = %f.error.message, "views.open failed");
    }
    Ok(())
}
