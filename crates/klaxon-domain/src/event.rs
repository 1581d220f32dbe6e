//! Timeline events: append-only, hash-chained per incident.
//!
//! `hash = SHA-256(prev_hash_hex || canonical(event))` where `canonical` is the
//! JSON object `{"actor","at","incident_id","kind","seq"}` with keys sorted at
//! every depth and no whitespace. The first event's `prev_hash` is 64 zeros.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::incident::{FieldChange, Incident};
use crate::lifecycle::Status;

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened. Events carry every value they set, so replaying them gives
/// the same incident whatever the configuration is at replay time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The incident was declared with these fields.
    Declared {
        incident: Box<Incident>,
    },
    /// The status moved forward (including acknowledge).
    StatusChanged {
        from: Status,
        to: Status,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>, format = DateTime)]
        next_update_due: Option<Timestamp>,
    },
    /// The incident went back to an earlier open status.
    Reopened {
        from: Status,
        to: Status,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>, format = DateTime)]
        ack_deadline: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>, format = DateTime)]
        next_update_due: Option<Timestamp>,
    },
    SeverityChanged {
        from: String,
        to: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>, format = DateTime)]
        ack_deadline: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>, format = DateTime)]
        resolution_deadline: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>, format = DateTime)]
        next_update_due: Option<Timestamp>,
    },
    FieldsChanged {
        changes: Vec<FieldChange>,
    },
    RoleAssigned {
        role: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
    NoteAdded {
        text: String,
    },
    /// An alert joined the incident (new, or firing again after it resolved).
    AlertFired {
        alert_id: i64,
        integration: String,
        dedup_key: String,
        summary: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        severity: Option<String>,
        #[serde(default)]
        labels: std::collections::BTreeMap<String, String>,
        #[serde(default)]
        refired: bool,
    },
    /// Alerts joined the incident (new, or firing again after they resolved):
    /// every alert one request brought to this incident, in one event. Written
    /// since batched alert events; `alert_fired` is the one-alert form of older timelines.
    AlertsFired {
        alerts: Vec<FiredAlert>,
    },
    /// Open alerts the sender repeated (one request's repeats for this incident).
    AlertsRepeated {
        alerts: Vec<RepeatedAlert>,
    },
    /// Alerts that resolved (one request's resolutions for this incident).
    AlertsResolved {
        alerts: Vec<ResolvedAlert>,
    },
    /// The sender repeated an open alert; `count` is how many times it was received.
    AlertRepeated {
        alert_id: i64,
        dedup_key: String,
        count: u64,
    },
    AlertResolved {
        alert_id: i64,
        dedup_key: String,
    },
    /// The alert started (true) or stopped (false) flapping. While it flaps it
    /// does not change the incident.
    AlertFlapping {
        alert_id: i64,
        dedup_key: String,
        flapping: bool,
    },
    /// The engine paged people: a level of the escalation policy, a
    /// reassignment or an escalate-now.
    Paged {
        /// `escalation`, `reassigned`, `rule` or `update_reminder`; the first
        /// two make the users the incident's assignees.
        #[serde(default = "escalation_reason")]
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        policy: Option<String>,
        /// 1-based level of the policy (0 for a reassignment).
        level: u32,
        /// Pass over the policy (1 = first, 2 = first repeat, ...).
        #[serde(default)]
        round: u32,
        #[serde(default)]
        level_name: String,
        users: Vec<String>,
        /// Notifications queued (user × notification rule).
        #[serde(default)]
        notifications: u32,
        /// Level targets that reached nobody (unknown user, empty schedule, ...).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unreachable: Vec<String>,
    },
    /// The escalation policy ran out of levels and repeats without an acknowledgement.
    EscalationExhausted {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        policy: Option<String>,
    },
    /// Back to triggered: escalation resumes.
    Unacknowledged {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>, format = DateTime)]
        ack_deadline: Option<Timestamp>,
    },
    /// Acknowledged until `until`, then paged again.
    Snoozed {
        #[schema(value_type = String, format = DateTime)]
        until: Timestamp,
    },
    /// Someone asked to page the next level now.
    EscalationRequested {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The incident was handed to these users; they are paged now.
    Reassigned {
        users: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A stakeholder update (`INCIDENT UPDATE #number`); public ones go to the status page.
    UpdatePosted {
        number: u32,
        message: String,
        #[serde(default)]
        public: bool,
        status: Status,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>, format = DateTime)]
        next_update_due: Option<Timestamp>,
    },
    /// The stakeholder update due at `due` was not posted in time.
    UpdateOverdue {
        #[schema(value_type = String, format = DateTime)]
        due: Timestamp,
    },
    /// A delivery attempt of a notification: delivered, failed (to be
    /// retried at `retry_at`) or given up on (failed without `retry_at`).
    Notified {
        notification_id: i64,
        user: String,
        channel: String,
        contact: String,
        attempts: u32,
        delivered: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// How long the channel took to answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        latency_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>, format = DateTime)]
        retry_at: Option<Timestamp>,
    },
}

/// One alert of an [`EventKind::AlertsFired`]. Fields are in alphabetical order
/// (and labels a sorted map), so serde prints it in canonical, key-sorted form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FiredAlert {
    pub alert_id: i64,
    pub dedup_key: String,
    pub integration: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub refired: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    pub summary: String,
}

/// One alert of an [`EventKind::AlertsRepeated`]: `count` is how many times it was received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RepeatedAlert {
    pub alert_id: i64,
    pub count: u64,
    pub dedup_key: String,
}

/// One alert of an [`EventKind::AlertsResolved`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResolvedAlert {
    pub alert_id: i64,
    pub dedup_key: String,
}

fn escalation_reason() -> String {
    "escalation".into()
}

impl EventKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::Declared { .. } => "declared",
            EventKind::StatusChanged { .. } => "status_changed",
            EventKind::Reopened { .. } => "reopened",
            EventKind::SeverityChanged { .. } => "severity_changed",
            EventKind::FieldsChanged { .. } => "fields_changed",
            EventKind::RoleAssigned { .. } => "role_assigned",
            EventKind::NoteAdded { .. } => "note_added",
            EventKind::AlertFired { .. } => "alert_fired",
            EventKind::AlertsFired { .. } => "alerts_fired",
            EventKind::AlertsRepeated { .. } => "alerts_repeated",
            EventKind::AlertsResolved { .. } => "alerts_resolved",
            EventKind::AlertRepeated { .. } => "alert_repeated",
            EventKind::AlertResolved { .. } => "alert_resolved",
            EventKind::AlertFlapping { .. } => "alert_flapping",
            EventKind::Paged { .. } => "paged",
            EventKind::EscalationExhausted { .. } => "escalation_exhausted",
            EventKind::Unacknowledged { .. } => "unacknowledged",
            EventKind::Snoozed { .. } => "snoozed",
            EventKind::EscalationRequested { .. } => "escalation_requested",
            EventKind::Reassigned { .. } => "reassigned",
            EventKind::Notified { .. } => "notified",
            EventKind::UpdateOverdue { .. } => "update_overdue",
            EventKind::UpdatePosted { .. } => "update_posted",
        }
    }
}

/// An event as stored: who, when, what, and its link in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineEvent {
    pub incident_id: String,
    /// 1 for the declaration, then +1 per event.
    pub seq: u64,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub actor: String,
    pub kind: EventKind,
    pub prev_hash: String,
    pub hash: String,
}

/// The canonical encoding that is hashed.
pub fn canonical(incident_id: &str, seq: u64, at: Timestamp, actor: &str, kind: &serde_json::Value) -> String {
    // The compact JSON of {incident_id, seq, at, actor, kind} with its keys sorted (as
    // serde_json's map prints them), written directly instead of through a cloned `Value`:
    // the ingest writer seals one event per alert.
    canonical_with_kind_text(incident_id, seq, at, actor, &kind.to_string())
}

/// [`canonical`] with the kind already printed as compact, key-sorted JSON.
fn canonical_with_kind_text(incident_id: &str, seq: u64, at: Timestamp, actor: &str, kind: &str) -> String {
    let text = |s: &str| serde_json::to_string(s).unwrap_or_default();
    format!(
        "{{\"actor\":{},\"at\":{},\"incident_id\":{},\"kind\":{kind},\"seq\":{seq}}}",
        text(actor),
        at.as_millisecond(),
        text(incident_id)
    )
}

pub fn chain_hash(prev_hash: &str, canonical: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// The kind as compact JSON with its keys sorted at every depth, as a `Value`
/// prints it. Batched alert events (thousands of alerts in one) are printed
/// straight from their structs, whose fields are declared in sorted order.
fn canonical_kind(kind: &EventKind) -> String {
    let list = |tag: &str, alerts: Result<String, serde_json::Error>| {
        alerts.ok().map(|a| format!("{{\"alerts\":{a},\"type\":\"{tag}\"}}"))
    };
    let direct = match kind {
        EventKind::AlertsFired { alerts } => list("alerts_fired", serde_json::to_string(alerts)),
        EventKind::AlertsRepeated { alerts } => list("alerts_repeated", serde_json::to_string(alerts)),
        EventKind::AlertsResolved { alerts } => list("alerts_resolved", serde_json::to_string(alerts)),
        _ => None,
    };
    direct.unwrap_or_else(|| {
        serde_json::to_value(kind)
            .unwrap_or(serde_json::Value::Null)
            .to_string()
    })
}

impl TimelineEvent {
    /// Seal a new event onto the chain after `prev_hash`.
    pub fn seal(incident_id: &str, seq: u64, at: Timestamp, actor: &str, kind: EventKind, prev_hash: &str) -> Self {
        Self::seal_with_payload(incident_id, seq, at, actor, kind, prev_hash).0
    }

    /// [`seal`](Self::seal), also returning the kind as compact JSON (keys sorted) to
    /// store as the event's payload: the writer then prints each event once.
    pub fn seal_with_payload(
        incident_id: &str,
        seq: u64,
        at: Timestamp,
        actor: &str,
        kind: EventKind,
        prev_hash: &str,
    ) -> (Self, String) {
        let kind_text = canonical_kind(&kind);
        let hash = chain_hash(
            prev_hash,
            &canonical_with_kind_text(incident_id, seq, at, actor, &kind_text),
        );
        let event = Self {
            incident_id: incident_id.to_string(),
            seq,
            at,
            actor: actor.to_string(),
            kind,
            prev_hash: prev_hash.to_string(),
            hash,
        };
        (event, kind_text)
    }
}

/// An event as read back raw from storage, before it is trusted.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub incident_id: String,
    pub seq: u64,
    pub at: Timestamp,
    pub actor: String,
    pub kind_json: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Result of recomputing an incident's chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifyReport {
    pub incident_id: String,
    /// True when every link holds and the incident row equals the replay of its events.
    pub ok: bool,
    pub events_checked: u64,
    /// Hash of the last event (the chain head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_hash: Option<String>,
    /// The first broken link, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_broken: Option<BrokenLink>,
    /// Whether the stored incident equals the replay of its events.
    pub projection_matches: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BrokenLink {
    pub seq: u64,
    pub reason: String,
}

/// Recompute the chain; report the first broken link.
pub fn verify_chain(incident_id: &str, events: &[StoredEvent]) -> (Option<BrokenLink>, Option<String>) {
    let mut prev = GENESIS_HASH.to_string();
    for (i, e) in events.iter().enumerate() {
        let expected_seq = i as u64 + 1;
        let broken = |reason: String| Some(BrokenLink { seq: e.seq, reason });
        if e.seq != expected_seq {
            return (broken(format!("expected seq {expected_seq}, found {}", e.seq)), None);
        }
        if e.incident_id != incident_id {
            return (broken(format!("event belongs to {}", e.incident_id)), None);
        }
        if e.prev_hash != prev {
            return (
                broken("prev_hash does not match the previous event's hash".into()),
                None,
            );
        }
        let kind: serde_json::Value = match serde_json::from_str(&e.kind_json) {
            Ok(v) => v,
            Err(err) => return (broken(format!("payload is not JSON: {err}")), None),
        };
        let recomputed = chain_hash(&prev, &canonical(&e.incident_id, e.seq, e.at, &e.actor, &kind));
        if recomputed != e.hash {
            return (broken("hash does not match the event's content".into()), None);
        }
        prev = e.hash.clone();
    }
    (None, events.last().map(|e| e.hash.clone()))
}

/// Apply one event to the projection. `Declared` creates it.
pub fn apply(current: Option<Incident>, event: &TimelineEvent) -> Option<Incident> {
    match (&event.kind, current) {
        (EventKind::Declared { incident }, _) => {
            let mut inc = (**incident).clone();
            inc.version = event.seq;
            inc.updated_at = event.at;
            Some(inc)
        }
        (_, None) => None,
        (_, Some(mut inc)) => {
            apply_to(&mut inc, event);
            Some(inc)
        }
    }
}

/// Apply one event to an existing projection in place (as [`apply`] does, without
/// a copy). A `Declared` event replaces it.
pub fn apply_to(inc: &mut Incident, event: &TimelineEvent) {
    if let EventKind::Declared { incident } = &event.kind {
        *inc = (**incident).clone();
        inc.version = event.seq;
        inc.updated_at = event.at;
        return;
    }
    let at = event.at;
    match &event.kind {
        EventKind::Declared { .. } => {}
        EventKind::StatusChanged {
            to, next_update_due, ..
        } => {
            inc.status = *to;
            inc.snoozed_until = None;
            // Jumping straight to resolved (e.g. alerts auto-resolving) is not an acknowledgement.
            if *to >= Status::Acknowledged && *to < Status::Resolved && inc.acknowledged_at.is_none() {
                inc.acknowledged_at = Some(at);
            }
            if *to >= Status::Monitoring && inc.mitigated_at.is_none() {
                inc.mitigated_at = Some(at);
            }
            if *to >= Status::Resolved && inc.resolved_at.is_none() {
                inc.resolved_at = Some(at);
            }
            if *to == Status::Closed {
                inc.closed_at = Some(at);
            }
            inc.next_update_due = if to.is_open() {
                next_update_due.or(inc.next_update_due)
            } else {
                None
            };
            if next_update_due.is_some() || !to.is_open() {
                inc.update_overdue = false;
            }
        }
        EventKind::Reopened {
            to,
            ack_deadline,
            next_update_due,
            ..
        } => {
            inc.status = *to;
            inc.snoozed_until = None;
            inc.reopen_count += 1;
            inc.resolved_at = None;
            inc.closed_at = None;
            if *to < Status::Monitoring {
                inc.mitigated_at = None;
            }
            if *to == Status::Triggered {
                inc.acknowledged_at = None;
            }
            if ack_deadline.is_some() {
                inc.ack_deadline = *ack_deadline;
            }
            inc.next_update_due = *next_update_due;
            inc.update_overdue = false;
        }
        EventKind::SeverityChanged {
            to,
            ack_deadline,
            resolution_deadline,
            next_update_due,
            ..
        } => {
            inc.severity = to.clone();
            inc.ack_deadline = *ack_deadline;
            inc.resolution_deadline = *resolution_deadline;
            inc.next_update_due = *next_update_due;
            inc.update_overdue = false;
        }
        EventKind::FieldsChanged { changes } => {
            for c in changes {
                crate::decide::set_field(inc, &c.field, &c.after);
            }
        }
        EventKind::RoleAssigned { role, after, .. } => match after {
            Some(who) => {
                inc.roles.insert(role.clone(), who.clone());
            }
            None => {
                inc.roles.remove(role);
            }
        },
        EventKind::Paged { users, reason, .. } if reason == "escalation" || reason == "reassigned" => {
            inc.assignees = users.clone();
        }
        EventKind::Reassigned { users, .. } => {
            inc.assignees = users.clone();
        }
        EventKind::Paged { .. } => {}
        EventKind::Unacknowledged { ack_deadline, .. } => {
            inc.status = Status::Triggered;
            inc.acknowledged_at = None;
            inc.snoozed_until = None;
            if ack_deadline.is_some() {
                inc.ack_deadline = *ack_deadline;
            }
        }
        EventKind::UpdateOverdue { .. } => {
            inc.update_overdue = true;
        }
        EventKind::UpdatePosted {
            number,
            next_update_due,
            ..
        } => {
            inc.updates_posted = *number;
            inc.next_update_due = *next_update_due;
            inc.update_overdue = false;
        }
        EventKind::Snoozed { until } => {
            if inc.status == Status::Triggered {
                inc.status = Status::Acknowledged;
            }
            if inc.acknowledged_at.is_none() {
                inc.acknowledged_at = Some(at);
            }
            inc.snoozed_until = Some(*until);
        }
        EventKind::NoteAdded { .. }
        | EventKind::AlertFired { .. }
        | EventKind::AlertsFired { .. }
        | EventKind::AlertsRepeated { .. }
        | EventKind::AlertsResolved { .. }
        | EventKind::AlertRepeated { .. }
        | EventKind::AlertResolved { .. }
        | EventKind::AlertFlapping { .. }
        | EventKind::EscalationExhausted { .. }
        | EventKind::EscalationRequested { .. }
        | EventKind::Notified { .. } => {}
    }
    inc.version = event.seq;
    inc.updated_at = at;
}

/// Replay a whole timeline.
pub fn replay(events: &[TimelineEvent]) -> Option<Incident> {
    events.iter().fold(None, apply)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chain's canonical form, as first defined: a `Value` printed compactly.
    fn reference(incident_id: &str, seq: u64, at: Timestamp, actor: &str, kind: &serde_json::Value) -> String {
        serde_json::json!({"incident_id": incident_id, "seq": seq, "at": at.as_millisecond(), "actor": actor, "kind": kind})
            .to_string()
    }

    #[test]
    fn canonical_is_byte_for_byte_the_sorted_compact_json() {
        let kinds = [
            serde_json::json!({"type": "note_added", "text": "quote \" backslash \\ newline \n tab \t"}),
            serde_json::json!({"type": "alert_fired", "labels": {"z": "1", "a": "é ✓ \u{1}"}, "alert_id": 7}),
            serde_json::Value::Null,
        ];
        for (i, kind) in kinds.iter().enumerate() {
            let at = Timestamp::from_millisecond(1_795_000_000_123 - i as i64 * 1_000_000_000_000).unwrap();
            for actor in ["integration:prom", "ünïcode \"actor\"", ""] {
                assert_eq!(
                    canonical("INC-2026-11-23-001", 42 + i as u64, at, actor, kind),
                    reference("INC-2026-11-23-001", 42 + i as u64, at, actor, kind)
                );
            }
        }
    }

    #[test]
    fn sealed_payload_is_the_kind_the_hash_covers() {
        let kind = EventKind::AlertFired {
            alert_id: 7,
            integration: "prom \"main\"".into(),
            dedup_key: "fp\\1".into(),
            summary: "Disk ✓ full\n".into(),
            severity: Some("critical".into()),
            labels: [
                ("z".to_string(), "1".to_string()),
                ("a".to_string(), "{a,b}".to_string()),
            ]
            .into(),
            refired: true,
        };
        let at = Timestamp::from_millisecond(1_795_000_000_123).unwrap();
        let (event, payload) =
            TimelineEvent::seal_with_payload("INC-1", 3, at, "integration:prom", kind.clone(), "prev");
        let as_value = serde_json::to_value(&kind).unwrap();
        assert_eq!(payload, as_value.to_string(), "payload is the compact, key-sorted kind");
        assert_eq!(serde_json::from_str::<EventKind>(&payload).unwrap(), kind);
        assert_eq!(
            event.hash,
            chain_hash("prev", &reference("INC-1", 3, at, "integration:prom", &as_value))
        );
        assert_eq!(
            event,
            TimelineEvent::seal("INC-1", 3, at, "integration:prom", kind, "prev")
        );
    }

    #[test]
    fn batched_alert_events_print_as_their_value_does() {
        let labels: std::collections::BTreeMap<String, String> = [
            ("zone", "eu \"west\""),
            ("Alertname", "Disk\\Full"),
            ("a", "é ✓ \u{1} {a,b}"),
            ("", "NULL"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let fired = |id: i64, severity: Option<&str>| FiredAlert {
            alert_id: id,
            dedup_key: format!("fp\\{id}"),
            integration: "prom \"main\"".into(),
            labels: labels.clone(),
            refired: id % 2 == 0,
            severity: severity.map(str::to_string),
            summary: "Disk ✓ full\n".into(),
        };
        let kinds = [
            EventKind::AlertsFired {
                alerts: vec![fired(-1, Some("critical")), fired(2, None)],
            },
            EventKind::AlertsFired { alerts: vec![] },
            EventKind::AlertsRepeated {
                alerts: vec![RepeatedAlert {
                    alert_id: 9,
                    count: u64::MAX,
                    dedup_key: "k".into(),
                }],
            },
            EventKind::AlertsResolved {
                alerts: vec![ResolvedAlert {
                    alert_id: i64::MIN,
                    dedup_key: "\u{7f}".into(),
                }],
            },
        ];
        for kind in kinds {
            let value = serde_json::to_value(&kind).unwrap();
            assert_eq!(canonical_kind(&kind), value.to_string(), "{kind:?}");
            let back: EventKind = serde_json::from_str(&canonical_kind(&kind)).unwrap();
            assert_eq!(back, kind);
        }
    }
}
