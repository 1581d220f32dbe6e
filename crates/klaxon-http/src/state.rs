use std::sync::Arc;

use klaxon_domain::Clock;
use klaxon_domain::config::Catalog;
use klaxon_store::Store;

/// Access policy for reads.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// When true, reading incidents needs a token too. Private incidents always do.
    pub require_token_for_reads: bool,
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub catalog: Arc<Catalog>,
    pub auth: AuthSettings,
}
