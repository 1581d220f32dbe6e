//! Time is injected: every deadline is computed from a [`Clock`].

use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// Where "now" comes from. Production uses the system clock (in the store
/// crate's adapters); tests use [`ManualClock`] and move it by hand.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// A clock that only moves when told to. Timestamps are kept at millisecond
/// precision, the precision Klaxon stores.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Mutex::new(truncate_ms(start)),
        }
    }

    pub fn set(&self, to: Timestamp) {
        let mut guard = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *guard = truncate_ms(to);
    }

    pub fn advance(&self, by: SignedDuration) {
        let mut guard = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *guard = truncate_ms(guard.saturating_add(by).unwrap_or(*guard));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Drop sub-millisecond precision so that what is hashed equals what is stored.
pub fn truncate_ms(ts: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(ts.as_millisecond()).unwrap_or(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start: Timestamp = "2026-11-23T10:00:00.123456Z".parse().unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now().to_string(), "2026-11-23T10:00:00.123Z");
        clock.advance(SignedDuration::from_mins(5));
        assert_eq!(clock.now().to_string(), "2026-11-23T10:05:00.123Z");
    }
}
