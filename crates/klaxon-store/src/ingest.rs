//! Alert ingestion: dedup, silences, routing, grouping into incidents,
//! auto-resolve and flapping — and the group-commit writer that lets many
//! concurrent requests share one transaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use klaxon_domain::alert::{AlertAction, AlertInput, AutoResolveAction, FlapPolicy, Route, Silence, matching_routes};
use klaxon_domain::config::{Catalog, is_slug};
use klaxon_domain::decide::{self, Command};
use klaxon_domain::incident::limits;
use klaxon_domain::wire::{AlertOutcome, DeclareIncident, IntegrationInfo};
use klaxon_domain::{EventKind, Status};
use sqlx::{Acquire, Any, AssertSqlSafe, Row, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::incidents::{Target, append_tx, command_tx, declare_tx, lock_incident};
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

struct Ctx<'a> {
    backend: Backend,
    settings: &'a IngestSettings,
    routes: Vec<Route>,
    silences: Vec<Silence>,
    now: Timestamp,
}

struct Latest {
    pk: i64,
    status: String,
    suppressed_by: Option<String>,
    flapping: bool,
    changes: Vec<i64>,
    receive_count: i64,
    ends_at: Option<i64>,
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn outcome(a: &AlertInput, pk: Option<i64>, result: &str, incidents: Vec<String>) -> AlertOutcome {
    AlertOutcome {
        dedup_key: a.dedup_key.clone(),
        alert_id: pk,
        result: result.into(),
        incidents,
    }
}

async fn latest(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    integration: &str,
    key: &str,
) -> Result<Option<Latest>, StoreError> {
    let lock = if backend == Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT pk, status, suppressed_by, flapping, changes, receive_count, ends_at FROM alerts \
         WHERE integration_id = $1 AND dedup_key = $2 ORDER BY pk DESC LIMIT 1{lock}"
    )))
    .bind(integration.to_string())
    .bind(key.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let changes: String = r.try_get("changes")?;
    Ok(Some(Latest {
        pk: r.try_get("pk")?,
        status: r.try_get("status")?,
        suppressed_by: r.try_get("suppressed_by")?,
        flapping: r.try_get::<i64, _>("flapping")? != 0,
        changes: serde_json::from_str(&changes).unwrap_or_default(),
        receive_count: r.try_get("receive_count")?,
        ends_at: r.try_get("ends_at")?,
    }))
}

/// Incidents an alert belongs to: (incident pk, route name).
async fn linked(tx: &mut Transaction<'_, Any>, alert_pk: i64) -> Result<Vec<(i64, String)>, StoreError> {
    let rows = sqlx::query("SELECT incident_pk, route FROM incident_alerts WHERE alert_pk = $1 ORDER BY incident_pk")
        .bind(alert_pk)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("incident_pk")?, r.try_get("route")?)))
        .collect()
}

async fn append_one(
    tx: &mut Transaction<'_, Any>,
    ctx: &Ctx<'_>,
    incident_pk: i64,
    kinds: Vec<EventKind>,
    actor: &str,
) -> Result<String, StoreError> {
    let (pk, head, inc) = lock_incident(tx, ctx.backend, Target::Pk(incident_pk))
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("#{incident_pk}")))?;
    let (inc, _) = append_tx(tx, pk, head, inc, kinds, actor, ctx.now).await?;
    Ok(inc.id)
}

fn actor(integ: &IntegrationInfo) -> String {
    format!("integration:{}", integ.name)
}

fn route_named<'a>(ctx: &'a Ctx<'_>, name: &str) -> &'a Route {
    ctx.routes
        .iter()
        .find(|r| r.name == name)
        .unwrap_or(&ctx.settings.default_route)
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

/// Join the alert to the incident of each matching route's group, opening or
/// reopening incidents as needed.
async fn attach(
    tx: &mut Transaction<'_, Any>,
    ctx: &Ctx<'_>,
    integ: &IntegrationInfo,
    alert_pk: i64,
    a: &AlertInput,
    refired: bool,
) -> Result<Vec<String>, StoreError> {
    let cat = &ctx.settings.catalog;
    let who = actor(integ);
    let mut ids = Vec::new();
    let routes: Vec<Route> = matching_routes(&ctx.routes, &ctx.settings.default_route, &a.labels)
        .into_iter()
        .cloned()
        .collect();
    for route in routes {
        let gk = route.group_key(a);
        if ctx.backend == Backend::Postgres {
            // Serialise the creation of a group's incident across nodes.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(gk.clone())
                .execute(&mut **tx)
                .await?;
        }
        let existing: Option<i64> = sqlx::query_scalar("SELECT incident_pk FROM alert_groups WHERE group_key = $1")
            .bind(gk.clone())
            .fetch_optional(&mut **tx)
            .await?;
        let mut target = None;
        if let Some(ipk) = existing
            && let Some((pk, _head, inc)) = lock_incident(tx, ctx.backend, Target::Pk(ipk)).await?
        {
            if inc.status.is_open() {
                target = Some(pk);
            } else if let (Some(resolved), Some(window)) = (inc.resolved_at, route.reopen_window)
                && ctx.now.as_millisecond() - resolved.as_millisecond() <= window.as_millis() as i64
            {
                let reason = format!("alert {} ({}) fired again", a.dedup_key, a.summary);
                command_tx(
                    tx,
                    ctx.backend,
                    Target::Pk(pk),
                    Command::Reopen {
                        to: None,
                        reason: Some(reason),
                    },
                    &who,
                    ctx.now,
                    cat,
                )
                .await?;
                target = Some(pk);
            }
        }
        let incident_pk = match target {
            Some(pk) => pk,
            None => {
                let req = declaration(a, &route, cat, ctx.now);
                let draft = decide::validate_declaration(&req, &who, ctx.now, cat).or_else(|_| {
                    decide::validate_declaration(
                        &DeclareIncident {
                            services: vec![],
                            labels: BTreeMap::new(),
                            category: None,
                            ..req.clone()
                        },
                        &who,
                        ctx.now,
                        cat,
                    )
                })?;
                let (_, pk, _) = declare_tx(tx, draft, &who, ctx.now, cat).await?;
                sqlx::query(
                    "INSERT INTO alert_groups (group_key, incident_pk, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (group_key) DO UPDATE SET incident_pk = excluded.incident_pk, updated_at = excluded.updated_at",
                )
                .bind(gk.clone())
                .bind(pk)
                .bind(ctx.now.as_millisecond())
                .execute(&mut **tx)
                .await?;
                pk
            }
        };
        sqlx::query("INSERT INTO incident_alerts (incident_pk, alert_pk, route) VALUES ($1, $2, $3) ON CONFLICT (incident_pk, alert_pk) DO NOTHING")
            .bind(incident_pk)
            .bind(alert_pk)
            .bind(route.name.clone())
            .execute(&mut **tx)
            .await?;
        let fired = EventKind::AlertFired {
            alert_id: alert_pk,
            integration: integ.name.clone(),
            dedup_key: a.dedup_key.clone(),
            summary: a.summary.chars().take(limits::SHORT_TEXT_MAX).collect(),
            severity: a.severity.clone().or_else(|| a.labels.get("severity").cloned()),
            labels: a.labels.clone(),
            refired,
        };
        ids.push(append_one(tx, ctx, incident_pk, vec![fired], &who).await?);
    }
    Ok(ids)
}

/// Flapping bookkeeping for one state change: (changes, flapping now, event to record).
fn flap(ctx: &Ctx<'_>, prev: &Latest) -> (Vec<i64>, bool, Option<bool>) {
    let policy = ctx.settings.flap;
    let was = prev.flapping && !policy.stable(&prev.changes, ctx.now);
    let (changes, over) = policy.record(prev.changes.clone(), ctx.now);
    let now_flapping = was || over;
    let event = match (prev.flapping, now_flapping) {
        (false, true) => Some(true),
        (true, false) => Some(false),
        _ => None,
    };
    (changes, now_flapping, event)
}

async fn record_flap(
    tx: &mut Transaction<'_, Any>,
    ctx: &Ctx<'_>,
    integ: &IntegrationInfo,
    alert_pk: i64,
    key: &str,
    flapping: bool,
) -> Result<(), StoreError> {
    for (ipk, _) in linked(tx, alert_pk).await? {
        let ev = EventKind::AlertFlapping {
            alert_id: alert_pk,
            dedup_key: key.to_string(),
            flapping,
        };
        append_one(tx, ctx, ipk, vec![ev], &actor(integ)).await?;
    }
    Ok(())
}

async fn insert_alert(
    tx: &mut Transaction<'_, Any>,
    ctx: &Ctx<'_>,
    integ: &IntegrationInfo,
    a: &AlertInput,
    suppressed_by: Option<String>,
) -> Result<i64, StoreError> {
    let now = ctx.now.as_millisecond();
    let starts = a.starts_at.map(|t| t.as_millisecond()).unwrap_or(now);
    Ok(sqlx::query_scalar(
        "INSERT INTO alerts (integration_id, dedup_key, status, suppressed_by, changes, summary, severity, source, labels, annotations, links, details, \
         starts_at, last_seen_at, receive_count, created_at, updated_at) \
         VALUES ($1, $2, 'firing', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, $13, $13) RETURNING pk",
    )
    .bind(integ.id.clone())
    .bind(a.dedup_key.clone())
    .bind(suppressed_by)
    .bind(json(&vec![now])?)
    .bind(a.summary.clone())
    .bind(a.severity.clone())
    .bind(a.source.clone())
    .bind(json(&a.labels)?)
    .bind(json(&a.annotations)?)
    .bind(json(&a.links)?)
    .bind(json(&a.details)?)
    .bind(starts)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?)
}

async fn ingest_alert(
    tx: &mut Transaction<'_, Any>,
    ctx: &Ctx<'_>,
    integ: &IntegrationInfo,
    a: &AlertInput,
) -> Result<AlertOutcome, StoreError> {
    let now = ctx.now.as_millisecond();
    let prev = latest(tx, ctx.backend, &integ.id, &a.dedup_key).await?;
    let silence = ctx
        .silences
        .iter()
        .find(|s| s.silences(&a.labels, ctx.now))
        .map(|s| s.id.clone());
    match a.action {
        AlertAction::Trigger => match prev {
            Some(p) if p.status == "firing" => {
                // A repeat: count it, never page again.
                let unsuppress = p.suppressed_by.is_some() && silence.is_none();
                sqlx::query(
                    "UPDATE alerts SET last_seen_at = $1, receive_count = receive_count + 1, summary = $2, labels = $3, annotations = $4, \
                     suppressed_by = $5, updated_at = $1 WHERE pk = $6",
                )
                .bind(now)
                .bind(a.summary.clone())
                .bind(json(&a.labels)?)
                .bind(json(&a.annotations)?)
                .bind(if unsuppress { None } else { p.suppressed_by.clone() })
                .bind(p.pk)
                .execute(&mut **tx)
                .await?;
                if unsuppress {
                    // Its silence ended while it kept firing: now it counts.
                    let ids = attach(tx, ctx, integ, p.pk, a, false).await?;
                    return Ok(outcome(a, Some(p.pk), "created", ids));
                }
                if p.suppressed_by.is_some() {
                    return Ok(outcome(a, Some(p.pk), "suppressed", vec![]));
                }
                if p.flapping && !ctx.settings.flap.stable(&p.changes, ctx.now) {
                    return Ok(outcome(a, Some(p.pk), "flapping", vec![]));
                }
                let count = (p.receive_count + 1) as u64;
                let mut ids = Vec::new();
                for (ipk, _) in linked(tx, p.pk).await? {
                    let ev = EventKind::AlertRepeated {
                        alert_id: p.pk,
                        dedup_key: a.dedup_key.clone(),
                        count,
                    };
                    ids.push(append_one(tx, ctx, ipk, vec![ev], &actor(integ)).await?);
                }
                Ok(outcome(a, Some(p.pk), "repeated", ids))
            }
            Some(p)
                if p.status == "resolved"
                    && p.ends_at.is_some_and(|e| now - e <= reuse_window_ms(ctx))
                    && !linked(tx, p.pk).await?.is_empty() =>
            {
                // Fired again soon after resolving: same alert, flapping check, maybe reopen.
                let (changes, flapping, flap_event) = flap(ctx, &p);
                sqlx::query(
                    "UPDATE alerts SET status = 'firing', ends_at = NULL, acknowledged = 0, changes = $1, flapping = $2, suppressed_by = $3, \
                     last_seen_at = $4, receive_count = receive_count + 1, summary = $5, labels = $6, annotations = $7, updated_at = $4 WHERE pk = $8",
                )
                .bind(json(&changes)?)
                .bind(flapping as i64)
                .bind(silence.clone())
                .bind(now)
                .bind(a.summary.clone())
                .bind(json(&a.labels)?)
                .bind(json(&a.annotations)?)
                .bind(p.pk)
                .execute(&mut **tx)
                .await?;
                if let Some(f) = flap_event {
                    record_flap(tx, ctx, integ, p.pk, &a.dedup_key, f).await?;
                }
                if silence.is_some() {
                    return Ok(outcome(a, Some(p.pk), "suppressed", vec![]));
                }
                if flapping {
                    return Ok(outcome(a, Some(p.pk), "flapping", vec![]));
                }
                let ids = attach(tx, ctx, integ, p.pk, a, true).await?;
                Ok(outcome(a, Some(p.pk), "refired", ids))
            }
            _ => {
                let pk = insert_alert(tx, ctx, integ, a, silence.clone()).await?;
                if silence.is_some() {
                    return Ok(outcome(a, Some(pk), "suppressed", vec![]));
                }
                let ids = attach(tx, ctx, integ, pk, a, false).await?;
                Ok(outcome(a, Some(pk), "created", ids))
            }
        },
        AlertAction::Resolve => {
            let Some(p) = prev.filter(|p| p.status == "firing") else {
                return Ok(outcome(a, None, "ignored", vec![]));
            };
            let (changes, flapping, flap_event) = flap(ctx, &p);
            let ends = a
                .ends_at
                .filter(|t| t.as_millisecond() <= now)
                .map(|t| t.as_millisecond())
                .unwrap_or(now);
            sqlx::query("UPDATE alerts SET status = 'resolved', ends_at = $1, changes = $2, flapping = $3, last_seen_at = $4, updated_at = $4 WHERE pk = $5")
                .bind(ends)
                .bind(json(&changes)?)
                .bind(flapping as i64)
                .bind(now)
                .bind(p.pk)
                .execute(&mut **tx)
                .await?;
            if let Some(f) = flap_event {
                record_flap(tx, ctx, integ, p.pk, &a.dedup_key, f).await?;
            }
            if p.suppressed_by.is_some() || flapping {
                return Ok(outcome(
                    a,
                    Some(p.pk),
                    if flapping { "flapping" } else { "resolved" },
                    vec![],
                ));
            }
            let mut ids = Vec::new();
            for (ipk, route_name) in linked(tx, p.pk).await? {
                let who = actor(integ);
                let mut kinds = vec![EventKind::AlertResolved {
                    alert_id: p.pk,
                    dedup_key: a.dedup_key.clone(),
                }];
                let firing: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM incident_alerts ia JOIN alerts al ON al.pk = ia.alert_pk WHERE ia.incident_pk = $1 AND al.status = 'firing'",
                )
                .bind(ipk)
                .fetch_one(&mut **tx)
                .await?;
                let (pk, head, inc) = lock_incident(tx, ctx.backend, Target::Pk(ipk))
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("#{ipk}")))?;
                if firing == 0 && inc.status.is_open() {
                    match route_named(ctx, &route_name).auto_resolve {
                        AutoResolveAction::Resolve => kinds.push(EventKind::StatusChanged {
                            from: inc.status,
                            to: Status::Resolved,
                            message: Some("All alerts resolved".into()),
                            next_update_due: None,
                        }),
                        AutoResolveAction::Monitoring if inc.status < Status::Monitoring => {
                            kinds.push(EventKind::StatusChanged {
                                from: inc.status,
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
                let (inc, _) = append_tx(tx, pk, head, inc, kinds, &who, ctx.now).await?;
                ids.push(inc.id);
            }
            Ok(outcome(a, Some(p.pk), "resolved", ids))
        }
        AlertAction::Acknowledge => {
            let Some(p) = prev.filter(|p| p.status == "firing") else {
                return Ok(outcome(a, None, "ignored", vec![]));
            };
            sqlx::query("UPDATE alerts SET acknowledged = 1, last_seen_at = $1, updated_at = $1 WHERE pk = $2")
                .bind(now)
                .bind(p.pk)
                .execute(&mut **tx)
                .await?;
            let mut ids = Vec::new();
            for (ipk, _) in linked(tx, p.pk).await? {
                match command_tx(
                    tx,
                    ctx.backend,
                    Target::Pk(ipk),
                    Command::Ack {
                        message: Some(format!("acknowledged by {}", integ.name)),
                    },
                    &actor(integ),
                    ctx.now,
                    &ctx.settings.catalog,
                )
                .await
                {
                    Ok((inc, _)) => ids.push(inc.id),
                    // A resolved incident cannot be acknowledged; the alert ack still counts.
                    Err(StoreError::Domain(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(outcome(a, Some(p.pk), "acknowledged", ids))
        }
    }
}

/// A resolved alert that fires again within this window is the same alert
/// (flapping is counted on it and its incident may reopen); later, it is a new one.
fn reuse_window_ms(ctx: &Ctx<'_>) -> i64 {
    let flap = ctx.settings.flap.window.map(|w| w.as_millis() as i64).unwrap_or(0);
    let reopen = ctx
        .routes
        .iter()
        .chain(std::iter::once(&ctx.settings.default_route))
        .filter_map(|r| r.reopen_window.map(|w| w.as_millis() as i64))
        .max()
        .unwrap_or(0);
    flap.max(reopen)
}

/// One request: all its alerts or none.
async fn ingest_request(
    tx: &mut Transaction<'_, Any>,
    ctx: &Ctx<'_>,
    integ: &IntegrationInfo,
    alerts: &[AlertInput],
) -> Result<Vec<AlertOutcome>, StoreError> {
    let mut out = Vec::with_capacity(alerts.len());
    for a in alerts {
        out.push(ingest_alert(tx, ctx, integ, a).await?);
    }
    Ok(out)
}

type Reply = oneshot::Sender<Result<Vec<AlertOutcome>, StoreError>>;

struct Job {
    integration: IntegrationInfo,
    alerts: Vec<AlertInput>,
    now: Timestamp,
    reply: Reply,
}

/// The group-commit writer: concurrent requests are queued, and whatever is
/// queued when the writer is free is committed in one transaction (each
/// request isolated by a savepoint). A request is answered only after commit.
#[derive(Clone, Debug)]
pub struct Ingestor {
    queue: mpsc::Sender<Job>,
}

/// Most requests committed together.
const MAX_BATCH: usize = 256;

impl Ingestor {
    pub fn start(store: Store, settings: Arc<IngestSettings>) -> Ingestor {
        let (queue, mut rx) = mpsc::channel::<Job>(4096);
        tokio::spawn(async move {
            let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
                store.ingest_batch(&settings, std::mem::take(&mut jobs)).await;
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

impl Store {
    async fn ingest_batch(&self, settings: &IngestSettings, jobs: Vec<Job>) {
        let result = self.ingest_batch_inner(settings, &jobs).await;
        match result {
            Ok(results) => {
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
        jobs: &[Job],
    ) -> Result<Vec<Result<Vec<AlertOutcome>, StoreError>>, StoreError> {
        let now = jobs.iter().map(|j| j.now).max().unwrap_or_default();
        let mut routes = settings.routes.clone();
        routes.extend(self.api_routes().await?);
        let silences = self.silences(now, false).await?;
        let mut tx = self.write.begin().await?;
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            let ctx = Ctx {
                backend: self.backend,
                settings,
                routes: routes.clone(),
                silences: silences.clone(),
                now: job.now,
            };
            let mut sp = tx.begin().await?;
            match ingest_request(&mut sp, &ctx, &job.integration, &job.alerts).await {
                Ok(out) => {
                    sp.commit().await?;
                    results.push(Ok(out));
                }
                Err(e) => {
                    sp.rollback().await?;
                    results.push(Err(e));
                }
            }
        }
        tx.commit().await?;
        Ok(results)
    }
}
