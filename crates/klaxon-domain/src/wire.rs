//! Request and response bodies of the REST API, shared by the server, the
//! typed client and the CLI.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};

use crate::event::TimelineEvent;
use crate::incident::{Impact, Incident};

/// `Some(None)` when the field is present and null, `None` when absent.
fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Body of `POST /api/v1/incidents`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclareIncident {
    /// 1-200 characters.
    #[schema(example = "API returning 500s")]
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Key or alias of a severity level; defaults to `default_severity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "SEV-1")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "availability")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<Impact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workaround: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Defaults to `detected_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    /// Defaults to now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub detected_at: Option<Timestamp>,
    /// Initial role assignments: role key or alias → person.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, String>,
    #[serde(default)]
    pub private: bool,
    /// Escalation policy that pages on-call people until someone acknowledges.
    /// Default: the alert route's policy, else none (nobody is paged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_policy: Option<String>,
}

/// Body of `PATCH /api/v1/incidents/{id}`: only the fields present change.
/// `null` clears an optional field.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub category: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<Impact>,
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub workaround: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub detected_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<bool>,
    /// Not patchable: use `POST /incidents/{id}/severity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub severity: Option<serde_json::Value>,
    /// Not patchable: use `POST /incidents/{id}/status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub status: Option<serde_json::Value>,
}

/// Body of `POST /api/v1/incidents/{id}/status`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    #[schema(example = "identified")]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Body of `POST /api/v1/incidents/{id}/ack` (optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Body of `POST /api/v1/incidents/{id}/reopen` (optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopenRequest {
    /// Status to return to; `investigating` (or `triggered` if never acknowledged) by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Body of `POST /api/v1/incidents/{id}/severity`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeverityChange {
    #[schema(example = "SEV-1")]
    pub severity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Body of `PUT /api/v1/incidents/{id}/roles/{role}`. `null` unassigns.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleAssignment {
    #[serde(alias = "user")]
    pub assignee: Option<String>,
}

/// Body of `POST /api/v1/incidents/{id}/notes`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    pub text: String,
}

/// One page of incidents.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IncidentPage {
    pub items: Vec<Incident>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Filters of `GET /api/v1/incidents`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct IncidentQuery {
    /// Comma-separated statuses, or `open` for every status before resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Comma-separated severity keys or aliases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Incidents affecting this service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Started at or after (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Started before (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// 1-500, default 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Timeline {
    pub incident_id: String,
    pub events: Vec<TimelineEvent>,
}

/// Every error body: `{"error": {"code", "message", "field"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code: `invalid_field`, `malformed_json`, `not_found`,
    /// `invalid_transition`, `conflict`, `payload_too_large`, `unauthorized`, `forbidden`, ...
    pub code: String,
    pub message: String,
    /// The offending field, as a dotted path, when one is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Token roles, least to most powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenRole {
    /// Read incidents, including private ones.
    Viewer,
    /// Declare and work incidents.
    Responder,
    /// Everything, including managing tokens.
    Admin,
}

impl TokenRole {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRole::Viewer => "viewer",
            TokenRole::Responder => "responder",
            TokenRole::Admin => "admin",
        }
    }
}

/// Body of `POST /api/v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Who or what uses the token; recorded as the actor of its changes.
    pub name: String,
    #[serde(default = "default_role")]
    pub role: TokenRole,
}

fn default_role() -> TokenRole {
    TokenRole::Responder
}

/// A token as listed. The secret is never shown again after creation.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub role: TokenRole,
    /// First characters of the secret, to recognise it.
    pub prefix: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
}

/// Answer to token creation: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: TokenInfo,
    pub token: String,
}

/// Formats an integration accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationFormat {
    Alertmanager,
    Pagerduty,
    Grafana,
    Generic,
}

impl IntegrationFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationFormat::Alertmanager => "alertmanager",
            IntegrationFormat::Pagerduty => "pagerduty",
            IntegrationFormat::Grafana => "grafana",
            IntegrationFormat::Generic => "generic",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "alertmanager" => Some(IntegrationFormat::Alertmanager),
            "pagerduty" => Some(IntegrationFormat::Pagerduty),
            "grafana" => Some(IntegrationFormat::Grafana),
            "generic" => Some(IntegrationFormat::Generic),
            _ => None,
        }
    }

    /// Where the sender posts, relative to the server's base URL.
    pub fn ingest_path(self, key: &str) -> String {
        match self {
            IntegrationFormat::Pagerduty => "/v2/enqueue".to_string(),
            f => format!("/ingest/{}/{key}", f.as_str()),
        }
    }
}

/// Body of `POST /api/v1/integrations`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIntegration {
    pub name: String,
    pub format: IntegrationFormat,
}

/// An alert source. Its key is shown only at creation and rotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IntegrationInfo {
    pub id: String,
    pub name: String,
    pub format: IntegrationFormat,
    /// First characters of the key, to recognise it.
    pub key_prefix: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub rotated_at: Option<Timestamp>,
}

/// An integration with its key (creation and rotation only).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IntegrationWithKey {
    #[serde(flatten)]
    pub info: IntegrationInfo,
    pub key: String,
    /// Path the sender posts to (PagerDuty: `/v2/enqueue` with `routing_key` = key).
    pub ingest_path: String,
}

/// An alert as Klaxon keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertRecord {
    pub id: i64,
    pub integration_id: String,
    pub dedup_key: String,
    /// `firing` or `resolved`.
    pub status: String,
    pub acknowledged: bool,
    /// The silence or maintenance window that suppressed it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_by: Option<String>,
    pub flapping: bool,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[schema(value_type = Vec<Object>)]
    pub links: serde_json::Value,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    #[schema(value_type = String, format = DateTime)]
    pub starts_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ends_at: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub last_seen_at: Timestamp,
    /// How many times the sender sent it (1 + repeats).
    pub receive_count: u64,
    /// Incidents it belongs to.
    pub incidents: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// What ingesting one alert did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertOutcome {
    pub dedup_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<i64>,
    /// `created`, `repeated`, `refired`, `resolved`, `acknowledged`, `suppressed`, `flapping` or `ignored`.
    pub result: String,
    /// Incidents the alert opened or joined.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incidents: Vec<String>,
}

/// Body of `POST /api/v1/silences`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSilence {
    /// Label matchers, e.g. `["alertname=DiskFull", "instance=~db-.*"]`.
    pub matchers: Vec<String>,
    /// Default: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub starts_at: Option<Timestamp>,
    /// Give `ends_at` or `duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ends_at: Option<Timestamp>,
    /// e.g. `2h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default)]
    pub comment: String,
    /// `silence` (default) or `maintenance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A notification as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Notification {
    pub id: i64,
    pub idempotency_key: String,
    pub incident_id: String,
    pub user: String,
    /// `webhook`, `email`, `sms`, `voice`, `slack`.
    pub channel: String,
    /// The user's contact method name.
    pub contact: String,
    pub address: String,
    /// `page` (dropped once the incident is resolved, or acknowledged when it
    /// was a delayed rule) or `message` (a stakeholder message, always delivered).
    pub purpose: String,
    /// `pending`, `delivered`, `dead` or `cancelled`.
    pub state: String,
    pub attempts: u32,
    #[schema(value_type = String, format = DateTime)]
    pub due_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<Timestamp>,
    /// The JSON document delivered.
    #[serde(skip)]
    pub body: String,
}

/// Body of `POST /api/v1/incidents/{id}/unack` and `/escalate` (optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Body of `POST /api/v1/incidents/{id}/snooze`: `until` a time, or `for` a duration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnoozeRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<Timestamp>,
    /// A duration such as `30m` or `2h` (at most 24h).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    #[schema(example = "30m")]
    pub duration: Option<String>,
}

/// Body of `POST /api/v1/incidents/{id}/reassign`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignRequest {
    /// User IDs to hand the incident to; they are paged now.
    pub users: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Query of `GET /api/v1/notifications`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct NotificationQuery {
    /// `pending`, `delivered`, `dead` or `cancelled`.
    pub state: Option<String>,
    /// Only this incident's notifications.
    pub incident: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// Body of `POST /api/v1/debug/clock` (servers started with `KLAXON_TEST_CLOCK` only).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockRequest {
    /// Move the clock forward by a duration such as `5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advance: Option<String>,
}

/// A template and its sources (`GET /api/v1/templates`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateInfo {
    pub name: String,
    #[serde(flatten)]
    pub source: crate::templates::TemplateSource,
}

/// Body of `POST /api/v1/templates/{name}/render`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderRequest {
    /// Incident ID.
    pub incident: String,
    /// The text of the update being previewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Update number (`INCIDENT UPDATE #N`), default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_number: Option<u32>,
}

/// Body of `POST /api/v1/incidents/{id}/updates`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostUpdateRequest {
    /// What changed, in words (1-10,000 characters).
    pub message: String,
    /// Public updates are shown on the status page (private incidents never are).
    #[serde(default)]
    pub public: bool,
    /// Move the status forward with the update (`identified`, `monitoring`, `resolved`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A stakeholder update, from the timeline.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IncidentUpdate {
    pub number: u32,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub by: String,
    pub message: String,
    pub public: bool,
    pub status: crate::Status,
}

/// Answer of `POST /api/v1/incidents/{id}/updates`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PostedUpdate {
    pub incident: Incident,
    pub update: IncidentUpdate,
    /// The `status-update` template rendered for this update.
    pub rendered: crate::templates::Rendered,
}
