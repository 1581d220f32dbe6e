//! Delivery channels. Each turns an outbox row into one request to a
//! provider; the outbox does retries, backoff and bookkeeping.
//!
//! Only the generic webhook is built here; email, SMS/voice and Slack plug in
//! through the same [`Channel`] trait.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use klaxon_store::Notification;
use sha2::Sha256;

/// Why a delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub message: String,
    /// Trying again will not help (e.g. 404, 400): give up at once.
    pub permanent: bool,
    /// The receiver asked us to wait (HTTP `Retry-After`).
    pub retry_after: Option<Duration>,
}

impl SendError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
            retry_after: None,
        }
    }
}

/// One way of reaching people.
pub trait Channel: Send + Sync {
    /// Deliver one notification (its `body` is the JSON document to send).
    fn send<'a>(&'a self, n: &'a Notification, now_unix: i64) -> BoxFuture<'a, Result<(), SendError>>;
}

/// The channels this node can deliver through, by contact kind
/// (`webhook`, `email`, `sms`, `voice`, `slack`).
#[derive(Clone, Default)]
pub struct Channels {
    map: HashMap<String, Arc<dyn Channel>>,
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.map.keys()).finish()
    }
}

impl Channels {
    pub fn with(mut self, kind: &str, ch: Arc<dyn Channel>) -> Self {
        self.map.insert(kind.to_string(), ch);
        self
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Channel>> {
        self.map.get(kind)
    }
}

/// `X-Klaxon-Signature` of a webhook: `v1=` HMAC-SHA256 over `"{timestamp}.{body}"`.
pub fn webhook_signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; the error branch cannot happen.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Check a webhook signature (for receivers written in Rust, and the tests).
pub fn verify_webhook_signature(secret: &[u8], timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(got) = header.strip_prefix("v1=").and_then(|h| hex::decode(h).ok()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&got).is_ok()
}

/// Generic outgoing webhook: `POST` the JSON document to the contact's URL,
/// signed with the shared secret.
#[derive(Debug, Clone)]
pub struct Webhook {
    http: reqwest::Client,
    secret: Vec<u8>,
}

impl Webhook {
    pub fn new(secret: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("klaxon/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            secret: secret.as_bytes().to_vec(),
        })
    }
}

fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<u64>().ok().map(|s| Duration::from_secs(s.min(3600)))
}

impl Channel for Webhook {
    fn send<'a>(&'a self, n: &'a Notification, now_unix: i64) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let sig = webhook_signature(&self.secret, now_unix, n.body.as_bytes());
            let resp = self
                .http
                .post(&n.address)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("X-Klaxon-Timestamp", now_unix.to_string())
                .header("X-Klaxon-Signature", sig)
                .header("Idempotency-Key", &n.idempotency_key)
                .body(n.body.clone())
                .send()
                .await
                .map_err(|e| SendError::transient(format!("POST {}: {e}", n.address)))?;
            let status = resp.status();
            if status.is_success() {
                return Ok(());
            }
            let wait = retry_after(resp.headers());
            let code = status.as_u16();
            Err(SendError {
                message: format!("POST {} answered {status}", n.address),
                permanent: status.is_client_error() && code != 408 && code != 429,
                retry_after: wait,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_detect_tampering() {
        let sig = webhook_signature(b"s3cret", 1_700_000_000, b"{\"a\":1}");
        assert!(sig.starts_with("v1=") && sig.len() == 67);
        assert!(verify_webhook_signature(b"s3cret", 1_700_000_000, b"{\"a\":1}", &sig));
        assert!(!verify_webhook_signature(b"s3cret", 1_700_000_001, b"{\"a\":1}", &sig));
        assert!(!verify_webhook_signature(b"other", 1_700_000_000, b"{\"a\":1}", &sig));
        assert!(!verify_webhook_signature(b"s3cret", 1_700_000_000, b"{\"a\":2}", &sig));
        assert!(!verify_webhook_signature(
            b"s3cret",
            1_700_000_000,
            b"{\"a\":1}",
            "v1=zz"
        ));
    }
}
