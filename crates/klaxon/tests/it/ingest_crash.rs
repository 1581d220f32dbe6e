//! A real `klaxon serve` killed with SIGKILL while alerts pour in: every alert
//! it answered 2xx for is there after a restart, applied once.

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

async fn body(backend: &'static str) {
    klaxon_client::install_crypto_provider();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("KLAXON_LOG", "warn")];
    let cfg = dir.path().join("klaxon.yaml");
    std::fs::write(&cfg, "ingest:\n  rate_limit_per_second: 0\n").unwrap();
    let args = ["--config", cfg.to_str().unwrap()];
    let mut first = serve_env(dir.path(), Some(db.url()), Some(TOKEN), &args, &env);
    let client = Client::new(&first.url, Some(TOKEN.into())).unwrap();
    let key = client
        .create_integration(&CreateIntegration {
            name: "prom".into(),
            format: IntegrationFormat::Alertmanager,
        })
        .await
        .unwrap()
        .key;
    let url = format!("{}/ingest/alertmanager/{key}", first.url);
    let accepted = Arc::new(Mutex::new(HashSet::new()));
    let mut senders = Vec::new();
    for s in 0..8 {
        let (url, accepted) = (url.clone(), accepted.clone());
        senders.push(tokio::spawn(async move {
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
        }));
    }
    // Let alerts flow, then pull the plug mid-stream.
    let start = Instant::now();
    while accepted.lock().unwrap().len() < 2_000 && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    for s in senders {
        s.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() >= 2_000, "alerts were accepted before the kill");

    // Restart on the same database: whatever was accepted and not applied is applied now.
    let second = serve_env(dir.path(), Some(db.url()), Some(TOKEN), &args, &env);
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(db.url())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let stored: Vec<String> = loop {
        let keys: Vec<String> = sqlx::query("SELECT dedup_key FROM alerts")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
        if keys.len() >= accepted.len() || Instant::now() > deadline {
            break keys;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stored_set: HashSet<String> = stored.iter().cloned().collect();
    let missing: Vec<&String> = accepted.difference(&stored_set).take(5).collect();
    assert!(
        missing.is_empty(),
        "accepted but lost: {missing:?} (of {})",
        accepted.len()
    );
    assert_eq!(stored.len(), stored_set.len(), "no alert stored twice");
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
