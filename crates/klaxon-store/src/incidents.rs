//! Incidents and their timelines.

use jiff::Timestamp;
use klaxon_domain::config::Catalog;
use klaxon_domain::decide::{self, Command};
use klaxon_domain::event::{self, GENESIS_HASH, StoredEvent, VerifyReport};
use klaxon_domain::wire::DeclareIncident;
use klaxon_domain::{Incident, Status, TimelineEvent};
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use crate::error::ts;
use crate::{Store, StoreError};

/// Filters for listing incidents; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub statuses: Vec<Status>,
    pub severities: Vec<String>,
    pub category: Option<String>,
    pub service: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub include_private: bool,
    /// Return incidents with an internal key below this (the cursor).
    pub before_pk: Option<i64>,
    pub limit: u32,
}

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

pub(crate) fn parse_body(body: &str) -> Result<Incident, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("incident body: {e}")))
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("encoding: {e}")))
}

async fn insert_event(tx: &mut Transaction<'_, Any>, pk: i64, e: &TimelineEvent) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO incident_events (incident_pk, seq, at, actor, type, payload, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(pk)
    .bind(e.seq as i64)
    .bind(ms(e.at))
    .bind(e.actor.clone())
    .bind(e.kind.type_name())
    .bind(to_json(&e.kind)?)
    .bind(e.prev_hash.clone())
    .bind(e.hash.clone())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn write_services(
    tx: &mut Transaction<'_, Any>,
    pk: i64,
    services: &[String],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM incident_services WHERE incident_pk = $1")
        .bind(pk)
        .execute(&mut **tx)
        .await?;
    for s in services {
        sqlx::query("INSERT INTO incident_services (incident_pk, service) VALUES ($1, $2)")
            .bind(pk)
            .bind(s.clone())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Declare inside an open transaction. Returns the incident and its internal key.
async fn declare_tx(
    tx: &mut Transaction<'_, Any>,
    draft: Incident,
    actor: &str,
    now: Timestamp,
    cat: &Catalog,
) -> Result<(Incident, i64, TimelineEvent), StoreError> {
    let scope = cat.id_format.scope(now);
    // The counter row is locked until commit: concurrent declares queue
    // here, and a rolled-back declare gives its number back.
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO id_counters (scope, last) VALUES ($1, 1) \
         ON CONFLICT (scope) DO UPDATE SET last = id_counters.last + 1 RETURNING last",
    )
    .bind(scope)
    .fetch_one(&mut **tx)
    .await?;
    let id = cat.id_format.render(now, seq as u64);
    let kind = decide::declared(draft, id.clone());
    let ev = TimelineEvent::seal(&id, 1, now, actor, kind, GENESIS_HASH);
    let inc = event::apply(None, &ev).ok_or_else(|| StoreError::Corrupt("declared event".into()))?;
    let pk: i64 = sqlx::query_scalar(
        "INSERT INTO incidents (id, title, severity, category, status, private, started_at, declared_at, updated_at, version, head_hash, body) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING pk",
    )
    .bind(inc.id.clone())
    .bind(inc.title.clone())
    .bind(inc.severity.clone())
    .bind(inc.category.clone())
    .bind(inc.status.as_str())
    .bind(inc.private as i64)
    .bind(ms(inc.started_at))
    .bind(ms(inc.declared_at))
    .bind(ms(inc.updated_at))
    .bind(inc.version as i64)
    .bind(ev.hash.clone())
    .bind(to_json(&inc)?)
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.message().contains("incidents_id_key") || d.message().contains("incidents.id") => {
            StoreError::Conflict(format!("incident ID {id} is already taken (was the id_format changed?)"))
        }
        _ => StoreError::Db(e),
    })?;
    write_services(tx, pk, &inc.services).await?;
    insert_event(tx, pk, &ev).await?;
    crate::timers::after_events(tx, pk, &inc, std::slice::from_ref(&ev), now, cat).await?;
    Ok((inc, pk, ev))
}

/// Load an incident for update inside a transaction.
pub(crate) async fn lock_incident(
    tx: &mut Transaction<'_, Any>,
    backend: crate::Backend,
    id: &str,
) -> Result<Option<(i64, String, Incident)>, StoreError> {
    let lock = match backend {
        crate::Backend::Postgres => " FOR UPDATE",
        crate::Backend::Sqlite => "",
    };
    let q = sqlx::query(AssertSqlSafe(format!(
        "SELECT pk, head_hash, body FROM incidents WHERE id = $1{lock}"
    )))
    .bind(id.to_string());
    let Some(row) = q.fetch_optional(&mut **tx).await? else {
        return Ok(None);
    };
    let pk: i64 = row.try_get("pk")?;
    let head: String = row.try_get("head_hash")?;
    let inc = parse_body(&row.try_get::<String, _>("body")?)?;
    Ok(Some((pk, head, inc)))
}

/// Append already-decided events to a locked incident and update its projection.
pub(crate) async fn append_tx(
    tx: &mut Transaction<'_, Any>,
    pk: i64,
    mut head: String,
    mut inc: Incident,
    kinds: Vec<klaxon_domain::EventKind>,
    actor: &str,
    now: Timestamp,
) -> Result<(Incident, Vec<TimelineEvent>), StoreError> {
    if kinds.is_empty() {
        return Ok((inc, vec![]));
    }
    let mut events = Vec::with_capacity(kinds.len());
    for kind in kinds {
        let ev = TimelineEvent::seal(&inc.id, inc.version + 1, now, actor, kind, &head);
        inc = event::apply(Some(inc), &ev).ok_or_else(|| StoreError::Corrupt("apply".into()))?;
        head = ev.hash.clone();
        insert_event(tx, pk, &ev).await?;
        events.push(ev);
    }
    if events.iter().any(|e| matches!(&e.kind, klaxon_domain::EventKind::FieldsChanged { changes } if changes.iter().any(|c| c.field == "services"))) {
        write_services(tx, pk, &inc.services).await?;
    }
    sqlx::query(
        "UPDATE incidents SET title = $1, severity = $2, category = $3, status = $4, private = $5, \
         started_at = $6, updated_at = $7, version = $8, head_hash = $9, body = $10 WHERE pk = $11",
    )
    .bind(inc.title.clone())
    .bind(inc.severity.clone())
    .bind(inc.category.clone())
    .bind(inc.status.as_str())
    .bind(inc.private as i64)
    .bind(ms(inc.started_at))
    .bind(ms(inc.updated_at))
    .bind(inc.version as i64)
    .bind(head)
    .bind(to_json(&inc)?)
    .bind(pk)
    .execute(&mut **tx)
    .await?;
    Ok((inc, events))
}

/// Run a command on a locked incident inside a transaction.
async fn command_tx(
    tx: &mut Transaction<'_, Any>,
    backend: crate::Backend,
    id: &str,
    cmd: Command,
    actor: &str,
    now: Timestamp,
    cat: &Catalog,
) -> Result<(Incident, Vec<TimelineEvent>), StoreError> {
    let (pk, head, inc) = lock_incident(tx, backend, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
    let kinds = decide::decide(&inc, cmd, now, cat)?;
    let (inc, events) = append_tx(tx, pk, head, inc, kinds, actor, now).await?;
    crate::timers::after_events(tx, pk, &inc, &events, now, cat).await?;
    Ok((inc, events))
}

impl Store {
    /// Declare an incident: allocate its ID (gap-free per scope), store it and
    /// its `declared` event, all in one transaction.
    pub async fn declare(
        &self,
        req: &DeclareIncident,
        actor: &str,
        now: Timestamp,
        cat: &Catalog,
    ) -> Result<(Incident, TimelineEvent), StoreError> {
        let draft = decide::validate_declaration(req, actor, now, cat)?;
        let mut tx = self.write.begin().await?;
        let (inc, _, ev) = declare_tx(&mut tx, draft, actor, now, cat).await?;
        tx.commit().await?;
        self.wake_engine();
        Ok((inc, ev))
    }

    /// Run a command on an incident. Returns the incident after the command
    /// and the events it appended (none if the command changed nothing).
    pub async fn command(
        &self,
        id: &str,
        cmd: Command,
        actor: &str,
        now: Timestamp,
        cat: &Catalog,
    ) -> Result<(Incident, Vec<TimelineEvent>), StoreError> {
        let mut tx = self.write.begin().await?;
        let out = command_tx(&mut tx, self.backend, id, cmd, actor, now, cat).await?;
        if !out.1.is_empty() {
            tx.commit().await?;
            self.wake_engine();
        }
        Ok(out)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let body: Option<String> = sqlx::query_scalar("SELECT body FROM incidents WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?;
        body.as_deref().map(parse_body).transpose()
    }

    /// Newest first. Returns the page and the cursor of the next page.
    pub async fn list(&self, f: &ListFilter) -> Result<(Vec<Incident>, Option<i64>), StoreError> {
        let mut sql = String::from("SELECT i.pk, i.body FROM incidents i WHERE 1 = 1");
        let mut binds: Vec<BindValue> = Vec::new();
        let push = |binds: &mut Vec<BindValue>, v: BindValue| {
            binds.push(v);
            format!("${}", binds.len())
        };
        if !f.statuses.is_empty() {
            let ph: Vec<String> = f
                .statuses
                .iter()
                .map(|s| push(&mut binds, BindValue::Text(s.as_str().into())))
                .collect();
            sql.push_str(&format!(" AND i.status IN ({})", ph.join(", ")));
        }
        if !f.severities.is_empty() {
            let ph: Vec<String> = f
                .severities
                .iter()
                .map(|s| push(&mut binds, BindValue::Text(s.clone())))
                .collect();
            sql.push_str(&format!(" AND i.severity IN ({})", ph.join(", ")));
        }
        if let Some(c) = &f.category {
            sql.push_str(&format!(
                " AND i.category = {}",
                push(&mut binds, BindValue::Text(c.clone()))
            ));
        }
        if let Some(s) = &f.service {
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM incident_services s WHERE s.incident_pk = i.pk AND s.service = {})",
                push(&mut binds, BindValue::Text(s.clone()))
            ));
        }
        if let Some(t) = f.from {
            sql.push_str(&format!(
                " AND i.started_at >= {}",
                push(&mut binds, BindValue::Int(ms(t)))
            ));
        }
        if let Some(t) = f.to {
            sql.push_str(&format!(
                " AND i.started_at < {}",
                push(&mut binds, BindValue::Int(ms(t)))
            ));
        }
        if !f.include_private {
            sql.push_str(" AND i.private = 0");
        }
        if let Some(pk) = f.before_pk {
            sql.push_str(&format!(" AND i.pk < {}", push(&mut binds, BindValue::Int(pk))));
        }
        let limit = f.limit.clamp(1, 500) as i64;
        sql.push_str(&format!(
            " ORDER BY i.pk DESC LIMIT {}",
            push(&mut binds, BindValue::Int(limit + 1))
        ));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for b in binds {
            q = match b {
                BindValue::Text(t) => q.bind(t),
                BindValue::Int(i) => q.bind(i),
            };
        }
        let rows: Vec<AnyRow> = q.fetch_all(&self.read).await?;
        let mut items = Vec::with_capacity(rows.len());
        let mut last_pk = None;
        for row in rows.iter().take(limit as usize) {
            last_pk = Some(row.try_get::<i64, _>("pk")?);
            items.push(parse_body(&row.try_get::<String, _>("body")?)?);
        }
        let next = if rows.len() as i64 > limit { last_pk } else { None };
        Ok((items, next))
    }

    async fn stored_events(&self, id: &str) -> Result<Option<Vec<StoredEvent>>, StoreError> {
        let pk: Option<i64> = sqlx::query_scalar("SELECT pk FROM incidents WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?;
        let Some(pk) = pk else { return Ok(None) };
        let rows = sqlx::query(
            "SELECT seq, at, actor, payload, prev_hash, hash FROM incident_events WHERE incident_pk = $1 ORDER BY seq",
        )
        .bind(pk)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredEvent {
                    incident_id: id.to_string(),
                    seq: r.try_get::<i64, _>("seq")? as u64,
                    at: ts(r.try_get("at")?)?,
                    actor: r.try_get("actor")?,
                    kind_json: r.try_get("payload")?,
                    prev_hash: r.try_get("prev_hash")?,
                    hash: r.try_get("hash")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()
            .map(Some)
    }

    /// The incident's timeline, oldest first.
    pub async fn timeline(&self, id: &str) -> Result<Option<Vec<TimelineEvent>>, StoreError> {
        let Some(stored) = self.stored_events(id).await? else {
            return Ok(None);
        };
        stored
            .into_iter()
            .map(|s| {
                Ok(TimelineEvent {
                    kind: serde_json::from_str(&s.kind_json)
                        .map_err(|e| StoreError::Corrupt(format!("event {} of {id}: {e}", s.seq)))?,
                    incident_id: s.incident_id,
                    seq: s.seq,
                    at: s.at,
                    actor: s.actor,
                    prev_hash: s.prev_hash,
                    hash: s.hash,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()
            .map(Some)
    }

    /// Recompute the hash chain and check the stored incident equals the replay.
    pub async fn verify(&self, id: &str) -> Result<Option<VerifyReport>, StoreError> {
        let Some(stored) = self.stored_events(id).await? else {
            return Ok(None);
        };
        let (first_broken, head_hash) = event::verify_chain(id, &stored);
        let replayed = self
            .timeline(id)
            .await
            .ok()
            .flatten()
            .and_then(|evs| event::replay(&evs));
        let current = self.get(id).await?;
        let projection_matches = replayed.is_some() && replayed == current;
        Ok(Some(VerifyReport {
            incident_id: id.to_string(),
            ok: first_broken.is_none() && projection_matches,
            events_checked: stored.len() as u64,
            head_hash,
            first_broken,
            projection_matches,
        }))
    }
}

enum BindValue {
    Text(String),
    Int(i64),
}
