//! `klaxon bench timers` and `klaxon bench paging`: the engine's figures.
//!
//! - timers: N durable timers spread over a window, fired by a real engine on
//!   the real store; prints how late they fired (fire time − due time).
//! - paging: a steady alert load through the HTTP ingest endpoint, some alerts
//!   opening incidents whose policy pages a webhook receiver in this process;
//!   prints alert sent → page received latency.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use jiff::SignedDuration;
use klaxon_client::Client;
use klaxon_domain::Clock;
use klaxon_engine::{Channels, Engine, EngineSettings, Webhook};
use klaxon_store::{Store, StoreOptions, SystemClock};
use serde_json::json;

fn hist() -> anyhow::Result<Histogram<u64>> {
    Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `klaxon bench timers`.
pub async fn timers(database_url: &str, count: usize, over: Duration, lead: Duration) -> anyhow::Result<()> {
    let store = Store::connect(&StoreOptions::new(database_url))
        .await
        .with_context(|| format!("opening {database_url}"))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    store.delete_timers(klaxon_engine::BENCH).await?;
    let start = clock.now().checked_add(SignedDuration::try_from(lead)?)?;
    let span_ms = over.as_millis() as i64;
    let timers: Vec<(String, jiff::Timestamp)> = (0..count)
        .map(|i| {
            let at = start.as_millisecond() + span_ms * i as i64 / count.max(1) as i64;
            Ok((format!("bench:{i}"), jiff::Timestamp::from_millisecond(at)?))
        })
        .collect::<anyhow::Result<_>>()?;
    let t = Instant::now();
    store.insert_timers(klaxon_engine::BENCH, &timers, clock.now()).await?;
    eprintln!(
        "{count} timers inserted in {:.1}s, due from {start} over {}",
        t.elapsed().as_secs_f64(),
        humantime::format_duration(over)
    );
    let engine = Arc::new(Engine::new(
        store.clone(),
        clock.clone(),
        "bench".into(),
        EngineSettings::default(),
        Channels::default(),
    )?);
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(engine.clone().run(stop_rx));
    let deadline = Instant::now() + lead + over + Duration::from_secs(120);
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let left = store.count_timers(klaxon_engine::BENCH).await?;
        let (n, p50, p99, max) = engine.lateness();
        eprintln!("  fired {n}, pending {left}; lateness p50 {p50} ms, p99 {p99} ms, max {max} ms");
        if left == 0 || Instant::now() > deadline {
            break;
        }
    }
    let _ = stop.send(true);
    let _ = running.await;
    let (n, p50, p99, max) = engine.lateness();
    println!(
        "timers ({}): {n} of {count} fired over {}; lateness p50 {p50} ms, p99 {p99} ms, max {max} ms",
        store.backend().as_str(),
        humantime::format_duration(over)
    );
    store.close().await;
    anyhow::ensure!(n as usize == count, "only {n} of {count} timers fired");
    Ok(())
}

/// When each page arrived, by the title of its incident.
#[derive(Default)]
struct Arrivals {
    at: Mutex<HashMap<String, Instant>>,
}

async fn receiver(arrivals: Arc<Arrivals>) -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/page",
        axum::routing::post(
            |axum::extract::State(a): axum::extract::State<Arc<Arrivals>>, body: axum::body::Bytes| async move {
                let now = Instant::now();
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
                    && let Some(title) = v["incident"]["title"].as_str()
                {
                    a.at.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(title.to_string())
                        .or_insert(now);
                }
                axum::http::StatusCode::NO_CONTENT
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/page", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app.with_state(arrivals)).await });
    Ok(url)
}

/// `klaxon bench paging`.
pub async fn paging(
    serve: Option<String>,
    url: &str,
    token: Option<String>,
    rate: u32,
    pages_per_second: u32,
    duration: Duration,
) -> anyhow::Result<()> {
    let (base, token, _engine) = match &serve {
        Some(db) => {
            let (base, token, store) = crate::bench::start_server_store(db).await?;
            let webhook = Webhook::new("bench-secret", Duration::from_secs(10))?;
            let engine = Arc::new(Engine::new(
                store,
                Arc::new(SystemClock),
                "bench".into(),
                EngineSettings::default(),
                Channels::default().with("webhook", Arc::new(webhook)),
            )?);
            let (stop, rx) = tokio::sync::watch::channel(false);
            tokio::spawn(engine.run(rx));
            (base, token, Some(stop))
        }
        None => (
            url.to_string(),
            token.context("--token or KLAXON_TOKEN is needed with --url")?,
            None,
        ),
    };
    let client = Client::new(&base, Some(token.clone()))?;
    let arrivals = Arc::new(Arrivals::default());
    let hook = receiver(arrivals.clone()).await?;
    let user = json!({"id": "bench-oncall", "name": "Bench On-call", "email": "oncall@example.com",
        "contact_methods": [{"name": "hook", "kind": "webhook", "address": hook}]});
    client.put_document("users", "bench-oncall", &user).await?;
    let policy = json!({"id": "bench", "levels": [{"targets": [{"user": "bench-oncall"}], "delay_minutes": 30}]});
    client.put_document("escalation-policies", "bench", &policy).await?;
    let route = json!({"name": "bench-paging", "matchers": ["bench=paging"], "escalation_policy": "bench", "group_by": ["page"]});
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let resp = http
        .put(format!("{base}/api/v1/routes/bench-paging"))
        .bearer_auth(&token)
        .json(&route)
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "creating the route: {}", resp.text().await?);
    let key = client
        .create_integration(&klaxon_domain::wire::CreateIntegration {
            name: format!("bench-paging-{}", klaxon_store::random_hex("", 3)),
            format: klaxon_domain::wire::IntegrationFormat::Generic,
        })
        .await?
        .key;
    let endpoint = format!("{base}/ingest/generic/{key}");
    let run_id = klaxon_store::random_hex("", 3);
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Default::default();
    let seq = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Default::default();
    // Every `every`-th alert opens an incident that pages; the rest repeat 50 alerts.
    let every = (rate / pages_per_second.max(1)).max(1) as u64;
    let connections = 32u32.min(rate.max(1));
    let per_conn = Duration::from_secs_f64(connections as f64 / rate.max(1) as f64);
    let end = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let first_error = first_error.clone();
        let (http, endpoint, sent, seq, errors, run_id) = (
            http.clone(),
            endpoint.clone(),
            sent.clone(),
            seq.clone(),
            errors.clone(),
            run_id.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(per_conn);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            while Instant::now() < end {
                tick.tick().await;
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let body = if n % every == 0 {
                    let title = format!("page {run_id}-{n}");
                    sent.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(title.clone(), Instant::now());
                    json!({"title": title, "dedup_key": format!("page-{run_id}-{n}"), "severity": "critical",
                           "labels": {"bench": "paging", "page": format!("{run_id}-{n}")}})
                } else {
                    json!({"title": format!("load {}", n % 50), "dedup_key": format!("load-{}", n % 50),
                           "severity": "warning", "labels": {"bench": "load"}})
                };
                let err = match http.post(&endpoint).json(&body).send().await {
                    Ok(r) if r.status().is_success() => None,
                    Ok(r) => Some(format!("{}: {}", r.status(), r.text().await.unwrap_or_default())),
                    Err(e) => Some(e.to_string()),
                };
                if let Some(e) = err {
                    errors.fetch_add(1, Ordering::Relaxed);
                    first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed();
    let total = seq.load(Ordering::Relaxed);
    // Let the last pages arrive.
    let wait_until = Instant::now() + Duration::from_secs(10);
    let expected = sent.lock().unwrap_or_else(|e| e.into_inner()).len();
    while Instant::now() < wait_until && arrivals.at.lock().unwrap_or_else(|e| e.into_inner()).len() < expected {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Some(e) = first_error.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        eprintln!("first error: {e}");
    }
    let mut h = hist()?;
    let sent = sent.lock().unwrap_or_else(|e| e.into_inner());
    let got = arrivals.at.lock().unwrap_or_else(|e| e.into_inner());
    for (title, t0) in sent.iter() {
        if let Some(t1) = got.get(title) {
            let _ = h.record((t1.saturating_duration_since(*t0).as_micros() as u64).max(1));
        }
    }
    println!(
        "paging: {total} alerts in {:.1}s ({:.0} alerts/s, {} errors); {} of {} pages arrived; alert → page p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        errors.load(Ordering::Relaxed),
        h.len(),
        sent.len(),
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
    );
    Ok(())
}

/// `klaxon bench outbox`: N notifications queued in one go, delivered by a real
/// engine through the webhook channel to a receiver in this process.
pub async fn outbox(database_url: &str, count: usize) -> anyhow::Result<()> {
    let store = Store::connect(&StoreOptions::new(database_url))
        .await
        .with_context(|| format!("opening {database_url}"))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let cat = klaxon_domain::config::Catalog::default();
    let (inc, _) = store
        .declare(
            &klaxon_domain::wire::DeclareIncident {
                title: "outbox benchmark".into(),
                ..Default::default()
            },
            "bench",
            clock.now(),
            &cat,
        )
        .await?;
    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Default::default();
    let seen = arrivals.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let seen = seen.clone();
            async move {
                let now = Instant::now();
                if let Some(k) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
                    seen.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(k.to_string())
                        .or_insert(now);
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let webhook = Webhook::new("bench-secret", Duration::from_secs(10))?;
    let engine = Arc::new(Engine::new(
        store.clone(),
        clock.clone(),
        "bench".into(),
        EngineSettings::default(),
        Channels::default().with("webhook", Arc::new(webhook)),
    )?);
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(engine.run(stop_rx));
    let run = klaxon_store::random_hex("", 4);
    let list: Vec<klaxon_store::NewNotification> = (0..count)
        .map(|i| klaxon_store::NewNotification {
            idempotency_key: format!("bench-{run}-{i}"),
            user_id: "bench".into(),
            channel: "webhook".into(),
            contact: "hook".into(),
            address: hook.clone(),
            body: json!({"type": "bench", "n": i}).to_string(),
            due_at: clock.now(),
            cancel_on_ack: false,
            message: true,
        })
        .collect();
    let started = Instant::now();
    store.enqueue_notifications(&inc.id, &list, clock.now()).await?;
    let queued = Instant::now();
    let deadline = queued + Duration::from_secs(120);
    while arrivals.lock().unwrap_or_else(|e| e.into_inner()).len() < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(true);
    let _ = running.await;
    let got = arrivals.lock().unwrap_or_else(|e| e.into_inner());
    let mut h = hist()?;
    let mut last = queued;
    for t in got.values() {
        let _ = h.record((t.saturating_duration_since(queued).as_micros() as u64).max(1));
        last = last.max(*t);
    }
    let secs = last.saturating_duration_since(queued).as_secs_f64().max(1e-6);
    println!(
        "outbox ({}): {} of {count} delivered; queued in {:.0} ms; {:.0} messages/s; delivery after enqueue p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        store.backend().as_str(),
        got.len(),
        queued.saturating_duration_since(started).as_secs_f64() * 1000.0,
        got.len() as f64 / secs,
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
    );
    anyhow::ensure!(got.len() == count, "only {} of {count} delivered", got.len());
    Ok(())
}
