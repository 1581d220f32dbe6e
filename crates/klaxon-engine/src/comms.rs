//! Stakeholder messages: a `comms` timer names one timeline event (its seq);
//! firing it renders the event's template and queues one message per
//! destination the communication rules name for the incident's severity.

use jiff::Timestamp;
use klaxon_domain::communication::{CommEvent, Communication};
use klaxon_domain::message::{Envelope, EnvelopeIncident};
use klaxon_domain::templates::TemplateContext;
use klaxon_domain::{EventKind, Incident, TimelineEvent};
use klaxon_store::{ClaimedTimer, NewNotification, StepOutcome, Store, StoreError, TimerNext};

use crate::escalate::Fire;

/// The text an event gives its template's `message`, and whether an update was public.
fn message_of(kind: &EventKind, actor: &str) -> (Option<String>, bool, Option<u32>) {
    match kind {
        EventKind::UpdatePosted {
            message,
            public,
            number,
            ..
        } => (Some(message.clone()), *public, Some(*number)),
        EventKind::StatusChanged { message, .. } => (message.clone(), true, None),
        EventKind::Reopened { reason, .. } => (
            Some(format!(
                "Reopened{}",
                reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
            )),
            true,
            None,
        ),
        EventKind::SeverityChanged { from, to, reason, .. } => (
            Some(format!(
                "Severity changed from {from} to {to}{}",
                reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
            )),
            true,
            None,
        ),
        EventKind::EscalationRequested { reason } => (
            Some(
                reason
                    .clone()
                    .unwrap_or_else(|| format!("Escalation requested by {actor}")),
            ),
            true,
            None,
        ),
        _ => (None, true, None),
    }
}

/// The incident's severity right after the last of these events: who
/// hears of an event depends on the severity it happened at.
fn severity_at(events: &[TimelineEvent], now: &str) -> String {
    events
        .iter()
        .rev()
        .find_map(|e| match &e.kind {
            EventKind::SeverityChanged { to, .. } => Some(to.clone()),
            EventKind::Declared { incident } => Some(incident.severity.clone()),
            _ => None,
        })
        .unwrap_or_else(|| now.to_string())
}

/// Fire a `comms` timer: the messages for the event at seq `t.step`.
pub async fn plan_comms(
    store: &Store,
    t: &ClaimedTimer,
    inc: &Incident,
    comms: &Communication,
    env: &Fire<'_>,
    now: Timestamp,
) -> Result<StepOutcome, StoreError> {
    let done = |notifications| StepOutcome {
        events: vec![],
        notifications,
        next: TimerNext {
            step: t.step,
            due_at: None,
        },
    };
    let timeline = store.timeline(&inc.id).await?.unwrap_or_default();
    let Some(idx) = timeline.iter().position(|e| e.seq == u64::from(t.step)) else {
        return Ok(done(vec![]));
    };
    let event = &timeline[idx];
    let Some(ev) = CommEvent::of(&event.kind) else {
        return Ok(done(vec![]));
    };
    let (text, public, number) = message_of(&event.kind, &event.actor);
    let audience = comms.audience(&severity_at(&timeline[..=idx], &inc.severity), ev, public);
    let subscribers = if ev == CommEvent::Updated && public && !inc.private {
        store.confirmed_subscribers().await?
    } else {
        vec![]
    };
    if audience.is_empty() && subscribers.is_empty() {
        return Ok(done(vec![]));
    }
    let incident = EnvelopeIncident::of(inc, env.public_url);
    let cx = TemplateContext::new(
        inc,
        &timeline[..=idx],
        text,
        number.unwrap_or(inc.updates_posted),
        event.at,
        incident.url.clone(),
    );
    let message = env.templates.render_or_plain(ev.template(), &cx);
    let mut notifications: Vec<NewNotification> = audience
        .into_iter()
        .map(|d| {
            let key = format!("{}:{}:{}:{}", inc.id, ev.as_str(), event.seq, d.name);
            let body = Envelope {
                event_type: ev.event_type().to_string(),
                idempotency_key: key.clone(),
                incident: incident.clone(),
                message: message.clone(),
                sent_at: now,
                reason: ev.as_str().to_string(),
                user: None,
                policy: None,
                level: None,
                level_name: None,
                round: None,
                update_due: inc.next_update_due,
                destination: Some(d.name.clone()),
                unsubscribe_url: None,
            };
            NewNotification {
                idempotency_key: key,
                user_id: String::new(),
                channel: d.kind.as_str().to_string(),
                contact: d.name.clone(),
                address: d.address.clone(),
                body: body.to_json(),
                due_at: now,
                cancel_on_ack: false,
                message: true,
            }
        })
        .collect();
    if !subscribers.is_empty() {
        let page = env.templates.render_or_plain("status-page-update", &cx);
        let base = env.status_page_url.unwrap_or_default().trim_end_matches('/');
        notifications.extend(subscribers.iter().map(|s| {
            let key = format!("{}:status-page:{}:{}", inc.id, event.seq, s.id);
            let unsubscribe = format!("{base}/status/subscriptions/{}/unsubscribe", s.token);
            let mut message = page.clone();
            if s.kind == "email" {
                message.body = format!("{}\n\n--\nUnsubscribe: {unsubscribe}\n", message.body.trim_end());
            }
            let body = Envelope {
                event_type: ev.event_type().to_string(),
                idempotency_key: key.clone(),
                incident: incident.clone(),
                message,
                sent_at: now,
                reason: "status_page".into(),
                user: None,
                policy: None,
                level: None,
                level_name: None,
                round: None,
                update_due: inc.next_update_due,
                destination: Some("status-page-subscribers".into()),
                unsubscribe_url: Some(unsubscribe),
            };
            NewNotification {
                idempotency_key: key,
                user_id: String::new(),
                channel: s.kind.clone(),
                contact: format!("subscriber {}", s.id),
                address: s.address.clone(),
                body: body.to_json(),
                due_at: now,
                cancel_on_ack: false,
                message: true,
            }
        }));
    }
    Ok(done(notifications))
}
