//! The production clock adapter: the only place that reads the wall clock.

use jiff::Timestamp;
use klaxon_domain::Clock;

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Timestamp {
        klaxon_domain::clock::truncate_ms(Timestamp::now())
    }
}
