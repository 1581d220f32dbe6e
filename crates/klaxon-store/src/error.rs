use klaxon_domain::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The command was refused by the domain rules.
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("incident {0} not found")]
    NotFound(String),
    #[error("{0} {1} not found")]
    NotFoundOf(&'static str, String),
    #[error("token {0} not found")]
    TokenNotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// More alerts are waiting to be applied than the server holds; retry later.
    #[error("{0}")]
    Overloaded(String),
    /// Ingest: deciding a request needs the database while it is busy writing
    /// the part before; the request is decided again once it is free.
    #[error("the database is busy writing the last part of the batch")]
    Deferred,
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
    #[error("database URL: {0}")]
    Url(String),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// The SQLite ingest journal, written without sqlx (ingest/journal.rs).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// A stored Unix-millisecond time; out of range means the row is corrupt.
pub(crate) fn ts(v: i64) -> Result<jiff::Timestamp, StoreError> {
    jiff::Timestamp::from_millisecond(v).map_err(|e| StoreError::Corrupt(format!("timestamp {v}: {e}")))
}
