//! The engine end to end: escalation policies page people through a real
//! webhook receiver; time moves only on the manual clock.

use klaxon_domain::wire::{DeclareIncident, IncidentQuery, NotificationQuery, SnoozeRequest};
use klaxon_domain::{Clock, Status};
use serde_json::{Value, json};

use crate::both;
use crate::receiver::{Mode, Receiver};
use crate::support::{TestApp, WEBHOOK_SECRET, kinds};

fn user(id: &str, rx: &Receiver, rules: Value) -> Value {
    json!({"id": id, "name": format!("{id} Example"), "email": format!("{id}@example.com"),
        "contact_methods": [
            {"name": "hook", "kind": "webhook", "address": rx.url(id)},
            {"name": "late-hook", "kind": "webhook", "address": rx.url(&format!("{id}-late"))},
            {"name": "phone", "kind": "sms", "address": "+4915112345678"}
        ],
        "notification_rules": rules})
}

/// alice is primary on the `platform` schedule; level 1 pages the schedule,
/// level 2 pages bob.
async fn setup(app: &TestApp, rx: &Receiver) {
    let now = json!([{"contact": "hook"}]);
    for (id, rules) in [("alice", now.clone()), ("bob", now.clone()), ("carol", now)] {
        app.client
            .put_document("users", id, &user(id, rx, rules))
            .await
            .unwrap();
    }
    let schedule = json!({"name": "platform", "time_zone": "UTC", "roles": {"primary": [
        {"participants": ["alice"], "shift": {"weeks": 1}, "start": "2026-11-01"}]}});
    let (status, body) = app
        .raw(
            "POST",
            "/api/v1/schedules",
            Some(crate::support::ADMIN),
            Some(schedule.to_string().into_bytes()),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let policy = json!({"id": "platform", "levels": [
        {"name": "on-call engineer", "targets": [{"schedule": {"id": "platform"}}], "delay_minutes": 5},
        {"name": "team lead", "targets": [{"user": "bob"}], "delay_minutes": 10}]});
    app.client
        .put_document("escalation-policies", "platform", &policy)
        .await
        .unwrap();
}

async fn declare(app: &TestApp, title: &str, policy: Option<&str>) -> String {
    app.client
        .declare(&DeclareIncident {
            title: title.into(),
            escalation_policy: policy.map(str::to_string),
            ..Default::default()
        })
        .await
        .unwrap()
        .id
}

/// Run the Python verifier shipped in docs/oncall.md on a received webhook.
async fn docs_verifier_accepts(got: &crate::receiver::Received, secret: &str) -> bool {
    let doc = include_str!("../../../../docs/oncall.md");
    let snippet = doc
        .split("```python\n")
        .nth(1)
        .and_then(|r| r.split("```").next())
        .expect("a python block in docs/oncall.md");
    let program = format!(
        "{snippet}\nimport sys\ntime.time = lambda: {ts}\nbody = sys.stdin.buffer.read()\nheaders = {{'X-Klaxon-Timestamp': '{ts}', 'X-Klaxon-Signature': '{sig}'}}\nprint(verify({secret:?}.encode(), headers, body))\n",
        ts = got.timestamp,
        sig = got.signature,
    );
    let body = got.body.clone();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new("python3")
            .arg("-c")
            .arg(program)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        child.stdin.take().unwrap().write_all(&body).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "python failed");
        String::from_utf8_lossy(&out.stdout).trim() == "True"
    })
    .await
    .unwrap()
}

both!(escalation_pages_each_level_until_acknowledged, |app| {
    let rx = Receiver::start().await;
    setup(&app, &rx).await;
    let engine = app.engine("n1");
    let id = declare(&app, "API down", Some("platform")).await;

    engine.tick().await.unwrap();
    assert_eq!(rx.paths(), vec!["alice"], "level 1 pages whoever is on call");
    let got = &rx.received()[0];
    assert!(
        klaxon_engine::verify_webhook_signature(WEBHOOK_SECRET.as_bytes(), got.timestamp, &got.body, &got.signature),
        "signature {} does not verify",
        got.signature
    );
    assert_eq!(got.timestamp, app.clock.now().as_second());
    assert!(
        docs_verifier_accepts(got, WEBHOOK_SECRET).await,
        "the Python receiver in docs/oncall.md must accept a real delivery"
    );
    let mut forged = got.clone();
    forged.body.extend_from_slice(b" ");
    assert!(!docs_verifier_accepts(&forged, WEBHOOK_SECRET).await);
    assert_eq!(got.content_type, "application/json");
    let body = got.json();
    assert_eq!(body["incident"]["id"], id.as_str());
    assert_eq!(
        (body["level"].as_u64(), body["user"]["id"].as_str()),
        (Some(1), Some("alice"))
    );
    assert_eq!(body["idempotency_key"], got.idempotency_key.as_str());

    // Nothing more before the level's 5 minutes are up; nothing fires twice.
    app.advance(4);
    engine.tick().await.unwrap();
    assert_eq!(rx.paths().len(), 1);
    app.advance(1);
    engine.tick().await.unwrap();
    assert_eq!(
        rx.paths(),
        vec!["alice", "bob"],
        "level 2 after 5 unacknowledged minutes"
    );
    let inc = app.client.incident(&id).await.unwrap();
    assert_eq!(inc.assignees, vec!["bob".to_string()]);

    // Acknowledging stops escalation: no more pages (until the SEV-3's update
    // reminder, 115 minutes in, which is another test's business).
    app.client.ack(&id, Some("on it".into())).await.unwrap();
    app.advance(100);
    engine.tick().await.unwrap();
    assert_eq!(rx.paths().len(), 2);
    let k = kinds(&app, &id).await;
    assert_eq!(k.iter().filter(|k| *k == "paged").count(), 2, "{k:?}");
    assert_eq!(k.iter().filter(|k| *k == "notified").count(), 2, "{k:?}");
    let sent = app
        .client
        .notifications(&NotificationQuery {
            incident: Some(id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter().all(|n| n.state == "delivered" && n.attempts == 1),
        "{sent:?}"
    );

    // A policy that runs out without an acknowledgement says so, once.
    let other = declare(&app, "Disk full", Some("platform")).await;
    for _ in 0..4 {
        engine.tick().await.unwrap();
        app.advance(10);
    }
    engine.tick().await.unwrap();
    let k = kinds(&app, &other).await;
    assert_eq!(k.iter().filter(|k| *k == "paged").count(), 2, "{k:?}");
    assert_eq!(k.iter().filter(|k| *k == "escalation_exhausted").count(), 1, "{k:?}");
    let pages_of = |id: &str| {
        rx.received()
            .iter()
            .filter(|r| r.json()["incident"]["id"] == id && r.json()["type"] == "incident.paged")
            .count()
    };
    assert_eq!(pages_of(&other), 2);
    // The first incident, acknowledged, now only gets its update reminder (115 minutes in).
    let first: Vec<_> = rx
        .received()
        .iter()
        .filter(|r| r.json()["incident"]["id"] == id.as_str())
        .map(|r| r.json()["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(first, vec!["incident.paged", "incident.paged", "incident.update_due"]);
    // An incident declared without a policy pages nobody.
    let quiet = declare(&app, "Quiet", None).await;
    engine.tick().await.unwrap();
    assert_eq!(pages_of(&quiet), 0);
});

both!(delayed_rules_are_cancelled_by_an_acknowledgement, |app| {
    let rx = Receiver::start().await;
    setup(&app, &rx).await;
    let rules = json!([{"contact": "hook"}, {"contact": "late-hook", "after_minutes": 3}, {"contact": "phone", "after_minutes": 1}]);
    app.client
        .put_document("users", "alice", &user("alice", &rx, rules))
        .await
        .unwrap();
    let engine = app.engine("n1");
    let id = declare(&app, "API down", Some("platform")).await;
    engine.tick().await.unwrap();
    assert_eq!(rx.paths(), vec!["alice"]);
    // The SMS rule is due after a minute, but this Klaxon has no SMS channel:
    // it is dead at once, visible, and recorded.
    app.advance(1);
    engine.tick().await.unwrap();
    let dead = app
        .client
        .notifications(&NotificationQuery {
            state: Some("dead".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].channel, "sms");
    assert!(
        dead[0].last_error.as_deref().unwrap_or("").contains("no sms channel"),
        "{dead:?}"
    );
    app.client.ack(&id, None).await.unwrap();
    app.advance(5);
    engine.tick().await.unwrap();
    assert_eq!(rx.paths(), vec!["alice"], "the late rule was cancelled by the ack");
    let cancelled = app
        .client
        .notifications(&NotificationQuery {
            state: Some("cancelled".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].contact, "late-hook");
    let (status, body) = app
        .raw(
            "GET",
            "/api/v1/notifications?state=lost",
            Some(crate::support::ADMIN),
            None,
        )
        .await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("state")));
    let (status, _) = app.raw("GET", "/api/v1/notifications", None, None).await;
    assert_eq!(status, 401, "the outbox is not public");
});

both!(
    a_receiver_down_for_ten_minutes_loses_nothing_and_gets_nothing_twice,
    |app| {
        let rx = Receiver::start().await;
        setup(&app, &rx).await;
        let engine = app.engine("n1");
        rx.set(Mode::Down);
        let ids = [
            declare(&app, "one", Some("platform")).await,
            declare(&app, "two", Some("platform")).await,
            declare(&app, "three", Some("platform")).await,
        ];
        assert_eq!(ids.len(), 3);
        let start = app.clock.now();
        // Ten minutes of failures, looked at every 30 seconds.
        for _ in 0..20 {
            engine.tick().await.unwrap();
            app.clock.advance(jiff::SignedDuration::from_secs(30));
        }
        assert!(rx.refused() >= 9, "retried while down: {}", rx.refused());
        assert!(rx.received().is_empty());
        rx.set(Mode::Up);
        // The longest backoff is 5 minutes (plus jitter).
        for _ in 0..14 {
            app.clock.advance(jiff::SignedDuration::from_secs(30));
            engine.tick().await.unwrap();
        }
        let got = rx.received();
        let mut keys: Vec<&str> = got.iter().map(|r| r.idempotency_key.as_str()).collect();
        keys.sort();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "a notification was delivered twice");
        // Every page of every level that fired: alice at 0, bob at 5 minutes (three incidents each).
        let alice = got.iter().filter(|r| r.path == "alice").count();
        let bob = got.iter().filter(|r| r.path == "bob").count();
        assert_eq!((alice, bob), (3, 3), "{:?}", rx.paths());
        let pending = app
            .client
            .notifications(&NotificationQuery {
                state: Some("pending".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(pending.is_empty(), "{pending:?}");
        assert!(app.clock.now().duration_since(start).as_mins() <= 18);
    }
);

both!(
    throttled_receivers_are_waited_for_and_refusals_are_dead_letters,
    |app| {
        let rx = Receiver::start().await;
        setup(&app, &rx).await;
        let engine = app.engine("n1");
        rx.set(Mode::Throttle(120));
        let id = declare(&app, "API down", Some("platform")).await;
        engine.tick().await.unwrap();
        assert_eq!(rx.refused(), 1);
        let n = &app.client.notifications(&NotificationQuery::default()).await.unwrap()[0];
        assert_eq!(n.state, "pending");
        assert!(
            n.due_at.duration_since(app.clock.now()).as_secs() >= 120,
            "Retry-After honoured: due {}",
            n.due_at
        );
        assert!(n.last_error.as_deref().unwrap_or("").contains("429"), "{n:?}");
        app.advance(1);
        engine.tick().await.unwrap();
        assert_eq!(rx.refused(), 1, "not before Retry-After");

        // A 404 will not get better: dead at once, listed, and retried on request.
        rx.set(Mode::Refuse(404));
        app.advance(2);
        engine.tick().await.unwrap();
        let dead = app
            .client
            .notifications(&NotificationQuery {
                state: Some("dead".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert!(kinds(&app, &id).await.contains(&"notified".to_string()));
        rx.set(Mode::Up);
        let again = app.client.retry_notification(dead[0].id).await.unwrap();
        assert_eq!(again.state, "pending");
        engine.tick().await.unwrap();
        assert_eq!(rx.paths(), vec!["alice"]);
        let err = app.client.retry_notification(dead[0].id).await.unwrap_err();
        assert!(err.to_string().contains("delivered"), "{err}");
        let (status, _) = app
            .raw(
                "POST",
                "/api/v1/notifications/999999/retry",
                Some(crate::support::ADMIN),
                None,
            )
            .await;
        assert_eq!(status, 404);
    }
);

both!(unack_snooze_reassign_and_escalate_now, |app| {
    let rx = Receiver::start().await;
    setup(&app, &rx).await;
    let engine = app.engine("n1");
    let id = declare(&app, "API down", Some("platform")).await;
    engine.tick().await.unwrap();
    assert_eq!(rx.paths(), vec!["alice"]);

    // Escalate now: bob is paged at once, even though alice acknowledged.
    app.client.ack(&id, None).await.unwrap();
    let inc = app.client.escalate(&id, Some("need the lead".into())).await.unwrap();
    assert_eq!(inc.status, Status::Triggered);
    engine.tick().await.unwrap();
    assert_eq!(rx.paths(), vec!["alice", "bob"]);

    // Snooze: acknowledged for 30 minutes, then paged again from the first level.
    let inc = app
        .client
        .snooze(
            &id,
            &SnoozeRequest {
                duration: Some("30m".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(inc.status, Status::Acknowledged);
    app.advance(29);
    engine.tick().await.unwrap();
    assert_eq!(rx.paths().len(), 2);
    app.advance(1);
    engine.tick().await.unwrap();
    assert_eq!(rx.paths(), vec!["alice", "bob", "alice"]);
    assert_eq!(app.client.incident(&id).await.unwrap().status, Status::Triggered);

    // Reassign: carol is paged now and becomes the assignee.
    let inc = app.client.reassign(&id, vec!["carol".into()], None).await.unwrap();
    assert_eq!(inc.assignees, vec!["carol".to_string()]);
    engine.tick().await.unwrap();
    assert_eq!(rx.paths().last().map(String::as_str), Some("carol"));

    // Unacknowledge resumes escalation.
    app.client.ack(&id, None).await.unwrap();
    let inc = app.client.unack(&id, Some("handing back".into())).await.unwrap();
    assert_eq!((inc.status, inc.acknowledged_at), (Status::Triggered, None));
    engine.tick().await.unwrap();
    assert_eq!(rx.paths().len(), 5, "{:?}", rx.paths());
    let k = kinds(&app, &id).await;
    for want in ["escalation_requested", "snoozed", "unacknowledged", "reassigned"] {
        assert!(k.contains(&want.to_string()), "{want} missing from {k:?}");
    }

    // Bad input names the field; nothing changes.
    let path = |what: &str| format!("/api/v1/incidents/{id}/{what}");
    let admin = Some(crate::support::ADMIN);
    for (what, body, status, field) in [
        ("snooze", json!({"for": "25h"}), 422, Some("for")),
        ("snooze", json!({"for": "soon"}), 422, Some("for")),
        ("snooze", json!({}), 422, Some("until")),
        ("snooze", json!({"until": "2026-11-23T09:00:00Z"}), 422, Some("until")),
        (
            "snooze",
            json!({"for": "5m", "until": "2026-11-23T12:00:00Z"}),
            422,
            Some("for"),
        ),
        ("reassign", json!({"users": ["nobody"]}), 422, Some("users[0]")),
        ("reassign", json!({"users": []}), 422, Some("users")),
        ("reassign", json!({"users": "carol"}), 422, Some("users")),
        ("unack", json!({"reason": 5}), 422, Some("reason")),
    ] {
        let (got, resp) = app
            .raw("POST", &path(what), admin, Some(body.to_string().into_bytes()))
            .await;
        assert_eq!(
            (got, resp["error"]["field"].as_str()),
            (status, field),
            "{what} {body} → {resp}"
        );
    }
    let (got, _) = app.raw("POST", &path("unack"), admin, Some(b"{}".to_vec())).await;
    assert_eq!(got, 409, "not acknowledged");
    let (got, _) = app.raw("POST", &path("escalate"), None, Some(b"{}".to_vec())).await;
    assert_eq!(got, 401);
    let quiet = declare(&app, "Quiet", None).await;
    let (got, resp) = app
        .raw(
            "POST",
            &format!("/api/v1/incidents/{quiet}/escalate"),
            admin,
            Some(b"{}".to_vec()),
        )
        .await;
    assert_eq!(got, 409, "{resp}");
    let (got, resp) = app
        .raw(
            "POST",
            "/api/v1/incidents",
            admin,
            Some(
                json!({"title": "x", "escalation_policy": "nope"})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!((got, resp["error"]["field"].as_str()), (422, Some("escalation_policy")));
    // Resolving stops everything.
    app.client.set_status(&id, "resolved", None).await.unwrap();
    app.advance(60);
    engine.tick().await.unwrap();
    assert_eq!(rx.paths().len(), 5);
});

both!(alerts_page_through_their_route_policy, |app| {
    let route: klaxon_domain::alert::Route =
        serde_json::from_value(json!({"name": "db", "matchers": ["service=db"], "escalation_policy": "platform"}))
            .unwrap();
    let rx = Receiver::start().await;
    setup(&app, &rx).await;
    app.store.put_route(&route, jiff::Timestamp::UNIX_EPOCH).await.unwrap();
    let key = app
        .client
        .create_integration(&klaxon_domain::wire::CreateIntegration {
            name: "cron".into(),
            format: klaxon_domain::wire::IntegrationFormat::Generic,
        })
        .await
        .unwrap()
        .key;
    let path = format!("/ingest/generic/{key}");
    let (status, body) = app
        .raw(
            "POST",
            &path,
            None,
            Some(br#"{"title": "Replication lag", "dedup_key": "lag", "labels": {"service": "db"}}"#.to_vec()),
        )
        .await;
    // Committed (202); applied next.
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["alerts"][0]["result"], "accepted", "{body}");
    app.settled().await;
    let engine = app.engine("n1");
    engine.tick().await.unwrap();
    assert_eq!(rx.paths(), vec!["alice"]);
    let inc = app
        .client
        .list(&IncidentQuery::default())
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!(inc.escalation_policy.as_deref(), Some("platform"));
    // The alert resolves, the incident auto-resolves, and nobody else is paged.
    let (status, _) = app
        .raw(
            "POST",
            &path,
            None,
            Some(br#"{"title": "Replication lag", "dedup_key": "lag", "status": "resolved"}"#.to_vec()),
        )
        .await;
    assert_eq!(status, 202);
    app.settled().await;
    app.advance(30);
    engine.tick().await.unwrap();
    assert_eq!(rx.paths(), vec!["alice"]);
});

both!(a_restart_loses_no_timer, |app| {
    let rx = Receiver::start().await;
    setup(&app, &rx).await;
    let first = app.engine("n1");
    let id = declare(&app, "API down", Some("platform")).await;
    first.tick().await.unwrap();
    drop(first);
    // Klaxon is down while level 2 becomes due; a fresh engine on a fresh
    // connection fires it as soon as it starts.
    app.advance(45);
    let store = klaxon_store::Store::connect(&klaxon_store::StoreOptions::new(app.db.url()))
        .await
        .unwrap();
    let webhook = klaxon_engine::Webhook::new(WEBHOOK_SECRET, std::time::Duration::from_secs(5)).unwrap();
    let second = std::sync::Arc::new(
        klaxon_engine::Engine::new(
            store,
            app.clock.clone(),
            "n2".into(),
            klaxon_engine::EngineSettings::default(),
            klaxon_engine::Channels::default().with("webhook", std::sync::Arc::new(webhook)),
        )
        .unwrap(),
    );
    second.tick().await.unwrap();
    assert_eq!(rx.paths(), vec!["alice", "bob"]);
    let (n, p50, _, _) = second.lateness();
    assert_eq!(n, 1);
    assert!(
        p50 >= 40 * 60 * 1000,
        "fired {p50} ms late: it was due while Klaxon was down"
    );
    assert_eq!(
        app.client.incident(&id).await.unwrap().assignees,
        vec!["bob".to_string()]
    );
});

both!(the_cli_pages_and_lists_the_outbox, |app| {
    let rx = Receiver::start().await;
    setup(&app, &rx).await;
    let engine = app.engine("n1");
    let id = declare(&app, "API down", Some("platform")).await;
    engine.tick().await.unwrap();
    let base = app.base.clone();
    let run = move |args: Vec<String>| {
        let base = base.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                crate::cli::klaxon(&base, Some(crate::support::ADMIN), &args)
            })
            .await
            .unwrap()
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (code, out, err) = run(args(&["incident", "snooze", &id, "--for", "30m"])).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(app.client.incident(&id).await.unwrap().status, Status::Acknowledged);
    let (code, out, err) = run(args(&["incident", "reassign", &id, "carol", "--reason", "db expert"])).await;
    assert_eq!(code, 0, "{out}{err}");
    engine.tick().await.unwrap();
    assert_eq!(rx.paths(), vec!["alice", "carol"]);
    let (code, out, err) = run(args(&["incident", "escalate", &id])).await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = run(args(&["incident", "unack", &id])).await;
    assert_ne!(code, 0, "not acknowledged: {out}");
    let (code, out, err) = run(args(&["notification", "list", "--incident", &id])).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("carol") && out.contains("delivered") && out.contains("webhook (hook)"),
        "{out}"
    );
    let (code, _, err) = run(args(&["notification", "list", "--state", "lost"])).await;
    assert!(code != 0 && err.contains("state"), "{err}");
    let (code, out, err) = run(args(&["timeline", &id])).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("paged alice") && out.contains("reassigned to carol"),
        "{out}"
    );
});

async fn rules_app(backend: &'static str) -> TestApp {
    let mut cat = klaxon_domain::config::Catalog {
        paging_rules: klaxon_domain::paging_rules::seed_003_examples(),
        ..Default::default()
    };
    for r in &mut cat.paging_rules {
        r.validate(&klaxon_domain::config::Catalog::default()).unwrap();
    }
    TestApp::spawn_with(backend, cat, klaxon_http::AuthSettings::default()).await
}

async fn rules_and_cadence(app: TestApp) {
    let rx = Receiver::start().await;
    let now = json!([{"contact": "hook"}]);
    for id in ["product-owner", "eng-lead", "carol"] {
        app.client
            .put_document("users", id, &user(id, &rx, now.clone()))
            .await
            .unwrap();
    }
    app.client
        .put_document(
            "teams",
            "security",
            &json!({"id": "security", "name": "Security", "members": ["carol"]}),
        )
        .await
        .unwrap();
    let engine = app.engine("n1");
    let decl = |title: &str, sev: &str| DeclareIncident {
        title: title.into(),
        severity: Some(sev.into()),
        ..Default::default()
    };
    // SEV-1 declared → the product owner at once.
    let sev1 = app.client.declare(&decl("Checkout down", "SEV-1")).await.unwrap().id;
    engine.tick().await.unwrap();
    assert_eq!(rx.paths(), vec!["product-owner"]);
    let k = kinds(&app, &sev1).await;
    assert!(k.contains(&"paged".to_string()), "{k:?}");
    // SEV-2 → the engineering lead only if unresolved after 30 minutes.
    let sev2 = app.client.declare(&decl("Slow search", "SEV-2")).await.unwrap().id;
    engine.tick().await.unwrap();
    app.advance(29);
    engine.tick().await.unwrap();
    assert_eq!(rx.paths(), vec!["product-owner"]);
    app.advance(1);
    engine.tick().await.unwrap();
    assert_eq!(rx.paths(), vec!["product-owner", "eng-lead"]);
    // Each rule fires once per incident, however often the incident changes.
    app.client.note(&sev2, "still slow").await.unwrap();
    app.client.set_severity(&sev2, "SEV-3", None).await.unwrap();
    app.client.set_severity(&sev2, "SEV-2", None).await.unwrap();
    engine.tick().await.unwrap();
    assert_eq!(rx.paths().len(), 2);
    // A SEV-3 raised to SEV-2 after 40 minutes: re-evaluated, due already → at once.
    let late = app.client.declare(&decl("Reports lag", "SEV-3")).await.unwrap().id;
    app.advance(40);
    engine.tick().await.unwrap();
    assert_eq!(rx.paths().len(), 2);
    app.client
        .set_severity(&late, "SEV-2", Some("customers noticed".into()))
        .await
        .unwrap();
    engine.tick().await.unwrap();
    assert_eq!(rx.paths().last().map(String::as_str), Some("eng-lead"));
    assert_eq!(rx.paths().len(), 3);
    // A SEV-2 resolved before 30 minutes pages nobody.
    let quick = app.client.declare(&decl("Blip", "SEV-2")).await.unwrap().id;
    app.client.set_status(&quick, "resolved", None).await.unwrap();
    app.advance(31);
    engine.tick().await.unwrap();
    assert_eq!(rx.paths().len(), 3);
    // Category security → the security team; more than one service → the lead.
    app.client
        .declare(&DeclareIncident {
            category: Some("security".into()),
            ..decl("Leaked key", "SEV-3")
        })
        .await
        .unwrap();
    app.client
        .declare(&DeclareIncident {
            services: vec!["api".into(), "db".into()],
            ..decl("Two services", "SEV-3")
        })
        .await
        .unwrap();
    engine.tick().await.unwrap();
    let mut tail: Vec<String> = rx.paths()[3..].to_vec();
    tail.sort();
    assert_eq!(tail, vec!["carol", "eng-lead"]);

    // Update cadence: SEV-1 every 15 minutes. The communications lead is
    // reminded 5 minutes before; after the due time the incident is overdue.
    let mut d = decl("Payments down", "SEV-1");
    d.roles.insert("communications_lead".into(), "carol".into());
    let pay = app.client.declare(&d).await.unwrap().id;
    engine.tick().await.unwrap();
    let before = rx.paths().len();
    app.advance(9);
    engine.tick().await.unwrap();
    assert_eq!(rx.paths().len(), before, "no reminder before due − 5m");
    app.advance(1);
    engine.tick().await.unwrap();
    assert_eq!(rx.paths().len(), before + 1);
    let last = rx.received().pop().unwrap();
    assert_eq!(
        (last.path.as_str(), last.json()["type"].as_str()),
        ("carol", Some("incident.update_due"))
    );
    assert!(!app.client.incident(&pay).await.unwrap().update_overdue);
    app.advance(5);
    engine.tick().await.unwrap();
    let inc = app.client.incident(&pay).await.unwrap();
    assert!(inc.update_overdue, "overdue after the due time");
    assert!(kinds(&app, &pay).await.contains(&"update_overdue".to_string()));
    // Posting an update (a status change with a message) clears it and sets the next due time.
    let inc = app
        .client
        .set_status(&pay, "investigating", Some("Card processor returns 502s".into()))
        .await
        .unwrap();
    assert!(!inc.update_overdue);
    app.advance(10);
    engine.tick().await.unwrap();
    assert_eq!(rx.paths().len(), before + 2, "reminded again for the next update");
    app.advance(30);
    engine.tick().await.unwrap();
    assert!(app.client.incident(&pay).await.unwrap().update_overdue);
    assert_eq!(rx.paths().len(), before + 2, "one reminder per due time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_and_cadence_sqlite() {
    rules_and_cadence(rules_app("sqlite").await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_and_cadence_postgres() {
    rules_and_cadence(rules_app("postgres").await).await
}
