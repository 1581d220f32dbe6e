//! ntfy (`ntfy`): self-hosted push to phones, no vendor relay. The address
//! is the topic URL; Klaxon publishes JSON to the server's root
//! (`{"topic", "title", "message", "priority", "tags", "click"}`), so titles
//! in any language need no header encoding. Pages are priority 5 (urgent:
//! sound and vibration through Do Not Disturb on Android), messages 3.

use std::time::Duration;

use futures::future::BoxFuture;
use klaxon_domain::message::Envelope;
use klaxon_store::Notification;
use serde_json::{Value, json};

use super::{Channel, SendError, envelope, http_client, status_error, transport_error};

/// Server root and topic of a topic URL.
pub fn split_topic(address: &str) -> Option<(&str, &str)> {
    let (base, topic) = address.trim_end_matches('/').rsplit_once('/')?;
    (!topic.is_empty() && base.contains("://") && base.len() > base.find("://")? + 3).then_some((base, topic))
}

/// The JSON document ntfy's publish API takes.
pub fn ntfy_message(env: &Envelope, topic: &str) -> Value {
    let inc = &env.incident;
    let page = env.is_page();
    let mut tags = vec![if page { "rotating_light" } else { "information_source" }.to_string()];
    tags.push(inc.severity.clone());
    let mut doc = json!({
        "topic": topic,
        "title": env.message.subject,
        "message": if page { env.message.short.clone() } else { env.message.body.clone() },
        "priority": if page { 5 } else { 3 },
        "tags": tags,
    });
    if let Some(url) = &inc.url {
        doc["click"] = json!(url);
        doc["actions"] = json!([{"action": "view", "label": format!("Open {}", inc.id), "url": url}]);
    }
    doc
}

#[derive(Debug, Clone)]
pub struct Ntfy {
    http: reqwest::Client,
    token: Option<String>,
}

impl Ntfy {
    pub fn new(token: Option<String>, timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: http_client(timeout)?,
            token,
        })
    }
}

impl Channel for Ntfy {
    fn send<'a>(&'a self, n: &'a Notification, _now_unix: i64) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let env = envelope(n)?;
            let Some((base, topic)) = split_topic(&n.address) else {
                return Err(SendError::permanent(format!(
                    "{:?} is not an ntfy topic URL",
                    n.address
                )));
            };
            let mut req = self
                .http
                .post(base)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(ntfy_message(&env, topic).to_string());
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.map_err(|e| transport_error("POST", base, e))?;
            if resp.status().is_success() {
                return Ok(());
            }
            Err(status_error("POST", base, &resp))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_urls_split_into_server_and_topic() {
        assert_eq!(
            split_topic("https://ntfy.example.com/oncall-alice"),
            Some(("https://ntfy.example.com", "oncall-alice"))
        );
        assert_eq!(
            split_topic("https://example.com/ntfy/alerts/"),
            Some(("https://example.com/ntfy", "alerts"))
        );
        assert_eq!(split_topic("https://ntfy.example.com"), None);
        assert_eq!(split_topic("oncall"), None);
    }
}
