//! Test harness: a real server per test on a fresh database.

use std::sync::Arc;

use jiff::Timestamp;
use klaxon_client::Client;
use klaxon_domain::wire::TokenRole;
use klaxon_domain::{ManualClock, config::Catalog};
use klaxon_http::{AppState, Application, AuthSettings};
use klaxon_store::{Store, StoreOptions, new_secret};

pub const ADMIN: &str = "kx_integration_admin_secret_0123456789";

pub fn pg_admin_url() -> String {
    std::env::var("KLAXON_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A throwaway database: a SQLite file in a temp dir, or a fresh PostgreSQL database.
pub enum TestDb {
    Sqlite { _dir: tempfile::TempDir, url: String },
    Postgres { name: String, url: String },
}

impl TestDb {
    pub async fn new(backend: &str) -> TestDb {
        match backend {
            "sqlite" => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("klaxon.db").display());
                TestDb::Sqlite { _dir: dir, url }
            }
            _ => {
                use sqlx::Connection;
                let admin = pg_admin_url();
                let name = format!("klaxon_t_{}", &new_secret()[3..15]);
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL tests need a server at {admin} (set KLAXON_TEST_PG_URL): {e}")
                });
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create database");
                let base = admin
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_string())
                    .unwrap_or(admin.clone());
                TestDb::Postgres {
                    url: format!("{base}/{name}"),
                    name,
                }
            }
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } | TestDb::Postgres { url, .. } => url,
        }
    }

    /// A connection to the test database itself (SQLite: the main file, not
    /// the journal).
    pub async fn pool(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(self.url())
            .await
            .unwrap()
    }

    /// A connection to where the ingest journal is: a file of its own beside
    /// a SQLite database, the database itself on PostgreSQL.
    pub async fn journal_pool(&self) -> sqlx::AnyPool {
        let url = match self {
            TestDb::Sqlite { url, .. } => format!("{url}-intake"),
            TestDb::Postgres { url, .. } => url.clone(),
        };
        sqlx::any::install_default_drivers();
        sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { name, .. } = self {
            let name = name.clone();
            // Best effort, on a thread of its own: Drop cannot await.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    use sqlx::Connection;
                    let mut conn = sqlx::PgConnection::connect(&pg_admin_url()).await.ok()?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await
                    .ok()
                })
            })
            .join();
        }
    }
}

/// Optional parts of a test server.
#[derive(Default)]
pub struct Extras {
    pub channels: Option<klaxon_engine::ChannelsConfig>,
    pub status_page: Option<klaxon_domain::status_page::StatusPageConfig>,
    pub max_backlog: Option<usize>,
    pub backlog_wait: Option<std::time::Duration>,
}

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub anon: Client,
    pub clock: Arc<ManualClock>,
    pub store: Store,
    pub db: TestDb,
    pub backend: &'static str,
    pub catalog: Arc<Catalog>,
    pub status_page: Arc<klaxon_http::status_page::StatusPage>,
    pub ingestor: klaxon_store::Ingestor,
}

pub fn t0() -> Timestamp {
    "2026-11-23T10:00:00Z".parse().expect("time")
}

impl TestApp {
    pub async fn spawn(backend: &'static str) -> TestApp {
        Self::spawn_with(backend, Catalog::default(), AuthSettings::default()).await
    }

    pub async fn spawn_with(backend: &'static str, catalog: Catalog, auth: AuthSettings) -> TestApp {
        Self::spawn_full(backend, catalog, auth, vec![], (0, 0)).await
    }

    /// With alert routes (after which the default route applies) and an ingest rate limit (0 = none).
    pub async fn spawn_full(
        backend: &'static str,
        catalog: Catalog,
        auth: AuthSettings,
        routes: Vec<klaxon_domain::alert::Route>,
        rate: (u32, u32),
    ) -> TestApp {
        Self::spawn_inner(backend, catalog, auth, routes, rate, (0, 0), Extras::default()).await
    }

    /// With a status page configuration (components, branding).
    pub async fn spawn_status(
        backend: &'static str,
        catalog: Catalog,
        page: klaxon_domain::status_page::StatusPageConfig,
    ) -> TestApp {
        let extras = Extras {
            status_page: Some(page),
            ..Default::default()
        };
        Self::spawn_extras(backend, catalog, extras).await
    }

    /// Defaults everywhere but the optional parts.
    async fn spawn_extras(backend: &'static str, catalog: Catalog, extras: Extras) -> TestApp {
        Self::spawn_inner(
            backend,
            catalog,
            AuthSettings::default(),
            vec![],
            (0, 0),
            (0, 0),
            extras,
        )
        .await
    }

    /// With provider settings for the inbound hooks (Slack signing secret,
    /// Twilio auth token, provider base URLs).
    pub async fn spawn_channels(
        backend: &'static str,
        catalog: Catalog,
        channels: klaxon_engine::ChannelsConfig,
    ) -> TestApp {
        let extras = Extras {
            channels: Some(channels),
            ..Default::default()
        };
        Self::spawn_extras(backend, catalog, extras).await
    }

    /// With `/api/v1` limited to `per_second` requests per client address.
    pub async fn spawn_limited(per_second: u32, burst: u32) -> TestApp {
        Self::spawn_inner(
            "sqlite",
            Catalog::default(),
            AuthSettings::default(),
            vec![],
            (0, 0),
            (per_second, burst),
            Extras::default(),
        )
        .await
    }

    async fn spawn_inner(
        backend: &'static str,
        catalog: Catalog,
        auth: AuthSettings,
        routes: Vec<klaxon_domain::alert::Route>,
        rate: (u32, u32),
        api_rate: (u32, u32),
        extras: Extras,
    ) -> TestApp {
        klaxon_client::install_crypto_provider();
        let db = TestDb::new(backend).await;
        let store = Store::connect(&StoreOptions::new(db.url())).await.expect("store");
        let clock = Arc::new(ManualClock::new(t0()));
        store
            .create_token("admin", TokenRole::Admin, ADMIN, t0())
            .await
            .expect("token");
        let catalog = Arc::new(catalog);
        let mut ingest = klaxon_store::IngestSettings::new(catalog.clone());
        ingest.routes = routes;
        if let Some(n) = extras.max_backlog {
            ingest.max_backlog = n;
        }
        if let Some(w) = extras.backlog_wait {
            ingest.backlog_wait = w;
        }
        let mut state = AppState::new(store.clone(), clock.clone(), catalog.clone(), auth, ingest, rate)
            .with_api_rate(api_rate.0, api_rate.1);
        if let Some(c) = extras.channels {
            state.channels = Arc::new(c);
        }
        if let Some(p) = extras.status_page {
            state.status_page = Arc::new(klaxon_http::status_page::StatusPage::new(p));
        }
        let status_page = state.status_page.clone();
        let ingestor = state.ingestor.clone();
        let app = Application::build(state, "127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", app.local_addr().expect("addr"));
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        TestApp {
            client: Client::new(&base, Some(ADMIN.into())).expect("client"),
            anon: Client::new(&base, None).expect("client"),
            base,
            clock,
            store,
            db,
            backend,
            catalog,
            status_page,
            ingestor,
        }
    }

    /// With at most `max_backlog` alerts accepted and waiting to be applied,
    /// a request waiting up to `wait` for room.
    pub async fn spawn_backlog(backend: &'static str, max_backlog: usize, wait: std::time::Duration) -> TestApp {
        let extras = Extras {
            max_backlog: Some(max_backlog),
            backlog_wait: Some(wait),
            ..Default::default()
        };
        Self::spawn_extras(backend, Catalog::default(), extras).await
    }

    /// Wait until every alert accepted so far is applied.
    pub async fn settled(&self) {
        tokio::time::timeout(std::time::Duration::from_secs(30), self.ingestor.settled())
            .await
            .expect("accepted alerts applied within 30 s");
    }

    /// POST to an ingest endpoint and wait for the outcome
    /// (`Prefer: return=representation`).
    pub async fn ingest(&self, path: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
        self.raw_with("POST", path, &[("prefer", "return=representation")], None, Some(body))
            .await
    }

    /// Rebuild the status page now (the background task does it within a second).
    pub async fn refresh_status_page(&self) {
        self.status_page
            .refresh(&self.store, &self.catalog, self.clock_now())
            .await
            .expect("status page");
    }

    /// A client with a fresh token of this role.
    pub async fn client_with_role(&self, role: TokenRole) -> Client {
        let secret = new_secret();
        self.store
            .create_token(&format!("{role:?}-user").to_lowercase(), role, &secret, t0())
            .await
            .expect("token");
        Client::new(&self.base, Some(secret)).expect("client")
    }

    /// A connection of its own to the app's main database (not its journal),
    /// for what only SQL can set up or check.
    pub async fn main_db(&self) -> Result<sqlx::AnyConnection, sqlx::Error> {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let url = match self.backend {
            "sqlite" => format!("{}?mode=rw", self.db.url()),
            _ => self.db.url().to_string(),
        };
        sqlx::AnyConnection::connect(&url).await
    }

    /// A raw HTTP request, for what the typed client would never send.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (u16, serde_json::Value) {
        self.raw_with(method, path, &[], token, body).await
    }

    pub async fn raw_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (u16, serde_json::Value) {
        let http = reqwest::Client::new();
        let mut rb = http.request(method.parse().expect("method"), format!("{}{path}", self.base));
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b);
        }
        let resp = rb.send().await.expect("send");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }
}

/// Run a test body on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both {
    ($name:ident, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($app: $crate::support::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                body($crate::support::TestApp::spawn("sqlite").await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                body($crate::support::TestApp::spawn("postgres").await).await
            }
        }
    };
}

/// Run a status page test on SQLite and PostgreSQL with `status_page::page()`.
#[macro_export]
macro_rules! status_both {
    ($name:ident, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($app: $crate::support::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                body($crate::support::TestApp::spawn_status("sqlite", Default::default(), super::page()).await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                body($crate::support::TestApp::spawn_status("postgres", Default::default(), super::page()).await).await
            }
        }
    };
}

pub const WEBHOOK_SECRET: &str = "test-webhook-secret";

impl TestApp {
    /// An engine on this app's store and manual clock, delivering webhooks
    /// signed with [`WEBHOOK_SECRET`]. Tests drive it with `tick()`.
    pub fn engine(&self, node: &str) -> Arc<klaxon_engine::Engine> {
        self.engine_with(node, &klaxon_engine::ChannelsConfig::default(), None)
    }

    /// An engine with these provider settings (base URLs of the loopback
    /// stand-ins) and `public_url`.
    pub fn engine_with(
        &self,
        node: &str,
        cfg: &klaxon_engine::ChannelsConfig,
        public_url: Option<&str>,
    ) -> Arc<klaxon_engine::Engine> {
        let mut cfg = cfg.clone();
        cfg.timeout.get_or_insert(std::time::Duration::from_secs(5));
        let deps = klaxon_engine::ChannelDeps {
            store: self.store.clone(),
            public_url: public_url.map(str::to_string),
            webhook_secret: WEBHOOK_SECRET.into(),
        };
        let channels = klaxon_engine::channels::build(&cfg, &deps).expect("channels");
        Arc::new(
            klaxon_engine::Engine::new(
                self.store.clone(),
                self.clock.clone(),
                node.to_string(),
                klaxon_engine::EngineSettings {
                    catalog: self.catalog.clone(),
                    public_url: public_url.map(str::to_string),
                    status_page_url: self.status_page.config().url.clone(),
                    ..Default::default()
                },
                channels,
            )
            .expect("engine"),
        )
    }

    /// Move the manual clock.
    pub fn advance(&self, minutes: i64) {
        self.clock.advance(jiff::SignedDuration::from_mins(minutes));
    }
}

impl TestApp {
    pub fn clock_now(&self) -> jiff::Timestamp {
        klaxon_domain::Clock::now(self.clock.as_ref())
    }
}

/// The event types of an incident's timeline, oldest first.
/// How many events of `kind` the incident's timeline holds.
/// The alerts of an incident's batched alert events of one kind (`fired`,
/// `repeated`, `resolved`), in timeline order, with the event each is in.
pub async fn alert_changes(app: &TestApp, id: &str, change: &str) -> Vec<(i64, u64)> {
    use klaxon_domain::EventKind;
    let mut out = Vec::new();
    for e in app.client.timeline(id).await.unwrap().events {
        let ids: Vec<i64> = match (&e.kind, change) {
            (EventKind::AlertsFired { alerts }, "fired") => alerts.iter().map(|a| a.alert_id).collect(),
            (EventKind::AlertsRepeated { alerts }, "repeated") => alerts.iter().map(|a| a.alert_id).collect(),
            (EventKind::AlertsResolved { alerts }, "resolved") => alerts.iter().map(|a| a.alert_id).collect(),
            _ => continue,
        };
        out.extend(ids.into_iter().map(|a| (a, e.seq)));
    }
    out
}

pub async fn kinds(app: &TestApp, id: &str) -> Vec<String> {
    app.client
        .timeline(id)
        .await
        .unwrap()
        .events
        .iter()
        .map(|e| e.kind.type_name().to_string())
        .collect()
}

/// `sqlite` and `postgres` tests of an `async fn body(backend: &'static str)`
/// that starts its own server (when `both!`'s ready-made app does not fit).
#[macro_export]
macro_rules! each_backend {
    ($body:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn sqlite() {
            $body("sqlite").await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn postgres() {
            $body("postgres").await
        }
    };
}

/// A one-hour maintenance silence of `alertname=DiskFull`, starting now.
pub fn disk_swap_silence() -> klaxon_domain::wire::CreateSilence {
    klaxon_domain::wire::CreateSilence {
        matchers: vec!["alertname=DiskFull".into()],
        starts_at: None,
        ends_at: None,
        duration: Some("1h".into()),
        comment: "disk swap".into(),
        kind: Some("maintenance".into()),
    }
}
