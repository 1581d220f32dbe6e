//! The incident: a projection of its timeline events.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::lifecycle::Status;

/// Who and how much is affected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Impact {
    /// Number of users affected, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users_affected: Option<u64>,
    /// Share of users affected, 0-100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// What users experience, in their words ("PDF uploads fail").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_facing: Option<String>,
}

impl Impact {
    pub fn is_empty(&self) -> bool {
        self.users_affected.is_none() && self.percent.is_none() && self.user_facing.is_none()
    }
}

/// An incident as the API shows it. Every field is derived from the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Incident {
    /// Human ID, `INC-YYYY-MM-DD-NNN` by default.
    #[schema(example = "INC-2026-11-23-001")]
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Severity key of the scheme in force (`SEV-1`).
    #[schema(example = "SEV-1")]
    pub severity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub status: Status,
    /// Affected services / status page components.
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub impact: Impact,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workaround: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// When the problem began.
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// When it was noticed.
    #[schema(value_type = String, format = DateTime)]
    pub detected_at: Timestamp,
    /// When it was declared in Klaxon.
    #[schema(value_type = String, format = DateTime)]
    pub declared_at: Timestamp,
    pub declared_by: String,
    /// Role key → person (`incident_commander` → `alice`).
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// Private incidents are visible only to authenticated callers.
    #[serde(default)]
    pub private: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub acknowledged_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub mitigated_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closed_at: Option<Timestamp>,
    /// Acknowledge by this time (declared_at + the severity's ack target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ack_deadline: Option<Timestamp>,
    /// Resolve by this time (detected_at + the severity's resolution target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolution_deadline: Option<Timestamp>,
    /// Next stakeholder update due (the severity's update cadence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_update_due: Option<Timestamp>,
    #[serde(default)]
    pub reopen_count: u32,
    /// Escalation policy that pages people while the incident is unacknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_policy: Option<String>,
    /// Who was paged last (by the policy, a reassignment or escalate-now).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assignees: Vec<String>,
    /// Snoozed: acknowledged until this time, then paged again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub snoozed_until: Option<Timestamp>,
    /// Stakeholder updates posted so far.
    #[serde(default)]
    pub updates_posted: u32,
    /// The next stakeholder update is late (set by the engine, cleared by an update).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub update_overdue: bool,
    /// Time of the last event.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// Number of timeline events; the sequence number of the last one.
    pub version: u64,
}

/// One changed field, as recorded on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldChange {
    pub field: String,
    #[schema(value_type = Object)]
    pub before: serde_json::Value,
    #[schema(value_type = Object)]
    pub after: serde_json::Value,
}

/// Limits on what a caller may send. Exceeding one is a 422 naming the field.
pub mod limits {
    pub const TITLE_MAX: usize = 200;
    pub const DESCRIPTION_MAX: usize = 20_000;
    pub const TEXT_MAX: usize = 10_000;
    pub const SHORT_TEXT_MAX: usize = 2_000;
    pub const SERVICES_MAX: usize = 50;
    pub const LABELS_MAX: usize = 64;
    pub const LABEL_VALUE_MAX: usize = 500;
    pub const PERSON_MAX: usize = 200;
}
