-- Incidents: the projection of their timeline events (body = full JSON).
CREATE TABLE incidents (
    pk          INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL CONSTRAINT incidents_id_key UNIQUE,
    title       TEXT    NOT NULL,
    severity    TEXT    NOT NULL,
    category    TEXT,
    status      TEXT    NOT NULL,
    private     INTEGER NOT NULL DEFAULT 0,
    started_at  INTEGER NOT NULL,
    declared_at INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    head_hash   TEXT    NOT NULL,
    body        TEXT    NOT NULL
);
CREATE INDEX incidents_status_idx ON incidents (status, pk);
CREATE INDEX incidents_severity_idx ON incidents (severity, pk);
CREATE INDEX incidents_started_idx ON incidents (started_at);

CREATE TABLE incident_services (
    incident_pk INTEGER NOT NULL REFERENCES incidents (pk),
    service     TEXT    NOT NULL,
    PRIMARY KEY (incident_pk, service)
);
CREATE INDEX incident_services_service_idx ON incident_services (service, incident_pk);

-- The timeline: append-only, hash-chained per incident.
CREATE TABLE incident_events (
    incident_pk INTEGER NOT NULL REFERENCES incidents (pk),
    seq         INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL,
    PRIMARY KEY (incident_pk, seq)
);
CREATE TRIGGER incident_events_no_update BEFORE UPDATE ON incident_events
BEGIN SELECT RAISE(ABORT, 'incident_events is append-only'); END;
CREATE TRIGGER incident_events_no_delete BEFORE DELETE ON incident_events
BEGIN SELECT RAISE(ABORT, 'incident_events is append-only'); END;

-- Per-scope (per-day by default) incident number counters.
CREATE TABLE id_counters (
    scope TEXT    PRIMARY KEY,
    last  INTEGER NOT NULL
);

-- API tokens, stored as SHA-256 of the secret.
CREATE TABLE api_tokens (
    id           TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    secret_hash  TEXT    NOT NULL CONSTRAINT api_tokens_hash_key UNIQUE,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
