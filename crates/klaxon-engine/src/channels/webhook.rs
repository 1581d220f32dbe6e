//! Generic outgoing webhook: the notification's JSON document, signed.

use std::time::Duration;

use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use klaxon_store::Notification;
use sha2::Sha256;

use super::{Channel, SendError, http_client, status_error};

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
        let http = http_client(timeout)?;
        Ok(Self {
            http,
            secret: secret.as_bytes().to_vec(),
        })
    }
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
            if resp.status().is_success() {
                return Ok(());
            }
            Err(status_error("POST", &n.address, &resp))
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
