//! The notification outbox: rows queued with the step that pages, claimed
//! with a lease by a delivery worker, and finished as delivered, retried,
//! dead (given up, listed for an operator) or cancelled (acknowledged first).

use jiff::Timestamp;
pub use klaxon_domain::wire::Notification;
use klaxon_domain::{EventKind, Status};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::error::ts;
use crate::{Store, StoreError};

/// A claimed notification and what the worker needs to deliver it.
#[derive(Debug, Clone)]
pub struct ClaimedNotification {
    pub n: Notification,
    pub cancel_on_ack: bool,
    /// Status of its incident when claimed.
    pub incident_status: Status,
    pub lease: String,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone)]
pub enum Delivery {
    Delivered,
    /// Try again at `at`.
    Retry {
        at: Timestamp,
        error: String,
    },
    /// Give up.
    Dead {
        error: String,
    },
    /// The incident was acknowledged before this was due.
    Cancelled,
}

const COLS: &str = "id, idempotency_key, incident_id, user_id, channel, contact, address, body, state, cancel_on_ack, \
                    purpose, attempts, due_at, last_error, created_at, delivered_at, incident_pk";

fn row(r: &AnyRow) -> Result<Notification, StoreError> {
    Ok(Notification {
        id: r.try_get("id")?,
        idempotency_key: r.try_get("idempotency_key")?,
        incident_id: r.try_get("incident_id")?,
        user: r.try_get("user_id")?,
        channel: r.try_get("channel")?,
        contact: r.try_get("contact")?,
        address: r.try_get("address")?,
        purpose: r.try_get("purpose")?,
        state: r.try_get("state")?,
        attempts: r.try_get::<i64, _>("attempts")? as u32,
        due_at: ts(r.try_get("due_at")?)?,
        last_error: r.try_get("last_error")?,
        created_at: ts(r.try_get("created_at")?)?,
        delivered_at: r.try_get::<Option<i64>, _>("delivered_at")?.map(ts).transpose()?,
        body: r.try_get("body")?,
    })
}

/// Filters of `GET /api/v1/notifications`.
#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    pub state: Option<String>,
    pub incident_id: Option<String>,
    pub limit: u32,
}

/// Queue one notification in an open transaction; 0 if its key was queued before.
pub(crate) async fn insert_notification(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    incident_pk: i64,
    incident_id: &str,
    x: &crate::NewNotification,
    now: Timestamp,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "INSERT INTO notifications (idempotency_key, incident_pk, incident_id, user_id, channel, contact, address, body, \
         state, cancel_on_ack, purpose, attempts, due_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, 0, $11, $12) ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(x.idempotency_key.clone())
    .bind(incident_pk)
    .bind(incident_id.to_string())
    .bind(x.user_id.clone())
    .bind(x.channel.clone())
    .bind(x.contact.clone())
    .bind(x.address.clone())
    .bind(x.body.clone())
    .bind(x.cancel_on_ack as i64)
    .bind(if x.message { "message" } else { "page" })
    .bind(x.due_at.as_millisecond())
    .bind(now.as_millisecond())
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

impl Store {
    /// Claim up to `limit` due pending notifications.
    pub async fn claim_notifications(
        &self,
        owner: &str,
        now: Timestamp,
        lease_for: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedNotification>, StoreError> {
        let (token, rows) = self
            .claim_rows(
                "notifications",
                "id",
                "state = 'pending'",
                COLS,
                (owner, now, lease_for, limit),
            )
            .await?;
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let pks: Vec<i64> = rows
            .iter()
            .map(|r| r.try_get::<i64, _>("incident_pk"))
            .collect::<Result<_, _>>()?;
        let ph: Vec<String> = (1..=pks.len()).map(|i| format!("${i}")).collect();
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "SELECT pk, status FROM incidents WHERE pk IN ({})",
            ph.join(", ")
        )));
        for pk in &pks {
            q = q.bind(*pk);
        }
        let statuses: std::collections::HashMap<i64, String> = q
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| Ok((r.try_get::<i64, _>("pk")?, r.try_get::<String, _>("status")?)))
            .collect::<Result<_, StoreError>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (r, pk) in rows.iter().zip(pks) {
            let status = statuses
                .get(&pk)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| StoreError::Corrupt(format!("notification of unknown incident {pk}")))?;
            out.push(ClaimedNotification {
                n: row(r)?,
                cancel_on_ack: r.try_get::<i64, _>("cancel_on_ack")? != 0,
                incident_status: status,
                lease: token.clone(),
            });
        }
        out.sort_by_key(|c| c.n.due_at);
        Ok(out)
    }

    /// The earliest due time of an unleased pending notification.
    pub async fn next_notification_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT MIN(due_at) FROM notifications WHERE state = 'pending' AND lease_owner IS NULL")
                .fetch_one(&self.read)
                .await?;
        v.map(ts).transpose()
    }

    /// Record how attempts ended, all in one transaction. Every attempt but a
    /// cancellation is also an event on its incident's timeline (channel,
    /// target, outcome, latency, error, next try), appended once per incident.
    /// Returns how many outcomes were dropped because their lease was lost.
    pub async fn finish_notifications(
        &self,
        outcomes: Vec<(ClaimedNotification, Delivery, Option<u64>)>,
        actor: &str,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let mut tx = self.write.begin().await?;
        let mut lost = 0;
        let mut retry = false;
        let mut events: std::collections::BTreeMap<String, Vec<EventKind>> = Default::default();
        for (c, outcome, latency_ms) in outcomes {
            let (state, due, error, delivered_at, retry_at) = match outcome {
                Delivery::Delivered => ("delivered", c.n.due_at, None, Some(now.as_millisecond()), None),
                Delivery::Retry { at, error } => ("pending", at, Some(error), None, Some(at)),
                Delivery::Dead { error } => ("dead", c.n.due_at, Some(error), None, None),
                Delivery::Cancelled => ("cancelled", c.n.due_at, None, None, None),
            };
            let done = sqlx::query(
                "UPDATE notifications SET state = $1, due_at = $2, last_error = $3, delivered_at = $4, \
                 lease_owner = NULL, lease_until = NULL WHERE id = $5 AND lease_owner = $6",
            )
            .bind(state)
            .bind(due.as_millisecond())
            .bind(error.clone())
            .bind(delivered_at)
            .bind(c.n.id)
            .bind(c.lease.clone())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done != 1 {
                lost += 1;
                continue;
            }
            retry |= retry_at.is_some();
            if state != "cancelled" {
                events
                    .entry(c.n.incident_id.clone())
                    .or_default()
                    .push(EventKind::Notified {
                        notification_id: c.n.id,
                        user: c.n.user.clone(),
                        channel: c.n.channel.clone(),
                        contact: c.n.contact.clone(),
                        attempts: c.n.attempts,
                        delivered: state == "delivered",
                        error,
                        latency_ms,
                        retry_at,
                    });
            }
        }
        for (incident_id, kinds) in events {
            if let Some((pk, head, inc)) = crate::incidents::lock_incident(&mut tx, self.backend, &incident_id).await? {
                crate::incidents::append_tx(&mut tx, pk, head, inc, kinds, actor, now).await?;
            }
        }
        tx.commit().await?;
        if retry {
            self.wake_engine();
        }
        Ok(lost)
    }

    /// Queue notifications for an incident directly (benchmarks, and channels
    /// that notify outside the escalation engine). Returns how many were new.
    pub async fn enqueue_notifications(
        &self,
        incident_id: &str,
        list: &[crate::NewNotification],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let pk: i64 = sqlx::query_scalar("SELECT pk FROM incidents WHERE id = $1")
            .bind(incident_id.to_string())
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| StoreError::NotFound(incident_id.to_string()))?;
        let mut tx = self.write.begin().await?;
        let mut n = 0;
        for x in list {
            n += insert_notification(&mut tx, pk, incident_id, x, now).await?;
        }
        tx.commit().await?;
        self.wake_engine();
        Ok(n)
    }

    pub async fn notifications(&self, f: &NotificationFilter) -> Result<Vec<Notification>, StoreError> {
        let mut sql = format!("SELECT {COLS} FROM notifications WHERE 1 = 1");
        let mut binds = Vec::new();
        if let Some(s) = &f.state {
            binds.push(s.clone());
            sql.push_str(&format!(" AND state = ${}", binds.len()));
        }
        if let Some(i) = &f.incident_id {
            binds.push(i.clone());
            sql.push_str(&format!(" AND incident_id = ${}", binds.len()));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", f.limit.clamp(1, 1000)));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        q.fetch_all(&self.read).await?.iter().map(row).collect()
    }

    pub async fn notification(&self, id: i64) -> Result<Option<Notification>, StoreError> {
        sqlx::query(AssertSqlSafe(format!("SELECT {COLS} FROM notifications WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.read)
            .await?
            .as_ref()
            .map(row)
            .transpose()
    }

    /// Queue a dead (or cancelled) notification again, due now.
    pub async fn retry_notification(&self, id: i64, now: Timestamp) -> Result<Notification, StoreError> {
        let n = sqlx::query(
            "UPDATE notifications SET state = 'pending', due_at = $1, attempts = 0, last_error = NULL, \
             lease_owner = NULL, lease_until = NULL WHERE id = $2 AND state IN ('dead', 'cancelled')",
        )
        .bind(now.as_millisecond())
        .bind(id)
        .execute(&self.write)
        .await?
        .rows_affected();
        let current = self
            .notification(id)
            .await?
            .ok_or_else(|| StoreError::NotFoundOf("notification", id.to_string()))?;
        if n != 1 {
            return Err(StoreError::Conflict(format!(
                "notification {id} is {}; only dead or cancelled notifications are retried",
                current.state
            )));
        }
        self.wake_engine();
        Ok(current)
    }
}
