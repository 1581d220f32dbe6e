-- Users (with contact methods and notification rules) and teams, as JSON documents.
CREATE TABLE users (
    id          TEXT    PRIMARY KEY,
    body        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE TABLE teams (
    id          TEXT    PRIMARY KEY,
    body        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
