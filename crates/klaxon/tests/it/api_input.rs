//! Bad input: a clear 4xx naming the field, and nothing half-written.

use klaxon_domain::wire::IncidentQuery;
use serde_json::json;

use crate::both;
use crate::support::ADMIN;

async fn post(app: &crate::support::TestApp, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    app.raw("POST", path, Some(ADMIN), Some(body.to_string().into_bytes()))
        .await
}

fn field(body: &serde_json::Value) -> &str {
    body["error"]["field"].as_str().unwrap_or("")
}

both!(bad_declarations_are_refused_with_the_field_named, |app| {
    let cases = [
        (json!({"severity": "SEV-1"}), 422, "title"),
        (json!({"title": ""}), 422, "title"),
        (json!({"title": "x".repeat(2000)}), 422, "title"),
        (json!({"title": 42}), 422, "title"),
        (json!({"title": "ok", "severity": "SEV-9"}), 422, "severity"),
        (json!({"title": "ok", "category": "weather"}), 422, "category"),
        (json!({"title": "ok", "services": ["has space"]}), 422, "services[0]"),
        (
            json!({"title": "ok", "impact": {"percent": 250}}),
            422,
            "impact.percent",
        ),
        (
            json!({"title": "ok", "impact": {"percent": "most"}}),
            422,
            "impact.percent",
        ),
        (json!({"title": "ok", "started_at": "yesterday"}), 422, "started_at"),
        (
            json!({"title": "ok", "started_at": "2030-01-01T00:00:00Z"}),
            422,
            "started_at",
        ),
        (
            json!({"title": "ok", "roles": {"janitor": "bob"}}),
            422,
            "roles.janitor",
        ),
        (json!({"title": "ok", "colour": "red"}), 422, "colour"),
    ];
    for (body, status, expected) in cases {
        let (got, resp) = post(&app, "/api/v1/incidents", body.clone()).await;
        assert_eq!(got, status, "{body} → {resp}");
        assert_eq!(field(&resp), expected, "{body} → {resp}");
        assert!(!resp["error"]["message"].as_str().unwrap().is_empty());
    }
    let (status, resp) = app
        .raw("POST", "/api/v1/incidents", Some(ADMIN), Some(b"{\"title\": ".to_vec()))
        .await;
    assert_eq!((status, resp["error"]["code"].as_str()), (400, Some("malformed_json")));
    let big = format!(
        "{{\"title\": \"big\", \"description\": \"{}\"}}",
        "x".repeat(1024 * 1024 + 10)
    );
    let (status, resp) = app
        .raw("POST", "/api/v1/incidents", Some(ADMIN), Some(big.into_bytes()))
        .await;
    assert_eq!(
        (status, resp["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    // Nothing was written by any of these.
    let page = app.client.list(&IncidentQuery::default()).await.unwrap();
    assert!(page.items.is_empty(), "{:?}", page.items);
});

both!(bad_commands_are_refused_and_change_nothing, |app| {
    let inc = app
        .client
        .declare(&klaxon_domain::wire::DeclareIncident {
            title: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let id = inc.id.clone();
    let p = |s: &str| format!("/api/v1/incidents/{id}{s}");

    let (status, resp) = post(&app, &p("/status"), json!({"status": "closed"})).await;
    assert_eq!(
        (status, resp["error"]["code"].as_str()),
        (409, Some("invalid_transition")),
        "{resp}"
    );
    assert!(
        resp["error"]["message"]
            .as_str()
            .unwrap()
            .contains("allowed: acknowledged, investigating"),
        "{resp}"
    );
    let (status, resp) = post(&app, &p("/status"), json!({"status": "fixed"})).await;
    assert_eq!((status, field(&resp)), (422, "status"), "{resp}");
    let (status, resp) = post(&app, &p("/status"), json!({})).await;
    assert_eq!((status, field(&resp)), (422, "status"), "{resp}");
    let (status, resp) = post(&app, &p("/severity"), json!({"severity": "SEV-0"})).await;
    assert_eq!((status, field(&resp)), (422, "severity"), "{resp}");
    let (status, _) = post(&app, &p("/severity"), json!({"severity": inc.severity})).await;
    assert_eq!(status, 409, "same severity is a conflict");
    let (status, resp) = app
        .raw(
            "PUT",
            &p("/roles/janitor"),
            Some(ADMIN),
            Some(br#"{"assignee": "bob"}"#.to_vec()),
        )
        .await;
    assert_eq!((status, field(&resp)), (422, "role"), "{resp}");
    let (status, resp) = post(&app, &p("/notes"), json!({"text": "   "})).await;
    assert_eq!((status, field(&resp)), (422, "text"), "{resp}");
    let (status, resp) = post(&app, &p("/reopen"), json!({})).await;
    assert_eq!(
        (status, resp["error"]["code"].as_str()),
        (409, Some("invalid_transition")),
        "nothing to reopen: {resp}"
    );
    let (status, resp) = app
        .raw("PATCH", &p(""), Some(ADMIN), Some(br#"{"severity": "SEV-1"}"#.to_vec()))
        .await;
    assert_eq!((status, field(&resp)), (422, "severity"), "{resp}");
    let (status, resp) = app
        .raw(
            "PATCH",
            &p(""),
            Some(ADMIN),
            Some(br#"{"started_at": "2026-11-23T11:00:00Z", "detected_at": "2026-11-23T10:00:00Z"}"#.to_vec()),
        )
        .await;
    assert_eq!((status, field(&resp)), (422, "started_at"), "{resp}");

    // Unknown incidents are 404 on every verb.
    for (m, path) in [
        ("GET", "/api/v1/incidents/INC-2026-01-01-999"),
        ("GET", "/api/v1/incidents/INC-2026-01-01-999/timeline"),
        ("GET", "/api/v1/incidents/nope%20nope"),
    ] {
        let (status, resp) = app.raw(m, path, Some(ADMIN), None).await;
        assert_eq!(
            (status, resp["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
    let (status, _) = post(&app, "/api/v1/incidents/INC-2026-01-01-999/ack", json!({})).await;
    assert_eq!(status, 404);

    // Bad list parameters name the parameter.
    for (q, f) in [
        ("status=sleeping", "status"),
        ("severity=SEV-7", "severity"),
        ("from=last-week", "from"),
        ("limit=0", "limit"),
        ("cursor=abc", "cursor"),
    ] {
        let (status, resp) = app
            .raw("GET", &format!("/api/v1/incidents?{q}"), Some(ADMIN), None)
            .await;
        assert_eq!((status, field(&resp)), (422, f), "{q}: {resp}");
    }

    let after = app.client.incident(&id).await.unwrap();
    assert_eq!(after, inc, "refused commands changed nothing");
    assert_eq!(app.client.timeline(&id).await.unwrap().events.len(), 1);
});
