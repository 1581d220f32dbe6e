//! CLI verbs for on-call: schedules, overrides, who is on call, shifts.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use klaxon_client::Client;
use klaxon_domain::schedule::{CreateOverride, ScheduleSpec};

use crate::output;

#[derive(Subcommand, Debug)]
pub enum ScheduleCmd {
    /// List schedules.
    List,
    /// Show a schedule, its layers and upcoming overrides.
    Show { id: String },
    /// Create or replace a schedule from a JSON or YAML file (see docs/oncall.md).
    #[command(after_help = "Example:\n  klaxon schedule apply platform.yaml")]
    Apply { file: PathBuf },
    /// Put someone on call for a role over a period.
    #[command(
        after_help = "Example:\n  klaxon schedule override platform --user carol --from 2026-12-24T09:00:00Z --to 2026-12-27T09:00:00Z --role primary"
    )]
    Override {
        id: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        from: jiff::Timestamp,
        #[arg(long)]
        to: jiff::Timestamp,
        #[arg(long)]
        role: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PeopleCmd {
    /// Create or replace from a YAML or JSON file (see docs/oncall.md).
    Apply {
        file: PathBuf,
    },
    List,
    Show {
        id: String,
    },
    Delete {
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum OncallCmd {
    /// Who is on call now (or --at), for one schedule or all.
    Now {
        #[arg(long)]
        schedule: Option<String>,
        #[arg(long)]
        at: Option<String>,
    },
    /// The shifts of a schedule over a range, as a table.
    #[command(
        after_help = "Example:\n  klaxon oncall shifts platform --from 2026-11-23T00:00:00Z --to 2026-12-21T00:00:00Z"
    )]
    Shifts {
        schedule: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        role: Option<String>,
    },
}

pub async fn schedule(c: &Client, cmd: ScheduleCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        ScheduleCmd::List => {
            let list = c.schedules().await?;
            if json {
                output::json(&list)?;
            } else {
                let mut t = output::table(&["ID", "TIME ZONE", "ROLES", "OVERRIDES", "DESCRIPTION"]);
                for s in &list {
                    t.add_row(vec![
                        s.spec.name.clone(),
                        s.spec.time_zone.clone(),
                        s.spec.roles.keys().cloned().collect::<Vec<_>>().join(", "),
                        s.overrides.len().to_string(),
                        s.spec.description.clone(),
                    ]);
                }
                println!("{t}");
            }
        }
        ScheduleCmd::Show { id } => {
            let s = c.schedule(&id).await?;
            if json {
                output::json(&s)?;
            } else {
                let mut t = output::table(&["ROLE", "LAYER", "PARTICIPANTS", "SHIFT", "HAND-OFF", "FROM", "ZONE"]);
                for (role, layers) in &s.spec.roles {
                    for (i, l) in layers.iter().enumerate() {
                        t.add_row(vec![
                            role.clone(),
                            (i + 1).to_string(),
                            l.participants.join(" → "),
                            serde_json::to_string(&l.shift)?,
                            l.handoff.to_string(),
                            l.start.to_string(),
                            l.time_zone.clone().unwrap_or_else(|| s.spec.time_zone.clone()),
                        ]);
                    }
                }
                println!("{t}");
                for o in &s.overrides {
                    println!(
                        "override {}: {} covers {} from {} to {}",
                        o.id, o.user, o.role, o.start, o.end
                    );
                }
            }
        }
        ScheduleCmd::Apply { file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let spec: ScheduleSpec = if file.extension().is_some_and(|e| e == "json") {
                serde_json::from_str(&text)?
            } else {
                serde_saphyr::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
            };
            let s = c.put_schedule(&spec).await?;
            if json {
                output::json(&s)?;
            } else {
                println!("Schedule {} saved ({} roles)", s.spec.name, s.spec.roles.len());
            }
        }
        ScheduleCmd::Override {
            id,
            user,
            from,
            to,
            role,
        } => {
            let o = c
                .add_override(
                    &id,
                    &CreateOverride {
                        role,
                        user,
                        start: from,
                        end: to,
                    },
                )
                .await?;
            if json {
                output::json(&o)?;
            } else {
                println!(
                    "Override {}: {} covers {} of {id} from {} to {}",
                    o.id, o.user, o.role, o.start, o.end
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_doc<T: serde::de::DeserializeOwned>(file: &std::path::Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    if file.extension().is_some_and(|e| e == "json") {
        Ok(serde_json::from_str(&text)?)
    } else {
        serde_saphyr::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
    }
}

/// `klaxon user|team|escalation-policy ...` (`kind`: `users`, `teams`, `escalation-policies`).
pub async fn people(c: &Client, kind: &str, cmd: PeopleCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        PeopleCmd::Apply { file } => {
            let saved = match kind {
                "users" => {
                    let u: klaxon_domain::people::User = read_doc(&file)?;
                    serde_json::to_value(c.put_document(kind, &u.id.clone(), &u).await?)?
                }
                "teams" => {
                    let t: klaxon_domain::people::Team = read_doc(&file)?;
                    serde_json::to_value(c.put_document(kind, &t.id.clone(), &t).await?)?
                }
                _ => {
                    let p: klaxon_domain::escalation::EscalationPolicy = read_doc(&file)?;
                    serde_json::to_value(c.put_document(kind, &p.id.clone(), &p).await?)?
                }
            };
            if json {
                output::json(&saved)?;
            } else {
                println!("Saved {}", saved["id"].as_str().unwrap_or(""));
            }
        }
        PeopleCmd::List => {
            let list = c.documents(kind).await?;
            if json {
                output::json(&list)?;
            } else {
                let mut t = output::table(&["ID", "NAME", "DETAILS"]);
                for d in &list {
                    let details = if kind == "escalation-policies" {
                        let levels: Vec<String> = d["levels"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|l| format!("{} ({} min)", l["name"].as_str().unwrap_or("level"), l["delay_minutes"]))
                            .collect();
                        format!("{} · repeat {}", levels.join(" → "), d["repeat"])
                    } else if kind == "users" {
                        let methods: Vec<String> = d["contact_methods"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|m| {
                                format!(
                                    "{}:{}",
                                    m["kind"].as_str().unwrap_or(""),
                                    m["name"].as_str().unwrap_or("")
                                )
                            })
                            .collect();
                        format!(
                            "{} · {} · {}",
                            d["email"].as_str().unwrap_or(""),
                            d["time_zone"].as_str().unwrap_or(""),
                            methods.join(", ")
                        )
                    } else {
                        d["members"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|m| m.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    t.add_row(vec![
                        d["id"].as_str().unwrap_or("").to_string(),
                        d["name"]
                            .as_str()
                            .or(d["description"].as_str())
                            .unwrap_or("")
                            .to_string(),
                        details,
                    ]);
                }
                println!("{t}");
            }
        }
        PeopleCmd::Show { id } => output::json(&c.document(kind, &id).await?)?,
        PeopleCmd::Delete { id } => {
            c.delete_document(kind, &id).await?;
            if !json {
                println!("Deleted {id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn oncall(c: &Client, cmd: OncallCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        OncallCmd::Now { schedule, at } => {
            let ids = match schedule {
                Some(s) => vec![s],
                None => c.schedules().await?.into_iter().map(|s| s.spec.name).collect(),
            };
            let mut all = Vec::new();
            for id in ids {
                all.push(c.oncall(&id, at.clone()).await?);
            }
            if json {
                output::json(&all)?;
            } else {
                let mut t = output::table(&["SCHEDULE", "ROLE", "ON CALL"]);
                for o in &all {
                    for (role, who) in &o.oncall {
                        t.add_row(vec![
                            o.schedule.clone(),
                            role.clone(),
                            who.clone().unwrap_or_else(|| "(nobody)".into()),
                        ]);
                    }
                }
                println!("{t}");
            }
        }
        OncallCmd::Shifts {
            schedule,
            from,
            to,
            role,
        } => {
            let shifts = c.shifts(&schedule, &from, &to, role).await?;
            if json {
                output::json(&shifts)?;
            } else {
                let mut t = output::table(&["ROLE", "ON CALL", "FROM", "TO"]);
                for s in &shifts {
                    t.add_row(vec![
                        s.role.clone(),
                        s.user.clone().unwrap_or_else(|| "(nobody)".into()),
                        output::time(Some(s.start)),
                        output::time(Some(s.end)),
                    ]);
                }
                println!("{t}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    /// The schedule in docs/oncall.md is a valid schedule.
    #[test]
    fn documented_schedule_validates() {
        let doc = include_str!("../../../docs/oncall.md");
        let yaml = doc
            .split("```yaml\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .unwrap();
        let spec: klaxon_domain::schedule::ScheduleSpec = serde_saphyr::from_str(yaml).unwrap();
        spec.validate().unwrap();
        let plan = spec.plan("incident_commander", &[]).unwrap();
        assert_eq!(
            plan.who_at("2026-11-24T10:00:00Z".parse().unwrap()),
            Some("manager-z"),
            "weekday business hours"
        );
        assert_eq!(
            plan.who_at("2026-11-28T10:00:00Z".parse().unwrap()),
            Some("manager-x"),
            "Saturday"
        );
    }
}
