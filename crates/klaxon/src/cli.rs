//! The CLI verbs: each is a call of the REST API through the typed client.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use klaxon_client::Client;
use klaxon_domain::incident::Impact;
use klaxon_domain::wire::{CreateToken, DeclareIncident, IncidentPatch, IncidentQuery, TokenRole};

use crate::{config, output};

#[derive(Subcommand, Debug)]
pub enum IncidentCmd {
    /// Declare an incident.
    #[command(
        after_help = "Example:\n  klaxon incident declare --title 'API returning 500s' --severity SEV-1 --category availability \\\n      --service api --service db --user-impact 'Uploads fail' --percent 100 --role ic=alice"
    )]
    Declare {
        #[arg(long)]
        title: String,
        /// Severity key or alias (SEV-1, P1, critical); default from the configuration.
        #[arg(long, short)]
        severity: Option<String>,
        #[arg(long, short)]
        category: Option<String>,
        /// Affected service (repeatable).
        #[arg(long = "service")]
        services: Vec<String>,
        #[arg(long, short)]
        description: Option<String>,
        /// Number of users affected.
        #[arg(long)]
        users_affected: Option<u64>,
        /// Share of users affected, 0-100.
        #[arg(long)]
        percent: Option<f64>,
        /// What users experience.
        #[arg(long)]
        user_impact: Option<String>,
        #[arg(long)]
        workaround: Option<String>,
        /// key=value (repeatable).
        #[arg(long = "label", value_parser = key_value)]
        labels: Vec<(String, String)>,
        /// role=person, e.g. ic=alice (repeatable).
        #[arg(long = "role", value_parser = key_value)]
        roles: Vec<(String, String)>,
        /// When it began (RFC 3339); default: detection time.
        #[arg(long)]
        started_at: Option<jiff::Timestamp>,
        /// When it was noticed (RFC 3339); default: now.
        #[arg(long)]
        detected_at: Option<jiff::Timestamp>,
        #[arg(long)]
        private: bool,
        /// Page people with this escalation policy until someone acknowledges.
        #[arg(long)]
        escalation_policy: Option<String>,
    },
    /// List incidents, newest first.
    #[command(
        after_help = "Examples:\n  klaxon incident list --status open\n  klaxon incident list --severity SEV-1,SEV-2 --service api --from 2026-11-01T00:00:00Z"
    )]
    List {
        /// Comma-separated statuses, or `open`.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        severity: Option<String>,
        #[arg(long)]
        category: Option<String>,
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one incident.
    Show { id: String },
    /// Change fields of an incident.
    #[command(
        after_help = "Example:\n  klaxon incident update INC-2026-11-23-001 --workaround 'Use the EU endpoint' --service api --service auth"
    )]
    Update {
        id: String,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        category: Option<String>,
        /// Replace the affected services (repeatable).
        #[arg(long = "service")]
        services: Vec<String>,
        #[arg(long)]
        workaround: Option<String>,
        #[arg(long)]
        users_affected: Option<u64>,
        #[arg(long)]
        percent: Option<f64>,
        #[arg(long)]
        user_impact: Option<String>,
        /// Replace the labels: key=value (repeatable).
        #[arg(long = "label", value_parser = key_value)]
        labels: Vec<(String, String)>,
        #[arg(long)]
        private: Option<bool>,
    },
    /// Move the status forward (triggered → acknowledged → investigating → identified → mitigating → monitoring → resolved → closed).
    #[command(
        after_help = "Example:\n  klaxon incident status INC-2026-11-23-001 identified --message 'Bad deploy at 14:00; rolling back'"
    )]
    Status {
        id: String,
        status: String,
        #[arg(long, short)]
        message: Option<String>,
    },
    /// Acknowledge.
    Ack {
        id: String,
        #[arg(long, short)]
        message: Option<String>,
    },
    /// Post a stakeholder update: on the timeline, next update due by the severity's cadence.
    #[command(
        name = "post-update",
        after_help = "Example:\n  klaxon incident post-update INC-2026-11-23-001 'Rolled back; error rate falling' --status monitoring --public"
    )]
    PostUpdate {
        id: String,
        message: String,
        /// Show it on the status page.
        #[arg(long)]
        public: bool,
        /// Move the status forward with the update.
        #[arg(long)]
        status: Option<String>,
    },
    /// List the stakeholder updates of an incident.
    Updates { id: String },
    /// Back to triggered: escalation pages again.
    Unack {
        id: String,
        #[arg(long, short)]
        reason: Option<String>,
    },
    /// Acknowledge for a while, then page again.
    #[command(
        after_help = "Examples:\n  klaxon incident snooze INC-2026-11-23-001 --for 30m\n  klaxon incident snooze INC-2026-11-23-001 --until 2026-11-23T12:00:00Z"
    )]
    Snooze {
        id: String,
        /// A duration such as 30m or 2h (at most 24h).
        #[arg(long = "for", conflicts_with = "until")]
        duration: Option<String>,
        #[arg(long)]
        until: Option<jiff::Timestamp>,
    },
    /// Hand the incident to users and page them now.
    #[command(after_help = "Example:\n  klaxon incident reassign INC-2026-11-23-001 carol --reason 'database expert'")]
    Reassign {
        id: String,
        #[arg(required = true)]
        users: Vec<String>,
        #[arg(long, short)]
        reason: Option<String>,
    },
    /// Page the next level of the escalation policy now.
    Escalate {
        id: String,
        #[arg(long, short)]
        reason: Option<String>,
    },
    /// Reopen a resolved (or later) incident.
    Reopen {
        id: String,
        /// Status to return to (default: investigating).
        #[arg(long)]
        status: Option<String>,
        #[arg(long, short)]
        reason: Option<String>,
    },
    /// Change the severity.
    Severity {
        id: String,
        severity: String,
        #[arg(long, short)]
        reason: Option<String>,
    },
    /// Assign a role (incident_commander/ic, technical_lead, communications_lead, scribe, customer_success_lead).
    #[command(
        after_help = "Examples:\n  klaxon incident role INC-2026-11-23-001 ic alice\n  klaxon incident role INC-2026-11-23-001 scribe --clear"
    )]
    Role {
        id: String,
        role: String,
        assignee: Option<String>,
        /// Unassign the role.
        #[arg(long, conflicts_with = "assignee")]
        clear: bool,
    },
    /// Add a note to the timeline.
    Note { id: String, text: String },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Validate a configuration file; errors give file, line and key.
    Check {
        /// Default: $KLAXON_CONFIG, then ./klaxon.yaml.
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Create a token; its secret is printed once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value = "responder")]
        role: RoleArg,
    },
    /// List tokens.
    List,
    /// Revoke a token by ID or name.
    Revoke { id: String },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum RoleArg {
    Viewer,
    Responder,
    Admin,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("expected key=value, got {s:?}"))
}

fn impact(users: Option<u64>, percent: Option<f64>, text: Option<String>) -> Option<Impact> {
    let i = Impact {
        users_affected: users,
        percent,
        user_facing: text,
    };
    (!i.is_empty()).then_some(i)
}

pub async fn incident(c: &Client, cmd: IncidentCmd, json: bool) -> anyhow::Result<ExitCode> {
    let one = |inc: klaxon_domain::Incident| -> anyhow::Result<ExitCode> {
        if json {
            output::json(&inc)?;
        } else {
            output::incident(&inc);
        }
        Ok(ExitCode::SUCCESS)
    };
    match cmd {
        IncidentCmd::Declare {
            title,
            severity,
            category,
            services,
            description,
            users_affected,
            percent,
            user_impact,
            workaround,
            labels,
            roles,
            started_at,
            detected_at,
            private,
            escalation_policy,
        } => {
            let req = DeclareIncident {
                title,
                description,
                severity,
                category,
                services,
                impact: impact(users_affected, percent, user_impact),
                workaround,
                labels: labels.into_iter().collect(),
                started_at,
                detected_at,
                roles: roles.into_iter().collect(),
                private,
                escalation_policy,
            };
            let inc = c.declare(&req).await?;
            if !json {
                println!("Declared {} ({}, {})", inc.id, inc.severity, inc.status);
            }
            one(inc)
        }
        IncidentCmd::List {
            status,
            severity,
            category,
            service,
            from,
            to,
            limit,
            cursor,
        } => {
            let q = IncidentQuery {
                status,
                severity,
                category,
                service,
                from,
                to,
                limit: Some(limit),
                cursor,
            };
            let page = c.list(&q).await?;
            if json {
                output::json(&page)?;
            } else {
                output::incidents(&page.items);
                if let Some(n) = page.next_cursor {
                    println!("More: --cursor {n}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        IncidentCmd::Show { id } => one(c.incident(&id).await?),
        IncidentCmd::Update {
            id,
            title,
            description,
            category,
            services,
            workaround,
            users_affected,
            percent,
            user_impact,
            labels,
            private,
        } => {
            let patch = IncidentPatch {
                title,
                description,
                category: category.map(Some),
                services: (!services.is_empty()).then_some(services),
                impact: impact(users_affected, percent, user_impact),
                workaround: workaround.map(Some),
                labels: (!labels.is_empty()).then(|| labels.into_iter().collect::<BTreeMap<_, _>>()),
                private,
                ..Default::default()
            };
            one(c.update(&id, &patch).await?)
        }
        IncidentCmd::Status { id, status, message } => one(c.set_status(&id, &status, message).await?),
        IncidentCmd::Ack { id, message } => one(c.ack(&id, message).await?),
        IncidentCmd::PostUpdate {
            id,
            message,
            public,
            status,
        } => {
            let posted = c
                .post_update(
                    &id,
                    &klaxon_domain::wire::PostUpdateRequest {
                        message,
                        public,
                        status,
                    },
                )
                .await?;
            if json {
                output::json(&posted)?;
            } else {
                println!(
                    "Posted update #{} on {}{}\n\nSubject: {}\n\n{}",
                    posted.update.number,
                    posted.incident.id,
                    if posted.update.public { " (public)" } else { "" },
                    posted.rendered.subject,
                    posted.rendered.body
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        IncidentCmd::Updates { id } => {
            let list = c.updates(&id).await?;
            if json {
                output::json(&list)?;
            } else {
                let mut t = output::table(&["#", "TIME", "BY", "STATUS", "PUBLIC", "MESSAGE"]);
                for u in &list {
                    t.add_row(vec![
                        u.number.to_string(),
                        u.at.strftime("%Y-%m-%d %H:%M").to_string(),
                        u.by.clone(),
                        u.status.to_string(),
                        if u.public { "yes" } else { "no" }.to_string(),
                        u.message.clone(),
                    ]);
                }
                println!("{t}");
            }
            Ok(ExitCode::SUCCESS)
        }
        IncidentCmd::Unack { id, reason } => one(c.unack(&id, reason).await?),
        IncidentCmd::Snooze { id, duration, until } => one(c
            .snooze(&id, &klaxon_domain::wire::SnoozeRequest { until, duration })
            .await?),
        IncidentCmd::Reassign { id, users, reason } => one(c.reassign(&id, users, reason).await?),
        IncidentCmd::Escalate { id, reason } => one(c.escalate(&id, reason).await?),
        IncidentCmd::Reopen { id, status, reason } => one(c.reopen(&id, status, reason).await?),
        IncidentCmd::Severity { id, severity, reason } => one(c.set_severity(&id, &severity, reason).await?),
        IncidentCmd::Role {
            id,
            role,
            assignee,
            clear,
        } => {
            if assignee.is_none() && !clear {
                bail!("name the person to assign, or pass --clear to unassign {role}");
            }
            one(c.assign_role(&id, &role, assignee).await?)
        }
        IncidentCmd::Note { id, text } => one(c.note(&id, &text).await?),
    }
}

pub async fn timeline(c: &Client, id: &str, verify: bool, json: bool) -> anyhow::Result<ExitCode> {
    if verify {
        let report = c.verify(id).await?;
        if json {
            output::json(&report)?;
        } else if report.ok {
            println!(
                "{}: timeline intact — {} events, head {}",
                report.incident_id,
                report.events_checked,
                report.head_hash.as_deref().unwrap_or("-")
            );
        } else {
            match &report.first_broken {
                Some(b) => println!("{}: BROKEN at event #{}: {}", report.incident_id, b.seq, b.reason),
                None => println!(
                    "{}: chain intact but the incident row differs from the replay of its events",
                    report.incident_id
                ),
            }
        }
        return Ok(if report.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        });
    }
    let t = c.timeline(id).await?;
    if json {
        output::json(&t)?;
    } else {
        output::timeline(&t.events);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn config(cmd: ConfigCmd, json: bool) -> anyhow::Result<ExitCode> {
    let ConfigCmd::Check { file } = cmd;
    let path = file
        .or_else(|| std::env::var_os("KLAXON_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("klaxon.yaml"));
    match config::load(&path) {
        Ok(cfg) => {
            if json {
                output::json(&serde_json::json!({"ok": true, "file": path.display().to_string(),
                    "severities": cfg.catalog.severities.keys(), "id_format": cfg.catalog.id_format.template()}))?;
            } else {
                println!(
                    "{}: OK (severities {}; default {}; {} categories, {} roles, {} services; IDs {})",
                    path.display(),
                    cfg.catalog.severities.keys().join(", "),
                    cfg.catalog.default_severity,
                    cfg.catalog.categories.len(),
                    cfg.catalog.roles.len(),
                    cfg.catalog.services.len(),
                    cfg.catalog.id_format.template()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if json {
                output::json(
                    &serde_json::json!({"ok": false, "file": e.file, "line": e.line, "key": e.key, "message": e.message}),
                )?;
            } else {
                eprintln!("{e}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

pub async fn token(c: &Client, cmd: TokenCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCmd::Create { name, role } => {
            let role = match role {
                RoleArg::Viewer => TokenRole::Viewer,
                RoleArg::Responder => TokenRole::Responder,
                RoleArg::Admin => TokenRole::Admin,
            };
            let created = c
                .create_token(&CreateToken { name, role })
                .await
                .context("creating the token")?;
            if json {
                output::json(&created)?;
            } else {
                println!(
                    "Created token {} ({}, {}). Its secret is shown once:\n\n    {}\n",
                    created.info.id,
                    created.info.name,
                    created.info.role.as_str(),
                    created.token
                );
            }
        }
        TokenCmd::List => {
            let list = c.tokens().await?;
            if json {
                output::json(&list)?;
            } else {
                output::tokens(&list);
            }
        }
        TokenCmd::Revoke { id } => {
            let t = c.revoke_token(&id).await?;
            if json {
                output::json(&t)?;
            } else {
                println!("Revoked {} ({})", t.id, t.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
