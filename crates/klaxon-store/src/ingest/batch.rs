//! A batch of ingest requests decided in memory: state read in a few
//! set-based queries, changes journaled so each request is all-or-nothing.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::Timestamp;
use klaxon_domain::alert::{AlertAction, AlertInput, AutoResolveAction, Route, Silence, matching_routes};
use klaxon_domain::config::{Catalog, is_slug};
use klaxon_domain::decide::{self, Command};
use klaxon_domain::event::{self, FiredAlert, GENESIS_HASH, RepeatedAlert, ResolvedAlert};
use klaxon_domain::incident::limits;
use klaxon_domain::wire::{AlertOutcome, DeclareIncident, IntegrationInfo};
use klaxon_domain::{EventKind, Incident, Status, TimelineEvent};
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use super::write::padded_chunks;
use super::{IngestSettings, Job};
use crate::incidents::{parse_body, to_json};
use crate::{Backend, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RowState {
    Clean,
    New,
    Dirty,
}

/// An alert row as the batch sees it.
#[derive(Debug, Clone)]
pub(super) struct AlertRow {
    pub(super) pk: i64,
    pub(super) integration_id: String,
    pub(super) dedup_key: String,
    pub(super) status: String,
    pub(super) acknowledged: bool,
    pub(super) suppressed_by: Option<String>,
    pub(super) flapping: bool,
    pub(super) changes: Vec<i64>,
    pub(super) summary: String,
    pub(super) severity: Option<String>,
    pub(super) source: Option<String>,
    /// Labels and annotations as stored (JSON objects): nothing in a batch reads
    /// them, so they are encoded once from the request, and a row loaded to be
    /// updated writes its text back without decoding it.
    pub(super) labels: String,
    pub(super) annotations: String,
    pub(super) links: String,
    pub(super) details: String,
    pub(super) starts_at: i64,
    pub(super) ends_at: Option<i64>,
    pub(super) last_seen_at: i64,
    pub(super) receive_count: i64,
    pub(super) created_at: i64,
    pub(super) state: RowState,
}

#[derive(Debug, Clone)]
pub(super) struct IncState {
    pub(super) head: String,
    pub(super) inc: Incident,
    pub(super) events: Vec<TimelineEvent>,
    /// Each event's kind as printed when it was sealed: the stored payload.
    pub(super) payloads: Vec<String>,
    pub(super) is_new: bool,
    /// Alert changes to this incident not sealed yet (see [`PendingAlerts`]).
    pub(super) pending: Option<PendingAlerts>,
}

/// Alert changes of one kind applied together to one incident (by one request or
/// several of a batch): sealed as a single event (`alerts_fired`, ...) when the
/// batch is written, or before any other event of that incident so the timeline
/// keeps its order. `at` is when the first of them was received.
#[derive(Debug, Clone)]
pub(super) struct PendingAlerts {
    at: Timestamp,
    who: String,
    list: AlertChanges,
}

/// Alerts of one kind of change.
#[derive(Debug, Clone)]
pub(super) enum AlertChanges {
    Fired(Vec<FiredAlert>),
    Repeated(Vec<RepeatedAlert>),
    Resolved(Vec<ResolvedAlert>),
}

/// The same expression on the list of whichever kind `$v` is; `wrap` puts the
/// result back in that kind.
macro_rules! on_list {
    ($v:expr, $a:ident => $e:expr) => {
        match $v {
            AlertChanges::Fired($a) => $e,
            AlertChanges::Repeated($a) => $e,
            AlertChanges::Resolved($a) => $e,
        }
    };
    (wrap $v:expr, $a:ident => $e:expr) => {
        match $v {
            AlertChanges::Fired($a) => AlertChanges::Fired($e),
            AlertChanges::Repeated($a) => AlertChanges::Repeated($e),
            AlertChanges::Resolved($a) => AlertChanges::Resolved($e),
        }
    };
}

impl AlertChanges {
    fn len(&self) -> usize {
        on_list!(self, a => a.len())
    }

    fn truncate(&mut self, n: usize) {
        on_list!(self, a => a.truncate(n))
    }

    /// The alerts from `n` on, taken out.
    fn split_off(&mut self, n: usize) -> AlertChanges {
        on_list!(wrap self, a => a.split_off(n.min(a.len())))
    }

    fn same_kind(&self, other: &AlertChanges) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    /// Append `other`'s alerts (of the same kind).
    fn extend(&mut self, other: AlertChanges) {
        match (self, other) {
            (AlertChanges::Fired(a), AlertChanges::Fired(b)) => a.extend(b),
            (AlertChanges::Repeated(a), AlertChanges::Repeated(b)) => a.extend(b),
            (AlertChanges::Resolved(a), AlertChanges::Resolved(b)) => a.extend(b),
            _ => {}
        }
    }

    fn into_kind(self) -> EventKind {
        match self {
            AlertChanges::Fired(alerts) => EventKind::AlertsFired { alerts },
            AlertChanges::Repeated(alerts) => EventKind::AlertsRepeated { alerts },
            AlertChanges::Resolved(alerts) => EventKind::AlertsResolved { alerts },
        }
    }
}

impl IncState {
    /// Seal events onto the incident's chain and projection.
    fn seal(&mut self, kinds: Vec<EventKind>, who: &str, at: Timestamp) {
        for kind in kinds {
            let (ev, payload) =
                TimelineEvent::seal_with_payload(&self.inc.id, self.inc.version + 1, at, who, kind, &self.head);
            event::apply_to(&mut self.inc, &ev);
            self.head = ev.hash.clone();
            self.events.push(ev);
            self.payloads.push(payload);
        }
    }

    /// Seal the pending alert changes, if any, as one event.
    pub(super) fn seal_pending(&mut self) {
        if let Some(p) = self.pending.take() {
            self.seal(vec![p.list.into_kind()], &p.who, p.at);
        }
    }
}

pub(super) type AlertKey = (String, String);

/// The maps and sets of a batch, hashed with foldhash rather than SipHash
/// (which was about 4 % of the applier's CPU at batch 100). Its seeds are random
/// per map, so crafted dedup keys cannot aim at a hash.
pub(super) type Map<K, V> = HashMap<K, V, foldhash::quality::RandomState>;
pub(super) type Set<K> = HashSet<K, foldhash::quality::RandomState>;

/// Undo journal entries: the value before the request first touched it.
pub(super) enum Undo {
    Alert(AlertKey, Option<Box<AlertRow>>),
    Links(i64, Option<Vec<(i64, String)>>),
    NewLinks(usize),
    Displaced(usize),
    Group(String, Option<Option<i64>>, bool),
    /// head, projection, number of events and of pending alert changes before
    /// the request touched it.
    Incident(i64, Option<(String, Box<Incident>, usize, usize)>),
    Delta(i64, Option<i64>),
    Counter(String, Option<(i64, bool)>),
}

pub(super) struct Batch<'s> {
    pub(super) backend: Backend,
    pub(super) settings: &'s IngestSettings,
    pub(super) routes: std::sync::Arc<Vec<Route>>,
    pub(super) silences: Vec<Silence>,
    pub(super) reuse_window_ms: i64,
    pub(super) alerts: Map<AlertKey, AlertRow>,
    /// Changed rows whose key has a newer episode in `alerts` (resolved, then
    /// fired anew past the reuse window, in one batch): still to be written.
    pub(super) displaced: Vec<AlertRow>,
    pub(super) links: Map<i64, Vec<(i64, String)>>,
    pub(super) new_links: Vec<(i64, i64, String)>,
    pub(super) groups: Map<String, Option<i64>>,
    pub(super) dirty_groups: Set<String>,
    pub(super) incidents: Map<i64, IncState>,
    pub(super) firing_base: Map<i64, i64>,
    pub(super) firing_delta: Map<i64, i64>,
    pub(super) counters: Map<String, (i64, bool)>,
    pub(super) alert_pks: Vec<i64>,
    pub(super) incident_pks: Vec<i64>,
    pub(super) next_alert_pk: Option<i64>,
    pub(super) next_incident_pk: Option<i64>,
    pub(super) undo: Vec<Undo>,
    pub(super) touched_alerts: Set<AlertKey>,
    pub(super) touched_links: Set<i64>,
    pub(super) touched_groups: Set<String>,
    pub(super) touched_incidents: Set<i64>,
    pub(super) touched_deltas: Set<i64>,
    pub(super) touched_counters: Set<String>,
}

pub(super) fn outcome(a: &AlertInput, pk: Option<i64>, result: &str, incidents: Vec<String>) -> AlertOutcome {
    AlertOutcome {
        dedup_key: a.dedup_key.clone(),
        alert_id: pk,
        result: result.into(),
        incidents,
    }
}

pub(super) fn actor(integ: &IntegrationInfo) -> String {
    format!("integration:{}", integ.name)
}

/// The declaration an alert makes under a route. Fields the catalog would
/// refuse (unknown service, odd labels) are left out rather than losing the alert.
pub(super) fn declaration(a: &AlertInput, route: &Route, cat: &Catalog, now: Timestamp) -> DeclareIncident {
    let title: String = if a.summary.trim().is_empty() {
        a.dedup_key.clone()
    } else {
        a.summary.clone()
    };
    let title: String = title
        .chars()
        .filter(|c| !c.is_control())
        .take(limits::TITLE_MAX)
        .collect();
    let service = route.service.clone().or_else(|| a.labels.get("service").cloned());
    let services = service
        .filter(|s| is_slug(s) && (cat.services.is_empty() || cat.find_service(s).is_some()))
        .into_iter()
        .collect();
    let labels: BTreeMap<String, String> = a
        .labels
        .iter()
        .filter(|(k, v)| is_slug(k) && v.chars().count() <= limits::LABEL_VALUE_MAX && !v.chars().any(char::is_control))
        .take(limits::LABELS_MAX)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let detected = a.starts_at.filter(|t| *t <= now).unwrap_or(now);
    DeclareIncident {
        title,
        description: a
            .annotations
            .get("description")
            .map(|d| d.chars().take(limits::DESCRIPTION_MAX).collect()),
        severity: Some(route.severity_for(a, &cat.severities, &cat.default_severity)),
        category: route.category.clone().filter(|c| cat.find_category(c).is_some()),
        escalation_policy: route.escalation_policy.clone(),
        services,
        labels,
        detected_at: Some(detected),
        ..Default::default()
    }
}

impl<'s> Batch<'s> {
    fn now_ms(now: Timestamp) -> i64 {
        now.as_millisecond()
    }

    // ---- undo journal -------------------------------------------------

    pub(super) fn begin_request(&mut self) {
        self.undo.clear();
        self.touched_alerts.clear();
        self.touched_links.clear();
        self.touched_groups.clear();
        self.touched_incidents.clear();
        self.touched_deltas.clear();
        self.touched_counters.clear();
    }

    pub(super) fn rollback_request(&mut self) {
        while let Some(u) = self.undo.pop() {
            match u {
                Undo::Alert(k, prev) => match prev {
                    Some(r) => {
                        self.alerts.insert(k, *r);
                    }
                    None => {
                        self.alerts.remove(&k);
                    }
                },
                Undo::Links(pk, prev) => match prev {
                    Some(v) => {
                        self.links.insert(pk, v);
                    }
                    None => {
                        self.links.remove(&pk);
                    }
                },
                Undo::NewLinks(len) => self.new_links.truncate(len),
                Undo::Displaced(len) => self.displaced.truncate(len),
                Undo::Group(gk, prev, was_dirty) => {
                    match prev {
                        Some(v) => {
                            self.groups.insert(gk.clone(), v);
                        }
                        None => {
                            self.groups.remove(&gk);
                        }
                    }
                    if !was_dirty {
                        self.dirty_groups.remove(&gk);
                    }
                }
                Undo::Incident(pk, prev) => match (prev, self.incidents.get_mut(&pk)) {
                    (Some((head, inc, len, pending)), Some(st)) => {
                        st.head = head;
                        st.inc = *inc;
                        st.events.truncate(len);
                        st.payloads.truncate(len);
                        match st.pending.as_mut() {
                            Some(p) if pending > 0 => p.list.truncate(pending),
                            _ => st.pending = None,
                        }
                    }
                    (Some(_), None) => {}
                    (None, _) => {
                        self.incidents.remove(&pk);
                    }
                },
                Undo::Delta(pk, prev) => match prev {
                    Some(v) => {
                        self.firing_delta.insert(pk, v);
                    }
                    None => {
                        self.firing_delta.remove(&pk);
                    }
                },
                Undo::Counter(scope, prev) => match prev {
                    Some(v) => {
                        self.counters.insert(scope, v);
                    }
                    None => {
                        self.counters.remove(&scope);
                    }
                },
            }
        }
        self.begin_request();
    }

    fn touch_alert(&mut self, k: &AlertKey) {
        if self.touched_alerts.insert(k.clone()) {
            self.undo
                .push(Undo::Alert(k.clone(), self.alerts.get(k).cloned().map(Box::new)));
        }
    }

    fn touch_links(&mut self, pk: i64) {
        if self.touched_links.insert(pk) {
            self.undo.push(Undo::Links(pk, self.links.get(&pk).cloned()));
        }
    }

    fn touch_incident(&mut self, pk: i64) {
        if self.touched_incidents.insert(pk) {
            let prev = self.incidents.get(&pk).map(|st| {
                let pending = st.pending.as_ref().map_or(0, |p| p.list.len());
                (st.head.clone(), Box::new(st.inc.clone()), st.events.len(), pending)
            });
            self.undo.push(Undo::Incident(pk, prev));
        }
    }

    /// Seal an incident's pending alert changes during a request (before an event
    /// of another kind). Changes noted by earlier requests of the batch become an
    /// event of their own first, and the request's undo snapshot moves past it, so
    /// that undoing the request keeps them.
    fn seal_pending_of(&mut self, pk: i64) {
        let Some(st) = self.incidents.get_mut(&pk) else {
            return;
        };
        let snapshot = self.undo.iter_mut().rev().find_map(|u| match u {
            Undo::Incident(p, Some(snap)) if *p == pk => Some(snap),
            _ => None,
        });
        if let (Some(snap), Some(p)) = (snapshot, st.pending.as_mut())
            && snap.3 > 0
        {
            let rest = p.list.split_off(snap.3);
            let (at, who) = (p.at, p.who.clone());
            st.seal_pending();
            *snap = (st.head.clone(), Box::new(st.inc.clone()), st.events.len(), 0);
            if rest.len() > 0 {
                st.pending = Some(PendingAlerts { at, who, list: rest });
            }
        }
        st.seal_pending();
    }

    fn touch_group(&mut self, gk: &str) {
        if self.touched_groups.insert(gk.to_string()) {
            self.undo.push(Undo::Group(
                gk.to_string(),
                self.groups.get(gk).cloned(),
                self.dirty_groups.contains(gk),
            ));
        }
    }

    fn add_delta(&mut self, incident_pk: i64, d: i64) {
        if self.touched_deltas.insert(incident_pk) {
            self.undo
                .push(Undo::Delta(incident_pk, self.firing_delta.get(&incident_pk).copied()));
        }
        *self.firing_delta.entry(incident_pk).or_insert(0) += d;
    }

    // ---- loading -----------------------------------------------------

    pub(super) async fn preload(&mut self, tx: &mut Transaction<'_, Any>, jobs: &[Job]) -> Result<(), StoreError> {
        let known = self.incidents.keys().copied().collect();
        let keys = keys(&self.routes, &self.settings.default_route, jobs);
        let loaded = load(tx, self.backend, &keys, &known).await?;
        self.merge(loaded);
        Ok(())
    }

    /// Take in state read for a later part of the transaction: what the batch
    /// holds already is newer (it may be decided and not yet written), so only
    /// what it does not hold is taken.
    pub(super) fn merge(&mut self, loaded: Loaded) {
        for (k, row) in loaded.alerts {
            self.alerts.entry(k).or_insert(row);
        }
        let mut links: Map<i64, Vec<(i64, String)>> = Map::default();
        for (alert_pk, incident_pk, route) in loaded.links {
            links.entry(alert_pk).or_default().push((incident_pk, route));
        }
        for (pk, l) in links {
            self.links.entry(pk).or_insert(l);
        }
        for (g, pk) in loaded.groups {
            self.groups.entry(g).or_insert(pk);
        }
        for (pk, st) in loaded.incidents {
            self.incidents.entry(pk).or_insert(st);
        }
        if !loaded.alert_pks.is_empty() {
            // Keys are taken from the end: the ones held first, then the new ones in order.
            let mut pks = loaded.alert_pks;
            pks.reverse();
            pks.append(&mut self.alert_pks);
            self.alert_pks = pks;
        }
    }

    async fn load_incidents(&mut self, tx: &mut Db<'_, '_>, pks: &[i64]) -> Result<(), StoreError> {
        let missing: Vec<i64> = pks
            .iter()
            .copied()
            .filter(|p| !self.incidents.contains_key(p))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        for (pk, st) in read_incidents(db(tx)?, self.backend, &missing).await? {
            self.incidents.insert(pk, st);
        }
        Ok(())
    }

    async fn firing_count(&mut self, tx: &mut Db<'_, '_>, incident_pk: i64) -> Result<i64, StoreError> {
        let base = match self.firing_base.get(&incident_pk) {
            Some(b) => *b,
            None => {
                let b: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM incident_alerts ia JOIN alerts al ON al.pk = ia.alert_pk WHERE ia.incident_pk = $1 AND al.status = 'firing'",
                )
                .bind(incident_pk)
                .fetch_one(&mut **db(tx)?)
                .await?;
                self.firing_base.insert(incident_pk, b);
                b
            }
        };
        Ok(base + self.firing_delta.get(&incident_pk).copied().unwrap_or(0))
    }

    async fn alloc(&mut self, tx: &mut Db<'_, '_>, table: &str) -> Result<i64, StoreError> {
        let (pool, next) = if table == "alerts" {
            (&mut self.alert_pks, &mut self.next_alert_pk)
        } else {
            (&mut self.incident_pks, &mut self.next_incident_pk)
        };
        match self.backend {
            Backend::Sqlite => {
                // One writer: the next key is simply the maximum plus one.
                let n = match *next {
                    Some(n) => n,
                    None => {
                        let max: Option<i64> =
                            sqlx::query_scalar(AssertSqlSafe(format!("SELECT MAX(pk) FROM {table}")))
                                .fetch_one(&mut **db(tx)?)
                                .await?;
                        max.unwrap_or(0) + 1
                    }
                };
                *next = Some(n + 1);
                Ok(n)
            }
            Backend::Postgres => {
                if pool.is_empty() {
                    let mut got = new_keys(db(tx)?, table, 1024).await?;
                    got.reverse();
                    *pool = got;
                }
                pool.pop().ok_or_else(|| StoreError::Corrupt("no key allocated".into()))
            }
        }
    }

    async fn next_incident_id(&mut self, tx: &mut Db<'_, '_>, now: Timestamp) -> Result<String, StoreError> {
        let cat = &self.settings.catalog;
        let scope = cat.id_format.scope(now);
        if !self.counters.contains_key(&scope) {
            let tx = db(tx)?;
            if self.backend == Backend::Postgres {
                sqlx::query("INSERT INTO id_counters (scope, last) VALUES ($1, 0) ON CONFLICT (scope) DO NOTHING")
                    .bind(scope.clone())
                    .execute(&mut **tx)
                    .await?;
            }
            let lock = if self.backend == Backend::Postgres {
                " FOR UPDATE"
            } else {
                ""
            };
            let last: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT last FROM id_counters WHERE scope = $1{lock}"
            )))
            .bind(scope.clone())
            .fetch_optional(&mut **tx)
            .await?;
            self.counters.insert(scope.clone(), (last.unwrap_or(0), false));
        }
        if self.touched_counters.insert(scope.clone()) {
            self.undo
                .push(Undo::Counter(scope.clone(), self.counters.get(&scope).copied()));
        }
        let entry = self.counters.entry(scope).or_insert((0, false));
        entry.0 += 1;
        entry.1 = true;
        Ok(cat.id_format.render(now, entry.0 as u64))
    }

    // ---- incident changes ----------------------------------------------

    /// Append events to a (loaded) incident in memory.
    fn append(
        &mut self,
        incident_pk: i64,
        kinds: Vec<EventKind>,
        who: &str,
        now: Timestamp,
    ) -> Result<String, StoreError> {
        self.touch_incident(incident_pk);
        self.seal_pending_of(incident_pk);
        let st = self
            .incidents
            .get_mut(&incident_pk)
            .ok_or_else(|| StoreError::NotFound(format!("#{incident_pk}")))?;
        st.seal(kinds, who, now);
        Ok(st.inc.id.clone())
    }

    /// Note an alert change to a (loaded) incident. Consecutive changes of one kind
    /// from one integration, in this request and the next ones of the batch, become
    /// one event when the batch is written (or before another event of the incident).
    fn note_alerts(
        &mut self,
        incident_pk: i64,
        change: AlertChanges,
        who: &str,
        now: Timestamp,
    ) -> Result<String, StoreError> {
        self.touch_incident(incident_pk);
        let joins = self
            .incidents
            .get(&incident_pk)
            .and_then(|st| st.pending.as_ref())
            .is_some_and(|p| p.who == who && p.list.same_kind(&change));
        if !joins {
            self.seal_pending_of(incident_pk);
        }
        let st = self
            .incidents
            .get_mut(&incident_pk)
            .ok_or_else(|| StoreError::NotFound(format!("#{incident_pk}")))?;
        match st.pending.as_mut() {
            Some(p) => p.list.extend(change),
            None => {
                st.pending = Some(PendingAlerts {
                    at: now,
                    who: who.to_string(),
                    list: change,
                })
            }
        }
        Ok(st.inc.id.clone())
    }

    fn command(&mut self, incident_pk: i64, cmd: Command, who: &str, now: Timestamp) -> Result<String, StoreError> {
        let inc = &self
            .incidents
            .get(&incident_pk)
            .ok_or_else(|| StoreError::NotFound(format!("#{incident_pk}")))?
            .inc;
        let kinds = decide::decide(inc, cmd, now, &self.settings.catalog)?;
        self.append(incident_pk, kinds, who, now)
    }

    async fn declare(
        &mut self,
        tx: &mut Db<'_, '_>,
        a: &AlertInput,
        route: &Route,
        who: &str,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        let cat = self.settings.catalog.clone();
        let req = declaration(a, route, &cat, now);
        let draft = decide::validate_declaration(&req, who, now, &cat).or_else(|_| {
            let plain = DeclareIncident {
                services: vec![],
                labels: BTreeMap::new(),
                category: None,
                ..req.clone()
            };
            decide::validate_declaration(&plain, who, now, &cat)
        })?;
        let id = self.next_incident_id(tx, now).await?;
        let pk = self.alloc(tx, "incidents").await?;
        let (ev, payload) =
            TimelineEvent::seal_with_payload(&id, 1, now, who, decide::declared(draft, id.clone()), GENESIS_HASH);
        let inc = event::apply(None, &ev).ok_or_else(|| StoreError::Corrupt("declared".into()))?;
        self.touch_incident(pk);
        self.incidents.insert(
            pk,
            IncState {
                head: ev.hash.clone(),
                inc,
                events: vec![ev],
                payloads: vec![payload],
                is_new: true,
                pending: None,
            },
        );
        Ok(pk)
    }

    /// Link the alert to the incident; false if it already was.
    fn link(&mut self, alert_pk: i64, incident_pk: i64, route: &str) -> bool {
        let already = self
            .links
            .get(&alert_pk)
            .is_some_and(|v| v.iter().any(|(i, _)| *i == incident_pk));
        if already {
            return false;
        }
        self.touch_links(alert_pk);
        self.links
            .entry(alert_pk)
            .or_default()
            .push((incident_pk, route.to_string()));
        self.undo.push(Undo::NewLinks(self.new_links.len()));
        self.new_links.push((incident_pk, alert_pk, route.to_string()));
        true
    }

    /// Join the alert to the incident of each matching route's group, opening
    /// or reopening incidents as needed.
    async fn attach(
        &mut self,
        tx: &mut Db<'_, '_>,
        integ: &IntegrationInfo,
        alert_pk: i64,
        a: &AlertInput,
        refired: bool,
        now: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        let who = actor(integ);
        let all_routes = std::sync::Arc::clone(&self.routes);
        let settings = self.settings;
        let mut ids = Vec::new();
        for route in matching_routes(&all_routes, &settings.default_route, &a.labels) {
            let gk = route.group_key(a);
            let existing = match self.groups.get(&gk) {
                Some(v) => *v,
                None => {
                    let v: Option<i64> =
                        sqlx::query_scalar("SELECT incident_pk FROM alert_groups WHERE group_key = $1")
                            .bind(gk.clone())
                            .fetch_optional(&mut **db(tx)?)
                            .await?;
                    self.groups.insert(gk.clone(), v);
                    v
                }
            };
            let mut target = None;
            if let Some(ipk) = existing {
                self.load_incidents(tx, &[ipk]).await?;
                if let Some(st) = self.incidents.get(&ipk) {
                    if st.inc.status.is_open() {
                        target = Some(ipk);
                    } else if let (Some(resolved), Some(window)) = (st.inc.resolved_at, route.reopen_window)
                        && now.as_millisecond() - resolved.as_millisecond() <= window.as_millis() as i64
                    {
                        let reason = format!("alert {} ({}) fired again", a.dedup_key, a.summary);
                        self.command(
                            ipk,
                            Command::Reopen {
                                to: None,
                                reason: Some(reason),
                            },
                            &who,
                            now,
                        )?;
                        target = Some(ipk);
                    }
                }
            }
            let incident_pk = match target {
                Some(pk) => pk,
                None => {
                    let pk = self.declare(tx, a, route, &who, now).await?;
                    self.touch_group(&gk);
                    self.groups.insert(gk.clone(), Some(pk));
                    self.dirty_groups.insert(gk.clone());
                    pk
                }
            };
            // A linked alert that fires again was counted by `move_firing`.
            if self.link(alert_pk, incident_pk, &route.name) {
                self.add_delta(incident_pk, 1);
            }
            let fired = FiredAlert {
                alert_id: alert_pk,
                integration: integ.name.clone(),
                dedup_key: a.dedup_key.clone(),
                summary: a.summary.chars().take(limits::SHORT_TEXT_MAX).collect(),
                severity: a.severity.clone().or_else(|| a.labels.get("severity").cloned()),
                labels: a.labels.clone(),
                refired,
            };
            ids.push(self.note_alerts(incident_pk, AlertChanges::Fired(vec![fired]), &who, now)?);
        }
        Ok(ids)
    }

    /// Flapping bookkeeping for one state change: (changes, flapping now, event to record).
    fn flap(&self, prev: &AlertRow, now: Timestamp) -> (Vec<i64>, bool, Option<bool>) {
        let policy = self.settings.flap;
        let was = prev.flapping && !policy.stable(&prev.changes, now);
        let (changes, over) = policy.record(prev.changes.clone(), now);
        let flapping = was || over;
        let event = match (prev.flapping, flapping) {
            (false, true) => Some(true),
            (true, false) => Some(false),
            _ => None,
        };
        (changes, flapping, event)
    }

    fn linked(&self, alert_pk: i64) -> Vec<(i64, String)> {
        self.links.get(&alert_pk).cloned().unwrap_or_default()
    }

    fn record_flap(
        &mut self,
        integ: &IntegrationInfo,
        alert_pk: i64,
        key: &str,
        flapping: bool,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        for (ipk, _) in self.linked(alert_pk) {
            let ev = EventKind::AlertFlapping {
                alert_id: alert_pk,
                dedup_key: key.to_string(),
                flapping,
            };
            self.append(ipk, vec![ev], &actor(integ), now)?;
        }
        Ok(())
    }

    /// Every firing/resolved transition moves the firing count of the alert's incidents.
    fn move_firing(&mut self, alert_pk: i64, d: i64) {
        for (ipk, _) in self.linked(alert_pk) {
            self.add_delta(ipk, d);
        }
    }

    fn put_alert(&mut self, key: &AlertKey, row: AlertRow) {
        self.touch_alert(key);
        let pk = row.pk;
        if let Some(old) = self.alerts.insert(key.clone(), row)
            && old.state != RowState::Clean
            && old.pk != pk
        {
            // A new episode of a key this batch changed: both rows are written.
            self.undo.push(Undo::Displaced(self.displaced.len()));
            self.displaced.push(old);
        }
    }

    pub(super) async fn process(
        &mut self,
        tx: &mut Db<'_, '_>,
        integ: &IntegrationInfo,
        a: &AlertInput,
        now: Timestamp,
    ) -> Result<AlertOutcome, StoreError> {
        let now_ms = Self::now_ms(now);
        let key: AlertKey = (integ.id.clone(), a.dedup_key.clone());
        let prev = self.alerts.get(&key).cloned();
        let silence = self
            .silences
            .iter()
            .find(|s| s.silences(&a.labels, now))
            .map(|s| s.id.clone());
        let dirty = |r: &AlertRow| {
            if r.state == RowState::New {
                RowState::New
            } else {
                RowState::Dirty
            }
        };
        match a.action {
            AlertAction::Trigger => match prev {
                Some(mut p) if p.status == "firing" => {
                    // A repeat: count it, never page again.
                    let unsuppress = p.suppressed_by.is_some() && silence.is_none();
                    let was_suppressed = p.suppressed_by.is_some();
                    p.last_seen_at = now_ms;
                    p.receive_count += 1;
                    p.summary = a.summary.clone();
                    p.labels = to_json(&a.labels)?;
                    p.annotations = to_json(&a.annotations)?;
                    if unsuppress {
                        p.suppressed_by = None;
                    }
                    p.state = dirty(&p);
                    let pk = p.pk;
                    let count = p.receive_count as u64;
                    let flapping = p.flapping && !self.settings.flap.stable(&p.changes, now);
                    self.put_alert(&key, p);
                    if unsuppress {
                        // Its silence ended while it kept firing: now it counts.
                        let ids = self.attach(tx, integ, pk, a, false, now).await?;
                        return Ok(outcome(a, Some(pk), "created", ids));
                    }
                    if was_suppressed {
                        return Ok(outcome(a, Some(pk), "suppressed", vec![]));
                    }
                    if flapping {
                        return Ok(outcome(a, Some(pk), "flapping", vec![]));
                    }
                    let mut ids = Vec::new();
                    let who = actor(integ);
                    for (ipk, _) in self.linked(pk) {
                        let repeat = RepeatedAlert {
                            alert_id: pk,
                            dedup_key: a.dedup_key.clone(),
                            count,
                        };
                        ids.push(self.note_alerts(ipk, AlertChanges::Repeated(vec![repeat]), &who, now)?);
                    }
                    Ok(outcome(a, Some(pk), "repeated", ids))
                }
                Some(mut p)
                    if p.status == "resolved"
                        && p.ends_at.is_some_and(|e| now_ms - e <= self.reuse_window_ms)
                        && !self.linked(p.pk).is_empty() =>
                {
                    // Fired again soon after resolving: same alert, flapping check, maybe reopen.
                    let (changes, flapping, flap_event) = self.flap(&p, now);
                    p.status = "firing".into();
                    p.ends_at = None;
                    p.acknowledged = false;
                    p.changes = changes;
                    p.flapping = flapping;
                    p.suppressed_by = silence.clone();
                    p.last_seen_at = now_ms;
                    p.receive_count += 1;
                    p.summary = a.summary.clone();
                    p.labels = to_json(&a.labels)?;
                    p.annotations = to_json(&a.annotations)?;
                    p.state = dirty(&p);
                    let pk = p.pk;
                    self.put_alert(&key, p);
                    self.move_firing(pk, 1);
                    if let Some(f) = flap_event {
                        self.record_flap(integ, pk, &a.dedup_key, f, now)?;
                    }
                    if silence.is_some() {
                        return Ok(outcome(a, Some(pk), "suppressed", vec![]));
                    }
                    if flapping {
                        return Ok(outcome(a, Some(pk), "flapping", vec![]));
                    }
                    let ids = self.attach(tx, integ, pk, a, true, now).await?;
                    Ok(outcome(a, Some(pk), "refired", ids))
                }
                _ => {
                    let pk = self.alloc(tx, "alerts").await?;
                    let row = AlertRow {
                        pk,
                        integration_id: integ.id.clone(),
                        dedup_key: a.dedup_key.clone(),
                        status: "firing".into(),
                        acknowledged: false,
                        suppressed_by: silence.clone(),
                        flapping: false,
                        changes: vec![now_ms],
                        summary: a.summary.clone(),
                        severity: a.severity.clone(),
                        source: a.source.clone(),
                        labels: to_json(&a.labels)?,
                        annotations: to_json(&a.annotations)?,
                        links: to_json(&a.links)?,
                        details: to_json(&a.details)?,
                        starts_at: a.starts_at.map(|t| t.as_millisecond()).unwrap_or(now_ms),
                        ends_at: None,
                        last_seen_at: now_ms,
                        receive_count: 1,
                        created_at: now_ms,
                        state: RowState::New,
                    };
                    self.put_alert(&key, row);
                    if silence.is_some() {
                        return Ok(outcome(a, Some(pk), "suppressed", vec![]));
                    }
                    let ids = self.attach(tx, integ, pk, a, false, now).await?;
                    Ok(outcome(a, Some(pk), "created", ids))
                }
            },
            AlertAction::Resolve => {
                let Some(mut p) = prev.filter(|p| p.status == "firing") else {
                    return Ok(outcome(a, None, "ignored", vec![]));
                };
                let (changes, flapping, flap_event) = self.flap(&p, now);
                p.status = "resolved".into();
                p.ends_at = Some(
                    a.ends_at
                        .filter(|t| t.as_millisecond() <= now_ms)
                        .map(|t| t.as_millisecond())
                        .unwrap_or(now_ms),
                );
                p.changes = changes;
                p.flapping = flapping;
                p.last_seen_at = now_ms;
                p.state = dirty(&p);
                let pk = p.pk;
                let suppressed = p.suppressed_by.is_some();
                self.put_alert(&key, p);
                self.move_firing(pk, -1);
                if let Some(f) = flap_event {
                    self.record_flap(integ, pk, &a.dedup_key, f, now)?;
                }
                if suppressed || flapping {
                    return Ok(outcome(
                        a,
                        Some(pk),
                        if flapping { "flapping" } else { "resolved" },
                        vec![],
                    ));
                }
                let who = actor(integ);
                let mut ids = Vec::new();
                for (ipk, route_name) in self.linked(pk) {
                    self.load_incidents(tx, &[ipk]).await?;
                    let resolved = ResolvedAlert {
                        alert_id: pk,
                        dedup_key: a.dedup_key.clone(),
                    };
                    let id = self.note_alerts(ipk, AlertChanges::Resolved(vec![resolved]), &who, now)?;
                    let mut kinds = Vec::new();
                    let firing = self.firing_count(tx, ipk).await?;
                    let status = self.incidents.get(&ipk).map(|s| s.inc.status).unwrap_or(Status::Closed);
                    if firing <= 0 && status.is_open() {
                        let action = self
                            .routes
                            .iter()
                            .find(|r| r.name == route_name)
                            .unwrap_or(&self.settings.default_route)
                            .auto_resolve;
                        match action {
                            AutoResolveAction::Resolve => kinds.push(EventKind::StatusChanged {
                                from: status,
                                to: Status::Resolved,
                                message: Some("All alerts resolved".into()),
                                next_update_due: None,
                            }),
                            AutoResolveAction::Monitoring if status < Status::Monitoring => {
                                kinds.push(EventKind::StatusChanged {
                                    from: status,
                                    to: Status::Monitoring,
                                    message: Some("All alerts resolved; monitoring".into()),
                                    next_update_due: None,
                                })
                            }
                            AutoResolveAction::Monitoring => {}
                            AutoResolveAction::Annotate => kinds.push(EventKind::NoteAdded {
                                text: "All alerts resolved".into(),
                            }),
                        }
                    }
                    if !kinds.is_empty() {
                        self.append(ipk, kinds, &who, now)?;
                    }
                    ids.push(id);
                }
                Ok(outcome(a, Some(pk), "resolved", ids))
            }
            AlertAction::Acknowledge => {
                let Some(mut p) = prev.filter(|p| p.status == "firing") else {
                    return Ok(outcome(a, None, "ignored", vec![]));
                };
                p.acknowledged = true;
                p.last_seen_at = now_ms;
                p.state = dirty(&p);
                let pk = p.pk;
                self.put_alert(&key, p);
                let mut ids = Vec::new();
                for (ipk, _) in self.linked(pk) {
                    self.load_incidents(tx, &[ipk]).await?;
                    let msg = Some(format!("acknowledged by {}", integ.name));
                    match self.command(ipk, Command::Ack { message: msg }, &actor(integ), now) {
                        Ok(id) => ids.push(id),
                        // A resolved incident cannot be acknowledged; the alert ack still counts.
                        Err(StoreError::Domain(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(outcome(a, Some(pk), "acknowledged", ids))
            }
        }
    }
}

/// State a batch reads before deciding, as read: see [`Batch::merge`].
#[derive(Default)]
pub(super) struct Loaded {
    alerts: Vec<(AlertKey, AlertRow)>,
    /// (alert, incident, route), by incident.
    links: Vec<(i64, i64, String)>,
    groups: Vec<(String, Option<i64>)>,
    incidents: Vec<(i64, IncState)>,
    /// New alert keys, in order.
    alert_pks: Vec<i64>,
}

/// What deciding some requests needs to read: see [`keys`].
pub(super) struct Keys {
    /// Dedup keys by integration.
    alerts: Vec<(String, Vec<String>)>,
    /// Groups a trigger may join.
    groups: Vec<String>,
    /// PostgreSQL: new alert keys to allocate as well, so that deciding
    /// triggers needs no more.
    pub(super) new_alert_keys: i64,
}

/// The dedup keys of `jobs`, and the group of every route each trigger matches.
pub(super) fn keys(routes: &[Route], default_route: &Route, jobs: &[Job]) -> Keys {
    let mut by_integ: Map<&str, Set<&str>> = Map::default();
    let mut gks: Set<String> = Set::default();
    for j in jobs {
        for a in &j.alerts {
            by_integ
                .entry(j.integration.id.as_str())
                .or_default()
                .insert(a.dedup_key.as_str());
            if a.action == AlertAction::Trigger {
                for r in matching_routes(routes, default_route, &a.labels) {
                    gks.insert(r.group_key(a));
                }
            }
        }
    }
    Keys {
        alerts: by_integ
            .into_iter()
            .map(|(i, keys)| (i.to_string(), keys.into_iter().map(str::to_string).collect()))
            .collect(),
        groups: gks.into_iter().collect(),
        new_alert_keys: 0,
    }
}

/// Read (and on PostgreSQL lock) what deciding requests needs, in a few
/// set-based queries: the latest alert of each of their dedup keys, their
/// incident links, the incident of each group a trigger may join, and the
/// incidents involved (but those in `known`).
pub(super) async fn load(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    keys: &Keys,
    known: &Set<i64>,
) -> Result<Loaded, StoreError> {
    let mut out = Loaded::default();
    // Latest alert per (integration, dedup key).
    let lock = if backend == Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    for (integ, keys) in &keys.alerts {
        for chunk in padded_chunks(keys) {
            const COLS: &str = "pk, dedup_key, status, acknowledged, suppressed_by, flapping, changes, summary, severity, source, \
                                labels, annotations, links, details, starts_at, ends_at, last_seen_at, receive_count, created_at";
            let sql = match backend {
                Backend::Sqlite => {
                    let ph = vec!["?"; chunk.len()].join(", ");
                    format!(
                        "SELECT {COLS} FROM alerts a WHERE integration_id = ? AND dedup_key IN ({ph}) \
                         AND pk = (SELECT MAX(pk) FROM alerts b WHERE b.integration_id = a.integration_id AND b.dedup_key = a.dedup_key)"
                    )
                }
                // One index probe per key: with `IN (...)` PostgreSQL's planner, working from
                // statistics older than a burst of new alerts, scanned every alert of the
                // integration (42 ms instead of 1 ms for 500 keys among 90,000 alerts).
                // A firing alert is the latest of its key and is found through the
                // one-firing index; only the others are in `alerts_past_idx` (migration 0014).
                Backend::Postgres => {
                    let ph: Vec<String> = (0..chunk.len()).map(|i| format!("(${})", i + 2)).collect();
                    format!(
                        "SELECT {COLS} FROM (VALUES {}) k(key) CROSS JOIN LATERAL \
                         (SELECT {COLS} FROM alerts b WHERE b.pk = COALESCE(\
                         (SELECT c.pk FROM alerts c WHERE c.integration_id = $1 AND c.dedup_key = k.key AND c.status = 'firing'), \
                         (SELECT c.pk FROM alerts c WHERE c.integration_id = $1 AND c.dedup_key = k.key AND c.status <> 'firing' \
                         ORDER BY c.pk DESC LIMIT 1)){lock}) a",
                        ph.join(", ")
                    )
                }
            };
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(integ.clone());
            for k in &chunk {
                q = q.bind(k.clone());
            }
            for r in q.fetch_all(&mut **tx).await? {
                let key: String = r.try_get("dedup_key")?;
                let changes: String = r.try_get("changes")?;
                let row = AlertRow {
                    pk: r.try_get("pk")?,
                    integration_id: integ.to_string(),
                    dedup_key: key.clone(),
                    status: r.try_get("status")?,
                    acknowledged: r.try_get::<i64, _>("acknowledged")? != 0,
                    suppressed_by: r.try_get("suppressed_by")?,
                    flapping: r.try_get::<i64, _>("flapping")? != 0,
                    changes: serde_json::from_str(&changes).unwrap_or_default(),
                    summary: r.try_get("summary")?,
                    severity: r.try_get("severity")?,
                    source: r.try_get("source")?,
                    labels: r.try_get("labels")?,
                    annotations: r.try_get("annotations")?,
                    links: r.try_get("links")?,
                    details: r.try_get("details")?,
                    starts_at: r.try_get("starts_at")?,
                    ends_at: r.try_get("ends_at")?,
                    last_seen_at: r.try_get("last_seen_at")?,
                    receive_count: r.try_get("receive_count")?,
                    created_at: r.try_get("created_at")?,
                    state: RowState::Clean,
                };
                out.alerts.push(((integ.to_string(), key), row));
            }
        }
    }
    // Their incident links.
    let pks: Vec<i64> = out.alerts.iter().map(|(_, a)| a.pk).collect();
    // (Chunks of an empty list run no query.)
    for chunk in padded_chunks(&pks) {
        let q = in_list(
            "SELECT alert_pk, incident_pk, route FROM incident_alerts WHERE alert_pk",
            chunk,
            " ORDER BY incident_pk",
        );
        for r in q.fetch_all(&mut **tx).await? {
            out.links
                .push((r.try_get("alert_pk")?, r.try_get("incident_pk")?, r.try_get("route")?));
        }
    }
    // The incident of every group a trigger may join.
    let gks = &keys.groups;
    let mut found: Set<String> = Set::default();
    for chunk in padded_chunks(gks) {
        let q = in_list(
            "SELECT group_key, incident_pk FROM alert_groups WHERE group_key",
            chunk,
            "",
        );
        for r in q.fetch_all(&mut **tx).await? {
            let g: String = r.try_get("group_key")?;
            found.insert(g.clone());
            out.groups.push((g, Some(r.try_get("incident_pk")?)));
        }
    }
    for g in gks {
        if !found.contains(g) {
            out.groups.push((g.clone(), None));
        }
    }
    // The incidents involved.
    let mut ipks: Set<i64> = out.groups.iter().filter_map(|(_, pk)| *pk).collect();
    ipks.extend(out.links.iter().map(|(_, i, _)| *i));
    let ipks: Vec<i64> = ipks.into_iter().filter(|p| !known.contains(p)).collect();
    out.incidents = read_incidents(tx, backend, &ipks).await?;
    if keys.new_alert_keys > 0 && backend == Backend::Postgres {
        out.alert_pks = new_keys(tx, "alerts", keys.new_alert_keys).await?;
    }
    Ok(out)
}

/// `{head} IN ($1, …, $n){tail}` for one chunk of [`padded_chunks`], the chunk bound.
fn in_list<T>(head: &str, chunk: Vec<T>, tail: &str) -> sqlx::query::Query<'static, Any, sqlx::any::AnyArguments>
where
    T: 'static + Send + sqlx::Encode<'static, Any> + sqlx::Type<Any>,
{
    let ph: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
    let sql = format!("{head} IN ({}){tail}", ph.join(", "));
    chunk
        .into_iter()
        .fold(sqlx::query(AssertSqlSafe(sql)), |q, v| q.bind(v))
}

/// PostgreSQL: `n` new keys of `table`, in order.
async fn new_keys(tx: &mut Transaction<'_, Any>, table: &str, n: i64) -> Result<Vec<i64>, StoreError> {
    Ok(sqlx::query_scalar(AssertSqlSafe(format!(
        // The sequence's name is looked up once (`OFFSET 0` keeps the planner
        // from folding the lookup into every row).
        "SELECT nextval(q.s) FROM (SELECT pg_get_serial_sequence('{table}', 'pk')::regclass AS s OFFSET 0) q \
         CROSS JOIN generate_series(1, $1::bigint)"
    )))
    .bind(n)
    .fetch_all(&mut **tx)
    .await?)
}

/// Read (and on PostgreSQL lock) incidents.
async fn read_incidents(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    pks: &[i64],
) -> Result<Vec<(i64, IncState)>, StoreError> {
    let lock = if backend == Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let mut out = Vec::with_capacity(pks.len());
    for chunk in padded_chunks(pks) {
        let q = in_list("SELECT pk, head_hash, body FROM incidents WHERE pk", chunk, lock);
        for r in q.fetch_all(&mut **tx).await? {
            let inc = parse_body(&r.try_get::<String, _>("body")?)?;
            out.push((
                r.try_get("pk")?,
                IncState {
                    head: r.try_get("head_hash")?,
                    inc,
                    events: vec![],
                    payloads: vec![],
                    is_new: false,
                    pending: None,
                },
            ));
        }
    }
    Ok(out)
}

/// The transaction a batch decides in; `None` while it is busy writing the
/// part before (see `Store::apply_pipelined`).
pub(super) type Db<'a, 't> = Option<&'a mut Transaction<'t, Any>>;

/// The transaction, or [`StoreError::Deferred`] while there is none to use.
fn db<'a, 't>(tx: &'a mut Db<'_, 't>) -> Result<&'a mut Transaction<'t, Any>, StoreError> {
    tx.as_mut().map(|t| &mut **t).ok_or(StoreError::Deferred)
}
