//! Commands and the decisions they lead to: `(incident, command, now) → events`.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::config::{Catalog, is_slug};
use crate::duration::to_signed;
use crate::error::DomainError;
use crate::event::EventKind;
use crate::incident::{FieldChange, Impact, Incident, limits};
use crate::lifecycle::Status;
use crate::severity::SeverityLevel;
use crate::wire::{DeclareIncident, IncidentPatch};

type Result<T> = std::result::Result<T, DomainError>;

/// A command on an existing incident.
#[derive(Debug, Clone)]
pub enum Command {
    Status {
        to: String,
        message: Option<String>,
    },
    Ack {
        message: Option<String>,
    },
    Reopen {
        to: Option<String>,
        reason: Option<String>,
    },
    Severity {
        to: String,
        reason: Option<String>,
    },
    Patch(Box<IncidentPatch>),
    Role {
        role: String,
        assignee: Option<String>,
    },
    Note {
        text: String,
    },
    /// Back to triggered; escalation resumes.
    Unack {
        reason: Option<String>,
    },
    /// Acknowledge until `until`; then page again.
    Snooze {
        until: Timestamp,
    },
    /// Hand the incident to these users and page them now.
    Reassign {
        users: Vec<String>,
        reason: Option<String>,
    },
    /// Page the next level of the escalation policy now.
    EscalateNow {
        reason: Option<String>,
    },
    /// Post a stakeholder update (optionally public, optionally moving the status forward).
    PostUpdate {
        message: String,
        public: bool,
        status: Option<String>,
    },
}

/// The longest a snooze may last.
pub const SNOOZE_MAX: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn unack_event(inc: &Incident, reason: Option<String>, now: Timestamp, cat: &Catalog) -> EventKind {
    let sev = cat.severities.find(&inc.severity);
    EventKind::Unacknowledged {
        reason,
        ack_deadline: after(now, sev.and_then(|l| l.ack_target)),
    }
}

/// How far in the future a caller may place `started_at`/`detected_at` (clock skew).
const FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;

fn text(field: &str, value: &str, max: usize, multiline: bool) -> Result<String> {
    let v = value.trim();
    if v.chars().count() > max {
        return Err(DomainError::invalid(field, format!("must be at most {max} characters")));
    }
    if v.chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t' || c == '\r')))
    {
        return Err(DomainError::invalid(field, "must not contain control characters"));
    }
    Ok(v.to_string())
}

fn required_text(field: &str, value: &str, max: usize) -> Result<String> {
    let v = text(field, value, max, false)?;
    if v.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    Ok(v)
}

fn optional_text(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>> {
    match value {
        None => Ok(None),
        Some(v) => {
            let v = text(field, v, max, true)?;
            Ok((!v.is_empty()).then_some(v))
        }
    }
}

fn person(field: &str, value: &str) -> Result<String> {
    required_text(field, value, limits::PERSON_MAX)
}

fn severity<'a>(cat: &'a Catalog, field: &str, key: &str) -> Result<&'a SeverityLevel> {
    cat.severities.find(key).ok_or_else(|| {
        DomainError::invalid(
            field,
            format!(
                "unknown severity {key:?}; expected one of: {}",
                cat.severities.keys().join(", ")
            ),
        )
    })
}

fn category(cat: &Catalog, field: &str, key: &str) -> Result<String> {
    cat.find_category(key).map(|c| c.key.clone()).ok_or_else(|| {
        DomainError::invalid(
            field,
            format!(
                "unknown category {key:?}; expected one of: {}",
                cat.categories
                    .iter()
                    .map(|c| c.key.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

fn services(cat: &Catalog, field: &str, list: &[String]) -> Result<Vec<String>> {
    if list.len() > limits::SERVICES_MAX {
        return Err(DomainError::invalid(
            field,
            format!("at most {} services", limits::SERVICES_MAX),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let s = s.trim();
        if !is_slug(s) {
            return Err(DomainError::invalid(
                f,
                "a service is 1-100 letters, digits, '-', '_', '.' or '/'",
            ));
        }
        let key = if cat.services.is_empty() {
            s.to_string()
        } else {
            cat.find_service(s).map(|d| d.key.clone()).ok_or_else(|| {
                DomainError::invalid(
                    f.clone(),
                    format!(
                        "unknown service {s:?}; expected one of: {}",
                        cat.services
                            .iter()
                            .map(|d| d.key.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?
        };
        if !out.contains(&key) {
            out.push(key);
        }
    }
    Ok(out)
}

fn impact(field: &str, i: &Impact) -> Result<Impact> {
    if let Some(p) = i.percent
        && !(p.is_finite() && (0.0..=100.0).contains(&p))
    {
        return Err(DomainError::invalid(
            format!("{field}.percent"),
            "must be between 0 and 100",
        ));
    }
    Ok(Impact {
        users_affected: i.users_affected,
        percent: i.percent,
        user_facing: optional_text(
            &format!("{field}.user_facing"),
            i.user_facing.as_deref(),
            limits::SHORT_TEXT_MAX,
        )?,
    })
}

fn labels(field: &str, l: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    if l.len() > limits::LABELS_MAX {
        return Err(DomainError::invalid(
            field,
            format!("at most {} labels", limits::LABELS_MAX),
        ));
    }
    let mut out = BTreeMap::new();
    for (k, v) in l {
        if !is_slug(k) {
            return Err(DomainError::invalid(
                format!("{field}.{k}"),
                "a label name is 1-100 letters, digits, '-', '_', '.' or '/'",
            ));
        }
        out.insert(
            k.clone(),
            text(&format!("{field}.{k}"), v, limits::LABEL_VALUE_MAX, false)?,
        );
    }
    Ok(out)
}

fn not_future(field: &str, t: Timestamp, now: Timestamp) -> Result<Timestamp> {
    if t.as_millisecond() > now.as_millisecond() + FUTURE_SKEW_MS {
        return Err(DomainError::invalid(field, "must not be in the future"));
    }
    Ok(crate::clock::truncate_ms(t))
}

fn after(base: Timestamp, d: Option<std::time::Duration>) -> Option<Timestamp> {
    d.and_then(|d| base.checked_add(to_signed(d)).ok())
}

fn roles(cat: &Catalog, field: &str, r: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (role, who) in r {
        let def = cat
            .find_role(role)
            .ok_or_else(|| unknown_role(cat, &format!("{field}.{role}"), role))?;
        out.insert(def.key.clone(), person(&format!("{field}.{role}"), who)?);
    }
    Ok(out)
}

fn unknown_role(cat: &Catalog, field: &str, role: &str) -> DomainError {
    DomainError::invalid(
        field,
        format!(
            "unknown role {role:?}; expected one of: {}",
            cat.roles.iter().map(|r| r.key.as_str()).collect::<Vec<_>>().join(", ")
        ),
    )
}

/// Validate a declaration and build the incident it creates, without its ID.
/// The store allocates the ID inside the transaction and calls [`declared`].
pub fn validate_declaration(req: &DeclareIncident, actor: &str, now: Timestamp, cat: &Catalog) -> Result<Incident> {
    let title = required_text("title", &req.title, limits::TITLE_MAX)?;
    let description =
        optional_text("description", req.description.as_deref(), limits::DESCRIPTION_MAX)?.unwrap_or_default();
    let sev = severity(
        cat,
        "severity",
        req.severity.as_deref().unwrap_or(&cat.default_severity),
    )?;
    let category = req
        .category
        .as_deref()
        .map(|c| category(cat, "category", c))
        .transpose()?;
    let services = services(cat, "services", &req.services)?;
    let impact = impact("impact", &req.impact.clone().unwrap_or_default())?;
    let workaround = optional_text("workaround", req.workaround.as_deref(), limits::TEXT_MAX)?;
    let labels = labels("labels", &req.labels)?;
    let detected_at = not_future("detected_at", req.detected_at.unwrap_or(now), now)?;
    let started_at = not_future("started_at", req.started_at.unwrap_or(detected_at), now)?;
    if started_at > detected_at {
        return Err(DomainError::invalid("started_at", "must not be after detected_at"));
    }
    let roles = roles(cat, "roles", &req.roles)?;
    let declared_by = person("declared_by", actor)?;
    let escalation_policy = match req.escalation_policy.as_deref().map(str::trim) {
        // The first affected service with a policy lends it.
        None | Some("") => services
            .iter()
            .find_map(|s| cat.find_service(s).and_then(|d| d.escalation_policy.clone())),
        Some(p) if crate::config::is_slug(p) && !p.contains('/') => Some(p.to_string()),
        Some(p) => {
            return Err(DomainError::invalid(
                "escalation_policy",
                format!("{p:?} is not a policy ID"),
            ));
        }
    };
    Ok(Incident {
        id: String::new(),
        title,
        description,
        severity: sev.key.clone(),
        category,
        status: Status::Triggered,
        services,
        impact,
        workaround,
        labels,
        started_at,
        detected_at,
        declared_at: now,
        declared_by,
        roles,
        private: req.private,
        acknowledged_at: None,
        mitigated_at: None,
        resolved_at: None,
        closed_at: None,
        ack_deadline: after(now, sev.ack_target),
        resolution_deadline: after(detected_at, sev.resolution_target),
        next_update_due: after(now, sev.update_cadence),
        reopen_count: 0,
        escalation_policy,
        assignees: vec![],
        snoozed_until: None,
        updates_posted: 0,
        update_overdue: false,
        updated_at: now,
        version: 1,
    })
}

/// The `declared` event for a validated incident and its allocated ID.
pub fn declared(mut incident: Incident, id: String) -> EventKind {
    incident.id = id;
    EventKind::Declared {
        incident: Box::new(incident),
    }
}

/// Decide what a command does to an incident. An empty list means "nothing
/// to do" (e.g. acknowledging an acknowledged incident).
pub fn decide(inc: &Incident, cmd: Command, now: Timestamp, cat: &Catalog) -> Result<Vec<EventKind>> {
    let cadence = cat.severities.find(&inc.severity).and_then(|l| l.update_cadence);
    match cmd {
        Command::Status { to, message } => {
            let to: Status = to.parse().map_err(|e: String| DomainError::invalid("status", e))?;
            let message = optional_text("message", message.as_deref(), limits::TEXT_MAX)?;
            if !inc.status.can_move_to(to) {
                return Err(DomainError::InvalidTransition {
                    from: inc.status,
                    to,
                    allowed: inc.status.allowed_next(),
                });
            }
            // A status change with a message is a stakeholder update: the cadence restarts.
            let next_update_due = if message.is_some() { after(now, cadence) } else { None };
            Ok(vec![EventKind::StatusChanged {
                from: inc.status,
                to,
                message,
                next_update_due,
            }])
        }
        Command::Ack { message } => {
            let message = optional_text("message", message.as_deref(), limits::TEXT_MAX)?;
            match inc.status {
                Status::Triggered => Ok(vec![EventKind::StatusChanged {
                    from: inc.status,
                    to: Status::Acknowledged,
                    message,
                    next_update_due: None,
                }]),
                s if s.is_open() => Ok(vec![]),
                s => Err(DomainError::Conflict(format!(
                    "incident {} is {s}; reopen it before acknowledging",
                    inc.id
                ))),
            }
        }
        Command::Reopen { to, reason } => {
            let reason = optional_text("reason", reason.as_deref(), limits::TEXT_MAX)?;
            let targets = inc.status.reopen_targets();
            let to = match to {
                Some(t) => t.parse().map_err(|e: String| DomainError::invalid("status", e))?,
                None if inc.acknowledged_at.is_some() => Status::Investigating,
                None => Status::Triggered,
            };
            if !targets.contains(&to) {
                return Err(DomainError::InvalidTransition {
                    from: inc.status,
                    to,
                    allowed: targets,
                });
            }
            let sev = cat.severities.find(&inc.severity);
            let ack_deadline = if to == Status::Triggered {
                after(now, sev.and_then(|l| l.ack_target))
            } else {
                None
            };
            Ok(vec![EventKind::Reopened {
                from: inc.status,
                to,
                reason,
                ack_deadline,
                next_update_due: after(now, cadence),
            }])
        }
        Command::Severity { to, reason } => {
            let level = severity(cat, "severity", &to)?;
            let reason = optional_text("reason", reason.as_deref(), limits::TEXT_MAX)?;
            if level.key == inc.severity {
                return Err(DomainError::Conflict(format!(
                    "incident {} is already {}",
                    inc.id, level.key
                )));
            }
            let ack_deadline = if inc.acknowledged_at.is_none() {
                after(inc.declared_at, level.ack_target)
            } else {
                inc.ack_deadline
            };
            let next_update_due = if inc.status.is_open() {
                match (inc.next_update_due, after(now, level.update_cadence)) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => b.or(a),
                }
            } else {
                None
            };
            Ok(vec![EventKind::SeverityChanged {
                from: inc.severity.clone(),
                to: level.key.clone(),
                reason,
                ack_deadline,
                resolution_deadline: after(inc.detected_at, level.resolution_target),
                next_update_due,
            }])
        }
        Command::Patch(p) => patch(inc, &p, now, cat),
        Command::Role { role, assignee } => {
            let def = cat.find_role(&role).ok_or_else(|| unknown_role(cat, "role", &role))?;
            let after_who = assignee.as_deref().map(|a| person("assignee", a)).transpose()?;
            let before = inc.roles.get(&def.key).cloned();
            if before == after_who {
                return Ok(vec![]);
            }
            Ok(vec![EventKind::RoleAssigned {
                role: def.key.clone(),
                before,
                after: after_who,
            }])
        }
        Command::Note { text: t } => {
            let t = text("text", &t, limits::TEXT_MAX, true)?;
            if t.is_empty() {
                return Err(DomainError::invalid("text", "must not be empty"));
            }
            Ok(vec![EventKind::NoteAdded { text: t }])
        }
        Command::Unack { reason } => {
            let reason = optional_text("reason", reason.as_deref(), limits::TEXT_MAX)?;
            if inc.status != Status::Acknowledged {
                return Err(DomainError::Conflict(format!(
                    "incident {} is {}; only an acknowledged incident can be unacknowledged",
                    inc.id, inc.status
                )));
            }
            Ok(vec![unack_event(inc, reason, now, cat)])
        }
        Command::Snooze { until } => {
            if until <= now {
                return Err(DomainError::invalid("until", "must be in the future"));
            }
            if after(now, Some(SNOOZE_MAX)).is_some_and(|max| until > max) {
                return Err(DomainError::invalid("until", "a snooze lasts at most 24 hours"));
            }
            if !matches!(inc.status, Status::Triggered | Status::Acknowledged) {
                return Err(DomainError::Conflict(format!(
                    "incident {} is {}; only triggered or acknowledged incidents can be snoozed",
                    inc.id, inc.status
                )));
            }
            Ok(vec![EventKind::Snoozed { until }])
        }
        Command::Reassign { users, reason } => {
            let reason = optional_text("reason", reason.as_deref(), limits::TEXT_MAX)?;
            if users.is_empty() || users.len() > 20 {
                return Err(DomainError::invalid("users", "name 1 to 20 users"));
            }
            for (i, u) in users.iter().enumerate() {
                if !is_slug(u) || u.contains('/') {
                    return Err(DomainError::invalid(
                        format!("users[{i}]"),
                        format!("{u:?} is not a user ID"),
                    ));
                }
            }
            if !inc.status.is_open() {
                return Err(DomainError::Conflict(format!(
                    "incident {} is {}; reopen it before reassigning",
                    inc.id, inc.status
                )));
            }
            let mut out = Vec::new();
            if inc.status == Status::Acknowledged {
                out.push(unack_event(inc, None, now, cat));
            }
            out.push(EventKind::Reassigned { users, reason });
            Ok(out)
        }
        Command::PostUpdate {
            message,
            public,
            status,
        } => {
            let message = text("message", &message, limits::TEXT_MAX, true)?;
            if message.is_empty() {
                return Err(DomainError::invalid("message", "must not be empty"));
            }
            if !inc.status.is_open() && inc.status != Status::Resolved {
                return Err(DomainError::Conflict(format!(
                    "incident {} is {}; reopen it before posting updates",
                    inc.id, inc.status
                )));
            }
            let mut out = Vec::new();
            let mut after_status = inc.status;
            if let Some(to) = status {
                let to: Status = to.parse().map_err(|e: String| DomainError::invalid("status", e))?;
                if to != inc.status {
                    if !inc.status.can_move_to(to) {
                        return Err(DomainError::InvalidTransition {
                            from: inc.status,
                            to,
                            allowed: inc.status.allowed_next(),
                        });
                    }
                    out.push(EventKind::StatusChanged {
                        from: inc.status,
                        to,
                        message: None,
                        next_update_due: None,
                    });
                    after_status = to;
                }
            }
            let next_update_due = if after_status.is_open() {
                after(now, cadence)
            } else {
                None
            };
            out.push(EventKind::UpdatePosted {
                number: inc.updates_posted + 1,
                message,
                public,
                status: after_status,
                next_update_due,
            });
            Ok(out)
        }
        Command::EscalateNow { reason } => {
            let reason = optional_text("reason", reason.as_deref(), limits::TEXT_MAX)?;
            if !inc.status.is_open() {
                return Err(DomainError::Conflict(format!(
                    "incident {} is {}; reopen it before escalating",
                    inc.id, inc.status
                )));
            }
            if inc.escalation_policy.is_none() {
                return Err(DomainError::Conflict(format!(
                    "incident {} has no escalation policy; reassign it to page someone",
                    inc.id
                )));
            }
            let mut out = Vec::new();
            if inc.status == Status::Acknowledged {
                out.push(unack_event(inc, None, now, cat));
            }
            out.push(EventKind::EscalationRequested { reason });
            Ok(out)
        }
    }
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn patch(inc: &Incident, p: &IncidentPatch, now: Timestamp, cat: &Catalog) -> Result<Vec<EventKind>> {
    if p.severity.is_some() {
        return Err(DomainError::invalid(
            "severity",
            "change severity with POST /api/v1/incidents/{id}/severity",
        ));
    }
    if p.status.is_some() {
        return Err(DomainError::invalid(
            "status",
            "change status with POST /api/v1/incidents/{id}/status",
        ));
    }
    let mut changes = Vec::new();
    let mut push = |field: &str, before: serde_json::Value, after: serde_json::Value| {
        if before != after {
            changes.push(FieldChange {
                field: field.into(),
                before,
                after,
            });
        }
    };
    if let Some(t) = &p.title {
        push(
            "title",
            json(&inc.title),
            json(&required_text("title", t, limits::TITLE_MAX)?),
        );
    }
    if let Some(d) = &p.description {
        let d = optional_text("description", Some(d), limits::DESCRIPTION_MAX)?.unwrap_or_default();
        push("description", json(&inc.description), json(&d));
    }
    if let Some(c) = &p.category {
        let c = c.as_deref().map(|c| category(cat, "category", c)).transpose()?;
        push("category", json(&inc.category), json(&c));
    }
    if let Some(s) = &p.services {
        push("services", json(&inc.services), json(&services(cat, "services", s)?));
    }
    if let Some(i) = &p.impact {
        push("impact", json(&inc.impact), json(&impact("impact", i)?));
    }
    if let Some(w) = &p.workaround {
        let w = optional_text("workaround", w.as_deref(), limits::TEXT_MAX)?;
        push("workaround", json(&inc.workaround), json(&w));
    }
    if let Some(l) = &p.labels {
        push("labels", json(&inc.labels), json(&labels("labels", l)?));
    }
    let detected = p.detected_at.map(|t| not_future("detected_at", t, now)).transpose()?;
    let started = p.started_at.map(|t| not_future("started_at", t, now)).transpose()?;
    if started.unwrap_or(inc.started_at) > detected.unwrap_or(inc.detected_at) {
        return Err(DomainError::invalid(
            if started.is_some() { "started_at" } else { "detected_at" },
            "started_at must not be after detected_at",
        ));
    }
    if let Some(t) = started {
        push("started_at", json(&inc.started_at), json(&t));
    }
    if let Some(t) = detected {
        push("detected_at", json(&inc.detected_at), json(&t));
    }
    if let Some(b) = p.private {
        push("private", json(&inc.private), json(&b));
    }
    if changes.is_empty() {
        return Ok(vec![]);
    }
    Ok(vec![EventKind::FieldsChanged { changes }])
}

/// Set one patchable field from its JSON value (used when replaying `fields_changed`).
pub fn set_field(inc: &mut Incident, field: &str, v: &serde_json::Value) {
    fn from<T: serde::de::DeserializeOwned + Default>(v: &serde_json::Value) -> T {
        serde_json::from_value(v.clone()).unwrap_or_default()
    }
    match field {
        "title" => inc.title = from(v),
        "description" => inc.description = from(v),
        "category" => inc.category = from(v),
        "services" => inc.services = from(v),
        "impact" => inc.impact = from(v),
        "workaround" => inc.workaround = from(v),
        "labels" => inc.labels = from(v),
        "private" => inc.private = from(v),
        "started_at" => {
            if let Ok(t) = serde_json::from_value(v.clone()) {
                inc.started_at = t;
            }
        }
        "detected_at" => {
            if let Ok(t) = serde_json::from_value(v.clone()) {
                inc.detected_at = t;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{GENESIS_HASH, StoredEvent, TimelineEvent, replay, verify_chain};

    fn now() -> Timestamp {
        "2026-11-23T10:00:00Z".parse().unwrap()
    }

    fn declare(req: DeclareIncident) -> Incident {
        let inc = validate_declaration(&req, "alice", now(), &Catalog::default()).unwrap();
        match declared(inc, "INC-2026-11-23-001".into()) {
            EventKind::Declared { incident } => *incident,
            _ => unreachable!(),
        }
    }

    fn req(title: &str, sev: &str) -> DeclareIncident {
        DeclareIncident {
            title: title.into(),
            severity: Some(sev.into()),
            ..Default::default()
        }
    }

    #[test]
    fn declaring_sets_seed_003_deadlines() {
        let inc = declare(req("API down", "P1"));
        assert_eq!(inc.severity, "SEV-1");
        assert_eq!(inc.status, Status::Triggered);
        assert_eq!(inc.ack_deadline.unwrap().to_string(), "2026-11-23T10:05:00Z");
        assert_eq!(inc.next_update_due.unwrap().to_string(), "2026-11-23T10:15:00Z");
        assert_eq!(inc.resolution_deadline.unwrap().to_string(), "2026-11-23T11:00:00Z");
    }

    #[test]
    fn bad_declarations_name_the_field() {
        let cat = Catalog::default();
        let check = |r: DeclareIncident, field: &str| match validate_declaration(&r, "alice", now(), &cat) {
            Err(DomainError::Invalid(e)) => assert_eq!(e.field, field, "{e}"),
            other => panic!("expected invalid {field}, got {other:?}"),
        };
        check(req("", "SEV-1"), "title");
        check(req("   ", "SEV-1"), "title");
        check(req(&"x".repeat(2000), "SEV-1"), "title");
        check(req("ok", "SEV-9"), "severity");
        check(
            DeclareIncident {
                category: Some("weather".into()),
                ..req("ok", "SEV-1")
            },
            "category",
        );
        check(
            DeclareIncident {
                services: vec!["has space".into()],
                ..req("ok", "SEV-1")
            },
            "services[0]",
        );
        check(
            DeclareIncident {
                impact: Some(Impact {
                    percent: Some(140.0),
                    ..Default::default()
                }),
                ..req("ok", "SEV-1")
            },
            "impact.percent",
        );
        check(
            DeclareIncident {
                started_at: Some("2026-11-24T10:00:00Z".parse().unwrap()),
                ..req("ok", "SEV-1")
            },
            "started_at",
        );
        check(
            DeclareIncident {
                roles: [("janitor".to_string(), "bob".to_string())].into(),
                ..req("ok", "SEV-1")
            },
            "roles.janitor",
        );
    }

    #[test]
    fn invalid_transition_lists_the_allowed_ones() {
        let mut inc = declare(req("x", "SEV-2"));
        inc.status = Status::Monitoring;
        let err = decide(
            &inc,
            Command::Status {
                to: "investigating".into(),
                message: None,
            },
            now(),
            &Catalog::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot move incident from monitoring to investigating; allowed: resolved"
        );
    }

    #[test]
    fn ack_is_idempotent_while_open_and_refused_when_resolved() {
        let cat = Catalog::default();
        let mut inc = declare(req("x", "SEV-2"));
        assert_eq!(
            decide(&inc, Command::Ack { message: None }, now(), &cat).unwrap().len(),
            1
        );
        inc.status = Status::Investigating;
        assert!(
            decide(&inc, Command::Ack { message: None }, now(), &cat)
                .unwrap()
                .is_empty()
        );
        inc.status = Status::Resolved;
        assert!(matches!(
            decide(&inc, Command::Ack { message: None }, now(), &cat),
            Err(DomainError::Conflict(_))
        ));
    }

    /// Drive a whole incident through decide → seal → replay and verify the chain.
    #[test]
    fn timeline_replays_to_the_same_incident_and_verifies() {
        let cat = Catalog::default();
        let mut t = now();
        let first = declared(
            validate_declaration(&req("API down", "SEV-2"), "alice", t, &cat).unwrap(),
            "INC-1".into(),
        );
        let mut events = vec![TimelineEvent::seal("INC-1", 1, t, "alice", first, GENESIS_HASH)];
        let cmds = vec![
            Command::Ack {
                message: Some("on it".into()),
            },
            Command::Role {
                role: "ic".into(),
                assignee: Some("alice".into()),
            },
            Command::Severity {
                to: "SEV-1".into(),
                reason: Some("all users".into()),
            },
            Command::Status {
                to: "identified".into(),
                message: Some("bad deploy".into()),
            },
            Command::Patch(Box::new(IncidentPatch {
                workaround: Some(Some("retry".into())),
                ..Default::default()
            })),
            Command::Status {
                to: "resolved".into(),
                message: None,
            },
            Command::Reopen {
                to: None,
                reason: Some("came back".into()),
            },
            Command::Note {
                text: "rolled back again".into(),
            },
        ];
        let mut inc = replay(&events).unwrap();
        for cmd in cmds {
            t = t.checked_add(jiff::SignedDuration::from_mins(3)).unwrap();
            for kind in decide(&inc, cmd, t, &cat).unwrap() {
                let prev = events.last().unwrap().hash.clone();
                let e = TimelineEvent::seal("INC-1", events.len() as u64 + 1, t, "alice", kind, &prev);
                inc = crate::event::apply(Some(inc), &e).unwrap();
                events.push(e);
            }
        }
        assert_eq!(replay(&events).unwrap(), inc);
        assert_eq!(inc.status, Status::Investigating);
        assert_eq!(inc.severity, "SEV-1");
        assert_eq!(inc.reopen_count, 1);
        assert_eq!(inc.workaround.as_deref(), Some("retry"));
        assert_eq!(inc.roles["incident_commander"], "alice");
        assert!(inc.resolved_at.is_none() && inc.acknowledged_at.is_some());
        assert_eq!(inc.version, 9);

        let stored: Vec<StoredEvent> = events
            .iter()
            .map(|e| StoredEvent {
                incident_id: e.incident_id.clone(),
                seq: e.seq,
                at: e.at,
                actor: e.actor.clone(),
                kind_json: serde_json::to_string(&e.kind).unwrap(),
                prev_hash: e.prev_hash.clone(),
                hash: e.hash.clone(),
            })
            .collect();
        let (broken, head) = verify_chain("INC-1", &stored);
        assert!(broken.is_none());
        assert_eq!(head.as_deref(), Some(events.last().unwrap().hash.as_str()));

        let mut tampered = stored.clone();
        tampered[3].kind_json = tampered[3].kind_json.replace("SEV-1", "SEV-4");
        let (broken, _) = verify_chain("INC-1", &tampered);
        assert_eq!(broken.unwrap().seq, 4);
    }
}
