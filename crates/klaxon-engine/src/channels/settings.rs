//! The `channels:` section of klaxon.yaml: provider accounts and endpoints.
//! Every base URL is configurable, so tests (and proxies) can stand in for
//! the providers. Secrets can come from the environment instead of the file.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsConfig {
    /// Timeout of one request to an HTTP provider (default 10s).
    #[serde(default, with = "klaxon_domain::duration::opt")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub slack: SlackSettings,
    /// SMTP relay; email is off without it.
    #[serde(default)]
    pub email: Option<EmailSettings>,
    /// Twilio (or a Twilio-compatible provider) account; SMS and voice are off without it.
    #[serde(default)]
    pub twilio: Option<TwilioSettings>,
    #[serde(default)]
    pub pagerduty: PagerDutySettings,
    #[serde(default)]
    pub ntfy: NtfySettings,
}

/// ntfy: the topic URL is the address; a token is needed for protected topics.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NtfySettings {
    /// Access token `tk_…` (or `KLAXON_NTFY_TOKEN`), sent as `Authorization: Bearer`.
    #[serde(default)]
    pub token: Option<String>,
}

impl ChannelsConfig {
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(Duration::from_secs(10))
    }
}

/// Slack: incoming webhooks need nothing here (the destination's address is
/// the webhook URL); the Slack app (bot messages, per-incident channels,
/// buttons, `/incident`) needs a bot token and the signing secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSettings {
    /// Web API base (default `https://slack.com/api`).
    #[serde(default = "slack_api")]
    pub api_url: String,
    /// Bot token `xoxb-…` (or `KLAXON_SLACK_BOT_TOKEN`).
    #[serde(default)]
    pub bot_token: Option<String>,
    /// Signing secret of inbound requests (or `KLAXON_SLACK_SIGNING_SECRET`).
    #[serde(default)]
    pub signing_secret: Option<String>,
    /// A channel per incident (`inc-2026-11-23-001-api-down`).
    #[serde(default)]
    pub incident_channels: IncidentChannels,
}

impl Default for SlackSettings {
    fn default() -> Self {
        Self {
            api_url: slack_api(),
            bot_token: None,
            signing_secret: None,
            incident_channels: IncidentChannels::default(),
        }
    }
}

impl SlackSettings {
    /// The bot token: the file's, else `KLAXON_SLACK_BOT_TOKEN`.
    pub fn bot_token_or_env(&self) -> Option<String> {
        secret_or_env(&self.bot_token, "KLAXON_SLACK_BOT_TOKEN")
    }

    /// The signing secret: the file's, else `KLAXON_SLACK_SIGNING_SECRET`.
    pub fn signing_secret_or_env(&self) -> Option<String> {
        secret_or_env(&self.signing_secret, "KLAXON_SLACK_SIGNING_SECRET")
    }
}

impl NtfySettings {
    /// The access token: the file's, else `KLAXON_NTFY_TOKEN`.
    pub fn token_or_env(&self) -> Option<String> {
        secret_or_env(&self.token, "KLAXON_NTFY_TOKEN")
    }
}

fn secret_or_env(v: &Option<String>, var: &str) -> Option<String> {
    v.clone()
        .or_else(|| std::env::var(var).ok())
        .filter(|s| !s.trim().is_empty())
}

fn slack_api() -> String {
    "https://slack.com/api".into()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentChannels {
    #[serde(default)]
    pub enabled: bool,
    /// Severities that get a channel (empty: all).
    #[serde(default)]
    pub severities: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587); refused if the server does not offer it.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS (a relay on localhost only).
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    pub host: String,
    /// Default: 587 (starttls), 465 (implicit), 25 (none).
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    #[serde(default)]
    pub username: Option<String>,
    /// Or `KLAXON_SMTP_PASSWORD`.
    #[serde(default)]
    pub password: Option<String>,
    /// `Klaxon <klaxon@example.com>`.
    pub from: String,
    /// Extra CA certificate (PEM) to trust, for a relay with a private CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Name sent in `EHLO` (default: the address literal `[127.0.0.1]`).
    #[serde(default)]
    pub hello_name: Option<String>,
}

impl EmailSettings {
    /// The password: the file's, else `KLAXON_SMTP_PASSWORD`.
    pub fn password_or_env(&self) -> Option<String> {
        secret_or_env(&self.password, "KLAXON_SMTP_PASSWORD")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioSettings {
    /// REST API base (default `https://api.twilio.com`).
    #[serde(default = "twilio_api")]
    pub api_url: String,
    pub account_sid: String,
    /// Or `KLAXON_TWILIO_AUTH_TOKEN`.
    #[serde(default)]
    pub auth_token: Option<String>,
    /// Sender number (E.164).
    pub from: String,
}

fn twilio_api() -> String {
    "https://api.twilio.com".into()
}

impl TwilioSettings {
    /// The auth token: the file's, else `KLAXON_TWILIO_AUTH_TOKEN`.
    pub fn auth_token_or_env(&self) -> Option<String> {
        secret_or_env(&self.auth_token, "KLAXON_TWILIO_AUTH_TOKEN")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutySettings {
    /// Events API v2 endpoint (default `https://events.pagerduty.com/v2/enqueue`).
    #[serde(default = "pd_events")]
    pub events_url: String,
}

impl Default for PagerDutySettings {
    fn default() -> Self {
        Self {
            events_url: pd_events(),
        }
    }
}

fn pd_events() -> String {
    "https://events.pagerduty.com/v2/enqueue".into()
}
