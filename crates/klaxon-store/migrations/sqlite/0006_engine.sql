-- Durable timers of the engine (escalation steps, deadlines, cadence reminders).
-- A row is claimed by setting a lease; the step it fires and the change it makes
-- commit together, so a step fires exactly once whichever node runs it.
CREATE TABLE timers (
    key          TEXT    PRIMARY KEY,
    kind         TEXT    NOT NULL,
    incident_pk  INTEGER,
    step         INTEGER  NOT NULL DEFAULT 0,
    forced       INTEGER  NOT NULL DEFAULT 0,
    page         TEXT,
    -- The time a timer tracks (the update due for a cadence reminder).
    target_at    INTEGER,
    due_at       INTEGER,
    lease_owner  TEXT,
    lease_until  INTEGER,
    attempts     INTEGER  NOT NULL DEFAULT 0,
    created_at   INTEGER  NOT NULL
);
CREATE INDEX timers_due_idx ON timers (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX timers_lease_idx ON timers (lease_until) WHERE lease_owner IS NOT NULL;

-- The notification outbox: one row per notification and target, delivered at
-- least once; the idempotency key lets receivers drop repeats.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    idempotency_key TEXT    NOT NULL CONSTRAINT notifications_key_key UNIQUE,
    incident_pk     INTEGER  NOT NULL REFERENCES incidents (pk),
    incident_id     TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    contact         TEXT    NOT NULL,
    address         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    cancel_on_ack   INTEGER  NOT NULL DEFAULT 0,
    attempts        INTEGER  NOT NULL DEFAULT 0,
    due_at          INTEGER  NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER  NOT NULL,
    delivered_at    INTEGER
);
CREATE INDEX notifications_due_idx ON notifications (due_at) WHERE state = 'pending';
CREATE INDEX notifications_lease_idx ON notifications (lease_until) WHERE lease_owner IS NOT NULL;
CREATE INDEX notifications_state_idx ON notifications (state, id);
CREATE INDEX notifications_incident_idx ON notifications (incident_pk, id);
