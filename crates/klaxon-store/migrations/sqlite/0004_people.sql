-- Users (with contact methods and notification rules) and teams, as JSON documents.
CREATE TABLE users (
    id          TEXT    PRIMARY KEY,
    body        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE teams (
    id          TEXT    PRIMARY KEY,
    body        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
