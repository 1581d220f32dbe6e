-- On-call schedules: the specification as JSON, overrides beside it.
CREATE TABLE schedules (
    id          TEXT    PRIMARY KEY,
    body        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE TABLE schedule_overrides (
    id          TEXT    PRIMARY KEY,
    schedule_id TEXT    NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    role        TEXT    NOT NULL,
    user_name   TEXT    NOT NULL,
    starts_at   BIGINT  NOT NULL,
    ends_at     BIGINT  NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX schedule_overrides_idx ON schedule_overrides (schedule_id, ends_at);
