//! The document every notification carries: what happened, to which
//! incident, and the message rendered from a template. Generic webhooks
//! receive it as is; every other channel (Slack, Teams, email, SMS, voice,
//! PagerDuty) builds its provider's request from it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::incident::Incident;
use crate::templates::Rendered;

/// `type` values of an [`Envelope`].
pub mod types {
    /// Someone is paged (escalation level, paging rule, reassignment).
    pub const PAGED: &str = "incident.paged";
    /// The communications lead is reminded that an update is due.
    pub const UPDATE_DUE: &str = "incident.update_due";
    pub const DECLARED: &str = "incident.declared";
    pub const UPDATED: &str = "incident.updated";
    pub const ACKNOWLEDGED: &str = "incident.acknowledged";
    pub const RESOLVED: &str = "incident.resolved";
    pub const REOPENED: &str = "incident.reopened";
    pub const SEVERITY_CHANGED: &str = "incident.severity_changed";
    pub const ESCALATION_REQUESTED: &str = "incident.escalation_requested";
    /// The double opt-in message of a status page email subscription.
    pub const SUBSCRIPTION_CONFIRM: &str = "subscription.confirm";
}

/// The incident as a notification shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeIncident {
    pub id: String,
    pub title: String,
    pub severity: String,
    /// Status key (`investigating`, `resolved`).
    pub status: String,
    #[serde(default)]
    pub services: Vec<String>,
    pub declared_at: Timestamp,
    /// Link to the incident on this Klaxon, when `engine.public_url` is set.
    #[serde(default)]
    pub url: Option<String>,
}

impl EnvelopeIncident {
    pub fn of(inc: &Incident, public_url: Option<&str>) -> Self {
        Self {
            id: inc.id.clone(),
            title: inc.title.clone(),
            severity: inc.severity.clone(),
            status: inc.status.as_str().to_string(),
            services: inc.services.clone(),
            declared_at: inc.declared_at,
            url: public_url.map(|b| format!("{}/api/v1/incidents/{}", b.trim_end_matches('/'), inc.id)),
        }
    }
}

/// The person a page is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeUser {
    pub id: String,
    pub name: String,
    /// Name of the contact method used.
    pub contact: String,
}

/// The body of every notification (see docs/oncall.md, "Webhook format").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// One of [`types`].
    #[serde(rename = "type")]
    pub event_type: String,
    /// Unique per notification and target; receivers drop repeats by it.
    pub idempotency_key: String,
    pub incident: EnvelopeIncident,
    /// The message, rendered from the template named in `message.name`.
    pub message: Rendered,
    /// When the notification was queued.
    pub sent_at: Timestamp,
    /// Why: `escalation`, `reassigned`, `rule`, `update_reminder` for pages;
    /// the communication rule's event (`declared`, `updated`, …) otherwise.
    pub reason: String,
    /// Pages: the person paged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<EnvelopeUser>,
    /// Pages: escalation policy, level (1-based, 0 outside a policy), its name and round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
    /// When the next stakeholder update is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_due: Option<Timestamp>,
    /// Stakeholder messages: the communication destination's name
    /// (`status-page-subscribers` for status page subscribers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Status page subscribers: the link that ends the subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsubscribe_url: Option<String>,
}

impl Envelope {
    /// Is this a page (someone must act) rather than information?
    pub fn is_page(&self) -> bool {
        self.event_type == types::PAGED || self.event_type == types::UPDATE_DUE
    }

    pub fn to_json(&self) -> String {
        // Serialising plain strings, numbers and timestamps cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}
