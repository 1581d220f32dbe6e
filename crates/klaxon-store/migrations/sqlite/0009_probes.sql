-- Health checks (probes). Raw results are kept 48 hours; compaction folds
-- them into hourly and daily rollups (kept 90 and 400 days) first.
CREATE TABLE probe_results (
    pk         INTEGER PRIMARY KEY,
    check_name TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    outcome    TEXT    NOT NULL,
    latency_ms INTEGER NOT NULL,
    message    TEXT    NOT NULL,
    rolled     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX probe_results_check_idx ON probe_results (check_name, at);
CREATE INDEX probe_results_rolled_idx ON probe_results (rolled, at);

-- period: 'hour' or 'day'; start: the period's first millisecond (UTC).
CREATE TABLE probe_rollups (
    check_name  TEXT    NOT NULL,
    period      TEXT    NOT NULL,
    start       INTEGER NOT NULL,
    total       INTEGER NOT NULL,
    ok          INTEGER NOT NULL,
    degraded    INTEGER NOT NULL,
    down        INTEGER NOT NULL,
    latency_sum INTEGER NOT NULL,
    latency_max INTEGER NOT NULL,
    PRIMARY KEY (check_name, period, start)
);

-- The state of each check: up/down/unknown with its counters, the last
-- result, and where it belongs (status page component, service).
CREATE TABLE probe_state (
    check_name    TEXT    PRIMARY KEY,
    kind          TEXT    NOT NULL,
    component     TEXT,
    service       TEXT,
    state         TEXT    NOT NULL,
    failures      INTEGER NOT NULL DEFAULT 0,
    successes     INTEGER NOT NULL DEFAULT 0,
    failing_since INTEGER,
    changed_at    INTEGER,
    last_at       INTEGER,
    last_outcome  TEXT,
    last_latency  INTEGER,
    last_message  TEXT
);
