-- SQLite drops the foreign keys of incident_alerts and incident_events here
-- (PostgreSQL did in 0007); this migration keeps the versions equal.
SELECT 1;
