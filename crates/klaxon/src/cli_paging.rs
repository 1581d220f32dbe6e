//! `klaxon notification list|retry` (the notification outbox) and
//! `klaxon template list|show|render` (message templates).

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
    let mut t = output::table(&[
        "ID", "INCIDENT", "TO", "CHANNEL", "PURPOSE", "STATE", "ATTEMPTS", "DUE", "ERROR",
    ]);
    for n in list {
        t.add_row(vec![
            n.id.to_string(),
            n.incident_id.clone(),
            if n.user.is_empty() {
                n.contact.clone()
            } else {
                n.user.clone()
            },
            format!("{} ({})", n.channel, n.contact),
            n.purpose.clone(),
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

#[derive(Subcommand, Debug)]
pub enum TemplateCmd {
    /// The message templates in force.
    List,
    /// A template's sources (subject, body, short).
    Show { name: String },
    /// Render a template for an incident, as it would be sent now.
    #[command(
        after_help = "Example:\n  klaxon template render status-update --incident INC-2026-11-23-001 --message 'Rolled back; error rate falling'"
    )]
    Render {
        name: String,
        #[arg(long)]
        incident: String,
        /// The update's text.
        #[arg(long, short)]
        message: Option<String>,
        /// Update number (INCIDENT UPDATE #N).
        #[arg(long)]
        number: Option<u32>,
    },
}

pub async fn template(c: &Client, cmd: TemplateCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        TemplateCmd::List => {
            let list = c.templates().await?;
            if json {
                output::json(&list)?;
            } else {
                let mut t = output::table(&["NAME", "SUBJECT"]);
                for i in &list {
                    t.add_row(vec![i.name.clone(), i.source.subject.clone()]);
                }
                println!("{t}");
            }
        }
        TemplateCmd::Show { name } => {
            let s = c.template(&name).await?;
            if json {
                output::json(&s)?;
            } else {
                println!("subject: {}\nshort:   {}\n\n{}", s.subject, s.short, s.body);
            }
        }
        TemplateCmd::Render {
            name,
            incident,
            message,
            number,
        } => {
            let r = c
                .render_template(
                    &name,
                    &klaxon_domain::wire::RenderRequest {
                        incident,
                        message,
                        update_number: number,
                    },
                )
                .await?;
            if json {
                output::json(&r)?;
            } else {
                println!("Subject: {}\nShort:   {}\n\n{}", r.subject, r.short, r.body);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
