//! The public status page (`/status`, `/status/incidents/{id}`,
//! `/status/history`, `/status/feed.atom`) and Statuspage-compatible JSON
//! (`/api/v2/*.json`).
//!
//! Rendered once per change into memory and served from there with an
//! `ETag`: a flood of readers never reaches the database. A background task
//! looks at a cheap fingerprint of the incidents and silences every second
//! (so changes made by other nodes show too) and rebuilds every minute for
//! what time alone changes (maintenance starting, "next update").

mod render;
mod subscribe;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use klaxon_domain::Clock;
use klaxon_domain::config::Catalog;
use klaxon_domain::status_page::{ComponentOverride, ComponentStatus, PageInput, StatusPageConfig, build};
use klaxon_store::Store;
use sha2::Digest;

use render::{Clockface, HistoryPage, IncidentPage, IndexPage, PageView, groups, incident_view};

/// One rendered resource.
#[derive(Debug, Clone)]
struct Resource {
    body: Bytes,
    content_type: &'static str,
    etag: HeaderValue,
}

impl Resource {
    fn new(body: impl Into<Bytes>, content_type: &'static str) -> Self {
        let body = body.into();
        let tag = format!("\"{}\"", hex::encode(&sha2::Sha256::digest(&body)[..12]));
        Self {
            etag: HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"0\"")),
            body,
            content_type,
        }
    }
}

/// Every resource of the page, by path.
#[derive(Debug, Default)]
struct Snapshot {
    resources: HashMap<String, Resource>,
}

/// What the subscription handlers need; set when the page starts.
struct Deps {
    store: Store,
    clock: Arc<dyn Clock>,
    /// The email channel, for confirmation messages.
    mailer: std::sync::OnceLock<Arc<dyn klaxon_engine::Channel>>,
}

/// The status page of this server.
pub struct StatusPage {
    cfg: StatusPageConfig,
    current: ArcSwap<Snapshot>,
    /// One rebuild at a time: of two overlapping ones, the one that read the
    /// store first could otherwise publish last and leave the page stale.
    rebuilding: tokio::sync::Mutex<()>,
    deps: std::sync::OnceLock<Deps>,
    /// Subscriptions per client address (1/s, bursts of 5).
    limiter: crate::limits::KeyedLimiter,
}

impl std::fmt::Debug for StatusPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusPage").field("name", &self.cfg.name).finish()
    }
}

impl Default for StatusPage {
    fn default() -> Self {
        Self::new(StatusPageConfig::default())
    }
}

const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";

impl StatusPage {
    pub fn new(cfg: StatusPageConfig) -> Self {
        Self {
            cfg,
            current: ArcSwap::from_pointee(Snapshot::default()),
            rebuilding: tokio::sync::Mutex::new(()),
            deps: std::sync::OnceLock::new(),
            limiter: crate::limits::KeyedLimiter::new(1, 5),
        }
    }

    /// The page's public base URL (`status_page.url`), without a trailing slash.
    pub fn base_url(&self) -> String {
        self.cfg
            .url
            .as_deref()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string()
    }

    /// Send subscription confirmations through this email channel.
    pub fn set_mailer(&self, mailer: Arc<dyn klaxon_engine::Channel>) {
        if let Some(d) = self.deps.get() {
            let _ = d.mailer.set(mailer);
        }
    }

    /// Rebuild everything from the store now.
    pub async fn refresh(&self, store: &Store, catalog: &Catalog, now: Timestamp) -> Result<(), String> {
        let _one_at_a_time = self.rebuilding.lock().await;
        let cfg = &self.cfg;
        let since = now
            .checked_sub(jiff::SignedDuration::from_hours(24 * i64::from(cfg.history_days)))
            .unwrap_or(now);
        let incidents = store
            .status_page_incidents(since)
            .await
            .map_err(|e| format!("reading incidents: {e}"))?;
        let maintenances: Vec<_> = store
            .silences(now, false)
            .await
            .map_err(|e| format!("reading maintenances: {e}"))?
            .into_iter()
            .filter(|s| s.kind == "maintenance")
            .collect();
        let overrides: Vec<ComponentOverride> = store
            .documents(klaxon_store::Collection::ComponentOverrides)
            .await
            .map_err(|e| format!("reading component overrides: {e}"))?;
        // Health checks: a check that is down takes its component to a major
        // outage, a degraded result to degraded performance.
        let probes: Vec<(String, ComponentStatus)> = store
            .probe_states()
            .await
            .map_err(|e| format!("reading check states: {e}"))?
            .into_iter()
            .filter_map(|p| {
                let status = match (p.state.as_str(), p.last.as_ref().map(|l| l.outcome.as_str())) {
                    ("down", _) => ComponentStatus::MajorOutage,
                    (_, Some("degraded")) => ComponentStatus::DegradedPerformance,
                    _ => return None,
                };
                p.component.map(|c| (c, status))
            })
            .collect();
        let days = cfg.history_days.min(90);
        let probe_days = store
            .component_uptime(days, now)
            .await
            .map_err(|e| format!("reading check uptime: {e}"))?;
        let updated_at = incidents
            .iter()
            .filter(|p| p.is_public())
            .map(|p| p.incident.updated_at)
            .max()
            .unwrap_or(now);
        let (summary, history) = build(&PageInput {
            cfg,
            catalog,
            incidents: &incidents,
            maintenances: &maintenances,
            overrides: &overrides,
            probes: &probes,
            now,
            updated_at,
        });
        let clock = Clockface::new(cfg);
        let page = PageView {
            name: cfg.name.clone(),
            base: summary.page.url.trim_end_matches('/').to_string(),
            brand_color: cfg.brand_color.clone(),
            logo_url: cfg.logo_url.clone(),
            footer_links: cfg.footer_links.clone(),
            updated: clock.show(now),
            time_zone: cfg.time_zone.clone(),
        };
        let mut r: HashMap<String, Resource> = HashMap::new();
        let json = |v: serde_json::Value| Resource::new(v.to_string(), JSON);
        let page_json = serde_json::to_value(&summary.page).unwrap_or_default();
        let status_json = serde_json::to_value(&summary.status).unwrap_or_default();
        let upcoming: Vec<_> = summary
            .scheduled_maintenances
            .iter()
            .filter(|m| m.status == "scheduled")
            .collect();
        let active: Vec<_> = summary
            .scheduled_maintenances
            .iter()
            .filter(|m| m.status == "in_progress")
            .collect();
        r.insert(
            "/api/v2/summary.json".into(),
            Resource::new(serde_json::to_string(&summary).unwrap_or_default(), JSON),
        );
        r.insert(
            "/api/v2/status.json".into(),
            json(serde_json::json!({"page": page_json, "status": status_json})),
        );
        r.insert(
            "/api/v2/components.json".into(),
            json(serde_json::json!({"page": page_json, "components": summary.components})),
        );
        r.insert(
            "/api/v2/incidents.json".into(),
            json(serde_json::json!({"page": page_json, "incidents": history})),
        );
        r.insert(
            "/api/v2/incidents/unresolved.json".into(),
            json(serde_json::json!({"page": page_json, "incidents": summary.incidents})),
        );
        r.insert(
            "/api/v2/scheduled-maintenances.json".into(),
            json(serde_json::json!({"page": page_json, "scheduled_maintenances": summary.scheduled_maintenances})),
        );
        r.insert(
            "/api/v2/scheduled-maintenances/upcoming.json".into(),
            json(serde_json::json!({"page": page_json, "scheduled_maintenances": upcoming})),
        );
        r.insert(
            "/api/v2/scheduled-maintenances/active.json".into(),
            json(serde_json::json!({"page": page_json, "scheduled_maintenances": active})),
        );
        let index = IndexPage {
            page: &page,
            status_indicator: summary.status.indicator.clone(),
            status_description: summary.status.description.clone(),
            maintenances: summary
                .scheduled_maintenances
                .iter()
                .map(|m| incident_view(m, &clock))
                .collect(),
            incidents: summary.incidents.iter().map(|i| incident_view(i, &clock)).collect(),
            groups: groups(&summary, &history, &probe_days, days, now, &clock),
            days,
        }
        .render()
        .map_err(|e| format!("rendering /status: {e}"))?;
        r.insert("/status".into(), Resource::new(index, HTML));
        let hist = HistoryPage {
            page: &page,
            incidents: history.iter().map(|i| incident_view(i, &clock)).collect(),
            days: cfg.history_days,
        }
        .render()
        .map_err(|e| format!("rendering /status/history: {e}"))?;
        r.insert("/status/history".into(), Resource::new(hist, HTML));
        for i in &history {
            let html = IncidentPage {
                page: &page,
                inc: incident_view(i, &clock),
            }
            .render()
            .map_err(|e| format!("rendering incident {}: {e}", i.id))?;
            r.insert(format!("/status/incidents/{}", i.id), Resource::new(html, HTML));
        }
        r.insert(
            "/status/feed.atom".into(),
            Resource::new(render::atom(&page, &history, now), "application/atom+xml"),
        );
        self.current.store(Arc::new(Snapshot { resources: r }));
        metrics::counter!("klaxon_status_page_renders_total").increment(1);
        Ok(())
    }

    /// Keep the page current until the process ends.
    pub fn start(self: &Arc<Self>, store: Store, clock: Arc<dyn Clock>, catalog: Arc<Catalog>) {
        let _ = self.deps.set(Deps {
            store: store.clone(),
            clock: clock.clone(),
            mailer: std::sync::OnceLock::new(),
        });
        let me = self.clone();
        tokio::spawn(async move {
            let mut last = None;
            let mut built_at: Option<Timestamp> = None;
            loop {
                let now = clock.now();
                let stale = built_at.is_none_or(|b| (now - b).get_seconds().abs() >= 60);
                match store.status_page_fingerprint().await {
                    Ok(fp) if Some(fp) != last || stale => match me.refresh(&store, &catalog, now).await {
                        Ok(()) => {
                            last = Some(fp);
                            built_at = Some(now);
                        }
                        Err(e) => tracing::warn!(error = %e, "status page: rebuilding failed"),
                    },
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "status page: reading the fingerprint failed"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    pub fn config(&self) -> &StatusPageConfig {
        &self.cfg
    }

    /// The current summary as JSON (what `/api/v2/summary.json` serves).
    pub fn summary_json(&self) -> Option<Bytes> {
        self.get("/api/v2/summary.json").map(|r| r.body)
    }

    fn get(&self, path: &str) -> Option<Resource> {
        let path = path.trim_end_matches('/');
        let path = match path {
            "" | "/status/index.html" => "/status",
            "/history.atom" | "/status/history.atom" => "/status/feed.atom",
            p => p,
        };
        self.current.load().resources.get(path).cloned()
    }
}

/// `GET` of any status page path: from memory, `304` when the `ETag` matches.
pub async fn serve(State(page): State<Arc<StatusPage>>, uri: Uri, headers: HeaderMap) -> Response {
    let Some(res) = page.get(uri.path()) else {
        let building = page.current.load().resources.is_empty();
        let (code, text) = if building {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The status page is starting; try again in a moment.",
            )
        } else {
            (StatusCode::NOT_FOUND, "No such page.")
        };
        return (code, [(header::CACHE_CONTROL, "no-store")], text).into_response();
    };
    let cache = HeaderValue::from_static("public, max-age=5, stale-while-revalidate=30");
    if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == res.etag) {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, res.etag), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(res.content_type)),
            (header::ETAG, res.etag),
            (header::CACHE_CONTROL, cache),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
        ],
        res.body,
    )
        .into_response()
}

/// The page alone, for its own listener (`status_page.listen`): `/` leads to `/status`.
pub fn public_routes(page: Arc<StatusPage>) -> axum::Router {
    routes(page).route(
        "/",
        axum::routing::get(|| async { axum::response::Redirect::permanent("/status") }),
    )
}

/// The status page's routes (no tracing or metrics layers: they are the hot path).
pub fn routes(page: Arc<StatusPage>) -> axum::Router {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/status/subscribe", post(subscribe::subscribe))
        .route(
            "/status/subscriptions/{token}/confirm",
            get(subscribe::confirm_form).post(subscribe::confirm),
        )
        .route(
            "/status/subscriptions/{token}/unsubscribe",
            get(subscribe::unsubscribe_form).post(subscribe::unsubscribe),
        )
        .route("/status", get(serve))
        .route("/status/", get(serve))
        .route("/status/{*rest}", get(serve))
        .route("/api/v2/{*rest}", get(serve))
        .with_state(page)
}
