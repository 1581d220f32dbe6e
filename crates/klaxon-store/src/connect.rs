//! Opening the database: URL parsing, SQLite pragmas, pools and migrations.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyConnection, AssertSqlSafe, Executor, SqlSafeStr};

use crate::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite:///abs/path.db`, `sqlite://relative.db`, `sqlite::memory:` or `postgres://...`.
    pub url: String,
    /// Connections in the read pool (and the write pool on PostgreSQL).
    pub max_connections: u32,
    /// SQLite `synchronous` pragma: `FULL` (default: a 2xx survives power loss) or `NORMAL`.
    pub sqlite_synchronous: String,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            sqlite_synchronous: "FULL".into(),
        }
    }
}

fn migrations(backend: Backend) -> Migrator {
    let files: &[(i64, &str, &str)] = match backend {
        Backend::Sqlite => &[
            (1, "incidents", include_str!("../migrations/sqlite/0001_incidents.sql")),
            (2, "alerts", include_str!("../migrations/sqlite/0002_alerts.sql")),
            (3, "schedules", include_str!("../migrations/sqlite/0003_schedules.sql")),
            (4, "people", include_str!("../migrations/sqlite/0004_people.sql")),
            (
                5,
                "escalation",
                include_str!("../migrations/sqlite/0005_escalation.sql"),
            ),
            (6, "engine", include_str!("../migrations/sqlite/0006_engine.sql")),
            (
                7,
                "hot_path_fks",
                include_str!("../migrations/sqlite/0007_hot_path_fks.sql"),
            ),
            (
                8,
                "communication",
                include_str!("../migrations/sqlite/0008_communication.sql"),
            ),
            (9, "probes", include_str!("../migrations/sqlite/0009_probes.sql")),
            (
                10,
                "status_page",
                include_str!("../migrations/sqlite/0010_status_page.sql"),
            ),
            (
                11,
                "ingest_journal",
                include_str!("../migrations/sqlite/0011_ingest_journal.sql"),
            ),
            (
                12,
                "alerts_integration_fk",
                include_str!("../migrations/sqlite/0012_alerts_integration_fk.sql"),
            ),
            (13, "lz4_toast", include_str!("../migrations/sqlite/0013_lz4_toast.sql")),
            (
                14,
                "alerts_past_idx",
                include_str!("../migrations/sqlite/0014_alerts_past_idx.sql"),
            ),
            (
                15,
                "hot_path_fks_sqlite",
                include_str!("../migrations/sqlite/0015_hot_path_fks_sqlite.sql"),
            ),
            (
                16,
                "ingest_commits",
                include_str!("../migrations/sqlite/0016_ingest_commits.sql"),
            ),
        ],
        Backend::Postgres => &[
            (
                1,
                "incidents",
                include_str!("../migrations/postgres/0001_incidents.sql"),
            ),
            (2, "alerts", include_str!("../migrations/postgres/0002_alerts.sql")),
            (
                3,
                "schedules",
                include_str!("../migrations/postgres/0003_schedules.sql"),
            ),
            (4, "people", include_str!("../migrations/postgres/0004_people.sql")),
            (
                5,
                "escalation",
                include_str!("../migrations/postgres/0005_escalation.sql"),
            ),
            (6, "engine", include_str!("../migrations/postgres/0006_engine.sql")),
            (
                7,
                "hot_path_fks",
                include_str!("../migrations/postgres/0007_hot_path_fks.sql"),
            ),
            (
                8,
                "communication",
                include_str!("../migrations/postgres/0008_communication.sql"),
            ),
            (9, "probes", include_str!("../migrations/postgres/0009_probes.sql")),
            (
                10,
                "status_page",
                include_str!("../migrations/postgres/0010_status_page.sql"),
            ),
            (
                11,
                "ingest_journal",
                include_str!("../migrations/postgres/0011_ingest_journal.sql"),
            ),
            (
                12,
                "alerts_integration_fk",
                include_str!("../migrations/postgres/0012_alerts_integration_fk.sql"),
            ),
            (
                13,
                "lz4_toast",
                include_str!("../migrations/postgres/0013_lz4_toast.sql"),
            ),
            (
                14,
                "alerts_past_idx",
                include_str!("../migrations/postgres/0014_alerts_past_idx.sql"),
            ),
            (
                15,
                "hot_path_fks_sqlite",
                include_str!("../migrations/postgres/0015_hot_path_fks_sqlite.sql"),
            ),
            (
                16,
                "ingest_commits",
                include_str!("../migrations/postgres/0016_ingest_commits.sql"),
            ),
        ],
    };
    Migrator::with_migrations(
        files
            .iter()
            .map(|(v, name, sql)| {
                Migration::new(
                    *v,
                    Cow::Borrowed(*name),
                    MigrationType::Simple,
                    AssertSqlSafe(*sql).into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// A PostgreSQL server on this machine is reached without TLS unless the URL
/// asks for it (`sslmode=`). TLS on loopback protects nothing, and sqlx (which
/// does not set TCP_NODELAY) writes each 16 KiB TLS record separately, so every
/// statement over 16 KiB waited out a ~40 ms delayed ACK: measured 326 → 3,288
/// PagerDuty events/s on this machine.
fn loopback_without_tls(url: &str) -> String {
    let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = after_scheme.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    let host = if host_port.starts_with('[') {
        host_port
            .split(']')
            .next()
            .map(|h| h.trim_start_matches('['))
            .unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "::1");
    if !loopback || url.contains("sslmode=") {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}sslmode=disable")
}

/// SQLite, the one writer connection only: a 64 MiB page cache (default 2 MiB)
/// and a checkpoint every 8,192 WAL pages (32 MiB) rather than every 1,000, so
/// that pages the ingest path rewrites in every batch (index roots, incident
/// rows, the applied mark) are copied into the database once per checkpoint.
/// Measured with `klaxon bench apply` (100,000 alerts, batch 100): 3.5 → 3.1 KB
/// written to disk per alert, a quarter fewer write calls.
const SQLITE_WRITER_PRAGMAS: &str = "PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 8192;";

/// Normalise the SQLite URL forms users write into what sqlx expects, and
/// make sure the file is created.
fn sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Url(format!("{url:?} is not a sqlite: URL")))?;
    if rest.is_empty() {
        return Err(StoreError::Url("sqlite URL names no file".into()));
    }
    if rest == ":memory:" {
        return Ok("sqlite::memory:".into());
    }
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let mut out = format!("sqlite://{path}");
    match query {
        Some(q) if q.contains("mode=") => out.push_str(&format!("?{q}")),
        Some(q) => out.push_str(&format!("?{q}&mode=rwc")),
        None => out.push_str("?mode=rwc"),
    }
    Ok(out)
}

/// Pin the closure's signature to the higher-ranked one `after_connect` needs.
fn hook<F>(f: F) -> F
where
    F: for<'c> Fn(&'c mut AnyConnection, sqlx::pool::PoolConnectionMetadata) -> BoxFuture<'c, Result<(), sqlx::Error>>,
{
    f
}

/// A PostgreSQL pool of up to `max` connections, each set up with `setting` when opened.
async fn pg_pool(url: &str, max: u32, setting: &'static str) -> Result<AnyPool, StoreError> {
    Ok(AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(hook(move |conn, _meta| {
            Box::pin(async move {
                conn.execute(setting).await?;
                Ok(())
            })
        }))
        .connect(url)
        .await?)
}

impl Store {
    /// Open the database, apply migrations, and return a ready store.
    pub async fn connect(opts: &StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let url = opts.url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let url = &loopback_without_tls(url);
            // Statements are prepared once per connection; PostgreSQL then
            // switches to a generic plan, which for `key IN ($2, ..., $501)`
            // scans the whole alerts table (measured 300-400 ms per batch
            // preload instead of < 1 ms). Plan each execution for its values.
            let pool = pg_pool(
                url,
                opts.max_connections.max(2),
                "SET plan_cache_mode = force_custom_plan",
            )
            .await?;
            migrations(Backend::Postgres).run(&pool).await?;
            // The ingest journal: its inserts are `UNNEST` of array parameters,
            // which a per-execution plan parses twice (ingest/write.rs,
            // GENERIC_PLANS); its other statements are single-index lookups.
            let journal = pg_pool(url, 4, "SET plan_cache_mode = force_generic_plan").await?;
            return Ok(Store {
                backend: Backend::Postgres,
                journal,
                journal_file: None,
                write: pool.clone(),
                read: pool,
                rules_generation: Default::default(),
                timers_wake: Default::default(),
                outbox_wake: Default::default(),
            });
        }
        if !url.starts_with("sqlite:") {
            return Err(StoreError::Url(format!(
                "unsupported database URL {url:?}: use sqlite:///path/to/klaxon.db or postgres://user@host/db"
            )));
        }
        let sqlite = sqlite_url(url)?;
        let memory = sqlite.contains(":memory:");
        let sync = opts.sqlite_synchronous.to_ascii_uppercase();
        if !["FULL", "NORMAL", "EXTRA"].contains(&sync.as_str()) {
            return Err(StoreError::Url(format!(
                "sqlite synchronous must be FULL, NORMAL or EXTRA, not {sync:?}"
            )));
        }
        let pragmas = format!("PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = {sync};");
        let setup = |pragmas: String| {
            hook(move |conn, _meta| {
                let pragmas = pragmas.clone();
                Box::pin(async move {
                    conn.execute(AssertSqlSafe(pragmas)).await?;
                    Ok(())
                })
            })
        };
        // One writer: SQLite serialises writes anyway; one connection avoids SQLITE_BUSY.
        // No liveness check when a pool hands out a connection: a SQLite connection
        // is a file handle in this process, it cannot drop out as a network one
        // can, and the check costs a round trip to the connection's thread.
        let write = AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(setup(format!("{pragmas} {SQLITE_WRITER_PRAGMAS}")))
            .connect(&sqlite)
            .await?;
        sqlx::query("PRAGMA journal_mode = WAL").execute(&write).await?;
        migrations(Backend::Sqlite).run(&write).await?;
        let read = if memory {
            write.clone()
        } else {
            AnyPoolOptions::new()
                .max_connections(opts.max_connections.max(1))
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .after_connect(setup(pragmas.clone()))
                .connect(&sqlite)
                .await?
        };
        // The ingest journal: its own file, its own write lock (ingest/journal.rs).
        let journal = AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // An in-memory journal lives as long as its one connection.
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(setup(pragmas))
            .connect(&crate::ingest::sqlite_journal_url(&sqlite))
            .await?;
        let journal_file = crate::ingest::create_sqlite_journal(&journal, &sync).await?;
        Ok(Store {
            backend: Backend::Sqlite,
            journal,
            journal_file,
            write,
            read,
            rules_generation: Default::default(),
            timers_wake: Default::default(),
            outbox_wake: Default::default(),
        })
    }
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(format!("unknown backend {s:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_migrations() {
        let versions = |b| {
            migrations(b)
                .iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(versions(Backend::Sqlite), versions(Backend::Postgres));
        // Every file in the folders is registered.
        for dir in ["sqlite", "postgres"] {
            let files = std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
                .count();
            assert_eq!(versions(Backend::Sqlite).len(), files, "{dir}");
        }
    }

    /// Migration 0015 rebuilds SQLite's incident_alerts and incident_events
    /// without foreign keys: every row survives, the timeline stays
    /// append-only, the index by alert is back, and a link is no longer checked.
    #[tokio::test]
    async fn sqlite_0015_keeps_links_and_timelines_and_drops_their_foreign_keys() {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
        use sqlx::{ConnectOptions, Row};
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join("k.db"))
            .create_if_missing(true)
            .foreign_keys(false);
        let mut conn: SqliteConnection = opts.connect().await.unwrap();
        let all = migrations(Backend::Sqlite);
        let before: Vec<Migration> = all.iter().filter(|m| m.version < 15).cloned().collect();
        assert_eq!(before.len(), 14);
        Migrator::with_migrations(before).run(&mut conn).await.unwrap();
        // Rows as 0014 left them (seeded without the checks, as only the tables matter).
        for (alert, route) in [(2, "r-a"), (3, "r-b")] {
            sqlx::query("INSERT INTO incident_alerts (incident_pk, alert_pk, route) VALUES (1, ?, ?)")
                .bind(alert)
                .bind(route)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        for seq in 1..=2 {
            sqlx::query(
                "INSERT INTO incident_events (incident_pk, seq, at, actor, type, payload, prev_hash, hash) \
                 VALUES (1, ?, 1700000000000, 'system', 'alert_fired', '{\"x\":1}', 'p', 'h')",
            )
            .bind(seq)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        // The store migrates with the checks on.
        sqlx::query("PRAGMA foreign_keys = ON")
            .execute(&mut conn)
            .await
            .unwrap();
        all.run(&mut conn).await.unwrap();

        let links: Vec<(i64, i64, String)> =
            sqlx::query_as("SELECT incident_pk, alert_pk, route FROM incident_alerts ORDER BY alert_pk")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(links, vec![(1, 2, "r-a".to_string()), (1, 3, "r-b".to_string())]);
        let events: Vec<(i64, String)> = sqlx::query_as("SELECT seq, payload FROM incident_events ORDER BY seq")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            events,
            vec![(1, r#"{"x":1}"#.to_string()), (2, r#"{"x":1}"#.to_string())]
        );
        // Still append-only.
        for sql in ["UPDATE incident_events SET at = 0", "DELETE FROM incident_events"] {
            let err = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
            assert!(err.to_string().contains("append-only"), "{sql}: {err}");
        }
        // Keys and the index by alert as before.
        let dup = sqlx::query("INSERT INTO incident_alerts (incident_pk, alert_pk, route) VALUES (1, 2, 'again')")
            .execute(&mut conn)
            .await;
        assert!(dup.is_err(), "(incident_pk, alert_pk) stays the key");
        let index: String =
            sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = 'incident_alerts_alert_idx'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert!(index.contains("(alert_pk)"), "{index}");
        // With the checks on, a link to an incident and alert that do not exist
        // goes in: nothing checks it any more.
        sqlx::query("INSERT INTO incident_alerts (incident_pk, alert_pk, route) VALUES (999, 999, 'r')")
            .execute(&mut conn)
            .await
            .unwrap();
        let fks = sqlx::query("SELECT * FROM pragma_foreign_key_list('incident_events')")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert!(fks.is_empty(), "{} foreign keys left", fks.len());
        let ok: String = sqlx::query("PRAGMA integrity_check")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get(0);
        assert_eq!(ok, "ok");
    }

    #[test]
    fn loopback_postgres_goes_without_tls() {
        assert_eq!(
            loopback_without_tls("postgres://u@127.0.0.1/db"),
            "postgres://u@127.0.0.1/db?sslmode=disable"
        );
        assert_eq!(
            loopback_without_tls("postgres://u:p@localhost:5433/db?x=1"),
            "postgres://u:p@localhost:5433/db?x=1&sslmode=disable"
        );
        assert_eq!(
            loopback_without_tls("postgres://u@[::1]:5432/db"),
            "postgres://u@[::1]:5432/db?sslmode=disable"
        );
        assert_eq!(
            loopback_without_tls("postgres://u@127.0.0.1/db?sslmode=require"),
            "postgres://u@127.0.0.1/db?sslmode=require"
        );
        assert_eq!(
            loopback_without_tls("postgres://u@db.example.com/db"),
            "postgres://u@db.example.com/db"
        );
    }

    #[test]
    fn sqlite_urls_are_normalised() {
        assert_eq!(sqlite_url("sqlite:///tmp/k.db").unwrap(), "sqlite:///tmp/k.db?mode=rwc");
        assert_eq!(sqlite_url("sqlite://klaxon.db").unwrap(), "sqlite://klaxon.db?mode=rwc");
        assert_eq!(sqlite_url("sqlite:klaxon.db").unwrap(), "sqlite://klaxon.db?mode=rwc");
        assert_eq!(sqlite_url("sqlite:k.db?mode=ro").unwrap(), "sqlite://k.db?mode=ro");
        assert!(sqlite_url("sqlite://").is_err());
    }
}
