//! `klaxon`: the server (`serve`), the CLI (a client of the REST API) and
//! the benchmarks (`bench`), in one binary.

mod bench;
mod bench_apply;
mod bench_engine;
mod bench_ingest;
mod cli;
mod cli_alerting;
mod cli_checks;
mod cli_oncall;
mod cli_paging;
mod cli_status_page;
mod config;
mod output;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc: the ingest path allocates many small JSON values and often frees
/// them on another thread (HTTP workers, intake, applier); jemalloc reuses such
/// a block where it was freed, still in cache. Why not mimalloc or glibc, and
/// the measurements: docs/architecture.md.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser, Debug)]
#[command(
    name = "klaxon",
    version,
    about = "Self-hosted incident response: page the right person, keep everyone informed, never lose an alert.",
    after_help = "Examples:\n  klaxon serve                                   # SQLite in ./klaxon.db on 127.0.0.1:8080\n  klaxon serve --database-url postgres://klaxon@127.0.0.1/klaxon\n  export KLAXON_TOKEN=kx_...                     # printed by the first `klaxon serve`\n  klaxon incident declare --title 'API returning 500s' --severity SEV-1 --service api\n  klaxon incident list --status open\n  klaxon incident ack INC-2026-11-23-001\n  klaxon timeline INC-2026-11-23-001 --verify"
)]
pub struct Cli {
    /// Klaxon server to talk to.
    #[arg(long, global = true, env = "KLAXON_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// API token (Authorization: Bearer).
    #[arg(long, global = true, env = "KLAXON_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: REST API, health, metrics.
    Serve(serve::ServeArgs),
    /// Declare, list, show and work incidents.
    #[command(subcommand)]
    Incident(Box<cli::IncidentCmd>),
    /// Acknowledge an incident (shortcut for `incident ack`).
    Ack {
        id: String,
        #[arg(long, short)]
        message: Option<String>,
    },
    /// Show an incident's timeline; `--verify` recomputes its hash chain.
    Timeline {
        id: String,
        #[arg(long)]
        verify: bool,
    },
    /// Alert sources and their ingest keys.
    #[command(subcommand)]
    Integration(cli_alerting::IntegrationCmd),
    /// Alerts received from monitoring.
    #[command(subcommand)]
    Alert(cli_alerting::AlertCmd),
    /// Silences and maintenance windows.
    #[command(subcommand)]
    Silence(cli_alerting::SilenceCmd),
    /// Alert routing rules.
    #[command(subcommand)]
    Route(Box<cli_alerting::RouteCmd>),
    /// Users, their contact methods and notification rules.
    #[command(subcommand)]
    User(cli_oncall::PeopleCmd),
    /// Teams of users.
    #[command(subcommand)]
    Team(cli_oncall::PeopleCmd),
    /// Escalation policies: who is paged, in what order, after how long.
    #[command(subcommand, name = "escalation-policy")]
    EscalationPolicy(cli_oncall::PeopleCmd),
    /// On-call schedules and overrides.
    #[command(subcommand)]
    Schedule(cli_oncall::ScheduleCmd),
    /// Who is on call.
    #[command(subcommand)]
    Oncall(cli_oncall::OncallCmd),
    /// The notification outbox: what was sent, what is pending, what was given up on.
    #[command(subcommand)]
    Notification(cli_paging::NotificationCmd),
    /// The public status page: what it shows, component statuses set by hand.
    #[command(subcommand, name = "status-page")]
    StatusPage(cli_status_page::StatusPageCmd),
    /// Message templates: list, show, preview for an incident.
    #[command(subcommand)]
    Template(cli_paging::TemplateCmd),
    /// Health checks (probes): list, run one now, history.
    #[command(subcommand)]
    Check(cli_checks::CheckCmd),
    /// Check configuration.
    #[command(subcommand)]
    Config(cli::ConfigCmd),
    /// Manage API tokens (admin token needed).
    #[command(subcommand)]
    Token(cli::TokenCmd),
    /// Load generators for our own benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
}

fn main() -> ExitCode {
    klaxon_client::install_crypto_provider();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let client = || klaxon_client::Client::new(&cli.url, cli.token.clone());
    match cli.command {
        Command::Serve(args) => serve::run(args).await.map(|_| ExitCode::SUCCESS),
        Command::Incident(cmd) => cli::incident(&client()?, *cmd, cli.json).await,
        Command::Ack { id, message } => {
            cli::incident(&client()?, cli::IncidentCmd::Ack { id, message }, cli.json).await
        }
        Command::Timeline { id, verify } => cli::timeline(&client()?, &id, verify, cli.json).await,
        Command::Integration(cmd) => cli_alerting::integration(&client()?, cmd, cli.json).await,
        Command::Alert(cmd) => cli_alerting::alert(&client()?, cmd, cli.json).await,
        Command::Silence(cmd) => cli_alerting::silence(&client()?, cmd, cli.json).await,
        Command::Route(cmd) => cli_alerting::route(&client()?, *cmd, cli.json).await,
        Command::User(cmd) => cli_oncall::people(&client()?, "users", cmd, cli.json).await,
        Command::Team(cmd) => cli_oncall::people(&client()?, "teams", cmd, cli.json).await,
        Command::EscalationPolicy(cmd) => cli_oncall::people(&client()?, "escalation-policies", cmd, cli.json).await,
        Command::Schedule(cmd) => cli_oncall::schedule(&client()?, cmd, cli.json).await,
        Command::Oncall(cmd) => cli_oncall::oncall(&client()?, cmd, cli.json).await,
        Command::Notification(cmd) => cli_paging::notification(&client()?, cmd, cli.json).await,
        Command::StatusPage(cmd) => cli_status_page::run(&client()?, cmd, cli.json).await,
        Command::Template(cmd) => cli_paging::template(&client()?, cmd, cli.json).await,
        Command::Check(cmd) => cli_checks::check(&client()?, cmd, cli.json).await,
        Command::Config(cmd) => cli::config(cmd, cli.json),
        Command::Token(cmd) => cli::token(&client()?, cmd, cli.json).await,
        Command::Bench(cmd) => bench::run(cmd, &cli.url, cli.token.clone())
            .await
            .map(|_| ExitCode::SUCCESS),
    }
}
