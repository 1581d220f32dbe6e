#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! One integration-test binary: the real server on port 0, real SQLite files
//! and a real PostgreSQL. Every test in `both!` runs on both backends.
//!
//! PostgreSQL: `KLAXON_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! If it cannot be reached the PostgreSQL tests FAIL; they never skip.

mod support;

mod alertmanager;
mod api_auth;
mod api_incidents;
mod api_input;
mod bench;
mod cli;
mod communication;
mod email;
mod failover;
mod fake_providers;
mod fake_slack;
mod ingest;
mod ingest_crash;
mod ntfy;
mod paging;
mod probes;
mod providers;
mod receiver;
mod schedules;
mod slack;
mod status_page;
mod templates;
mod timeline;
