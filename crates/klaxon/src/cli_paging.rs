//! `klaxon notification list|retry`: the notification outbox.

use std::process::ExitCode;

use clap::Subcommand;
use klaxon_client::Client;
use klaxon_domain::wire::{Notification, NotificationQuery};

use crate::output;

#[derive(Subcommand, Debug)]
pub enum NotificationCmd {
    /// List notifications, newest first.
    #[command(
        after_help = "Examples:\n  klaxon notification list --state dead\n  klaxon notification list --incident INC-2026-11-23-001"
    )]
    List {
        /// pending, delivered, dead or cancelled.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        incident: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Queue a dead notification again.
    Retry { id: i64 },
}

fn print(list: &[Notification]) {
    let mut t = output::table(&["ID", "INCIDENT", "USER", "CHANNEL", "STATE", "ATTEMPTS", "DUE", "ERROR"]);
    for n in list {
        t.add_row(vec![
            n.id.to_string(),
            n.incident_id.clone(),
            n.user.clone(),
            format!("{} ({})", n.channel, n.contact),
            n.state.clone(),
            n.attempts.to_string(),
            n.due_at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            n.last_error.clone().unwrap_or_default(),
        ]);
    }
    println!("{t}");
}

pub async fn notification(c: &Client, cmd: NotificationCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        NotificationCmd::List { state, incident, limit } => {
            let list = c
                .notifications(&NotificationQuery {
                    state,
                    incident,
                    limit: Some(limit),
                })
                .await?;
            if json {
                output::json(&list)?;
            } else {
                print(&list);
            }
        }
        NotificationCmd::Retry { id } => {
            let n = c.retry_notification(id).await?;
            if json {
                output::json(&n)?;
            } else {
                println!("Notification {} queued again for {} ({})", n.id, n.user, n.channel);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
