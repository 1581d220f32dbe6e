//! Firing an escalation step: who the level's targets are right now, and the
//! notifications their rules ask for.

use jiff::{SignedDuration, Timestamp};
use klaxon_domain::engine::{Step, step};
use klaxon_domain::escalation::{EscalationPolicy, EscalationTarget};
use klaxon_domain::message::{Envelope, EnvelopeIncident, EnvelopeUser};
use klaxon_domain::paging_rules::PagingRule;
use klaxon_domain::people::{Team, User};
use klaxon_domain::templates::{Rendered, TemplateContext, Templates};
use klaxon_domain::{EventKind, Incident, Status};
use klaxon_store::{ClaimedTimer, Collection, NewNotification, StepOutcome, Store, StoreError, TimerNext};

/// What firing a timer needs besides the store.
pub struct Fire<'a> {
    pub public_url: Option<&'a str>,
    pub templates: &'a Templates,
    /// Base URL of the public status page (links for subscribers).
    pub status_page_url: Option<&'a str>,
}

/// Users a level's targets resolve to at `now`, in order, without repeats,
/// and the targets that reached nobody.
pub async fn resolve_targets(
    store: &Store,
    targets: &[EscalationTarget],
    now: Timestamp,
) -> Result<(Vec<User>, Vec<String>), StoreError> {
    let mut ids: Vec<String> = Vec::new();
    let mut unreachable = Vec::new();
    for t in targets {
        match t {
            EscalationTarget::User(id) => ids.push(id.clone()),
            EscalationTarget::Team(id) => match store.document::<Team>(Collection::Teams, id).await? {
                Some(team) if !team.members.is_empty() => ids.extend(team.members),
                Some(_) => unreachable.push(format!("team {id} has no members")),
                None => unreachable.push(format!("team {id} does not exist")),
            },
            EscalationTarget::Schedule { id, role } => {
                let role = role.as_deref().unwrap_or("primary");
                let who = match store.schedule(id, now).await? {
                    Some(s) => s
                        .spec
                        .plan(role, &s.overrides)
                        .and_then(|p| p.who_at(now).map(str::to_string)),
                    None => {
                        unreachable.push(format!("schedule {id} does not exist"));
                        continue;
                    }
                };
                match who {
                    Some(u) => ids.push(u),
                    None => unreachable.push(format!("nobody is on call for {id} ({role})")),
                }
            }
        }
    }
    let mut users = Vec::new();
    for id in ids {
        if users.iter().any(|u: &User| u.id == id) {
            continue;
        }
        match store.document::<User>(Collection::Users, &id).await? {
            Some(u) => users.push(u),
            None => unreachable.push(format!("user {id} does not exist")),
        }
    }
    Ok((users, unreachable))
}

/// Why people are paged.
pub struct PageContext<'a> {
    pub inc: &'a Incident,
    /// `incident.paged` or `incident.update_due`.
    pub event_type: &'static str,
    /// `escalation`, `reassigned`, `rule` or `update_reminder`.
    pub reason: &'a str,
    /// The level's or the rule's name.
    pub label: String,
    pub policy: Option<&'a EscalationPolicy>,
    pub step: Option<Step>,
    /// Makes keys unique per firing: the timer's due time.
    pub firing: i64,
    pub public_url: Option<&'a str>,
    pub now: Timestamp,
    /// An escalation forced by a responder (`incident escalate`).
    pub forced: bool,
    /// Text for the template's `message` (e.g. the reason given for escalating).
    pub note: Option<String>,
    pub templates: &'a Templates,
}

/// The message of a page: the Initial Incident Notification for a first
/// page, the Escalation Request once it escalates, an internal update for
/// an update reminder.
fn page_message(cx: &PageContext<'_>) -> Rendered {
    let escalated = cx.step.is_some_and(|s| s.level > 0 || s.round > 1) || cx.forced;
    let (name, text) = match cx.reason {
        "update_reminder" => (
            "internal-update",
            Some(format!(
                "A stakeholder update is due{}",
                cx.inc
                    .next_update_due
                    .map(|d| format!(" at {}", d.strftime("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_default()
            )),
        ),
        "escalation" if escalated => ("escalation-request", cx.note.clone()),
        _ => ("initial-notification", cx.note.clone()),
    };
    let tcx = TemplateContext::new(
        cx.inc,
        &[],
        text,
        cx.inc.updates_posted,
        cx.now,
        EnvelopeIncident::of(cx.inc, cx.public_url).url,
    );
    cx.templates.render_or_plain(name, &tcx)
}

/// One notification per user and notification rule (every contact method at
/// once when the user has no rules). Returns the notifications and the users
/// who have no way to be reached.
pub fn notifications_for(users: &[User], cx: &PageContext<'_>) -> (Vec<NewNotification>, Vec<String>) {
    let mut out = Vec::new();
    let mut unreachable = Vec::new();
    let inc = cx.inc;
    let message = page_message(cx);
    for u in users {
        let rules: Vec<(String, u32)> = if u.notification_rules.is_empty() {
            u.contact_methods.iter().map(|c| (c.name.clone(), 0)).collect()
        } else {
            u.notification_rules
                .iter()
                .map(|r| (r.contact.clone(), r.after_minutes))
                .collect()
        };
        if rules.is_empty() {
            unreachable.push(format!("user {} has no contact methods", u.id));
        }
        for (i, (contact, after)) in rules.into_iter().enumerate() {
            let Some(c) = u.contact_methods.iter().find(|c| c.name == contact) else {
                unreachable.push(format!("user {} has no contact method {contact}", u.id));
                continue;
            };
            let level = cx.step.map(|s| s.level as u32 + 1).unwrap_or(0);
            let key = format!("{}:{}:{}:{}:{}:{i}", inc.id, cx.reason, cx.firing, level, u.id);
            let body = Envelope {
                event_type: cx.event_type.to_string(),
                idempotency_key: key.clone(),
                incident: EnvelopeIncident::of(inc, cx.public_url),
                message: message.clone(),
                sent_at: cx.now,
                reason: cx.reason.to_string(),
                user: Some(EnvelopeUser {
                    id: u.id.clone(),
                    name: u.name.clone(),
                    contact: c.name.clone(),
                }),
                policy: cx.policy.map(|p| p.id.clone()),
                level: Some(level),
                level_name: Some(cx.label.clone()),
                round: cx.step.map(|s| s.round),
                update_due: inc.next_update_due,
                destination: None,
                unsubscribe_url: None,
            };
            out.push(NewNotification {
                idempotency_key: key,
                user_id: u.id.clone(),
                channel: c.kind.as_str().to_string(),
                contact: c.name.clone(),
                address: c.address.clone(),
                body: body.to_json(),
                due_at: cx
                    .now
                    .checked_add(SignedDuration::from_mins(after as i64))
                    .unwrap_or(cx.now),
                cancel_on_ack: after > 0,
                message: false,
            });
        }
    }
    (out, unreachable)
}

fn later(now: Timestamp, minutes: u32) -> Option<Timestamp> {
    now.checked_add(SignedDuration::from_mins(minutes as i64)).ok()
}

/// Decide what a due escalation timer does. `None` when the incident is gone.
pub async fn plan(
    store: &Store,
    t: &ClaimedTimer,
    inc: &Incident,
    env: &Fire<'_>,
    now: Timestamp,
) -> Result<StepOutcome, StoreError> {
    let policy: Option<EscalationPolicy> = match &inc.escalation_policy {
        Some(id) => store.document(Collection::EscalationPolicies, id).await?,
        None => None,
    };
    let paused = |step| StepOutcome {
        events: vec![],
        notifications: vec![],
        next: TimerNext { step, due_at: None },
    };
    if !inc.status.is_open() {
        return Ok(paused(t.step));
    }
    // A reassignment: page these users, then go on with the policy.
    if let Some(ids) = &t.page {
        let targets: Vec<EscalationTarget> = ids.iter().map(|u| EscalationTarget::User(u.clone())).collect();
        let (events, notes) = page_once(
            store,
            inc,
            &targets,
            ("incident.paged", "reassigned", "reassigned".into()),
            t,
            env,
            now,
        )
        .await?;
        let wait = policy
            .as_ref()
            .and_then(|p| step(p, t.step.saturating_sub(1)))
            .map(|s| s.delay_minutes);
        let due = match (inc.status, wait) {
            (Status::Triggered, Some(w)) => later(now, w),
            _ => None,
        };
        return Ok(StepOutcome {
            events,
            notifications: notes,
            next: TimerNext {
                step: t.step,
                due_at: due,
            },
        });
    }
    let mut events = Vec::new();
    let mut n = t.step;
    let snooze_over = inc.status == Status::Acknowledged && inc.snoozed_until.is_some_and(|u| u <= now);
    if snooze_over {
        events.push(EventKind::Unacknowledged {
            reason: Some("snooze ended".into()),
            ack_deadline: None,
        });
        n = 0;
    }
    let triggered = inc.status == Status::Triggered || snooze_over;
    if !(triggered || t.forced) {
        return Ok(paused(n));
    }
    let Some(policy) = policy else {
        if let Some(id) = &inc.escalation_policy {
            events.push(EventKind::Paged {
                reason: "escalation".into(),
                policy: Some(id.clone()),
                level: 0,
                round: 0,
                level_name: String::new(),
                users: vec![],
                notifications: 0,
                unreachable: vec![format!("escalation policy {id} does not exist")],
            });
        }
        return Ok(StepOutcome {
            events,
            notifications: vec![],
            next: TimerNext { step: n, due_at: None },
        });
    };
    let Some((s, level)) = step(&policy, n).and_then(|s| policy.levels.get(s.level).map(|l| (s, l))) else {
        events.push(EventKind::EscalationExhausted {
            policy: Some(policy.id.clone()),
        });
        return Ok(StepOutcome {
            events,
            notifications: vec![],
            next: TimerNext { step: n, due_at: None },
        });
    };
    let (users, mut unreachable) = resolve_targets(store, &level.targets, now).await?;
    let cx = PageContext {
        inc,
        event_type: "incident.paged",
        reason: "escalation",
        label: level.name.clone(),
        policy: Some(&policy),
        step: Some(s),
        firing: t.due_at.as_millisecond(),
        public_url: env.public_url,
        now,
        forced: t.forced,
        note: t.forced.then(|| "Escalation requested by a responder".to_string()),
        templates: env.templates,
    };
    let (notes, nobody) = notifications_for(&users, &cx);
    unreachable.extend(nobody);
    events.push(EventKind::Paged {
        reason: "escalation".into(),
        policy: Some(policy.id.clone()),
        level: s.level as u32 + 1,
        round: s.round,
        level_name: level.name.clone(),
        users: users.iter().map(|u| u.id.clone()).collect(),
        notifications: notes.len() as u32,
        unreachable,
    });
    Ok(StepOutcome {
        events,
        notifications: notes,
        next: TimerNext {
            step: n + 1,
            // Forced on an acknowledged incident: page once, stay paused.
            due_at: if triggered { later(now, s.delay_minutes) } else { None },
        },
    })
}

/// Page `targets` once for a reason other than the policy (a rule, an update
/// reminder): the notifications and the `paged` event.
async fn page_once(
    store: &Store,
    inc: &Incident,
    targets: &[EscalationTarget],
    cx_reason: (&'static str, &str, String),
    t: &ClaimedTimer,
    env: &Fire<'_>,
    now: Timestamp,
) -> Result<(Vec<EventKind>, Vec<NewNotification>), StoreError> {
    let (users, mut unreachable) = resolve_targets(store, targets, now).await?;
    let (event_type, reason, label) = cx_reason;
    let cx = PageContext {
        inc,
        event_type,
        reason,
        label: label.clone(),
        policy: None,
        step: None,
        firing: t.due_at.as_millisecond(),
        public_url: env.public_url,
        now,
        forced: t.forced,
        note: t.forced.then(|| "Escalation requested by a responder".to_string()),
        templates: env.templates,
    };
    let (notes, nobody) = notifications_for(&users, &cx);
    unreachable.extend(nobody);
    let event = EventKind::Paged {
        reason: reason.to_string(),
        policy: None,
        level: 0,
        round: 0,
        level_name: label,
        users: users.iter().map(|u| u.id.clone()).collect(),
        notifications: notes.len() as u32,
        unreachable,
    };
    Ok((vec![event], notes))
}

/// A paging rule's timer: page its targets once if the rule still holds.
pub async fn plan_rule(
    store: &Store,
    t: &ClaimedTimer,
    inc: &Incident,
    rules: &[PagingRule],
    env: &Fire<'_>,
    now: Timestamp,
) -> Result<StepOutcome, StoreError> {
    let name = t
        .key
        .strip_prefix("rule:")
        .and_then(|r| r.rsplit_once(':'))
        .map(|(n, _)| n);
    let Some(rule) = name
        .and_then(|n| rules.iter().find(|r| r.name == n))
        .filter(|r| r.matches(inc))
    else {
        // The rule was removed or no longer holds: stay unfired, re-armed by later events.
        return Ok(StepOutcome {
            events: vec![],
            notifications: vec![],
            next: TimerNext { step: 0, due_at: None },
        });
    };
    let (events, notifications) = page_once(
        store,
        inc,
        &rule.notify,
        ("incident.paged", "rule", format!("rule {}", rule.name)),
        t,
        env,
        now,
    )
    .await?;
    Ok(StepOutcome {
        events,
        notifications,
        next: TimerNext { step: 1, due_at: None },
    })
}

/// Who is reminded of a due update: the communications lead, else the
/// incident commander, else whoever was paged last.
fn update_owners(inc: &Incident) -> Vec<EscalationTarget> {
    for role in ["communications_lead", "incident_commander"] {
        if let Some(who) = inc.roles.get(role) {
            return vec![EscalationTarget::User(who.clone())];
        }
    }
    inc.assignees
        .iter()
        .map(|u| EscalationTarget::User(u.clone()))
        .collect()
}

/// The update-cadence timer: remind before `next_update_due`, mark the
/// incident `update_overdue` after it.
pub async fn plan_cadence(
    store: &Store,
    t: &ClaimedTimer,
    inc: &Incident,
    reminder: std::time::Duration,
    env: &Fire<'_>,
    now: Timestamp,
) -> Result<StepOutcome, StoreError> {
    let idle = |step, due_at| StepOutcome {
        events: vec![],
        notifications: vec![],
        next: TimerNext { step, due_at },
    };
    let Some(due) = inc.next_update_due.filter(|_| inc.status.is_open()) else {
        return Ok(idle(t.step, None));
    };
    let lead = SignedDuration::try_from(reminder).unwrap_or_default();
    let remind_at = due.checked_sub(lead).unwrap_or(due);
    match t.step {
        0 if now < remind_at => Ok(idle(0, Some(remind_at))),
        0 => {
            let owners = update_owners(inc);
            let (events, notifications) = if owners.is_empty() {
                (vec![], vec![])
            } else {
                page_once(
                    store,
                    inc,
                    &owners,
                    ("incident.update_due", "update_reminder", "update reminder".into()),
                    t,
                    env,
                    now,
                )
                .await?
            };
            Ok(StepOutcome {
                events,
                notifications,
                next: TimerNext {
                    step: 1,
                    due_at: Some(due),
                },
            })
        }
        1 if now < due => Ok(idle(1, Some(due))),
        1 if !inc.update_overdue => Ok(StepOutcome {
            events: vec![EventKind::UpdateOverdue { due }],
            notifications: vec![],
            next: TimerNext { step: 2, due_at: None },
        }),
        n => Ok(idle(n, None)),
    }
}
