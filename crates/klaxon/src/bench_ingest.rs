//! `klaxon bench ingest`: alerts per second through the durable ingest path,
//! side by side with Alertmanager's in-memory `POST /api/v2/alerts`.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use klaxon_client::Client;
use klaxon_domain::wire::{CreateIntegration, IntegrationFormat};
use serde_json::{Value, json};

use crate::bench::{IngestFormat, LoadSpec, start_server};

/// Where the load goes and how each request body is made.
#[derive(Clone)]
enum Target {
    Klaxon {
        url: String,
        key: String,
        format: IngestFormat,
    },
    Alertmanager {
        url: String,
    },
}

struct Result {
    alerts: u64,
    requests: u64,
    errors: u64,
    secs: f64,
    hist: Histogram<u64>,
}

fn body(target: &Target, spec: &LoadSpec, seq: &AtomicU64, started: &str) -> Vec<u8> {
    let alert = |n: u64| {
        let name = format!("BenchAlert{}", n % spec.groups.max(1) as u64);
        (
            json!({"alertname": name, "severity": "warning", "instance": format!("host-{n}"), "job": "bench"}),
            format!("bench-{n:016x}"),
        )
    };
    match target {
        Target::Klaxon {
            format: IngestFormat::Pagerduty,
            key,
            ..
        } => {
            let n = seq.fetch_add(1, Ordering::Relaxed);
            let (labels, fp) = alert(n);
            json!({"routing_key": key, "event_action": "trigger", "dedup_key": fp,
                   "payload": {"summary": format!("{} on {}", labels["alertname"].as_str().unwrap_or(""), labels["instance"].as_str().unwrap_or("")),
                               "source": labels["instance"], "severity": "warning", "component": "bench"}})
            .to_string()
            .into_bytes()
        }
        Target::Klaxon {
            format: IngestFormat::Alertmanager,
            ..
        } => {
            let alerts: Vec<Value> = (0..spec.batch)
                .map(|_| {
                    let n = seq.fetch_add(1, Ordering::Relaxed);
                    let (labels, fp) = alert(n);
                    json!({"status": "firing", "labels": labels, "annotations": {"summary": "benchmark alert"},
                           "startsAt": started, "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://bench", "fingerprint": fp})
                })
                .collect();
            json!({"version": "4", "status": "firing", "receiver": "klaxon", "groupKey": "{}:{job=\"bench\"}", "truncatedAlerts": 0,
                   "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://bench", "alerts": alerts})
            .to_string()
            .into_bytes()
        }
        Target::Alertmanager { .. } => {
            let n_alerts = if spec.format == IngestFormat::Pagerduty {
                1
            } else {
                spec.batch
            };
            let alerts: Vec<Value> = (0..n_alerts)
                .map(|_| {
                    let n = seq.fetch_add(1, Ordering::Relaxed);
                    let (labels, _) = alert(n);
                    json!({"labels": labels, "annotations": {"summary": "benchmark alert"}, "startsAt": started, "generatorURL": "http://bench"})
                })
                .collect();
            Value::Array(alerts).to_string().into_bytes()
        }
    }
}

/// `seq` numbers the alerts; it carries on across rounds, so that every round
/// sends new alerts rather than repeats of the last round's.
async fn load(target: Target, spec: LoadSpec, seq: Arc<AtomicU64>) -> anyhow::Result<Result> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(spec.connections)
        .build()?;
    let url = match &target {
        Target::Klaxon {
            url,
            key,
            format: IngestFormat::Alertmanager,
        } => format!("{url}/ingest/alertmanager/{key}"),
        Target::Klaxon {
            url,
            format: IngestFormat::Pagerduty,
            ..
        } => format!("{url}/v2/enqueue"),
        Target::Alertmanager { url } => format!("{url}/api/v2/alerts"),
    };
    let per_request = if spec.format == IngestFormat::Pagerduty {
        1
    } else {
        spec.batch
    } as u64;
    // Print the first refusal only (a full backlog refuses many in a row).
    let told = Arc::new(std::sync::atomic::AtomicBool::new(false));
    #[allow(clippy::disallowed_methods)]
    let started_at = jiff::Timestamp::now().to_string();
    let started = Instant::now();
    let deadline = started + spec.duration;
    let mut tasks = Vec::new();
    for _ in 0..spec.connections {
        let (http, url, target, seq, started_at, told) = (
            http.clone(),
            url.clone(),
            target.clone(),
            seq.clone(),
            started_at.clone(),
            told.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).map_err(|e| anyhow::anyhow!("{e}"))?;
            let (mut ok, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                let b = body(&target, &spec, &seq, &started_at);
                let t0 = Instant::now();
                match http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(b)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        hist.record(t0.elapsed().as_micros().max(1) as u64)
                            .map_err(|e| anyhow::anyhow!("{e}"))?;
                        ok += 1;
                    }
                    Ok(r) => {
                        errors += 1;
                        // A refusal that says when to come back (full backlog, rate limit) is
                        // honoured, as a real sender's retry would be: hammering with bodies
                        // that are refused only takes CPU from the work being measured.
                        let pause = r
                            .headers()
                            .get(reqwest::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(Duration::from_secs);
                        if !told.swap(true, Ordering::Relaxed) {
                            eprintln!("{}: {}", r.status(), r.text().await.unwrap_or_default());
                        }
                        if let Some(pause) = pause {
                            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        if !told.swap(true, Ordering::Relaxed) {
                            eprintln!("{e}");
                        }
                    }
                }
            }
            anyhow::Ok((hist, ok, errors))
        }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (mut requests, mut errors) = (0, 0);
    for t in tasks {
        let (h, ok, e) = t.await??;
        hist.add(h).map_err(|e| anyhow::anyhow!("{e}"))?;
        requests += ok;
        errors += e;
    }
    Ok(Result {
        alerts: requests * per_request,
        requests,
        errors,
        secs: started.elapsed().as_secs_f64(),
        hist,
    })
}

fn report(name: &str, spec: &LoadSpec, r: &Result) -> f64 {
    let ms = |q: f64| r.hist.value_at_quantile(q) as f64 / 1000.0;
    let rate = r.alerts as f64 / r.secs;
    println!(
        "{name:<28} format={:?} batch={} connections={} duration={:.1}s alerts={} requests={} errors={} rate={:.0} alerts/s p50={:.2}ms p99={:.2}ms",
        spec.format,
        if spec.format == IngestFormat::Pagerduty {
            1
        } else {
            spec.batch
        },
        spec.connections,
        r.secs,
        r.alerts,
        r.requests,
        r.errors,
        rate,
        ms(0.5),
        ms(0.99)
    );
    rate
}

/// An Alertmanager for one round; killed and removed on drop (or by `stop`).
struct Child {
    process: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Child {
    /// Kills it and waits until it is gone, so that nothing it still does runs
    /// beside the next load.
    async fn stop(mut self) -> anyhow::Result<()> {
        self.process
            .kill()
            .await
            .context("stopping Alertmanager after its round")
    }
}

async fn start_alertmanager(bin: &str) -> anyhow::Result<(String, Child)> {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("am.yml"),
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = tokio::process::Command::new(bin)
        .arg(format!("--config.file={}", dir.path().join("am.yml").display()))
        .arg(format!("--storage.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {bin}"))?;
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http
            .get(format!("{url}/-/ready"))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false)
        {
            return Ok((
                url,
                Child {
                    process: child,
                    _dir: dir,
                },
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("Alertmanager did not become ready")
}

/// The value of an unlabelled metric in a server's `/metrics`, if it has one.
async fn metric(http: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<Option<f64>> {
    let text = http.get(format!("{base}/metrics")).send().await?.text().await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok()))
}

/// Alerts accepted and not yet applied, from the server's `/metrics`.
async fn backlog(http: &reqwest::Client, base: &str) -> anyhow::Result<f64> {
    Ok(metric(http, base, "klaxon_ingest_backlog_alerts").await?.unwrap_or(0.0))
}

/// The server's CPU time so far (`process_cpu_seconds_total`, which Klaxon and
/// Alertmanager both export); `None` when not measured.
async fn cpu_seconds(measure: bool, base: &str) -> anyhow::Result<Option<f64>> {
    if !measure {
        return Ok(None);
    }
    metric(&reqwest::Client::new(), base, "process_cpu_seconds_total").await
}

/// Print and return the server's CPU per alert between two readings of
/// [`cpu_seconds`]: the work each server does per alert, where alerts/s also
/// counts how long requests wait (docs/alerting.md says what it does not say).
fn report_cpu(name: &str, before: Option<f64>, after: Option<f64>, alerts: u64) -> Option<f64> {
    let used = after? - before?;
    let us = used * 1e6 / alerts.max(1) as f64;
    println!("{name:<28} {used:.2}s of CPU: {us:.1} µs per alert");
    Some(us)
}

/// A 2xx means committed; applying (dedup, routing, incidents) follows. Wait
/// until everything accepted is applied and report how long that took.
async fn drained(base: &str, r: &Result) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let start = Instant::now();
    let waiting = backlog(&http, base).await?;
    while backlog(&http, base).await? > 0.0 {
        if start.elapsed() > Duration::from_secs(600) {
            bail!("alerts still waiting to be applied after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain = start.elapsed().as_secs_f64();
    let applied = r.alerts as f64 / (r.secs + drain);
    println!(
        "klaxon applied               {waiting:.0} alerts were waiting when the load ended; all applied {drain:.1}s later: {applied:.0} alerts/s accepted and applied"
    );
    Ok(applied)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub async fn run(
    spec: LoadSpec,
    serve: Option<String>,
    url: &str,
    token: Option<String>,
    compare: Option<String>,
    rounds: u32,
) -> anyhow::Result<()> {
    if spec.format == IngestFormat::Pagerduty && spec.batch != 1 {
        bail!("PagerDuty events are one per request: use --batch 1");
    }
    let (base, token) = match &serve {
        Some(db) => {
            let (b, t) = start_server(db).await?;
            (b, Some(t))
        }
        None => (url.to_string(), token),
    };
    let client = Client::new(&base, token)?;
    client.ready().await.context("the server is not ready")?;
    let format = match spec.format {
        IngestFormat::Alertmanager => IntegrationFormat::Alertmanager,
        IngestFormat::Pagerduty => IntegrationFormat::Pagerduty,
    };
    #[allow(clippy::disallowed_methods)]
    let name = format!("bench-{}", jiff::Timestamp::now().as_millisecond());
    let integ = client
        .create_integration(&CreateIntegration { name, format })
        .await
        .context("creating the bench integration (admin token needed)")?;
    let label = format!(
        "klaxon ({})",
        serve
            .as_deref()
            .map(|d| d.split(':').next().unwrap_or(d))
            .unwrap_or(&base)
    );
    // With --serve the load runs in the server's process: its CPU would count both.
    let measure_cpu = serve.is_none();
    if !measure_cpu {
        println!("(server CPU per alert is not measured with --serve: the load runs in the same process)");
    }
    let (k_seq, a_seq) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (mut accepted, mut applied, mut am_rates) = (Vec::new(), Vec::new(), Vec::new());
    let (mut k_cpu, mut a_cpu) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        if rounds > 1 {
            println!("-- round {round} of {rounds}");
        }
        let target = Target::Klaxon {
            url: base.clone(),
            key: integ.key.clone(),
            format: spec.format,
        };
        let before = cpu_seconds(measure_cpu, &base).await?;
        let k = load(target, spec, k_seq.clone()).await?;
        accepted.push(report(&label, &spec, &k));
        applied.push(drained(&base, &k).await?);
        // From the first request until the last alert is applied.
        let after = cpu_seconds(measure_cpu, &base).await?;
        k_cpu.extend(report_cpu("klaxon server CPU", before, after, k.alerts));
        if let Some(bin) = &compare {
            // A new Alertmanager for every round, stopped after it. One kept
            // from round to round worked during Klaxon's next load: the first
            // notification of what it held (group_wait, 30 s after its round
            // began) and the garbage collection of its growing heap took up to
            // 11 s of CPU in a 20 s Klaxon round, from a 2-core machine.
            let (am_url, am) = start_alertmanager(bin).await?;
            let pid = am.process.id().unwrap_or_default();
            let (before, k_before) = (
                cpu_seconds(measure_cpu, &am_url).await?,
                cpu_seconds(measure_cpu, &base).await?,
            );
            let a = load(Target::Alertmanager { url: am_url.clone() }, spec, a_seq.clone()).await?;
            am_rates.push(report(&format!("alertmanager (in-memory, pid {pid})"), &spec, &a));
            let (after, k_after) = (
                cpu_seconds(measure_cpu, &am_url).await?,
                cpu_seconds(measure_cpu, &base).await?,
            );
            am.stop().await?;
            a_cpu.extend(report_cpu("alertmanager CPU", before, after, a.alerts));
            // Klaxon, its alerts applied before, should not take from
            // Alertmanager's load either.
            if let (Some(b), Some(a)) = (k_before, k_after) {
                println!("{:<28} {:.2}s of CPU", "klaxon meanwhile", a - b);
            }
            println!(
                "ratio klaxon/alertmanager = {:.2}",
                accepted[accepted.len() - 1] / am_rates[am_rates.len() - 1].max(1.0)
            );
        }
    }
    if rounds > 1 {
        let (k, ka) = (median(accepted), median(applied));
        print!("median of {rounds} rounds: klaxon {k:.0} alerts/s accepted, {ka:.0} accepted and applied");
        if compare.is_some() {
            let a = median(am_rates);
            print!(
                "; alertmanager {a:.0}; ratio klaxon/alertmanager = {:.2} accepted, {:.2} applied",
                k / a.max(1.0),
                ka / a.max(1.0)
            );
        }
        if !k_cpu.is_empty() {
            print!("; server CPU per alert: klaxon {:.1} µs", median(k_cpu));
            if !a_cpu.is_empty() {
                print!(", alertmanager {:.1} µs", median(a_cpu));
            }
        }
        println!();
    }
    Ok(())
}
