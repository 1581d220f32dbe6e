-- Escalation policies, as JSON documents.
CREATE TABLE escalation_policies (
    id          TEXT    PRIMARY KEY,
    body        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
