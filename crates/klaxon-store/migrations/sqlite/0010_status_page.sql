-- Status page: component statuses set by hand, and subscribers.
CREATE TABLE component_overrides (
    id         TEXT   NOT NULL PRIMARY KEY,
    body       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Subscribers of the status page. Email subscribers confirm by a link
-- (double opt-in); every message carries an unsubscribe link with the token,
-- which only confirms or ends this one subscription.
CREATE TABLE subscribers (
    id           TEXT   NOT NULL PRIMARY KEY,
    kind         TEXT   NOT NULL,
    address      TEXT   NOT NULL,
    token        TEXT   NOT NULL CONSTRAINT subscribers_token_key UNIQUE,
    state        TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    confirmed_at BIGINT,
    CONSTRAINT subscribers_address_key UNIQUE (kind, address)
);
