-- SQLite drops the foreign keys of incident_alerts and incident_events too, as
-- PostgreSQL did in 0007: the checks were not cheap after all. Measured with
-- `klaxon bench apply --alerts 300000 --batch 100`, 5 interleaved pairs on fresh
-- files: 17.3-18.4 µs of CPU per alert without them against 19.3-22.6 with,
-- 69,000-73,000 alerts/s against 56,000-63,000. The rows are written only by the
-- store, in the transaction that writes (or locks) the incident and alert they
-- name; deleting an integration removes its links explicitly first, and a
-- timeline's incident is never deleted (the timeline is append-only).
--
-- SQLite cannot drop a constraint, so both tables are rebuilt with the same
-- columns, keys, index and triggers; their rows are copied (a store with a
-- million alerts takes a few seconds once, at the upgrade).
CREATE TABLE incident_alerts_0015 (
    incident_pk INTEGER NOT NULL,
    alert_pk    INTEGER NOT NULL,
    route       TEXT    NOT NULL,
    PRIMARY KEY (incident_pk, alert_pk)
);
INSERT INTO incident_alerts_0015 (incident_pk, alert_pk, route)
    SELECT incident_pk, alert_pk, route FROM incident_alerts;
DROP TABLE incident_alerts;
ALTER TABLE incident_alerts_0015 RENAME TO incident_alerts;
CREATE INDEX incident_alerts_alert_idx ON incident_alerts (alert_pk);

CREATE TABLE incident_events_0015 (
    incident_pk INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL,
    PRIMARY KEY (incident_pk, seq)
);
INSERT INTO incident_events_0015 (incident_pk, seq, at, actor, type, payload, prev_hash, hash)
    SELECT incident_pk, seq, at, actor, type, payload, prev_hash, hash FROM incident_events;
-- Dropping the table drops its triggers (and fires none).
DROP TABLE incident_events;
ALTER TABLE incident_events_0015 RENAME TO incident_events;
CREATE TRIGGER incident_events_no_update BEFORE UPDATE ON incident_events
BEGIN SELECT RAISE(ABORT, 'incident_events is append-only'); END;
CREATE TRIGGER incident_events_no_delete BEFORE DELETE ON incident_events
BEGIN SELECT RAISE(ABORT, 'incident_events is append-only'); END;
