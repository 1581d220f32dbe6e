-- Status page: component statuses set by hand, and subscribers.
CREATE TABLE component_overrides (
    id         TEXT   NOT NULL PRIMARY KEY,
    body       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Email subscribers confirm by a link (double opt-in); every message carries
-- an unsubscribe link. The token in those links is stored hashed.
CREATE TABLE subscribers (
    id           TEXT   NOT NULL PRIMARY KEY,
    kind         TEXT   NOT NULL,
    address      TEXT   NOT NULL,
    token_hash   TEXT   NOT NULL CONSTRAINT subscribers_token_key UNIQUE,
    state        TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    confirmed_at BIGINT,
    CONSTRAINT subscribers_address_key UNIQUE (kind, address)
);
