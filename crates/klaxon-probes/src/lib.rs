//! Health checks (probes): HTTP(S), TCP connect, TLS certificate expiry,
//! DNS, PostgreSQL, Redis and Prometheus query thresholds.
//!
//! [`run_probe`] runs one check once and says ok / degraded / down with the
//! latency and a message. [`state::next`] turns results into up/down state
//! changes (failures before down, `for:`, successes before up), and
//! [`Prober`] runs every configured check at its interval, stores results
//! and raises or resolves an alert through the ingestion path on changes.

mod dns;
mod http;
mod postgres;
mod prober;
mod prometheus;
mod redis;
pub mod spec;
pub mod state;
mod tcp;
mod tls;

use std::time::Instant;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use prober::{Prober, ProberError, RunReport};
pub use spec::{CheckSpec, Kind};

/// What one run found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// Working, but something needs attention (slow, certificate expiring soon).
    Degraded,
    Down,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Degraded => "degraded",
            Outcome::Down => "down",
        }
    }
}

/// The result of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub outcome: Outcome,
    pub latency_ms: i64,
    pub message: String,
}

/// What a probe module returns: the outcome and its message; `Err` is down.
pub(crate) type Found = Result<(Outcome, String), String>;

/// Run one check now. `now` (from the injected clock) is the time certificate
/// expiry is measured against. Never longer than the check's timeout.
pub async fn run_probe(spec: &CheckSpec, now: Timestamp) -> ProbeResult {
    let started = Instant::now();
    let run = async {
        match spec.kind {
            Kind::Http => http::probe(spec).await,
            Kind::Tcp => tcp::probe(spec).await,
            Kind::Tls => tls::probe(spec, now).await,
            Kind::Dns => dns::probe(spec).await,
            Kind::Postgres => postgres::probe(spec).await,
            Kind::Redis => redis::probe(spec).await,
            Kind::Prometheus => prometheus::probe(spec).await,
        }
    };
    let found = match tokio::time::timeout(spec.timeout, run).await {
        Ok(f) => f,
        Err(_) => Err(format!(
            "timed out after {}",
            klaxon_domain::duration::format(spec.timeout)
        )),
    };
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (outcome, message) = match found {
        Ok(r) => r,
        Err(m) => (Outcome::Down, m),
    };
    ProbeResult {
        outcome,
        latency_ms,
        message: truncate(&redact(&message), 1000),
    }
}

/// Hide the password of URLs (`scheme://user:password@host`) in a text.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => match authority[..at].split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***");
                    out.push_str(&authority[at..]);
                }
                None => out.push_str(authority),
            },
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("connect postgres://app:s3cret@db:5432/x failed"),
            "connect postgres://app:***@db:5432/x failed"
        );
        assert_eq!(redact("redis://:pw@h:6379"), "redis://:***@h:6379");
        assert_eq!(redact("http://h/x?a=b"), "http://h/x?a=b");
    }
}
