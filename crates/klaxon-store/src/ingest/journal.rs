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
//! A row is one group commit of the intake (`ingest_commits`): the requests
//! committed together, consecutive in sequence, as one JSON array; its `seq`
//! is the last one's. One wide row instead of one per request is less to
//! write and to flush: at one alert per request, groups of about a dozen,
//! PostgreSQL wrote a heap tuple and an index entry per request into the WAL
//! each commit flushes. Rows of a previous version (`ingest_journal`, one per
//! request) are still read and applied.
//!
//! On SQLite the journal is a second file (`<file>-intake`) so that accepting
//! never waits for the main file's write lock; on PostgreSQL it is a table of
//! the database.
//!
//! On SQLite the intake writes the file itself, on its own thread, through a
//! rusqlite connection ([`DirectJournal`]): through sqlx each group commit went
//! to a worker thread and back, and with one-alert requests those hand-offs,
//! not the disk, set the pace (measured: 81 → 72 µs of server CPU per request,
//! 13–14k → 15–16k requests/s, one alert each, 32 connections on 2 cores).

use jiff::Timestamp;
use klaxon_domain::alert::AlertInput;
use serde::{Deserialize, Serialize};
use sqlx::{Any, AnyConnection, AnyPool, Row, Transaction};

use crate::{Backend, Store, StoreError};

/// The journal file's tables (PostgreSQL's are migrations 0011 and 0016).
const SQLITE_SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS ingest_commits (
    writer      TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    requests    TEXT    NOT NULL,
    PRIMARY KEY (writer, seq)
)",
    // Written by previous versions, one row per request; read for leftovers.
    "CREATE TABLE IF NOT EXISTS ingest_journal (
    writer         TEXT    NOT NULL,
    seq            INTEGER NOT NULL,
    integration_id TEXT    NOT NULL,
    received_at    INTEGER NOT NULL,
    alerts         TEXT    NOT NULL,
    PRIMARY KEY (writer, seq)
)",
];

/// One request as a journal row keeps it (written).
#[derive(Serialize)]
struct RequestOut<'a> {
    integration_id: &'a str,
    received_at: i64,
    alerts: &'a [AlertInput],
}

/// One request as a journal row keeps it (read back).
#[derive(Deserialize)]
struct RequestIn {
    integration_id: String,
    received_at: i64,
    alerts: Vec<AlertInput>,
}

/// A request's part of a journal row, made by its handler (not by the intake,
/// which commits one group at a time).
pub(super) fn request_text(
    integration_id: &str,
    received_at: Timestamp,
    alerts: &[AlertInput],
) -> Result<String, serde_json::Error> {
    serde_json::to_string(&RequestOut {
        integration_id,
        received_at: received_at.as_millisecond(),
        alerts,
    })
}

/// One group commit of the intake: a journal row.
pub(super) struct Commit {
    /// The last request's sequence number; the others come just before it.
    pub(super) seq: i64,
    /// When the first request was received, in ms (a writer's oldest row
    /// tells whether it is stuck).
    pub(super) received_at: i64,
    /// The requests' texts ([`request_text`]) as one JSON array.
    pub(super) requests: String,
}

impl Commit {
    /// The row of requests `first_seq`, `first_seq + 1`, … in that order.
    pub(super) fn new<'a>(
        first_seq: i64,
        received_at: Timestamp,
        texts: impl ExactSizeIterator<Item = &'a str>,
    ) -> Commit {
        let n = texts.len() as i64;
        let mut requests = String::from("[");
        for (i, text) in texts.enumerate() {
            if i > 0 {
                requests.push(',');
            }
            requests.push_str(text);
        }
        requests.push(']');
        Commit {
            seq: first_seq + n - 1,
            received_at: received_at.as_millisecond(),
            requests,
        }
    }
}

/// The requests of an `ingest_commits` row whose sequence number is after
/// `after`. Written by this code; should a row ever be unreadable, say so
/// loudly and pass it (applied as nothing) rather than stop every later alert
/// behind it.
fn requests_of(writer: &str, seq: i64, text: &str, after: i64) -> Result<Vec<Leftover>, StoreError> {
    let requests = match serde_json::from_str::<Vec<RequestIn>>(text) {
        Ok(requests) if !requests.is_empty() => requests,
        outcome => {
            let error = outcome
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "no requests".into());
            tracing::error!(writer, seq, error, "journal row is unreadable; skipped");
            metrics::counter!("klaxon_ingest_dead_total").increment(1);
            return Ok(vec![Leftover {
                writer: writer.to_string(),
                seq,
                integration_id: String::new(),
                received_at: Timestamp::UNIX_EPOCH,
                alerts: Vec::new(),
            }]);
        }
    };
    let first = seq - requests.len() as i64 + 1;
    requests
        .into_iter()
        .zip(first..)
        .filter(|(_, seq)| *seq > after)
        .map(|(r, seq)| {
            Ok(Leftover {
                writer: writer.to_string(),
                seq,
                integration_id: r.integration_id,
                received_at: crate::error::ts(r.received_at)?,
                alerts: r.alerts,
            })
        })
        .collect()
}

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
    for table in SQLITE_SCHEMA {
        sqlx::query(table).execute(pool).await?;
    }
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

    /// Commit a group of requests to the journal.
    pub(super) async fn append(&mut self, store: &Store, writer: &str, commit: &Commit) -> Result<(), StoreError> {
        match self {
            JournalWriter::Direct(direct) => direct.append(writer, commit),
            JournalWriter::Pool { held } => store.journal_append(held, writer, commit).await,
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
/// `$2` as the first and second parameter). A row goes once its last request
/// is applied.
const PRUNE: &str = "DELETE FROM ingest_commits WHERE writer = $1 AND seq <= $2";
/// The same in the rows of previous versions.
const PRUNE_LEGACY: &str = "DELETE FROM ingest_journal WHERE writer = $1 AND seq <= $2";

/// Journal rows read at once when applying leftovers.
const LEFTOVER_PAGE: i64 = 16;

const INSERT_COMMIT: &str = "INSERT INTO ingest_commits (writer, seq, received_at, requests) VALUES ($1, $2, $3, $4)";

impl DirectJournal {
    fn open(file: &JournalFile) -> Result<DirectJournal, StoreError> {
        let conn = rusqlite::Connection::open(&file.path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(&format!("PRAGMA synchronous = {}", file.synchronous))?;
        Ok(DirectJournal { conn })
    }

    /// [`Store::journal_append`] on this connection.
    pub(super) fn append(&mut self, writer: &str, commit: &Commit) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        self.conn.prepare_cached(INSERT_COMMIT)?.execute(rusqlite::params![
            writer,
            commit.seq,
            commit.received_at,
            commit.requests
        ])?;
        metrics::histogram!("klaxon_ingest_write_seconds", "table" => "ingest_journal")
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// [`Store::journal_prune`] on this connection.
    pub(super) fn prune(&mut self, writer: &str, seq: i64) -> Result<usize, StoreError> {
        Ok(self.conn.execute(PRUNE, rusqlite::params![writer, seq])?)
    }
}

/// A journaled request not yet applied.
pub(super) struct Leftover {
    pub(super) writer: String,
    pub(super) seq: i64,
    pub(super) integration_id: String,
    pub(super) received_at: Timestamp,
    pub(super) alerts: Vec<AlertInput>,
}

impl Store {
    /// Commit a group of requests to the journal: one row, one statement.
    ///
    /// On PostgreSQL the intake keeps a connection of its own in `held`
    /// (taken from the journal pool on first use, given up after an error):
    /// a pool checks a connection with a round trip when it hands it out and
    /// again when it takes it back, which tripled the round trips of a write.
    pub(super) async fn journal_append(
        &self,
        held: &mut Option<AnyConnection>,
        writer: &str,
        commit: &Commit,
    ) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let query = sqlx::query(INSERT_COMMIT)
            .bind(writer)
            .bind(commit.seq)
            .bind(commit.received_at)
            .bind(commit.requests.as_str());
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

    /// Rows in the ingest journal (group commits of accepted requests, applied
    /// or not, not yet cleared; and rows of previous versions).
    pub async fn ingest_journal_len(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT (SELECT COUNT(*) FROM ingest_commits) + (SELECT COUNT(*) FROM ingest_journal)")
                .fetch_one(&self.journal)
                .await?,
        )
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

    /// Drop a writer's rows that are applied, also those of previous versions.
    pub(super) async fn journal_prune_applied(&self, writer: &str) -> Result<u64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM ingest_applied WHERE writer = $1")
            .bind(writer.to_string())
            .fetch_optional(&self.write)
            .await?;
        match seq {
            Some(seq) => self.journal_prune_all(writer, seq).await,
            None => Ok(0),
        }
    }

    /// [`Store::journal_prune`], also in the rows of previous versions.
    async fn journal_prune_all(&self, writer: &str, seq: i64) -> Result<u64, StoreError> {
        let legacy = sqlx::query(PRUNE_LEGACY)
            .bind(writer.to_string())
            .bind(seq)
            .execute(&self.journal)
            .await?;
        Ok(self.journal_prune(writer, seq).await? + legacy.rows_affected())
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
            "SELECT writer, MIN(received_at) AS first FROM \
             (SELECT writer, received_at FROM ingest_commits WHERE writer <> $1 \
              UNION ALL SELECT writer, received_at FROM ingest_journal WHERE writer <> $1) AS w \
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
            // A row holds up to 1,024 requests (and 16 MiB): a few at a time,
            // until `limit` requests are read.
            let mut rows = Vec::new();
            let mut from = after;
            while ((out.len() + rows.len()) as i64) < limit {
                let page = sqlx::query(
                    "SELECT seq, requests FROM ingest_commits WHERE writer = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(writer.clone())
                .bind(from)
                .bind(LEFTOVER_PAGE)
                .fetch_all(&self.journal)
                .await?;
                let last_page = (page.len() as i64) < LEFTOVER_PAGE;
                for r in page {
                    from = r.try_get(0)?;
                    rows.extend(requests_of(&writer, from, &r.try_get::<String, _>(1)?, after)?);
                }
                if last_page {
                    break;
                }
            }
            let left = (limit - (out.len() + rows.len()) as i64).max(0);
            rows.extend(self.legacy_leftovers(&writer, after, left).await?);
            if rows.is_empty() {
                // Everything of this writer was applied: its rows can go.
                self.journal_prune_all(&writer, after).await?;
                continue;
            }
            // One writer writes one kind of row; in sequence order either way.
            rows.sort_by_key(|r| r.seq);
            out.extend(rows);
            if out.len() as i64 >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// A writer's rows of a previous version (one request each) after `after`.
    async fn legacy_leftovers(&self, writer: &str, after: i64, limit: i64) -> Result<Vec<Leftover>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, integration_id, received_at, alerts FROM ingest_journal \
             WHERE writer = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(writer.to_string())
        .bind(after)
        .bind(limit)
        .fetch_all(&self.journal)
        .await?;
        rows.iter()
            .map(|r| {
                let seq: i64 = r.try_get(0)?;
                let text: String = r.try_get(3)?;
                let alerts = serde_json::from_str(&text).unwrap_or_else(|e| {
                    tracing::error!(writer, seq, error = %e, "journal row is unreadable; skipped");
                    metrics::counter!("klaxon_ingest_dead_total").increment(1);
                    Vec::new()
                });
                Ok(Leftover {
                    writer: writer.to_string(),
                    seq,
                    integration_id: r.try_get(1)?,
                    received_at: crate::error::ts(r.try_get(2)?)?,
                    alerts,
                })
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use klaxon_domain::alert::AlertAction;

    use super::*;
    use crate::StoreOptions;

    /// A firing alert keyed `key` (its summary quotes and escapes).
    pub(crate) fn alert(key: &str) -> AlertInput {
        AlertInput {
            action: AlertAction::Trigger,
            dedup_key: key.into(),
            summary: format!("quote \" and \u{1e} in {key}"),
            severity: Some("critical".into()),
            source: None,
            labels: [("alertname".to_string(), key.to_string())].into(),
            annotations: Default::default(),
            starts_at: None,
            ends_at: None,
            links: Vec::new(),
            group_key: None,
            details: serde_json::json!({"n": 1}),
        }
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_700_000_000_000 + ms).unwrap()
    }

    /// A commit of one-alert requests `first_seq`, … keyed `a<seq>`, of integration `int-<seq>`.
    fn commit(first_seq: i64, n: i64) -> Commit {
        let texts: Vec<String> = (first_seq..first_seq + n)
            .map(|seq| request_text(&format!("int-{seq}"), at(seq), &[alert(&format!("a{seq}"))]).unwrap())
            .collect();
        Commit::new(first_seq, at(first_seq), texts.iter().map(String::as_str))
    }

    #[test]
    fn a_commit_is_its_requests_in_sequence_and_reads_back_after_the_applied_mark() {
        let c = commit(7, 3);
        assert_eq!(c.seq, 9, "the last request's");
        assert_eq!(c.received_at, at(7).as_millisecond(), "the first request's");
        let all = requests_of("w-1", c.seq, &c.requests, 0).unwrap();
        let seqs: Vec<i64> = all.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [7, 8, 9]);
        assert_eq!(all[1].integration_id, "int-8");
        assert_eq!(all[1].received_at, at(8));
        assert_eq!(all[1].alerts, [alert("a8")]);
        let rest = requests_of("w-1", c.seq, &c.requests, 8).unwrap();
        assert_eq!(
            rest.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [9],
            "7 and 8 are applied"
        );
        assert!(requests_of("w-1", c.seq, &c.requests, 9).unwrap().is_empty());
    }

    #[test]
    fn an_unreadable_row_is_passed_as_one_empty_request_at_its_sequence() {
        for text in ["not json", "[]", r#"[{"integration_id": 5}]"#] {
            let rows = requests_of("w-1", 12, text, 3).unwrap();
            assert_eq!(rows.len(), 1, "{text}");
            assert_eq!(rows[0].seq, 12, "{text}: the applied mark moves past it");
            assert!(rows[0].alerts.is_empty(), "{text}");
        }
    }

    #[tokio::test]
    async fn the_intake_writes_a_sqlite_journal_file_directly_a_row_per_commit() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("k.db").display());
        let store = Store::connect(&StoreOptions::new(url)).await.unwrap();
        let file = store.journal_file.clone().expect("a file database has a journal file");
        assert!(file.path.ends_with("k.db-intake"), "{:?}", file.path);
        let mut journal = DirectJournal::open(&file).unwrap();

        journal.append("w-1", &commit(1, 2)).unwrap();
        journal.append("w-1", &commit(3, 1)).unwrap();
        assert_eq!(store.ingest_journal_len().await.unwrap(), 2, "a row per commit");
        // What another start reads back (through sqlx), after w-1's applied mark.
        sqlx::query("INSERT INTO ingest_applied (writer, seq) VALUES ('w-1', 1)")
            .execute(&store.write)
            .await
            .unwrap();
        let left = store.journal_leftovers("w-me", at(0), 100).await.unwrap();
        let got: Vec<(i64, &str, &str)> = left
            .iter()
            .map(|r| (r.seq, r.integration_id.as_str(), r.alerts[0].dedup_key.as_str()))
            .collect();
        assert_eq!(got, [(2, "int-2", "a2"), (3, "int-3", "a3")]);

        // A commit that cannot be written leaves nothing.
        sqlx::query(
            "CREATE TRIGGER seq_5_taken BEFORE INSERT ON ingest_commits WHEN NEW.seq = 5 \
             BEGIN SELECT RAISE(ABORT, 'seq 5 is taken'); END",
        )
        .execute(&store.journal)
        .await
        .unwrap();
        let err = journal.append("w-1", &commit(4, 2)).unwrap_err();
        assert!(err.to_string().contains("seq 5 is taken"), "{err}");
        assert_eq!(store.ingest_journal_len().await.unwrap(), 2);

        // A row goes once its last request is applied.
        assert_eq!(journal.prune("w-1", 2).unwrap(), 1);
        assert_eq!(journal.prune("w-2", 9).unwrap(), 0, "another writer's rows only");
        assert_eq!(store.ingest_journal_len().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn leftovers_are_read_a_few_rows_at_a_time_up_to_the_limit_in_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("k.db").display());
        let store = Store::connect(&StoreOptions::new(url)).await.unwrap();
        let mut journal = DirectJournal::open(store.journal_file.as_ref().unwrap()).unwrap();
        // 40 rows of 3 requests: seq 1..=120.
        for row in 0..40 {
            journal.append("w-1", &commit(row * 3 + 1, 3)).unwrap();
        }
        sqlx::query("INSERT INTO ingest_applied (writer, seq) VALUES ('w-1', 4)")
            .execute(&store.write)
            .await
            .unwrap();
        let left = store.journal_leftovers("w-me", at(0), 50).await.unwrap();
        let seqs: Vec<i64> = left.iter().map(|r| r.seq).collect();
        assert_eq!(seqs[0], 5, "after the applied mark, also inside a row");
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "in sequence: {seqs:?}");
        assert!(seqs.len() >= 50, "up to the limit: {}", seqs.len());
        assert!(
            seqs.len() < 50 + 3 * LEFTOVER_PAGE as usize,
            "a page past it at most: {}",
            seqs.len()
        );
        let all = store.journal_leftovers("w-me", at(0), 1_000).await.unwrap();
        assert_eq!(all.len(), 116, "every row read when the limit allows");
        assert_eq!(all.last().map(|r| r.seq), Some(120));
    }

    #[tokio::test]
    async fn an_in_memory_journal_has_no_file_to_open() {
        let store = Store::connect(&StoreOptions::new("sqlite::memory:")).await.unwrap();
        assert!(store.journal_file.is_none());
    }
}
