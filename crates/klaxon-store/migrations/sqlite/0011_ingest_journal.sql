-- Ingest journal: a request's alerts are committed to the journal (on SQLite
-- a second file beside this one, `<file>-intake`, so accepting never waits
-- for the write lock of this file) and answered; the applier then dedups,
-- routes and groups them into incidents. This row records, in the same
-- transaction as each applied batch, the last journal entry applied of each
-- writer (one writer per server start), so that every accepted request is
-- applied exactly once, also after a crash.
CREATE TABLE ingest_applied (
    writer TEXT   NOT NULL PRIMARY KEY,
    seq    BIGINT NOT NULL
);
