//! Who hears what (seed 003, "Stakeholder Communication"): named
//! destinations (a Slack channel, a mailing list, a Teams channel, a
//! PagerDuty service…) and, per severity, which of them are told about an
//! incident's declaration, updates, resolution and escalation.
//!
//! ```yaml
//! communication:
//!   destinations:
//!     - {name: eng-chat, kind: slack, address: "#incidents"}
//!     - {name: stakeholders, kind: email, address: stakeholders@example.com}
//!   rules:
//!     - {severities: [SEV-1], notify: [eng-chat, stakeholders]}
//!     - {severities: [SEV-2, SEV-3], notify: [eng-chat]}
//!     # SEV-4: ticket only — no rule, nobody is told
//! ```
//!
//! Every rule that matches an incident's severity contributes its
//! destinations; a destination hears each event once.

use serde::{Deserialize, Serialize};

use crate::config::{Catalog, is_slug};
use crate::error::FieldError;
use crate::event::EventKind;
use crate::lifecycle::Status;
use crate::message::types;
use crate::people::ContactKind;

/// The incident events stakeholders can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommEvent {
    Declared,
    /// A stakeholder update was posted (`POST /api/v1/incidents/{id}/updates`).
    Updated,
    Acknowledged,
    Resolved,
    Reopened,
    SeverityChanged,
    EscalationRequested,
}

impl CommEvent {
    /// The communication event a timeline event is, if any.
    pub fn of(kind: &EventKind) -> Option<CommEvent> {
        Some(match kind {
            EventKind::Declared { .. } => CommEvent::Declared,
            EventKind::UpdatePosted { .. } => CommEvent::Updated,
            EventKind::StatusChanged {
                to: Status::Acknowledged,
                ..
            } => CommEvent::Acknowledged,
            EventKind::StatusChanged {
                to: Status::Resolved, ..
            } => CommEvent::Resolved,
            EventKind::Reopened { .. } => CommEvent::Reopened,
            EventKind::SeverityChanged { .. } => CommEvent::SeverityChanged,
            EventKind::EscalationRequested { .. } => CommEvent::EscalationRequested,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CommEvent::Declared => "declared",
            CommEvent::Updated => "updated",
            CommEvent::Acknowledged => "acknowledged",
            CommEvent::Resolved => "resolved",
            CommEvent::Reopened => "reopened",
            CommEvent::SeverityChanged => "severity_changed",
            CommEvent::EscalationRequested => "escalation_requested",
        }
    }

    /// The template its message is rendered from.
    pub fn template(self) -> &'static str {
        match self {
            CommEvent::Declared => "initial-notification",
            CommEvent::Updated => "status-update",
            CommEvent::Resolved => "resolution",
            CommEvent::EscalationRequested => "escalation-request",
            CommEvent::Acknowledged | CommEvent::Reopened | CommEvent::SeverityChanged => "internal-update",
        }
    }

    /// The envelope `type` of its message.
    pub fn event_type(self) -> &'static str {
        match self {
            CommEvent::Declared => types::DECLARED,
            CommEvent::Updated => types::UPDATED,
            CommEvent::Acknowledged => types::ACKNOWLEDGED,
            CommEvent::Resolved => types::RESOLVED,
            CommEvent::Reopened => types::REOPENED,
            CommEvent::SeverityChanged => types::SEVERITY_CHANGED,
            CommEvent::EscalationRequested => types::ESCALATION_REQUESTED,
        }
    }

    /// What a rule without `events` sends: everything but acknowledgements
    /// (which matter to a forwarded PagerDuty incident, not to people).
    pub fn defaults(kind: ContactKind) -> &'static [CommEvent] {
        const PEOPLE: &[CommEvent] = &[
            CommEvent::Declared,
            CommEvent::Updated,
            CommEvent::Resolved,
            CommEvent::Reopened,
            CommEvent::SeverityChanged,
            CommEvent::EscalationRequested,
        ];
        const ALL: &[CommEvent] = &[
            CommEvent::Declared,
            CommEvent::Updated,
            CommEvent::Acknowledged,
            CommEvent::Resolved,
            CommEvent::Reopened,
            CommEvent::SeverityChanged,
            CommEvent::EscalationRequested,
        ];
        match kind {
            ContactKind::Pagerduty => ALL,
            _ => PEOPLE,
        }
    }
}

/// A place stakeholders are told things.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    pub name: String,
    pub kind: ContactKind,
    /// Slack `#channel`, channel ID or incoming-webhook URL; email address;
    /// E.164 number; Teams or webhook URL; PagerDuty routing key.
    pub address: String,
}

/// Per severity, which destinations hear which events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommunicationRule {
    /// Severities (keys or aliases) this rule is for; empty: every severity.
    #[serde(default)]
    pub severities: Vec<String>,
    /// Destination names.
    pub notify: Vec<String>,
    /// The events sent (default: all but `acknowledged`, which only
    /// PagerDuty destinations get by default).
    #[serde(default)]
    pub events: Option<Vec<CommEvent>>,
    /// Stakeholder updates marked `public: false` are not sent here.
    #[serde(default)]
    pub public_updates_only: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Communication {
    #[serde(default)]
    pub destinations: Vec<Destination>,
    #[serde(default)]
    pub rules: Vec<CommunicationRule>,
}

impl Communication {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The destinations told about `ev` on an incident of `severity`, once
    /// each, in the order the rules name them. `public` is whether the
    /// update was public (updates only).
    pub fn audience(&self, severity: &str, ev: CommEvent, public: bool) -> Vec<&Destination> {
        let mut out: Vec<&Destination> = Vec::new();
        for r in &self.rules {
            if !(r.severities.is_empty() || r.severities.iter().any(|s| s == severity)) {
                continue;
            }
            if ev == CommEvent::Updated && r.public_updates_only && !public {
                continue;
            }
            for name in &r.notify {
                let Some(d) = self.destinations.iter().find(|d| &d.name == name) else {
                    continue;
                };
                let wanted = match &r.events {
                    Some(list) => list.contains(&ev),
                    None => CommEvent::defaults(d.kind).contains(&ev),
                };
                if wanted && !out.iter().any(|o| o.name == d.name) {
                    out.push(d);
                }
            }
        }
        out
    }

    /// Does anything go out for this event at any severity?
    pub fn wants(&self, kind: &EventKind) -> Option<CommEvent> {
        if self.rules.is_empty() {
            return None;
        }
        CommEvent::of(kind)
    }

    /// Check names, addresses and references; severities become their keys.
    /// Errors name the field (`destinations[1].address`, `rules[0].notify[2]`).
    pub fn validate(&mut self, cat: &Catalog) -> Result<(), FieldError> {
        for (i, d) in self.destinations.iter().enumerate() {
            let f = |x: &str| format!("destinations[{i}].{x}");
            if !is_slug(&d.name) || d.name.contains([':', '/']) {
                return Err(FieldError::new(
                    f("name"),
                    "a destination name is 1-100 letters, digits, '-', '_' or '.'",
                ));
            }
            if self.destinations[..i].iter().any(|o| o.name == d.name) {
                return Err(FieldError::new(f("name"), format!("{:?} is defined twice", d.name)));
            }
            if let Err(want) = d.kind.check_address(&d.address) {
                return Err(FieldError::new(f("address"), format!("{:?} is not {want}", d.address)));
            }
        }
        for (i, r) in self.rules.iter_mut().enumerate() {
            if r.notify.is_empty() {
                return Err(FieldError::new(
                    format!("rules[{i}].notify"),
                    "name at least one destination",
                ));
            }
            for (j, n) in r.notify.iter().enumerate() {
                if !self.destinations.iter().any(|d| &d.name == n) {
                    return Err(FieldError::new(
                        format!("rules[{i}].notify[{j}]"),
                        format!("no destination named {n:?}"),
                    ));
                }
            }
            for (j, s) in r.severities.iter_mut().enumerate() {
                match cat.severities.find(s) {
                    Some(l) => *s = l.key.clone(),
                    None => {
                        return Err(FieldError::new(
                            format!("rules[{i}].severities[{j}]"),
                            format!("unknown severity {s:?}"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comms() -> Communication {
        let yaml = "destinations:\n  - {name: eng, kind: slack, address: \"#incidents\"}\n  - {name: execs, kind: email, address: execs@example.com}\n  - {name: pd, kind: pagerduty, address: 0123456789abcdef0123456789abcdef}\nrules:\n  - {severities: [P1], notify: [eng, execs, pd]}\n  - {severities: [SEV-2, SEV-3], notify: [eng]}\n  - {notify: [execs], events: [resolved], public_updates_only: true}\n";
        let mut c: Communication = serde_saphyr::from_str(yaml).unwrap();
        c.validate(&Catalog::default()).unwrap();
        c
    }

    fn names(v: Vec<&Destination>) -> Vec<&str> {
        v.into_iter().map(|d| d.name.as_str()).collect()
    }

    #[test]
    fn severity_decides_who_hears_what() {
        let c = comms();
        assert_eq!(c.rules[0].severities, vec!["SEV-1"], "aliases become keys");
        assert_eq!(
            names(c.audience("SEV-1", CommEvent::Declared, true)),
            vec!["eng", "execs", "pd"]
        );
        assert_eq!(names(c.audience("SEV-2", CommEvent::Declared, true)), vec!["eng"]);
        assert!(
            c.audience("SEV-4", CommEvent::Declared, true).is_empty(),
            "SEV-4: ticket only"
        );
        // Acknowledgements go to PagerDuty only; resolutions to execs from the catch-all rule.
        assert_eq!(names(c.audience("SEV-1", CommEvent::Acknowledged, true)), vec!["pd"]);
        assert_eq!(
            names(c.audience("SEV-3", CommEvent::Resolved, true)),
            vec!["eng", "execs"]
        );
        // A private update skips rules that want public updates only.
        assert_eq!(
            names(c.audience("SEV-1", CommEvent::Updated, false)),
            vec!["eng", "execs", "pd"]
        );
    }

    #[test]
    fn errors_name_the_field() {
        let bad = |yaml: &str| {
            let mut c: Communication = serde_saphyr::from_str(yaml).unwrap();
            c.validate(&Catalog::default()).unwrap_err().field
        };
        assert_eq!(
            bad("destinations:\n  - {name: a, kind: email, address: nope}\n"),
            "destinations[0].address"
        );
        assert_eq!(
            bad(
                "destinations:\n  - {name: a, kind: teams, address: \"https://x.example\"}\nrules:\n  - {notify: [a, b]}\n"
            ),
            "rules[0].notify[1]"
        );
        assert_eq!(
            bad(
                "destinations:\n  - {name: a, kind: teams, address: \"https://x.example\"}\nrules:\n  - {severities: [SEV-9], notify: [a]}\n"
            ),
            "rules[0].severities[0]"
        );
        assert_eq!(
            bad(
                "destinations:\n  - {name: a, kind: teams, address: \"https://x.example\"}\n  - {name: a, kind: teams, address: \"https://y.example\"}\n"
            ),
            "destinations[1].name"
        );
    }
}
