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
