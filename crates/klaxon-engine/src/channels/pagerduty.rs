//! PagerDuty forwarding (`pagerduty`): Klaxon incidents become PagerDuty
//! alerts through the Events API v2. The contact's address is the
//! integration's routing key; the incident ID is the `dedup_key`, so every
//! event of one incident lands on the same PagerDuty alert.

use std::time::Duration;

use futures::future::BoxFuture;
use klaxon_domain::message::{Envelope, types};
use klaxon_store::Notification;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Channel, SendError, envelope, http_client, status_error, transport_error};

/// Longest `payload.summary` PagerDuty accepts.
pub const SUMMARY_MAX: usize = 1024;

/// PagerDuty's severity for a Klaxon severity key: SEV-1 → critical,
/// SEV-2 → error, SEV-3 → warning, SEV-4 → info; anything else → error.
pub fn pd_severity(severity: &str) -> &'static str {
    match severity.trim().to_ascii_uppercase().as_str() {
        "SEV-1" | "SEV1" | "P1" => "critical",
        "SEV-2" | "SEV2" | "P2" => "error",
        "SEV-3" | "SEV3" | "P3" => "warning",
        "SEV-4" | "SEV4" | "P4" => "info",
        _ => "error",
    }
}

/// The `event_action` for an envelope: acknowledged → `acknowledge`,
/// resolved → `resolve`, everything else → `trigger`.
pub fn event_action(event_type: &str) -> &'static str {
    match event_type {
        types::ACKNOWLEDGED => "acknowledge",
        types::RESOLVED => "resolve",
        _ => "trigger",
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The Events API v2 document for one notification.
pub fn pd_event(routing_key: &str, env: &Envelope, client_url: Option<&str>) -> Value {
    let inc = &env.incident;
    let action = event_action(&env.event_type);
    if action != "trigger" {
        return json!({"routing_key": routing_key, "event_action": action, "dedup_key": inc.id});
    }
    let summary = if env.message.subject.trim().is_empty() {
        format!("[{}] {}", inc.severity, inc.title)
    } else {
        env.message.subject.trim().to_string()
    };
    let mut payload = json!({
        "summary": truncate(&summary, SUMMARY_MAX),
        "source": "klaxon",
        "severity": pd_severity(&inc.severity),
        "timestamp": env.sent_at.to_string(),
        "class": env.event_type,
        "custom_details": {
            "incident": inc.id,
            "title": inc.title,
            "severity": inc.severity,
            "status": inc.status,
            "services": inc.services,
            "url": inc.url,
            "message": env.message.body,
        },
    });
    if let Some(first) = inc.services.first() {
        payload["component"] = json!(first);
        payload["group"] = json!(inc.services.join(","));
    }
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": inc.id,
        "payload": payload,
        "client": "Klaxon",
    });
    if let Some(url) = &inc.url {
        event["links"] = json!([{"href": url, "text": format!("{} on Klaxon", inc.id)}]);
    }
    if let Some(c) = client_url {
        event["client_url"] = json!(c);
    }
    event
}

/// PagerDuty's answer.
#[derive(Debug, Default, Deserialize)]
struct PdAnswer {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Vec<String>,
}

/// Events API v2 sender.
#[derive(Debug, Clone)]
pub struct PagerDuty {
    http: reqwest::Client,
    events_url: String,
    client_url: Option<String>,
}

impl PagerDuty {
    pub fn new(events_url: &str, public_url: Option<String>, timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: http_client(timeout)?,
            events_url: events_url.to_string(),
            client_url: public_url,
        })
    }
}

impl Channel for PagerDuty {
    fn send<'a>(&'a self, n: &'a Notification, _now_unix: i64) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let env = envelope(n)?;
            let url = &self.events_url;
            let resp = self
                .http
                .post(url)
                .json(&pd_event(&n.address, &env, self.client_url.as_deref()))
                .send()
                .await
                .map_err(|e| transport_error("POST", url, e))?;
            if resp.status().is_success() {
                return Ok(());
            }
            let mut err = status_error("POST", url, &resp);
            let text = resp.text().await.unwrap_or_default();
            let a: PdAnswer = serde_json::from_str(&text).unwrap_or_default();
            if a.status.is_some() || a.message.is_some() {
                err.message = format!(
                    "{}: {} {} {}",
                    err.message,
                    a.status.unwrap_or_default(),
                    a.message.unwrap_or_default(),
                    a.errors.join("; ")
                )
                .trim_end()
                .to_string();
            }
            Err(err)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_and_actions_map() {
        assert_eq!(pd_severity("SEV-1"), "critical");
        assert_eq!(pd_severity("sev-2"), "error");
        assert_eq!(pd_severity("SEV-3"), "warning");
        assert_eq!(pd_severity("SEV-4"), "info");
        assert_eq!(pd_severity("CUSTOM"), "error");
        assert_eq!(event_action(types::PAGED), "trigger");
        assert_eq!(event_action(types::REOPENED), "trigger");
        assert_eq!(event_action(types::ACKNOWLEDGED), "acknowledge");
        assert_eq!(event_action(types::RESOLVED), "resolve");
        assert_eq!(truncate(&"x".repeat(2000), SUMMARY_MAX).chars().count(), SUMMARY_MAX);
    }
}
