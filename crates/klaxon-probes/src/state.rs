//! Up/down state from results: down after `failures_before_down`
//! consecutive failures (or failing continuously for `for:`), up after
//! `successes_before_up` consecutive successes. Degraded counts as a
//! success: the thing answers. A check starts `unknown`; its first success
//! makes it up, and only the moves to down and back to up raise or resolve
//! the alert.

use jiff::Timestamp;
use klaxon_store::{ProbeState, StateUpdate};

use crate::Outcome;
use crate::spec::CheckSpec;

/// A state change that raises or resolves the check's alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Down,
    Up,
}

/// The state after a result at `at`, and the change if any.
pub fn next(spec: &CheckSpec, prev: &ProbeState, outcome: Outcome, at: Timestamp) -> (StateUpdate, Option<Transition>) {
    let mut u = StateUpdate {
        state: prev.state.clone(),
        failures: prev.failures,
        successes: prev.successes,
        failing_since: prev.failing_since,
        changed_at: prev.changed_at,
    };
    let mut change = None;
    if outcome == Outcome::Down {
        u.failures += 1;
        u.successes = 0;
        let since = *u.failing_since.get_or_insert(at);
        let reached = match spec.for_duration {
            Some(d) => at.duration_since(since).as_millis() >= d.as_millis() as i128,
            None => u.failures >= i64::from(spec.failures_before_down),
        };
        if reached && u.state != "down" {
            u.state = "down".into();
            u.changed_at = Some(at);
            change = Some(Transition::Down);
        }
    } else {
        u.successes += 1;
        u.failures = 0;
        u.failing_since = None;
        match u.state.as_str() {
            "down" if u.successes >= i64::from(spec.successes_before_up) => {
                u.state = "up".into();
                u.changed_at = Some(at);
                change = Some(Transition::Up);
            }
            "down" | "up" => {}
            _ => {
                u.state = "up".into();
                u.changed_at = Some(at);
            }
        }
    }
    (u, change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Kind;

    fn fresh() -> ProbeState {
        ProbeState {
            check: "c".into(),
            kind: "tcp".into(),
            component: None,
            service: None,
            state: "unknown".into(),
            failures: 0,
            successes: 0,
            failing_since: None,
            changed_at: None,
            last: None,
        }
    }

    fn apply(spec: &CheckSpec, st: &mut ProbeState, o: Outcome, at: Timestamp) -> Option<Transition> {
        let (u, t) = next(spec, st, o, at);
        st.state = u.state;
        st.failures = u.failures;
        st.successes = u.successes;
        st.failing_since = u.failing_since;
        st.changed_at = u.changed_at;
        t
    }

    #[test]
    fn third_failure_is_down_and_successes_bring_it_up() {
        let mut spec = CheckSpec::new("c", Kind::Tcp);
        spec.successes_before_up = 2;
        let t: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap_or_default();
        let mut st = fresh();
        assert_eq!(apply(&spec, &mut st, Outcome::Ok, t), None);
        assert_eq!(st.state, "up");
        assert_eq!(apply(&spec, &mut st, Outcome::Down, t), None);
        assert_eq!(apply(&spec, &mut st, Outcome::Down, t), None);
        assert_eq!(apply(&spec, &mut st, Outcome::Down, t), Some(Transition::Down));
        assert_eq!(apply(&spec, &mut st, Outcome::Down, t), None, "already down");
        assert_eq!(apply(&spec, &mut st, Outcome::Degraded, t), None, "one success of two");
        assert_eq!(apply(&spec, &mut st, Outcome::Down, t), None);
        assert_eq!(apply(&spec, &mut st, Outcome::Ok, t), None);
        assert_eq!(apply(&spec, &mut st, Outcome::Ok, t), Some(Transition::Up));
    }

    #[test]
    fn for_duration_counts_time_not_runs() {
        let mut spec = CheckSpec::new("c", Kind::Tcp);
        spec.for_duration = Some(std::time::Duration::from_secs(120));
        let t: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap_or_default();
        let mut st = fresh();
        for s in [0, 30, 60, 90] {
            assert_eq!(
                apply(&spec, &mut st, Outcome::Down, t + jiff::SignedDuration::from_secs(s)),
                None
            );
        }
        assert_eq!(
            apply(&spec, &mut st, Outcome::Down, t + jiff::SignedDuration::from_secs(120)),
            Some(Transition::Down)
        );
        assert_eq!(st.failing_since, Some(t));
    }
}
