-- PostgreSQL drops per-row foreign key checks on incident_alerts and
-- incident_events here (see postgres/0007). SQLite's checks are cheap index
-- probes inside the writer and stay; this migration keeps the versions equal.
SELECT 1;
