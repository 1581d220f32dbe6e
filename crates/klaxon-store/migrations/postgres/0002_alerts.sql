-- Alert sources, each with its own ingest key (stored as SHA-256).
CREATE TABLE integrations (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL CONSTRAINT integrations_name_key UNIQUE,
    format      TEXT    NOT NULL,
    key_hash    TEXT    NOT NULL CONSTRAINT integrations_key_hash_key UNIQUE,
    key_prefix  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    rotated_at  BIGINT
);

-- Alerts: one row per (integration, dedup key) episode.
CREATE TABLE alerts (
    pk             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id TEXT    NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    dedup_key      TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    acknowledged   BIGINT  NOT NULL DEFAULT 0,
    suppressed_by  TEXT,
    flapping       BIGINT  NOT NULL DEFAULT 0,
    changes        TEXT    NOT NULL DEFAULT '[]',
    summary        TEXT    NOT NULL,
    severity       TEXT,
    source         TEXT,
    labels         TEXT    NOT NULL,
    annotations    TEXT    NOT NULL,
    links          TEXT    NOT NULL,
    details        TEXT    NOT NULL,
    starts_at      BIGINT  NOT NULL,
    ends_at        BIGINT,
    last_seen_at   BIGINT  NOT NULL,
    receive_count  BIGINT  NOT NULL DEFAULT 1,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);
CREATE INDEX alerts_dedup_idx ON alerts (integration_id, dedup_key, pk);
CREATE UNIQUE INDEX alerts_one_firing_idx ON alerts (integration_id, dedup_key) WHERE status = 'firing';
CREATE INDEX alerts_status_idx ON alerts (status, pk);

-- Which alerts belong to which incident (an alert can join several through `continue` routes).
CREATE TABLE incident_alerts (
    incident_pk BIGINT  NOT NULL REFERENCES incidents (pk),
    alert_pk    BIGINT  NOT NULL REFERENCES alerts (pk) ON DELETE CASCADE,
    route       TEXT    NOT NULL,
    PRIMARY KEY (incident_pk, alert_pk)
);
CREATE INDEX incident_alerts_alert_idx ON incident_alerts (alert_pk);

-- The latest incident of each alert group (route + group key).
CREATE TABLE alert_groups (
    group_key   TEXT    PRIMARY KEY,
    incident_pk BIGINT  NOT NULL REFERENCES incidents (pk),
    updated_at  BIGINT  NOT NULL
);

-- Silences and maintenance windows.
CREATE TABLE silences (
    id          TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL,
    matchers    TEXT    NOT NULL,
    starts_at   BIGINT  NOT NULL,
    ends_at     BIGINT  NOT NULL,
    created_by  TEXT    NOT NULL,
    comment     TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX silences_ends_idx ON silences (ends_at);

-- Routes managed through the API (config routes live in klaxon.yaml).
CREATE TABLE routes (
    name        TEXT    PRIMARY KEY,
    position    BIGINT  NOT NULL,
    body        TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL
);
