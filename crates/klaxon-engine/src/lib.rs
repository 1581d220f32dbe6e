//! The engine: fires durable timers (escalation steps) and delivers the
//! notification outbox.
//!
//! Two loops run on every `klaxon serve` node. Each claims due rows with a
//! lease, so several nodes on one PostgreSQL share the work and a node that
//! dies mid-step leaves its rows to the others once the lease runs out.
//! Time comes from a [`Clock`]; tests drive [`Engine::tick`] with a manual clock.

pub mod channels;
pub mod comms;
pub mod escalate;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use jiff::Timestamp;
use klaxon_domain::Clock;
use klaxon_domain::Status;
use klaxon_domain::engine::retry_backoff;
use klaxon_store::{CADENCE, COMMS, ClaimedNotification, ClaimedTimer, Delivery, ESCALATION, RULE, Store, StoreError};
use rand::Rng;
use tokio::sync::{Semaphore, watch};

pub use channels::{
    Channel, ChannelDeps, Channels, ChannelsConfig, SendError, Webhook, verify_webhook_signature, webhook_signature,
};

/// Timer kind that only measures lateness (`klaxon bench timers`).
pub const BENCH: &str = "bench";

#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// How long a claim is exclusive; a node that dies holds its rows this long.
    pub lease: Duration,
    /// Longest sleep between looks at the database (other nodes' rows, expired leases).
    pub poll_interval: Duration,
    /// Delivery attempts before a notification is dead.
    pub max_attempts: u32,
    /// Deliveries in flight at once.
    pub max_in_flight: usize,
    /// Base URL of this Klaxon, for links in notifications.
    pub public_url: Option<String>,
    /// Paging rules and the update reminder lead.
    pub catalog: Arc<klaxon_domain::config::Catalog>,
    /// Base URL of the public status page, for subscribers' links.
    pub status_page_url: Option<String>,
    /// Message templates in force.
    pub templates: Arc<klaxon_domain::templates::Templates>,
    /// Fault injection for the failover test: after claiming an escalation
    /// timer at this step, never finish (the node is then killed).
    pub stall_at_step: Option<u32>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            max_attempts: 12,
            max_in_flight: 64,
            public_url: None,
            stall_at_step: None,
            catalog: Arc::default(),
            templates: Arc::default(),
            status_page_url: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("lateness histogram: {0}")]
    Histogram(String),
}

pub struct Engine {
    store: Store,
    clock: Arc<dyn Clock>,
    node: String,
    settings: EngineSettings,
    channels: Channels,
    /// Fire time − due time of every timer fired, in milliseconds.
    lateness: Mutex<Histogram<u64>>,
    in_flight: Arc<Semaphore>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("node", &self.node)
            .field("channels", &self.channels)
            .finish()
    }
}

impl Engine {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        node: String,
        settings: EngineSettings,
        channels: Channels,
    ) -> Result<Self, EngineError> {
        let in_flight = Arc::new(Semaphore::new(settings.max_in_flight.max(1)));
        let lateness =
            Histogram::new_with_bounds(1, 86_400_000, 3).map_err(|e| EngineError::Histogram(e.to_string()))?;
        Ok(Self {
            store,
            clock,
            node,
            settings,
            channels,
            lateness: Mutex::new(lateness),
            in_flight,
        })
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Lateness of the timers fired so far: `(count, p50 ms, p99 ms, max ms)`.
    pub fn lateness(&self) -> (u64, u64, u64, u64) {
        let h = self.lateness.lock().unwrap_or_else(|e| e.into_inner());
        (h.len(), h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max())
    }

    pub fn reset_lateness(&self) {
        self.lateness.lock().unwrap_or_else(|e| e.into_inner()).reset();
    }

    fn record_lateness(&self, t: &ClaimedTimer, now: Timestamp) {
        let late = (now.as_millisecond() - t.due_at.as_millisecond()).max(0) as u64;
        metrics::histogram!("klaxon_timer_lateness_seconds").record(late as f64 / 1000.0);
        let mut h = self.lateness.lock().unwrap_or_else(|e| e.into_inner());
        let _ = h.record(late.max(1));
    }

    /// Fire the timers due now. Returns how many were claimed.
    pub async fn run_timers_once(&self) -> Result<usize, EngineError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_timers(&self.node, now, self.settings.lease, 256)
            .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        if let Some(step) = self.settings.stall_at_step
            && claimed.iter().any(|t| t.kind == ESCALATION && t.step == step)
        {
            tracing::warn!(step, "fault injection: claimed an escalation step, stalling");
            std::future::pending::<()>().await;
        }
        let mut plain = Vec::new();
        for t in &claimed {
            self.record_lateness(t, self.clock.now());
            match t.kind.as_str() {
                ESCALATION | RULE | CADENCE | COMMS => {
                    if let Err(e) = self.fire(t).await {
                        tracing::error!(timer = %t.key, error = %e, "timer step failed; it is retried");
                        let _ = self.store.release_timer(t).await;
                    }
                }
                _ => plain.push(t.clone()),
            }
        }
        if !plain.is_empty() {
            self.store.complete_timers(&plain).await?;
        }
        metrics::counter!("klaxon_timers_fired_total").increment(claimed.len() as u64);
        Ok(claimed.len())
    }

    async fn fire(&self, t: &ClaimedTimer) -> Result<(), EngineError> {
        let now = self.clock.now();
        let Some(inc) = (match t.incident_pk {
            Some(pk) => self.store.incident_by_pk(pk).await?,
            None => None,
        }) else {
            self.store.complete_timers(std::slice::from_ref(t)).await?;
            return Ok(());
        };
        let env = escalate::Fire {
            public_url: self.settings.public_url.as_deref(),
            templates: &self.settings.templates,
            status_page_url: self.settings.status_page_url.as_deref(),
        };
        let cat = &self.settings.catalog;
        let out = match t.kind.as_str() {
            COMMS => comms::plan_comms(&self.store, t, &inc, &cat.communication, &env, now).await?,
            RULE => escalate::plan_rule(&self.store, t, &inc, &cat.paging_rules, &env, now).await?,
            CADENCE => escalate::plan_cadence(&self.store, t, &inc, cat.update_reminder, &env, now).await?,
            _ => escalate::plan(&self.store, t, &inc, &env, now).await?,
        };
        let paged = out.notifications.len();
        if self.store.complete_step(t, &inc, out, "klaxon", now).await? {
            tracing::info!(incident = %inc.id, timer = %t.key, step = t.step, notifications = paged, "timer fired");
        } else {
            // The incident changed under us (acknowledged, escalated): look again at once.
            self.store.release_timer(t).await?;
        }
        Ok(())
    }

    /// Start deliveries of the notifications due now (up to the in-flight
    /// limit); their outcomes are recorded together in one transaction once
    /// the batch is done. Returns how many were claimed; `wait` waits for the
    /// batch to be recorded.
    pub async fn deliver_once(self: &Arc<Self>, wait: bool) -> Result<usize, EngineError> {
        let free = self.in_flight.available_permits();
        if free == 0 {
            return Ok(0);
        }
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_notifications(&self.node, now, self.settings.lease, free.min(256) as u32)
            .await?;
        let n = claimed.len();
        if n == 0 {
            return Ok(0);
        }
        let Ok(permits) = self.in_flight.clone().acquire_many_owned(n as u32).await else {
            return Ok(0);
        };
        let me = self.clone();
        let batch = tokio::spawn(async move {
            let outcomes = futures::future::join_all(claimed.into_iter().map(|c| me.attempt(c))).await;
            match me.store.finish_notifications(outcomes, "klaxon", me.clock.now()).await {
                Ok(lost) if lost > 0 => tracing::warn!(lost, "leases lost before outcomes were recorded"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "recording deliveries failed; they are retried after the lease"),
            }
            drop(permits);
        });
        if wait {
            let _ = batch.await;
        }
        Ok(n)
    }

    /// One delivery attempt; its outcome and how long the channel took.
    async fn attempt(&self, c: ClaimedNotification) -> (ClaimedNotification, Delivery, Option<u64>) {
        let now = self.clock.now();
        let mut took = None;
        let page = c.n.purpose == "page";
        let outcome = if page
            && (c.incident_status >= Status::Resolved || (c.cancel_on_ack && c.incident_status != Status::Triggered))
        {
            Delivery::Cancelled
        } else {
            match self.channels.get(&c.n.channel) {
                None => Delivery::Dead {
                    error: format!("no {} channel is configured on this Klaxon", c.n.channel),
                },
                Some(ch) => {
                    let started = std::time::Instant::now();
                    let res = ch.send(&c.n, now.as_second()).await;
                    let elapsed = started.elapsed();
                    took = Some(elapsed.as_millis() as u64);
                    metrics::histogram!("klaxon_notification_send_seconds", "channel" => c.n.channel.clone())
                        .record(elapsed.as_secs_f64());
                    match res {
                        Ok(()) => Delivery::Delivered,
                        Err(e) if e.permanent || c.n.attempts >= self.settings.max_attempts => {
                            Delivery::Dead { error: e.message }
                        }
                        Err(e) => {
                            let jitter: f64 = rand::rng().random();
                            let wait = retry_backoff(c.n.attempts, jitter).max(e.retry_after.unwrap_or_default());
                            let at = now
                                .checked_add(jiff::SignedDuration::try_from(wait).unwrap_or_default())
                                .unwrap_or(now);
                            Delivery::Retry { at, error: e.message }
                        }
                    }
                }
            }
        };
        let label = match &outcome {
            Delivery::Delivered => "delivered",
            Delivery::Retry { .. } => "retry",
            Delivery::Dead { .. } => "dead",
            Delivery::Cancelled => "cancelled",
        };
        metrics::counter!("klaxon_notifications_total", "channel" => c.n.channel.clone(), "outcome" => label)
            .increment(1);
        (c, outcome, took)
    }

    /// Run everything that is due now to completion: timers, then the
    /// deliveries they queue, until nothing is left. For tests with a manual clock.
    pub async fn tick(self: &Arc<Self>) -> Result<(), EngineError> {
        loop {
            let t = self.run_timers_once().await?;
            let d = self.deliver_once(true).await?;
            if t == 0 && d == 0 {
                return Ok(());
            }
        }
    }

    /// How long to sleep: until the earliest due row, at most the poll interval.
    async fn idle_for(&self, next: Result<Option<Timestamp>, StoreError>) -> Duration {
        let poll = self.settings.poll_interval;
        match next {
            Ok(Some(due)) => {
                let ms = due.as_millisecond() - self.clock.now().as_millisecond();
                Duration::from_millis(ms.clamp(0, poll.as_millis() as i64) as u64)
            }
            Ok(None) => poll,
            Err(e) => {
                tracing::warn!(error = %e, "engine: reading the next due time failed");
                poll
            }
        }
    }

    /// The timer loop and the delivery loop, until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let timers = {
            let me = self.clone();
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    // Look on the read side first: claiming takes the writer
                    // (SQLite's only write connection) even when nothing is due.
                    let next = me.store.next_timer_due().await;
                    let wait = me.idle_for(next).await;
                    if wait.is_zero() {
                        match me.run_timers_once().await {
                            Ok(n) if n > 0 => continue,
                            Ok(_) => {}
                            Err(e) => tracing::error!(error = %e, "engine: firing timers failed"),
                        }
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(wait.max(Duration::from_millis(1))) => {}
                        _ = me.store.timers_woken() => {}
                        _ = stop.changed() => return,
                    }
                }
            })
        };
        let me = self.clone();
        let mut stop = shutdown;
        loop {
            let next = me.store.next_notification_due().await;
            let wait = me.idle_for(next).await;
            if wait.is_zero() && me.in_flight.available_permits() > 0 {
                match me.deliver_once(false).await {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "engine: claiming notifications failed"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(wait.max(Duration::from_millis(5))) => {}
                _ = me.store.outbox_woken() => {}
                _ = stop.changed() => break,
            }
        }
        let _ = timers.await;
    }
}
