//! Slack: incoming webhooks and the Slack app (Web API).
//!
//! A destination's address decides the path:
//! - an `http(s)://` URL is an incoming webhook: one `POST` of
//!   `{"text", "blocks"}` (Block Kit, no buttons: webhooks cannot receive clicks);
//! - anything else (user ID `U…`/`W…`, channel ID `C…`/`G…`, `#name`) goes
//!   through the Web API with the bot token: `chat.postMessage` with buttons
//!   (Acknowledge, Resolve, Update). Pages to a user ID are direct messages.
//!   Other messages build a status board per incident and Slack channel: the
//!   first is remembered (`slack:msg:{incident}:{channel}`), later ones are
//!   thread replies under it and the first is refreshed (`chat.update`).
//! - With `incident_channels.enabled`, the first bot notification of an
//!   incident of a listed severity creates a channel `inc-…-<title slug>`,
//!   invites paged Slack users and receives one copy of every event.

use std::time::Duration;

use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use klaxon_domain::message::{Envelope, types};
use klaxon_store::{Notification, Store};
use serde_json::{Value, json};
use sha2::Sha256;

use super::settings::{IncidentChannels, SlackSettings};
use super::{Channel, SendError, envelope, http_client, retry_after, status_error};

/// `X-Slack-Signature` of a request: `v0=` hex HMAC-SHA256 over `"v0:{timestamp}:{body}"`.
pub fn slack_signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length; the error branch cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// Check `X-Slack-Signature` in constant time.
pub fn verify_slack_signature(secret: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(got) = header.strip_prefix("v0=").and_then(|h| hex::decode(h).ok()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&got).is_ok()
}

/// Button `action_id`s of bot messages.
pub mod actions {
    pub const ACK: &str = "klaxon_ack";
    pub const RESOLVE: &str = "klaxon_resolve";
    pub const UPDATE: &str = "klaxon_update";
}

/// Slack Web API error codes worth trying again.
const TRANSIENT: &[&str] = &[
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// A failed Web API call: Slack's error code (when it answered `ok:false`)
/// and the delivery error it amounts to.
#[derive(Debug, Clone)]
pub struct ApiFailure {
    pub code: Option<String>,
    pub error: SendError,
}

impl From<ApiFailure> for SendError {
    fn from(f: ApiFailure) -> Self {
        f.error
    }
}

/// A Slack Web API client (bot token).
#[derive(Debug, Clone)]
pub struct SlackApi {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl SlackApi {
    pub fn new(http: reqwest::Client, base: &str, token: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    /// For callers without a client of their own (the inbound hooks).
    pub fn from_settings(s: &SlackSettings, timeout: Duration) -> Result<Self, String> {
        let token = s
            .bot_token_or_env()
            .ok_or("no Slack bot token is configured (channels.slack.bot_token or KLAXON_SLACK_BOT_TOKEN)")?;
        let http = http_client(timeout).map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self::new(http, &s.api_url, &token))
    }

    /// `POST {api_url}/{method}` with a JSON body; the answer when `ok` is true.
    pub async fn call(&self, method: &str, body: &Value) -> Result<Value, ApiFailure> {
        let url = format!("{}/{method}", self.base);
        let fail = |error| ApiFailure { code: None, error };
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| fail(SendError::transient(format!("Slack {method}: {e}"))))?;
        if !resp.status().is_success() {
            let mut e = status_error("POST", &url, &resp);
            e.message = format!("Slack {method}: {}", e.message);
            return Err(fail(e));
        }
        let wait = retry_after(resp.headers());
        let answer: Value = resp.json().await.map_err(|e| {
            fail(SendError::transient(format!(
                "Slack {method}: the answer is not JSON: {e}"
            )))
        })?;
        if answer["ok"].as_bool() == Some(true) {
            return Ok(answer);
        }
        let code = answer["error"].as_str().unwrap_or("unknown_error").to_string();
        let transient = TRANSIENT.contains(&code.as_str());
        Err(ApiFailure {
            error: SendError {
                message: format!("Slack {method}: {code}"),
                permanent: !transient,
                retry_after: if transient { wait } else { None },
            },
            code: Some(code),
        })
    }
}

/// Is this address a Slack user ID (`U…`, `W…`)?
pub fn is_user_id(address: &str) -> bool {
    (address.starts_with('U') || address.starts_with('W'))
        && address.len() >= 3
        && address.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

fn is_webhook(address: &str) -> bool {
    address.starts_with("https://") || address.starts_with("http://")
}

/// An incoming-webhook URL is a secret: errors show the host only.
fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let host = rest.split('/').next().unwrap_or("");
    format!("{scheme}://{host}/…")
}

/// Text in `mrkdwn` must escape `&`, `<` and `>`.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// At most `max` characters (Block Kit limits), with an ellipsis when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `investigating` → `Investigating` (responders' words, not the status page's).
pub fn status_word(key: &str) -> String {
    let mut c = key.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn event_label(t: &str) -> &'static str {
    match t {
        types::PAGED => "Page",
        types::UPDATE_DUE => "Update due",
        types::DECLARED => "Declared",
        types::UPDATED => "Update",
        types::ACKNOWLEDGED => "Acknowledged",
        types::RESOLVED => "Resolved",
        types::REOPENED => "Reopened",
        types::SEVERITY_CHANGED => "Severity changed",
        types::ESCALATION_REQUESTED => "Escalation requested",
        _ => "Incident",
    }
}

fn is_closed(env: &Envelope) -> bool {
    matches!(env.incident.status.as_str(), "resolved" | "closed")
}

/// The notification text (shown in notifications and by screen readers).
pub fn fallback_text(env: &Envelope) -> String {
    let subject = if env.message.subject.trim().is_empty() {
        format!("{}: {}", env.incident.id, env.incident.title)
    } else {
        env.message.subject.clone()
    };
    clip(&subject, 3000)
}

/// The Block Kit message: header, facts, the message body, a context line
/// with the incident ID and link, and (with `buttons`, open incidents only)
/// Acknowledge / Resolve / Update buttons whose value is the incident ID.
pub fn message_blocks(env: &Envelope, buttons: bool) -> Value {
    let inc = &env.incident;
    let id_text = match &inc.url {
        Some(u) => format!("<{u}|{}>", inc.id),
        None => inc.id.clone(),
    };
    let mut fields = vec![
        json!({"type": "mrkdwn", "text": format!("*Incident*\n{id_text}")}),
        json!({"type": "mrkdwn", "text": format!("*Severity*\n{}", escape(&inc.severity))}),
        json!({"type": "mrkdwn", "text": format!("*Status*\n{}", status_word(&inc.status))}),
    ];
    if !inc.services.is_empty() {
        fields.push(
            json!({"type": "mrkdwn", "text": clip(&format!("*Services*\n{}", escape(&inc.services.join(", "))), 2000)}),
        );
    }
    if let Some(u) = &env.user {
        fields.push(json!({"type": "mrkdwn", "text": clip(&format!("*Paged*\n{}", escape(&u.name)), 2000)}));
    }
    let header = format!("[{}] {}", inc.severity, inc.title);
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": clip(&header, 150), "emoji": true}}),
        json!({"type": "section", "fields": fields}),
    ];
    let body = if env.message.body.trim().is_empty() {
        &env.message.subject
    } else {
        &env.message.body
    };
    if !body.trim().is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&escape(body), 3000)}}));
    }
    let mut context = format!("{} · {}", event_label(&env.event_type), inc.id);
    if let Some(u) = &inc.url {
        context.push_str(&format!(" · <{u}|Open in Klaxon>"));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(&context, 2000)}]}));
    if buttons && !is_closed(env) {
        let button = |text: &str, action: &str, style: Option<&str>| {
            let mut b = json!({"type": "button", "text": {"type": "plain_text", "text": text},
                "action_id": action, "value": inc.id});
            if let Some(s) = style {
                b["style"] = json!(s);
            }
            b
        };
        blocks.push(json!({"type": "actions", "block_id": "klaxon_actions", "elements": [
            button("Acknowledge", actions::ACK, Some("primary")),
            button("Resolve", actions::RESOLVE, None),
            button("Update", actions::UPDATE, None),
        ]}));
    }
    Value::Array(blocks)
}

/// The per-incident channel's name: `inc-2026-11-23-001-api-down`
/// (lowercase, `[a-z0-9-_]`, at most 80 characters).
pub fn incident_channel_name(incident_id: &str, title: &str) -> String {
    let slug = |s: &str| {
        let mut out = String::new();
        for c in s.to_lowercase().chars() {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                out.push(c);
            } else if !out.ends_with('-') {
                out.push('-');
            }
        }
        out.trim_matches('-').to_string()
    };
    let id = slug(incident_id);
    let id = if id.starts_with("inc-") {
        id
    } else {
        format!("inc-{id}")
    };
    let title = slug(title);
    let name = if title.is_empty() { id } else { format!("{id}-{title}") };
    name.chars()
        .take(80)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

/// `name` with `-n` appended, still at most 80 characters.
fn with_suffix(name: &str, n: u32) -> String {
    let suffix = format!("-{n}");
    let keep: String = name.chars().take(80 - suffix.len()).collect();
    format!("{}{suffix}", keep.trim_end_matches('-'))
}

/// The Slack channel: incoming webhooks and the Slack app.
#[derive(Debug, Clone)]
pub struct Slack {
    http: reqwest::Client,
    api: Option<SlackApi>,
    incident_channels: IncidentChannels,
    store: Store,
    /// Deliveries of one batch run at once: one at a time looks up or
    /// creates an incident channel, so they agree on one.
    creating: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Slack {
    pub fn new(settings: &SlackSettings, timeout: Duration, store: Store) -> Result<Self, reqwest::Error> {
        let http = http_client(timeout)?;
        let api = settings
            .bot_token_or_env()
            .map(|t| SlackApi::new(http.clone(), &settings.api_url, &t));
        Ok(Self {
            http,
            api,
            incident_channels: settings.incident_channels.clone(),
            store,
            creating: std::sync::Arc::default(),
        })
    }

    async fn send_webhook(&self, url: &str, env: &Envelope) -> Result<(), SendError> {
        let body = json!({"text": fallback_text(env), "blocks": message_blocks(env, false)});
        let shown = redact(url);
        let resp = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| SendError::transient(format!("POST {shown}: {}", e.without_url())))?;
        if resp.status().is_success() {
            return Ok(());
        }
        let mut err = status_error("POST", &shown, &resp);
        let text = resp.text().await.unwrap_or_default();
        if !text.trim().is_empty() {
            err.message = format!("{}: {}", err.message, clip(text.trim(), 200));
        }
        Err(err)
    }

    async fn send_bot(&self, n: &Notification, env: &Envelope, now: Timestamp) -> Result<(), SendError> {
        let Some(api) = &self.api else {
            return Err(SendError::permanent(
                "Slack app messages need a bot token (channels.slack.bot_token or KLAXON_SLACK_BOT_TOKEN); \
                 only incoming-webhook URLs work without one",
            ));
        };
        let text = fallback_text(env);
        let blocks = message_blocks(env, true);
        let room = if self.wants_incident_channel(env) {
            match self.incident_channel(api, env, now).await {
                Ok(room) => room,
                Err(e) => {
                    tracing::warn!(incident = %env.incident.id, error = %e.message, "per-incident Slack channel");
                    None
                }
            }
        } else {
            None
        };
        if let Some(room) = &room
            && env.is_page()
            && is_user_id(&n.address)
        {
            let invite = api
                .call("conversations.invite", &json!({"channel": room, "users": n.address}))
                .await;
            if let Err(f) = invite
                && f.code.as_deref() != Some("already_in_channel")
            {
                tracing::warn!(incident = %env.incident.id, user = %n.address, error = %f.error.message, "Slack invite");
            }
        }
        if env.is_page() && is_user_id(&n.address) {
            api.call(
                "chat.postMessage",
                &json!({"channel": n.address, "text": text, "blocks": blocks}),
            )
            .await?;
        } else {
            self.post_on_board(api, &n.address, env, &text, &blocks, now).await?;
        }
        if let Some(room) = room
            && room != n.address
        {
            self.echo(api, &room, n, env, &text, &blocks, now).await;
        }
        Ok(())
    }

    /// Post to `channel`: the incident's first message there becomes its
    /// board; later ones are thread replies and refresh the board.
    async fn post_on_board(
        &self,
        api: &SlackApi,
        channel: &str,
        env: &Envelope,
        text: &str,
        blocks: &Value,
        now: Timestamp,
    ) -> Result<(), SendError> {
        let key = format!("slack:msg:{}:{channel}", env.incident.id);
        let root = self
            .stored(&key)
            .await?
            .and_then(|v| serde_json::from_str::<Value>(&v).ok())
            .and_then(|v| Some((v["channel"].as_str()?.to_string(), v["ts"].as_str()?.to_string())));
        let Some((ch, ts)) = root else {
            return self.post_root(api, channel, &key, env, text, blocks, now, false).await;
        };
        let reply = api
            .call(
                "chat.postMessage",
                &json!({"channel": ch, "thread_ts": ts, "text": text, "blocks": blocks}),
            )
            .await;
        match reply {
            Ok(_) => {}
            // The board was deleted in Slack: start a new one.
            Err(f) if matches!(f.code.as_deref(), Some("thread_not_found" | "message_not_found")) => {
                tracing::info!(incident = %env.incident.id, channel = %ch, "the Slack board is gone; starting a new one");
                return self.post_root(api, channel, &key, env, text, blocks, now, true).await;
            }
            Err(f) => return Err(f.error),
        }
        let refresh = api
            .call(
                "chat.update",
                &json!({"channel": ch, "ts": ts, "text": text, "blocks": blocks}),
            )
            .await;
        if let Err(f) = refresh {
            tracing::warn!(incident = %env.incident.id, channel = %ch, error = %f.error.message, "refreshing the Slack board");
        }
        Ok(())
    }

    /// Post the incident's first message to `channel` and remember it as the
    /// board (`replace`: instead of the one remembered).
    #[allow(clippy::too_many_arguments)]
    async fn post_root(
        &self,
        api: &SlackApi,
        channel: &str,
        key: &str,
        env: &Envelope,
        text: &str,
        blocks: &Value,
        now: Timestamp,
        replace: bool,
    ) -> Result<(), SendError> {
        let answer = api
            .call(
                "chat.postMessage",
                &json!({"channel": channel, "text": text, "blocks": blocks}),
            )
            .await?;
        let (Some(ch), Some(ts)) = (answer["channel"].as_str(), answer["ts"].as_str()) else {
            tracing::warn!(incident = %env.incident.id, "chat.postMessage answered without channel/ts");
            return Ok(());
        };
        let value = json!({"channel": ch, "ts": ts}).to_string();
        let stored = if replace {
            self.store.put_channel_state(key, &value, now).await
        } else {
            self.store.put_channel_state_once(key, &value, now).await.map(|_| ())
        };
        if let Err(e) = stored {
            tracing::warn!(incident = %env.incident.id, error = %e, "remembering the Slack board");
        }
        Ok(())
    }

    async fn stored(&self, key: &str) -> Result<Option<String>, SendError> {
        self.store
            .channel_state(key)
            .await
            .map_err(|e| SendError::transient(format!("reading {key}: {e}")))
    }

    fn wants_incident_channel(&self, env: &Envelope) -> bool {
        let c = &self.incident_channels;
        c.enabled
            && (c.severities.is_empty()
                || c.severities
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&env.incident.severity)))
    }

    /// The incident's own channel ID: the one remembered, else a new one
    /// (not for closed incidents).
    async fn incident_channel(
        &self,
        api: &SlackApi,
        env: &Envelope,
        now: Timestamp,
    ) -> Result<Option<String>, SendError> {
        let key = format!("slack:channel:{}", env.incident.id);
        let read = |v: &str| {
            serde_json::from_str::<Value>(v).ok()?["id"]
                .as_str()
                .map(str::to_string)
        };
        if let Some(v) = self.stored(&key).await? {
            return Ok(read(&v));
        }
        let _one_at_a_time = self.creating.lock().await;
        if let Some(v) = self.stored(&key).await? {
            return Ok(read(&v));
        }
        if is_closed(env) {
            return Ok(None);
        }
        let base = incident_channel_name(&env.incident.id, &env.incident.title);
        for attempt in 1..=5u32 {
            let name = if attempt == 1 {
                base.clone()
            } else {
                with_suffix(&base, attempt)
            };
            match api
                .call("conversations.create", &json!({"name": name, "is_private": false}))
                .await
            {
                Ok(answer) => {
                    let Some(id) = answer["channel"]["id"].as_str() else {
                        return Err(SendError::transient("conversations.create answered without channel.id"));
                    };
                    let value = json!({"id": id, "name": name}).to_string();
                    let in_force = self
                        .store
                        .put_channel_state_once(&key, &value, now)
                        .await
                        .map_err(|e| SendError::transient(format!("remembering {key}: {e}")))?;
                    tracing::info!(incident = %env.incident.id, channel = %name, "Slack incident channel created");
                    return Ok(read(&in_force));
                }
                Err(f) if f.code.as_deref() == Some("name_taken") => {
                    // Another node may have just created it.
                    if let Some(v) = self.stored(&key).await? {
                        return Ok(read(&v));
                    }
                }
                Err(f) => return Err(f.error),
            }
        }
        Err(SendError::permanent(format!(
            "Slack channel names {base} to {base}-5 are all taken"
        )))
    }

    /// One copy of each event in the incident channel, whichever of the
    /// event's notifications gets there first. Best effort.
    #[allow(clippy::too_many_arguments)]
    async fn echo(
        &self,
        api: &SlackApi,
        room: &str,
        n: &Notification,
        env: &Envelope,
        text: &str,
        blocks: &Value,
        now: Timestamp,
    ) {
        let key = format!(
            "slack:echo:{}:{}:{}",
            env.incident.id,
            env.event_type,
            env.sent_at.as_millisecond()
        );
        match self.store.put_channel_state_once(&key, &n.idempotency_key, now).await {
            Ok(first) if first == n.idempotency_key => {}
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(incident = %env.incident.id, error = %e, "Slack incident channel copy");
                return;
            }
        }
        let posted = api
            .call(
                "chat.postMessage",
                &json!({"channel": room, "text": text, "blocks": blocks}),
            )
            .await;
        if let Err(f) = posted {
            tracing::warn!(incident = %env.incident.id, channel = %room, error = %f.error.message, "Slack incident channel copy");
        }
    }
}

impl Channel for Slack {
    fn send<'a>(&'a self, n: &'a Notification, now_unix: i64) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let env = envelope(n)?;
            if is_webhook(&n.address) {
                return self.send_webhook(&n.address, &env).await;
            }
            let now = Timestamp::from_second(now_unix).unwrap_or(env.sent_at);
            self.send_bot(n, &env, now).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slacks_documented_signature_example_verifies() {
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let secret = b"8f742231b10e8888abcd99yyyzzz85a5";
        let want = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(slack_signature(secret, "1531420618", body), want);
        assert!(verify_slack_signature(secret, "1531420618", body, want));
        assert!(!verify_slack_signature(secret, "1531420619", body, want));
        assert!(!verify_slack_signature(b"other", "1531420618", body, want));
        assert!(!verify_slack_signature(secret, "1531420618", body, "v0=zz"));
        assert!(!verify_slack_signature(secret, "1531420618", body, &want[3..]));
    }

    #[test]
    fn channel_names_follow_slack_rules() {
        assert_eq!(
            incident_channel_name("INC-2026-11-23-001", "API down"),
            "inc-2026-11-23-001-api-down"
        );
        assert_eq!(
            incident_channel_name("2026-001", "Ünïcode & Co!!"),
            "inc-2026-001-n-code-co"
        );
        let long = incident_channel_name("INC-2026-11-23-001", &"very long title ".repeat(20));
        assert!(long.len() <= 80 && !long.ends_with('-'), "{long}");
        let s = with_suffix(&long, 2);
        assert!(s.len() <= 80 && s.ends_with("-2"), "{s}");
        assert_eq!(incident_channel_name("INC-1", ""), "inc-1");
    }

    fn env(status: &str, title: &str, body: &str) -> Envelope {
        serde_json::from_value(json!({
            "type": "incident.updated", "idempotency_key": "k", "sent_at": "2026-11-23T10:00:00Z", "reason": "updated",
            "incident": {"id": "INC-1", "title": title, "severity": "SEV-1", "status": status,
                "declared_at": "2026-11-23T10:00:00Z"},
            "message": {"name": "status-update", "subject": "s", "body": body, "short": "s"}
        }))
        .unwrap()
    }

    #[test]
    fn blocks_stay_within_block_kit_limits() {
        let b = message_blocks(&env("mitigating", &"t".repeat(300), &"x".repeat(5000)), true);
        let header = b[0]["text"]["text"].as_str().unwrap();
        assert_eq!(header.chars().count(), 150);
        assert!(header.ends_with('…'));
        let body = b[2]["text"]["text"].as_str().unwrap();
        assert_eq!(body.chars().count(), 3000);
        assert_eq!(b[1]["fields"][2]["text"], "*Status*\nMitigating");
        assert_eq!(b.as_array().unwrap().last().unwrap()["type"], "actions");
        let closed = message_blocks(&env("closed", "t", "b"), true);
        assert_ne!(closed.as_array().unwrap().last().unwrap()["type"], "actions");
        let hook = message_blocks(&env("triggered", "t", "b"), false);
        assert_ne!(hook.as_array().unwrap().last().unwrap()["type"], "actions");
    }

    #[test]
    fn user_ids_and_redaction() {
        assert!(is_user_id("U024BE7LH") && is_user_id("W012A3CDE"));
        assert!(!is_user_id("C024BE91L") && !is_user_id("#ops") && !is_user_id("Ux"));
        assert_eq!(
            redact("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(escape("a<b>&c"), "a&lt;b&gt;&amp;c");
    }
}
