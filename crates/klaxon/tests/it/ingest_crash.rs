//! A real `klaxon serve` killed with SIGKILL while alerts pour in: every alert
//! it answered 2xx for is there after a restart, applied once. Stopped with
//! SIGTERM instead, it applies what it accepted before it exits.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use klaxon_client::Client;
use klaxon_domain::wire::{CreateIntegration, IntegrationFormat};
use serde_json::json;
use sqlx::Row;

use crate::cli::serve_env;
use crate::support::TestDb;

const TOKEN: &str = "kx_crash_admin_secret_0123456789";

fn payload(sender: usize, n: usize) -> (Vec<String>, Vec<u8>) {
    let keys: Vec<String> = (0..25).map(|i| format!("s{sender}-r{n}-a{i}")).collect();
    let alerts: Vec<_> = keys
        .iter()
        .map(|k| {
            json!({"status": "firing", "labels": {"alertname": "Crash", "key": k}, "annotations": {},
                   "startsAt": "2026-11-23T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": k})
        })
        .collect();
    let body = json!({"version": "4", "status": "firing", "groupKey": "{}:{alertname=\"Crash\"}", "alerts": alerts});
    (keys, body.to_string().into_bytes())
}

/// Eight senders posting 25 alerts a request to `url` until the server is
/// gone; the keys of every alert answered 2xx go into `accepted`.
fn pour(url: &str, accepted: &Arc<Mutex<HashSet<String>>>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..8)
        .map(|s| {
            let (url, accepted) = (url.to_string(), accepted.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for n in 0.. {
                    let (keys, body) = payload(s, n);
                    match http
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => accepted.lock().unwrap().extend(keys),
                        Ok(r) => panic!("unexpected answer {}", r.status()),
                        // The server is gone.
                        Err(_) => return,
                    }
                }
            })
        })
        .collect()
}

/// Let alerts flow until 2,000 are accepted (or 30 s pass).
async fn until_accepted(accepted: &Mutex<HashSet<String>>) {
    let start = Instant::now();
    while accepted.lock().unwrap().len() < 2_000 && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A server on `db` (no rate limit) with an Alertmanager integration: the
/// server, its ingest URL, and the arguments to start it again.
async fn server_with_integration(db: &TestDb, dir: &std::path::Path) -> (crate::cli::Server, String, Vec<String>) {
    klaxon_client::install_crypto_provider();
    let cfg = dir.join("klaxon.yaml");
    std::fs::write(&cfg, "ingest:\n  rate_limit_per_second: 0\n").unwrap();
    let args = vec!["--config".to_string(), cfg.to_str().unwrap().to_string()];
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = serve_env(dir, Some(db.url()), Some(TOKEN), &argv, &[("KLAXON_LOG", "warn")]);
    let client = Client::new(&server.url, Some(TOKEN.into())).unwrap();
    let key = client
        .create_integration(&CreateIntegration {
            name: "prom".into(),
            format: IntegrationFormat::Alertmanager,
        })
        .await
        .unwrap()
        .key;
    let url = format!("{}/ingest/alertmanager/{key}", server.url);
    (server, url, args)
}

async fn stored_keys(pool: &sqlx::AnyPool) -> Vec<String> {
    sqlx::query("SELECT dedup_key FROM alerts")
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect()
}

/// Every accepted key is among the stored ones (else `lost`, naming a few), and
/// none is stored twice; the stored keys as a set.
fn every_one_stored_once(accepted: &HashSet<String>, stored: &[String], lost: &str) -> HashSet<String> {
    let stored_set: HashSet<String> = stored.iter().cloned().collect();
    let missing: Vec<&String> = accepted.difference(&stored_set).take(5).collect();
    assert!(missing.is_empty(), "{lost}: {missing:?} (of {})", accepted.len());
    assert_eq!(stored.len(), stored_set.len(), "no alert stored twice");
    stored_set
}

async fn body(backend: &'static str) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("KLAXON_LOG", "warn")];
    let (mut first, url, args) = server_with_integration(&db, dir.path()).await;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let accepted = Arc::new(Mutex::new(HashSet::new()));
    let senders = pour(&url, &accepted);
    // Let alerts flow, then pull the plug mid-stream.
    until_accepted(&accepted).await;
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    for s in senders {
        s.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() >= 2_000, "alerts were accepted before the kill");

    // Restart on the same database: whatever was accepted and not applied is applied now.
    let second = serve_env(dir.path(), Some(db.url()), Some(TOKEN), &args, &env);
    let pool = db.pool().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let stored: Vec<String> = loop {
        let keys = stored_keys(&pool).await;
        if keys.len() >= accepted.len() || Instant::now() > deadline {
            break keys;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stored_set = every_one_stored_once(&accepted, &stored, "accepted but lost");
    // Applied once: each stored alert is in exactly one alerts_fired event.
    let payloads: Vec<String> = sqlx::query_scalar("SELECT payload FROM incident_events WHERE type = 'alerts_fired'")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut fired = Vec::new();
    for p in &payloads {
        let v: serde_json::Value = serde_json::from_str(p).unwrap();
        for a in v["alerts"].as_array().unwrap() {
            fired.push(a["dedup_key"].as_str().unwrap().to_string());
        }
    }
    let fired_set: HashSet<String> = fired.iter().cloned().collect();
    assert_eq!(fired.len(), fired_set.len(), "no alert fired twice");
    assert_eq!(fired_set, stored_set, "every stored alert fired once");
    let c2 = Client::new(&second.url, Some(TOKEN.into())).unwrap();
    let list = c2.list(&Default::default()).await.unwrap().items;
    assert_eq!(list.len(), 1, "one group, one incident");
    assert!(c2.verify(&list[0].id).await.unwrap().ok, "the timeline chain holds");
    pool.close().await;
}

crate::each_backend!(body);

/// SIGTERM with alerts accepted and not applied yet (the applier waits on a
/// lock the test holds through the rest of the stop): the server applies them
/// before it exits, and exits 0. Read without a restart, the database holds
/// every accepted alert once, and no journal row waits for the next start.
async fn stop_body(backend: &'static str) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url, _) = server_with_integration(&db, dir.path()).await;
    let accepted = Arc::new(Mutex::new(HashSet::new()));
    let senders = pour(&url, &accepted);
    until_accepted(&accepted).await;
    for s in &senders {
        s.abort();
    }
    for s in senders {
        let _ = s.await;
    }
    // Hold the applier back (its next write waits on this lock) and send a
    // few more, so that the stop comes with alerts accepted and not applied;
    // let go of the lock once the rest of the stop is done.
    let pool = db.pool().await;
    let mut hold = pool.begin().await.unwrap();
    let lock = match backend {
        "sqlite" => "CREATE TABLE test_hold_writes (x INTEGER)",
        _ => "LOCK TABLE alerts IN SHARE MODE",
    };
    sqlx::query(lock).execute(&mut *hold).await.unwrap();
    let http = reqwest::Client::new();
    for n in 0..4 {
        let (keys, body) = payload(99, n);
        let r = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            reqwest::StatusCode::ACCEPTED,
            "accepted while the applier waits"
        );
        accepted.lock().unwrap().extend(keys);
    }
    let pid = server.child.id().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success(), "kill -TERM {pid}");
    // Longer than the rest of a stop takes (the engine's included).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    hold.rollback().await.unwrap();
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "a stop on SIGTERM exits 0: {exit}");
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() >= 2_000, "alerts were accepted before the stop");
    let stored = stored_keys(&pool).await;
    every_one_stored_once(&accepted, &stored, "accepted but not applied at the stop");
    let journal = db.journal_pool().await;
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT writer, seq FROM ingest_commits")
        .fetch_all(&journal)
        .await
        .unwrap();
    let applied: std::collections::HashMap<String, i64> = sqlx::query_as("SELECT writer, seq FROM ingest_applied")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let waiting = rows
        .iter()
        .filter(|(w, seq)| *seq > applied.get(w).copied().unwrap_or(0))
        .count();
    assert_eq!(waiting, 0, "no journal row left to apply at the next start");
    journal.close().await;
    pool.close().await;
}

mod stop {
    crate::each_backend!(super::stop_body);
}
