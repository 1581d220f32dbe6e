//! Two real `klaxon serve` nodes on one PostgreSQL: one is killed with
//! SIGKILL holding the lease of an escalation step; the other fires that step
//! as soon as the lease runs out, and nobody is paged twice.

use std::time::{Duration, Instant};

use klaxon_client::Client;
use klaxon_domain::wire::DeclareIncident;
use serde_json::json;

use crate::cli::serve_env;
use crate::receiver::Receiver;
use crate::support::{TestDb, WEBHOOK_SECRET};

const TOKEN: &str = "kx_failover_admin_secret_0123456789";

/// Poll for something another process does (never for a timer: clocks are manual).
async fn eventually<F: AsyncFnMut() -> bool>(what: &str, mut f: F) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn advance(c: &Client, base: &str, by: &str) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/debug/clock"))
        .bearer_auth(TOKEN)
        .json(&json!({ "advance": by }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
    let _ = c;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_s_escalation_step_fires_once_on_the_other_node() {
    klaxon_client::install_crypto_provider();
    let db = TestDb::new("postgres").await;
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("klaxon.yaml"),
        "engine:\n  lease: 10s\n  poll_interval: 50ms\n",
    )
    .unwrap();
    let cfg = dir.path().join("klaxon.yaml");
    let cfg = cfg.to_str().unwrap();
    let common = [("KLAXON_WEBHOOK_SECRET", WEBHOOK_SECRET), ("KLAXON_LOG", "warn")];
    // Node A stalls after claiming the second step (step index 1).
    let mut a_env = common.to_vec();
    a_env.extend([
        ("KLAXON_NODE", "node-a"),
        ("KLAXON_TEST_CLOCK", "2026-11-23T10:00:00Z"),
        ("KLAXON_FAULT_STALL_AT_STEP", "1"),
    ]);
    let mut a = serve_env(dir.path(), Some(db.url()), Some(TOKEN), &["--config", cfg], &a_env);
    let ca = Client::new(&a.url, Some(TOKEN.into())).unwrap();
    for id in ["alice", "bob"] {
        let u = json!({"id": id, "name": id, "email": format!("{id}@example.com"),
            "contact_methods": [{"name": "hook", "kind": "webhook", "address": rx.url(id)}]});
        ca.put_document("users", id, &u).await.unwrap();
    }
    let policy = json!({"id": "p", "levels": [
        {"targets": [{"user": "alice"}], "delay_minutes": 1},
        {"targets": [{"user": "bob"}], "delay_minutes": 1}]});
    ca.put_document("escalation-policies", "p", &policy).await.unwrap();
    let inc = ca
        .declare(&DeclareIncident {
            title: "API down".into(),
            escalation_policy: Some("p".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    eventually("node A pages level 1", async || rx.paths() == vec!["alice"]).await;

    // Level 2 becomes due on A, which claims it and stalls holding the lease.
    advance(&ca, &a.url, "1m").await;
    let pg = sqlx::PgPool::connect(db.url()).await.unwrap();
    eventually("node A holds the lease of step 2", async || {
        let owner: Option<String> = sqlx::query_scalar("SELECT lease_owner FROM timers WHERE kind = 'escalation'")
            .fetch_one(&pg)
            .await
            .unwrap();
        owner.is_some_and(|o| o.starts_with("node-a:"))
    })
    .await;
    a.child.kill().unwrap(); // SIGKILL
    a.child.wait().unwrap();

    // Node B starts at the same instant; the step is A's until the lease ends.
    let mut b_env = common.to_vec();
    b_env.extend([("KLAXON_NODE", "node-b"), ("KLAXON_TEST_CLOCK", "2026-11-23T10:01:00Z")]);
    let b = serve_env(dir.path(), Some(db.url()), Some(TOKEN), &["--config", cfg], &b_env);
    let cb = Client::new(&b.url, Some(TOKEN.into())).unwrap();
    advance(&cb, &b.url, "9s").await;
    tokio::time::sleep(Duration::from_millis(300)).await; // several polls of B: the lease still holds
    assert_eq!(rx.paths(), vec!["alice"], "B must not fire a step A still leases");
    advance(&cb, &b.url, "1s").await;
    eventually("node B pages level 2 once the lease ran out", async || {
        rx.paths() == vec!["alice", "bob"]
    })
    .await;
    let got = rx.received();
    let mut keys: Vec<&str> = got.iter().map(|r| r.idempotency_key.as_str()).collect();
    keys.dedup();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let timeline = cb.timeline(&inc.id).await.unwrap();
    let paged: Vec<&str> = timeline
        .events
        .iter()
        .filter(|e| e.kind.type_name() == "paged")
        .map(|e| e.actor.as_str())
        .collect();
    assert_eq!(paged.len(), 2, "each step is on the timeline once");
    // Nothing else fires later.
    advance(&cb, &b.url, "10m").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.paths().len(), 2);
}
