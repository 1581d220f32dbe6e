//! Durable timers: escalation steps (and other scheduled work) as rows with a
//! due time and a lease.
//!
//! A node claims due rows by writing its lease (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, the single writer on SQLite). What a timer does when it fires
//! commits in one transaction with the timer's next state, guarded by the
//! lease: a step whose lease was lost (the node stalled past the lease and
//! another node claimed it, or an acknowledgement changed the timer) rolls
//! back. So each step fires exactly once whichever node runs it.

use jiff::Timestamp;
use klaxon_domain::config::Catalog;
use klaxon_domain::engine::EscalationOp;
use klaxon_domain::{EventKind, Incident, TimelineEvent};
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use crate::error::ts;
use crate::{Backend, Store, StoreError};

/// Timer kind of escalation steps (one per incident, key `esc:<pk>`).
pub const ESCALATION: &str = "escalation";

fn esc_key(pk: i64) -> String {
    format!("esc:{pk}")
}

/// A claimed timer.
#[derive(Debug, Clone)]
pub struct ClaimedTimer {
    pub key: String,
    pub kind: String,
    pub incident_pk: Option<i64>,
    pub step: u32,
    pub forced: bool,
    /// Users to page first (a reassignment).
    pub page: Option<Vec<String>>,
    pub due_at: Timestamp,
    /// The time the timer tracks (a cadence timer: the update due).
    pub target_at: Option<Timestamp>,
    /// The lease token; the completion must present it.
    pub lease: String,
    pub attempts: u32,
}

/// What an escalation timer does next after firing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerNext {
    pub step: u32,
    /// `None`: paused until an event moves it.
    pub due_at: Option<Timestamp>,
}

/// A notification to queue in the outbox.
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub idempotency_key: String,
    pub user_id: String,
    pub channel: String,
    pub contact: String,
    pub address: String,
    pub body: String,
    pub due_at: Timestamp,
    /// Drop it if the incident is acknowledged before it is due.
    pub cancel_on_ack: bool,
    /// A stakeholder message rather than a page: delivered even after the
    /// incident is resolved.
    pub message: bool,
}

/// The result of firing an escalation step, committed together.
#[derive(Debug, Clone)]
pub struct StepOutcome {
    pub events: Vec<EventKind>,
    pub notifications: Vec<NewNotification>,
    pub next: TimerNext,
}

/// Apply timer changes inside the transaction that appended the events.
pub(crate) async fn apply_escalation_ops(
    tx: &mut Transaction<'_, Any>,
    pk: i64,
    ops: &[EscalationOp],
    now: Timestamp,
) -> Result<(), StoreError> {
    let key = esc_key(pk);
    let insert = "INSERT INTO timers (key, kind, incident_pk, step, forced, page, due_at, attempts, created_at) \
                  VALUES ($1, 'escalation', $2, 0, $3, $4, $5, 0, $6) ON CONFLICT (key) DO UPDATE SET ";
    for op in ops {
        let (sql, forced, page, due): (String, i64, Option<String>, Option<i64>) = match op {
            EscalationOp::Start { at } => (
                format!(
                    "{insert}step = 0, forced = 0, page = NULL, due_at = excluded.due_at, lease_owner = NULL, lease_until = NULL"
                ),
                0,
                None,
                Some(at.as_millisecond()),
            ),
            EscalationOp::Resume { at } => (
                format!("{insert}due_at = excluded.due_at, lease_owner = NULL, lease_until = NULL"),
                0,
                None,
                Some(at.as_millisecond()),
            ),
            EscalationOp::Force { at } => (
                format!("{insert}due_at = excluded.due_at, forced = 1, lease_owner = NULL, lease_until = NULL"),
                1,
                None,
                Some(at.as_millisecond()),
            ),
            EscalationOp::Page { users, at } => (
                format!(
                    "{insert}due_at = excluded.due_at, page = excluded.page, lease_owner = NULL, lease_until = NULL"
                ),
                0,
                Some(crate::incidents::to_json(users)?),
                Some(at.as_millisecond()),
            ),
            EscalationOp::Pause => {
                sqlx::query(
                    "UPDATE timers SET due_at = NULL, forced = 0, lease_owner = NULL, lease_until = NULL WHERE key = $1",
                )
                .bind(key.clone())
                .execute(&mut **tx)
                .await?;
                continue;
            }
            EscalationOp::Stop => {
                sqlx::query("DELETE FROM timers WHERE key = $1")
                    .bind(key.clone())
                    .execute(&mut **tx)
                    .await?;
                continue;
            }
        };
        sqlx::query(AssertSqlSafe(sql))
            .bind(key.clone())
            .bind(pk)
            .bind(forced)
            .bind(page)
            .bind(due)
            .bind(now.as_millisecond())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Timer kinds of paging rules (`rule:<name>:<pk>`) and update cadence (`cadence:<pk>`).
pub const RULE: &str = "rule";
pub const CADENCE: &str = "cadence";
/// Timer kind of stakeholder messages (`comms:<pk>:<seq>`, step = the event's seq):
/// armed in the transaction that appends the event, so a message is never lost.
pub const COMMS: &str = "comms";

/// Events after which paging rules and the update cadence are looked at again.
fn reevaluate(events: &[TimelineEvent]) -> bool {
    events.iter().any(|e| {
        matches!(
            e.kind,
            EventKind::Declared { .. }
                | EventKind::StatusChanged { .. }
                | EventKind::Reopened { .. }
                | EventKind::SeverityChanged { .. }
                | EventKind::FieldsChanged { .. }
                | EventKind::Unacknowledged { .. }
                | EventKind::UpdatePosted { .. }
        )
    })
}

/// The timer changes that appended events call for: the escalation timer,
/// paging rules (armed while their condition holds, at most one firing each)
/// and the update-cadence reminder.
/// A `comms` timer per event that stakeholders hear about at this severity.
async fn arm_comms(
    tx: &mut Transaction<'_, Any>,
    pk: i64,
    inc: &Incident,
    events: &[TimelineEvent],
    now: Timestamp,
    cat: &Catalog,
) -> Result<bool, StoreError> {
    let mut armed = false;
    let mut subscribers: Option<bool> = None;
    for e in events {
        let public_update = !inc.private && matches!(e.kind, EventKind::UpdatePosted { public: true, .. });
        let rules = cat
            .communication
            .wants(&e.kind)
            .is_some_and(|ev| !cat.communication.audience(&inc.severity, ev, true).is_empty());
        if !rules && public_update && subscribers.is_none() {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subscribers WHERE state = 'confirmed'")
                .fetch_one(&mut **tx)
                .await?;
            subscribers = Some(n > 0);
        }
        if !(rules || (public_update && subscribers == Some(true))) {
            continue;
        }
        sqlx::query(
            "INSERT INTO timers (key, kind, incident_pk, step, forced, due_at, attempts, created_at) \
             VALUES ($1, 'comms', $2, $3, 0, $4, 0, $4) ON CONFLICT (key) DO NOTHING",
        )
        .bind(format!("comms:{pk}:{}", e.seq))
        .bind(pk)
        .bind(e.seq as i64)
        .bind(now.as_millisecond())
        .execute(&mut **tx)
        .await?;
        armed = true;
    }
    Ok(armed)
}

pub(crate) async fn after_events(
    tx: &mut Transaction<'_, Any>,
    pk: i64,
    inc: &Incident,
    events: &[TimelineEvent],
    now: Timestamp,
    cat: &Catalog,
) -> Result<bool, StoreError> {
    let ops = klaxon_domain::engine::escalation_ops(inc, events);
    apply_escalation_ops(tx, pk, &ops, now).await?;
    let comms = arm_comms(tx, pk, inc, events, now, cat).await?;
    if !reevaluate(events) {
        return Ok(!ops.is_empty() || comms);
    }
    for rule in &cat.paging_rules {
        let key = format!("rule:{}:{pk}", rule.name);
        if rule.matches(inc) {
            // Unfired rules are (re)armed; a fired one (step 1) stays fired.
            sqlx::query(
                "INSERT INTO timers (key, kind, incident_pk, step, forced, due_at, attempts, created_at) \
                 VALUES ($1, 'rule', $2, 0, 0, $3, 0, $4) ON CONFLICT (key) DO UPDATE SET due_at = excluded.due_at, \
                 lease_owner = NULL, lease_until = NULL WHERE timers.step = 0",
            )
            .bind(key)
            .bind(pk)
            .bind(rule.due(inc, now).as_millisecond())
            .bind(now.as_millisecond())
            .execute(&mut **tx)
            .await?;
        } else {
            sqlx::query("DELETE FROM timers WHERE key = $1 AND step = 0")
                .bind(key)
                .execute(&mut **tx)
                .await?;
        }
    }
    let key = format!("cadence:{pk}");
    match inc.next_update_due.filter(|_| inc.status.is_open()) {
        Some(due) => {
            let lead = jiff::SignedDuration::try_from(cat.update_reminder).unwrap_or_default();
            let remind = due.checked_sub(lead).unwrap_or(due);
            // Re-armed only when the due time moves: one reminder per due time.
            sqlx::query(
                "INSERT INTO timers (key, kind, incident_pk, step, forced, target_at, due_at, attempts, created_at) \
                 VALUES ($1, 'cadence', $2, 0, 0, $3, $4, 0, $5) ON CONFLICT (key) DO UPDATE SET step = 0, \
                 target_at = excluded.target_at, due_at = excluded.due_at, lease_owner = NULL, lease_until = NULL \
                 WHERE timers.target_at IS NULL OR timers.target_at <> excluded.target_at",
            )
            .bind(key)
            .bind(pk)
            .bind(due.as_millisecond())
            .bind(remind.as_millisecond())
            .bind(now.as_millisecond())
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM timers WHERE key = $1")
                .bind(key)
                .execute(&mut **tx)
                .await?;
        }
    }
    if !inc.status.is_open() {
        sqlx::query("DELETE FROM timers WHERE incident_pk = $1 AND kind = 'rule' AND step = 0")
            .bind(pk)
            .execute(&mut **tx)
            .await?;
    }
    Ok(true)
}

impl Store {
    /// Wake the engine: timers or notifications changed.
    pub fn wake_engine(&self) {
        self.timers_wake.notify_one();
        self.outbox_wake.notify_one();
    }

    /// Resolves when [`Store::wake_engine`] was called (by this process).
    pub async fn timers_woken(&self) {
        self.timers_wake.notified().await;
    }

    /// Resolves when [`Store::wake_engine`] was called (by this process).
    pub async fn outbox_woken(&self) {
        self.outbox_wake.notified().await;
    }

    /// Lease up to `limit` due, unleased (or lease-expired) rows of `table`
    /// whose `filter` holds, oldest due first: the claim shared by timers and
    /// the outbox. Returns the lease token and the rows (`returning`).
    pub(crate) async fn claim_rows(
        &self,
        table: &str,
        id: &str,
        filter: &str,
        returning: &str,
        (owner, now, lease_for, limit): (&str, Timestamp, std::time::Duration, u32),
    ) -> Result<(String, Vec<sqlx::any::AnyRow>), StoreError> {
        let token = crate::random_hex(&format!("{owner}:"), 6);
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let until = now.as_millisecond().saturating_add(lease_for.as_millis() as i64);
        let rows = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {table} SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 WHERE {id} IN \
             (SELECT {id} FROM {table} WHERE {filter} AND due_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
              ORDER BY due_at LIMIT $4{lock}) RETURNING {returning}"
        )))
        .bind(token.clone())
        .bind(until)
        .bind(now.as_millisecond())
        .bind(limit as i64)
        .fetch_all(&self.write)
        .await?;
        Ok((token, rows))
    }

    /// Claim up to `limit` due timers for `lease_for`; `owner` names the node.
    pub async fn claim_timers(
        &self,
        owner: &str,
        now: Timestamp,
        lease_for: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedTimer>, StoreError> {
        let (token, rows) = self
            .claim_rows(
                "timers",
                "key",
                "due_at IS NOT NULL",
                "key, kind, incident_pk, step, forced, page, due_at, target_at, attempts",
                (owner, now, lease_for, limit),
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let page: Option<String> = r.try_get("page")?;
            out.push(ClaimedTimer {
                key: r.try_get("key")?,
                kind: r.try_get("kind")?,
                incident_pk: r.try_get("incident_pk")?,
                step: r.try_get::<i64, _>("step")? as u32,
                forced: r.try_get::<i64, _>("forced")? != 0,
                page: page
                    .map(|p| serde_json::from_str(&p).map_err(|e| StoreError::Corrupt(format!("timer page: {e}"))))
                    .transpose()?,
                due_at: ts(r.try_get("due_at")?)?,
                target_at: r.try_get::<Option<i64>, _>("target_at")?.map(ts).transpose()?,
                lease: token.clone(),
                attempts: r.try_get::<i64, _>("attempts")? as u32,
            });
        }
        out.sort_by_key(|t| t.due_at);
        Ok(out)
    }

    /// When a timer can next be claimed: the earliest due unleased timer, or
    /// the earliest lease to run out (a node died holding it).
    pub async fn next_timer_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT MIN(due_at) FROM timers WHERE due_at IS NOT NULL AND lease_owner IS NULL) AS due, \
             (SELECT MIN(lease_until) FROM timers WHERE lease_owner IS NOT NULL AND due_at IS NOT NULL) AS lease",
        )
        .fetch_one(&self.read)
        .await?;
        let due: Option<i64> = row.try_get("due")?;
        let lease: Option<i64> = row.try_get("lease")?;
        due.into_iter().chain(lease).min().map(ts).transpose()
    }

    /// Give a claimed timer back (it fires again at once, on any node).
    pub async fn release_timer(&self, t: &ClaimedTimer) -> Result<(), StoreError> {
        sqlx::query("UPDATE timers SET lease_owner = NULL, lease_until = NULL WHERE key = $1 AND lease_owner = $2")
            .bind(t.key.clone())
            .bind(t.lease.clone())
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Delete claimed timers that only mark a time (benchmarks); returns how many were still ours.
    pub async fn complete_timers(&self, done: &[ClaimedTimer]) -> Result<u64, StoreError> {
        let mut n = 0;
        for chunk in done.chunks(500) {
            let mut sql = String::from("DELETE FROM timers WHERE (key, lease_owner) IN (");
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("(${}, ${})", 2 * i + 1, 2 * i + 2));
            }
            sql.push(')');
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for t in chunk {
                q = q.bind(t.key.clone()).bind(t.lease.clone());
            }
            n += q.execute(&self.write).await?.rows_affected();
        }
        Ok(n)
    }

    /// Schedule plain timers (benchmarks and tests): `(key, due)`.
    pub async fn insert_timers(
        &self,
        kind: &str,
        timers: &[(String, Timestamp)],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.write.begin().await?;
        for chunk in timers.chunks(1000) {
            let mut sql = String::from("INSERT INTO timers (key, kind, due_at, created_at) VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${})",
                    4 * i + 1,
                    4 * i + 2,
                    4 * i + 3,
                    4 * i + 4
                ));
            }
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (key, due) in chunk {
                q = q
                    .bind(key.clone())
                    .bind(kind.to_string())
                    .bind(due.as_millisecond())
                    .bind(now.as_millisecond());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.wake_engine();
        Ok(())
    }

    /// Forget every timer of a kind (benchmarks).
    pub async fn delete_timers(&self, kind: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM timers WHERE kind = $1")
            .bind(kind.to_string())
            .execute(&self.write)
            .await?
            .rows_affected())
    }

    /// Pending timers of a kind (tests, `klaxon bench timers`).
    pub async fn count_timers(&self, kind: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM timers WHERE kind = $1")
            .bind(kind.to_string())
            .fetch_one(&self.read)
            .await?)
    }

    /// The incident an escalation timer belongs to.
    pub async fn incident_by_pk(&self, pk: i64) -> Result<Option<Incident>, StoreError> {
        let body: Option<String> = sqlx::query_scalar("SELECT body FROM incidents WHERE pk = $1")
            .bind(pk)
            .fetch_optional(&self.read)
            .await?;
        body.as_deref().map(crate::incidents::parse_body).transpose()
    }

    /// Commit a fired step (escalation, rule or cadence): the events, the
    /// notifications and the timer's next state, if the lease is still ours and
    /// the incident is still as `expect` was. Returns false (nothing written) otherwise.
    pub async fn complete_step(
        &self,
        t: &ClaimedTimer,
        expect: &Incident,
        out: StepOutcome,
        actor: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let Some(pk) = t.incident_pk else {
            return Ok(false);
        };
        let mut tx = self.write.begin().await?;
        let Some((locked_pk, head, inc)) = crate::incidents::lock_incident(&mut tx, self.backend, &expect.id).await?
        else {
            return Ok(false);
        };
        let state = |i: &Incident| {
            (
                i.status,
                i.severity.clone(),
                i.category.clone(),
                i.services.clone(),
                i.snoozed_until,
                i.escalation_policy.clone(),
                i.next_update_due,
            )
        };
        if locked_pk != pk || state(&inc) != state(expect) {
            return Ok(false);
        }
        let next_due = out.next.due_at.map(|d| d.as_millisecond());
        let updated = if t.kind == COMMS && next_due.is_none() {
            // Done for good: a message timer is not re-armed.
            sqlx::query("DELETE FROM timers WHERE key = $1 AND lease_owner = $2")
                .bind(t.key.clone())
                .bind(t.lease.clone())
                .execute(&mut *tx)
                .await?
                .rows_affected()
        } else {
            sqlx::query(
                "UPDATE timers SET step = $1, due_at = $2, forced = 0, page = NULL, lease_owner = NULL, lease_until = NULL, attempts = 0 \
                 WHERE key = $3 AND lease_owner = $4",
            )
            .bind(out.next.step as i64)
            .bind(next_due)
            .bind(t.key.clone())
            .bind(t.lease.clone())
            .execute(&mut *tx)
            .await?
            .rows_affected()
        };
        if updated != 1 {
            return Ok(false);
        }
        let n_notes = out.notifications.len();
        for n in &out.notifications {
            crate::outbox::insert_notification(&mut tx, pk, &inc.id, n, now).await?;
        }
        // Without timer ops: events the step appends (an unacknowledgement at
        // the end of a snooze) must not move the timer it just set.
        crate::incidents::append_tx(&mut tx, pk, head, inc, out.events, actor, now).await?;
        tx.commit().await?;
        if n_notes > 0 {
            self.wake_engine();
        }
        Ok(true)
    }
}
