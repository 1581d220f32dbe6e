-- PostgreSQL's ingest journal gains ingest_commits here. On SQLite the journal
-- is the `<file>-intake` database, whose tables the server creates itself
-- (ingest/journal.rs); this migration keeps the versions equal.
SELECT 1;
