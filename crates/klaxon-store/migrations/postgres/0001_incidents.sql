-- Incidents: the projection of their timeline events (body = full JSON).
CREATE TABLE incidents (
    pk          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT    NOT NULL CONSTRAINT incidents_id_key UNIQUE,
    title       TEXT    NOT NULL,
    severity    TEXT    NOT NULL,
    category    TEXT,
    status      TEXT    NOT NULL,
    private     BIGINT  NOT NULL DEFAULT 0,
    started_at  BIGINT  NOT NULL,
    declared_at BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    version     BIGINT  NOT NULL,
    head_hash   TEXT    NOT NULL,
    body        TEXT    NOT NULL
);
CREATE INDEX incidents_status_idx ON incidents (status, pk);
CREATE INDEX incidents_severity_idx ON incidents (severity, pk);
CREATE INDEX incidents_started_idx ON incidents (started_at);

CREATE TABLE incident_services (
    incident_pk BIGINT NOT NULL REFERENCES incidents (pk),
    service     TEXT   NOT NULL,
    PRIMARY KEY (incident_pk, service)
);
CREATE INDEX incident_services_service_idx ON incident_services (service, incident_pk);

-- The timeline: append-only, hash-chained per incident.
CREATE TABLE incident_events (
    incident_pk BIGINT NOT NULL REFERENCES incidents (pk),
    seq         BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    actor       TEXT   NOT NULL,
    type        TEXT   NOT NULL,
    payload     TEXT   NOT NULL,
    prev_hash   TEXT   NOT NULL,
    hash        TEXT   NOT NULL,
    PRIMARY KEY (incident_pk, seq)
);
CREATE FUNCTION klaxon_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER incident_events_append_only BEFORE UPDATE OR DELETE ON incident_events
FOR EACH ROW EXECUTE FUNCTION klaxon_append_only();

-- Per-scope (per-day by default) incident number counters.
CREATE TABLE id_counters (
    scope TEXT   PRIMARY KEY,
    last  BIGINT NOT NULL
);

-- API tokens, stored as SHA-256 of the secret.
CREATE TABLE api_tokens (
    id           TEXT   PRIMARY KEY,
    name         TEXT   NOT NULL,
    role         TEXT   NOT NULL,
    prefix       TEXT   NOT NULL,
    secret_hash  TEXT   NOT NULL CONSTRAINT api_tokens_hash_key UNIQUE,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
