//! One `Store` over SQLite (the embedded default) and PostgreSQL.
//!
//! Queries are written once where the dialects agree (`$1` placeholders,
//! `ON CONFLICT`, `RETURNING`); where they differ, [`Backend`] picks the SQL.
//! Every command runs in one transaction: events appended, projection
//! updated, or nothing at all.

mod alerts;
mod channel_state;
mod clock;
mod connect;
mod documents;
mod error;
mod incidents;
mod ingest;
mod integrations;
mod outbox;
mod probes;
mod schedules;
mod status_page;
mod subscribers;
mod timers;
mod tokens;

pub use alerts::AlertFilter;
pub use clock::SystemClock;
pub use connect::{Backend, StoreOptions};
pub use documents::Collection;
pub use error::StoreError;
pub use incidents::ListFilter;
pub use ingest::{DEFAULT_BACKLOG_WAIT, DEFAULT_MAX_BACKLOG, IngestSettings, Ingestor, Outcomes};
pub use integrations::new_integration_key;
pub use outbox::{ClaimedNotification, Delivery, Notification, NotificationFilter};
pub use probes::{Compaction, ComponentDay, Counts, ProbeRecord, ProbeState, StateUpdate};
pub use timers::{CADENCE, COMMS, ClaimedTimer, ESCALATION, NewNotification, RULE, StepOutcome, TimerNext};
pub use tokens::{hash_secret, new_secret, random_hex};

use sqlx::AnyPool;

/// The persistence layer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    /// Serialised writer (one connection on SQLite, the shared pool on PostgreSQL).
    write: AnyPool,
    read: AnyPool,
    /// The ingest journal: a second file on SQLite, the main pool on PostgreSQL.
    journal: AnyPool,
    /// SQLite: the journal's file, which the intake writes with a connection of its own.
    journal_file: Option<ingest::JournalFile>,
    /// Bumped when routes or silences change, so cached copies are refreshed.
    rules_generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Rung after commits that change timers or notifications.
    timers_wake: std::sync::Arc<tokio::sync::Notify>,
    outbox_wake: std::sync::Arc<tokio::sync::Notify>,
}

impl Store {
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// `SELECT 1` on both pools: the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        sqlx::query("SELECT 1").execute(&self.write).await?;
        Ok(())
    }

    pub fn rules_generation(&self) -> u64 {
        self.rules_generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn rules_changed(&self) {
        self.rules_generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}
