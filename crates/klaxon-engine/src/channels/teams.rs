//! Microsoft Teams (`teams`): an Adaptive Card posted to a Workflows
//! ("When a Teams webhook request is received") or legacy incoming-webhook
//! URL, the contact's address.

use std::time::Duration;

use futures::future::BoxFuture;
use klaxon_domain::message::Envelope;
use klaxon_store::Notification;
use serde_json::{Value, json};

use super::{Channel, SendError, envelope, http_client, status_error, transport_error};

/// The message document: one Adaptive Card 1.4 attachment with the title,
/// the incident's facts, the rendered body and a link to the incident.
pub fn teams_message(env: &Envelope) -> Value {
    let inc = &env.incident;
    let dash = || "—".to_string();
    let services = if inc.services.is_empty() {
        dash()
    } else {
        inc.services.join(", ")
    };
    let mut facts = vec![
        json!({"title": "Severity", "value": inc.severity}),
        json!({"title": "Status", "value": inc.status}),
        json!({"title": "Incident", "value": inc.id}),
        json!({"title": "Services", "value": services}),
        json!({"title": "Next update", "value": env.update_due.map(|t| t.to_string()).unwrap_or_else(dash)}),
    ];
    if let Some(u) = &env.user {
        let level = env.level_name.as_deref().map(|l| format!(" ({l})")).unwrap_or_default();
        facts.push(json!({"title": "Paged", "value": format!("{}{level}", u.name)}));
    }
    let title = if env.message.subject.trim().is_empty() {
        format!("[{}] {}", inc.severity, inc.title)
    } else {
        env.message.subject.clone()
    };
    let actions: Vec<Value> = inc
        .url
        .iter()
        .map(|url| json!({"type": "Action.OpenUrl", "title": format!("Open {}", inc.id), "url": url}))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": true},
                    {"type": "FactSet", "facts": facts},
                    {"type": "TextBlock", "text": env.message.body, "wrap": true},
                ],
                "actions": actions,
            }
        }]
    })
}

/// Teams through a webhook URL.
#[derive(Debug, Clone)]
pub struct Teams {
    http: reqwest::Client,
}

impl Teams {
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: http_client(timeout)?,
        })
    }
}

impl Channel for Teams {
    fn send<'a>(&'a self, n: &'a Notification, _now_unix: i64) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let env = envelope(n)?;
            // The URL is the secret (path IDs, `sig=`): errors show its host only.
            let shown = &shown_url(&n.address);
            let resp = self
                .http
                .post(&n.address)
                .json(&teams_message(&env))
                .send()
                .await
                .map_err(|e| transport_error("POST", shown, e.without_url()))?;
            if !resp.status().is_success() {
                return Err(status_error("POST", shown, &resp));
            }
            // Legacy connectors answer 200 with a failure text when Teams refused the card.
            let text = resp.text().await.unwrap_or_default();
            if text.contains("delivery failed") {
                let message = format!("POST {shown}: Teams answered {:?}", truncate(&text, 300));
                return Err(if text.contains("429") || text.contains("HTTP error 5") {
                    SendError::transient(message)
                } else {
                    SendError::permanent(message)
                });
            }
            Ok(())
        })
    }
}

/// `https://host/…`: what errors may show of a webhook URL.
fn shown_url(address: &str) -> String {
    match reqwest::Url::parse(address) {
        Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or("?")),
        Err(_) => "the Teams webhook URL".into(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use klaxon_domain::message::{EnvelopeIncident, types};
    use klaxon_domain::templates::Rendered;

    #[test]
    fn card_has_title_facts_body_and_link() {
        let env = Envelope {
            event_type: types::DECLARED.into(),
            idempotency_key: "k".into(),
            incident: EnvelopeIncident {
                id: "INC-2026-11-23-001".into(),
                title: "API down".into(),
                severity: "SEV-1".into(),
                status: "triggered".into(),
                services: vec!["api".into(), "db".into()],
                declared_at: jiff::Timestamp::UNIX_EPOCH,
                url: Some("https://k.example.com/api/v1/incidents/INC-2026-11-23-001".into()),
            },
            message: Rendered {
                name: "declared".into(),
                subject: "[SEV-1] API down".into(),
                body: "Uploads fail.".into(),
                short: "SEV-1 API down".into(),
            },
            sent_at: jiff::Timestamp::UNIX_EPOCH,
            reason: "declared".into(),
            user: None,
            policy: None,
            level: None,
            level_name: None,
            round: None,
            update_due: None,
            destination: None,
            unsubscribe_url: None,
        };
        let m = teams_message(&env);
        let card = &m["attachments"][0]["content"];
        assert_eq!(card["body"][0]["text"], "[SEV-1] API down");
        assert_eq!(card["body"][1]["facts"][3]["value"], "api, db");
        assert_eq!(card["body"][2]["text"], "Uploads fail.");
        assert_eq!(
            card["actions"][0]["url"],
            env.incident.url.clone().unwrap_or_default().as_str()
        );
    }
}
