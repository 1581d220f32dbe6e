//! `klaxon status-page show|set|clear`: what the public page shows, and
//! component statuses set by hand.

use std::process::ExitCode;

use clap::Subcommand;
use klaxon_client::Client;

use crate::output;

#[derive(Subcommand, Debug)]
pub enum StatusPageCmd {
    /// The overall status, components and current incidents as the public sees them.
    Show,
    /// Set a component's status by hand; it wins over incidents and checks until cleared.
    #[command(
        after_help = "Example:\n  klaxon status-page set api degraded_performance --note \"Slow uploads, see INC-2026-11-23-001\""
    )]
    Set {
        component: String,
        /// operational, degraded_performance, partial_outage, major_outage or under_maintenance.
        status: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Let incidents and checks decide the component's status again.
    Clear { component: String },
}

pub async fn run(c: &Client, cmd: StatusPageCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        StatusPageCmd::Show => {
            let v = c.status_page().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::SUCCESS);
            }
            let s = &v["summary"];
            println!(
                "{} — {} ({})",
                s["page"]["name"].as_str().unwrap_or("Status"),
                s["status"]["description"].as_str().unwrap_or(""),
                s["status"]["indicator"].as_str().unwrap_or("")
            );
            let overridden: Vec<&str> = v["overrides"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["component"].as_str())
                .collect();
            let mut t = output::table(&["COMPONENT", "NAME", "STATUS", "SET BY HAND"]);
            for comp in s["components"].as_array().into_iter().flatten() {
                if comp["group"] == true {
                    continue;
                }
                let id = comp["id"].as_str().unwrap_or("");
                t.add_row(vec![
                    id.to_string(),
                    comp["name"].as_str().unwrap_or("").to_string(),
                    comp["status"].as_str().unwrap_or("").to_string(),
                    if overridden.contains(&id) { "yes" } else { "" }.to_string(),
                ]);
            }
            println!("{t}");
            for i in s["incidents"].as_array().into_iter().flatten() {
                println!(
                    "incident {} [{}] {} — {}",
                    i["id"].as_str().unwrap_or(""),
                    i["impact"].as_str().unwrap_or(""),
                    i["name"].as_str().unwrap_or(""),
                    i["status"].as_str().unwrap_or("")
                );
            }
        }
        StatusPageCmd::Set {
            component,
            status,
            note,
        } => {
            let o = c.set_component(&component, &status, note.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&o)?);
            } else {
                println!("{component} is {status} until cleared");
            }
        }
        StatusPageCmd::Clear { component } => {
            c.clear_component(&component).await?;
            if !json {
                println!("{component} follows incidents and checks again");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
