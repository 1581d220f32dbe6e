-- Ingest journal: a request's alerts are committed here and answered; the
-- applier then dedups, routes and groups them into incidents. `ingest_applied`
-- records, in the same transaction as each applied batch, the last entry
-- applied of each writer (one writer per server start), so that every
-- accepted request is applied exactly once, also after a crash, and a node's
-- leftover entries can be applied by another node.
CREATE TABLE ingest_journal (
    writer         TEXT   NOT NULL,
    seq            BIGINT NOT NULL,
    integration_id TEXT   NOT NULL,
    received_at    BIGINT NOT NULL,
    alerts         TEXT   NOT NULL,
    PRIMARY KEY (writer, seq)
);
ALTER TABLE ingest_journal ALTER COLUMN alerts SET STORAGE EXTERNAL;

CREATE TABLE ingest_applied (
    writer TEXT   NOT NULL PRIMARY KEY,
    seq    BIGINT NOT NULL
);
