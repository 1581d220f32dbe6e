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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use klaxon_domain::alert::{AlertInput, FlapPolicy, Route, Silence};
use klaxon_domain::config::Catalog;
use klaxon_domain::wire::{AlertOutcome, IntegrationInfo};
use tokio::sync::{mpsc, oneshot};

use crate::{Store, StoreError};

mod batch;
mod write;

use batch::Batch;

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

pub(super) struct Job {
    pub(super) integration: IntegrationInfo,
    pub(super) alerts: Vec<AlertInput>,
    pub(super) now: Timestamp,
    pub(super) reply: Reply,
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
pub(super) struct Rules {
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
        let timers_changed = batch.flush(&mut tx).await?;
        let t_flush = t0.elapsed();
        tx.commit().await?;
        if timers_changed {
            self.wake_engine();
        }
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
