//! ntfy end to end: a page reaches a loopback ntfy server that checks the
//! publish document like ntfy does; 429 is retried after Retry-After.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use klaxon_domain::wire::{DeclareIncident, NotificationQuery};
use serde_json::{Value, json};

#[derive(Default)]
struct Fake {
    got: Vec<(Option<String>, Value)>,
    throttle: bool,
}

async fn publish(
    State(f): State<Arc<Mutex<Fake>>>,
    headers: HeaderMap,
    Json(doc): Json<Value>,
) -> axum::response::Response {
    let mut g = f.lock().unwrap();
    if g.throttle {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "120")], "limit").into_response();
    }
    // What ntfy's JSON publishing requires: a topic, a string message, priority 1-5, tags as strings.
    let ok = doc["topic"].as_str().is_some_and(|t| !t.is_empty())
        && doc["message"].is_string()
        && doc["priority"].as_i64().is_some_and(|p| (1..=5).contains(&p))
        && doc["tags"].as_array().is_some_and(|t| t.iter().all(Value::is_string));
    if !ok {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": 40001, "error": "invalid request"})),
        )
            .into_response();
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    g.got.push((auth, doc.clone()));
    Json(json!({"id": "abc", "event": "message", "topic": doc["topic"]})).into_response()
}

crate::both!(a_page_reaches_ntfy_and_429_is_retried, |app| {
    let fake = Arc::new(Mutex::new(Fake {
        throttle: true,
        ..Default::default()
    }));
    let router = axum::Router::new()
        .route("/", axum::routing::post(publish))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let user = json!({"id": "alice", "name": "Alice", "email": "alice@example.com",
        "contact_methods": [{"name": "phone-push", "kind": "ntfy", "address": format!("{base}/oncall-alice")}]});
    app.client.put_document("users", "alice", &user).await.unwrap();
    let bad = json!({"id": "bob", "name": "Bob", "email": "bob@example.com",
        "contact_methods": [{"name": "push", "kind": "ntfy", "address": "https://ntfy.example.com"}]});
    assert!(
        app.client.put_document("users", "bob", &bad).await.is_err(),
        "a URL without a topic is refused"
    );
    let policy =
        json!({"id": "p", "levels": [{"name": "on call", "targets": [{"user": "alice"}], "delay_minutes": 5}]});
    app.client
        .put_document("escalation-policies", "p", &policy)
        .await
        .unwrap();
    let mut cfg = klaxon_engine::ChannelsConfig::default();
    cfg.ntfy.token = Some("tk_test_token".into());
    let engine = app.engine_with("node-a", &cfg, Some("https://klaxon.example.com"));
    let id = app
        .client
        .declare(&DeclareIncident {
            title: "Queue backlog".into(),
            severity: Some("SEV-1".into()),
            escalation_policy: Some("p".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    engine.tick().await.unwrap();
    assert!(fake.lock().unwrap().got.is_empty(), "throttled");
    let n = app
        .client
        .notifications(&NotificationQuery {
            incident: Some(id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(n[0].state, "pending");
    assert!(
        n[0].last_error.as_deref().unwrap_or("").contains("429"),
        "{:?}",
        n[0].last_error
    );
    fake.lock().unwrap().throttle = false;
    app.advance(1);
    engine.tick().await.unwrap();
    assert!(fake.lock().unwrap().got.is_empty(), "Retry-After 120 s is honoured");
    app.advance(2);
    engine.tick().await.unwrap();
    let got = fake.lock().unwrap().got.clone();
    assert_eq!(got.len(), 1);
    let (auth, doc) = &got[0];
    assert_eq!(auth.as_deref(), Some("Bearer tk_test_token"));
    assert_eq!(doc["topic"], "oncall-alice");
    assert_eq!(doc["priority"], 5, "pages are urgent");
    assert_eq!(doc["title"], "[SEV-1] Incident: Queue backlog");
    assert!(doc["message"].as_str().unwrap().contains(&id));
    assert_eq!(
        doc["click"],
        format!("https://klaxon.example.com/api/v1/incidents/{id}")
    );
    assert_eq!(doc["tags"][1], "SEV-1");
});

/// docs/channels/ntfy.md: its user is valid and its klaxon.yaml passes `klaxon config check`.
#[test]
fn documented_examples_are_valid() {
    let doc = include_str!("../../../../docs/channels/ntfy.md");
    let blocks: Vec<&str> = doc
        .split("```yaml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 2);
    let user: klaxon_domain::people::User = serde_saphyr::from_str(blocks[0]).unwrap();
    user.validate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("klaxon.yaml");
    std::fs::write(&file, blocks[1]).unwrap();
    let (code, out, err) = crate::cli::klaxon("http://unused", None, &["config", "check", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}
