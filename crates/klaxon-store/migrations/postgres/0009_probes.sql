-- Health checks (probes). Raw results are kept 48 hours; compaction folds
-- them into hourly and daily rollups (kept 90 and 400 days) first.
CREATE TABLE probe_results (
    pk         BIGSERIAL PRIMARY KEY,
    check_name TEXT    NOT NULL,
    at         BIGINT NOT NULL,
    outcome    TEXT    NOT NULL,
    latency_ms BIGINT NOT NULL,
    message    TEXT    NOT NULL,
    rolled     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX probe_results_check_idx ON probe_results (check_name, at);
CREATE INDEX probe_results_rolled_idx ON probe_results (rolled, at);

-- period: 'hour' or 'day'; start: the period's first millisecond (UTC).
CREATE TABLE probe_rollups (
    check_name  TEXT    NOT NULL,
    period      TEXT    NOT NULL,
    start       BIGINT NOT NULL,
    total       BIGINT NOT NULL,
    ok          BIGINT NOT NULL,
    degraded    BIGINT NOT NULL,
    down        BIGINT NOT NULL,
    latency_sum BIGINT NOT NULL,
    latency_max BIGINT NOT NULL,
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
    failures      BIGINT NOT NULL DEFAULT 0,
    successes     BIGINT NOT NULL DEFAULT 0,
    failing_since BIGINT,
    changed_at    BIGINT,
    last_at       BIGINT,
    last_outcome  TEXT,
    last_latency  BIGINT,
    last_message  TEXT
);
