//! Deciding a batch ahead: while batch N is written and committed, batch N+1
//! is decided on a read connection, starting from what N changed (its seed).
//! Before N+1 is written, everything it assumed about rows it did not create
//! is checked inside the write transaction; if anything moved (an API command,
//! the engine, another node), the batch is decided again the ordinary way.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use klaxon_domain::alert::{Route, Silence};
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::IngestSettings;
use super::batch::{AlertKey, AlertRow, Batch, IncState, RowState};
use crate::{Backend, StoreError};

/// What a batch decided ahead leaves for the next one: everything it changed,
/// which may not be committed yet when the next batch is decided.
#[derive(Default)]
pub(super) struct Seed {
    alerts: HashMap<AlertKey, AlertRow>,
    links: HashMap<i64, Vec<(i64, String)>>,
    groups: HashMap<String, Option<i64>>,
    incidents: HashMap<i64, IncState>,
    firing: HashMap<i64, i64>,
    firing_unknown: HashSet<i64>,
    counters: HashMap<String, i64>,
    alert_pks: Vec<i64>,
    incident_pks: Vec<i64>,
    next_alert_pk: Option<i64>,
    next_incident_pk: Option<i64>,
}

impl Batch {
    pub(super) fn new(
        backend: Backend,
        settings: Arc<IngestSettings>,
        routes: Vec<Route>,
        silences: Vec<Silence>,
        locking: bool,
        seed: Seed,
    ) -> Batch {
        let reuse_window_ms = super::reuse_window_ms(&settings, &routes);
        let firing_base = seed.firing;
        let counters = seed.counters.iter().map(|(k, v)| (k.clone(), (*v, false))).collect();
        Batch {
            backend,
            settings,
            locking,
            reuse_window_ms,
            routes,
            silences,
            alerts: seed.alerts,
            links: seed.links,
            new_links: Vec::new(),
            group_orig: seed.groups.clone(),
            groups: seed.groups,
            dirty_groups: HashSet::new(),
            incidents: seed.incidents,
            firing_base,
            firing_delta: HashMap::new(),
            firing_unknown: seed.firing_unknown,
            counter_orig: seed.counters,
            counters,
            alert_pks: seed.alert_pks,
            incident_pks: seed.incident_pks,
            next_alert_pk: seed.next_alert_pk,
            next_incident_pk: seed.next_incident_pk,
            undo: Vec::new(),
            touched_alerts: HashSet::new(),
            touched_links: HashSet::new(),
            touched_groups: HashSet::new(),
            touched_incidents: HashSet::new(),
            touched_deltas: HashSet::new(),
            touched_counters: HashSet::new(),
        }
    }

    /// The state the next batch starts from: rows this one changed, as it leaves them.
    pub(super) fn seed(&self) -> Seed {
        let alerts: HashMap<_, _> = self
            .alerts
            .iter()
            .filter(|(_, r)| r.state != RowState::Clean)
            .map(|(k, r)| {
                let mut r = r.clone();
                r.state = RowState::Clean;
                r.seen = Some((r.status.clone(), r.receive_count, r.last_seen_at));
                (k.clone(), r)
            })
            .collect();
        let links = alerts
            .values()
            .filter_map(|r| self.links.get(&r.pk).map(|l| (r.pk, l.clone())))
            .collect();
        let groups = self
            .dirty_groups
            .iter()
            .filter_map(|g| self.groups.get(g).map(|v| (g.clone(), *v)))
            .collect();
        let incidents = self
            .incidents
            .iter()
            .filter(|(_, st)| !st.events.is_empty())
            .map(|(pk, st)| {
                (
                    *pk,
                    IncState {
                        head: st.head.clone(),
                        inc: st.inc.clone(),
                        events: Vec::new(),
                        is_new: false,
                    },
                )
            })
            .collect();
        let mut firing = HashMap::new();
        let mut firing_unknown = HashSet::new();
        for (pk, d) in &self.firing_delta {
            match self.firing_base.get(pk) {
                Some(b) => {
                    firing.insert(*pk, b + d);
                }
                None if *d != 0 => {
                    firing_unknown.insert(*pk);
                }
                None => {}
            }
        }
        for (pk, b) in &self.firing_base {
            firing.entry(*pk).or_insert(*b);
        }
        Seed {
            alerts,
            links,
            groups,
            incidents,
            firing,
            firing_unknown,
            counters: self.counters.iter().map(|(k, (v, _))| (k.clone(), *v)).collect(),
            alert_pks: self.alert_pks.clone(),
            incident_pks: self.incident_pks.clone(),
            next_alert_pk: self.next_alert_pk,
            next_incident_pk: self.next_incident_pk,
        }
    }

    /// Inside the write transaction: is everything this batch assumed still so?
    pub(super) async fn still_valid(&self, tx: &mut AnyConnection) -> Result<bool, StoreError> {
        let pg = self.backend == Backend::Postgres;
        let lock = if pg { " FOR UPDATE" } else { "" };
        let ph = |n: usize| match self.backend {
            Backend::Sqlite => vec!["?"; n].join(", "),
            Backend::Postgres => (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", "),
        };
        // Incidents it appends to: nobody else appended since.
        let versions: Vec<(i64, i64)> = self
            .incidents
            .iter()
            .filter(|(_, st)| !st.is_new)
            .filter_map(|(pk, st)| st.events.first().map(|e| (*pk, e.seq as i64 - 1)))
            .collect();
        for chunk in versions.chunks(500) {
            let sql = format!(
                "SELECT pk, version FROM incidents WHERE pk IN ({}){lock}",
                ph(chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (pk, _) in chunk {
                q = q.bind(*pk);
            }
            let found: HashMap<i64, i64> = q
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("pk")?, r.try_get("version")?)))
                .collect::<Result<_, sqlx::Error>>()?;
            if chunk.iter().any(|(pk, v)| found.get(pk) != Some(v)) {
                return Ok(false);
            }
        }
        // Alerts it changes: as it read them.
        let seen: Vec<(i64, &(String, i64, i64))> = self
            .alerts
            .values()
            .filter(|r| r.state == RowState::Dirty)
            .filter_map(|r| r.seen.as_ref().map(|s| (r.pk, s)))
            .collect();
        for chunk in seen.chunks(500) {
            let sql = format!(
                "SELECT pk, status, receive_count, last_seen_at FROM alerts WHERE pk IN ({}){lock}",
                ph(chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (pk, _) in chunk {
                q = q.bind(*pk);
            }
            let found: HashMap<i64, (String, i64, i64)> = q
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get("pk")?,
                        (
                            r.try_get("status")?,
                            r.try_get("receive_count")?,
                            r.try_get("last_seen_at")?,
                        ),
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()?;
            if chunk.iter().any(|(pk, s)| found.get(pk) != Some(*s)) {
                return Ok(false);
            }
        }
        // Groups it points at a new incident: still pointing where they did.
        let groups: Vec<&String> = self.dirty_groups.iter().collect();
        for chunk in groups.chunks(500) {
            let sql = format!(
                "SELECT group_key, incident_pk FROM alert_groups WHERE group_key IN ({})",
                ph(chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for g in chunk {
                q = q.bind((*g).clone());
            }
            let found: HashMap<String, i64> = q
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("group_key")?, r.try_get("incident_pk")?)))
                .collect::<Result<_, sqlx::Error>>()?;
            if chunk
                .iter()
                .any(|g| found.get(*g).copied() != self.group_orig.get(*g).copied().flatten())
            {
                return Ok(false);
            }
        }
        // Incident numbers it used: nobody declared in between.
        for (scope, (_, dirty)) in &self.counters {
            if !dirty {
                continue;
            }
            let last: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT last FROM id_counters WHERE scope = $1{lock}"
            )))
            .bind(scope.clone())
            .fetch_optional(&mut *tx)
            .await?;
            if last.unwrap_or(0) != self.counter_orig.get(scope).copied().unwrap_or(0) {
                return Ok(false);
            }
        }
        // SQLite keys are the writer's own maximum plus one: still free.
        if !pg {
            let new_alert = self
                .alerts
                .values()
                .filter(|r| r.state == RowState::New)
                .map(|r| r.pk)
                .min();
            let new_incident = self.incidents.iter().filter(|(_, s)| s.is_new).map(|(pk, _)| *pk).min();
            for (table, min) in [("alerts", new_alert), ("incidents", new_incident)] {
                if let Some(min) = min {
                    let taken: i64 =
                        sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table} WHERE pk >= $1")))
                            .bind(min)
                            .fetch_one(&mut *tx)
                            .await?;
                    if taken > 0 {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }
}
