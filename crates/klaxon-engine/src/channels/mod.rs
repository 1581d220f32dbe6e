//! Delivery channels. Each turns an outbox row into one request to a
//! provider; the outbox does retries, backoff and bookkeeping.
//!
//! Every notification's body is an [`Envelope`] (JSON). The generic webhook
//! sends it as is; the other channels build their provider's request from it.
//! A channel is registered under a contact kind (`webhook`, `slack`, `teams`,
//! `email`, `sms`, `voice`, `pagerduty`).

pub mod email;
pub mod ntfy;
pub mod pagerduty;
pub mod settings;
pub mod slack;
pub mod teams;
pub mod twilio;
pub mod webhook;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use klaxon_domain::message::Envelope;
use klaxon_store::{Notification, Store};

pub use settings::ChannelsConfig;
pub use webhook::{Webhook, verify_webhook_signature, webhook_signature};

/// Why a delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub message: String,
    /// Trying again will not help (e.g. 404, 400): give up at once.
    pub permanent: bool,
    /// The receiver asked us to wait (HTTP `Retry-After`).
    pub retry_after: Option<Duration>,
}

impl SendError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
            retry_after: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
            retry_after: None,
        }
    }
}

/// One way of reaching people.
pub trait Channel: Send + Sync {
    /// Deliver one notification (its `body` is an [`Envelope`] as JSON).
    fn send<'a>(&'a self, n: &'a Notification, now_unix: i64) -> BoxFuture<'a, Result<(), SendError>>;
}

/// The channels this node can deliver through, by contact kind.
#[derive(Clone, Default)]
pub struct Channels {
    map: HashMap<String, Arc<dyn Channel>>,
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.map.keys()).finish()
    }
}

impl Channels {
    pub fn with(mut self, kind: &str, ch: Arc<dyn Channel>) -> Self {
        self.map.insert(kind.to_string(), ch);
        self
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Channel>> {
        self.map.get(kind)
    }

    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }
}

/// Everything channels may need besides their own settings.
#[derive(Clone)]
pub struct ChannelDeps {
    /// For channels that remember provider state (Slack message timestamps,
    /// per-incident channels): `Store::channel_state_*`.
    pub store: Store,
    /// This Klaxon's external base URL (callbacks, links).
    pub public_url: Option<String>,
    /// Secret of the generic webhook signature.
    pub webhook_secret: String,
}

/// Build the channels the configuration enables. The generic webhook,
/// Slack incoming webhooks, Teams and PagerDuty forwarding need no account
/// and are always on; email, SMS/voice and the Slack app need settings.
pub fn build(cfg: &ChannelsConfig, deps: &ChannelDeps) -> Result<Channels, String> {
    let timeout = cfg.timeout();
    let webhook = Webhook::new(&deps.webhook_secret, timeout).map_err(|e| format!("webhook client: {e}"))?;
    let channels = Channels::default().with("webhook", Arc::new(webhook));
    let teams_ch = teams::Teams::new(timeout).map_err(|e| format!("teams client: {e}"))?;
    let pd = pagerduty::PagerDuty::new(&cfg.pagerduty.events_url, deps.public_url.clone(), timeout)
        .map_err(|e| format!("pagerduty client: {e}"))?;
    let channels = channels
        .with("teams", Arc::new(teams_ch))
        .with("pagerduty", Arc::new(pd));
    let channels = twilio::register(channels, cfg, deps)?;
    let ntfy = ntfy::Ntfy::new(cfg.ntfy.token_or_env(), timeout).map_err(|e| format!("ntfy client: {e}"))?;
    let channels = channels.with("ntfy", Arc::new(ntfy));
    let slack = slack::Slack::new(&cfg.slack, timeout, deps.store.clone()).map_err(|e| format!("Slack client: {e}"))?;
    let channels = channels.with("slack", Arc::new(slack));
    let channels = match &cfg.email {
        Some(e) => channels.with("email", Arc::new(email::Email::new(e, e.password_or_env(), timeout)?)),
        None => channels,
    };
    Ok(channels)
}

/// The HTTP client every HTTP channel uses: rustls, timeouts, no redirects.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("klaxon/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// `Retry-After` in seconds (capped at an hour).
pub fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<u64>().ok().map(|s| Duration::from_secs(s.min(3600)))
}

/// The error for a non-2xx answer: 4xx other than 408/429 is permanent;
/// `Retry-After` is honoured.
pub fn status_error(method: &str, url: &str, resp: &reqwest::Response) -> SendError {
    let status = resp.status();
    let code = status.as_u16();
    SendError {
        message: format!("{method} {url} answered {status}"),
        permanent: status.is_client_error() && code != 408 && code != 429,
        retry_after: retry_after(resp.headers()),
    }
}

/// A transport failure (connect, timeout) is worth retrying.
pub fn transport_error(method: &str, url: &str, e: reqwest::Error) -> SendError {
    SendError::transient(format!("{method} {url}: {e}"))
}

/// The notification's [`Envelope`]; a body that is not one cannot be sent
/// by a provider channel (permanent error).
pub fn envelope(n: &Notification) -> Result<Envelope, SendError> {
    serde_json::from_str(&n.body)
        .map_err(|e| SendError::permanent(format!("notification {} has no message envelope: {e}", n.id)))
}
