//! Message templates through the API and the real binary.

use klaxon_domain::incident::Impact;
use klaxon_domain::wire::{DeclareIncident, RenderRequest};

use crate::both;
use crate::support::ADMIN;

both!(templates_render_for_a_real_incident, |app| {
    let mut req = DeclareIncident {
        title: "API returning 500s".into(),
        severity: Some("SEV-1".into()),
        services: vec!["api".into()],
        impact: Some(Impact {
            users_affected: Some(1200),
            percent: None,
            user_facing: Some("Uploads fail".into()),
        }),
        ..Default::default()
    };
    req.roles.insert("ic".into(), "alice".into());
    let id = app.client.declare(&req).await.unwrap().id;
    app.client.note(&id, "Rolled back the 13:55 deploy").await.unwrap();
    app.advance(20);
    app.client
        .set_status(&id, "identified", Some("Bad deploy".into()))
        .await
        .unwrap();

    let list = app.client.templates().await.unwrap();
    let names: Vec<&str> = list.iter().map(|t| t.name.as_str()).collect();
    for want in klaxon_domain::templates::NAMES {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let r = app
        .client
        .render_template(
            "status-update",
            &RenderRequest {
                incident: id.clone(),
                message: Some("Error rate falling after the rollback".into()),
                update_number: Some(3),
            },
        )
        .await
        .unwrap();
    assert_eq!(r.subject, "[SEV-1] Update: API returning 500s");
    for want in [
        "INCIDENT UPDATE #3",
        &format!("Incident ID: {id}"),
        "Status: Identified",
        "Duration: 20 minutes",
        "Error rate falling after the rollback",
        "- Rolled back the 13:55 deploy",
        "- Identified: Bad deploy",
        "Next update in: 15 minutes",
    ] {
        assert!(r.body.contains(want), "{want:?} not in\n{}", r.body);
    }
    let first = app
        .client
        .render_template(
            "initial-notification",
            &RenderRequest {
                incident: id.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(first.body.contains("- Affected Users: 1200") && first.body.contains("INCIDENT COMMANDER: alice"));

    // Bad input.
    let (status, _) = app
        .raw(
            "POST",
            "/api/v1/templates/gossip/render",
            Some(ADMIN),
            Some(br#"{"incident": "INC-1"}"#.to_vec()),
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = app
        .raw(
            "POST",
            "/api/v1/templates/resolution/render",
            Some(ADMIN),
            Some(br#"{"incident": "INC-2020-01-01-999"}"#.to_vec()),
        )
        .await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("incident")));
    let (status, body) = app
        .raw(
            "POST",
            "/api/v1/templates/resolution/render",
            Some(ADMIN),
            Some(br#"{}"#.to_vec()),
        )
        .await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("incident")));
    let (status, _) = app.raw("GET", "/api/v1/templates", None, None).await;
    assert_eq!(status, 401);
});

both!(stakeholder_updates_move_the_cadence, |app| {
    let id = app
        .client
        .declare(&DeclareIncident {
            title: "Checkout down".into(),
            severity: Some("SEV-1".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let engine = app.engine("n1");
    // SEV-1 cadence is 15 minutes: overdue after that without an update.
    app.advance(16);
    engine.tick().await.unwrap();
    assert!(app.client.incident(&id).await.unwrap().update_overdue);
    let posted = app
        .client
        .post_update(
            &id,
            &klaxon_domain::wire::PostUpdateRequest {
                message: "Card processor returns 502s; failing over".into(),
                public: true,
                status: Some("identified".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(posted.update.number, 1);
    assert!(posted.update.public);
    assert_eq!(posted.incident.status, klaxon_domain::Status::Identified);
    assert!(!posted.incident.update_overdue);
    let due = posted.incident.next_update_due.unwrap();
    assert_eq!(due.duration_since(app.clock_now()).as_mins(), 15);
    assert!(
        posted.rendered.body.contains("INCIDENT UPDATE #1"),
        "{}",
        posted.rendered.body
    );
    assert!(posted.rendered.body.contains("failing over"));
    // Ten more minutes: not overdue; the next update is number 2.
    app.advance(10);
    engine.tick().await.unwrap();
    assert!(!app.client.incident(&id).await.unwrap().update_overdue);
    let second = app
        .client
        .post_update(
            &id,
            &klaxon_domain::wire::PostUpdateRequest {
                message: "Failover done".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(second.update.number, 2);
    let list = app.client.updates(&id).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!((list[0].public, list[1].public), (true, false));
    assert_eq!(list[0].by, "admin");

    // Bad input names the field; nothing is recorded.
    let path = format!("/api/v1/incidents/{id}/updates");
    for (body, status, field) in [
        (r#"{"message": ""}"#, 422, Some("message")),
        (r#"{}"#, 422, Some("message")),
        (r#"{"message": "x", "public": "yes"}"#, 422, Some("public")),
        (r#"{"message": "x", "status": "exploded"}"#, 422, Some("status")),
    ] {
        let (got, resp) = app
            .raw("POST", &path, Some(ADMIN), Some(body.as_bytes().to_vec()))
            .await;
        assert_eq!(
            (got, resp["error"]["field"].as_str()),
            (status, field),
            "{body} → {resp}"
        );
    }
    let (got, _) = app
        .raw(
            "POST",
            &path,
            Some(ADMIN),
            Some(br#"{"message": "x", "status": "investigating"}"#.to_vec()),
        )
        .await;
    assert_eq!(got, 409, "status may only move forward");
    let (got, _) = app
        .raw("POST", &path, None, Some(br#"{"message": "x"}"#.to_vec()))
        .await;
    assert_eq!(got, 401);
    assert_eq!(app.client.updates(&id).await.unwrap().len(), 2);
    // Resolving with an update ends the cadence.
    let done = app
        .client
        .post_update(
            &id,
            &klaxon_domain::wire::PostUpdateRequest {
                message: "Resolved".into(),
                public: true,
                status: Some("resolved".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(done.incident.next_update_due, None);
    app.advance(60);
    engine.tick().await.unwrap();
    assert!(!app.client.incident(&id).await.unwrap().update_overdue);
});
