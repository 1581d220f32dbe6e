-- Stakeholder messages (communication rules) go through the outbox next to
-- pages. A page is dropped once its incident is resolved; a message (the
-- resolution notice above all) is always delivered.
ALTER TABLE notifications ADD COLUMN purpose TEXT NOT NULL DEFAULT 'page';

-- What channels remember about a provider: the Slack message that shows an
-- incident in a channel (to update it and thread replies under it), the
-- per-incident Slack channel. Key → JSON value.
CREATE TABLE channel_state (
    key        TEXT   NOT NULL PRIMARY KEY,
    value      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);
