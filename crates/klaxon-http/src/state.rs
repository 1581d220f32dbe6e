use std::sync::Arc;

use klaxon_domain::Clock;
use klaxon_domain::config::Catalog;
use klaxon_store::{IngestSettings, Ingestor, Store};

use crate::ingest::KeyCache;
use crate::limits::KeyedLimiter;

/// Access policy for reads.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// When true, reading incidents needs a token too. Private incidents always do.
    pub require_token_for_reads: bool,
}

/// What every handler can reach: one shared [`AppParts`]. A clone (axum makes
/// one per request) is one reference count, not one per field. Fields are set
/// through `DerefMut` while the state is being assembled, before it is shared.
#[derive(Clone, Debug)]
pub struct AppState(Arc<AppParts>);

impl std::ops::Deref for AppState {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

impl std::ops::DerefMut for AppState {
    /// Copies the parts only if the state is shared already.
    fn deref_mut(&mut self) -> &mut AppParts {
        Arc::make_mut(&mut self.0)
    }
}

/// The parts of [`AppState`].
#[derive(Clone, Debug)]
pub struct AppParts {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub catalog: Arc<Catalog>,
    pub auth: AuthSettings,
    pub ingest: Arc<IngestSettings>,
    pub ingestor: Ingestor,
    pub keys: Arc<KeyCache>,
    pub limiter: Arc<KeyedLimiter>,
    /// Per client address on `/api/v1` (off unless [`AppState::with_api_rate`]).
    pub api_limiter: Arc<KeyedLimiter>,
    /// Set when the server runs on a manual clock (`KLAXON_TEST_CLOCK`):
    /// `POST /api/v1/debug/clock` moves it.
    pub manual_clock: Option<Arc<klaxon_domain::ManualClock>>,
    /// Message templates in force (defaults with the configuration's replacements).
    pub templates: Arc<klaxon_domain::templates::Templates>,
    /// Provider settings, for the inbound hooks (Slack signing secret,
    /// Twilio auth token) and calls back to providers.
    pub channels: Arc<klaxon_engine::ChannelsConfig>,
    /// This Klaxon's external base URL (`engine.public_url`).
    pub public_url: Option<String>,
    /// The public status page, rendered in memory.
    pub status_page: Arc<crate::status_page::StatusPage>,
    /// Health checks of this node (`checks:` in klaxon.yaml), if any.
    pub checks: Option<Arc<klaxon_probes::Prober>>,
}

impl AppState {
    /// Assemble the state and start the ingest writer.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        catalog: Arc<Catalog>,
        auth: AuthSettings,
        ingest: IngestSettings,
        rate: (u32, u32),
    ) -> Self {
        let ingest = Arc::new(ingest);
        let ingestor = Ingestor::start(store.clone(), ingest.clone(), clock.clone());
        AppState(Arc::new(AppParts {
            store,
            clock,
            catalog,
            auth,
            ingest,
            ingestor,
            keys: Arc::new(KeyCache::default()),
            limiter: Arc::new(KeyedLimiter::new(rate.0, rate.1)),
            api_limiter: Arc::new(KeyedLimiter::new(0, 0)),
            manual_clock: None,
            templates: Arc::default(),
            channels: Arc::default(),
            public_url: None,
            status_page: Arc::default(),
            checks: None,
        }))
    }

    /// Limit `/api/v1` to `per_second` requests per client address (0 = no limit).
    pub fn with_api_rate(mut self, per_second: u32, burst: u32) -> Self {
        self.api_limiter = Arc::new(KeyedLimiter::new(per_second, burst));
        self
    }
}
