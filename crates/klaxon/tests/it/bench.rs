//! `klaxon bench ingest` through the real binary: rounds, medians, and new
//! alerts in every round.

use std::process::Command;

use sqlx::Row;

use crate::cli::{BIN, serve_env};

/// The number after `name=` in a report line.
fn field(line: &str, name: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(name))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

/// `klaxon bench ingest` with `target` (where the load goes), 2 rounds of a
/// small load (batch 10, 4 connections, 1 s); its stdout, once it succeeded.
fn small_bench(target: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["bench", "ingest"])
        .args(target)
        .args([
            "--batch",
            "10",
            "--connections",
            "4",
            "--duration",
            "1s",
            "--rounds",
            "2",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn bench_ingest_rounds_send_new_alerts_and_print_medians() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let stdout = small_bench(&["--serve", &url]);
    assert!(
        stdout.contains("-- round 1 of 2") && stdout.contains("-- round 2 of 2"),
        "{stdout}"
    );
    let rounds: Vec<&str> = stdout.lines().filter(|l| l.starts_with("klaxon (sqlite)")).collect();
    assert_eq!(rounds.len(), 2, "{stdout}");
    for l in &rounds {
        assert_eq!(field(l, "errors="), 0, "{l}");
        assert!(field(l, "alerts=") > 0, "{l}");
    }
    let median = stdout
        .lines()
        .find(|l| l.starts_with("median of 2 rounds: klaxon "))
        .unwrap_or_else(|| panic!("no medians in {stdout}"));
    assert!(median.contains("accepted and applied"), "{median}");
    // With --serve the load and the server share a process: no CPU figure.
    assert!(stdout.contains("not measured with --serve"), "{stdout}");
    assert!(!stdout.lines().any(|l| l.starts_with("klaxon server CPU")), "{stdout}");
    assert!(!median.contains("CPU"), "{median}");

    // Every alert of both rounds is stored once: the second round sent new
    // alerts, not repeats of the first round's.
    let sent: u64 = rounds.iter().map(|l| field(l, "alerts=")).sum();
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let row = sqlx::query("SELECT COUNT(*), MAX(receive_count) FROM alerts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(row.get::<i64, _>(0) as u64, sent);
    assert_eq!(row.get::<i64, _>(1), 1, "an alert was sent twice");
}

/// Against a real `klaxon serve` and a real Alertmanager, each side's server
/// CPU per alert is reported (from its `process_cpu_seconds_total`), per round
/// and as a median; every round has an Alertmanager of its own, and Klaxon is
/// idle during its load.
#[test]
fn bench_ingest_reports_each_servers_cpu_per_alert() {
    const TOKEN: &str = "kx_bench_cpu_admin_token_0123456789";
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("klaxon.yaml");
    std::fs::write(&config, "ingest:\n  rate_limit_per_second: 0\n").unwrap();
    let db = format!("sqlite://{}", dir.path().join("cpu.db").display());
    let server = serve_env(
        dir.path(),
        Some(&db),
        Some(TOKEN),
        &["--config", config.to_str().unwrap()],
        &[],
    );
    let stdout = small_bench(&["--url", &server.url, "--token", TOKEN, "--compare-alertmanager"]);
    // "klaxon server CPU            0.81s of CPU: 52.3 µs per alert"
    let per_alert = |prefix: &str| -> Vec<f64> {
        stdout
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| {
                let us: f64 = l
                    .split("of CPU: ")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("no CPU per alert in {l}"));
                us
            })
            .collect()
    };
    for side in ["klaxon server CPU", "alertmanager CPU"] {
        let rounds = per_alert(side);
        assert_eq!(rounds.len(), 2, "{side} in {stdout}");
        // Some CPU per alert, and not absurdly much: a reading of the wrong
        // process or a unit slip would be far off.
        assert!(
            rounds.iter().all(|us| *us > 0.5 && *us < 100_000.0),
            "{side}: {rounds:?}"
        );
    }
    // Every round has an Alertmanager of its own ("alertmanager (in-memory,
    // pid 4242) format=..."), gone once the bench is done.
    let pids: Vec<u32> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("alertmanager (in-memory, pid "))
        .map(|r| {
            r.split(')')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("no pid in {r}"))
        })
        .collect();
    assert_eq!(pids.len(), 2, "{stdout}");
    assert_ne!(pids[0], pids[1], "both rounds went to one Alertmanager");
    for pid in &pids {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains("alertmanager"),
            "Alertmanager {pid} still runs after the bench"
        );
    }
    // Klaxon, its alerts applied before, is idle while Alertmanager's load runs
    // ("klaxon meanwhile             0.01s of CPU").
    let meanwhile: Vec<f64> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("klaxon meanwhile"))
        .map(|r| {
            r.trim()
                .trim_end_matches("s of CPU")
                .parse()
                .unwrap_or_else(|_| panic!("no CPU in {r}"))
        })
        .collect();
    assert_eq!(meanwhile.len(), 2, "{stdout}");
    assert!(meanwhile.iter().all(|s| (0.0..0.5).contains(s)), "{meanwhile:?}");
    let median = stdout
        .lines()
        .find(|l| l.starts_with("median of 2 rounds: "))
        .unwrap_or_else(|| panic!("no medians in {stdout}"));
    assert!(
        median.contains("server CPU per alert: klaxon ") && median.contains(" µs, alertmanager "),
        "{median}"
    );
}

#[test]
fn bench_ingest_refuses_zero_rounds() {
    let out = Command::new(BIN)
        .args(["bench", "ingest", "--serve", "sqlite::memory:", "--rounds", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--rounds"), "{stderr}");
}
