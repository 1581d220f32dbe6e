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

use std::sync::Arc;

use jiff::Timestamp;
use klaxon_domain::alert::{AlertInput, FlapPolicy, Route, Silence};
use klaxon_domain::config::Catalog;
use klaxon_domain::wire::{AlertOutcome, IntegrationInfo};
use tokio::sync::{mpsc, oneshot};

use crate::{Store, StoreError};

mod ahead;
mod batch;
mod write;

use ahead::Seed;
use batch::Batch;
use sqlx::AnyConnection;

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
/// is answered only after commit. While one batch is written and committed,
/// the next is decided (see [`ahead`]).
#[derive(Clone, Debug)]
pub struct Ingestor {
    queue: mpsc::Sender<Job>,
}

/// Most requests committed together.
const MAX_BATCH: usize = 512;

type Results = Vec<Result<Vec<AlertOutcome>, StoreError>>;

impl Ingestor {
    pub fn start(store: Store, settings: Arc<IngestSettings>) -> Ingestor {
        let (queue, mut rx) = mpsc::channel::<Job>(8192);
        tokio::spawn(async move {
            let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
            let mut rules: Option<Rules> = None;
            // The batch being written, if any: true once committed as decided.
            let mut writing: Option<tokio::task::JoinHandle<bool>> = None;
            let mut seed: Option<Seed> = None;
            while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
                let jobs = std::mem::take(&mut jobs);
                let now = jobs.iter().map(|j| j.now).max().unwrap_or_default();
                let (routes, silences) = match store.rules(&settings, &mut rules, now).await {
                    Ok(r) => r,
                    Err(e) => {
                        if let Some(w) = writing.take() {
                            let _ = w.await;
                        }
                        seed = None;
                        fail(jobs, &e);
                        continue;
                    }
                };
                let ahead = store
                    .decide_ahead(&settings, routes.clone(), silences.clone(), seed.take(), &jobs)
                    .await;
                let previous_as_decided = match writing.take() {
                    Some(w) => w.await.unwrap_or(false),
                    None => true,
                };
                match ahead {
                    Ok((batch, results)) if previous_as_decided => {
                        seed = Some(batch.seed());
                        let (store, settings) = (store.clone(), settings.clone());
                        writing = Some(tokio::spawn(async move {
                            store
                                .write_ahead(settings, routes, silences, batch, results, jobs)
                                .await
                        }));
                    }
                    _ => {
                        // Decided on state that did not hold: decide again inside the transaction.
                        store.ingest_batch(settings.clone(), routes, silences, jobs).await;
                    }
                }
            }
            if let Some(w) = writing {
                let _ = w.await;
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

fn fail(jobs: Vec<Job>, e: &StoreError) {
    tracing::error!(error = %e, requests = jobs.len(), "ingest batch failed; nothing of it was stored");
    let msg = e.to_string();
    for job in jobs {
        let _ = job
            .reply
            .send(Err(StoreError::Conflict(format!("alert batch not stored: {msg}"))));
    }
}

fn reply(jobs: Vec<Job>, results: Results) {
    metrics::histogram!("klaxon_ingest_batch_requests").record(jobs.len() as f64);
    for (job, r) in jobs.into_iter().zip(results) {
        let _ = job.reply.send(r);
    }
}

fn phase(name: &'static str, d: std::time::Duration) {
    metrics::histogram!("klaxon_ingest_batch_phase_seconds", "phase" => name).record(d.as_secs_f64());
}

/// Routes and silences, cached by the writer: refreshed when this node
/// changes them, and at least every [`RULES_TTL`] for changes made by others.
pub(super) struct Rules {
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
        *cache = Some(Rules {
            generation,
            fetched: std::time::Instant::now(),
            routes: routes.clone(),
            silences: silences.clone(),
        });
        Ok((routes, silences))
    }

    /// Decide a batch inside the write transaction, write and commit it, answer its requests.
    async fn ingest_batch(
        &self,
        settings: Arc<IngestSettings>,
        routes: Vec<Route>,
        silences: Vec<Silence>,
        jobs: Vec<Job>,
    ) {
        let result = async {
            let mut tx = self.write.begin().await?;
            let mut batch = Batch::new(self.backend, settings, routes, silences, true, Seed::default());
            let results = decide(&mut batch, &mut tx, &jobs).await?;
            self.write_batch(tx, batch).await?;
            Ok::<_, StoreError>(results)
        }
        .await;
        match result {
            Ok(results) => reply(jobs, results),
            Err(e) => fail(jobs, &e),
        }
    }

    /// Decide a batch on a read connection, from the previous batch's seed.
    async fn decide_ahead(
        &self,
        settings: &Arc<IngestSettings>,
        routes: Vec<Route>,
        silences: Vec<Silence>,
        seed: Option<Seed>,
        jobs: &[Job],
    ) -> Result<(Batch, Results), StoreError> {
        let mut conn = self.read.acquire().await?;
        let mut batch = Batch::new(
            self.backend,
            settings.clone(),
            routes,
            silences,
            false,
            seed.unwrap_or_default(),
        );
        let results = decide(&mut batch, &mut conn, jobs).await?;
        Ok((batch, results))
    }

    /// Write a batch decided ahead if what it assumed still holds, else decide it
    /// again inside the transaction. True if it was committed as decided.
    async fn write_ahead(
        self,
        settings: Arc<IngestSettings>,
        routes: Vec<Route>,
        silences: Vec<Silence>,
        batch: Batch,
        results: Results,
        jobs: Vec<Job>,
    ) -> bool {
        let attempt = async {
            let mut tx = self.write.begin().await?;
            let t0 = std::time::Instant::now();
            let valid = batch.still_valid(&mut tx).await?;
            phase("validate", t0.elapsed());
            if !valid {
                return Ok(false);
            }
            self.write_batch(tx, batch).await?;
            Ok::<_, StoreError>(true)
        }
        .await;
        match attempt {
            Ok(true) => {
                reply(jobs, results);
                true
            }
            Ok(false) | Err(_) => {
                if let Err(e) = &attempt {
                    tracing::debug!(error = %e, "ingest batch decided ahead failed to write; deciding it again");
                }
                metrics::counter!("klaxon_ingest_batch_redecided_total").increment(1);
                self.ingest_batch(settings, routes, silences, jobs).await;
                false
            }
        }
    }

    async fn write_batch(&self, mut tx: sqlx::Transaction<'static, sqlx::Any>, batch: Batch) -> Result<(), StoreError> {
        let t0 = std::time::Instant::now();
        let timers_changed = batch.flush(&mut tx).await?;
        let t_flush = t0.elapsed();
        tx.commit().await?;
        if timers_changed {
            self.wake_engine();
        }
        phase("flush", t_flush);
        phase("commit", t0.elapsed() - t_flush);
        Ok(())
    }
}

/// Preload the state a batch needs, then decide every request in memory; each
/// request is all-or-nothing.
async fn decide(batch: &mut Batch, conn: &mut AnyConnection, jobs: &[Job]) -> Result<Results, StoreError> {
    let t0 = std::time::Instant::now();
    batch.preload(conn, jobs).await?;
    let t_preload = t0.elapsed();
    phase("preload", t_preload);
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        batch.begin_request();
        let mut out = Vec::with_capacity(job.alerts.len());
        let mut failed = None;
        for a in &job.alerts {
            match batch.process(conn, &job.integration, a, job.now).await {
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
    phase("decide", t0.elapsed() - t_preload);
    Ok(results)
}
