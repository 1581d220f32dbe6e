//! `klaxon bench apply`: the ingest pipeline alone (journal, then apply), in
//! this process, without HTTP or a load generator competing for the CPU.
//! The per-alert CPU cost it prints is the figure to watch when changing the
//! applier; `klaxon bench ingest` measures the whole path.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use klaxon_domain::Clock;
use klaxon_domain::alert::{AlertAction, AlertInput, AlertLink};
use klaxon_domain::config::Catalog;
use klaxon_domain::wire::IntegrationFormat;
use klaxon_store::{IngestSettings, Ingestor, Store, StoreOptions, SystemClock, new_integration_key};
use tokio::sync::Mutex;

/// User plus system CPU time of this process, in seconds (Linux; None elsewhere).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux ABI.
    Some(ticks / 100.0)
}

/// Busy CPU time of the whole machine (user, nice, system, irq, softirq), in
/// seconds: on PostgreSQL most of the work is the database server's.
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let f: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq …
    Some([0, 1, 2, 5, 6].iter().filter_map(|i| f.get(*i)).sum::<f64>() / 100.0)
}

fn alert(n: u64, groups: u64, starts: jiff::Timestamp) -> AlertInput {
    let name = format!("BenchAlert{}", n % groups);
    let instance = format!("host-{n}");
    let labels = BTreeMap::from([
        ("alertname".to_string(), name.clone()),
        ("severity".to_string(), "warning".to_string()),
        ("instance".to_string(), instance.clone()),
        ("job".to_string(), "bench".to_string()),
    ]);
    AlertInput {
        action: AlertAction::Trigger,
        dedup_key: format!("bench-{n:016x}"),
        summary: "benchmark alert".into(),
        severity: Some("warning".into()),
        source: Some(instance),
        labels,
        annotations: BTreeMap::from([("summary".to_string(), "benchmark alert".to_string())]),
        starts_at: Some(starts),
        ends_at: None,
        links: vec![AlertLink {
            href: "http://bench".into(),
            text: Some("Source".into()),
        }],
        // Alertmanager's group key: one group (one incident) per alert name.
        group_key: Some(format!("{{}}:{{alertname=\"{name}\"}}")),
        details: serde_json::Value::Null,
    }
}

pub async fn run(database_url: &str, alerts: u64, batch: u64, connections: u64, groups: u64) -> anyhow::Result<()> {
    for (flag, v) in [
        ("--alerts", alerts),
        ("--batch", batch),
        ("--connections", connections),
        ("--groups", groups),
    ] {
        anyhow::ensure!(v >= 1, "{flag} must be at least 1");
    }
    let store = Store::connect(&StoreOptions::new(database_url))
        .await
        .with_context(|| format!("opening {database_url}"))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let integ = store
        .create_integration(
            &format!("bench-apply-{}", clock.now().as_millisecond()),
            IntegrationFormat::Alertmanager,
            &new_integration_key(),
            clock.now(),
        )
        .await?;
    let mut settings = IngestSettings::new(Arc::new(Catalog::default()));
    settings.max_backlog = alerts as usize + 1;
    let ingestor = Ingestor::start(store.clone(), Arc::new(settings), clock.clone());
    // Every request is built before the clock starts.
    let starts = clock.now();
    let requests: Vec<Vec<AlertInput>> = (0..alerts.div_ceil(batch))
        .map(|r| {
            (r * batch..((r + 1) * batch).min(alerts))
                .map(|n| alert(n, groups, starts))
                .collect()
        })
        .collect();
    let queue = Arc::new(Mutex::new(requests));
    let cpu0 = cpu_seconds();
    let busy0 = machine_busy_seconds();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (queue, ingestor, integ, clock) = (queue.clone(), ingestor.clone(), integ.clone(), clock.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(req) = queue.lock().await.pop() else {
                    return Ok::<_, anyhow::Error>(());
                };
                ingestor.accept(integ.clone(), req, clock.now(), false).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let accepted = t0.elapsed().as_secs_f64();
    ingestor.settled().await;
    let applied = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    let busy = machine_busy_seconds().zip(busy0).map(|(b, a)| b - a);
    // The figures count only if the work was done: every alert stored and grouped.
    let (stored, incidents) = store.alert_totals(&integ.id).await?;
    let groups_sent = groups.min(alerts) as i64;
    if stored != alerts as i64 || incidents != groups_sent {
        anyhow::bail!(
            "applied work is wrong: {stored} alerts stored (sent {alerts}) in {incidents} incidents ({groups_sent} groups sent)"
        );
    }
    println!(
        "{alerts} alerts in requests of {batch} from {connections} tasks: all accepted after {accepted:.2} s, all applied after {applied:.2} s = {:.0} alerts/s",
        alerts as f64 / applied
    );
    println!("stored: {stored} alerts in {incidents} incidents");
    if let Some(cpu) = cpu {
        println!(
            "CPU (user + system, this process): {cpu:.2} s = {:.1} µs per alert",
            cpu * 1e6 / alerts as f64
        );
    }
    if let Some(busy) = busy {
        println!(
            "CPU (whole machine, database server included): {busy:.2} s = {:.1} µs per alert",
            busy * 1e6 / alerts as f64
        );
    }
    Ok(())
}
