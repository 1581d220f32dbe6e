//! `klaxon bench ...`: reproducible load generators for our own benchmarks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use hdrhistogram::Histogram;
use klaxon_client::Client;
use klaxon_domain::wire::{DeclareIncident, TokenRole};
use klaxon_domain::{Clock, config::Catalog};
use klaxon_http::{AppState, Application, AuthSettings};
use klaxon_store::{IngestSettings, Store, StoreOptions, SystemClock, new_secret};

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum BenchCmd {
    /// Post alerts to the ingest endpoints with N connections; optionally the same load against Alertmanager.
    #[command(
        after_help = "Examples:\n  klaxon bench ingest --serve sqlite:///tmp/ingest.db --format alertmanager --batch 100 --connections 32 --duration 20s --compare-alertmanager\n  klaxon bench ingest --serve sqlite:///tmp/ingest.db --batch 1 --duration 10s --compare-alertmanager --rounds 3\n  klaxon bench ingest --url http://127.0.0.1:8080 --token $KLAXON_TOKEN --format pagerduty --batch 1"
    )]
    Ingest {
        #[arg(long, value_enum, default_value = "alertmanager")]
        format: IngestFormat,
        /// Alerts per request (Alertmanager format only; PagerDuty events are one per request).
        #[arg(long, default_value_t = 1)]
        batch: usize,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        #[arg(long, default_value = "20s", value_parser = parse_duration)]
        duration: Duration,
        /// Start a Klaxon server in this process on this database instead of using --url.
        #[arg(long)]
        serve: Option<String>,
        /// Alert names cycle over this many values (one incident group each).
        #[arg(long, default_value_t = 50)]
        groups: usize,
        /// Also run the same load against Alertmanager's POST /api/v2/alerts (a new
        /// Alertmanager process each round, stopped after it) and print the ratio.
        #[arg(long)]
        compare_alertmanager: bool,
        #[arg(long, default_value = "prometheus-alertmanager")]
        alertmanager_bin: String,
        /// Run the load this many times (alternating with Alertmanager when comparing) and
        /// print the medians: on a shared machine one run can be off by a third.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
        rounds: u32,
    },
    /// The ingest pipeline alone, in this process: journal, then apply N alerts; prints alerts/s and CPU per alert.
    #[command(
        after_help = "Examples:\n  klaxon bench apply --database-url sqlite:///tmp/apply.db --alerts 200000 --batch 100\n  klaxon bench apply --database-url postgres://postgres@127.0.0.1/klaxon_bench --alerts 200000 --batch 1"
    )]
    Apply {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
        alerts: u64,
        /// Alerts per request.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        batch: u64,
        /// Concurrent submitters.
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        connections: u64,
        /// Alert names cycle over this many values (one incident group each).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
        groups: u64,
    },
    /// Fire N durable timers spread over a window with a real engine on the real store; print their lateness.
    #[command(
        after_help = "Examples:\n  klaxon bench timers --database-url sqlite:///tmp/timers.db --count 100000 --over 10m\n  klaxon bench timers --database-url postgres://postgres@127.0.0.1/klaxon_bench --count 100000 --over 10m"
    )]
    Timers {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 100_000)]
        count: usize,
        /// Due times are spread evenly over this window.
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        over: Duration,
        /// The window starts this long after the timers are written.
        #[arg(long, default_value = "15s", value_parser = parse_duration)]
        lead: Duration,
    },
    /// Alert load through the ingest endpoint; some alerts open incidents that page a webhook in this process.
    #[command(
        after_help = "Examples:\n  klaxon bench paging --serve sqlite:///tmp/paging.db --rate 1000 --duration 20s\n  klaxon bench paging --url http://127.0.0.1:8080 --token $KLAXON_TOKEN --rate 1000"
    )]
    Paging {
        /// Alerts per second sent in total.
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        /// Of which this many per second open an incident that pages.
        #[arg(long, default_value_t = 10)]
        pages_per_second: u32,
        #[arg(long, default_value = "20s", value_parser = parse_duration)]
        duration: Duration,
        /// Start a Klaxon server and engine in this process on this database instead of using --url.
        #[arg(long)]
        serve: Option<String>,
    },
    /// Queue N notifications at once; a real engine delivers them to a loopback webhook receiver.
    #[command(
        after_help = "Examples:\n  klaxon bench outbox --database-url sqlite:///tmp/outbox.db --count 5000\n  klaxon bench outbox --database-url postgres://postgres@127.0.0.1/klaxon_outbox --count 5000"
    )]
    Outbox {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 5000)]
        count: usize,
    },
    /// Declare incidents through the HTTP API as fast as N clients can.
    #[command(
        after_help = "Examples:\n  klaxon bench declare --serve sqlite:///tmp/bench.db --connections 32 --duration 20s\n  klaxon bench declare --serve postgres://postgres@127.0.0.1/klaxon_bench\n  klaxon bench declare --url http://127.0.0.1:8080 --token $KLAXON_TOKEN"
    )]
    Declare {
        /// Concurrent clients.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// How long to run (e.g. 10s, 1m).
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
        /// Start a Klaxon server in this process on this database instead of using --url.
        #[arg(long)]
        serve: Option<String>,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    klaxon_domain::duration::parse(s)
}

/// A server started for the benchmark, and a token for it.
pub async fn start_server(url: &str) -> anyhow::Result<(String, String)> {
    start_server_store(url).await.map(|(b, t, _)| (b, t))
}

/// A server started for the benchmark, a token for it, and its store.
pub async fn start_server_store(url: &str) -> anyhow::Result<(String, String, Store)> {
    let store = Store::connect(&StoreOptions::new(url))
        .await
        .with_context(|| format!("opening {url}"))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let secret = new_secret();
    store
        .create_token("bench", TokenRole::Admin, &secret, clock.now())
        .await?;
    let catalog = Arc::new(Catalog::default());
    let state = AppState::new(
        store.clone(),
        clock,
        catalog.clone(),
        AuthSettings::default(),
        IngestSettings::new(catalog),
        (0, 0),
    );
    let app = Application::build(state, "127.0.0.1:0").await?;
    let base = format!("http://{}", app.local_addr()?);
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    Ok((base, secret, store))
}

pub async fn run(cmd: BenchCmd, url: &str, token: Option<String>) -> anyhow::Result<()> {
    match cmd {
        BenchCmd::Timers {
            database_url,
            count,
            over,
            lead,
        } => crate::bench_engine::timers(&database_url, count, over, lead).await,
        BenchCmd::Apply {
            database_url,
            alerts,
            batch,
            connections,
            groups,
        } => crate::bench_apply::run(&database_url, alerts, batch, connections, groups).await,
        BenchCmd::Outbox { database_url, count } => crate::bench_engine::outbox(&database_url, count).await,
        BenchCmd::Paging {
            rate,
            pages_per_second,
            duration,
            serve,
        } => crate::bench_engine::paging(serve, url, token, rate, pages_per_second, duration).await,
        BenchCmd::Declare {
            connections,
            duration,
            serve,
        } => declare(connections, duration, serve, url, token).await,
        BenchCmd::Ingest {
            format,
            batch,
            connections,
            duration,
            serve,
            groups,
            compare_alertmanager,
            alertmanager_bin,
            rounds,
        } => {
            let spec = LoadSpec {
                format,
                batch,
                connections,
                duration,
                groups,
            };
            crate::bench_ingest::run(
                spec,
                serve,
                url,
                token,
                compare_alertmanager.then_some(alertmanager_bin),
                rounds,
            )
            .await
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngestFormat {
    Alertmanager,
    Pagerduty,
}

#[derive(Debug, Clone, Copy)]
pub struct LoadSpec {
    pub format: IngestFormat,
    pub batch: usize,
    pub connections: usize,
    pub duration: Duration,
    pub groups: usize,
}

async fn declare(
    connections: usize,
    duration: Duration,
    serve: Option<String>,
    url: &str,
    token: Option<String>,
) -> anyhow::Result<()> {
    let (base, token) = match &serve {
        Some(db) => {
            let (b, t) = start_server(db).await?;
            (b, Some(t))
        }
        None => (url.to_string(), token),
    };
    let http = reqwest::Client::builder().pool_max_idle_per_host(connections).build()?;
    let client = Client::with_http(&base, token, http);
    client.ready().await.context("the server is not ready")?;
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for worker in 0..connections {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut errors = 0u64;
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let req = DeclareIncident {
                    title: format!("bench worker {worker} incident {n}"),
                    severity: Some("SEV-3".into()),
                    services: vec!["bench".into()],
                    ..Default::default()
                };
                let t0 = Instant::now();
                match client.declare(&req).await {
                    Ok(_) => hist
                        .record(t0.elapsed().as_micros().max(1) as u64)
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                    Err(e) => {
                        errors += 1;
                        if errors == 1 {
                            eprintln!("worker {worker}: {e}");
                        }
                    }
                }
            }
            anyhow::Ok((hist, errors))
        }));
    }
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut errors = 0;
    for t in tasks {
        let (h, e) = t.await??;
        all.add(h).map_err(|e| anyhow::anyhow!("{e}"))?;
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    let ms = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "bench declare: target={} connections={connections} duration={:.1}s declared={} errors={errors} rate={:.0}/s p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms",
        serve.as_deref().map(crate::serve::redact).unwrap_or(base),
        secs,
        all.len(),
        all.len() as f64 / secs,
        ms(0.5),
        ms(0.9),
        ms(0.99),
        all.max() as f64 / 1000.0
    );
    Ok(())
}
