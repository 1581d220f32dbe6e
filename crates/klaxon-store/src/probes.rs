//! Health check (probe) results: raw rows for 48 hours, hourly and daily
//! rollups for charts and uptime, and the up/down state of each check.
//!
//! Compaction ([`Store::compact_probes`]) folds raw rows of finished hours
//! into the rollups (each row exactly once: rows are marked and returned in
//! one statement), then drops raw rows older than [`RAW_RETENTION`] and
//! rollups older than their retention.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::ts;
use crate::{Store, StoreError};

/// Raw results are kept this long.
pub const RAW_RETENTION: jiff::SignedDuration = jiff::SignedDuration::from_hours(48);
/// Hourly rollups are kept this long.
pub const HOURLY_RETENTION: jiff::SignedDuration = jiff::SignedDuration::from_hours(24 * 90);
/// Daily rollups are kept this long.
pub const DAILY_RETENTION: jiff::SignedDuration = jiff::SignedDuration::from_hours(24 * 400);

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

fn floor(ms: i64, unit: i64) -> i64 {
    ms - ms.rem_euclid(unit)
}

/// Outcomes ranked: `ok` < `degraded` < `down`.
fn rank(outcome: &str) -> u8 {
    match outcome {
        "ok" => 0,
        "degraded" => 1,
        _ => 2,
    }
}

/// One probe run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRecord {
    pub check: String,
    pub at: Timestamp,
    /// `ok`, `degraded` or `down`.
    pub outcome: String,
    pub latency_ms: i64,
    pub message: String,
}

/// A check's state as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeState {
    pub check: String,
    pub kind: String,
    pub component: Option<String>,
    pub service: Option<String>,
    /// `up`, `down` or `unknown`.
    pub state: String,
    /// Consecutive failed runs (reset by a success).
    pub failures: i64,
    /// Consecutive successful runs (reset by a failure).
    pub successes: i64,
    /// Start of the current run of failures.
    pub failing_since: Option<Timestamp>,
    /// When `state` last changed.
    pub changed_at: Option<Timestamp>,
    pub last: Option<ProbeRecord>,
}

/// Runs and their share that were up (ok or degraded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub total: i64,
    pub ok: i64,
    pub degraded: i64,
    pub down: i64,
    pub latency_sum: i64,
    pub latency_max: i64,
}

impl Counts {
    fn add_result(&mut self, outcome: &str, latency: i64) {
        self.total += 1;
        match rank(outcome) {
            0 => self.ok += 1,
            1 => self.degraded += 1,
            _ => self.down += 1,
        }
        self.latency_sum += latency;
        self.latency_max = self.latency_max.max(latency);
    }

    fn merge(&mut self, o: &Counts) {
        self.total += o.total;
        self.ok += o.ok;
        self.degraded += o.degraded;
        self.down += o.down;
        self.latency_sum += o.latency_sum;
        self.latency_max = self.latency_max.max(o.latency_max);
    }

    /// Share of runs that were up (ok or degraded); `None` without runs.
    pub fn uptime(&self) -> Option<f64> {
        (self.total > 0).then(|| (self.ok + self.degraded) as f64 / self.total as f64)
    }

    /// The worst outcome seen, if any run.
    pub fn worst(&self) -> Option<&'static str> {
        if self.down > 0 {
            Some("down")
        } else if self.degraded > 0 {
            Some("degraded")
        } else if self.ok > 0 {
            Some("ok")
        } else {
            None
        }
    }

    fn from_row(r: &AnyRow) -> Result<Counts, StoreError> {
        Ok(Counts {
            total: r.try_get("total")?,
            ok: r.try_get("ok")?,
            degraded: r.try_get("degraded")?,
            down: r.try_get("down")?,
            latency_sum: r.try_get("latency_sum")?,
            latency_max: r.try_get("latency_max")?,
        })
    }
}

/// One UTC day of one status page component, over all its checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentDay {
    pub component: String,
    pub day: jiff::civil::Date,
    pub counts: Counts,
    /// Share of runs up (ok or degraded).
    pub uptime: f64,
    /// `ok`, `degraded` or `down`.
    pub worst: String,
}

/// What a compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Compaction {
    /// Raw rows folded into rollups.
    pub rolled: u64,
    /// Raw rows deleted (older than 48 hours).
    pub deleted_raw: u64,
    /// Rollups deleted (past retention).
    pub deleted_rollups: u64,
}

/// The new state of a check after a result, written with the result.
#[derive(Debug, Clone, PartialEq)]
pub struct StateUpdate {
    pub state: String,
    pub failures: i64,
    pub successes: i64,
    pub failing_since: Option<Timestamp>,
    pub changed_at: Option<Timestamp>,
}

fn record_from(r: &AnyRow, check_col: &str) -> Result<ProbeRecord, StoreError> {
    Ok(ProbeRecord {
        check: r.try_get(check_col)?,
        at: ts(r.try_get("at")?)?,
        outcome: r.try_get("outcome")?,
        latency_ms: r.try_get("latency_ms")?,
        message: r.try_get("message")?,
    })
}

fn state_from(r: &AnyRow) -> Result<ProbeState, StoreError> {
    let opt_ts =
        |col: &str| -> Result<Option<Timestamp>, StoreError> { r.try_get::<Option<i64>, _>(col)?.map(ts).transpose() };
    let check: String = r.try_get("check_name")?;
    let last = match (opt_ts("last_at")?, r.try_get::<Option<String>, _>("last_outcome")?) {
        (Some(at), Some(outcome)) => Some(ProbeRecord {
            check: check.clone(),
            at,
            outcome,
            latency_ms: r.try_get::<Option<i64>, _>("last_latency")?.unwrap_or(0),
            message: r.try_get::<Option<String>, _>("last_message")?.unwrap_or_default(),
        }),
        _ => None,
    };
    Ok(ProbeState {
        kind: r.try_get("kind")?,
        component: r.try_get("component")?,
        service: r.try_get("service")?,
        state: r.try_get("state")?,
        failures: r.try_get("failures")?,
        successes: r.try_get("successes")?,
        failing_since: opt_ts("failing_since")?,
        changed_at: opt_ts("changed_at")?,
        last,
        check,
    })
}

const STATE_COLS: &str = "check_name, kind, component, service, state, failures, successes, failing_since, \
     changed_at, last_at, last_outcome, last_latency, last_message";

impl Store {
    /// Declare a configured check (kind, component, service); its state
    /// starts `unknown` and is kept when it exists.
    pub async fn sync_probe(
        &self,
        check: &str,
        kind: &str,
        component: Option<&str>,
        service: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO probe_state (check_name, kind, component, service, state) VALUES ($1, $2, $3, $4, 'unknown') \
             ON CONFLICT (check_name) DO UPDATE SET kind = excluded.kind, component = excluded.component, \
             service = excluded.service",
        )
        .bind(check.to_string())
        .bind(kind.to_string())
        .bind(component.map(str::to_string))
        .bind(service.map(str::to_string))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn probe_state(&self, check: &str) -> Result<Option<ProbeState>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STATE_COLS} FROM probe_state WHERE check_name = $1"
        )))
        .bind(check.to_string())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(state_from).transpose()
    }

    /// Every check's state, by name.
    pub async fn probe_states(&self) -> Result<Vec<ProbeState>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STATE_COLS} FROM probe_state ORDER BY check_name"
        )))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(state_from).collect()
    }

    /// Store a result and the check's new state in one transaction.
    pub async fn record_probe(&self, rec: &ProbeRecord, update: &StateUpdate) -> Result<(), StoreError> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO probe_results (check_name, at, outcome, latency_ms, message) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(rec.check.clone())
        .bind(rec.at.as_millisecond())
        .bind(rec.outcome.clone())
        .bind(rec.latency_ms)
        .bind(rec.message.clone())
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(
            "UPDATE probe_state SET state = $1, failures = $2, successes = $3, failing_since = $4, changed_at = $5, \
             last_at = $6, last_outcome = $7, last_latency = $8, last_message = $9 WHERE check_name = $10",
        )
        .bind(update.state.clone())
        .bind(update.failures)
        .bind(update.successes)
        .bind(update.failing_since.map(|t| t.as_millisecond()))
        .bind(update.changed_at.map(|t| t.as_millisecond()))
        .bind(rec.at.as_millisecond())
        .bind(rec.outcome.clone())
        .bind(rec.latency_ms)
        .bind(rec.message.clone())
        .bind(rec.check.clone())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFoundOf("check", rec.check.clone()));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Raw results of a check since `since`, oldest first.
    pub async fn probe_history(&self, check: &str, since: Timestamp) -> Result<Vec<ProbeRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT check_name, at, outcome, latency_ms, message FROM probe_results \
             WHERE check_name = $1 AND at >= $2 ORDER BY at, pk",
        )
        .bind(check.to_string())
        .bind(since.as_millisecond())
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|r| record_from(r, "check_name")).collect()
    }

    /// Rollups of one period (`hour` or `day`) from `since`, by check and start.
    pub async fn probe_rollups(
        &self,
        period: &str,
        since: Timestamp,
    ) -> Result<Vec<(String, Timestamp, Counts)>, StoreError> {
        let rows = sqlx::query(
            "SELECT check_name, start, total, ok, degraded, down, latency_sum, latency_max FROM probe_rollups \
             WHERE period = $1 AND start >= $2 ORDER BY check_name, start",
        )
        .bind(period.to_string())
        .bind(since.as_millisecond())
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("check_name")?, ts(r.try_get("start")?)?, Counts::from_row(r)?)))
            .collect()
    }

    /// Results not folded into rollups yet, from `since`: (check, at ms, outcome, latency).
    async fn unrolled(&self, since_ms: i64) -> Result<Vec<(String, i64, String, i64)>, StoreError> {
        let rows =
            sqlx::query("SELECT check_name, at, outcome, latency_ms FROM probe_results WHERE rolled = 0 AND at >= $1")
                .bind(since_ms)
                .fetch_all(&self.read)
                .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("check_name")?,
                    r.try_get("at")?,
                    r.try_get("outcome")?,
                    r.try_get("latency_ms")?,
                ))
            })
            .collect()
    }

    /// Counts of one check since `since` (hourly rollups from the hour of
    /// `since`, plus the results not rolled up yet).
    pub async fn probe_uptime(&self, check: &str, since: Timestamp) -> Result<Counts, StoreError> {
        let since_ms = since.as_millisecond();
        let rows = sqlx::query(
            "SELECT total, ok, degraded, down, latency_sum, latency_max FROM probe_rollups \
             WHERE check_name = $1 AND period = 'hour' AND start >= $2",
        )
        .bind(check.to_string())
        .bind(floor(since_ms, HOUR_MS))
        .fetch_all(&self.read)
        .await?;
        let mut c = Counts::default();
        for r in &rows {
            c.merge(&Counts::from_row(r)?);
        }
        let raw = sqlx::query(
            "SELECT outcome, latency_ms FROM probe_results WHERE check_name = $1 AND rolled = 0 AND at >= $2",
        )
        .bind(check.to_string())
        .bind(since_ms)
        .fetch_all(&self.read)
        .await?;
        for r in &raw {
            let outcome: String = r.try_get("outcome")?;
            c.add_result(&outcome, r.try_get("latency_ms")?);
        }
        Ok(c)
    }

    /// Uptime per status page component per UTC day, for the last `days`
    /// days up to `now` (today included), oldest first. Days without runs
    /// are left out. A component's day covers all checks with that component.
    pub async fn component_uptime(&self, days: u32, now: Timestamp) -> Result<Vec<ComponentDay>, StoreError> {
        let first_day = floor(now.as_millisecond(), DAY_MS) - (i64::from(days.max(1)) - 1) * DAY_MS;
        let components: BTreeMap<String, String> = self
            .probe_states()
            .await?
            .into_iter()
            .filter_map(|s| s.component.map(|c| (s.check, c)))
            .collect();
        let mut by: BTreeMap<(String, i64), Counts> = BTreeMap::new();
        for (check, start, counts) in self.probe_rollups("day", ts(first_day)?).await? {
            if let Some(comp) = components.get(&check) {
                by.entry((comp.clone(), start.as_millisecond()))
                    .or_default()
                    .merge(&counts);
            }
        }
        for (check, at, outcome, latency) in self.unrolled(first_day).await? {
            if let Some(comp) = components.get(&check) {
                by.entry((comp.clone(), floor(at, DAY_MS)))
                    .or_default()
                    .add_result(&outcome, latency);
            }
        }
        let mut out = Vec::with_capacity(by.len());
        for ((component, start), counts) in by {
            let day = ts(start)?.to_zoned(jiff::tz::TimeZone::UTC).date();
            out.push(ComponentDay {
                component,
                day,
                uptime: counts.uptime().unwrap_or(1.0),
                worst: counts.worst().unwrap_or("ok").to_string(),
                counts,
            });
        }
        out.sort_by(|a, b| (a.day, &a.component).cmp(&(b.day, &b.component)));
        Ok(out)
    }

    /// Fold raw results of finished hours into hourly and daily rollups,
    /// then drop what is past retention. One transaction.
    pub async fn compact_probes(&self, now: Timestamp) -> Result<Compaction, StoreError> {
        let now_ms = now.as_millisecond();
        let cut = floor(now_ms, HOUR_MS);
        let mut tx = self.write.begin().await?;
        let rows = sqlx::query(
            "UPDATE probe_results SET rolled = 1 WHERE rolled = 0 AND at < $1 \
             RETURNING check_name, at, outcome, latency_ms",
        )
        .bind(cut)
        .fetch_all(&mut *tx)
        .await?;
        let mut buckets: BTreeMap<(String, &'static str, i64), Counts> = BTreeMap::new();
        for r in &rows {
            let check: String = r.try_get("check_name")?;
            let at: i64 = r.try_get("at")?;
            let outcome: String = r.try_get("outcome")?;
            let latency: i64 = r.try_get("latency_ms")?;
            for (period, unit) in [("hour", HOUR_MS), ("day", DAY_MS)] {
                buckets
                    .entry((check.clone(), period, floor(at, unit)))
                    .or_default()
                    .add_result(&outcome, latency);
            }
        }
        for ((check, period, start), c) in &buckets {
            sqlx::query(
                "INSERT INTO probe_rollups (check_name, period, start, total, ok, degraded, down, latency_sum, latency_max) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (check_name, period, start) DO UPDATE SET \
                 total = probe_rollups.total + excluded.total, ok = probe_rollups.ok + excluded.ok, \
                 degraded = probe_rollups.degraded + excluded.degraded, down = probe_rollups.down + excluded.down, \
                 latency_sum = probe_rollups.latency_sum + excluded.latency_sum, \
                 latency_max = CASE WHEN excluded.latency_max > probe_rollups.latency_max \
                 THEN excluded.latency_max ELSE probe_rollups.latency_max END",
            )
            .bind(check.clone())
            .bind(period.to_string())
            .bind(*start)
            .bind(c.total)
            .bind(c.ok)
            .bind(c.degraded)
            .bind(c.down)
            .bind(c.latency_sum)
            .bind(c.latency_max)
            .execute(&mut *tx)
            .await?;
        }
        let raw_cut = now_ms - RAW_RETENTION.as_millis() as i64;
        let deleted_raw = sqlx::query("DELETE FROM probe_results WHERE rolled = 1 AND at < $1")
            .bind(raw_cut.min(cut))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let mut deleted_rollups = 0;
        for (period, keep) in [("hour", HOURLY_RETENTION), ("day", DAILY_RETENTION)] {
            deleted_rollups += sqlx::query("DELETE FROM probe_rollups WHERE period = $1 AND start < $2")
                .bind(period.to_string())
                .bind(now_ms - keep.as_millis() as i64)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(Compaction {
            rolled: rows.len() as u64,
            deleted_raw,
            deleted_rollups,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_rank_outcomes() {
        let mut c = Counts::default();
        assert_eq!(c.uptime(), None);
        c.add_result("ok", 10);
        c.add_result("degraded", 30);
        assert_eq!(c.worst(), Some("degraded"));
        c.add_result("down", 5);
        assert_eq!(c.worst(), Some("down"));
        assert_eq!(c.latency_max, 30);
        assert!((c.uptime().unwrap_or(0.0) - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(floor(3_600_001, HOUR_MS), 3_600_000);
        assert_eq!(floor(-1, HOUR_MS), -HOUR_MS);
    }
}
