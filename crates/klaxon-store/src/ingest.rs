//! Alert ingestion: dedup, silences, routing, grouping into incidents,
//! auto-resolve and flapping — and the group-commit writer that lets many
//! concurrent requests share one transaction.
//!
//! A batch is worked in two phases. First every request is decided in
//! memory against state read in a few set-based queries (the latest alert of
//! each dedup key, the incident of each group, the incidents involved); each
//! request is all-or-nothing through an undo journal. Then everything is
//! written with multi-row statements and committed once. The sender gets its
//! 2xx only after the commit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use klaxon_domain::alert::{AlertAction, AlertInput, AutoResolveAction, FlapPolicy, Route, Silence, matching_routes};
use klaxon_domain::config::{Catalog, is_slug};
use klaxon_domain::decide::{self, Command};
use klaxon_domain::event::{self, GENESIS_HASH};
use klaxon_domain::incident::limits;
use klaxon_domain::wire::{AlertOutcome, DeclareIncident, IntegrationInfo};
use klaxon_domain::{EventKind, Incident, Status, TimelineEvent};
use sqlx::{Any, AssertSqlSafe, Row, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::incidents::{parse_body, to_json, write_services};
use crate::{Backend, Store, StoreError};

/// What ingestion needs besides the database.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub catalog: Arc<Catalog>,
    /// Routes from the configuration file; API routes follow them.
    pub routes: Vec<Route>,
    /// Catches what no route matches.
    pub default_route: Route,
    pub flap: FlapPolicy,
}

impl IngestSettings {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self {
            catalog,
            routes: vec![],
            default_route: Route::default_route(),
            flap: FlapPolicy::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowState {
    Clean,
    New,
    Dirty,
}

/// An alert row as the batch sees it.
#[derive(Debug, Clone)]
struct AlertRow {
    pk: i64,
    integration_id: String,
    dedup_key: String,
    status: String,
    acknowledged: bool,
    suppressed_by: Option<String>,
    flapping: bool,
    changes: Vec<i64>,
    summary: String,
    severity: Option<String>,
    source: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    links: String,
    details: String,
    starts_at: i64,
    ends_at: Option<i64>,
    last_seen_at: i64,
    receive_count: i64,
    created_at: i64,
    state: RowState,
}

#[derive(Debug, Clone)]
struct IncState {
    head: String,
    inc: Incident,
    events: Vec<TimelineEvent>,
    is_new: bool,
}

type AlertKey = (String, String);

/// Undo journal entries: the value before the request first touched it.
enum Undo {
    Alert(AlertKey, Option<Box<AlertRow>>),
    Links(i64, Option<Vec<(i64, String)>>),
    NewLinks(usize),
    Group(String, Option<Option<i64>>, bool),
    /// head, projection and number of pending events before the request touched it.
    Incident(i64, Option<(String, Box<Incident>, usize)>),
    Delta(i64, Option<i64>),
    Counter(String, Option<(i64, bool)>),
}

struct Batch<'s> {
    backend: Backend,
    settings: &'s IngestSettings,
    routes: Vec<Route>,
    silences: Vec<Silence>,
    reuse_window_ms: i64,
    alerts: HashMap<AlertKey, AlertRow>,
    links: HashMap<i64, Vec<(i64, String)>>,
    new_links: Vec<(i64, i64, String)>,
    groups: HashMap<String, Option<i64>>,
    dirty_groups: HashSet<String>,
    incidents: HashMap<i64, IncState>,
    firing_base: HashMap<i64, i64>,
    firing_delta: HashMap<i64, i64>,
    counters: HashMap<String, (i64, bool)>,
    alert_pks: Vec<i64>,
    incident_pks: Vec<i64>,
    next_alert_pk: Option<i64>,
    next_incident_pk: Option<i64>,
    undo: Vec<Undo>,
    touched_alerts: HashSet<AlertKey>,
    touched_links: HashSet<i64>,
    touched_groups: HashSet<String>,
    touched_incidents: HashSet<i64>,
    touched_deltas: HashSet<i64>,
    touched_counters: HashSet<String>,
}

fn outcome(a: &AlertInput, pk: Option<i64>, result: &str, incidents: Vec<String>) -> AlertOutcome {
    AlertOutcome {
        dedup_key: a.dedup_key.clone(),
        alert_id: pk,
        result: result.into(),
        incidents,
    }
}

fn actor(integ: &IntegrationInfo) -> String {
    format!("integration:{}", integ.name)
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    to_json(v)
}

fn parse_map(text: &str) -> BTreeMap<String, String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// The declaration an alert makes under a route. Fields the catalog would
/// refuse (unknown service, odd labels) are left out rather than losing the alert.
fn declaration(a: &AlertInput, route: &Route, cat: &Catalog, now: Timestamp) -> DeclareIncident {
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
        services,
        labels,
        detected_at: Some(detected),
        ..Default::default()
    }
}

/// Values of a multi-row statement.
enum Val {
    I(i64),
    OI(Option<i64>),
    S(String),
    OS(Option<String>),
}

/// `INSERT INTO table (cols) VALUES (...), (...) [suffix]`, chunked.
async fn insert_rows(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    table: &str,
    cols: &[&str],
    rows: Vec<Vec<Val>>,
    suffix: &str,
) -> Result<(), StoreError> {
    let per_row = cols.len();
    // Few large statements: sqlx does not set TCP_NODELAY on PostgreSQL connections, so
    // every multi-packet statement can wait out a delayed ACK (~40 ms).
    let chunk = (30_000 / per_row.max(1)).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let part: Vec<Vec<Val>> = rows.by_ref().take(chunk).collect();
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", cols.join(", "));
        for (r, _) in part.iter().enumerate() {
            if r > 0 {
                sql.push_str(", ");
            }
            // SQLite: anonymous `?` — binding by `$N` name costs a linear
            // search per parameter, quadratic over a multi-row statement.
            let ph: Vec<String> = match backend {
                Backend::Sqlite => vec!["?".to_string(); per_row],
                Backend::Postgres => (0..per_row).map(|c| format!("${}", r * per_row + c + 1)).collect(),
            };
            sql.push('(');
            sql.push_str(&ph.join(", "));
            sql.push(')');
        }
        sql.push_str(suffix);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for row in part {
            for v in row {
                q = match v {
                    Val::I(i) => q.bind(i),
                    Val::OI(i) => q.bind(i),
                    Val::S(s) => q.bind(s),
                    Val::OS(s) => q.bind(s),
                };
            }
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

impl<'s> Batch<'s> {
    fn now_ms(now: Timestamp) -> i64 {
        now.as_millisecond()
    }

    // ---- undo journal -------------------------------------------------

    fn begin_request(&mut self) {
        self.undo.clear();
        self.touched_alerts.clear();
        self.touched_links.clear();
        self.touched_groups.clear();
        self.touched_incidents.clear();
        self.touched_deltas.clear();
        self.touched_counters.clear();
    }

    fn rollback_request(&mut self) {
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
                    (Some((head, inc, len)), Some(st)) => {
                        st.head = head;
                        st.inc = *inc;
                        st.events.truncate(len);
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
            let prev = self
                .incidents
                .get(&pk)
                .map(|st| (st.head.clone(), Box::new(st.inc.clone()), st.events.len()));
            self.undo.push(Undo::Incident(pk, prev));
        }
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

    async fn preload(&mut self, tx: &mut Transaction<'_, Any>, jobs: &[Job]) -> Result<(), StoreError> {
        // Latest alert per (integration, dedup key).
        let mut by_integ: HashMap<&str, HashSet<&str>> = HashMap::new();
        for j in jobs {
            for a in &j.alerts {
                by_integ
                    .entry(j.integration.id.as_str())
                    .or_default()
                    .insert(a.dedup_key.as_str());
            }
        }
        let lock = if self.backend == Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        for (integ, keys) in by_integ {
            let keys: Vec<&str> = keys.into_iter().collect();
            for chunk in keys.chunks(500) {
                let ph: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
                let sql = format!(
                    "SELECT pk, dedup_key, status, acknowledged, suppressed_by, flapping, changes, summary, severity, source, labels, annotations, \
                     links, details, starts_at, ends_at, last_seen_at, receive_count, created_at FROM alerts a \
                     WHERE integration_id = $1 AND dedup_key IN ({}) \
                     AND pk = (SELECT MAX(pk) FROM alerts b WHERE b.integration_id = a.integration_id AND b.dedup_key = a.dedup_key){lock}",
                    ph.join(", ")
                );
                let mut q = sqlx::query(AssertSqlSafe(sql)).bind(integ.to_string());
                for k in chunk {
                    q = q.bind(k.to_string());
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
                        labels: parse_map(&r.try_get::<String, _>("labels")?),
                        annotations: parse_map(&r.try_get::<String, _>("annotations")?),
                        links: r.try_get("links")?,
                        details: r.try_get("details")?,
                        starts_at: r.try_get("starts_at")?,
                        ends_at: r.try_get("ends_at")?,
                        last_seen_at: r.try_get("last_seen_at")?,
                        receive_count: r.try_get("receive_count")?,
                        created_at: r.try_get("created_at")?,
                        state: RowState::Clean,
                    };
                    self.alerts.insert((integ.to_string(), key), row);
                }
            }
        }
        // Their incident links.
        let pks: Vec<i64> = self.alerts.values().map(|a| a.pk).collect();
        // (Chunks of an empty list run no query.)
        for chunk in pks.chunks(500) {
            let ph: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 1)).collect();
            let sql = format!(
                "SELECT alert_pk, incident_pk, route FROM incident_alerts WHERE alert_pk IN ({}) ORDER BY incident_pk",
                ph.join(", ")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for pk in chunk {
                q = q.bind(*pk);
            }
            for r in q.fetch_all(&mut **tx).await? {
                self.links
                    .entry(r.try_get("alert_pk")?)
                    .or_default()
                    .push((r.try_get("incident_pk")?, r.try_get("route")?));
            }
        }
        // The incident of every group a trigger may join.
        let mut gks: HashSet<String> = HashSet::new();
        for j in jobs {
            for a in j.alerts.iter().filter(|a| a.action == AlertAction::Trigger) {
                for r in matching_routes(&self.routes, &self.settings.default_route, &a.labels) {
                    gks.insert(r.group_key(a));
                }
            }
        }
        let gks: Vec<String> = gks.into_iter().collect();
        for chunk in gks.chunks(500) {
            let ph: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 1)).collect();
            let sql = format!(
                "SELECT group_key, incident_pk FROM alert_groups WHERE group_key IN ({})",
                ph.join(", ")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for g in chunk {
                q = q.bind(g.clone());
            }
            for r in q.fetch_all(&mut **tx).await? {
                self.groups
                    .insert(r.try_get("group_key")?, Some(r.try_get("incident_pk")?));
            }
        }
        for g in gks {
            self.groups.entry(g).or_insert(None);
        }
        // The incidents involved.
        let mut ipks: HashSet<i64> = self.groups.values().flatten().copied().collect();
        ipks.extend(self.links.values().flatten().map(|(i, _)| *i));
        let ipks: Vec<i64> = ipks.into_iter().collect();
        self.load_incidents(tx, &ipks).await?;
        Ok(())
    }

    async fn load_incidents(&mut self, tx: &mut Transaction<'_, Any>, pks: &[i64]) -> Result<(), StoreError> {
        let lock = if self.backend == Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let missing: Vec<i64> = pks
            .iter()
            .copied()
            .filter(|p| !self.incidents.contains_key(p))
            .collect();
        for chunk in missing.chunks(500) {
            let ph: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 1)).collect();
            let sql = format!(
                "SELECT pk, head_hash, body FROM incidents WHERE pk IN ({}){lock}",
                ph.join(", ")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for pk in chunk {
                q = q.bind(*pk);
            }
            for r in q.fetch_all(&mut **tx).await? {
                let inc = parse_body(&r.try_get::<String, _>("body")?)?;
                self.incidents.insert(
                    r.try_get("pk")?,
                    IncState {
                        head: r.try_get("head_hash")?,
                        inc,
                        events: vec![],
                        is_new: false,
                    },
                );
            }
        }
        Ok(())
    }

    async fn firing_count(&mut self, tx: &mut Transaction<'_, Any>, incident_pk: i64) -> Result<i64, StoreError> {
        let base = match self.firing_base.get(&incident_pk) {
            Some(b) => *b,
            None => {
                let b: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM incident_alerts ia JOIN alerts al ON al.pk = ia.alert_pk WHERE ia.incident_pk = $1 AND al.status = 'firing'",
                )
                .bind(incident_pk)
                .fetch_one(&mut **tx)
                .await?;
                self.firing_base.insert(incident_pk, b);
                b
            }
        };
        Ok(base + self.firing_delta.get(&incident_pk).copied().unwrap_or(0))
    }

    async fn alloc(&mut self, tx: &mut Transaction<'_, Any>, table: &str) -> Result<i64, StoreError> {
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
                                .fetch_one(&mut **tx)
                                .await?;
                        max.unwrap_or(0) + 1
                    }
                };
                *next = Some(n + 1);
                Ok(n)
            }
            Backend::Postgres => {
                if pool.is_empty() {
                    let mut got: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                        "SELECT nextval(pg_get_serial_sequence('{table}', 'pk')) FROM generate_series(1, 256)"
                    )))
                    .fetch_all(&mut **tx)
                    .await?;
                    got.reverse();
                    *pool = got;
                }
                pool.pop().ok_or_else(|| StoreError::Corrupt("no key allocated".into()))
            }
        }
    }

    async fn next_incident_id(&mut self, tx: &mut Transaction<'_, Any>, now: Timestamp) -> Result<String, StoreError> {
        let cat = &self.settings.catalog;
        let scope = cat.id_format.scope(now);
        if !self.counters.contains_key(&scope) {
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
        let st = self
            .incidents
            .get_mut(&incident_pk)
            .ok_or_else(|| StoreError::NotFound(format!("#{incident_pk}")))?;
        for kind in kinds {
            let ev = TimelineEvent::seal(&st.inc.id, st.inc.version + 1, now, who, kind, &st.head);
            st.inc = event::apply(Some(st.inc.clone()), &ev).ok_or_else(|| StoreError::Corrupt("apply".into()))?;
            st.head = ev.hash.clone();
            st.events.push(ev);
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
        tx: &mut Transaction<'_, Any>,
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
        let ev = TimelineEvent::seal(&id, 1, now, who, decide::declared(draft, id.clone()), GENESIS_HASH);
        let inc = event::apply(None, &ev).ok_or_else(|| StoreError::Corrupt("declared".into()))?;
        self.touch_incident(pk);
        self.incidents.insert(
            pk,
            IncState {
                head: ev.hash.clone(),
                inc,
                events: vec![ev],
                is_new: true,
            },
        );
        Ok(pk)
    }

    fn link(&mut self, alert_pk: i64, incident_pk: i64, route: &str) {
        let already = self
            .links
            .get(&alert_pk)
            .is_some_and(|v| v.iter().any(|(i, _)| *i == incident_pk));
        if already {
            return;
        }
        self.touch_links(alert_pk);
        self.links
            .entry(alert_pk)
            .or_default()
            .push((incident_pk, route.to_string()));
        self.undo.push(Undo::NewLinks(self.new_links.len()));
        self.new_links.push((incident_pk, alert_pk, route.to_string()));
    }

    /// Join the alert to the incident of each matching route's group, opening
    /// or reopening incidents as needed.
    async fn attach(
        &mut self,
        tx: &mut Transaction<'_, Any>,
        integ: &IntegrationInfo,
        alert_pk: i64,
        a: &AlertInput,
        refired: bool,
        now: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        let who = actor(integ);
        let routes: Vec<Route> = matching_routes(&self.routes, &self.settings.default_route, &a.labels)
            .into_iter()
            .cloned()
            .collect();
        let mut ids = Vec::new();
        for route in routes {
            let gk = route.group_key(a);
            let existing = match self.groups.get(&gk) {
                Some(v) => *v,
                None => {
                    let v: Option<i64> =
                        sqlx::query_scalar("SELECT incident_pk FROM alert_groups WHERE group_key = $1")
                            .bind(gk.clone())
                            .fetch_optional(&mut **tx)
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
                    let pk = self.declare(tx, a, &route, &who, now).await?;
                    self.touch_group(&gk);
                    self.groups.insert(gk.clone(), Some(pk));
                    self.dirty_groups.insert(gk.clone());
                    pk
                }
            };
            self.link(alert_pk, incident_pk, &route.name);
            self.add_delta(incident_pk, 1);
            let fired = EventKind::AlertFired {
                alert_id: alert_pk,
                integration: integ.name.clone(),
                dedup_key: a.dedup_key.clone(),
                summary: a.summary.chars().take(limits::SHORT_TEXT_MAX).collect(),
                severity: a.severity.clone().or_else(|| a.labels.get("severity").cloned()),
                labels: a.labels.clone(),
                refired,
            };
            ids.push(self.append(incident_pk, vec![fired], &who, now)?);
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
        self.alerts.insert(key.clone(), row);
    }

    async fn process(
        &mut self,
        tx: &mut Transaction<'_, Any>,
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
                    p.labels = a.labels.clone();
                    p.annotations = a.annotations.clone();
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
                    for (ipk, _) in self.linked(pk) {
                        let ev = EventKind::AlertRepeated {
                            alert_id: pk,
                            dedup_key: a.dedup_key.clone(),
                            count,
                        };
                        ids.push(self.append(ipk, vec![ev], &actor(integ), now)?);
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
                    p.labels = a.labels.clone();
                    p.annotations = a.annotations.clone();
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
                        labels: a.labels.clone(),
                        annotations: a.annotations.clone(),
                        links: json(&a.links)?,
                        details: json(&a.details)?,
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
                    let mut kinds = vec![EventKind::AlertResolved {
                        alert_id: pk,
                        dedup_key: a.dedup_key.clone(),
                    }];
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
                    ids.push(self.append(ipk, kinds, &who, now)?);
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

    // ---- writing -----------------------------------------------------

    async fn flush(self, tx: &mut Transaction<'_, Any>) -> Result<(), StoreError> {
        let backend = self.backend;
        // New incidents first (events and links point at them).
        let mut incidents: Vec<(i64, IncState)> = self
            .incidents
            .into_iter()
            .filter(|(_, s)| !s.events.is_empty())
            .collect();
        incidents.sort_by_key(|(pk, _)| *pk);
        let inc_cols = [
            "pk",
            "id",
            "title",
            "severity",
            "category",
            "status",
            "private",
            "started_at",
            "declared_at",
            "updated_at",
            "version",
            "head_hash",
            "body",
        ];
        let mut rows = Vec::new();
        for (pk, st) in &incidents {
            let i = &st.inc;
            rows.push(vec![
                Val::I(*pk),
                Val::S(i.id.clone()),
                Val::S(i.title.clone()),
                Val::S(i.severity.clone()),
                Val::OS(i.category.clone()),
                Val::S(i.status.as_str().into()),
                Val::I(i.private as i64),
                Val::I(i.started_at.as_millisecond()),
                Val::I(i.declared_at.as_millisecond()),
                Val::I(i.updated_at.as_millisecond()),
                Val::I(i.version as i64),
                Val::S(st.head.clone()),
                Val::S(json(i)?),
            ]);
        }
        // New and changed incidents in one statement: insert, or update the projection.
        insert_rows(
            tx,
            backend,
            "incidents",
            &inc_cols,
            rows,
            " ON CONFLICT (pk) DO UPDATE SET title = excluded.title, severity = excluded.severity, category = excluded.category, \
             status = excluded.status, private = excluded.private, started_at = excluded.started_at, updated_at = excluded.updated_at, \
             version = excluded.version, head_hash = excluded.head_hash, body = excluded.body",
        )
        .await?;
        for (pk, st) in incidents.iter().filter(|(_, s)| s.is_new) {
            write_services(tx, *pk, &st.inc.services).await?;
        }
        // Alerts.
        let alert_cols = [
            "pk",
            "integration_id",
            "dedup_key",
            "status",
            "acknowledged",
            "suppressed_by",
            "flapping",
            "changes",
            "summary",
            "severity",
            "source",
            "labels",
            "annotations",
            "links",
            "details",
            "starts_at",
            "ends_at",
            "last_seen_at",
            "receive_count",
            "created_at",
            "updated_at",
        ];
        let mut changed: Vec<AlertRow> = self
            .alerts
            .into_values()
            .filter(|r| r.state != RowState::Clean)
            .collect();
        changed.sort_by_key(|r| r.pk);
        let mut rows = Vec::with_capacity(changed.len());
        for r in changed {
            rows.push(vec![
                Val::I(r.pk),
                Val::S(r.integration_id),
                Val::S(r.dedup_key),
                Val::S(r.status),
                Val::I(r.acknowledged as i64),
                Val::OS(r.suppressed_by),
                Val::I(r.flapping as i64),
                Val::S(json(&r.changes)?),
                Val::S(r.summary),
                Val::OS(r.severity),
                Val::OS(r.source),
                Val::S(json(&r.labels)?),
                Val::S(json(&r.annotations)?),
                Val::S(r.links),
                Val::S(r.details),
                Val::I(r.starts_at),
                Val::OI(r.ends_at),
                Val::I(r.last_seen_at),
                Val::I(r.receive_count),
                Val::I(r.created_at),
                Val::I(r.last_seen_at),
            ]);
        }
        // Resolutions first would free the "one firing alert per key" index for
        // a refire in the same statement; rows are distinct keys, so order by pk suffices.
        insert_rows(
            tx,
            backend,
            "alerts",
            &alert_cols,
            rows,
            " ON CONFLICT (pk) DO UPDATE SET status = excluded.status, acknowledged = excluded.acknowledged, suppressed_by = excluded.suppressed_by, \
             flapping = excluded.flapping, changes = excluded.changes, summary = excluded.summary, labels = excluded.labels, \
             annotations = excluded.annotations, ends_at = excluded.ends_at, last_seen_at = excluded.last_seen_at, \
             receive_count = excluded.receive_count, updated_at = excluded.updated_at",
        )
        .await?;
        // Links and groups.
        let links: Vec<Vec<Val>> = self
            .new_links
            .into_iter()
            .map(|(i, a, r)| vec![Val::I(i), Val::I(a), Val::S(r)])
            .collect();
        insert_rows(
            tx,
            backend,
            "incident_alerts",
            &["incident_pk", "alert_pk", "route"],
            links,
            " ON CONFLICT (incident_pk, alert_pk) DO NOTHING",
        )
        .await?;
        let now = incidents
            .iter()
            .map(|(_, s)| s.inc.updated_at.as_millisecond())
            .max()
            .unwrap_or(0);
        let groups: Vec<Vec<Val>> = self
            .dirty_groups
            .into_iter()
            .filter_map(|gk| match self.groups.get(&gk) {
                Some(Some(pk)) => Some(vec![Val::S(gk), Val::I(*pk), Val::I(now)]),
                _ => None,
            })
            .collect();
        insert_rows(
            tx,
            backend,
            "alert_groups",
            &["group_key", "incident_pk", "updated_at"],
            groups,
            " ON CONFLICT (group_key) DO UPDATE SET incident_pk = excluded.incident_pk, updated_at = excluded.updated_at",
        )
        .await?;
        // Timeline events.
        let mut events = Vec::new();
        for (pk, st) in &incidents {
            for e in &st.events {
                events.push(vec![
                    Val::I(*pk),
                    Val::I(e.seq as i64),
                    Val::I(e.at.as_millisecond()),
                    Val::S(e.actor.clone()),
                    Val::S(e.kind.type_name().into()),
                    Val::S(json(&e.kind)?),
                    Val::S(e.prev_hash.clone()),
                    Val::S(e.hash.clone()),
                ]);
            }
        }
        insert_rows(
            tx,
            backend,
            "incident_events",
            &[
                "incident_pk",
                "seq",
                "at",
                "actor",
                "type",
                "payload",
                "prev_hash",
                "hash",
            ],
            events,
            "",
        )
        .await?;
        for (scope, (last, dirty)) in self.counters {
            if dirty {
                sqlx::query("INSERT INTO id_counters (scope, last) VALUES ($1, $2) ON CONFLICT (scope) DO UPDATE SET last = excluded.last")
                    .bind(scope)
                    .bind(last)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }
}

/// A resolved alert that fires again within this window is the same alert
/// (flapping is counted on it and its incident may reopen); later, it is a new one.
fn reuse_window_ms(settings: &IngestSettings, routes: &[Route]) -> i64 {
    let flap = settings.flap.window.map(|w| w.as_millis() as i64).unwrap_or(0);
    let reopen = routes
        .iter()
        .chain(std::iter::once(&settings.default_route))
        .filter_map(|r| r.reopen_window.map(|w| w.as_millis() as i64))
        .max()
        .unwrap_or(0);
    flap.max(reopen)
}

type Reply = oneshot::Sender<Result<Vec<AlertOutcome>, StoreError>>;

struct Job {
    integration: IntegrationInfo,
    alerts: Vec<AlertInput>,
    now: Timestamp,
    reply: Reply,
}

/// The group-commit writer: concurrent requests are queued, and whatever is
/// queued when the writer is free is committed in one transaction. A request
/// is answered only after commit.
#[derive(Clone, Debug)]
pub struct Ingestor {
    queue: mpsc::Sender<Job>,
}

/// Most requests committed together.
const MAX_BATCH: usize = 512;

impl Ingestor {
    pub fn start(store: Store, settings: Arc<IngestSettings>) -> Ingestor {
        let (queue, mut rx) = mpsc::channel::<Job>(8192);
        tokio::spawn(async move {
            let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
            let mut rules: Option<Rules> = None;
            while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
                store
                    .ingest_batch(&settings, &mut rules, std::mem::take(&mut jobs))
                    .await;
            }
        });
        Ingestor { queue }
    }

    /// Ingest one request's alerts; returns after they are committed.
    pub async fn submit(
        &self,
        integration: IntegrationInfo,
        alerts: Vec<AlertInput>,
        now: Timestamp,
    ) -> Result<Vec<AlertOutcome>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.queue
            .send(Job {
                integration,
                alerts,
                now,
                reply,
            })
            .await
            .map_err(|_| StoreError::Conflict("the ingest writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Conflict("the ingest writer dropped the request".into()))?
    }
}

/// Routes and silences, cached by the writer: refreshed when this node
/// changes them, and at least every [`RULES_TTL`] for changes made by others.
struct Rules {
    /// Alert keys allocated but not used yet, carried from batch to batch.
    alert_pks: Vec<i64>,
    next_alert_pk: Option<i64>,
    generation: u64,
    fetched: std::time::Instant,
    routes: Vec<Route>,
    silences: Vec<Silence>,
}

const RULES_TTL: std::time::Duration = std::time::Duration::from_secs(2);

impl Store {
    async fn rules(
        &self,
        settings: &IngestSettings,
        cache: &mut Option<Rules>,
        now: Timestamp,
    ) -> Result<(Vec<Route>, Vec<Silence>), StoreError> {
        let generation = self.rules_generation();
        if let Some(r) = cache.as_ref()
            && r.generation == generation
            && r.fetched.elapsed() < RULES_TTL
        {
            return Ok((r.routes.clone(), r.silences.clone()));
        }
        let mut routes = settings.routes.clone();
        routes.extend(self.api_routes().await?);
        let silences = self.silences(now, false).await?;
        let (alert_pks, next_alert_pk) = cache.take().map(|r| (r.alert_pks, r.next_alert_pk)).unwrap_or_default();
        *cache = Some(Rules {
            alert_pks,
            next_alert_pk,
            generation,
            fetched: std::time::Instant::now(),
            routes: routes.clone(),
            silences: silences.clone(),
        });
        Ok((routes, silences))
    }

    async fn ingest_batch(&self, settings: &IngestSettings, rules: &mut Option<Rules>, jobs: Vec<Job>) {
        let result = match self
            .rules(settings, rules, jobs.iter().map(|j| j.now).max().unwrap_or_default())
            .await
        {
            Ok((routes, silences)) => self.ingest_batch_inner(settings, routes, silences, rules, &jobs).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(results) => {
                metrics::histogram!("klaxon_ingest_batch_requests").record(jobs.len() as f64);
                for (job, r) in jobs.into_iter().zip(results) {
                    let _ = job.reply.send(r);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, requests = jobs.len(), "ingest batch failed; nothing of it was stored");
                let msg = e.to_string();
                for job in jobs {
                    let _ = job
                        .reply
                        .send(Err(StoreError::Conflict(format!("alert batch not stored: {msg}"))));
                }
            }
        }
    }

    async fn ingest_batch_inner(
        &self,
        settings: &IngestSettings,
        routes: Vec<Route>,
        silences: Vec<Silence>,
        carry: &mut Option<Rules>,
        jobs: &[Job],
    ) -> Result<Vec<Result<Vec<AlertOutcome>, StoreError>>, StoreError> {
        let (alert_pks, next_alert_pk) = carry
            .as_mut()
            .map(|r| (std::mem::take(&mut r.alert_pks), r.next_alert_pk.take()))
            .unwrap_or_default();
        let mut tx = self.write.begin().await?;
        let mut batch = Batch {
            backend: self.backend,
            settings,
            reuse_window_ms: reuse_window_ms(settings, &routes),
            routes,
            silences,
            alerts: HashMap::new(),
            links: HashMap::new(),
            new_links: Vec::new(),
            groups: HashMap::new(),
            dirty_groups: HashSet::new(),
            incidents: HashMap::new(),
            firing_base: HashMap::new(),
            firing_delta: HashMap::new(),
            counters: HashMap::new(),
            alert_pks,
            incident_pks: Vec::new(),
            next_alert_pk,
            next_incident_pk: None,
            undo: Vec::new(),
            touched_alerts: HashSet::new(),
            touched_links: HashSet::new(),
            touched_groups: HashSet::new(),
            touched_incidents: HashSet::new(),
            touched_deltas: HashSet::new(),
            touched_counters: HashSet::new(),
        };
        let t0 = std::time::Instant::now();
        batch.preload(&mut tx, jobs).await?;
        let t_preload = t0.elapsed();
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            batch.begin_request();
            let mut out = Vec::with_capacity(job.alerts.len());
            let mut failed = None;
            for a in &job.alerts {
                match batch.process(&mut tx, &job.integration, a, job.now).await {
                    Ok(o) => out.push(o),
                    Err(e @ StoreError::Domain(_)) => {
                        failed = Some(e);
                        break;
                    }
                    // Database trouble: the whole batch fails and is retried by the senders.
                    Err(e) => return Err(e),
                }
            }
            match failed {
                Some(e) => {
                    batch.rollback_request();
                    results.push(Err(e));
                }
                None => results.push(Ok(out)),
            }
        }
        if let Some(r) = carry.as_mut() {
            // Only this writer inserts alerts, so its next key stays valid.
            r.alert_pks = std::mem::take(&mut batch.alert_pks);
            r.next_alert_pk = batch.next_alert_pk;
        }
        let t_decide = t0.elapsed();
        batch.flush(&mut tx).await?;
        let t_flush = t0.elapsed();
        tx.commit().await?;
        let t_commit = t0.elapsed();
        for (phase, d) in [
            ("preload", t_preload),
            ("decide", t_decide - t_preload),
            ("flush", t_flush - t_decide),
            ("commit", t_commit - t_flush),
        ] {
            metrics::histogram!("klaxon_ingest_batch_phase_seconds", "phase" => phase).record(d.as_secs_f64());
        }
        Ok(results)
    }
}
