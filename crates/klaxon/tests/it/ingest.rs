//! Alert ingestion through the real HTTP endpoints, on both backends.

use jiff::SignedDuration;
use klaxon_domain::Status;
use klaxon_domain::alert::{AutoResolveAction, Matcher, Route};
use klaxon_domain::wire::{CreateIntegration, IncidentQuery, IntegrationFormat};
use serde_json::{Value, json};

use crate::both;
use crate::support::{ADMIN, TestApp, alert_changes, kinds};
use std::collections::HashSet;

async fn integration(app: &TestApp, name: &str, format: IntegrationFormat) -> String {
    app.client
        .create_integration(&CreateIntegration {
            name: name.into(),
            format,
        })
        .await
        .unwrap()
        .key
}

fn am_alert(fp: &str, status: &str, labels: Value) -> Value {
    json!({"status": status, "labels": labels, "annotations": {"summary": format!("summary of {fp}")},
           "startsAt": "2026-11-23T09:58:00Z", "endsAt": if status == "resolved" { "2026-11-23T10:01:00Z" } else { "0001-01-01T00:00:00Z" },
           "generatorURL": "http://prometheus:9090/graph", "fingerprint": fp})
}

fn am_payload(group_key: &str, alerts: Vec<Value>) -> Vec<u8> {
    json!({"version": "4", "groupKey": group_key, "truncatedAlerts": 0, "status": "firing", "receiver": "klaxon",
           "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093", "alerts": alerts})
    .to_string()
    .into_bytes()
}

/// Post and wait for the outcome (`Prefer: return=representation`).
async fn post(app: &TestApp, path: &str, body: Vec<u8>) -> (u16, Value) {
    app.ingest(path, body).await
}

async fn incidents(app: &TestApp) -> Vec<klaxon_domain::Incident> {
    app.client.list(&IncidentQuery::default()).await.unwrap().items
}

// A request's alert changes to an incident are one timeline event, listing every alert:
// a 25-alert group firing, repeating and resolving makes three events, not seventy-five.
both!(one_request_is_one_timeline_event_per_incident, |app| {
    let key = integration(&app, "prometheus", IntegrationFormat::Alertmanager).await;
    let path = format!("/ingest/alertmanager/{key}");
    let gk = "{}:{alertname=\"NodeDown\"}";
    let group = |status: &str| {
        let alerts = (0..25)
            .map(|i| {
                am_alert(
                    &format!("fp-{i}"),
                    status,
                    json!({"alertname": "NodeDown", "instance": format!("n{i}")}),
                )
            })
            .collect();
        am_payload(gk, alerts)
    };
    for status in ["firing", "firing", "resolved"] {
        let (code, body) = post(&app, &path, group(status)).await;
        assert_eq!(code, 200, "{body}");
    }
    let list = incidents(&app).await;
    assert_eq!(list.len(), 1);
    let id = &list[0].id;
    assert_eq!(
        kinds(&app, id).await,
        [
            "declared",
            "alerts_fired",
            "alerts_repeated",
            "alerts_resolved",
            "status_changed"
        ]
    );
    let timeline = app.client.timeline(id).await.unwrap().events;
    let klaxon_domain::EventKind::AlertsFired { alerts } = &timeline[1].kind else {
        panic!("{:?}", timeline[1].kind)
    };
    let keys: Vec<&str> = alerts.iter().map(|a| a.dedup_key.as_str()).collect();
    let want: Vec<String> = (0..25).map(|i| format!("fp-{i}")).collect();
    assert_eq!(keys, want, "every alert, in the order sent");
    assert_eq!(alerts[3].labels["instance"], "n3");
    assert_eq!(alerts[3].summary, "summary of fp-3");
    assert!(!alerts[3].refired);
    let klaxon_domain::EventKind::AlertsRepeated { alerts } = &timeline[2].kind else {
        panic!("{:?}", timeline[2].kind)
    };
    assert!(alerts.iter().all(|a| a.count == 2), "{alerts:?}");
    assert_eq!(alert_changes(&app, id, "resolved").await.len(), 25);
    assert_eq!(app.client.incident(id).await.unwrap().status, Status::Resolved);
    assert!(app.client.verify(id).await.unwrap().ok, "the batched events verify");
});

// Thousands of alerts in one request are written in several statements per
// table (each built while the last runs): every alert is stored once and whole,
// a repeat updates every one, and the timeline lists them all and verifies.
both!(a_request_of_thousands_of_alerts_is_stored_whole, |app| {
    let key = integration(&app, "prometheus", IntegrationFormat::Alertmanager).await;
    let path = format!("/ingest/alertmanager/{key}");
    const N: usize = 2_500;
    let body = || {
        let alerts = (0..N)
            .map(|i| {
                am_alert(
                    &format!("bulk-{i}"),
                    "firing",
                    json!({"alertname": "Bulk", "instance": format!("i{i}")}),
                )
            })
            .collect();
        am_payload("{}:{alertname=\"Bulk\"}", alerts)
    };
    for _ in 0..2 {
        let (code, out) = post(&app, &path, body()).await;
        assert_eq!(code, 200, "{out}");
    }
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(app.db.url())
        .await
        .unwrap();
    let (rows, keys, min_count, max_count): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT dedup_key), MIN(receive_count), MAX(receive_count) FROM alerts",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((rows, keys), (N as i64, N as i64), "every alert once");
    assert_eq!((min_count, max_count), (2, 2), "the repeat reached every alert");
    let labels: String = sqlx::query_scalar("SELECT labels FROM alerts WHERE dedup_key = 'bulk-2049'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let labels: Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels, json!({"alertname": "Bulk", "instance": "i2049"}));
    let links: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM incident_alerts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(links, N as i64);
    pool.close().await;
    let list = incidents(&app).await;
    assert_eq!(list.len(), 1);
    assert_eq!(alert_changes(&app, &list[0].id, "fired").await.len(), N);
    assert!(app.client.verify(&list[0].id).await.unwrap().ok);
});

both!(alertmanager_groups_dedups_and_auto_resolves, |app| {
    let key = integration(&app, "prometheus", IntegrationFormat::Alertmanager).await;
    let path = format!("/ingest/alertmanager/{key}");
    let labels =
        |i: &str| json!({"alertname": "HighErrorRate", "severity": "critical", "service": "api", "instance": i});
    let gk = "{}:{alertname=\"HighErrorRate\"}";
    let (status, body) = post(
        &app,
        &path,
        am_payload(
            gk,
            vec![
                am_alert("fp-a", "firing", labels("a")),
                am_alert("fp-b", "firing", labels("b")),
            ],
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["alerts"][0]["result"], "created");
    let list = incidents(&app).await;
    assert_eq!(list.len(), 1, "two alerts of one group make one incident");
    let inc = &list[0];
    assert_eq!(inc.severity, "SEV-1", "severity=critical maps to SEV-1");
    assert_eq!(inc.status, Status::Triggered);
    assert_eq!(inc.services, vec!["api"]);
    assert_eq!(inc.title, "summary of fp-a");
    assert_eq!(
        inc.detected_at.to_string(),
        "2026-11-23T09:58:00Z",
        "detected_at is the first alert's start"
    );

    // Alertmanager re-sends the group: repeats are counted, never a new incident.
    for _ in 0..3 {
        let (status, body) = post(
            &app,
            &path,
            am_payload(gk, vec![am_alert("fp-a", "firing", labels("a"))]),
        )
        .await;
        assert_eq!((status, body["alerts"][0]["result"].as_str()), (200, Some("repeated")));
    }
    let alerts = app.client.alerts(&[("incident", inc.id.clone())]).await.unwrap();
    let a = alerts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["dedup_key"] == "fp-a")
        .unwrap()
        .clone();
    assert_eq!(a["receive_count"], 4);
    assert_eq!(incidents(&app).await.len(), 1);

    // One resolves: the incident stays open. Both resolved: it resolves.
    post(
        &app,
        &path,
        am_payload(gk, vec![am_alert("fp-a", "resolved", labels("a"))]),
    )
    .await;
    assert_eq!(app.client.incident(&inc.id).await.unwrap().status, Status::Triggered);
    post(
        &app,
        &path,
        am_payload(gk, vec![am_alert("fp-b", "resolved", labels("b"))]),
    )
    .await;
    let resolved = app.client.incident(&inc.id).await.unwrap();
    assert_eq!(resolved.status, Status::Resolved);
    let k = kinds(&app, &inc.id).await;
    // One event per request and incident: both alerts fired in one, each repeat and resolution in its own.
    assert_eq!(k.iter().filter(|k| *k == "alerts_fired").count(), 1, "{k:?}");
    assert_eq!(alert_changes(&app, &inc.id, "fired").await.len(), 2);
    assert_eq!(alert_changes(&app, &inc.id, "repeated").await.len(), 3);
    assert_eq!(alert_changes(&app, &inc.id, "resolved").await.len(), 2);
    assert_eq!(k.iter().filter(|k| *k == "alerts_resolved").count(), 2);
    assert_eq!(k.last().unwrap(), "status_changed");
    assert!(app.client.verify(&inc.id).await.unwrap().ok);

    // Firing again within the reopen window reopens the same incident.
    app.clock.advance(SignedDuration::from_mins(10));
    let (_, body) = post(
        &app,
        &path,
        am_payload(gk, vec![am_alert("fp-a", "firing", labels("a"))]),
    )
    .await;
    assert_eq!(body["alerts"][0]["result"], "refired");
    let reopened = app.client.incident(&inc.id).await.unwrap();
    assert_eq!((reopened.status, reopened.reopen_count), (Status::Triggered, 1));
    post(
        &app,
        &path,
        am_payload(gk, vec![am_alert("fp-a", "resolved", labels("a"))]),
    )
    .await;

    // After the window a new incident opens.
    app.clock.advance(SignedDuration::from_hours(2));
    post(
        &app,
        &path,
        am_payload(gk, vec![am_alert("fp-a", "firing", labels("a"))]),
    )
    .await;
    let list = incidents(&app).await;
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].status, Status::Triggered);
});

both!(routes_choose_severity_service_grouping_and_auto_resolve, |app| {
    let key = integration(&app, "prom", IntegrationFormat::Alertmanager).await;
    let path = format!("/ingest/alertmanager/{key}");
    let route = json!({"name": "databases", "matchers": ["team=db"], "severity": "SEV-2", "service": "postgres",
        "category": "availability", "group_by": ["cluster"], "auto_resolve": "monitoring", "runbook": "db-failover"});
    let (status, body) = app
        .raw(
            "PUT",
            "/api/v1/routes/databases",
            Some(ADMIN),
            Some(route.to_string().into_bytes()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let db = |fp: &str, cluster: &str, alertname: &str, status: &str| {
        am_alert(
            fp,
            status,
            json!({"alertname": alertname, "team": "db", "cluster": cluster, "severity": "warning"}),
        )
    };
    // Different alertnames, same cluster: one incident (group_by cluster), even across Alertmanager groups.
    post(&app, &path, am_payload("g1", vec![db("d1", "eu", "PgDown", "firing")])).await;
    post(
        &app,
        &path,
        am_payload("g2", vec![db("d2", "eu", "PgReplicationLag", "firing")]),
    )
    .await;
    post(&app, &path, am_payload("g3", vec![db("d3", "us", "PgDown", "firing")])).await;
    let list = incidents(&app).await;
    assert_eq!(list.len(), 2);
    let eu = list
        .iter()
        .find(|i| i.labels.get("cluster").map(String::as_str) == Some("eu"))
        .unwrap();
    assert_eq!(
        (eu.severity.as_str(), eu.services.clone(), eu.category.as_deref()),
        ("SEV-2", vec!["postgres".to_string()], Some("availability"))
    );
    // auto_resolve: monitoring.
    post(
        &app,
        &path,
        am_payload(
            "g1",
            vec![
                db("d1", "eu", "PgDown", "resolved"),
                db("d2", "eu", "PgReplicationLag", "resolved"),
            ],
        ),
    )
    .await;
    assert_eq!(app.client.incident(&eu.id).await.unwrap().status, Status::Monitoring);

    // Unmatched alerts take the default route; bad routes are refused naming the field.
    let bad = json!({"name": "x", "matchers": ["team=~("]});
    let (status, body) = app
        .raw(
            "PUT",
            "/api/v1/routes/x",
            Some(ADMIN),
            Some(bad.to_string().into_bytes()),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let bad = json!({"name": "x", "severity": "SEV-9"});
    let (status, body) = app
        .raw(
            "PUT",
            "/api/v1/routes/x",
            Some(ADMIN),
            Some(bad.to_string().into_bytes()),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("severity")),
        "{body}"
    );
    let routes = app.client.routes().await.unwrap();
    assert_eq!(
        routes.iter().map(|r| r["name"].as_str().unwrap()).collect::<Vec<_>>(),
        vec!["databases", "default"]
    );
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_routes_open_an_incident_per_matching_route() {
    let routes = vec![
        Route {
            name: "security".into(),
            matchers: vec![Matcher::parse("category=security").unwrap()],
            continue_matching: true,
            category: Some("security".into()),
            group_by: Some(vec!["alertname".into()]),
            ..Route::default_route()
        },
        Route {
            name: "platform".into(),
            matchers: vec![],
            auto_resolve: AutoResolveAction::Annotate,
            group_by: Some(vec!["alertname".into()]),
            ..Route::default_route()
        },
    ];
    let app = TestApp::spawn_full("sqlite", Default::default(), Default::default(), routes, (0, 0)).await;
    let key = integration(&app, "prom", IntegrationFormat::Alertmanager).await;
    let path = format!("/ingest/alertmanager/{key}");
    let (_, body) = post(
        &app,
        &path,
        am_payload(
            "g",
            vec![am_alert(
                "s1",
                "firing",
                json!({"alertname": "Intrusion", "category": "security"}),
            )],
        ),
    )
    .await;
    assert_eq!(body["alerts"][0]["incidents"].as_array().unwrap().len(), 2, "{body}");
    post(
        &app,
        &path,
        am_payload(
            "g",
            vec![am_alert(
                "s1",
                "resolved",
                json!({"alertname": "Intrusion", "category": "security"}),
            )],
        ),
    )
    .await;
    let list = incidents(&app).await;
    let sec = list.iter().find(|i| i.category.as_deref() == Some("security")).unwrap();
    let other = list.iter().find(|i| i.category.is_none()).unwrap();
    assert_eq!(sec.status, Status::Resolved);
    assert_eq!(other.status, Status::Triggered, "auto_resolve: annotate only notes it");
    assert_eq!(kinds(&app, &other.id).await.last().unwrap(), "note_added");
}

both!(silences_suppress_without_losing_alerts, |app| {
    let key = integration(&app, "prom", IntegrationFormat::Alertmanager).await;
    let path = format!("/ingest/alertmanager/{key}");
    let sil = app
        .client
        .create_silence(&crate::support::disk_swap_silence())
        .await
        .unwrap();
    let (_, body) = post(
        &app,
        &path,
        am_payload("g", vec![am_alert("disk", "firing", json!({"alertname": "DiskFull"}))]),
    )
    .await;
    assert_eq!(body["alerts"][0]["result"], "suppressed");
    assert!(incidents(&app).await.is_empty(), "a silenced alert opens no incident");
    let suppressed = app
        .client
        .alerts(&[("status", "suppressed".to_string())])
        .await
        .unwrap();
    assert_eq!(
        suppressed["items"][0]["suppressed_by"], sil["id"],
        "stored and visible, never dropped"
    );

    // After the silence ends, the still-firing alert counts at its next repeat.
    app.clock.advance(SignedDuration::from_mins(61));
    let (_, body) = post(
        &app,
        &path,
        am_payload("g", vec![am_alert("disk", "firing", json!({"alertname": "DiskFull"}))]),
    )
    .await;
    assert_eq!(body["alerts"][0]["result"], "created");
    assert_eq!(incidents(&app).await.len(), 1);

    // Bad silences name the field.
    let (status, body) = app
        .raw(
            "POST",
            "/api/v1/silences",
            Some(ADMIN),
            Some(br#"{"matchers": [], "duration": "1h"}"#.to_vec()),
        )
        .await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("matchers")));
    let (status, body) = app
        .raw(
            "POST",
            "/api/v1/silences",
            Some(ADMIN),
            Some(br#"{"matchers": ["a=b"]}"#.to_vec()),
        )
        .await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("ends_at")));
    let (status, body) = app
        .raw(
            "POST",
            "/api/v1/silences",
            Some(ADMIN),
            Some(br#"{"matchers": ["a=b"], "duration": "soon"}"#.to_vec()),
        )
        .await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("duration")));
    let expired = app.client.expire_silence(sil["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(expired["id"], sil["id"]);
});

both!(a_flapping_alert_stops_changing_the_incident_until_stable, |app| {
    let key = integration(&app, "prom", IntegrationFormat::Alertmanager).await;
    let path = format!("/ingest/alertmanager/{key}");
    let l = json!({"alertname": "Flappy"});
    post(&app, &path, am_payload("g", vec![am_alert("f", "firing", l.clone())])).await;
    let id = incidents(&app).await[0].id.clone();
    // Default policy: more than 6 changes in 30 minutes.
    let mut last = Value::Null;
    for i in 0..8 {
        app.clock.advance(SignedDuration::from_secs(60));
        let st = if i % 2 == 0 { "resolved" } else { "firing" };
        last = post(&app, &path, am_payload("g", vec![am_alert("f", st, l.clone())]))
            .await
            .1;
    }
    assert_eq!(last["alerts"][0]["result"], "flapping", "{last}");
    let k = kinds(&app, &id).await;
    assert!(k.contains(&"alert_flapping".to_string()), "{k:?}");
    let before = app.client.incident(&id).await.unwrap();
    app.clock.advance(SignedDuration::from_secs(60));
    post(&app, &path, am_payload("g", vec![am_alert("f", "firing", l.clone())])).await;
    assert_eq!(
        app.client.incident(&id).await.unwrap().version,
        before.version,
        "a flapping alert changes nothing"
    );
    // Quiet for longer than the window: stable again, and it counts.
    app.clock.advance(SignedDuration::from_mins(31));
    let (_, body) = post(&app, &path, am_payload("g", vec![am_alert("f", "resolved", l.clone())])).await;
    assert_eq!(body["alerts"][0]["result"], "resolved", "{body}");
    let after = app.client.incident(&id).await.unwrap();
    assert_eq!(after.status, Status::Resolved);
    let k = kinds(&app, &id).await;
    assert_eq!(
        k.iter().filter(|k| *k == "alert_flapping").count(),
        2,
        "started and stopped flapping: {k:?}"
    );
});

/// PagerDuty's documented examples, byte for byte (routing key swapped for ours).
const PD_TRIGGER: &str = r#"{
  "payload": {
    "summary": "DISK at 99% on machine prod-datapipe03.example.com",
    "timestamp": "2015-07-17T08:42:58.315+0000",
    "severity": "critical",
    "source": "prod-datapipe03.example.com",
    "component": "mysql",
    "group": "prod-datapipe",
    "class": "disk",
    "custom_details": { "free space": "1%", "ping time": "1500ms", "load avg": 0.75 }
  },
  "routing_key": "e93facc04764012d7bfb002500d5d1a6",
  "dedup_key": "srv01/mysql",
  "event_action": "trigger",
  "client": "Sample Monitoring Service",
  "client_url": "https://monitoring.service.com",
  "links": [ { "href": "http://pagerduty.example.com", "text": "An example link." } ],
  "images": [ { "src": "https://chart.googleapis.com/chart?chs=600x400&chd=t:6,2,9,5,2,5,7,4,8,2,1&cht=lc&chds=a&chxt=y&chm=D,0033FF,0,0,5,1", "href": "https://google.com", "alt": "An example link with an image" } ]
}"#;

both!(pagerduty_events_v2_compatible, |app| {
    let key = integration(&app, "datadog", IntegrationFormat::Pagerduty).await;
    let trigger = PD_TRIGGER.replace("e93facc04764012d7bfb002500d5d1a6", &key);
    let (status, body) = post(&app, "/v2/enqueue", trigger.clone().into_bytes()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body,
        json!({"status": "success", "message": "Event processed", "dedup_key": "srv01/mysql"})
    );
    let list = incidents(&app).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].severity, "SEV-1");
    assert_eq!(list[0].title, "DISK at 99% on machine prod-datapipe03.example.com");
    // A repeat trigger never pages again.
    post(&app, "/v2/enqueue", trigger.into_bytes()).await;
    assert_eq!(incidents(&app).await.len(), 1);

    let ack = format!(r#"{{"routing_key":"{key}","dedup_key":"srv01/mysql","event_action":"acknowledge"}}"#);
    let (status, _) = post(&app, "/v2/enqueue", ack.into_bytes()).await;
    assert_eq!(status, 202);
    assert_eq!(
        app.client.incident(&list[0].id).await.unwrap().status,
        Status::Acknowledged
    );
    let resolve = format!(r#"{{"routing_key":"{key}","dedup_key":"srv01/mysql","event_action":"resolve"}}"#);
    let (status, _) = post(&app, "/v2/enqueue", resolve.clone().into_bytes()).await;
    assert_eq!(status, 202);
    assert_eq!(app.client.incident(&list[0].id).await.unwrap().status, Status::Resolved);
    // After a resolve, acknowledge and resolve are dropped (still 202).
    let (status, _) = post(&app, "/v2/enqueue", resolve.into_bytes()).await;
    assert_eq!(status, 202);

    // A trigger without dedup_key gets one generated.
    let no_key = format!(
        r#"{{"routing_key":"{key}","event_action":"trigger","payload":{{"summary":"s","source":"h","severity":"info"}}}}"#
    );
    let (_, body) = post(&app, "/v2/enqueue", no_key.into_bytes()).await;
    assert_eq!(body["dedup_key"].as_str().unwrap().len(), 32);

    // Errors in PagerDuty's format.
    let (status, body) = post(
        &app,
        "/v2/enqueue",
        format!(r#"{{"routing_key":"{key}","event_action":"trigger","payload":{{"summary":"s","severity":"fatal"}}}}"#)
            .into_bytes(),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (400, Some("invalid event")),
        "{body}"
    );
    let errors = body["errors"].to_string();
    assert!(
        errors.contains("payload.source") && errors.contains("payload.severity"),
        "{errors}"
    );
    let (status, body) = post(&app, "/v2/enqueue", b"{not json".to_vec()).await;
    assert_eq!((status, body["status"].as_str()), (400, Some("invalid event")));
    let (status, _) = post(&app, "/v2/enqueue", PD_TRIGGER.as_bytes().to_vec()).await;
    assert_eq!(status, 404, "unknown routing key");
});

both!(grafana_and_generic_webhooks, |app| {
    let gkey = integration(&app, "grafana", IntegrationFormat::Grafana).await;
    let grafana = json!({"receiver": "My Super Webhook", "status": "firing", "orgId": 1, "version": "1", "groupKey": "{}:{alertname=\"High memory usage\"}",
        "title": "[FIRING:1]", "state": "alerting", "message": "m", "truncatedAlerts": 0,
        "alerts": [{"status": "firing", "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
            "annotations": {"description": "The system has high memory usage", "runbook_url": "https://myrunbook.com/runbook/1234", "summary": "This alert was triggered for zone us-1"},
            "startsAt": "2021-10-12T09:51:03.157076+02:00", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "https://play.grafana.org/alerting/1afz29v7z/edit",
            "fingerprint": "c6eadffa33fcdf37", "silenceURL": "https://play.grafana.org/alerting/silence/new", "dashboardURL": "", "panelURL": "", "values": {"B": 44.23943737541908, "C": 1}}]});
    let (status, body) = post(
        &app,
        &format!("/ingest/grafana/{gkey}"),
        grafana.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let inc = incidents(&app).await.remove(0);
    assert_eq!(inc.title, "This alert was triggered for zone us-1");
    assert_eq!(inc.description, "The system has high memory usage");
    let alert = app
        .client
        .alert(&body["alerts"][0]["alert_id"].to_string())
        .await
        .unwrap();
    assert!(alert.links.to_string().contains("myrunbook.com"), "{}", alert.links);

    let key = integration(&app, "cron", IntegrationFormat::Generic).await;
    let path = format!("/ingest/generic/{key}");
    let (status, body) = post(
        &app,
        &path,
        br#"{"title": "Backup failed", "severity": "error", "dedup_key": "backup", "labels": {"service": "backup"}}"#
            .to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &app,
        &path,
        br#"[{"title": "Backup failed", "status": "resolved", "dedup_key": "backup"}]"#.to_vec(),
    )
    .await;
    assert_eq!((status, body["alerts"][0]["result"].as_str()), (200, Some("resolved")));
    let list = incidents(&app).await;
    let backup = list.iter().find(|i| i.title == "Backup failed").unwrap();
    assert_eq!((backup.severity.as_str(), backup.status), ("SEV-2", Status::Resolved));

    // Bad input names the field; nothing is stored.
    for (body, field) in [
        (r#"{"status": "firing"}"#, "title"),
        (r#"{"title": "x", "status": "exploded"}"#, "status"),
        (r#"{"title": "x", "labels": {"a": 1}}"#, "labels.a"),
        (r#"[{"title": "ok"}, {"title": ""}]"#, "[1].title"),
    ] {
        let (status, resp) = post(&app, &path, body.as_bytes().to_vec()).await;
        assert_eq!(
            (status, resp["error"]["field"].as_str()),
            (400, Some(field)),
            "{body} → {resp}"
        );
    }
    let (status, _) = post(&app, &path, b"{oops".to_vec()).await;
    assert_eq!(status, 400);
    let (status, _) = post(&app, "/ingest/generic/not-a-key", br#"{"title": "x"}"#.to_vec()).await;
    assert_eq!(status, 404);
    let (status, resp) = post(&app, &format!("/ingest/alertmanager/{key}"), am_payload("g", vec![])).await;
    assert_eq!(
        (status, resp["error"]["field"].as_str()),
        (422, Some("key")),
        "a generic key on the Alertmanager endpoint"
    );
    let big = format!(r#"{{"title": "{}"}}"#, "x".repeat(1024 * 1024 + 1));
    let (status, _) = post(&app, &path, big.into_bytes()).await;
    assert_eq!(status, 413);
    let (status, resp) = post(
        &app,
        &format!("/ingest/alertmanager/{gkey}"),
        br#"{"alerts": [{"status": "firing", "startsAt": "yesterday"}]}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 422, "{resp}");
    assert_eq!(incidents(&app).await.len(), 2, "refused requests stored nothing");
});

both!(a_request_is_all_or_nothing_and_keys_rotate, |app| {
    let created = app
        .client
        .create_integration(&CreateIntegration {
            name: "prom".into(),
            format: IntegrationFormat::Alertmanager,
        })
        .await
        .unwrap();
    let path = format!("/ingest/alertmanager/{}", created.key);
    let (status, _) = post(
        &app,
        &path,
        am_payload(
            "g",
            vec![
                am_alert("ok", "firing", json!({"alertname": "A"})),
                json!({"status": "firing", "startsAt": "garbage", "labels": {}}),
            ],
        ),
    )
    .await;
    assert_eq!(status, 400, "a wrong field is 400 on the ingest endpoints");
    assert!(
        app.client.alerts(&[]).await.unwrap()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let rotated = app.client.rotate_integration_key("prom").await.unwrap();
    let (status, _) = post(
        &app,
        &path,
        am_payload("g", vec![am_alert("ok", "firing", json!({"alertname": "A"}))]),
    )
    .await;
    assert_eq!(status, 404, "the old key stops working");
    let (status, _) = post(
        &app,
        &format!("/ingest/alertmanager/{}", rotated.key),
        am_payload("g", vec![am_alert("ok", "firing", json!({"alertname": "A"}))]),
    )
    .await;
    assert_eq!(status, 200);
    let listed = serde_json::to_string(&app.client.integrations().await.unwrap()).unwrap();
    assert!(!listed.contains(&rotated.key), "keys are never listed");
    assert_eq!(app.anon.integrations().await.unwrap_err().status(), Some(401));
});

both!(concurrent_senders_share_commits_and_lose_nothing, |app| {
    let key = integration(&app, "prom", IntegrationFormat::Alertmanager).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let base = app.base.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let body = am_payload(
                "g",
                vec![am_alert(
                    &format!("c{i}"),
                    "firing",
                    json!({"alertname": "Burst", "i": i.to_string()}),
                )],
            );
            reqwest::Client::new()
                .post(format!("{base}/ingest/alertmanager/{key}"))
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 202, "committed; applied next");
    }
    app.settled().await;
    let list = incidents(&app).await;
    assert_eq!(list.len(), 1, "one group, one incident");
    let alerts = app.client.alerts(&[("limit", "500".into())]).await.unwrap();
    assert_eq!(alerts["items"].as_array().unwrap().len(), 40);
    let fired = alert_changes(&app, &list[0].id, "fired").await;
    assert_eq!(fired.len(), 40);
    assert_eq!(
        fired.iter().map(|f| f.0).collect::<HashSet<_>>().len(),
        40,
        "each alert once"
    );
    assert!(app.client.verify(&list[0].id).await.unwrap().ok);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_rate_limit_answers_429() {
    let app = TestApp::spawn_full("sqlite", Default::default(), Default::default(), vec![], (1, 2)).await;
    let key = integration(&app, "pd", IntegrationFormat::Pagerduty).await;
    let ev = format!(
        r#"{{"routing_key":"{key}","event_action":"trigger","dedup_key":"x","payload":{{"summary":"s","source":"h","severity":"info"}}}}"#
    );
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(post(&app, "/v2/enqueue", ev.clone().into_bytes()).await.0);
    }
    assert_eq!(&codes[..2], &[202, 202]);
    assert!(codes.contains(&429), "{codes:?}");
}

// API commands between alert batches are kept: a batch never writes back an incident,
// an incident number or a key from before them.
both!(api_commands_between_alert_batches_are_kept, |app| {
    let key = integration(&app, "prom", IntegrationFormat::Alertmanager).await;
    let path = format!("/ingest/alertmanager/{key}");
    let labels = |n: &str, i: &str| json!({"alertname": n, "severity": "critical", "instance": i});
    // The default route groups by Alertmanager's group key.
    let fire = |n: &str, fp: &str, i: &str, st: &str| am_payload(n, vec![am_alert(fp, st, labels(n, i))]);
    post(&app, &path, fire("Disk", "fp-a", "a", "firing")).await;
    post(&app, &path, fire("Disk", "fp-b", "b", "firing")).await;
    let x = incidents(&app).await[0].id.clone();

    // Acknowledged through the API, then the alert repeats: the ack stays.
    app.client.ack(&x, None).await.unwrap();
    let (_, body) = post(&app, &path, fire("Disk", "fp-a", "a", "firing")).await;
    assert_eq!(body["alerts"][0]["result"], "repeated");
    let inc = app.client.incident(&x).await.unwrap();
    assert_eq!(inc.status, Status::Acknowledged, "the repeat did not undo the ack");
    let k = kinds(&app, &x).await;
    assert_eq!(alert_changes(&app, &x, "repeated").await.len(), 1, "{k:?}");
    assert!(app.client.verify(&x).await.unwrap().ok);

    // Resolved by hand, then an alert resolves: no second resolution, chain intact.
    app.client.set_status(&x, "resolved", None).await.unwrap();
    let (_, body) = post(&app, &path, fire("Disk", "fp-b", "b", "resolved")).await;
    assert_eq!(body["alerts"][0]["result"], "resolved");
    assert_eq!(app.client.incident(&x).await.unwrap().status, Status::Resolved);
    assert!(app.client.verify(&x).await.unwrap().ok);

    // Declares through the API between alert batches: every incident its own key and number.
    post(&app, &path, fire("Cpu", "fp-c", "c", "firing")).await;
    let manual = app
        .client
        .declare(&klaxon_domain::wire::DeclareIncident {
            title: "Declared by hand".into(),
            severity: Some("SEV-2".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    post(&app, &path, fire("Mem", "fp-d", "d", "firing")).await;
    let list = incidents(&app).await;
    assert_eq!(list.len(), 4, "{list:?}");
    let mut ids: Vec<String> = list.iter().map(|i| i.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "incident numbers are never reused: {ids:?}");
    assert_eq!(
        app.client.incident(&manual.id).await.unwrap().title,
        "Declared by hand",
        "an alert batch did not overwrite the declared incident"
    );
    for i in &list {
        assert!(app.client.verify(&i.id).await.unwrap().ok, "{}", i.id);
        let t = app.client.timeline(&i.id).await.unwrap();
        assert!(!t.events.is_empty());
    }
});

// An alert that fires again and resolves in the same request leaves nothing firing: the
// incident it reopened auto-resolves (a refired alert used to be counted twice).
both!(an_alert_refiring_and_resolving_in_one_request_is_counted_once, |app| {
    let key = integration(&app, "cron", IntegrationFormat::Generic).await;
    let path = format!("/ingest/generic/{key}");
    let ev = |status: &str| json!({"title": "Backup failed", "status": status, "dedup_key": "backup", "labels": {"job": "backup"}});
    post(&app, &path, ev("firing").to_string().into_bytes()).await;
    post(&app, &path, ev("resolved").to_string().into_bytes()).await;
    let inc = incidents(&app).await.remove(0);
    assert_eq!(inc.status, Status::Resolved);
    app.clock.advance(SignedDuration::from_mins(5));
    let (status, body) = post(
        &app,
        &path,
        json!([ev("firing"), ev("resolved")]).to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["alerts"][0]["result"], "refired", "{body}");
    let after = app.client.incident(&inc.id).await.unwrap();
    assert_eq!((after.status, after.reopen_count), (Status::Resolved, 1), "{after:?}");
});

// On PostgreSQL a batch's text columns travel as one parameter each, values
// joined by ASCII separators (0x1E, 0x1F for NULL): values that hold those very
// characters (keys may; titles may not), quotes, backslashes, NULLs beside
// values, all come back exactly.
both!(values_holding_separators_quotes_and_nulls_are_stored_exactly, |app| {
    let key = integration(&app, "cron", IntegrationFormat::Generic).await;
    let path = format!("/ingest/generic/{key}");
    let weird = [
        ("k\u{1e}1", "record separator in the key", Some("critical")),
        ("\u{1f}", "a key that is the NULL mark", None),
        ("k3", "\"quoted\" \\ {braces}, commas", Some("warning")),
        ("k4", "plain", None),
    ];
    let alerts: Vec<Value> = weird
        .iter()
        .map(|(dedup, title, sev)| {
            let mut a = json!({"title": title, "dedup_key": dedup,
                "labels": {"sep": "a\u{1e}b", "null_mark": "\u{1f}", "empty": ""}});
            if let Some(sev) = sev {
                a["severity"] = json!(sev);
            }
            a
        })
        .collect();
    let (status, body) = post(&app, &path, json!(alerts).to_string().into_bytes()).await;
    assert_eq!(status, 200, "{body}");
    for (i, (dedup, title, sev)) in weird.iter().enumerate() {
        let id = body["alerts"][i]["alert_id"].to_string();
        let alert = app.client.alert(&id).await.unwrap();
        assert_eq!(
            (alert.dedup_key.as_str(), alert.summary.as_str()),
            (*dedup, *title),
            "alert {i}"
        );
        assert_eq!(
            alert.severity.as_deref(),
            *sev,
            "alert {i}: NULL stays NULL, values stay values"
        );
        assert_eq!(alert.labels["sep"], "a\u{1e}b");
        assert_eq!(alert.labels["null_mark"], "\u{1f}");
        assert_eq!(alert.labels["empty"], "");
    }
    let titles: HashSet<String> = incidents(&app).await.into_iter().map(|i| i.title).collect();
    let want: HashSet<String> = weird.iter().map(|w| w.1.to_string()).collect();
    assert!(want.is_subset(&titles), "{titles:?}");

    // A repeat replaces labels and annotations; a resolution keeps them as stored.
    let id = body["alerts"][2]["alert_id"].to_string();
    let again = json!({"title": weird[2].1, "dedup_key": "k3", "labels": {"sep": "changed \"again\""},
        "annotations": {"note": "second"}});
    let (status, _) = post(&app, &path, again.to_string().into_bytes()).await;
    assert_eq!(status, 200);
    let resolve = json!({"title": weird[2].1, "dedup_key": "k3", "status": "resolved"});
    let (status, _) = post(&app, &path, resolve.to_string().into_bytes()).await;
    assert_eq!(status, 200);
    let alert = app.client.alert(&id).await.unwrap();
    assert_eq!((alert.status.as_str(), alert.receive_count), ("resolved", 2));
    assert_eq!(alert.labels.len(), 1, "{:?}", alert.labels);
    assert_eq!(alert.labels["sep"], "changed \"again\"");
    assert_eq!(alert.annotations["note"], "second");
});

// The default answer comes once the alerts are committed to the journal; the
// applier then opens the incident.
both!(accepted_alerts_are_committed_then_applied, |app| {
    let key = integration(&app, "cron", IntegrationFormat::Generic).await;
    let (status, body) = app
        .raw(
            "POST",
            &format!("/ingest/generic/{key}"),
            None,
            Some(
                br#"[{"title": "Backup failed", "dedup_key": "backup"}, {"title": "Disk full", "dedup_key": "disk"}]"#
                    .to_vec(),
            ),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["alerts"][0], json!({"dedup_key": "backup", "result": "accepted"}));
    assert_eq!(body["alerts"][1]["dedup_key"], "disk");
    app.settled().await;
    assert_eq!(app.ingestor.backlog(), 0);
    let list = incidents(&app).await;
    assert_eq!(
        list.len(),
        2,
        "one incident per alert (default route groups by dedup key)"
    );
    let alerts = app.client.alerts(&[]).await.unwrap();
    assert_eq!(alerts["items"].as_array().unwrap().len(), 2, "{alerts}");
});

/// An Alertmanager integration named "prom", as the ingest pipeline sees it.
async fn prom_integration(app: &TestApp) -> klaxon_domain::wire::IntegrationInfo {
    integration(app, "prom", IntegrationFormat::Alertmanager).await;
    let id = app
        .client
        .integrations()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.name == "prom")
        .unwrap()
        .id;
    app.store.integration(&id).await.unwrap().unwrap()
}

/// Another ingest writer on the app's database (a restart, or another node),
/// with `linger` as its `apply_linger` (the default with `None`).
fn start_ingestor(app: &TestApp, linger: Option<std::time::Duration>) -> klaxon_store::Ingestor {
    let mut settings = klaxon_store::IngestSettings::new(app.catalog.clone());
    if let Some(linger) = linger {
        settings.apply_linger = linger;
    }
    klaxon_store::Ingestor::start(app.store.clone(), std::sync::Arc::new(settings), app.clock.clone())
}

/// The journal as a server that stopped between answering and applying left
/// it: one group commit of requests `first_seq`, … (one alert each, keyed by
/// `dedups`), as `ingest_commits` keeps it. Written here by hand, so that a
/// change of the row's format that would strand rows of a previous version
/// fails this test.
async fn commit_of_a_stopped_server(app: &TestApp, integration_id: &str, first_seq: i64, dedups: &[&str]) {
    let received = (crate::support::t0() - SignedDuration::from_mins(2)).as_millisecond();
    let requests: Vec<serde_json::Value> = dedups
        .iter()
        .map(|dedup| {
            let alert = trigger(dedup, &format!("left over {dedup}"), "LeftOver", "critical", "left");
            json!({"integration_id": integration_id, "received_at": received, "alerts": [alert]})
        })
        .collect();
    let pool = app.db.journal_pool().await;
    sqlx::query("INSERT INTO ingest_commits (writer, seq, received_at, requests) VALUES ($1, $2, $3, $4)")
        .bind("w-stopped")
        .bind(first_seq + dedups.len() as i64 - 1)
        .bind(received)
        .bind(serde_json::to_string(&requests).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// The same as a server of a previous version left it: a row per request in
/// `ingest_journal`.
async fn legacy_rows_of_a_stopped_server(app: &TestApp, integration_id: &str, rows: &[(i64, &str)]) {
    let pool = app.db.journal_pool().await;
    for (seq, dedup) in rows {
        let alert = trigger(dedup, &format!("left over {dedup}"), "LeftOver", "critical", "left");
        let received = (crate::support::t0() - SignedDuration::from_mins(2)).as_millisecond();
        sqlx::query(
            "INSERT INTO ingest_journal (writer, seq, integration_id, received_at, alerts) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind("w-stopped")
        .bind(*seq)
        .bind(integration_id.to_string())
        .bind(received)
        .bind(serde_json::to_string(&vec![alert]).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
}

/// Start the next server on a database where `w-stopped` left `expected`
/// alerts to apply: it applies them, once, and clears `table` of the writer's rows.
async fn next_server_applies_leftovers_once(
    app: &TestApp,
    integ: &klaxon_domain::wire::IntegrationInfo,
    table: &str,
    expected: &[&str],
) {
    // A second writer starting on the same database (a restart, or on
    // PostgreSQL another node once the rows are a minute old).
    let next = start_ingestor(app, None);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let keys = || async {
        let alerts = app.client.alerts(&[]).await.unwrap();
        let mut keys: Vec<String> = alerts["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["dedup_key"].as_str().unwrap().to_string())
            .collect();
        keys.sort();
        keys
    };
    while keys().await.len() < expected.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "left-over alerts applied: {:?}",
            keys().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let list = incidents(app).await;
    assert_eq!(list.len(), 1, "grouped as they would have been");
    assert_eq!(alert_changes(app, &list[0].id, "fired").await.len(), expected.len());
    // Applied once: a third start finds nothing to apply, and the rows are gone.
    let again = start_ingestor(app, None);
    // Its first sweep runs before it takes any request: once this one is applied, the sweep is done.
    again.submit(integ.clone(), vec![], app.clock_now()).await.unwrap();
    assert_eq!(alert_changes(app, &list[0].id, "fired").await.len(), expected.len());
    assert_eq!(keys().await, expected);
    let pool = app.db.journal_pool().await;
    let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {table} WHERE writer = 'w-stopped'"
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(left, 0, "applied rows leave the journal");
    drop(next);
}

// A server stopped with accepted alerts not applied: the next one to start
// applies them, once, and clears them from the journal. Of a group commit
// whose first request was applied before the stop, only the rest is applied.
both!(a_stopped_servers_journal_is_applied_once_by_the_next, |app| {
    let integ = prom_integration(&app).await;
    commit_of_a_stopped_server(&app, &integ.id, 1, &["applied-1", "left-2", "left-3"]).await;
    // The applied mark lives in the main database (on SQLite not the journal's file).
    let main = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(app.db.url())
        .await
        .unwrap();
    sqlx::query("INSERT INTO ingest_applied (writer, seq) VALUES ('w-stopped', 1)")
        .execute(&main)
        .await
        .unwrap();
    main.close().await;
    next_server_applies_leftovers_once(&app, &integ, "ingest_commits", &["left-2", "left-3"]).await;
});

// A journal row that cannot be read is passed (logged, counted as dead) rather
// than stop the rows after it.
both!(an_unreadable_journal_row_does_not_hold_up_the_rows_after_it, |app| {
    let integ = prom_integration(&app).await;
    let pool = app.db.journal_pool().await;
    sqlx::query(
        "INSERT INTO ingest_commits (writer, seq, received_at, requests) VALUES ('w-stopped', 1, 0, 'not json')",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    commit_of_a_stopped_server(&app, &integ.id, 2, &["left-2"]).await;
    next_server_applies_leftovers_once(&app, &integ, "ingest_commits", &["left-2"]).await;
});

// Rows a previous version left (one per request) are applied the same way.
both!(a_previous_versions_journal_rows_are_applied_once, |app| {
    let integ = prom_integration(&app).await;
    legacy_rows_of_a_stopped_server(&app, &integ.id, &[(1, "left-1"), (2, "left-2")]).await;
    next_server_applies_leftovers_once(&app, &integ, "ingest_journal", &["left-1", "left-2"]).await;
});

/// One firing alert in the form the journal keeps, joining group `group`.
fn trigger(
    dedup: &str,
    summary: &str,
    alertname: &str,
    severity: &str,
    group: &str,
) -> klaxon_domain::alert::AlertInput {
    klaxon_domain::alert::AlertInput {
        action: klaxon_domain::alert::AlertAction::Trigger,
        dedup_key: dedup.to_string(),
        summary: summary.to_string(),
        severity: Some(severity.into()),
        source: None,
        labels: [("alertname".to_string(), alertname.to_string())].into(),
        annotations: Default::default(),
        starts_at: None,
        ends_at: None,
        links: vec![],
        group_key: Some(group.into()),
        details: Value::Null,
    }
}

// A request alone in the queue waits `apply_linger` for others and is applied
// with them in one batch (one transaction, one timeline event); with no linger
// and the first applied before the second arrives, they are two.
both!(a_lone_request_waits_for_company_before_it_is_applied, |app| {
    let info = prom_integration(&app).await;
    let lingering = start_ingestor(&app, Some(std::time::Duration::from_secs(3)));
    for dedup in ["l-1", "l-2"] {
        lingering
            .accept(
                info.clone(),
                vec![trigger(dedup, &format!("lone {dedup}"), "Lone", "warning", "lone")],
                app.clock_now(),
                false,
            )
            .await
            .unwrap();
    }
    lingering.settled().await;
    let list = incidents(&app).await;
    assert_eq!(list.len(), 1);
    let fired = alert_changes(&app, &list[0].id, "fired").await;
    assert_eq!(fired.len(), 2, "{fired:?}");
    assert_eq!(fired[0].1, fired[1].1, "both alerts in one event: {fired:?}");

    let eager = start_ingestor(&app, Some(std::time::Duration::ZERO));
    for dedup in ["e-1", "e-2"] {
        eager
            .accept(
                info.clone(),
                vec![trigger(dedup, &format!("lone {dedup}"), "Lone", "warning", "lone")],
                app.clock_now(),
                false,
            )
            .await
            .unwrap();
        eager.settled().await;
    }
    let fired = alert_changes(&app, &list[0].id, "fired").await;
    assert_eq!(fired.len(), 4, "{fired:?}");
    assert_ne!(fired[2].1, fired[3].1, "applied one by one: {fired:?}");
});

// An alert that resolves and, past the reuse window, fires again within one
// applied batch (a journal replayed after a long stop has such batches) is two
// episodes: the old row updated to resolved, a new row firing. The batch
// writes both, the update first, so that the "one firing alert per key" index
// holds; it does not fail and fall back to applying request by request.
both!(a_resolve_and_a_new_episode_in_one_batch_are_two_rows, |app| {
    let info = prom_integration(&app).await;
    let eager = start_ingestor(&app, Some(std::time::Duration::ZERO));
    let fire = || trigger("episode", "disk full", "DiskFull", "warning", "disk");
    eager.submit(info.clone(), vec![fire()], app.clock_now()).await.unwrap();
    let lingering = start_ingestor(&app, Some(std::time::Duration::from_secs(3)));
    let resolve = klaxon_domain::alert::AlertInput {
        action: klaxon_domain::alert::AlertAction::Resolve,
        ..fire()
    };
    let later = [SignedDuration::from_mins(1), SignedDuration::from_hours(2)];
    for (alert, after) in [resolve, fire()].into_iter().zip(later) {
        lingering
            .accept(info.clone(), vec![alert], app.clock_now() + after, false)
            .await
            .unwrap();
    }
    lingering.settled().await;
    let alerts = app.client.alerts(&[]).await.unwrap();
    let mut rows: Vec<(i64, &str)> = alerts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_i64().unwrap(), a["status"].as_str().unwrap()))
        .collect();
    rows.sort();
    let statuses: Vec<&str> = rows.iter().map(|r| r.1).collect();
    assert_eq!(statuses, ["resolved", "firing"], "{alerts}");
    assert_eq!(lingering.failed_batches(), 0, "applied as one batch");
});

// A journal write that fails answers its request with an error and stores
// nothing of it; the sequence number it took is not used again, so a row that
// holds it (a commit whose answer was lost) cannot make later requests fail.
both!(a_failed_journal_write_does_not_block_later_requests, |app| {
    let info = prom_integration(&app).await;
    // Sequence number 2 of any writer cannot be written.
    let pool = app.db.journal_pool().await;
    let block = match app.backend {
        "sqlite" => {
            "CREATE TRIGGER seq_2_taken BEFORE INSERT ON ingest_commits WHEN NEW.seq = 2 \
             BEGIN SELECT RAISE(ABORT, 'seq 2 is taken'); END"
        }
        _ => "ALTER TABLE ingest_commits ADD CONSTRAINT seq_2_taken CHECK (seq <> 2)",
    };
    sqlx::query(block).execute(&pool).await.unwrap();
    pool.close().await;
    let ingestor = start_ingestor(&app, Some(std::time::Duration::ZERO));
    let mut answers = Vec::new();
    for dedup in ["first", "second", "third"] {
        let alert = trigger(dedup, &format!("alert {dedup}"), "Seq", "warning", "seq");
        let answer = ingestor.accept(info.clone(), vec![alert], app.clock_now(), false).await;
        answers.push(answer.map(|_| ()).map_err(|e| e.to_string()));
    }
    assert!(answers[0].is_ok(), "{answers:?}");
    assert!(
        answers[1].as_ref().is_err_and(|e| e.contains("not stored")),
        "{answers:?}"
    );
    assert!(answers[2].is_ok(), "the next request takes seq 3: {answers:?}");
    ingestor.settled().await;
    let alerts = app.client.alerts(&[]).await.unwrap();
    let mut keys: Vec<&str> = alerts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["dedup_key"].as_str().unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys, ["first", "third"], "nothing of the failed request: {alerts}");
});

// PostgreSQL: the intake and the applier keep connections of their own. When the
// database drops every connection (a restart, a failover), a journal write may
// fail once — its sender is told to retry — and then both go on with new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_database_connections_are_replaced() {
    let app = TestApp::spawn("postgres").await;
    let info = prom_integration(&app).await;
    let send = |dedup: &'static str| {
        let alert = trigger(dedup, dedup, "Dropped", "warning", "dropped");
        app.ingestor.accept(info.clone(), vec![alert], app.clock_now(), false)
    };
    send("before").await.unwrap();
    app.ingestor.settled().await;
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(app.db.url())
        .await
        .unwrap();
    let killed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()) k",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        killed >= 2,
        "the intake's and the applier's connections at least: {killed}"
    );
    let mut failures = 0;
    while let Err(e) = send("after").await {
        failures += 1;
        assert!(failures < 3, "still failing after a fresh connection: {e}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::timeout(std::time::Duration::from_secs(30), app.ingestor.settled())
        .await
        .expect("applied with a new connection");
    let mut keys: Vec<String> = sqlx::query_scalar("SELECT dedup_key FROM alerts")
        .fetch_all(&pool)
        .await
        .unwrap();
    keys.sort();
    assert_eq!(keys, ["after", "before"]);
}

/// `n` one-alert Alertmanager requests at once (alert `fp{i}`, name `A{i}`):
/// each one's status and how long it took.
async fn burst(app: &TestApp, key: &str, n: usize) -> Vec<(u16, std::time::Duration)> {
    let http = reqwest::Client::new();
    let sends = (0..n).map(|i| {
        let (http, url) = (http.clone(), format!("{}/ingest/alertmanager/{key}", app.base));
        async move {
            let alert = am_alert(&format!("fp{i}"), "firing", json!({"alertname": format!("A{i}")}));
            let started = std::time::Instant::now();
            let resp = http.post(url).body(am_payload("g", vec![alert])).send().await.unwrap();
            (resp.status().as_u16(), started.elapsed())
        }
    });
    futures::future::join_all(sends).await
}

// A burst beyond the backlog is held until the applier makes room, not refused:
// with room for one alert at a time, every one of 24 concurrent requests is
// accepted (with no wait most would get 503) and every alert is applied.
mod a_full_backlog_holds_requests_until_the_applier_makes_room {
    use super::*;

    async fn body(backend: &'static str) {
        let app = TestApp::spawn_backlog(backend, 1, std::time::Duration::from_secs(20)).await;
        let key = integration(&app, "prom", IntegrationFormat::Alertmanager).await;
        let statuses: Vec<u16> = burst(&app, &key, 24).await.into_iter().map(|(s, _)| s).collect();
        assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
        app.settled().await;
        assert_eq!(
            app.client.alerts(&[]).await.unwrap()["items"].as_array().unwrap().len(),
            24
        );
    }

    crate::each_backend!(body);
}

// Held requests keep their bodies, so only so many are held: past 256 the rest
// are refused at once rather than held for the whole wait.
mod a_full_backlog_holds_a_bounded_number_of_requests {
    use super::*;

    async fn body(backend: &'static str) {
        let wait = std::time::Duration::from_secs(3);
        let app = TestApp::spawn_backlog(backend, 0, wait).await;
        let key = integration(&app, "prom", IntegrationFormat::Alertmanager).await;
        let answers = burst(&app, &key, 300).await;
        assert!(answers.iter().all(|(s, _)| *s == 503), "{answers:?}");
        let held = answers.iter().filter(|(_, t)| *t >= wait).count();
        let at_once = answers.iter().filter(|(_, t)| *t < wait / 2).count();
        assert!(held <= 256, "at most 256 held, not {held}");
        assert!(at_once >= 44, "the rest refused at once, not {at_once}");
    }

    crate::each_backend!(body);
}

// More alerts waiting than the server holds, and no room within the wait:
// refused with a retry hint, nothing stored.
mod a_full_backlog_refuses_alerts_with_a_retry_hint {
    use super::*;

    async fn body(backend: &'static str) {
        let wait = std::time::Duration::from_millis(300);
        let app = TestApp::spawn_backlog(backend, 0, wait).await;
        let started = std::time::Instant::now();
        let key = integration(&app, "prom", IntegrationFormat::Alertmanager).await;
        let resp = reqwest::Client::new()
            .post(format!("{}/ingest/alertmanager/{key}", app.base))
            .body(am_payload(
                "g",
                vec![am_alert("fp", "firing", json!({"alertname": "A"}))],
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 503);
        assert!(started.elapsed() >= wait, "held for the wait before it was refused");
        assert_eq!(resp.headers()["retry-after"], "1");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "overloaded", "{body}");
        let pd_key = integration(&app, "pd", IntegrationFormat::Pagerduty).await;
        let (status, body) = app
            .raw(
                "POST",
                "/v2/enqueue",
                None,
                Some(
                    json!({"routing_key": pd_key, "event_action": "trigger",
                        "payload": {"summary": "s", "source": "h", "severity": "info"}})
                    .to_string()
                    .into_bytes(),
                ),
            )
            .await;
        assert_eq!(status, 429, "PagerDuty senders retry a 429: {body}");
        assert_eq!(body["status"], "throttle event");
        assert_eq!(
            app.client.alerts(&[]).await.unwrap()["items"].as_array().unwrap().len(),
            0
        );
        assert_eq!(app.store.ingest_journal_len().await.unwrap(), 0, "nothing journaled");
    }

    crate::each_backend!(body);
}

// PostgreSQL receives each column of a batch as one array literal; text that
// looks like array syntax (quotes, backslashes, braces, commas, NULL) must come
// back byte for byte, and the sealed timeline must still verify.
both!(awkward_label_text_round_trips_byte_for_byte, |app| {
    let key = integration(&app, "prom", IntegrationFormat::Alertmanager).await;
    let path = format!("/ingest/alertmanager/{key}");
    let awkward = [
        "say \"hi\"",
        r"C:\path\to\{x}",
        "{a,b}",
        "NULL",
        "",
        "line\nbreak\ttab",
        "ünïcødé — 警報 🚨",
        r#"\"}"#,
    ];
    let alerts: Vec<Value> = awkward
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let mut a = am_alert(&format!("fp-{i}"), "firing", json!({"alertname": "Odd", "odd": text}));
            a["annotations"]["summary"] = json!(format!("{text}|{i}"));
            a
        })
        .collect();
    let (status, body) = post(&app, &path, am_payload("g", alerts)).await;
    assert_eq!(status, 200, "{body}");
    let list = app.client.alerts(&[]).await.unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), awkward.len());
    for (i, text) in awkward.iter().enumerate() {
        let a = items
            .iter()
            .find(|a| a["dedup_key"] == format!("fp-{i}"))
            .unwrap_or_else(|| panic!("alert fp-{i} missing: {list}"));
        assert_eq!(a["labels"]["odd"], *text, "label of fp-{i}");
        assert_eq!(a["summary"], format!("{text}|{i}"), "summary of fp-{i}");
    }
    let incs = incidents(&app).await;
    assert_eq!(incs.len(), 1);
    assert_eq!(incs[0].title, format!("{}|0", awkward[0]));
    assert_eq!(alert_changes(&app, &incs[0].id, "fired").await.len(), awkward.len());
    assert!(
        app.client.verify(&incs[0].id).await.unwrap().ok,
        "stored payloads verify"
    );
});

/// An ingestor applying requests two at a time in pipelined parts, and a
/// transaction on `db` holding its applier until every request is queued:
/// PostgreSQL at its first read, SQLite at its first write (the file's write
/// lock). Roll the transaction back to let the applier go.
async fn held_parts_ingestor(
    app: &TestApp,
    db: &sqlx::AnyPool,
) -> (klaxon_store::Ingestor, sqlx::Transaction<'static, sqlx::Any>) {
    let mut settings = klaxon_store::IngestSettings::new(app.catalog.clone());
    settings.batch_requests = 2;
    settings.pipeline_min_alerts = 0;
    let ingestor = klaxon_store::Ingestor::start(app.store.clone(), std::sync::Arc::new(settings), app.clock.clone());
    let mut blocker = db.begin().await.unwrap();
    match app.backend {
        "postgres" => sqlx::query("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE"),
        _ => sqlx::query("CREATE TABLE held (x INTEGER)"),
    }
    .execute(&mut *blocker)
    .await
    .unwrap();
    (ingestor, blocker)
}

// A part whose write fails takes its whole transaction down, and every request
// the transaction had taken is applied again: also those of a part taken from
// the queue while the failed one was being written (they were once dropped
// from memory, and waited in the journal for a restart, the backlog never
// emptying). The failure is a trigger refusing one alert until it is switched off.
both!(a_failed_pipelined_write_loses_no_request, |app| {
    let info = prom_integration(&app).await;
    let db = app.db.pool().await;
    let trigger_sql: &[&str] = match app.backend {
        "postgres" => &[
            "CREATE TABLE poison (on_ INTEGER)",
            "INSERT INTO poison VALUES (1)",
            "CREATE FUNCTION poison_alerts() RETURNS trigger AS $$ BEGIN \
             IF NEW.dedup_key = 'poison' AND EXISTS (SELECT 1 FROM poison) THEN RAISE EXCEPTION 'poisoned'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER poison BEFORE INSERT ON alerts FOR EACH ROW EXECUTE FUNCTION poison_alerts()",
        ],
        _ => &[
            "CREATE TABLE poison (on_ INTEGER)",
            "INSERT INTO poison VALUES (1)",
            "CREATE TRIGGER poison BEFORE INSERT ON alerts \
             WHEN NEW.dedup_key = 'poison' AND EXISTS (SELECT 1 FROM poison) \
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
        ],
    };
    for sql in trigger_sql {
        sqlx::query(sqlx::AssertSqlSafe(*sql)).execute(&db).await.unwrap();
    }
    let (ingestor, blocker) = held_parts_ingestor(&app, &db).await;
    let now = app.clock_now();
    let mut outcomes = Vec::new();
    for i in 0..12 {
        // The poisoned alert is in the first part of the transaction after the
        // held one (in the held one itself, if it took two requests).
        let dedup = match i {
            1 | 3 => "poison".to_string(),
            _ => format!("part-{i}"),
        };
        let alerts = vec![
            trigger(&dedup, &format!("alert {i}"), "Parts", "warning", "parts"),
            trigger(&format!("other-{i}"), "other", "Parts", "warning", "parts"),
        ];
        outcomes.push(ingestor.accept(info.clone(), alerts, now, true).await.unwrap().unwrap());
    }
    blocker.rollback().await.unwrap();
    // Switch the poison off once a batch has failed on it (on SQLite the held
    // lock may have failed some before: a transaction that read cannot wait
    // for the write lock).
    let before = ingestor.failed_batches();
    let failed = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while ingestor.failed_batches() == before {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    })
    .await;
    sqlx::query("DELETE FROM poison").execute(&db).await.unwrap();
    assert!(failed.is_ok(), "no batch failed on the poisoned alert");
    tokio::time::timeout(std::time::Duration::from_secs(30), ingestor.settled())
        .await
        .expect("every accepted alert applied: the backlog emptied");
    for rx in outcomes {
        let out = rx.await.unwrap().unwrap();
        assert_eq!(out.len(), 2, "{out:?}");
    }
    assert!(ingestor.pipelined_parts() > 0, "parts were pipelined");
    let alerts = app.client.alerts(&[]).await.unwrap();
    let items = alerts["items"].as_array().unwrap();
    let keys: HashSet<&str> = items.iter().filter_map(|a| a["dedup_key"].as_str()).collect();
    for i in 0..12 {
        assert!(
            keys.contains(format!("other-{i}").as_str()),
            "other-{i} applied: {keys:?}"
        );
    }
    assert!(keys.contains("poison"));
    let poison = items.iter().find(|a| a["dedup_key"] == "poison").unwrap();
    assert_eq!(poison["receive_count"], 2, "fired twice, counted once per request");
    db.close().await;
});

// The applier decides one part of a transaction while the part before is
// written. Requests queued behind a held first part are applied in
// parts of two, and come out as they would one by one: a key repeated in every
// part counted once per request, groups opened in later parts (their incident
// numbers need the database, so they wait for the write), a resolution in a
// later part of an alert fired in an earlier one resolving its incident.
both!(requests_applied_in_parts_come_out_as_applied_one_by_one, |app| {
    let info = prom_integration(&app).await;
    let db = app.db.pool().await;
    let (ingestor, blocker) = held_parts_ingestor(&app, &db).await;
    let resolve = |dedup: &str| klaxon_domain::alert::AlertInput {
        action: klaxon_domain::alert::AlertAction::Resolve,
        ..trigger(dedup, "resolved", "Parts", "warning", "solo")
    };
    let mut requests = Vec::new();
    for i in 0..24 {
        let mut alerts = vec![
            trigger(
                &format!("shared-{i}"),
                &format!("shared {i}"),
                "Parts",
                "warning",
                "shared",
            ),
            trigger("repeat", "repeated", "Parts", "warning", "shared"),
        ];
        if i % 4 == 3 {
            alerts.push(trigger(
                &format!("new-{i}"),
                "new group",
                "Parts",
                "warning",
                &format!("new-{i}"),
            ));
        }
        match i {
            0 => alerts.push(trigger("solo-1", "solo", "Parts", "warning", "solo")),
            17 => alerts.push(resolve("solo-1")),
            _ => {}
        }
        requests.push(alerts);
    }
    let now = app.clock_now();
    let mut outcomes = Vec::new();
    for alerts in requests {
        // Each is journaled (answered) before the next is sent: their order is the journal's.
        let rx = ingestor.accept(info.clone(), alerts, now, true).await.unwrap().unwrap();
        outcomes.push(rx);
    }
    blocker.rollback().await.unwrap();
    db.close().await;
    for rx in outcomes {
        let out = rx.await.unwrap().unwrap();
        assert!(out.iter().all(|o| o.incidents.len() == 1), "{out:?}");
    }
    ingestor.settled().await;
    assert!(ingestor.pipelined_parts() > 0, "parts were pipelined");
    // On SQLite the held lock can make the first batch fail (a transaction
    // that read cannot wait for the write lock); it is retried.
    if app.backend == "postgres" {
        assert_eq!(ingestor.failed_batches(), 0);
    }
    let alerts = app.client.alerts(&[]).await.unwrap();
    let items = alerts["items"].as_array().unwrap();
    // 24 shared, 1 repeat, 6 new groups, 1 solo.
    assert_eq!(items.len(), 32, "{alerts}");
    let repeat = items.iter().find(|a| a["dedup_key"] == "repeat").unwrap();
    assert_eq!(repeat["receive_count"], 24);
    let solo = items.iter().find(|a| a["dedup_key"] == "solo-1").unwrap();
    assert_eq!(solo["status"], "resolved");
    let list = incidents(&app).await;
    assert_eq!(list.len(), 8, "shared, solo and 6 new groups");
    let ids: std::collections::HashSet<_> = list.iter().map(|i| i.id.clone()).collect();
    assert_eq!(ids.len(), 8, "every incident its own number");
    let mut fired = Vec::new();
    for i in &list {
        fired.push(alert_changes(&app, &i.id, "fired").await.len());
    }
    fired.sort();
    // 24 shared alerts and the repeat key fired once each; the rest one each.
    assert_eq!(fired, [1, 1, 1, 1, 1, 1, 1, 25]);
    let resolved: Vec<_> = list
        .iter()
        .filter(|i| i.status == klaxon_domain::Status::Resolved)
        .collect();
    assert_eq!(resolved.len(), 1, "the solo incident, its only alert resolved");
    assert_eq!(alert_changes(&app, &resolved[0].id, "resolved").await.len(), 1);
    // The timeline of every incident is one unbroken chain.
    for i in &list {
        let timeline = app.client.timeline(&i.id).await.unwrap();
        let mut prev = klaxon_domain::event::GENESIS_HASH.to_string();
        for e in &timeline.events {
            assert_eq!(e.prev_hash, prev, "{}", i.id);
            prev = e.hash.clone();
        }
    }
});

// The latest episode of a dedup key is found whether it is firing (through the
// one-firing index on PostgreSQL) or not (through the index of the others): a
// repeat joins the firing episode, a refire within the reuse window reopens the
// newest resolved one and never an older one.
both!(the_latest_episode_of_a_key_is_found_whatever_its_status, |app| {
    let info = prom_integration(&app).await;
    let eager = start_ingestor(&app, Some(std::time::Duration::ZERO));
    let fire = || trigger("episodes", "disk full", "DiskFull", "warning", "disk");
    let resolve = || klaxon_domain::alert::AlertInput {
        action: klaxon_domain::alert::AlertAction::Resolve,
        ..fire()
    };
    let t0 = app.clock_now();
    let steps = [
        (fire(), 0),      // episode 1 opens
        (resolve(), 1),   // and resolves
        (fire(), 120),    // past the reuse window: episode 2
        (fire(), 121),    // a repeat of episode 2 (firing)
        (resolve(), 122), // episode 2 resolves
        (fire(), 123),    // within the window: episode 2 reopens, not 1
        (fire(), 124),    // and repeats again
    ];
    for (alert, mins) in steps {
        eager
            .submit(info.clone(), vec![alert], t0 + SignedDuration::from_mins(mins))
            .await
            .unwrap();
    }
    let alerts = app.client.alerts(&[]).await.unwrap();
    let mut rows: Vec<(i64, String, u64)> = alerts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_i64().unwrap(),
                a["status"].as_str().unwrap().to_string(),
                a["receive_count"].as_u64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    let seen: Vec<(&str, u64)> = rows.iter().map(|r| (r.1.as_str(), r.2)).collect();
    assert_eq!(seen, [("resolved", 1), ("firing", 4)], "{alerts}");
    assert_eq!(eager.failed_batches(), 0);
    // Listing by status reads each part (PostgreSQL indexes them apart).
    for (status, id) in [("firing", rows[1].0), ("resolved", rows[0].0)] {
        let listed = app.client.alerts(&[("status", status.to_string())]).await.unwrap();
        let ids: Vec<i64> = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [id], "{status}: {listed}");
    }
});

// Deleting an integration deletes its alerts, firing or not, and their links to
// incidents; its key stops working; another integration's alerts and the
// incidents' timelines stay.
both!(deleting_an_integration_deletes_its_alerts_and_links_only, |app| {
    let gone = integration(&app, "gone", IntegrationFormat::Alertmanager).await;
    let kept = integration(&app, "kept", IntegrationFormat::Alertmanager).await;
    let gk = "{}:{alertname=\"Shared\"}";
    for key in [&gone, &kept] {
        let path = format!("/ingest/alertmanager/{key}");
        let alerts = vec![
            am_alert("fp-1", "firing", json!({"alertname": "Shared", "i": "1"})),
            am_alert("fp-2", "firing", json!({"alertname": "Shared", "i": "2"})),
        ];
        assert_eq!(post(&app, &path, am_payload(gk, alerts)).await.0, 200);
        let resolved = vec![am_alert("fp-2", "resolved", json!({"alertname": "Shared", "i": "2"}))];
        assert_eq!(post(&app, &path, am_payload(gk, resolved)).await.0, 200);
    }
    let before = incidents(&app).await;
    assert!(!before.is_empty());
    let count = |sql: &'static str| {
        let app = &app;
        async move {
            let mut db = app.main_db().await.unwrap();
            sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut db).await.unwrap()
        }
    };
    assert_eq!(count("SELECT COUNT(*) FROM alerts").await, 4);
    assert_eq!(count("SELECT COUNT(*) FROM incident_alerts").await, 4);

    let deleted = app.client.delete_integration("gone").await.unwrap();
    assert_eq!(deleted.name, "gone");
    let left = app.client.alerts(&[]).await.unwrap();
    let owners: HashSet<&str> = left["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["integration_id"].as_str().unwrap())
        .collect();
    let kept_id = app.client.integrations().await.unwrap()[0].id.clone();
    assert_eq!(owners, HashSet::from([kept_id.as_str()]), "{left}");
    assert_eq!(left["items"].as_array().unwrap().len(), 2, "{left}");
    assert_eq!(count("SELECT COUNT(*) FROM alerts").await, 2);
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM incident_alerts ia WHERE NOT EXISTS (SELECT 1 FROM alerts a WHERE a.pk = ia.alert_pk)"
        )
        .await,
        0,
        "no link outlives its alert"
    );
    assert_eq!(count("SELECT COUNT(*) FROM incident_alerts").await, 2);
    let after = incidents(&app).await;
    assert_eq!(after.len(), before.len(), "incidents stay");
    let (status, _) = post(
        &app,
        &format!("/ingest/alertmanager/{gone}"),
        am_payload(gk, vec![am_alert("fp-3", "firing", json!({"alertname": "Shared"}))]),
    )
    .await;
    assert_eq!(status, 404, "a deleted integration's key stops working");
    assert_eq!(
        app.client.delete_integration("gone").await.unwrap_err().status(),
        Some(404)
    );
});

// Applied rows leave the journal also when no request follows them: the idle
// intake wakes up to drop them (at most a second after they were applied).
both!(applied_journal_rows_leave_the_journal_when_the_intake_is_idle, |app| {
    let info = prom_integration(&app).await;
    let eager = start_ingestor(&app, Some(std::time::Duration::ZERO));
    for i in 0..3 {
        let alert = trigger(&format!("idle-{i}"), "disk full", "DiskFull", "warning", "disk");
        eager
            .accept(info.clone(), vec![alert], app.clock_now(), false)
            .await
            .unwrap();
    }
    eager.settled().await;
    let pool = app.db.journal_pool().await;
    let rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM ingest_commits")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut left = rows().await;
    while left > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        left = rows().await;
    }
    assert_eq!(left, 0, "applied rows are still in the journal");
    assert_eq!(
        app.client.alerts(&[]).await.unwrap()["items"].as_array().unwrap().len(),
        3
    );
});

// Pipelined parts reach PostgreSQL by COPY (rows in its text format, where
// backslash, tab, newline and carriage return are escaped, and `\N` is NULL):
// text holding those, and everything else awkward, comes back byte for byte,
// NULL columns stay NULL, and the sealed timeline still verifies.
both!(awkward_text_written_in_pipelined_parts_round_trips, |app| {
    let info = prom_integration(&app).await;
    let db = app.db.pool().await;
    let (ingestor, blocker) = held_parts_ingestor(&app, &db).await;
    let awkward = [
        r"\N",
        "tab\there",
        "line\nbreak\r\nwindows",
        r"C:\path\to\{x}",
        "\\\t\\n",
        "",
        "say \"hi\", {a,b} NULL",
        "ünïcødé — 警報 🚨",
    ];
    let now = app.clock_now();
    let mut outcomes = Vec::new();
    for i in 0..16 {
        let text = awkward[i % awkward.len()];
        let mut alert = trigger(&format!("odd-{i}"), &format!("{text}|{i}"), "Odd", "warning", "odd");
        alert.labels.insert("odd".into(), text.into());
        alert.annotations.insert("note".into(), text.into());
        outcomes.push(
            ingestor
                .accept(info.clone(), vec![alert], now, true)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    blocker.rollback().await.unwrap();
    db.close().await;
    for rx in outcomes {
        assert_eq!(rx.await.unwrap().unwrap().len(), 1);
    }
    ingestor.settled().await;
    assert!(ingestor.pipelined_parts() > 0, "parts were pipelined");
    let list = app.client.alerts(&[]).await.unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 16, "{list}");
    for i in 0..16 {
        let text = awkward[i % awkward.len()];
        let a = items
            .iter()
            .find(|a| a["dedup_key"] == format!("odd-{i}"))
            .unwrap_or_else(|| panic!("alert odd-{i} missing: {list}"));
        assert_eq!(a["labels"]["odd"], text, "label of odd-{i}");
        assert_eq!(a["annotations"]["note"], text, "annotation of odd-{i}");
        assert_eq!(a["summary"], format!("{text}|{i}"), "summary of odd-{i}");
        assert_eq!(a["source"], Value::Null, "source of odd-{i} stays NULL");
        assert_eq!(a["ends_at"], Value::Null, "ends_at of odd-{i} stays NULL");
    }
    let incs = incidents(&app).await;
    assert_eq!(incs.len(), 1);
    assert_eq!(alert_changes(&app, &incs[0].id, "fired").await.len(), 16);
    assert!(
        app.client.verify(&incs[0].id).await.unwrap().ok,
        "stored payloads verify"
    );
});
