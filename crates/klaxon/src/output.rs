//! Human output: tables and incident cards.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use jiff::Timestamp;
use klaxon_domain::wire::TokenInfo;
use klaxon_domain::{Incident, TimelineEvent, event::EventKind};

pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    t
}

pub fn time(t: Option<Timestamp>) -> String {
    t.map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

pub fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub fn incidents(items: &[Incident]) {
    let mut t = table(&["ID", "SEV", "STATUS", "TITLE", "SERVICES", "STARTED", "IC"]);
    for i in items {
        t.add_row(vec![
            i.id.clone(),
            i.severity.clone(),
            i.status.to_string(),
            i.title.clone(),
            i.services.join(", "),
            time(Some(i.started_at)),
            i.roles.get("incident_commander").cloned().unwrap_or_else(|| "-".into()),
        ]);
    }
    println!("{t}");
}

pub fn incident(i: &Incident) {
    let mut t = table(&["FIELD", "VALUE"]);
    let mut row = |k: &str, v: String| {
        t.add_row(vec![k.to_string(), v]);
    };
    row("id", i.id.clone());
    row("title", i.title.clone());
    row("severity", i.severity.clone());
    row("status", format!("{} ({})", i.status, i.status.public_word()));
    row("category", i.category.clone().unwrap_or_else(|| "-".into()));
    row(
        "services",
        if i.services.is_empty() {
            "-".into()
        } else {
            i.services.join(", ")
        },
    );
    if !i.description.is_empty() {
        row("description", i.description.clone());
    }
    if !i.impact.is_empty() {
        let mut parts = Vec::new();
        if let Some(n) = i.impact.users_affected {
            parts.push(format!("{n} users"));
        }
        if let Some(p) = i.impact.percent {
            parts.push(format!("{p}% of users"));
        }
        if let Some(u) = &i.impact.user_facing {
            parts.push(u.clone());
        }
        row("impact", parts.join("; "));
    }
    if let Some(w) = &i.workaround {
        row("workaround", w.clone());
    }
    for (role, who) in &i.roles {
        row(&format!("role: {role}"), who.clone());
    }
    if !i.labels.is_empty() {
        row(
            "labels",
            i.labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    row("started", time(Some(i.started_at)));
    row("detected", time(Some(i.detected_at)));
    row(
        "declared",
        format!("{} by {}", time(Some(i.declared_at)), i.declared_by),
    );
    row("acknowledged", time(i.acknowledged_at));
    row("mitigated", time(i.mitigated_at));
    row("resolved", time(i.resolved_at));
    row("ack deadline", time(i.ack_deadline));
    row("resolution deadline", time(i.resolution_deadline));
    row("next update due", time(i.next_update_due));
    if i.private {
        row("private", "yes".into());
    }
    println!("{t}");
}

/// "1 alert", "3 alerts".
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The first few items, then how many more.
fn shortlist(items: impl ExactSizeIterator<Item = String>) -> String {
    const SHOWN: usize = 5;
    let more = items.len().saturating_sub(SHOWN);
    let mut text = items.take(SHOWN).collect::<Vec<_>>().join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

pub fn describe(kind: &EventKind) -> String {
    match kind {
        EventKind::Declared { incident } => {
            format!("declared {} {}: {}", incident.severity, incident.id, incident.title)
        }
        EventKind::StatusChanged { from, to, message, .. } => {
            format!(
                "status {from} → {to}{}",
                message.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
            )
        }
        EventKind::Reopened { from, to, reason, .. } => {
            format!(
                "reopened {from} → {to}{}",
                reason.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
            )
        }
        EventKind::SeverityChanged { from, to, reason, .. } => {
            format!(
                "severity {from} → {to}{}",
                reason.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
            )
        }
        EventKind::FieldsChanged { changes } => {
            let list: Vec<String> = changes
                .iter()
                .map(|c| format!("{}: {} → {}", c.field, c.before, c.after))
                .collect();
            format!("updated {}", list.join("; "))
        }
        EventKind::RoleAssigned { role, before, after } => match (before, after) {
            (_, Some(a)) => format!(
                "{role} → {a}{}",
                before.as_ref().map(|b| format!(" (was {b})")).unwrap_or_default()
            ),
            (Some(b), None) => format!("{role} unassigned (was {b})"),
            (None, None) => format!("{role} unassigned"),
        },
        EventKind::NoteAdded { text } => format!("note: {text}"),
        EventKind::AlertFired {
            alert_id,
            integration,
            summary,
            severity,
            refired,
            ..
        } => format!(
            "alert #{alert_id} {} from {integration}: {summary}{}",
            if *refired { "fired again" } else { "fired" },
            severity.as_ref().map(|s| format!(" ({s})")).unwrap_or_default()
        ),
        EventKind::AlertsFired { alerts } => {
            let list = alerts.iter().map(|a| {
                format!(
                    "#{} {}{}",
                    a.alert_id,
                    a.summary,
                    a.severity.as_ref().map(|s| format!(" ({s})")).unwrap_or_default()
                )
            });
            let from: Vec<&str> = alerts.iter().map(|a| a.integration.as_str()).collect();
            let from = match from.first() {
                Some(f) if from.iter().all(|x| x == f) => format!(" from {f}"),
                _ => String::new(),
            };
            let again = alerts.iter().filter(|a| a.refired).count();
            let again = if again > 0 {
                format!(", {again} firing again")
            } else {
                String::new()
            };
            format!(
                "{} fired{from}{again}: {}",
                count(alerts.len(), "alert"),
                shortlist(list)
            )
        }
        EventKind::AlertsRepeated { alerts } => {
            let list = alerts.iter().map(|a| format!("#{} ({} received)", a.alert_id, a.count));
            format!("{} repeated: {}", count(alerts.len(), "alert"), shortlist(list))
        }
        EventKind::AlertsResolved { alerts } => {
            let list = alerts.iter().map(|a| format!("#{}", a.alert_id));
            format!("{} resolved: {}", count(alerts.len(), "alert"), shortlist(list))
        }
        EventKind::AlertRepeated { alert_id, count, .. } => format!("alert #{alert_id} repeated ({count} received)"),
        EventKind::AlertResolved { alert_id, .. } => format!("alert #{alert_id} resolved"),
        EventKind::AlertFlapping { alert_id, flapping, .. } => {
            if *flapping {
                format!("alert #{alert_id} is flapping; it no longer changes the incident until stable")
            } else {
                format!("alert #{alert_id} is stable again")
            }
        }
        EventKind::Paged {
            reason: _,
            policy,
            level,
            round,
            level_name,
            users,
            notifications,
            unreachable,
        } => {
            let what = match (policy, level) {
                (Some(p), l) if *l > 0 => format!(
                    "{p} level {l}{}{}",
                    if level_name.is_empty() {
                        String::new()
                    } else {
                        format!(" ({level_name})")
                    },
                    if *round > 1 {
                        format!(", round {round}")
                    } else {
                        String::new()
                    }
                ),
                _ if level_name.is_empty() => "reassigned".to_string(),
                _ => level_name.clone(),
            };
            let nobody = if unreachable.is_empty() {
                String::new()
            } else {
                format!("; unreachable: {}", unreachable.join(", "))
            };
            let who = if users.is_empty() {
                "nobody".to_string()
            } else {
                users.join(", ")
            };
            format!("paged {who} — {what}, {notifications} notifications{nobody}")
        }
        EventKind::EscalationExhausted { policy } => format!(
            "escalation policy {} ran out of levels without an acknowledgement",
            policy.as_deref().unwrap_or("-")
        ),
        EventKind::Unacknowledged { reason, .. } => format!(
            "unacknowledged{}",
            reason.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
        ),
        EventKind::Snoozed { until } => format!("snoozed until {until}"),
        EventKind::UpdatePosted {
            number,
            message,
            public,
            ..
        } => format!("update #{number}{}: {message}", if *public { " (public)" } else { "" }),
        EventKind::UpdateOverdue { due } => format!("stakeholder update overdue (was due {due})"),
        EventKind::EscalationRequested { reason } => format!(
            "escalation to the next level requested{}",
            reason.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
        ),
        EventKind::Reassigned { users, reason } => format!(
            "reassigned to {}{}",
            users.join(", "),
            reason.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
        ),
        EventKind::Notified {
            user,
            channel,
            contact,
            attempts,
            delivered,
            error,
            retry_at,
            ..
        } => {
            if *delivered {
                format!("notified {user} by {channel} ({contact}) after {attempts} attempt(s)")
            } else if let Some(at) = retry_at {
                format!(
                    "attempt {attempts} to notify {user} by {channel} ({contact}) failed: {}; next try {at}",
                    error.as_deref().unwrap_or("unknown error")
                )
            } else {
                format!(
                    "gave up notifying {user} by {channel} ({contact}) after {attempts} attempt(s): {}",
                    error.as_deref().unwrap_or("unknown error")
                )
            }
        }
    }
}

pub fn timeline(events: &[TimelineEvent]) {
    let mut t = table(&["#", "TIME", "ACTOR", "EVENT"]);
    for e in events {
        t.add_row(vec![
            e.seq.to_string(),
            e.at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            e.actor.clone(),
            describe(&e.kind),
        ]);
    }
    println!("{t}");
}

pub fn tokens(items: &[TokenInfo]) {
    let mut t = table(&["ID", "NAME", "ROLE", "PREFIX", "CREATED", "REVOKED"]);
    for tok in items {
        t.add_row(vec![
            tok.id.clone(),
            tok.name.clone(),
            tok.role.as_str().to_string(),
            format!("{}…", tok.prefix),
            time(Some(tok.created_at)),
            time(tok.revoked_at),
        ]);
    }
    println!("{t}");
}

#[cfg(test)]
mod tests {
    use klaxon_domain::event::{FiredAlert, ResolvedAlert};

    use super::*;

    #[test]
    fn batched_alert_events_read_as_one_line() {
        let fired = |id: i64, refired: bool| FiredAlert {
            alert_id: id,
            dedup_key: format!("fp-{id}"),
            integration: "prom".into(),
            labels: Default::default(),
            refired,
            severity: (id == 1).then(|| "critical".to_string()),
            summary: format!("disk {id} full"),
        };
        let seven = EventKind::AlertsFired {
            alerts: (1..=7).map(|i| fired(i, i == 7)).collect(),
        };
        assert_eq!(
            describe(&seven),
            "7 alerts fired from prom, 1 firing again: #1 disk 1 full (critical), #2 disk 2 full, \
             #3 disk 3 full, #4 disk 4 full, #5 disk 5 full and 2 more"
        );
        let one = EventKind::AlertsResolved {
            alerts: vec![ResolvedAlert {
                alert_id: 9,
                dedup_key: "fp-9".into(),
            }],
        };
        assert_eq!(describe(&one), "1 alert resolved: #9");
    }
}
