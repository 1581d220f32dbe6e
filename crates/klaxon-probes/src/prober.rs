//! The prober: runs every configured check at its interval (at most
//! `max_in_flight` at once), stores each result with the check's new state,
//! and on a change to down or back to up submits an alert through the
//! [`Ingestor`] — the same path as Alertmanager's alerts, so routing,
//! grouping, dedup, silences and incidents apply. Folds old results into
//! rollups every [`COMPACT_EVERY`].
//!
//! Times of results and states come from the injected clock; `tokio::time`
//! only paces the loop.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use klaxon_domain::Clock;
use klaxon_domain::alert::{AlertAction, AlertInput};
use klaxon_domain::wire::{IntegrationFormat, IntegrationInfo};
use klaxon_store::{Ingestor, ProbeRecord, ProbeState, Store, StoreError};
use serde::Serialize;
use tokio::sync::{Mutex, Semaphore, watch};

use crate::spec::CheckSpec;
use crate::state::{Transition, next};
use crate::{Outcome, run_probe};

/// The integration the checks' alerts come from.
pub const INTEGRATION: &str = "checks";
/// How often raw results are folded into rollups.
pub const COMPACT_EVERY: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum ProberError {
    #[error("no check named {0:?}")]
    UnknownCheck(String),
    #[error("check {check}: {source}")]
    Store {
        check: String,
        #[source]
        source: StoreError,
    },
}

/// One run: the stored result, the state after it and what the alert did.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub kind: String,
    #[serde(flatten)]
    pub result: ProbeRecord,
    /// `up`, `down` or `unknown` after this run.
    pub state: String,
    /// `down` or `up` when this run changed the state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transition: Option<String>,
    /// Incidents the alert opened or joined.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub incidents: Vec<String>,
    /// Why the alert could not be submitted (the change is retried next run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_error: Option<String>,
}

/// Runs the checks of this node.
#[derive(Debug)]
pub struct Prober {
    store: Store,
    clock: Arc<dyn Clock>,
    ingestor: Ingestor,
    integration: IntegrationInfo,
    checks: Vec<CheckSpec>,
    /// One run at a time per check, so state changes are never interleaved.
    locks: HashMap<String, Mutex<()>>,
    slots: Arc<Semaphore>,
}

impl Prober {
    /// Declare the checks in the store and make sure their integration exists.
    pub async fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        ingestor: Ingestor,
        checks: Vec<CheckSpec>,
        max_in_flight: usize,
    ) -> Result<Arc<Prober>, StoreError> {
        let integration = match store.integration(INTEGRATION).await? {
            Some(i) => i,
            None => {
                let key = klaxon_store::new_integration_key();
                match store
                    .create_integration(INTEGRATION, IntegrationFormat::Generic, &key, clock.now())
                    .await
                {
                    Ok(i) => i,
                    // Another node created it meanwhile.
                    Err(StoreError::Conflict(_)) => store
                        .integration(INTEGRATION)
                        .await?
                        .ok_or_else(|| StoreError::Conflict("the checks integration vanished".into()))?,
                    Err(e) => return Err(e),
                }
            }
        };
        for c in &checks {
            store
                .sync_probe(&c.name, c.kind.as_str(), c.component.as_deref(), c.service.as_deref())
                .await?;
        }
        Ok(Arc::new(Prober {
            store,
            clock,
            ingestor,
            integration,
            locks: checks.iter().map(|c| (c.name.clone(), Mutex::new(()))).collect(),
            checks,
            slots: Arc::new(Semaphore::new(max_in_flight.max(1))),
        }))
    }

    pub fn checks(&self) -> &[CheckSpec] {
        &self.checks
    }

    pub fn check(&self, name: &str) -> Option<&CheckSpec> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// Run one check now: probe, store the result and state, raise or
    /// resolve the alert on a change.
    pub async fn run_check(&self, name: &str) -> Result<RunReport, ProberError> {
        let spec = self
            .check(name)
            .ok_or_else(|| ProberError::UnknownCheck(name.to_string()))?;
        let store_err = |source| ProberError::Store {
            check: name.to_string(),
            source,
        };
        let _permit = self.slots.acquire().await.ok();
        let result = run_probe(spec, self.clock.now()).await;
        let _one = match self.locks.get(name) {
            Some(l) => Some(l.lock().await),
            None => None,
        };
        let at = self.clock.now();
        let prev = match self.store.probe_state(name).await.map_err(store_err)? {
            Some(p) => p,
            None => {
                self.store
                    .sync_probe(
                        name,
                        spec.kind.as_str(),
                        spec.component.as_deref(),
                        spec.service.as_deref(),
                    )
                    .await
                    .map_err(store_err)?;
                self.store
                    .probe_state(name)
                    .await
                    .map_err(store_err)?
                    .ok_or_else(|| store_err(StoreError::NotFoundOf("check", name.to_string())))?
            }
        };
        let (mut update, change) = next(spec, &prev, result.outcome, at);
        let record = ProbeRecord {
            check: name.to_string(),
            at,
            outcome: result.outcome.as_str().to_string(),
            latency_ms: result.latency_ms,
            message: result.message.clone(),
        };
        let mut incidents = Vec::new();
        let mut alert_error = None;
        if let Some(t) = change {
            match self.submit(spec, &prev, &update, &record, t).await {
                Ok(i) => incidents = i,
                Err(e) => {
                    tracing::error!(check = name, error = %e, "check alert not submitted; retried on the next run");
                    alert_error = Some(e.to_string());
                    // Keep the old state so the next run makes the change again.
                    update.state = prev.state.clone();
                    update.changed_at = prev.changed_at;
                }
            }
        }
        self.store.record_probe(&record, &update).await.map_err(store_err)?;
        record_metrics(spec, result.outcome, result.latency_ms);
        Ok(RunReport {
            kind: spec.kind.as_str().to_string(),
            result: record,
            transition: change.filter(|_| alert_error.is_none()).map(|t| match t {
                Transition::Down => "down".to_string(),
                Transition::Up => "up".to_string(),
            }),
            state: update.state,
            incidents,
            alert_error,
        })
    }

    /// The alert of a change: `check:<name>` firing on down, resolved on up.
    async fn submit(
        &self,
        spec: &CheckSpec,
        prev: &ProbeState,
        update: &klaxon_store::StateUpdate,
        rec: &ProbeRecord,
        t: Transition,
    ) -> Result<Vec<String>, StoreError> {
        let mut labels: BTreeMap<String, String> = spec.labels.clone();
        labels.insert("alertname".into(), format!("check {}", spec.name));
        labels.insert("check".into(), spec.name.clone());
        labels.insert("check_kind".into(), spec.kind.as_str().into());
        labels.insert("severity".into(), spec.severity.clone());
        if let Some(s) = &spec.service {
            labels.insert("service".into(), s.clone());
        }
        if let Some(c) = &spec.component {
            labels.insert("component".into(), c.clone());
        }
        let mut annotations = BTreeMap::new();
        annotations.insert("description".into(), rec.message.clone());
        if let Some(d) = &spec.description {
            annotations.insert("check_description".into(), d.clone());
        }
        let target = crate::redact(&spec.target());
        let (action, summary, starts_at, ends_at) = match t {
            Transition::Down => (
                AlertAction::Trigger,
                format!("Check {} is down: {}", spec.name, rec.message),
                update.failing_since.or(Some(rec.at)),
                None,
            ),
            Transition::Up => (
                AlertAction::Resolve,
                format!("Check {} is up again: {}", spec.name, rec.message),
                prev.changed_at,
                Some(rec.at),
            ),
        };
        let alert = AlertInput {
            action,
            dedup_key: format!("check:{}", spec.name),
            summary,
            severity: Some(spec.severity.clone()),
            source: Some(target),
            labels,
            annotations,
            starts_at,
            ends_at,
            links: vec![],
            group_key: None,
            details: serde_json::json!({
                "check": spec.name,
                "kind": spec.kind.as_str(),
                "outcome": rec.outcome,
                "latency_ms": rec.latency_ms,
                "message": rec.message,
                "failures": update.failures,
            }),
        };
        let out = self
            .ingestor
            .submit(self.integration.clone(), vec![alert], rec.at)
            .await?;
        Ok(out.into_iter().flat_map(|o| o.incidents).collect())
    }

    /// Run every check at its interval and compact results, until `stop`.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, spec) in self.checks.iter().enumerate() {
            let me = self.clone();
            let name = spec.name.clone();
            let every = spec.interval;
            // Spread the first runs over the first interval.
            let offset = every.mul_f64((i as f64) / (self.checks.len().max(1) as f64));
            tasks.spawn(async move {
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    if let Err(e) = me.run_check(&name).await {
                        tracing::warn!(check = %name, error = %e, "check run failed");
                    }
                }
            });
        }
        let me = self.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(COMPACT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match me.store.compact_probes(me.clock.now()).await {
                    Ok(c) if c.rolled + c.deleted_raw + c.deleted_rollups > 0 => {
                        tracing::debug!(?c, "check results compacted")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "compacting check results failed"),
                }
            }
        });
        let _ = stop.wait_for(|s| *s).await;
        tasks.shutdown().await;
    }
}

/// `klaxon_check_runs_total{check, outcome}` and `klaxon_check_latency_seconds{check}`.
fn record_metrics(spec: &CheckSpec, outcome: Outcome, latency_ms: i64) {
    metrics::counter!("klaxon_check_runs_total", "check" => spec.name.clone(), "outcome" => outcome.as_str())
        .increment(1);
    metrics::histogram!("klaxon_check_latency_seconds", "check" => spec.name.clone())
        .record(latency_ms as f64 / 1000.0);
    tracing::debug!(check = %spec.name, outcome = outcome.as_str(), latency_ms, "check run");
}
