//! What the engine's durable timers do, as pure functions: how an incident's
//! events move its escalation timer, and which level a step of a policy pages.

use jiff::Timestamp;

use crate::escalation::EscalationPolicy;
use crate::event::{EventKind, TimelineEvent};
use crate::incident::Incident;
use crate::lifecycle::Status;

/// A change to an incident's escalation timer, applied in the transaction
/// that appends the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EscalationOp {
    /// Run the policy from its first level, starting at `at`.
    Start { at: Timestamp },
    /// Acknowledged: keep the step, stop the clock.
    Pause,
    /// Resolved or closed: forget the timer.
    Stop,
    /// Fire at `at` with the step reached so far (unacknowledged, end of a snooze).
    Resume { at: Timestamp },
    /// Page the next level at `at` even if the incident is acknowledged.
    Force { at: Timestamp },
    /// Page these users at `at`, then go on with the policy.
    Page { users: Vec<String>, at: Timestamp },
}

/// The timer changes that `events` (just appended, `inc` is the incident after
/// them) call for, in order.
pub fn escalation_ops(inc: &Incident, events: &[TimelineEvent]) -> Vec<EscalationOp> {
    let has_policy = inc.escalation_policy.is_some();
    let mut ops = Vec::new();
    for e in events {
        let op = match &e.kind {
            EventKind::Declared { incident } if has_policy && incident.status == Status::Triggered => {
                Some(EscalationOp::Start { at: e.at })
            }
            EventKind::StatusChanged { to, .. } if *to >= Status::Resolved => Some(EscalationOp::Stop),
            EventKind::StatusChanged { to, .. } if *to > Status::Triggered && has_policy => Some(EscalationOp::Pause),
            EventKind::Reopened { to, .. } if has_policy && *to == Status::Triggered => {
                Some(EscalationOp::Start { at: e.at })
            }
            EventKind::Unacknowledged { .. } if has_policy => Some(EscalationOp::Resume { at: e.at }),
            EventKind::Snoozed { until } => Some(EscalationOp::Resume { at: *until }),
            EventKind::EscalationRequested { .. } if has_policy => Some(EscalationOp::Force { at: e.at }),
            EventKind::Reassigned { users, .. } => Some(EscalationOp::Page {
                users: users.clone(),
                at: e.at,
            }),
            _ => None,
        };
        ops.extend(op);
    }
    ops
}

/// One step of a policy: which level, in which pass, and how long to wait
/// before the next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// 0-based level index.
    pub level: usize,
    /// 1-based pass over the policy.
    pub round: u32,
    pub delay_minutes: u32,
}

/// Step `n` (0-based over all levels and repeats), or `None` past the end.
pub fn step(policy: &EscalationPolicy, n: u32) -> Option<Step> {
    let per_round = policy.levels.len() as u32;
    if per_round == 0 || n >= per_round.saturating_mul(policy.repeat.saturating_add(1)) {
        return None;
    }
    let level = (n % per_round) as usize;
    Some(Step {
        level,
        round: n / per_round + 1,
        delay_minutes: policy.levels.get(level).map(|l| l.delay_minutes).unwrap_or(1),
    })
}

/// Backoff before delivery attempt `attempt` (1-based) of a notification:
/// exponential from 5 s, capped at 5 minutes, with `jitter` (0..1) spreading
/// up to a quarter of it.
pub fn retry_backoff(attempt: u32, jitter: f64) -> std::time::Duration {
    let base = 5u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(10)).min(300);
    let spread = (base as f64 * 0.25 * jitter.clamp(0.0, 1.0)) as u64;
    std::time::Duration::from_secs(base + spread)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Catalog;
    use crate::decide::{self, Command};
    use crate::escalation::{EscalationLevel, EscalationTarget};
    use crate::event::{GENESIS_HASH, apply};
    use crate::wire::DeclareIncident;

    fn policy(levels: usize, repeat: u32) -> EscalationPolicy {
        EscalationPolicy {
            id: "p".into(),
            description: String::new(),
            levels: (0..levels)
                .map(|i| EscalationLevel {
                    name: format!("l{i}"),
                    targets: vec![EscalationTarget::User(format!("u{i}"))],
                    delay_minutes: 5 * (i as u32 + 1),
                })
                .collect(),
            repeat,
        }
    }

    #[test]
    fn steps_walk_levels_then_repeat_then_stop() {
        let p = policy(2, 1);
        let got: Vec<_> = (0..5).map(|n| step(&p, n).map(|s| (s.level, s.round))).collect();
        assert_eq!(got, vec![Some((0, 1)), Some((1, 1)), Some((0, 2)), Some((1, 2)), None]);
        assert_eq!(step(&p, 1).unwrap().delay_minutes, 10);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(retry_backoff(1, 0.0).as_secs(), 5);
        assert_eq!(retry_backoff(2, 0.0).as_secs(), 10);
        assert_eq!(retry_backoff(30, 0.0).as_secs(), 300);
        assert_eq!(retry_backoff(1, 1.0).as_secs(), 6);
    }

    /// Declare with a policy → start; acknowledge → pause; unack → resume;
    /// escalate-now → force; resolve → stop. Without a policy, nothing but reassignments.
    #[test]
    fn events_drive_the_escalation_timer() {
        let cat = Catalog::default();
        let t0: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let req = DeclareIncident {
            title: "API down".into(),
            escalation_policy: Some("p".into()),
            ..Default::default()
        };
        let draft = decide::validate_declaration(&req, "alice", t0, &cat).unwrap();
        let ev = TimelineEvent::seal(
            "INC-1",
            1,
            t0,
            "alice",
            decide::declared(draft, "INC-1".into()),
            GENESIS_HASH,
        );
        let mut inc = apply(None, &ev).unwrap();
        assert_eq!(
            escalation_ops(&inc, std::slice::from_ref(&ev)),
            vec![EscalationOp::Start { at: t0 }]
        );
        let mut head = ev.hash.clone();
        let mut run = |inc: &mut Incident, cmd: Command| {
            let kinds = decide::decide(inc, cmd, t0, &cat).unwrap();
            let mut evs = Vec::new();
            for k in kinds {
                let e = TimelineEvent::seal("INC-1", inc.version + 1, t0, "bob", k, &head);
                head = e.hash.clone();
                *inc = apply(Some(inc.clone()), &e).unwrap();
                evs.push(e);
            }
            escalation_ops(inc, &evs)
        };
        assert_eq!(run(&mut inc, Command::Ack { message: None }), vec![EscalationOp::Pause]);
        assert_eq!(
            run(&mut inc, Command::Unack { reason: None }),
            vec![EscalationOp::Resume { at: t0 }]
        );
        assert_eq!(inc.status, Status::Triggered);
        let until = t0.checked_add(jiff::SignedDuration::from_mins(30)).unwrap();
        assert_eq!(
            run(&mut inc, Command::Snooze { until }),
            vec![EscalationOp::Resume { at: until }]
        );
        assert_eq!(inc.status, Status::Acknowledged);
        assert_eq!(inc.snoozed_until, Some(until));
        assert_eq!(
            run(&mut inc, Command::EscalateNow { reason: None }),
            vec![EscalationOp::Resume { at: t0 }, EscalationOp::Force { at: t0 }]
        );
        assert_eq!(
            run(
                &mut inc,
                Command::Reassign {
                    users: vec!["carol".into()],
                    reason: None
                }
            ),
            vec![EscalationOp::Page {
                users: vec!["carol".into()],
                at: t0
            }]
        );
        assert_eq!(inc.assignees, vec!["carol".to_string()]);
        assert_eq!(
            run(
                &mut inc,
                Command::Status {
                    to: "resolved".into(),
                    message: None
                }
            ),
            vec![EscalationOp::Stop]
        );
    }

    #[test]
    fn bad_snoozes_and_escalations_are_refused() {
        let cat = Catalog::default();
        let t0: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let req = DeclareIncident {
            title: "API down".into(),
            ..Default::default()
        };
        let mut inc = decide::validate_declaration(&req, "alice", t0, &cat).unwrap();
        inc.id = "INC-1".into();
        let past = Command::Snooze { until: t0 };
        assert!(matches!(
            decide::decide(&inc, past, t0, &cat),
            Err(crate::DomainError::Invalid(f)) if f.field == "until"
        ));
        let far = t0.checked_add(jiff::SignedDuration::from_hours(25)).unwrap();
        assert!(decide::decide(&inc, Command::Snooze { until: far }, t0, &cat).is_err());
        assert!(matches!(
            decide::decide(&inc, Command::EscalateNow { reason: None }, t0, &cat),
            Err(crate::DomainError::Conflict(_))
        ));
        assert!(matches!(
            decide::decide(&inc, Command::Unack { reason: None }, t0, &cat),
            Err(crate::DomainError::Conflict(_))
        ));
        let bad = Command::Reassign {
            users: vec!["no body".into()],
            reason: None,
        };
        assert!(matches!(
            decide::decide(&inc, bad, t0, &cat),
            Err(crate::DomainError::Invalid(f)) if f.field == "users[0]"
        ));
    }
}
