//! The ingest journal: where an accepted request's alerts are committed
//! before they are applied (deduplicated, routed, grouped into incidents).
//!
//! Each server start is one *writer* with its own sequence. A request is
//! answered once its journal row is committed. The applier records the last
//! sequence it applied of each writer in `ingest_applied`, in the same
//! transaction as the batch it applied, so a row is applied exactly once: by
//! its own writer from memory, or after a crash by whichever node picks up
//! the leftovers ([`Store::journal_leftovers`]).
//!
//! On SQLite the journal is a second file (`<file>-intake`) so that accepting
//! never waits for the main file's write lock; on PostgreSQL it is the
//! `ingest_journal` table.
//!
//! On SQLite the intake writes the file itself, on its own thread, through a
//! rusqlite connection ([`DirectJournal`]): through sqlx each group commit went
//! to a worker thread and back, and with one-alert requests those hand-offs,
//! not the disk, set the pace (measured: 81 → 72 µs of server CPU per request,
//! 13–14k → 15–16k requests/s, one alert each, 32 connections on 2 cores).

use jiff::Timestamp;
use klaxon_domain::alert::AlertInput;
use sqlx::{Any, AnyConnection, AnyPool, Row, Transaction};

use super::write::{Val, insert_query};
use crate::{Backend, Store, StoreError};

const SQLITE_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS ingest_journal (
    writer         TEXT    NOT NULL,
    seq            INTEGER NOT NULL,
    integration_id TEXT    NOT NULL,
    received_at    INTEGER NOT NULL,
    alerts         TEXT    NOT NULL,
    PRIMARY KEY (writer, seq)
)";

/// The session lock a running writer holds (PostgreSQL).
const WRITER_LOCK: &str = "SELECT pg_advisory_lock(4242, hashtext($1))";

/// The journal file beside a SQLite database: `x.db` → `x.db-intake`.
pub(crate) fn sqlite_journal_url(main_url: &str) -> String {
    if main_url.contains(":memory:") {
        return "sqlite::memory:".to_string();
    }
    let (path, query) = main_url.split_once('?').unwrap_or((main_url, ""));
    format!("{path}-intake?{query}")
}

/// WAL mode and the table, on a freshly opened SQLite journal; its file, unless
/// the journal is in memory (`synchronous` is the database's setting).
pub(crate) async fn create_sqlite_journal(
    pool: &AnyPool,
    synchronous: &str,
) -> Result<Option<JournalFile>, StoreError> {
    sqlx::query("PRAGMA journal_mode = WAL").execute(pool).await?;
    sqlx::query(SQLITE_SCHEMA).execute(pool).await?;
    let path: String = sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
        .fetch_one(pool)
        .await?;
    Ok((!path.is_empty()).then(|| JournalFile {
        path: path.into(),
        synchronous: synchronous.to_string(),
    }))
}

/// Where a SQLite journal is, for a connection of the intake's own.
#[derive(Debug, Clone)]
pub(crate) struct JournalFile {
    path: std::path::PathBuf,
    /// `FULL`, `NORMAL` or `EXTRA` (checked when the store was opened).
    synchronous: String,
}

/// The intake's way to the journal: on a SQLite file its own rusqlite
/// connection; otherwise (PostgreSQL, an in-memory journal, a file that could
/// not be opened again) the journal pool, through a connection it keeps.
pub(super) enum JournalWriter {
    Direct(DirectJournal),
    Pool { held: Option<AnyConnection> },
}

impl JournalWriter {
    pub(super) fn open(store: &Store) -> JournalWriter {
        match store.journal_file.as_ref().map(DirectJournal::open) {
            Some(Ok(direct)) => JournalWriter::Direct(direct),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "ingest journal written through the pool");
                JournalWriter::Pool { held: None }
            }
            None => JournalWriter::Pool { held: None },
        }
    }

    /// Commit a group of requests to the journal: all rows or none.
    pub(super) async fn append(&mut self, store: &Store, writer: &str, entries: &[Entry]) -> Result<(), StoreError> {
        match self {
            JournalWriter::Direct(direct) => direct.append(writer, entries),
            JournalWriter::Pool { held } => store.journal_append(held, writer, entries).await,
        }
    }

    /// Drop this writer's rows up to `seq` (applied already).
    pub(super) async fn prune(&mut self, store: &Store, writer: &str, seq: i64) -> Result<(), StoreError> {
        match self {
            JournalWriter::Direct(direct) => direct.prune(writer, seq).map(|_| ()),
            JournalWriter::Pool { .. } => store.journal_prune(writer, seq).await.map(|_| ()),
        }
    }
}

/// The SQLite journal as the intake writes it: one connection, used from the
/// intake's thread only, each call a transaction of its own.
pub(super) struct DirectJournal {
    conn: rusqlite::Connection,
}

/// Drop a writer's applied rows (both ways of writing; SQLite reads `$1` and
/// `$2` as the first and second parameter).
const PRUNE: &str = "DELETE FROM ingest_journal WHERE writer = $1 AND seq <= $2";

const INSERT_ENTRY: &str =
    "INSERT INTO ingest_journal (writer, seq, integration_id, received_at, alerts) VALUES (?1, ?2, ?3, ?4, ?5)";

impl DirectJournal {
    fn open(file: &JournalFile) -> Result<DirectJournal, StoreError> {
        let conn = rusqlite::Connection::open(&file.path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(&format!("PRAGMA synchronous = {}", file.synchronous))?;
        Ok(DirectJournal { conn })
    }

    /// [`Store::journal_append`] on this connection: all rows or none.
    pub(super) fn append(&mut self, writer: &str, entries: &[Entry]) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(INSERT_ENTRY)?;
            for e in entries {
                insert.execute(rusqlite::params![
                    writer,
                    e.seq,
                    e.integration_id,
                    e.received_at.as_millisecond(),
                    e.alerts
                ])?;
            }
        }
        // Dropped without a commit (an error above), it rolls back.
        tx.commit()?;
        metrics::histogram!("klaxon_ingest_write_seconds", "table" => "ingest_journal")
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// [`Store::journal_prune`] on this connection.
    pub(super) fn prune(&mut self, writer: &str, seq: i64) -> Result<usize, StoreError> {
        Ok(self.conn.execute(PRUNE, rusqlite::params![writer, seq])?)
    }
}

/// One journal row to write.
pub(super) struct Entry {
    pub(super) seq: i64,
    pub(super) integration_id: String,
    pub(super) received_at: Timestamp,
    pub(super) alerts: String,
}

/// A journal row not yet applied.
pub(super) struct Leftover {
    pub(super) writer: String,
    pub(super) seq: i64,
    pub(super) integration_id: String,
    pub(super) received_at: Timestamp,
    pub(super) alerts: Vec<AlertInput>,
}

impl Store {
    /// Commit a group of requests to the journal in one transaction.
    ///
    /// On PostgreSQL the intake keeps a connection of its own in `held`
    /// (taken from the journal pool on first use, given up after an error):
    /// a pool checks a connection with a round trip when it hands it out and
    /// again when it takes it back, which tripled the round trips of a write.
    pub(super) async fn journal_append(
        &self,
        held: &mut Option<AnyConnection>,
        writer: &str,
        entries: &[Entry],
    ) -> Result<(), StoreError> {
        let rows = entries
            .iter()
            .map(|e| {
                vec![
                    Val::S(writer.to_string()),
                    Val::I(e.seq),
                    Val::S(e.integration_id.clone()),
                    Val::I(e.received_at.as_millisecond()),
                    Val::S(e.alerts.clone()),
                ]
            })
            .collect();
        // One statement, committed on its own: all rows or none, one round trip.
        let cols = ["writer", "seq", "integration_id", "received_at", "alerts"];
        let started = std::time::Instant::now();
        let query = insert_query(self.backend, "ingest_journal", &cols, rows, "");
        match self.backend {
            Backend::Sqlite => {
                query.execute(&self.journal).await?;
            }
            Backend::Postgres => {
                let conn = match held {
                    Some(conn) => conn,
                    None => held.insert(self.journal.acquire().await?.detach()),
                };
                if let Err(e) = query.execute(&mut *conn).await {
                    // Perhaps broken: the next write takes a fresh one.
                    *held = None;
                    return Err(e.into());
                }
            }
        }
        metrics::histogram!("klaxon_ingest_write_seconds", "table" => "ingest_journal")
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Rows in the ingest journal (accepted requests, applied or not, not yet cleared).
    pub async fn ingest_journal_len(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM ingest_journal")
            .fetch_one(&self.journal)
            .await?)
    }

    /// Drop a writer's rows up to `seq` (applied already).
    pub(super) async fn journal_prune(&self, writer: &str, seq: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(PRUNE)
            .bind(writer.to_string())
            .bind(seq)
            .execute(&self.journal)
            .await?;
        Ok(done.rows_affected())
    }

    /// Drop a writer's rows that are applied.
    pub(super) async fn journal_prune_applied(&self, writer: &str) -> Result<u64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM ingest_applied WHERE writer = $1")
            .bind(writer.to_string())
            .fetch_optional(&self.write)
            .await?;
        match seq {
            Some(seq) => self.journal_prune(writer, seq).await,
            None => Ok(0),
        }
    }

    /// Lock (PostgreSQL) and read the last applied sequence of `writer`
    /// inside an apply transaction.
    pub(super) async fn applied_seq(&self, tx: &mut Transaction<'_, Any>, writer: &str) -> Result<i64, StoreError> {
        sqlx::query("INSERT INTO ingest_applied (writer, seq) VALUES ($1, 0) ON CONFLICT (writer) DO NOTHING")
            .bind(writer.to_string())
            .execute(&mut **tx)
            .await?;
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT seq FROM ingest_applied WHERE writer = $1{lock}"
        )))
        .bind(writer.to_string())
        .fetch_one(&mut **tx)
        .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    pub(super) async fn set_applied_seq(
        &self,
        tx: &mut Transaction<'_, Any>,
        writer: &str,
        seq: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE ingest_applied SET seq = $2 WHERE writer = $1 AND seq < $2")
            .bind(writer.to_string())
            .bind(seq)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// PostgreSQL: hold a session lock named after this writer for as long as
    /// the process lives, on a connection of its own. Other nodes take a
    /// writer whose lock they can get for stopped, and apply its leftovers.
    pub(super) async fn hold_writer_lock(&self, writer: &str) -> Result<Option<AnyConnection>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut conn = self.journal.acquire().await?.detach();
        sqlx::query(WRITER_LOCK)
            .bind(writer.to_string())
            .execute(&mut conn)
            .await?;
        Ok(Some(conn))
    }

    /// Is the writer's process gone (its session lock is free)?
    async fn writer_stopped(&self, conn: &mut AnyConnection, writer: &str) -> Result<bool, StoreError> {
        let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(4242, hashtext($1))")
            .bind(writer.to_string())
            .fetch_one(&mut *conn)
            .await?;
        if free {
            sqlx::query("SELECT pg_advisory_unlock(4242, hashtext($1))")
                .bind(writer.to_string())
                .execute(&mut *conn)
                .await?;
        }
        Ok(free)
    }

    /// Rows of other writers not applied yet, oldest writer first and in
    /// sequence order: on SQLite all of them (one server), on PostgreSQL
    /// those of stopped writers, and of any writer whose rows wait since
    /// before `stuck_before`.
    pub(super) async fn journal_leftovers(
        &self,
        me: &str,
        stuck_before: Timestamp,
        limit: i64,
    ) -> Result<Vec<Leftover>, StoreError> {
        let applied: std::collections::HashMap<String, i64> = sqlx::query("SELECT writer, seq FROM ingest_applied")
            .fetch_all(&self.write)
            .await?
            .iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
            .collect::<Result<_, sqlx::Error>>()?;
        // Other writers with rows, then each one's rows after its applied mark.
        let writers = sqlx::query(
            "SELECT writer, MIN(received_at) AS first FROM ingest_journal WHERE writer <> $1 \
             GROUP BY writer ORDER BY first",
        )
        .bind(me.to_string())
        .fetch_all(&self.journal)
        .await?;
        let mut probe = match (self.backend, writers.is_empty()) {
            (Backend::Postgres, false) => Some(self.journal.acquire().await?),
            _ => None,
        };
        let mut out = Vec::new();
        for w in writers {
            let writer: String = w.try_get(0)?;
            let first: i64 = w.try_get(1)?;
            if let Some(conn) = probe.as_mut()
                && first >= stuck_before.as_millisecond()
                && !self.writer_stopped(conn, &writer).await?
            {
                // A running node's rows: it applies them itself.
                continue;
            }
            let after = applied.get(&writer).copied().unwrap_or(0);
            let rows = sqlx::query(
                "SELECT seq, integration_id, received_at, alerts FROM ingest_journal \
                 WHERE writer = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(writer.clone())
            .bind(after)
            .bind(limit - out.len() as i64)
            .fetch_all(&self.journal)
            .await?;
            if rows.is_empty() {
                // Everything of this writer was applied: its rows can go.
                self.journal_prune(&writer, after).await?;
                continue;
            }
            for r in rows {
                let seq: i64 = r.try_get(0)?;
                let text: String = r.try_get(3)?;
                // Written by this code from `AlertInput`s; should a row ever be
                // unreadable, say so loudly and pass it (applied as nothing)
                // rather than stop every later alert behind it.
                let alerts = serde_json::from_str(&text).unwrap_or_else(|e| {
                    tracing::error!(writer = %writer, seq, error = %e, "journal row is unreadable; skipped");
                    metrics::counter!("klaxon_ingest_dead_total").increment(1);
                    Vec::new()
                });
                out.push(Leftover {
                    writer: writer.clone(),
                    seq,
                    integration_id: r.try_get(1)?,
                    received_at: crate::error::ts(r.try_get(2)?)?,
                    alerts,
                });
            }
            if out.len() as i64 >= limit {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;

    fn entry(seq: i64) -> Entry {
        Entry {
            seq,
            integration_id: "int-1".into(),
            received_at: Timestamp::from_millisecond(1_700_000_000_000 + seq).unwrap(),
            alerts: format!(r#"[{{"seq": {seq}, "text": "quote \" and \u001e"}}]"#),
        }
    }

    #[tokio::test]
    async fn the_intake_writes_a_sqlite_journal_file_directly_all_rows_or_none() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("k.db").display());
        let store = Store::connect(&StoreOptions::new(url)).await.unwrap();
        let file = store.journal_file.clone().expect("a file database has a journal file");
        assert!(file.path.ends_with("k.db-intake"), "{:?}", file.path);
        let mut journal = DirectJournal::open(&file).unwrap();

        journal.append("w-1", &[entry(1), entry(2)]).unwrap();
        assert_eq!(store.ingest_journal_len().await.unwrap(), 2);
        // What the applier of another start would read back (through sqlx).
        let text: String = sqlx::query_scalar("SELECT alerts FROM ingest_journal WHERE seq = 2")
            .fetch_one(&store.journal)
            .await
            .unwrap();
        assert_eq!(text, entry(2).alerts);

        // A group with one row that cannot be written leaves none of its rows.
        sqlx::query(
            "CREATE TRIGGER seq_4_taken BEFORE INSERT ON ingest_journal WHEN NEW.seq = 4 \
             BEGIN SELECT RAISE(ABORT, 'seq 4 is taken'); END",
        )
        .execute(&store.journal)
        .await
        .unwrap();
        let err = journal.append("w-1", &[entry(3), entry(4)]).unwrap_err();
        assert!(err.to_string().contains("seq 4 is taken"), "{err}");
        assert_eq!(store.ingest_journal_len().await.unwrap(), 2, "seq 3 rolled back");
        journal.append("w-1", &[entry(5)]).unwrap();

        assert_eq!(journal.prune("w-1", 2).unwrap(), 2);
        assert_eq!(journal.prune("w-2", 9).unwrap(), 0, "another writer's rows only");
        assert_eq!(store.ingest_journal_len().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn an_in_memory_journal_has_no_file_to_open() {
        let store = Store::connect(&StoreOptions::new("sqlite::memory:")).await.unwrap();
        assert!(store.journal_file.is_none());
    }
}
