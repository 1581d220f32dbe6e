-- The ingest journal keeps one row per group commit of the intake instead of
-- one per request: `seq` is the last request's sequence number (the group's
-- requests are the ones before it, consecutively), `received_at` the first
-- request's, and `requests` a JSON array of {integration_id, received_at,
-- alerts}. At one alert per request a group of a dozen requests was a dozen
-- heap tuples and index entries in the WAL that every intake commit flushes;
-- one wider row, compressed with lz4, wrote 822 bytes of WAL per alert against
-- 1,443 (bench/ingest-wal-per-alert.sh, batch 1, 32 connections).
-- `ingest_journal` stays: rows a previous version left there are still
-- applied (and a node of the previous version may still be writing to it).
CREATE TABLE ingest_commits (
    writer      TEXT   NOT NULL,
    seq         BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    requests    TEXT   NOT NULL,
    PRIMARY KEY (writer, seq)
);
DO $$
BEGIN
    ALTER TABLE ingest_commits ALTER COLUMN requests SET COMPRESSION lz4;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'lz4 compression not available (%); ingest_commits.requests keeps pglz', SQLERRM;
END;
$$;
