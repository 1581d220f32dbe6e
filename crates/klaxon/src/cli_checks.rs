//! `klaxon check list|run|history`: the health checks of the server.

use std::process::ExitCode;

use clap::Subcommand;
use klaxon_client::Client;
use serde_json::Value;

use crate::output;

#[derive(Subcommand, Debug)]
pub enum CheckCmd {
    /// Every check with its state, last result and uptime.
    List,
    /// Run a check now and print the result (exit 0 when ok or degraded, 1 when down).
    #[command(after_help = "Example:\n  klaxon check run api-health")]
    Run { name: String },
    /// Raw results of a check, oldest first (kept 48 hours).
    #[command(after_help = "Example:\n  klaxon check history api-health --hours 6")]
    History {
        name: String,
        /// Hours back from now (1-48).
        #[arg(long, default_value_t = 24)]
        hours: u32,
    },
}

fn s(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn pct(v: &Value) -> String {
    v["ratio"]
        .as_f64()
        .map(|r| format!("{:.2}%", r * 100.0))
        .unwrap_or_else(|| "-".into())
}

fn list(checks: &[Value]) {
    let mut t = output::table(&["NAME", "KIND", "STATE", "LAST", "LATENCY", "24H", "30D", "MESSAGE"]);
    for c in checks {
        let last = &c["last"];
        t.add_row(vec![
            s(c, "name"),
            s(c, "kind"),
            s(c, "state"),
            s(last, "outcome"),
            last["latency_ms"]
                .as_i64()
                .map(|l| format!("{l} ms"))
                .unwrap_or_default(),
            pct(&c["uptime_24h"]),
            pct(&c["uptime_30d"]),
            s(last, "message"),
        ]);
    }
    println!("{t}");
}

pub async fn check(c: &Client, cmd: CheckCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        CheckCmd::List => {
            let checks = c.checks().await?;
            if json {
                output::json(&checks)?;
            } else {
                list(&checks);
            }
        }
        CheckCmd::Run { name } => {
            let r = c.run_check(&name).await?;
            if json {
                output::json(&r)?;
            } else {
                println!(
                    "{} {}: {} in {} ms — {}",
                    s(&r, "kind"),
                    s(&r, "check"),
                    s(&r, "outcome").to_uppercase(),
                    s(&r, "latency_ms"),
                    s(&r, "message")
                );
                let change = s(&r, "transition");
                if !change.is_empty() {
                    println!("state changed to {change}; incidents: {}", r["incidents"]);
                }
            }
            if r["outcome"] == "down" {
                return Ok(ExitCode::FAILURE);
            }
        }
        CheckCmd::History { name, hours } => {
            let rows = c.check_history(&name, Some(hours)).await?;
            if json {
                output::json(&rows)?;
            } else {
                let mut t = output::table(&["AT", "OUTCOME", "LATENCY", "MESSAGE"]);
                for r in &rows {
                    t.add_row(vec![
                        s(r, "at"),
                        s(r, "outcome"),
                        format!("{} ms", s(r, "latency_ms")),
                        s(r, "message"),
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
    use crate::config::parse;

    #[test]
    fn check_errors_name_file_line_and_key() {
        let e = parse(
            "checks:\n  - name: api\n    kind: http\n    url: http://x/healthz\n  - name: db\n    kind: tcp\n    url: http://x\n",
            "k.yaml",
        )
        .expect_err("url on tcp");
        assert_eq!((e.line, e.key.as_str()), (5, "checks[1].url"), "{e}");
        let e = parse(
            "checks:\n  - name: a\n    kind: tcp\n    address: h:1\n  - name: a\n    kind: tcp\n    address: h:2\n",
            "k.yaml",
        )
        .expect_err("dup");
        assert_eq!(e.key, "checks[1].name", "{e}");
        let e = parse(
            "checks:\n  - name: p\n    kind: prometheus\n    url: http://p:9090\n    query: up\n    op: '>'\n",
            "k.yaml",
        )
        .expect_err("threshold");
        assert_eq!(e.key, "checks[0].threshold", "{e}");
        let e = parse(
            "checks:\n  - name: p\n    kind: tcp\n    address: h:1\n    severity: SEV-9\n",
            "k.yaml",
        )
        .expect_err("sev");
        assert_eq!(e.key, "checks[0].severity", "{e}");
        let e = parse(
            "checks:\n  - name: p\n    kind: tcp\n    address: h:1\n    intervall: 5s\n",
            "k.yaml",
        )
        .expect_err("typo");
        assert_eq!(e.line, 5, "{e}");
        let c = parse(
            "checks:\n  - name: api\n    kind: http\n    url: https://x/healthz\n    expected_status: [200, 3xx]\n    for: 2m\n",
            "k.yaml",
        )
        .expect("valid");
        let spec = &c.file.checks.as_ref().expect("checks")[0].value;
        assert_eq!(spec.for_duration, Some(std::time::Duration::from_secs(120)));
        assert_eq!(spec.failures_before_down, 3);
        assert_eq!(spec.interval, std::time::Duration::from_secs(30));
        assert!(
            spec.expected_status
                .as_ref()
                .is_some_and(|e| e.matches(302) && e.matches(200) && !e.matches(201))
        );
    }
}
