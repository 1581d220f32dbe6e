//! `klaxon serve`: open the store, bootstrap the admin token, serve HTTP.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use klaxon_domain::wire::TokenRole;
use klaxon_domain::{Clock, config::Catalog};
use klaxon_http::{AppState, Application, AuthSettings};
use klaxon_store::{IngestSettings, Store, StoreOptions, SystemClock, hash_secret, new_secret};

use crate::config;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://klaxon.db";

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  klaxon serve\n  klaxon serve --listen 0.0.0.0:8080 --database-url sqlite:///var/lib/klaxon/klaxon.db\n  KLAXON_DATABASE_URL=postgres://klaxon@db/klaxon klaxon serve --config /etc/klaxon/klaxon.yaml"
)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080, or `listen` in the config].
    #[arg(long, env = "KLAXON_LISTEN")]
    pub listen: Option<String>,
    /// sqlite:///abs/path/klaxon.db or postgres://user@host/db [default: sqlite://klaxon.db].
    #[arg(long, env = "KLAXON_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// YAML configuration file.
    #[arg(long, env = "KLAXON_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Everything `serve` needs, resolved from flags, environment, file and defaults.
pub struct Resolved {
    pub listen: String,
    pub store: StoreOptions,
    pub catalog: Catalog,
    pub auth: AuthSettings,
    pub config: config::Config,
}

pub fn resolve(args: &ServeArgs) -> anyhow::Result<Resolved> {
    let cfg = match &args.config {
        Some(p) => config::load(p)?,
        None => config::Config::default(),
    };
    let listen = args
        .listen
        .clone()
        .or(cfg.file.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.into());
    let url = args
        .database_url
        .clone()
        .or(cfg.file.database_url.clone())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
    let mut store = StoreOptions::new(url);
    if let Some(n) = cfg.file.database.max_connections {
        store.max_connections = n;
    }
    if let Some(s) = &cfg.file.database.sqlite_synchronous {
        store.sqlite_synchronous = s.clone();
    }
    Ok(Resolved {
        listen,
        store,
        catalog: cfg.catalog.clone(),
        auth: AuthSettings {
            require_token_for_reads: cfg.file.auth.require_token_for_reads,
        },
        config: cfg,
    })
}

/// On first start (no token at all) create the admin token: `KLAXON_ADMIN_TOKEN`
/// if set, otherwise a fresh one printed once.
async fn bootstrap_admin(store: &Store, clock: &dyn Clock) -> anyhow::Result<()> {
    if store.count_tokens().await? > 0 {
        return Ok(());
    }
    match std::env::var("KLAXON_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        Some(secret) => {
            let secret = secret.trim();
            anyhow::ensure!(secret.len() >= 16, "KLAXON_ADMIN_TOKEN must be at least 16 characters");
            if store.find_token(&hash_secret(secret)).await?.is_none() {
                store
                    .create_token("admin", TokenRole::Admin, secret, clock.now())
                    .await?;
            }
            tracing::info!("admin token taken from KLAXON_ADMIN_TOKEN");
        }
        None => {
            let secret = new_secret();
            store
                .create_token("admin", TokenRole::Admin, &secret, clock.now())
                .await?;
            println!(
                "First start: created the admin API token. It is shown once; keep it safe:\n\n    export KLAXON_TOKEN={secret}\n"
            );
        }
    }
    Ok(())
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KLAXON_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // A log line that cannot be written (stderr's reader went away) is
        // dropped. Otherwise tracing reports it with `eprintln!`, which panics
        // on the same closed stderr, taking down whatever logged: a request,
        // or the ingest applier's task.
        .log_internal_errors(false)
        .init();
    let r = resolve(&args)?;
    let store = Store::connect(&r.store)
        .await
        .with_context(|| format!("opening database {}", redact(&r.store.url)))?;
    // Tests of several real nodes move time by hand: KLAXON_TEST_CLOCK=<RFC 3339>
    // starts a manual clock that POST /api/v1/debug/clock advances.
    let manual = match std::env::var("KLAXON_TEST_CLOCK") {
        Ok(t) if !t.trim().is_empty() => {
            let start: jiff::Timestamp = t.trim().parse().context("KLAXON_TEST_CLOCK")?;
            tracing::warn!(%start, "manual test clock: time moves only through /api/v1/debug/clock");
            Some(Arc::new(klaxon_domain::ManualClock::new(start)))
        }
        _ => None,
    };
    let clock: Arc<dyn Clock> = match &manual {
        Some(m) => m.clone(),
        None => Arc::new(SystemClock),
    };
    bootstrap_admin(&store, clock.as_ref()).await?;
    let catalog = Arc::new(r.catalog);
    for i in r.config.file.integrations.iter().flatten() {
        store
            .ensure_integration(&i.value.name, i.value.format, &i.value.key, clock.now())
            .await?;
    }
    for sil in &r.config.silences {
        store.create_silence(sil, clock.now()).await?;
    }
    apply_people(&store, &r.config, clock.now()).await?;
    let mut ingest = IngestSettings::new(catalog.clone());
    ingest.routes = r.config.routes.clone();
    if let Some(d) = &r.config.default_route {
        ingest.default_route = d.clone();
    }
    if let Some(f) = r.config.file.ingest.flapping {
        ingest.flap = f;
    }
    ingest.max_backlog = r.config.file.ingest.max_backlog;
    if let Some(w) = r.config.file.ingest.backlog_wait {
        ingest.backlog_wait = w;
    }
    let rate = (
        r.config.file.ingest.rate_limit_per_second,
        r.config.file.ingest.rate_limit_burst,
    );
    let api = &r.config.file.auth;
    let catalog_for_engine = catalog.clone();
    let mut state = AppState::new(store.clone(), clock.clone(), catalog, r.auth, ingest, rate)
        .with_api_rate(api.rate_limit_per_second, api.rate_limit_burst);
    state.manual_clock = manual;
    state.templates = Arc::new(r.config.templates.clone());
    state.channels = Arc::new(r.config.file.channels.clone());
    state.public_url = r.config.file.engine.public_url.clone();
    if let Some(p) = &r.config.file.status_page {
        state.status_page = Arc::new(klaxon_http::status_page::StatusPage::new(p.value.clone()));
        if let Some(listen) = &p.value.listen {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("status_page.listen: binding {listen}"))?;
            let page = klaxon_http::status_page::public_routes(state.status_page.clone());
            eprintln!("Status page on http://{}/status", listener.local_addr()?);
            tokio::spawn(async move {
                let svc = page.into_make_service_with_connect_info::<std::net::SocketAddr>();
                if let Err(e) = axum::serve(listener, svc).await {
                    tracing::error!(error = %e, "the status page listener stopped");
                }
            });
        }
    }
    let checks: Vec<_> = r.config.file.checks.iter().flatten().map(|c| c.value.clone()).collect();
    if !checks.is_empty() {
        let prober = klaxon_probes::Prober::new(store.clone(), clock.clone(), state.ingestor.clone(), checks, 8)
            .await
            .context("setting up health checks")?;
        state.checks = Some(prober);
    }
    let prober = state.checks.clone();
    let channels = channels(&store, &r.config)?;
    let page = state.status_page.clone();
    let ingestor = state.ingestor.clone();
    let app = Application::build(state, &r.listen)
        .await
        .with_context(|| format!("listening on {}", r.listen))?;
    let addr = app.local_addr()?;
    if let Some(mail) = channels.get("email") {
        page.set_mailer(mail.clone());
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = match engine(&store, clock, catalog_for_engine, &r.config, channels)? {
        Some(e) => {
            tracing::info!(node = e.node(), "engine started");
            Some(tokio::spawn(e.run(stop_rx.clone())))
        }
        None => None,
    };
    // Checks run where the engine runs (see docs/checks.md on several nodes).
    let prober = match prober.filter(|_| r.config.file.engine.enabled != Some(false)) {
        Some(p) => {
            tracing::info!(checks = p.checks().len(), "health checks started");
            Some(tokio::spawn(p.run(stop_rx.clone())))
        }
        None => None,
    };
    tracing::info!(%addr, database = store.backend().as_str(), "Klaxon is ready");
    eprintln!("Klaxon listening on http://{addr} (database: {})", redact(&r.store.url));
    app.run_until_stopped(shutdown_signal()).await?;
    // Requests in flight are answered by now. What they and those before them
    // committed to the journal is applied before the store closes, rather than
    // failing half way (the pool closed under the applier) and waiting in the
    // journal for the next start. A long backlog is left there after a while.
    let backlog = ingestor.backlog();
    match tokio::time::timeout(INGEST_DRAIN, ingestor.settled()).await {
        Ok(()) if backlog > 0 => tracing::info!(alerts = backlog, "applied the alerts accepted before the stop"),
        Ok(()) => {}
        Err(_) => tracing::warn!(
            alerts = ingestor.backlog(),
            "stopping with accepted alerts not applied yet: they stay in the journal and are applied at the next start"
        ),
    }
    let _ = stop_tx.send(true);
    if let Some(e) = engine {
        let _ = e.await;
    }
    if let Some(p) = prober {
        let _ = p.await;
    }
    store.close().await;
    Ok(())
}

/// How long a stopping server waits for the alerts it accepted to be applied
/// (well within the 10 s a container runtime waits before it kills).
const INGEST_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The notification channels the configuration sets up.
fn channels(store: &Store, config: &config::Config) -> anyhow::Result<klaxon_engine::Channels> {
    let cfg = &config.file.engine;
    let secret = std::env::var("KLAXON_WEBHOOK_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .or(cfg.webhook_secret.clone())
        .unwrap_or_default();
    if secret.is_empty() {
        tracing::warn!(
            "no webhook_secret (engine.webhook_secret or KLAXON_WEBHOOK_SECRET): outgoing webhooks are signed with an empty key"
        );
    }
    let mut channels_cfg = config.file.channels.clone();
    if let Some(t) = cfg.webhook_timeout {
        channels_cfg.timeout = Some(t);
    }
    let deps = klaxon_engine::ChannelDeps {
        store: store.clone(),
        public_url: cfg.public_url.clone(),
        webhook_secret: secret,
    };
    let channels = klaxon_engine::channels::build(&channels_cfg, &deps)
        .map_err(|e| anyhow::anyhow!(e))
        .context("setting up notification channels")?;
    tracing::info!(channels = ?channels, "notification channels");
    Ok(channels)
}

/// The engine of this node, unless `engine.enabled` is false.
fn engine(
    store: &Store,
    clock: Arc<dyn Clock>,
    catalog: Arc<Catalog>,
    config: &config::Config,
    channels: klaxon_engine::Channels,
) -> anyhow::Result<Option<Arc<klaxon_engine::Engine>>> {
    let cfg = &config.file.engine;
    if cfg.enabled == Some(false) {
        return Ok(None);
    }
    let mut settings = klaxon_engine::EngineSettings::default();
    if let Some(l) = cfg.lease {
        settings.lease = l;
    }
    if let Some(p) = cfg.poll_interval {
        settings.poll_interval = p;
    }
    if let Some(m) = cfg.max_attempts {
        settings.max_attempts = m;
    }
    settings.public_url = cfg.public_url.clone();
    settings.catalog = catalog;
    settings.templates = Arc::new(config.templates.clone());
    settings.status_page_url = config
        .file
        .status_page
        .as_ref()
        .and_then(|p| p.value.url.clone())
        .or(cfg.public_url.clone());
    settings.stall_at_step = std::env::var("KLAXON_FAULT_STALL_AT_STEP")
        .ok()
        .and_then(|v| v.parse().ok());
    let node = std::env::var("KLAXON_NODE")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| klaxon_store::random_hex("node-", 4));
    Ok(Some(Arc::new(klaxon_engine::Engine::new(
        store.clone(),
        clock,
        node,
        settings,
        channels,
    )?)))
}

/// Users, teams, schedules and escalation policies from the file, created or
/// replaced in that order so references resolve.
async fn apply_people(store: &Store, cfg: &config::Config, now: jiff::Timestamp) -> anyhow::Result<()> {
    use klaxon_store::Collection;
    for u in cfg.file.users.iter().flatten() {
        store
            .put_document(Collection::Users, &u.value.id, &u.value, now)
            .await?;
    }
    for t in cfg.file.teams.iter().flatten() {
        store
            .put_document(Collection::Teams, &t.value.id, &t.value, now)
            .await?;
    }
    for s in cfg.file.schedules.iter().flatten() {
        store.put_schedule(&s.value, true, now).await?;
    }
    for p in cfg.file.escalation_policies.iter().flatten() {
        store
            .put_document(Collection::EscalationPolicies, &p.value.id, &p.value, now)
            .await?;
    }
    Ok(())
}

/// Hide a password in a database URL.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(super::redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite://klaxon.db"), "sqlite://klaxon.db");
    }
}
