//! Declaring, listing and working incidents over HTTP.

use jiff::SignedDuration;
use klaxon_domain::Status;
use klaxon_domain::incident::Impact;
use klaxon_domain::wire::{DeclareIncident, IncidentPatch, IncidentQuery};

use crate::both;

fn declare(title: &str, sev: &str) -> DeclareIncident {
    DeclareIncident {
        title: title.into(),
        severity: Some(sev.into()),
        ..Default::default()
    }
}

both!(declare_and_work_an_incident_through_its_lifecycle, |app| {
    let c = &app.client;
    let req = DeclareIncident {
        title: "API returning 500s".into(),
        description: Some("Error rate above 5% for 5 minutes".into()),
        severity: Some("P1".into()),
        category: Some("availability".into()),
        services: vec!["api".into(), "db".into()],
        impact: Some(Impact {
            users_affected: Some(1200),
            percent: Some(100.0),
            user_facing: Some("Uploads fail".into()),
        }),
        labels: [("alertname".to_string(), "HighErrorRate".to_string())].into(),
        roles: [("ic".to_string(), "alice".to_string())].into(),
        ..Default::default()
    };
    let inc = c.declare(&req).await.unwrap();
    assert_eq!(inc.id, "INC-2026-11-23-001");
    assert_eq!(inc.severity, "SEV-1", "P1 is an alias of SEV-1");
    assert_eq!(inc.status, Status::Triggered);
    assert_eq!(inc.declared_by, "admin");
    assert_eq!(inc.roles["incident_commander"], "alice");
    assert_eq!(inc.ack_deadline.unwrap().to_string(), "2026-11-23T10:05:00Z");
    assert_eq!(inc.next_update_due.unwrap().to_string(), "2026-11-23T10:15:00Z");
    assert_eq!(inc.resolution_deadline.unwrap().to_string(), "2026-11-23T11:00:00Z");

    app.clock.advance(SignedDuration::from_mins(3));
    let acked = c.ack(&inc.id, Some("on it".into())).await.unwrap();
    assert_eq!(acked.status, Status::Acknowledged);
    assert_eq!(acked.acknowledged_at.unwrap().to_string(), "2026-11-23T10:03:00Z");
    // Acknowledging again is harmless and records nothing.
    let again = c.ack(&inc.id, None).await.unwrap();
    assert_eq!(again.version, acked.version);

    app.clock.advance(SignedDuration::from_mins(7));
    let identified = c
        .set_status(&inc.id, "identified", Some("bad deploy at 09:55".into()))
        .await
        .unwrap();
    assert_eq!(identified.status, Status::Identified);
    assert_eq!(
        identified.next_update_due.unwrap().to_string(),
        "2026-11-23T10:25:00Z",
        "an update restarts the 15 min cadence"
    );

    let handed = c
        .assign_role(&inc.id, "incident-commander", Some("bob".into()))
        .await
        .unwrap();
    assert_eq!(handed.roles["incident_commander"], "bob");
    let tl = c
        .assign_role(&inc.id, "technical_lead", Some("carol".into()))
        .await
        .unwrap();
    assert_eq!(tl.roles.len(), 2);
    let cleared = c.assign_role(&inc.id, "technical_lead", None).await.unwrap();
    assert!(!cleared.roles.contains_key("technical_lead"));

    let patched = c
        .update(
            &inc.id,
            &IncidentPatch {
                workaround: Some(Some("Use the EU endpoint".into())),
                services: Some(vec!["api".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.workaround.as_deref(), Some("Use the EU endpoint"));
    assert_eq!(patched.services, vec!["api"]);

    app.clock.advance(SignedDuration::from_mins(5));
    let mon = c.set_status(&inc.id, "monitoring", None).await.unwrap();
    assert_eq!(mon.mitigated_at.unwrap().to_string(), "2026-11-23T10:15:00Z");
    let res = c
        .set_status(&inc.id, "resolved", Some("rolled back".into()))
        .await
        .unwrap();
    assert!(res.resolved_at.is_some());
    assert!(res.next_update_due.is_none(), "nothing is due once resolved");

    let reopened = c.reopen(&inc.id, None, Some("errors are back".into())).await.unwrap();
    assert_eq!(reopened.status, Status::Investigating);
    assert_eq!(reopened.reopen_count, 1);
    assert!(reopened.resolved_at.is_none());

    let sev = c
        .set_severity(&inc.id, "SEV-2", Some("only EU affected".into()))
        .await
        .unwrap();
    assert_eq!(sev.severity, "SEV-2");
    assert_eq!(
        sev.resolution_deadline.unwrap().to_string(),
        "2026-11-23T14:00:00Z",
        "SEV-2 resolves within 4h of detection"
    );

    let noted = c.note(&inc.id, "Rollback #2 started").await.unwrap();
    let fetched = c.incident(&inc.id).await.unwrap();
    assert_eq!(fetched, noted, "GET returns the projection the command returned");

    let timeline = c.timeline(&inc.id).await.unwrap();
    let kinds: Vec<&str> = timeline.events.iter().map(|e| e.kind.type_name()).collect();
    assert_eq!(
        kinds,
        vec![
            "declared",
            "status_changed",
            "status_changed",
            "role_assigned",
            "role_assigned",
            "role_assigned",
            "fields_changed",
            "status_changed",
            "status_changed",
            "reopened",
            "severity_changed",
            "note_added"
        ]
    );
    assert_eq!(timeline.events.last().unwrap().seq, fetched.version);
    let report = c.verify(&inc.id).await.unwrap();
    assert!(report.ok && report.projection_matches, "{report:?}");
    assert_eq!(report.events_checked, 12);

    let closed = c.set_status(&inc.id, "resolved", None).await.unwrap();
    let closed = c.set_status(&closed.id, "closed", None).await.unwrap();
    assert!(closed.closed_at.is_some());
});

both!(ids_are_per_day_and_restart_at_001, |app| {
    let c = &app.client;
    let a = c.declare(&declare("one", "SEV-3")).await.unwrap();
    let b = c.declare(&declare("two", "SEV-3")).await.unwrap();
    assert_eq!(
        (a.id.as_str(), b.id.as_str()),
        ("INC-2026-11-23-001", "INC-2026-11-23-002")
    );
    app.clock.set("2026-11-24T00:00:00Z".parse().unwrap());
    let d = c.declare(&declare("three", "SEV-3")).await.unwrap();
    assert_eq!(d.id, "INC-2026-11-24-001");
});

both!(fifty_concurrent_declares_get_fifty_consecutive_ids, |app| {
    let mut tasks = Vec::new();
    for i in 0..50 {
        let c = app.client.clone();
        tasks.push(tokio::spawn(async move {
            c.declare(&declare(&format!("concurrent {i}"), "SEV-2"))
                .await
                .unwrap()
                .id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort();
    let expected: Vec<String> = (1..=50).map(|n| format!("INC-2026-11-23-{n:03}")).collect();
    assert_eq!(ids, expected);
});

both!(a_failed_declare_gives_its_number_back, |app| {
    let c = &app.client;
    assert!(c.declare(&declare("bad", "SEV-9")).await.is_err());
    let ok = c.declare(&declare("good", "SEV-4")).await.unwrap();
    assert_eq!(ok.id, "INC-2026-11-23-001");
});

both!(list_filters_and_paginates, |app| {
    let c = &app.client;
    let mk = |title: &str, sev: &str, cat: &str, svc: &str| DeclareIncident {
        title: title.into(),
        severity: Some(sev.into()),
        category: Some(cat.into()),
        services: vec![svc.into()],
        ..Default::default()
    };
    let a = c.declare(&mk("a", "SEV-1", "availability", "api")).await.unwrap();
    app.clock.advance(SignedDuration::from_hours(1));
    let b = c.declare(&mk("b", "SEV-2", "performance", "db")).await.unwrap();
    app.clock.advance(SignedDuration::from_hours(1));
    let cc = c.declare(&mk("c", "SEV-2", "security", "api")).await.unwrap();
    c.set_status(&a.id, "resolved", None).await.unwrap();
    let private = c
        .declare(&DeclareIncident {
            private: true,
            ..mk("secret", "SEV-1", "security", "auth")
        })
        .await
        .unwrap();

    let ids = |page: klaxon_domain::wire::IncidentPage| page.items.into_iter().map(|i| i.id).collect::<Vec<_>>();
    let q = |f: fn(&mut IncidentQuery)| {
        let mut q = IncidentQuery::default();
        f(&mut q);
        q
    };
    assert_eq!(
        ids(c.list(&q(|q| q.status = Some("open".into()))).await.unwrap()),
        vec![private.id.clone(), cc.id.clone(), b.id.clone()]
    );
    assert_eq!(
        ids(c.list(&q(|q| q.status = Some("resolved".into()))).await.unwrap()),
        vec![a.id.clone()]
    );
    assert_eq!(
        ids(c.list(&q(|q| q.severity = Some("P2".into()))).await.unwrap()),
        vec![cc.id.clone(), b.id.clone()]
    );
    assert_eq!(
        ids(c.list(&q(|q| q.category = Some("performance".into()))).await.unwrap()),
        vec![b.id.clone()]
    );
    assert_eq!(
        ids(c.list(&q(|q| q.service = Some("api".into()))).await.unwrap()),
        vec![cc.id.clone(), a.id.clone()]
    );
    assert_eq!(
        ids(c
            .list(&q(|q| {
                q.from = Some("2026-11-23T10:30:00Z".into());
                q.to = Some("2026-11-23T11:30:00Z".into());
            }))
            .await
            .unwrap()),
        vec![b.id.clone()]
    );
    // Anonymous readers never see private incidents.
    let anon = ids(app.anon.list(&IncidentQuery::default()).await.unwrap());
    assert!(!anon.contains(&private.id) && anon.len() == 3);
    assert_eq!(app.anon.incident(&private.id).await.unwrap_err().status(), Some(404));

    // Cursor pagination walks every incident exactly once.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = c
            .list(&IncidentQuery {
                limit: Some(2),
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|i| i.id));
        match page.next_cursor {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, vec![private.id, cc.id, b.id, a.id]);
});

both!(severity_scheme_and_catalog_are_served, |app| {
    let (status, body) = app.raw("GET", "/api/v1/severities", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["default_severity"], "SEV-3");
    assert_eq!(body["levels"][0]["key"], "SEV-1");
    assert_eq!(body["levels"][0]["ack_target"], "5m");
    assert_eq!(body["levels"][1]["escalate_unresolved_after"], "30m");
    let (status, body) = app.raw("GET", "/api/v1/catalog", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["id_format"], "INC-{yyyy}-{mm}-{dd}-{seq:3}");
    assert_eq!(body["categories"].as_array().unwrap().len(), 4);
});

both!(health_readiness_metrics_and_openapi, |app| {
    assert_eq!(app.raw("GET", "/healthz", None, None).await.0, 200);
    let (status, body) = app.raw("GET", "/readyz", None, None).await;
    assert_eq!((status, body["database"].as_str()), (200, Some(app.backend)));
    app.client.declare(&declare("metrics", "SEV-1")).await.unwrap();
    let (status, body) = app.raw("GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    let text = body.as_str().unwrap();
    assert!(text.contains("klaxon_incidents_declared_total"), "{text}");
    assert!(text.contains("klaxon_http_requests_total"), "{text}");
    // The process's own figures, read at the scrape.
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    assert!(value("process_cpu_seconds_total") > 0.0);
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("process_open_fds") >= 3.0);
    assert!(value("process_threads") >= 1.0);
    let (status, doc) = app.raw("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/incidents",
        "/api/v1/incidents/{id}/timeline/verify",
        "/api/v1/incidents/{id}/roles/{role}",
        "/api/v1/severities",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
});

#[tokio::test]
async fn readyz_fails_when_the_database_is_gone() {
    let app = crate::support::TestApp::spawn("sqlite").await;
    app.store.close().await;
    let (status, body) = app.raw("GET", "/readyz", None, None).await;
    assert_eq!(status, 503, "{body}");
}
