-- On-call schedules: the specification as JSON, overrides beside it.
CREATE TABLE schedules (
    id          TEXT    PRIMARY KEY,
    body        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE schedule_overrides (
    id          TEXT    PRIMARY KEY,
    schedule_id TEXT    NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    role        TEXT    NOT NULL,
    user_name   TEXT    NOT NULL,
    starts_at   INTEGER NOT NULL,
    ends_at     INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX schedule_overrides_idx ON schedule_overrides (schedule_id, ends_at);
