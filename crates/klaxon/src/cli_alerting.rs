//! CLI verbs for alerting: integrations, alerts, silences and routes.

use std::process::ExitCode;

use clap::Subcommand;
use klaxon_client::Client;
use klaxon_domain::wire::{CreateIntegration, CreateSilence, IntegrationFormat};
use serde_json::{Value, json};

use crate::output;

#[derive(Subcommand, Debug)]
pub enum IntegrationCmd {
    /// Create an alert source; its key is printed once.
    #[command(
        after_help = "Examples:\n  klaxon integration create --name prometheus --format alertmanager --json\n  klaxon integration create --name datadog --format pagerduty"
    )]
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        format: FormatArg,
    },
    /// List integrations (keys are never shown again).
    List,
    /// Replace an integration's key; the old key stops working.
    RotateKey { id: String },
    /// Delete an integration.
    Delete { id: String },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum FormatArg {
    Alertmanager,
    Pagerduty,
    Grafana,
    Generic,
}

impl From<FormatArg> for IntegrationFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Alertmanager => IntegrationFormat::Alertmanager,
            FormatArg::Pagerduty => IntegrationFormat::Pagerduty,
            FormatArg::Grafana => IntegrationFormat::Grafana,
            FormatArg::Generic => IntegrationFormat::Generic,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum AlertCmd {
    /// List alerts, newest first.
    List {
        /// firing, resolved or suppressed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        integration: Option<String>,
        #[arg(long)]
        incident: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one alert.
    Show { id: String },
    /// Acknowledge an alert (and its incidents).
    Ack { id: String },
    /// Resolve an alert by hand.
    Resolve { id: String },
}

#[derive(Subcommand, Debug)]
pub enum SilenceCmd {
    /// Silence matching alerts for a while (they are stored, marked suppressed, and page nobody).
    #[command(
        after_help = "Examples:\n  klaxon silence create --matcher alertname=DiskFull --matcher 'instance=~db-.*' --duration 2h --comment 'disk swap'\n  klaxon silence create --kind maintenance --matcher service=api --starts-at 2026-11-24T22:00:00Z --ends-at 2026-11-24T23:00:00Z"
    )]
    Create {
        /// name=value, name!=value, name=~regex or name!~regex (repeatable).
        #[arg(long = "matcher", required = true)]
        matchers: Vec<String>,
        #[arg(long)]
        duration: Option<String>,
        #[arg(long)]
        starts_at: Option<jiff::Timestamp>,
        #[arg(long)]
        ends_at: Option<jiff::Timestamp>,
        #[arg(long, default_value = "")]
        comment: String,
        /// silence or maintenance.
        #[arg(long)]
        kind: Option<String>,
    },
    /// Active and upcoming silences.
    List {
        /// Include ended ones.
        #[arg(long)]
        all: bool,
    },
    /// End a silence now.
    Expire { id: String },
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum RouteCmd {
    /// Routes in evaluation order.
    List,
    /// Create or replace an API route.
    #[command(
        after_help = "Example:\n  klaxon route put databases --matcher team=db --severity SEV-2 --service db --group-by alertname --group-by cluster --auto-resolve monitoring"
    )]
    Put {
        name: String,
        #[arg(long = "matcher")]
        matchers: Vec<String>,
        #[arg(long)]
        severity: Option<String>,
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        category: Option<String>,
        #[arg(long)]
        escalation_policy: Option<String>,
        #[arg(long)]
        runbook: Option<String>,
        #[arg(long = "group-by")]
        group_by: Vec<String>,
        /// resolve, monitoring or annotate.
        #[arg(long)]
        auto_resolve: Option<String>,
        #[arg(long)]
        reopen_window: Option<String>,
        /// Keep matching later routes.
        #[arg(long = "continue")]
        continue_matching: bool,
    },
    /// Delete an API route.
    Delete { name: String },
}

fn print(v: &impl serde::Serialize, json: bool, human: impl FnOnce()) -> anyhow::Result<ExitCode> {
    if json {
        output::json(v)?;
    } else {
        human();
    }
    Ok(ExitCode::SUCCESS)
}

/// A JSON array of strings as a list (anything else: empty).
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(String::from))
        .collect()
}

fn s(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

pub async fn integration(c: &Client, cmd: IntegrationCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        IntegrationCmd::Create { name, format } => {
            let i = c
                .create_integration(&CreateIntegration {
                    name,
                    format: format.into(),
                })
                .await?;
            print(&i, json, || {
                println!(
                    "Created integration {} ({}, {}). Its key is shown once:\n\n    {}\n\nSenders post to {}{}",
                    i.info.name,
                    i.info.id,
                    i.info.format.as_str(),
                    i.key,
                    c.base_url(),
                    i.ingest_path
                );
            })
        }
        IntegrationCmd::List => {
            let list = c.integrations().await?;
            print(&list, json, || {
                let mut t = output::table(&["ID", "NAME", "FORMAT", "KEY", "CREATED"]);
                for i in &list {
                    t.add_row(vec![
                        i.id.clone(),
                        i.name.clone(),
                        i.format.as_str().into(),
                        format!("{}…", i.key_prefix),
                        output::time(Some(i.created_at)),
                    ]);
                }
                println!("{t}");
            })
        }
        IntegrationCmd::RotateKey { id } => {
            let i = c.rotate_integration_key(&id).await?;
            print(&i, json, || {
                println!(
                    "New key for {} (the old one no longer works):\n\n    {}\n",
                    i.info.name, i.key
                )
            })
        }
        IntegrationCmd::Delete { id } => {
            let i = c.delete_integration(&id).await?;
            print(&i, json, || println!("Deleted integration {} ({})", i.name, i.id))
        }
    }
}

pub async fn alert(c: &Client, cmd: AlertCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        AlertCmd::List {
            status,
            integration,
            incident,
            limit,
        } => {
            let mut q = vec![("limit", limit.to_string())];
            for (k, v) in [("status", status), ("integration", integration), ("incident", incident)] {
                if let Some(v) = v {
                    q.push((k, v));
                }
            }
            let page = c.alerts(&q).await?;
            print(&page, json, || {
                let mut t = output::table(&["ID", "STATUS", "SEVERITY", "SUMMARY", "COUNT", "INCIDENTS", "LAST SEEN"]);
                for a in page["items"].as_array().into_iter().flatten() {
                    let mut status = s(a, "status");
                    if a["suppressed_by"].is_string() {
                        status.push_str(" (suppressed)");
                    }
                    if a["flapping"] == json!(true) {
                        status.push_str(" (flapping)");
                    }
                    let incidents: Vec<String> = strings(&a["incidents"]);
                    t.add_row(vec![
                        s(a, "id"),
                        status,
                        s(a, "severity"),
                        s(a, "summary"),
                        s(a, "receive_count"),
                        incidents.join(", "),
                        s(a, "last_seen_at"),
                    ]);
                }
                println!("{t}");
            })
        }
        AlertCmd::Show { id } => {
            let a = c.alert(&id).await?;
            print(&a, json, || {
                let mut t = output::table(&["FIELD", "VALUE"]);
                t.add_row(vec!["id".to_string(), a.id.to_string()]);
                t.add_row(vec!["summary".to_string(), a.summary.clone()]);
                t.add_row(vec!["status".to_string(), a.status.clone()]);
                t.add_row(vec!["dedup key".to_string(), a.dedup_key.clone()]);
                t.add_row(vec!["received".to_string(), format!("{} times", a.receive_count)]);
                t.add_row(vec!["incidents".to_string(), a.incidents.join(", ")]);
                t.add_row(vec![
                    "labels".to_string(),
                    a.labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]);
                if let Some(sil) = &a.suppressed_by {
                    t.add_row(vec!["suppressed by".to_string(), sil.clone()]);
                }
                println!("{t}");
            })
        }
        AlertCmd::Ack { id } => {
            let o = c.alert_action(&id, "ack").await?;
            print(&o, json, || {
                println!("Alert {id} acknowledged; incidents: {}", o.incidents.join(", "))
            })
        }
        AlertCmd::Resolve { id } => {
            let o = c.alert_action(&id, "resolve").await?;
            print(&o, json, || {
                println!("Alert {id} resolved; incidents: {}", o.incidents.join(", "))
            })
        }
    }
}

pub async fn silence(c: &Client, cmd: SilenceCmd, json: bool) -> anyhow::Result<ExitCode> {
    let table = |list: &[Value]| {
        let mut t = output::table(&["ID", "KIND", "MATCHERS", "STARTS", "ENDS", "BY", "COMMENT"]);
        for v in list {
            let m: Vec<String> = strings(&v["matchers"]);
            t.add_row(vec![
                s(v, "id"),
                s(v, "kind"),
                m.join(", "),
                s(v, "starts_at"),
                s(v, "ends_at"),
                s(v, "created_by"),
                s(v, "comment"),
            ]);
        }
        println!("{t}");
    };
    match cmd {
        SilenceCmd::Create {
            matchers,
            duration,
            starts_at,
            ends_at,
            comment,
            kind,
        } => {
            let v = c
                .create_silence(&CreateSilence {
                    matchers,
                    starts_at,
                    ends_at,
                    duration,
                    comment,
                    kind,
                })
                .await?;
            print(&v, json, || table(std::slice::from_ref(&v)))
        }
        SilenceCmd::List { all } => {
            let list = c.silences(all).await?;
            print(&list, json, || table(&list))
        }
        SilenceCmd::Expire { id } => {
            let v = c.expire_silence(&id).await?;
            print(&v, json, || println!("Silence {id} ended"))
        }
    }
}

pub async fn route(c: &Client, cmd: RouteCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        RouteCmd::List => {
            let list = c.routes().await?;
            print(&list, json, || {
                let mut t = output::table(&[
                    "NAME",
                    "SOURCE",
                    "MATCHERS",
                    "SEVERITY",
                    "SERVICE",
                    "GROUP BY",
                    "AUTO-RESOLVE",
                    "CONTINUE",
                ]);
                for r in &list {
                    let m: Vec<String> = strings(&r["matchers"]);
                    let g: Vec<String> = strings(&r["group_by"]);
                    t.add_row(vec![
                        s(r, "name"),
                        s(r, "source"),
                        m.join(", "),
                        s(r, "severity"),
                        s(r, "service"),
                        if g.is_empty() {
                            "(sender's group)".into()
                        } else {
                            g.join(", ")
                        },
                        s(r, "auto_resolve"),
                        s(r, "continue"),
                    ]);
                }
                println!("{t}");
            })
        }
        RouteCmd::Put {
            name,
            matchers,
            severity,
            service,
            category,
            escalation_policy,
            runbook,
            group_by,
            auto_resolve,
            reopen_window,
            continue_matching,
        } => {
            let mut body = json!({"name": name, "matchers": matchers, "continue": continue_matching});
            for (k, v) in [
                ("severity", severity),
                ("service", service),
                ("category", category),
                ("escalation_policy", escalation_policy),
                ("runbook", runbook),
                ("auto_resolve", auto_resolve),
                ("reopen_window", reopen_window),
            ] {
                if let Some(v) = v {
                    body[k] = json!(v);
                }
            }
            if !group_by.is_empty() {
                body["group_by"] = json!(group_by);
            }
            let r = c.put_route(&name, &body).await?;
            print(&r, json, || println!("Route {name} saved"))
        }
        RouteCmd::Delete { name } => {
            c.delete_route(&name).await?;
            print(&json!({"deleted": name}), json, || println!("Route {name} deleted"))
        }
    }
}
