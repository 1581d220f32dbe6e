//! Alert ingestion: dedup, silences, routing, grouping into incidents,
//! auto-resolve and flapping — behind a durable journal with group commit.
//!
//! A request goes through two stages, each a single task working in batches:
//!
//! 1. **Intake.** Whatever requests are queued when the intake is free are
//!    written to the ingest journal ([`journal`]) as one row; then each is
//!    answered: a 2xx means the alerts are committed.
//! 2. **Apply.** Accepted requests are applied in the order they were
//!    journaled. A batch is worked in two phases: first every request is
//!    decided in memory against state read in a few set-based queries (the
//!    latest alert of each dedup key, the incident of each group, the
//!    incidents involved), each request all-or-nothing through an undo
//!    journal; then everything is written with multi-row statements,
//!    together with the journal mark of the last request applied, and
//!    committed once. A caller that wants the outcome (incidents opened or
//!    joined) waits for this stage too. While more requests are queued, one
//!    transaction takes several batches ("parts") and decides each while the
//!    one before is written (`Store::apply_pipelined`).
//!
//! Accepting and applying overlap, so accepting is not slowed by applying;
//! when more than [`IngestSettings::max_backlog`] alerts are accepted and
//! not applied, a new request waits for room up to
//! [`IngestSettings::backlog_wait`], and is refused (503/429) if the applier
//! has not caught up by then. Should the server stop with a backlog, the
//! journal is applied when it starts again (on PostgreSQL, also by any other
//! node within seconds).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use jiff::Timestamp;
use klaxon_domain::Clock;
use klaxon_domain::alert::{AlertInput, FlapPolicy, Route, Silence};
use klaxon_domain::config::Catalog;
use klaxon_domain::wire::{AlertOutcome, IntegrationInfo};
use tokio::sync::{mpsc, oneshot, watch};

use crate::{Backend, Store, StoreError};

mod batch;
mod journal;
mod write;

use batch::{Batch, Map, Set};
use journal::{Commit, JournalWriter, Leftover};
pub(crate) use journal::{JournalFile, create_sqlite_journal, sqlite_journal_url};

/// What ingestion needs besides the database.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub catalog: Arc<Catalog>,
    /// Routes from the configuration file; API routes follow them.
    pub routes: Vec<Route>,
    /// Catches what no route matches.
    pub default_route: Route,
    pub flap: FlapPolicy,
    /// Most alerts accepted and not yet applied; beyond it requests wait.
    pub max_backlog: usize,
    /// How long a request waits for the backlog to fall below
    /// [`IngestSettings::max_backlog`] before it is refused
    /// ([`DEFAULT_BACKLOG_WAIT`]; zero: refused at once).
    pub backlog_wait: std::time::Duration,
    /// How long a batch of fewer than [`LINGER_BELOW`] alerts waits for more
    /// before it is applied ([`DEFAULT_APPLY_LINGER`]; zero: never).
    pub apply_linger: std::time::Duration,
    /// Most requests applied together ([`MAX_BATCH`]; one part of a
    /// pipelined transaction: see `Store::apply_pipelined`).
    pub batch_requests: usize,
    /// A batch of at least this many alerts may be followed by
    /// more in the same transaction, pipelined ([`PIPELINE_MIN_ALERTS`]). Smaller
    /// batches mean the applier keeps up; pipelining them only costs.
    pub pipeline_min_alerts: usize,
}

/// Default [`IngestSettings::apply_linger`]. Each batch has a fixed cost (a
/// transaction, a dozen statements, a commit), which one-alert requests would
/// otherwise pay in batches of a hundred or two: with them, the applier spent
/// about twice the CPU per alert it spends at batch 100, on both backends.
/// Measured with one-alert requests from 32 connections, 3 interleaved pairs
/// of 15 s runs on a 2-core machine, 40 ms (and [`LINGER_BELOW`] 512) against
/// 5 ms (and 256): batches of 450–570 requests instead of 130–170; PostgreSQL's
/// CPU per alert 93 / 78 / 81 µs against 111 / 97 / 94, the server's the same;
/// on SQLite the server's 133 / 136 / 149 µs against 152 / 148 / 144. Alerts/s
/// moved within the machine's noise. A request's alerts reach their incident at
/// most this much later; the 2xx is not delayed.
pub const DEFAULT_APPLY_LINGER: std::time::Duration = std::time::Duration::from_millis(40);
/// Batches with fewer alerts than this wait [`IngestSettings::apply_linger`] for more.
pub const LINGER_BELOW: usize = 512;
/// Default [`IngestSettings::pipeline_min_alerts`].
pub const PIPELINE_MIN_ALERTS: usize = 256;

/// Default [`IngestSettings::max_backlog`]: about 5 s of applying on SQLite
/// and 9 s on PostgreSQL on a 2-core machine, and about 160 MB of memory
/// (measured with jemalloc: 403 MB resident with 250,000 Alertmanager alerts
/// waiting, the applier held up by a lock on `ingest_applied`; 348 MB with
/// mimalloc, used before).
pub const DEFAULT_MAX_BACKLOG: usize = 100_000;

/// Default [`IngestSettings::backlog_wait`]. A burst that outruns the applier
/// slows its senders down rather than failing their requests: at batch 100 on
/// a 2-core machine the applier frees room for 45,000–70,000 alerts a second.
/// An applier that stays stuck (its database gone) gets requests refused
/// after this long, well within senders' timeouts (Alertmanager's webhook
/// and PagerDuty clients wait 10 s or more).
pub const DEFAULT_BACKLOG_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl IngestSettings {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self {
            catalog,
            routes: vec![],
            default_route: Route::default_route(),
            flap: FlapPolicy::default(),
            max_backlog: DEFAULT_MAX_BACKLOG,
            backlog_wait: DEFAULT_BACKLOG_WAIT,
            apply_linger: DEFAULT_APPLY_LINGER,
            batch_requests: MAX_BATCH,
            pipeline_min_alerts: PIPELINE_MIN_ALERTS,
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

/// What applying one request came to.
pub type Outcomes = Result<Vec<AlertOutcome>, StoreError>;

/// One accepted request, on its way to be applied.
pub(super) struct Job {
    pub(super) integration: IntegrationInfo,
    pub(super) alerts: Vec<AlertInput>,
    pub(super) now: Timestamp,
    /// Its journal row (of the batch's writer).
    seq: i64,
    /// Whoever waits for the outcome.
    reply: Option<oneshot::Sender<Outcomes>>,
}

/// A request waiting for the intake.
struct Intake {
    job: Job,
    /// The request as the journal keeps it ([`journal::request_text`]).
    text: String,
    accepted: oneshot::Sender<Result<(), StoreError>>,
}

#[derive(Debug)]
struct Shared {
    /// This server start's journal writer name.
    writer: String,
    /// Alerts accepted and not yet applied.
    backlog: watch::Sender<usize>,
    /// Last of this writer's journal rows applied.
    applied: AtomicI64,
    /// Batches whose transaction failed and was retried (also
    /// `klaxon_ingest_batch_failures_total`).
    failed_batches: AtomicU64,
    /// Requests held for room in a full backlog ([`Ingestor::wait_for_room`]).
    held: AtomicUsize,
    /// Parts decided while the part before was written (also
    /// `klaxon_ingest_pipelined_parts_total`).
    pipelined_parts: AtomicU64,
}

/// The ingest pipeline: group-committed intake into the journal, then the
/// applier. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Ingestor {
    intake: mpsc::Sender<Intake>,
    shared: Arc<Shared>,
    max_backlog: usize,
    backlog_wait: std::time::Duration,
}

/// Most requests held at once for room in a full backlog; more are refused at once.
const MAX_HELD: usize = 256;

/// One request counted in [`Shared::held`] while it lives.
struct Held<'a>(&'a AtomicUsize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
/// Most requests journaled together.
const MAX_INTAKE: usize = 1024;
/// Most requests, and about the most alerts, applied together.
pub const MAX_BATCH: usize = 512;
const MAX_BATCH_ALERTS: usize = 5_000;
/// PostgreSQL: how often a node looks for the leftovers of stopped nodes.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// A running writer whose rows wait longer than this is taken for stuck.
const STUCK_AFTER: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

impl Ingestor {
    pub fn start(store: Store, settings: Arc<IngestSettings>, clock: Arc<dyn Clock>) -> Ingestor {
        let (intake, intake_rx) = mpsc::channel::<Intake>(8192);
        let (apply_tx, apply_rx) = mpsc::unbounded_channel::<Job>();
        let shared = Arc::new(Shared {
            writer: crate::random_hex("w-", 8),
            backlog: watch::Sender::new(0),
            applied: AtomicI64::new(0),
            failed_batches: AtomicU64::new(0),
            held: AtomicUsize::new(0),
            pipelined_parts: AtomicU64::new(0),
        });
        let backend = store.backend;
        spawn_stage(
            backend,
            "klaxon-intake",
            run_intake(store.clone(), shared.clone(), intake_rx, apply_tx),
        );
        spawn_stage(
            backend,
            "klaxon-applier",
            run_applier(store, settings.clone(), clock, shared.clone(), apply_rx),
        );
        Ingestor {
            intake,
            shared,
            max_backlog: settings.max_backlog,
            backlog_wait: settings.backlog_wait,
        }
    }

    /// Commit one request's alerts to the journal; returns once they are
    /// committed. With `outcome`, the returned receiver gets what applying
    /// them came to.
    pub async fn accept(
        &self,
        integration: IntegrationInfo,
        alerts: Vec<AlertInput>,
        now: Timestamp,
        outcome: bool,
    ) -> Result<Option<oneshot::Receiver<Outcomes>>, StoreError> {
        self.wait_for_room().await?;
        let text = journal::request_text(&integration.id, now, &alerts)
            .map_err(|e| StoreError::Conflict(format!("alerts not serialisable: {e}")))?;
        let (reply, applied) = match outcome {
            true => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
            false => (None, None),
        };
        let (accepted, rx) = oneshot::channel();
        self.intake
            .send(Intake {
                job: Job {
                    integration,
                    alerts,
                    now,
                    seq: 0,
                    reply,
                },
                text,
                accepted,
            })
            .await
            .map_err(|_| StoreError::Conflict("the ingest intake has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Conflict("the ingest intake dropped the request".into()))??;
        Ok(applied)
    }

    /// Ingest one request's alerts; returns after they are applied, with the outcome.
    pub async fn submit(&self, integration: IntegrationInfo, alerts: Vec<AlertInput>, now: Timestamp) -> Outcomes {
        let rx = self
            .accept(integration, alerts, now, true)
            .await?
            .ok_or_else(|| StoreError::Conflict("no outcome".into()))?;
        rx.await
            .map_err(|_| StoreError::Conflict("the ingest applier dropped the request".into()))?
    }

    /// Return once the backlog has room, waiting for the applier up to
    /// [`IngestSettings::backlog_wait`]; then refuse. Cheap when there is room
    /// (callers check before they even parse a body).
    pub async fn wait_for_room(&self) -> Result<(), StoreError> {
        let room = |n: &usize| *n < self.max_backlog;
        if room(&self.shared.backlog.borrow()) {
            return Ok(());
        }
        // Each held request keeps its body (up to 1 MiB): past MAX_HELD, refuse
        // at once. Counted out when done or dropped (its sender went away).
        let others = self.shared.held.fetch_add(1, Ordering::AcqRel);
        let _held = Held(&self.shared.held);
        if others < MAX_HELD {
            let started = std::time::Instant::now();
            let mut backlog = self.shared.backlog.subscribe();
            let waited = tokio::time::timeout(self.backlog_wait, backlog.wait_for(room)).await;
            metrics::histogram!("klaxon_ingest_backlog_wait_seconds").record(started.elapsed().as_secs_f64());
            if let Ok(Ok(_)) = waited {
                return Ok(());
            }
        }
        let waiting = *self.shared.backlog.borrow();
        metrics::counter!("klaxon_ingest_refused_total").increment(1);
        Err(StoreError::Overloaded(format!(
            "{waiting} alerts are waiting to be applied (at most {} are); retry later",
            self.max_backlog
        )))
    }

    /// Batches whose transaction failed since this ingestor started (each
    /// retried, then applied request by request).
    pub fn failed_batches(&self) -> u64 {
        self.shared.failed_batches.load(Ordering::Relaxed)
    }

    /// Parts of a transaction decided while the part before was written,
    /// since this ingestor started.
    pub fn pipelined_parts(&self) -> u64 {
        self.shared.pipelined_parts.load(Ordering::Relaxed)
    }

    /// Alerts accepted and not yet applied.
    pub fn backlog(&self) -> usize {
        *self.shared.backlog.borrow()
    }

    /// Wait until everything accepted so far is applied.
    pub async fn settled(&self) {
        let mut rx = self.shared.backlog.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// On SQLite each stage (intake, applier) runs on a thread and runtime of its
/// own: a flood of requests, which keeps the server's workers busy, does not
/// also hold up applying them (measured: about 6 % more alerts applied per
/// second at batch 100), and the intake can write its journal file without an
/// `await` ([`JournalWriter`]). A stage stops with the runtime that started
/// it, as a task of that runtime would. On PostgreSQL they stay tasks of the
/// server's runtime: connections they opened would be driven by their runtime,
/// and wait whenever it is busy deciding a batch, also when a request handler
/// uses them later.
fn spawn_stage(backend: Backend, name: &str, stage: impl Future<Output = ()> + Send + 'static) {
    if backend != Backend::Sqlite {
        tokio::spawn(stage);
        return;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::warn!(error = %e, stage = name, "no runtime of its own for an ingest stage; it shares the server's");
            tokio::spawn(stage);
            return;
        }
    };
    // Dropped, and so resolving `stopped`, when the starting runtime shuts down.
    let (alive, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _alive = alive;
        std::future::pending::<()>().await
    });
    let spawned = std::thread::Builder::new().name(name.into()).spawn(move || {
        runtime.block_on(async {
            tokio::select! {
                _ = stage => {}
                _ = stopped => {}
            }
        })
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, stage = name, "could not start an ingest thread: until a restart, the intake refuses alerts or accepted alerts wait in the journal");
    }
}

/// Stage 1: journal whatever is queued in one statement, answer, hand on.
async fn run_intake(
    store: Store,
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Intake>,
    apply: mpsc::UnboundedSender<Job>,
) {
    // Other nodes tell a running writer from a stopped one by this lock.
    let _alive = match store.hold_writer_lock(&shared.writer).await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::error!(error = %e, "could not take the ingest writer lock; other nodes apply this node's journal only once it is 5 minutes old");
            None
        }
    };
    let mut journal = JournalWriter::open(&store);
    let mut next_seq = 1i64;
    let mut pruned = 0i64;
    let mut last_prune = std::time::Instant::now();
    let mut buf: Vec<Intake> = Vec::with_capacity(MAX_INTAKE);
    loop {
        // With rows written and not dropped yet, an idle intake wakes up to
        // drop them once applied rather than leave them until the next request.
        let received = if next_seq - 1 > pruned {
            tokio::time::timeout(PRUNE_EVERY, rx.recv_many(&mut buf, MAX_INTAKE)).await
        } else {
            Ok(rx.recv_many(&mut buf, MAX_INTAKE).await)
        };
        match received {
            Ok(0) => break,
            Ok(_) => accept_group(&store, &shared, &mut journal, &mut buf, &mut next_seq, &apply).await,
            Err(_idle) => {}
        }
        // Applied rows leave the journal now and then (not in the hot path).
        let applied = shared.applied.load(Ordering::Acquire);
        if applied > pruned && last_prune.elapsed() >= PRUNE_EVERY {
            match journal.prune(&store, &shared.writer, applied).await {
                Ok(()) => pruned = applied,
                Err(e) => tracing::warn!(error = %e, "ingest journal prune failed; retried later"),
            }
            last_prune = std::time::Instant::now();
        }
    }
}

/// How often applied rows are dropped from the journal, at most.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Most text in one journal row: the requests queued together go in rows of
/// at most this much (a request alone may be larger, up to the body limit).
/// PostgreSQL and SQLite refuse a value over 1 GB, and 1,024 queued requests
/// of up to 1 MiB each could make one.
const MAX_COMMIT_BYTES: usize = 16 << 20;

/// How many of the requests at the front (their texts' lengths) go in one
/// journal row: at least one, and at most [`MAX_COMMIT_BYTES`] unless alone.
fn commit_len(lens: impl Iterator<Item = usize>) -> usize {
    let mut total = 0;
    let mut n = 0;
    for len in lens {
        total += len;
        if n > 0 && total > MAX_COMMIT_BYTES {
            break;
        }
        n += 1;
    }
    n
}

/// Commit the queued requests to the journal (one row, or more when they are
/// very large), answer each, and hand the accepted ones to the applier;
/// `buf` is left empty (and keeps its capacity).
async fn accept_group(
    store: &Store,
    shared: &Shared,
    journal: &mut JournalWriter,
    buf: &mut Vec<Intake>,
    next_seq: &mut i64,
    apply: &mpsc::UnboundedSender<Job>,
) {
    while let Some(first) = buf.first() {
        // The requests of this row: usually all of them.
        let n = commit_len(buf.iter().map(|x| x.text.len()));
        let first_seq = *next_seq;
        let commit = Commit::new(first_seq, first.job.now, buf[..n].iter().map(|x| x.text.as_str()));
        let result = journal.append(store, &shared.writer, &commit).await;
        // Used up even if the write failed: a write whose commit went through
        // but whose answer was lost would otherwise make every later group
        // collide with its row. A gap in the sequence is harmless.
        *next_seq = commit.seq + 1;
        metrics::histogram!("klaxon_ingest_intake_requests").record(n as f64);
        match result {
            Ok(()) => {
                let alerts: usize = buf[..n].iter().map(|x| x.job.alerts.len()).sum();
                shared.add_backlog(alerts as isize);
                for (x, seq) in buf.drain(..n).zip(first_seq..) {
                    let mut job = x.job;
                    job.seq = seq;
                    let _ = x.accepted.send(Ok(()));
                    let _ = apply.send(job);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, requests = n, "ingest journal write failed; nothing of it was accepted");
                let msg = e.to_string();
                for x in buf.drain(..n) {
                    let _ = x
                        .accepted
                        .send(Err(StoreError::Conflict(format!("alerts not stored: {msg}"))));
                }
            }
        }
    }
}

/// Stage 2: apply accepted requests in journal order, after any leftovers.
async fn run_applier(
    store: Store,
    settings: Arc<IngestSettings>,
    clock: Arc<dyn Clock>,
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Job>,
) {
    let mut rules: Option<Rules> = None;
    // SQLite has one server: everything another start left is applied first.
    // On PostgreSQL, also every SWEEP_EVERY: the rows of nodes that stopped
    // (their writer lock is free), and of any node stuck for STUCK_AFTER.
    let mut sweep_at = std::time::Instant::now();
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    // SQLite: pipelined parts are written on a thread of their own (see
    // `writer_thread`); on PostgreSQL the server's runtime runs the write task.
    let writes = match store.backend {
        Backend::Sqlite => writer_thread().await,
        Backend::Postgres => None,
    };
    loop {
        if sweep_at <= std::time::Instant::now() {
            let stuck_before = clock.now() - STUCK_AFTER;
            store
                .apply_leftovers(&settings, &mut rules, &shared, stuck_before)
                .await;
            sweep_at = std::time::Instant::now() + SWEEP_EVERY;
        }
        let next = match store.backend {
            Backend::Postgres => tokio::time::timeout(SWEEP_EVERY, rx.recv()).await,
            Backend::Sqlite => Ok(rx.recv().await),
        };
        let job = match next {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(_) => continue,
        };
        let mut alerts = job.alerts.len();
        jobs.push(job);
        // Whatever is queued joins the batch. Then a small batch waits a moment
        // for more: each batch has a fixed cost (a transaction, a dozen
        // statements, a commit), which one-alert requests would otherwise pay
        // in batches of a few dozen.
        let mut linger_until = None;
        while jobs.len() < settings.batch_requests.max(1) && alerts < MAX_BATCH_ALERTS {
            let job = match rx.try_recv() {
                Ok(job) => job,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if alerts >= LINGER_BELOW || settings.apply_linger.is_zero() {
                        break;
                    }
                    let until =
                        *linger_until.get_or_insert_with(|| tokio::time::Instant::now() + settings.apply_linger);
                    match tokio::time::timeout_at(until, rx.recv()).await {
                        Ok(Some(job)) => job,
                        _ => break,
                    }
                }
            };
            alerts += job.alerts.len();
            jobs.push(job);
        }
        let mut batch = std::mem::take(&mut jobs);
        let mut last = None;
        // A big batch (the applier is behind) is followed by more in one
        // transaction, pipelined; a small one is applied on its own.
        if alerts >= settings.pipeline_min_alerts {
            let (taken, done) = store
                .apply_pipelined(&settings, &mut rules, &shared, batch, &mut rx, writes.as_ref())
                .await;
            alerts = taken.iter().map(|j| j.alerts.len()).sum();
            batch = match done {
                Ok(results) => {
                    last = answer(taken, results);
                    Vec::new()
                }
                Err(e) => {
                    batch_failed(&shared.failed_batches, &e, taken.len());
                    taken
                }
            };
        }
        if !batch.is_empty() {
            last = store
                .apply_with_retry(&settings, &mut rules, &shared.writer, batch, &shared.failed_batches)
                .await;
        }
        if let Some(last) = last {
            shared.applied.fetch_max(last, Ordering::AcqRel);
        }
        shared.add_backlog(-(alerts as isize));
        metrics::counter!("klaxon_ingest_applied_alerts_total").increment(alerts as u64);
    }
}

impl Shared {
    /// Count alerts into (+) or out of (-) the backlog, also as the
    /// `klaxon_ingest_backlog_alerts` gauge.
    fn add_backlog(&self, delta: isize) {
        self.backlog.send_modify(|n| {
            *n = n.saturating_add_signed(delta);
            metrics::gauge!("klaxon_ingest_backlog_alerts").set(*n as f64);
        });
    }
}

/// Routes and silences, cached by the writer: refreshed when this node
/// changes them, and at least every [`RULES_TTL`] for changes made by others.
pub(super) struct Rules {
    /// Alert keys allocated but not used yet, carried from batch to batch.
    alert_pks: Vec<i64>,
    next_alert_pk: Option<i64>,
    /// PostgreSQL: the applier's own write connection, kept between batches.
    conn: Option<sqlx::AnyConnection>,
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
        let (alert_pks, next_alert_pk, conn) = cache
            .take()
            .map(|r| (r.alert_pks, r.next_alert_pk, r.conn))
            .unwrap_or_default();
        *cache = Some(Rules {
            alert_pks,
            next_alert_pk,
            conn,
            generation,
            fetched: std::time::Instant::now(),
            routes: routes.clone(),
            silences: silences.clone(),
        });
        Ok((routes, silences))
    }

    /// Apply a batch of one writer's journal rows; on database trouble try
    /// again (the rows are safe in the journal), and should a batch keep
    /// failing, apply its requests one by one so that one bad request cannot
    /// hold up the rest. Returns the last sequence applied.
    async fn apply_with_retry(
        &self,
        settings: &IngestSettings,
        rules: &mut Option<Rules>,
        writer: &str,
        jobs: Vec<Job>,
        failures: &AtomicU64,
    ) -> Option<i64> {
        let last = jobs.iter().map(|j| j.seq).max();
        let mut pause = std::time::Duration::from_millis(50);
        for _attempt in 0..3 {
            match self.ingest_batch(settings, rules, writer, &jobs).await {
                Ok(results) => return answer(jobs, results),
                Err(e) => {
                    batch_failed(failures, &e, jobs.len());
                    tokio::time::sleep(pause).await;
                    pause *= 4;
                }
            }
        }
        for job in jobs {
            let outcome = loop {
                let mut outcome = None;
                for _attempt in 0..3 {
                    match self
                        .ingest_batch(settings, rules, writer, std::slice::from_ref(&job))
                        .await
                    {
                        Ok(mut r) => {
                            outcome = r.pop();
                            break;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, writer, seq = job.seq, "applying an accepted request failed");
                            tokio::time::sleep(pause).await;
                        }
                    }
                }
                if let Some(o) = outcome {
                    break o;
                }
                // It keeps failing alone. If the database takes writes, pass it
                // (it stays in the journal, and the log says which it is) so that
                // later alerts are not held up behind it; if the database is
                // away, keep trying: nothing accepted is dropped for an outage.
                match self.pass_journal_entry(writer, job.seq).await {
                    Ok(()) => {
                        metrics::counter!("klaxon_ingest_dead_total").increment(1);
                        tracing::error!(writer, seq = job.seq, "accepted request could not be applied; passed");
                        break Err(StoreError::Conflict(
                            "the alerts were accepted but could not be applied".into(),
                        ));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the database takes no writes; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    }
                }
            };
            reply(job.reply, outcome);
        }
        last
    }

    /// Mark a journal entry applied without applying it.
    async fn pass_journal_entry(&self, writer: &str, seq: i64) -> Result<(), StoreError> {
        let mut tx = self.write.begin().await?;
        self.applied_seq(&mut tx, writer).await?;
        self.set_applied_seq(&mut tx, writer, seq).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Apply journal rows no running writer will apply: all of other server
    /// starts' on SQLite; on PostgreSQL those of stopped nodes (and of any node
    /// whose rows wait since before `stuck_before`).
    async fn apply_leftovers(
        &self,
        settings: &IngestSettings,
        rules: &mut Option<Rules>,
        shared: &Shared,
        stuck_before: Timestamp,
    ) {
        let me = shared.writer.as_str();
        const CHUNK: i64 = 2_000;
        let mut integrations: HashMap<String, Option<IntegrationInfo>> = HashMap::new();
        loop {
            let rows = match self.journal_leftovers(me, stuck_before, CHUNK).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, "reading the ingest journal failed; retried later");
                    return;
                }
            };
            if rows.is_empty() {
                return;
            }
            let full = rows.len() as i64 >= CHUNK;
            tracing::info!(requests = rows.len(), "applying accepted alerts left in the journal");
            let mut by_writer: Vec<(String, Vec<Job>)> = Vec::new();
            for Leftover {
                writer,
                seq,
                integration_id,
                received_at,
                alerts,
            } in rows
            {
                if !alerts.is_empty() && !integrations.contains_key(&integration_id) {
                    let found = self.integration(&integration_id).await.ok().flatten();
                    integrations.insert(integration_id.clone(), found);
                }
                let (integration, alerts) = match integrations.get(&integration_id).cloned().flatten() {
                    Some(i) => (i, alerts),
                    // Nothing to apply (an empty request, or a row that could
                    // not be read): only its sequence number is passed.
                    None if alerts.is_empty() => (deleted_integration(&integration_id), alerts),
                    None => {
                        tracing::warn!(
                            writer,
                            seq,
                            integration_id,
                            "integration deleted; its journaled alerts are dropped"
                        );
                        (deleted_integration(&integration_id), Vec::new())
                    }
                };
                let job = Job {
                    integration,
                    alerts,
                    now: received_at,
                    seq,
                    reply: None,
                };
                match by_writer.last_mut() {
                    Some((w, jobs)) if *w == writer => jobs.push(job),
                    _ => by_writer.push((writer, vec![job])),
                }
            }
            for (writer, jobs) in by_writer {
                let mut jobs = jobs.into_iter().peekable();
                while jobs.peek().is_some() {
                    let part: Vec<Job> = jobs.by_ref().take(MAX_BATCH).collect();
                    self.apply_with_retry(settings, rules, &writer, part, &shared.failed_batches)
                        .await;
                }
                if let Err(e) = self.journal_prune_applied(&writer).await {
                    tracing::warn!(error = %e, writer, "ingest journal prune failed");
                }
            }
            if !full {
                return;
            }
        }
    }

    async fn ingest_batch(
        &self,
        settings: &IngestSettings,
        rules: &mut Option<Rules>,
        writer: &str,
        jobs: &[Job],
    ) -> Result<Vec<Outcomes>, StoreError> {
        let in_force = self
            .rules(settings, rules, jobs.iter().map(|j| j.now).max().unwrap_or_default())
            .await?;
        // PostgreSQL: the applier keeps a write connection of its own, as the
        // intake does a journal one (no pool round trips per batch); it is given
        // up when a batch fails, and the next batch takes a fresh one.
        let mut own = rules.as_mut().and_then(|r| r.conn.take());
        if self.backend == Backend::Postgres && own.is_none() {
            own = Some(self.write.acquire().await?.detach());
        }
        let done = self
            .ingest_batch_inner(settings, in_force, rules, own.as_mut(), writer, jobs)
            .await;
        if done.is_ok()
            && let Some(r) = rules.as_mut()
        {
            r.conn = own;
        }
        done
    }

    async fn ingest_batch_inner(
        &self,
        settings: &IngestSettings,
        (routes, silences): (Vec<Route>, Vec<Silence>),
        carry: &mut Option<Rules>,
        conn: Option<&mut sqlx::AnyConnection>,
        writer: &str,
        jobs: &[Job],
    ) -> Result<Vec<Outcomes>, StoreError> {
        let mut tx = match conn {
            Some(conn) => sqlx::Connection::begin(conn).await?,
            None => self.write.begin().await?,
        };
        let mut batch = new_batch(self.backend, settings, routes, silences, carry);
        let t0 = std::time::Instant::now();
        batch.preload(&mut tx, jobs).await?;
        let t_preload = t0.elapsed();
        let mut results = Vec::with_capacity(jobs.len());
        // Rows another node applied already (after this node stalled) are not applied twice.
        let applied = self.applied_seq(&mut tx, writer).await?;
        decide(&mut batch, &mut Some(&mut tx), jobs, applied, &mut results).await?;
        give_back_keys(&mut batch, carry);
        let t_decide = t0.elapsed();
        let timers_changed = batch.flush(&mut tx).await?;
        if let Some(last) = jobs.iter().map(|j| j.seq).max() {
            self.set_applied_seq(&mut tx, writer, last).await?;
        }
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

    /// Apply `first` and then, in the same transaction, further
    /// parts of whatever requests are queued (up to [`MAX_PARTS`]), deciding
    /// each part while the one before is written.
    ///
    /// On one connection everything runs in order, so a part's state is read
    /// before the part before is written; the batch's own state, newer, wins
    /// over it ([`Batch::merge`]). The transaction holds every row it read
    /// locked until it commits (on SQLite, the file's write lock), so nobody
    /// else changes them in between. A request that needs the database while
    /// it is busy (a new incident's number, say) is decided once the write is
    /// done.
    ///
    /// The write tasks run on `writes_on` if given (SQLite: see
    /// [`writer_thread`]), else on the current runtime.
    ///
    /// Returns every request taken, and their outcomes once committed. Should
    /// the transaction fail, that is every request to apply again: those of a
    /// part taken while the one before was written too.
    async fn apply_pipelined(
        &self,
        settings: &IngestSettings,
        rules: &mut Option<Rules>,
        shared: &Shared,
        first: Vec<Job>,
        queue: &mut mpsc::UnboundedReceiver<Job>,
        writes_on: Option<&tokio::runtime::Handle>,
    ) -> (Vec<Job>, Result<Vec<Outcomes>, StoreError>) {
        let mut jobs = first;
        let done = self
            .apply_parts(settings, rules, shared, &mut jobs, queue, writes_on)
            .await;
        (jobs, done)
    }

    async fn apply_parts(
        &self,
        settings: &IngestSettings,
        rules: &mut Option<Rules>,
        shared: &Shared,
        jobs: &mut Vec<Job>,
        queue: &mut mpsc::UnboundedReceiver<Job>,
        writes_on: Option<&tokio::runtime::Handle>,
    ) -> Result<Vec<Outcomes>, StoreError> {
        let writer = shared.writer.as_str();
        let now = jobs.iter().map(|j| j.now).max().unwrap_or_default();
        let (routes, silences) = self.rules(settings, rules, now).await?;
        let mut tx = self.write.begin().await?;
        let mut batch = new_batch(self.backend, settings, routes, silences, rules);
        batch.preload(&mut tx, jobs).await?;
        let applied = self.applied_seq(&mut tx, writer).await?;
        let mut results = Vec::with_capacity(jobs.len());
        decide(&mut batch, &mut Some(&mut tx), jobs, applied, &mut results).await?;
        let mut timers_changed = false;
        let mut parts = 1;
        let big = |jobs: &[Job]| jobs.iter().map(|j| j.alerts.len()).sum::<usize>() >= settings.pipeline_min_alerts;
        // Requests taken from the queue go into `jobs` at once: should the
        // transaction fail, the caller retries every one of them (a part taken
        // and not yet decided included), and none is lost from memory.
        let mut part_start = 0;
        loop {
            // Everything taken so far is decided, and the transaction is at hand.
            let mut start = jobs.len();
            if parts < MAX_PARTS && big(&jobs[part_start..]) {
                jobs.extend(take_queued(queue, settings.batch_requests.max(1)));
            }
            if jobs.len() == start {
                timers_changed |= batch.take_writes(None).write(&mut tx).await?;
                break;
            }
            let t = std::time::Instant::now();
            let mut writes = batch.take_writes(Some(&alert_keys(&jobs[start..]))).prepare()?;
            phase("part_prepare", t);
            // Each turn: read the next part's state (`jobs[start..]`) and write the
            // part before on the transaction's connection, in a task of its own;
            // meanwhile decide the next part (as far as it goes without the
            // database), take the part after it and build its statements.
            loop {
                parts += 1;
                shared.pipelined_parts.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("klaxon_ingest_pipelined_parts_total").increment(1);
                let part = &jobs[start..];
                let mut keys = batch::keys(&batch.routes, &settings.default_route, part);
                let alerts = part.iter().map(|j| j.alerts.len()).sum::<usize>();
                keys.new_alert_keys = alerts.saturating_sub(batch.alert_pks.len()) as i64;
                let known: Set<i64> = batch.incidents.keys().copied().collect();
                let backend = self.backend;
                let (loaded_tx, loaded_rx) = oneshot::channel();
                let write = async move {
                    let t = std::time::Instant::now();
                    match batch::load(&mut tx, backend, &keys, &known).await {
                        Ok(loaded) => {
                            let _ = loaded_tx.send(loaded);
                            phase("part_load", t);
                            let t = std::time::Instant::now();
                            let written = writes.write(&mut tx).await;
                            phase("part_write", t);
                            (tx, written)
                        }
                        Err(e) => (tx, Err(e)),
                    }
                };
                let task = match writes_on {
                    Some(rt) => rt.spawn(write),
                    None => tokio::spawn(write),
                };
                part_start = start;
                let t = std::time::Instant::now();
                let decided = match loaded_rx.await {
                    Ok(loaded) => {
                        batch.merge(loaded);
                        decide_offline(&mut batch, &jobs[start..], applied, &mut results)?
                    }
                    Err(_) => 0,
                };
                phase("part_decide", t);
                let mut following = None;
                if start + decided == jobs.len() && parts < MAX_PARTS && big(&jobs[start..]) {
                    let t = std::time::Instant::now();
                    let after = jobs.len();
                    jobs.extend(take_queued(queue, settings.batch_requests.max(1)));
                    if jobs.len() > after {
                        let prepared = batch.take_writes(Some(&alert_keys(&jobs[after..]))).prepare()?;
                        following = Some((prepared, after));
                    }
                    phase("part_prepare", t);
                }
                let t = std::time::Instant::now();
                let (back, written) = task
                    .await
                    .map_err(|e| StoreError::Conflict(format!("the ingest writer task failed: {e}")))?;
                phase("part_wait_write", t);
                tx = back;
                timers_changed |= written?;
                match following {
                    Some((prepared, after)) => {
                        writes = prepared;
                        start = after;
                    }
                    None => {
                        decide(
                            &mut batch,
                            &mut Some(&mut tx),
                            &jobs[start + decided..],
                            applied,
                            &mut results,
                        )
                        .await?;
                        break;
                    }
                }
            }
        }
        give_back_keys(&mut batch, rules);
        if let Some(last) = jobs.iter().map(|j| j.seq).max() {
            self.set_applied_seq(&mut tx, writer, last).await?;
        }
        tx.commit().await?;
        if timers_changed {
            self.wake_engine();
        }
        Ok(results)
    }
}

/// A thread with a runtime of its own for the pipelined writes of the SQLite
/// applier, whose own runtime runs one task at a time: there, a write task
/// would only move on while the applier waits, not while it decides, and only
/// a part's first statement ran alongside the next part's deciding. It stops
/// with the applier's runtime. `None`: no thread to be had; the applier's
/// runtime runs the writes then.
///
/// Measured (batch 100, 32 connections, 3 interleaved pairs of 15 s runs,
/// release build): alerts/s accepted and applied 23.9k, 28.2k, 26.0k against
/// 21.2k, 23.8k, 27.6k without pipelining on SQLite; the machine 24–26 % idle
/// against 30–31 %. With the applier's runtime on one worker thread instead
/// (`block_in_place` while deciding) it was no better.
async fn writer_thread() -> Option<tokio::runtime::Handle> {
    let (started, handle) = oneshot::channel();
    // A stage that only lends its runtime; it stops with the applier's runtime.
    spawn_stage(Backend::Sqlite, "klaxon-writer", async move {
        let _ = started.send(tokio::runtime::Handle::current());
        std::future::pending::<()>().await
    });
    handle.await.ok()
}

fn phase(name: &'static str, since: std::time::Instant) {
    metrics::histogram!("klaxon_ingest_batch_phase_seconds", "phase" => name).record(since.elapsed().as_secs_f64());
}

/// Most parts one transaction of [`Store::apply_pipelined`] takes: it holds
/// the rows it reads locked until it commits (an API change to one of its
/// incidents waits for it), and answers outcomes then. Measured at batch 100,
/// 2 interleaved pairs, against 8: p99 latency 662 -> 365 ms, alerts/s accepted
/// 1 % and applied 4 % lower.
const MAX_PARTS: usize = 4;

/// The alerts `jobs` are about.
fn alert_keys(jobs: &[Job]) -> Set<batch::AlertKey> {
    jobs.iter()
        .flat_map(|j| j.alerts.iter().map(|a| (j.integration.id.clone(), a.dedup_key.clone())))
        .collect()
}

/// The requests queued now, up to `max_requests` and about [`MAX_BATCH_ALERTS`] alerts.
fn take_queued(queue: &mut mpsc::UnboundedReceiver<Job>, max_requests: usize) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut alerts = 0;
    while jobs.len() < max_requests && alerts < MAX_BATCH_ALERTS {
        match queue.try_recv() {
            Ok(job) => {
                alerts += job.alerts.len();
                jobs.push(job);
            }
            Err(_) => break,
        }
    }
    jobs
}

/// An empty batch, with the alert keys allocated and not used yet.
fn new_batch<'s>(
    backend: Backend,
    settings: &'s IngestSettings,
    routes: Vec<Route>,
    silences: Vec<Silence>,
    carry: &mut Option<Rules>,
) -> Batch<'s> {
    let (alert_pks, next_alert_pk) = carry
        .as_mut()
        .map(|r| (std::mem::take(&mut r.alert_pks), r.next_alert_pk.take()))
        .unwrap_or_default();
    Batch {
        backend,
        settings,
        reuse_window_ms: reuse_window_ms(settings, &routes),
        routes: std::sync::Arc::new(routes),
        silences,
        alerts: Map::default(),
        displaced: Vec::new(),
        links: Map::default(),
        new_links: Vec::new(),
        groups: Map::default(),
        dirty_groups: Set::default(),
        incidents: Map::default(),
        firing_base: Map::default(),
        firing_delta: Map::default(),
        counters: Map::default(),
        alert_pks,
        incident_pks: Vec::new(),
        next_alert_pk,
        next_incident_pk: None,
        undo: Vec::new(),
        touched_alerts: Set::default(),
        touched_links: Set::default(),
        touched_groups: Set::default(),
        touched_incidents: Set::default(),
        touched_deltas: Set::default(),
        touched_counters: Set::default(),
    }
}

/// Keep the alert keys the batch allocated and did not use for the next one.
fn give_back_keys(batch: &mut Batch<'_>, carry: &mut Option<Rules>) {
    if let Some(r) = carry.as_mut() {
        // Only this writer inserts alerts, so its next key stays valid.
        r.alert_pks = std::mem::take(&mut batch.alert_pks);
        r.next_alert_pk = batch.next_alert_pk;
    }
}

/// [`decide`] without the transaction: up to the first request that needs it.
///
/// It runs without a wait (nothing to wait for without the database), as long
/// as a batch takes to decide: on a multi-thread runtime the worker hands its
/// other tasks to another thread meanwhile. Otherwise the task writing the part
/// before, woken on this worker, would wait for it, and the two would not overlap
/// (measured: a 5,000-alert part written in 92 rather than 77 ms).
fn decide_offline(
    batch: &mut Batch<'_>,
    jobs: &[Job],
    applied: i64,
    results: &mut Vec<Outcomes>,
) -> Result<usize, StoreError> {
    use futures::FutureExt as _;
    let mut run = || decide(batch, &mut None, jobs, applied, results).now_or_never();
    let done = match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(run),
        _ => run(),
    };
    done.unwrap_or_else(|| Err(StoreError::Conflict("deciding without the database waited".into())))
}

/// Decide `jobs` in order, each all or nothing, into `results`. Returns how
/// many were decided: all, or, without the transaction (`db` is `None`), those
/// before the first that needs it.
async fn decide(
    batch: &mut Batch<'_>,
    db: &mut batch::Db<'_, '_>,
    jobs: &[Job],
    applied: i64,
    results: &mut Vec<Outcomes>,
) -> Result<usize, StoreError> {
    for (i, job) in jobs.iter().enumerate() {
        if job.seq <= applied {
            results.push(Err(StoreError::Conflict("applied already by another node".into())));
            continue;
        }
        batch.begin_request();
        let mut out = Vec::with_capacity(job.alerts.len());
        let mut failed = None;
        for a in &job.alerts {
            match batch.process(db, &job.integration, a, job.now).await {
                Ok(o) => out.push(o),
                Err(e @ StoreError::Domain(_)) => {
                    failed = Some(e);
                    break;
                }
                Err(StoreError::Deferred) => {
                    batch.rollback_request();
                    return Ok(i);
                }
                // Database trouble: the whole batch fails and is retried.
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
    Ok(jobs.len())
}

/// Answer each request of an applied batch with its outcome; returns the last
/// sequence applied.
fn answer(jobs: Vec<Job>, results: Vec<Outcomes>) -> Option<i64> {
    let last = jobs.iter().map(|j| j.seq).max();
    metrics::histogram!("klaxon_ingest_batch_requests").record(jobs.len() as f64);
    for (job, r) in jobs.into_iter().zip(results) {
        reply(job.reply, r);
    }
    last
}

/// Count and log a batch whose transaction failed (it is retried).
fn batch_failed(failures: &AtomicU64, e: &StoreError, requests: usize) {
    failures.fetch_add(1, Ordering::Relaxed);
    metrics::counter!("klaxon_ingest_batch_failures_total").increment(1);
    tracing::error!(error = %e, requests, "applying accepted alerts failed; retrying");
}

fn reply(to: Option<oneshot::Sender<Outcomes>>, outcome: Outcomes) {
    if let Err(e) = &outcome {
        metrics::counter!("klaxon_ingest_rejected_total").increment(1);
        if to.is_none() {
            tracing::warn!(error = %e, "accepted alerts were refused when applied");
        }
    }
    if let Some(to) = to {
        let _ = to.send(outcome);
    }
}

/// Stands in for an integration deleted while its alerts waited in the journal.
fn deleted_integration(id: &str) -> IntegrationInfo {
    IntegrationInfo {
        id: id.to_string(),
        name: format!("deleted integration {id}"),
        format: klaxon_domain::wire::IntegrationFormat::Generic,
        key_prefix: String::new(),
        created_at: Timestamp::UNIX_EPOCH,
        rotated_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;

    // Requests queued together beyond MAX_COMMIT_BYTES go in several rows,
    // each answered, in sequence, and all readable back.
    #[tokio::test]
    async fn queued_requests_over_max_commit_bytes_are_written_as_several_rows_in_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("k.db").display());
        let store = Store::connect(&StoreOptions::new(url)).await.unwrap();
        let shared = Shared {
            writer: "w-1".into(),
            backlog: watch::Sender::new(0),
            applied: AtomicI64::new(0),
            failed_batches: AtomicU64::new(0),
            held: AtomicUsize::new(0),
            pipelined_parts: AtomicU64::new(0),
        };
        let mut journal = JournalWriter::open(&store);
        let (apply, mut jobs) = mpsc::unbounded_channel();
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        // Three of 7 MiB and a small one: rows [7, 7] and [7, small].
        let mut answers = Vec::new();
        let mut buf: Vec<Intake> = [7usize << 20, 7 << 20, 7 << 20, 10]
            .iter()
            .enumerate()
            .map(|(i, len)| {
                let mut alert = journal::tests::alert(&format!("big-{i}"));
                alert.summary = "x".repeat(*len);
                let text = journal::request_text("int-1", now, std::slice::from_ref(&alert)).unwrap();
                let (accepted, answer) = oneshot::channel();
                answers.push(answer);
                Intake {
                    job: Job {
                        integration: deleted_integration("int-1"),
                        alerts: vec![alert],
                        now,
                        seq: 0,
                        reply: None,
                    },
                    text,
                    accepted,
                }
            })
            .collect();
        let mut next_seq = 1;
        accept_group(&store, &shared, &mut journal, &mut buf, &mut next_seq, &apply).await;

        assert!(buf.is_empty());
        assert_eq!(next_seq, 5);
        for answer in answers {
            answer.await.unwrap().unwrap();
        }
        let mut seqs = Vec::new();
        while let Ok(job) = jobs.try_recv() {
            seqs.push(job.seq);
        }
        assert_eq!(seqs, [1, 2, 3, 4], "handed on in sequence");
        assert_eq!(*shared.backlog.borrow(), 4);
        assert_eq!(store.ingest_journal_len().await.unwrap(), 2, "two rows");
        let left = store.journal_leftovers("w-me", now, 100).await.unwrap();
        let read: Vec<(i64, &str)> = left.iter().map(|r| (r.seq, r.alerts[0].dedup_key.as_str())).collect();
        assert_eq!(read, [(1, "big-0"), (2, "big-1"), (3, "big-2"), (4, "big-3")]);
    }

    #[test]
    fn queued_requests_go_in_rows_of_at_most_max_commit_bytes_each_row_at_least_one() {
        const MIB: usize = 1 << 20;
        assert_eq!(commit_len([10, 20, 30].into_iter()), 3, "small ones all in one row");
        assert_eq!(commit_len(std::iter::empty()), 0);
        // Sixteen 1 MiB requests fill a row; the seventeenth starts the next.
        assert_eq!(commit_len(std::iter::repeat_n(MIB, 20)), 16);
        assert_eq!(commit_len([MAX_COMMIT_BYTES, 1].into_iter()), 1);
        // A request larger than a row goes alone.
        assert_eq!(commit_len([MAX_COMMIT_BYTES + 1, 1].into_iter()), 1);
        assert_eq!(commit_len([1, MAX_COMMIT_BYTES].into_iter()), 1);
    }
}
