//! The incident lifecycle and its table of allowed transitions.
//!
//! triggered → acknowledged → investigating → identified → mitigating →
//! monitoring → resolved → closed. Moving forward may skip steps; `closed`
//! is reached only from `resolved` (post-incident work done). Moving back is
//! only possible through `reopen`, which is recorded on the timeline.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Triggered,
    Acknowledged,
    Investigating,
    Identified,
    Mitigating,
    Monitoring,
    Resolved,
    Closed,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Triggered,
        Status::Acknowledged,
        Status::Investigating,
        Status::Identified,
        Status::Mitigating,
        Status::Monitoring,
        Status::Resolved,
        Status::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Triggered => "triggered",
            Status::Acknowledged => "acknowledged",
            Status::Investigating => "investigating",
            Status::Identified => "identified",
            Status::Mitigating => "mitigating",
            Status::Monitoring => "monitoring",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    /// Open means someone still has to act: everything before `resolved`.
    pub fn is_open(self) -> bool {
        self < Status::Resolved
    }

    /// The word a public status page shows (Statuspage vocabulary).
    pub fn public_word(self) -> &'static str {
        match self {
            Status::Triggered | Status::Acknowledged | Status::Investigating => "Investigating",
            Status::Identified | Status::Mitigating => "Identified",
            Status::Monitoring => "Monitoring",
            Status::Resolved | Status::Closed => "Resolved",
        }
    }

    /// Statuses reachable from `self` by a forward `status` command.
    pub fn allowed_next(self) -> Vec<Status> {
        Status::ALL.into_iter().filter(|to| self.can_move_to(*to)).collect()
    }

    /// The transition table: forward moves only, `closed` only from `resolved`.
    pub fn can_move_to(self, to: Status) -> bool {
        if to <= self {
            return false;
        }
        match to {
            Status::Closed => self == Status::Resolved,
            _ => true,
        }
    }

    /// Statuses a `reopen` may return to from `self`: any earlier open status.
    pub fn reopen_targets(self) -> Vec<Status> {
        Status::ALL
            .into_iter()
            .filter(|to| to.is_open() && *to < self)
            .collect()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Status::ALL.into_iter().find(|st| st.as_str() == lower).ok_or_else(|| {
            format!(
                "unknown status {s:?}; expected one of: {}",
                Status::ALL.map(|s| s.as_str()).join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table_matches_the_playbooks() {
        assert!(Status::Triggered.can_move_to(Status::Acknowledged));
        assert!(
            Status::Triggered.can_move_to(Status::Resolved),
            "skipping forward is allowed"
        );
        assert!(
            !Status::Triggered.can_move_to(Status::Closed),
            "close only after resolve"
        );
        assert!(Status::Resolved.can_move_to(Status::Closed));
        assert!(
            !Status::Monitoring.can_move_to(Status::Investigating),
            "backwards needs reopen"
        );
        assert!(Status::Closed.allowed_next().is_empty());
        assert_eq!(Status::Monitoring.allowed_next(), vec![Status::Resolved]);
        assert_eq!(Status::Mitigating.public_word(), "Identified");
    }

    fn any_status() -> impl Strategy<Value = Status> {
        (0usize..Status::ALL.len()).prop_map(|i| Status::ALL[i])
    }

    proptest! {
        #[test]
        fn transitions_never_go_backwards(from in any_status(), to in any_status()) {
            if from.can_move_to(to) {
                prop_assert!(to > from);
            }
            for back in from.reopen_targets() {
                prop_assert!(back < from && back.is_open());
            }
        }

        #[test]
        fn parse_round_trips(s in any_status()) {
            prop_assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
            prop_assert_eq!(s.as_str().to_uppercase().parse::<Status>().unwrap(), s);
        }

        #[test]
        fn any_walk_of_allowed_moves_ends_closed_within_seven_steps(choices in proptest::collection::vec(any::<u8>(), 0..20)) {
            let mut st = Status::Triggered;
            let mut steps = 0;
            for c in choices {
                let next = st.allowed_next();
                if next.is_empty() { break; }
                st = next[c as usize % next.len()];
                steps += 1;
            }
            prop_assert!(steps <= 7);
        }
    }
}
