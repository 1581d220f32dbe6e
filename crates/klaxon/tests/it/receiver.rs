//! A real HTTP server on loopback standing in for a webhook receiver. It
//! records every request and can be told to be down, to refuse, or to ask
//! for a pause with 429 + Retry-After.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub signature: String,
    pub timestamp: i64,
    pub idempotency_key: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Up,
    /// 503 to everything.
    Down,
    /// This status to everything (e.g. 404: a permanent failure).
    Refuse(u16),
    /// 429 with `Retry-After: n`.
    Throttle(u64),
}

#[derive(Default)]
struct Inner {
    got: Vec<Received>,
    /// Attempts answered with an error.
    refused: usize,
    mode: Option<Mode>,
}

#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

async fn hook(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let mut g = inner.lock().unwrap();
    match g.mode.unwrap_or(Mode::Up) {
        Mode::Up => {}
        Mode::Down => {
            g.refused += 1;
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Mode::Refuse(code) => {
            g.refused += 1;
            return StatusCode::from_u16(code).unwrap().into_response();
        }
        Mode::Throttle(secs) => {
            g.refused += 1;
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", secs.to_string())]).into_response();
        }
    }
    g.got.push(Received {
        path,
        signature: h("x-klaxon-signature"),
        timestamp: h("x-klaxon-timestamp").parse().unwrap_or(0),
        idempotency_key: h("idempotency-key"),
        content_type: h("content-type"),
        body: body.to_vec(),
    });
    StatusCode::NO_CONTENT.into_response()
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .route("/hook/{path}", axum::routing::post(hook))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { base, inner }
    }

    /// The URL of one person's hook.
    pub fn url(&self, who: &str) -> String {
        format!("{}/hook/{who}", self.base)
    }

    pub fn set(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = Some(mode);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().got.clone()
    }

    pub fn paths(&self) -> Vec<String> {
        self.received().into_iter().map(|r| r.path).collect()
    }

    pub fn refused(&self) -> usize {
        self.inner.lock().unwrap().refused
    }
}
