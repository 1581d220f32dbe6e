//! On-call schedules through the API, on both backends.

use klaxon_domain::schedule::{CreateOverride, seed_002_example};
use serde_json::json;

use crate::both;
use crate::support::ADMIN;

both!(seed_002_rotation_overrides_and_shifts, |app| {
    let c = &app.client;
    let spec = seed_002_example();
    let created = c.create_schedule(&spec).await.unwrap();
    assert_eq!(created.spec, spec);
    assert_eq!(
        c.create_schedule(&spec).await.unwrap_err().status(),
        Some(409),
        "create does not replace"
    );
    c.put_schedule(&spec).await.unwrap();

    let at = |t: &str| Some(t.to_string());
    let week1 = c.oncall("platform", at("2026-11-24T12:00:00Z")).await.unwrap();
    assert_eq!(week1.oncall["primary"].as_deref(), Some("engineer-a"));
    assert_eq!(week1.oncall["secondary"].as_deref(), Some("engineer-b"));
    assert_eq!(week1.oncall["incident_commander"].as_deref(), Some("manager-x"));
    let week2 = c.oncall("platform", at("2026-12-01T12:00:00Z")).await.unwrap();
    assert_eq!(week2.oncall["primary"].as_deref(), Some("engineer-b"));
    assert_eq!(week2.oncall["incident_commander"].as_deref(), Some("manager-y"));
    let before = c.oncall("platform", at("2026-11-23T07:59:00Z")).await.unwrap();
    assert_eq!(before.oncall["primary"], None, "nobody before the first hand-off");

    // Holiday override: carol covers primary for three days.
    let o = c
        .add_override(
            "platform",
            &CreateOverride {
                role: Some("primary".into()),
                user: "carol".into(),
                start: "2026-12-24T08:00:00Z".parse().unwrap(),
                end: "2026-12-27T08:00:00Z".parse().unwrap(),
            },
        )
        .await
        .unwrap();
    assert_eq!(o.role, "primary");
    let xmas = c.oncall("platform", at("2026-12-25T12:00:00Z")).await.unwrap();
    assert_eq!(xmas.oncall["primary"].as_deref(), Some("carol"));
    assert_eq!(
        xmas.oncall["secondary"].as_deref(),
        Some("engineer-c"),
        "overrides apply to their role only"
    );

    let shifts = c
        .shifts(
            "platform",
            "2026-12-21T00:00:00Z",
            "2027-01-04T00:00:00Z",
            Some("primary".into()),
        )
        .await
        .unwrap();
    let rows: Vec<(String, String, String)> = shifts
        .iter()
        .map(|s| {
            (
                s.user.clone().unwrap_or_default(),
                s.start.to_string(),
                s.end.to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "engineer-a".into(),
                "2026-12-21T00:00:00Z".into(),
                "2026-12-21T08:00:00Z".into()
            ),
            (
                "engineer-b".into(),
                "2026-12-21T08:00:00Z".into(),
                "2026-12-24T08:00:00Z".into()
            ),
            (
                "carol".into(),
                "2026-12-24T08:00:00Z".into(),
                "2026-12-27T08:00:00Z".into()
            ),
            (
                "engineer-b".into(),
                "2026-12-27T08:00:00Z".into(),
                "2026-12-28T08:00:00Z".into()
            ),
            (
                "engineer-c".into(),
                "2026-12-28T08:00:00Z".into(),
                "2027-01-04T00:00:00Z".into()
            ),
        ]
    );
    // Across DST (Berlin, 2027-03-28) the 09:00 hand-off moves from 08:00Z to 07:00Z.
    let dst = c
        .shifts(
            "platform",
            "2027-03-20T00:00:00Z",
            "2027-04-10T00:00:00Z",
            Some("primary".into()),
        )
        .await
        .unwrap();
    let starts: Vec<String> = dst.iter().skip(1).map(|s| s.start.to_string()).collect();
    assert_eq!(
        starts,
        vec!["2027-03-22T08:00:00Z", "2027-03-29T07:00:00Z", "2027-04-05T07:00:00Z"]
    );
});

both!(bad_schedules_and_queries_name_the_field, |app| {
    let post = |body: serde_json::Value| {
        let app = &app;
        async move {
            app.raw(
                "POST",
                "/api/v1/schedules",
                Some(ADMIN),
                Some(body.to_string().into_bytes()),
            )
            .await
        }
    };
    let layer = json!({"participants": ["a"], "shift": {"weeks": 1}, "start": "2026-11-23"});
    for (body, field) in [
        (
            json!({"name": "x", "time_zone": "Mars/Olympus", "roles": {"primary": [layer.clone()]}}),
            "time_zone",
        ),
        (json!({"name": "x", "time_zone": "UTC", "roles": {}}), "roles"),
        (
            json!({"name": "x y", "time_zone": "UTC", "roles": {"primary": [layer.clone()]}}),
            "name",
        ),
        (
            json!({"name": "x", "time_zone": "UTC", "roles": {"primary": [{"participants": [], "shift": {"days": 1}, "start": "2026-11-23"}]}}),
            "roles.primary[0].participants",
        ),
        (
            json!({"name": "x", "time_zone": "UTC", "roles": {"primary": [{"participants": ["a"], "shift": {"days": 0}, "start": "2026-11-23"}]}}),
            "roles.primary[0].shift",
        ),
        (
            json!({"name": "x", "time_zone": "UTC", "roles": {"primary": [{"participants": ["a"], "shift": {"fortnights": 1}, "start": "2026-11-23"}]}}),
            "roles.primary[0].shift",
        ),
    ] {
        let (status, resp) = post(body.clone()).await;
        assert_eq!(
            (status, resp["error"]["field"].as_str()),
            (422, Some(field)),
            "{body} → {resp}"
        );
    }
    app.client.create_schedule(&seed_002_example()).await.unwrap();
    let (status, resp) = app
        .raw(
            "POST",
            "/api/v1/schedules/platform/overrides",
            Some(ADMIN),
            Some(br#"{"user": "z", "start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"}"#.to_vec()),
        )
        .await;
    assert_eq!(
        (status, resp["role"].as_str()),
        (201, Some("primary")),
        "without a role, primary ({resp})"
    );
    let (status, resp) = app
        .raw(
            "POST",
            "/api/v1/schedules/platform/overrides",
            Some(ADMIN),
            Some(
                br#"{"role": "tertiary", "user": "z", "start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"}"#
                    .to_vec(),
            ),
        )
        .await;
    assert_eq!((status, resp["error"]["field"].as_str()), (422, Some("role")), "{resp}");
    let (status, resp) = app
        .raw(
            "POST",
            "/api/v1/schedules/platform/overrides",
            Some(ADMIN),
            Some(
                br#"{"role": "primary", "user": "z", "start": "2026-12-02T00:00:00Z", "end": "2026-12-01T00:00:00Z"}"#
                    .to_vec(),
            ),
        )
        .await;
    assert_eq!((status, resp["error"]["field"].as_str()), (422, Some("end")), "{resp}");
    let (status, _) = app.raw("GET", "/api/v1/schedules/nope/oncall", Some(ADMIN), None).await;
    assert_eq!(status, 404);
    let (status, resp) = app
        .raw(
            "GET",
            "/api/v1/schedules/platform/shifts?from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!((status, resp["error"]["field"].as_str()), (422, Some("to")), "{resp}");
    let (status, _) = app
        .raw(
            "GET",
            "/api/v1/schedules/platform/oncall?at=tomorrow",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(app.anon.schedules().await.unwrap_err().status(), Some(401));
    let (status, _) = app.raw("DELETE", "/api/v1/schedules/platform", Some(ADMIN), None).await;
    assert_eq!(status, 204);
    assert_eq!(app.client.schedule("platform").await.unwrap_err().status(), Some(404));
});

both!(users_and_teams, |app| {
    let alice = json!({"id": "alice", "name": "Alice Doe", "email": "alice@example.com", "time_zone": "Europe/Berlin",
        "contact_methods": [{"name": "slack", "kind": "slack", "address": "U024BE7LH"}, {"name": "phone", "kind": "sms", "address": "+4915112345678"}],
        "notification_rules": [{"contact": "slack", "after_minutes": 0}, {"contact": "phone", "after_minutes": 5}]});
    let (status, body) = app
        .raw(
            "PUT",
            "/api/v1/users/alice",
            Some(ADMIN),
            Some(alice.to_string().into_bytes()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.raw("GET", "/api/v1/users/alice", Some(ADMIN), None).await;
    assert_eq!(
        (status, body["notification_rules"][1]["after_minutes"].as_u64()),
        (200, Some(5))
    );
    let mut bad = alice.clone();
    bad["contact_methods"][1]["address"] = json!("0151 123");
    let (status, body) = app
        .raw(
            "PUT",
            "/api/v1/users/alice",
            Some(ADMIN),
            Some(bad.to_string().into_bytes()),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("contact_methods[1].address")),
        "{body}"
    );
    let (status, body) = app
        .raw(
            "PUT",
            "/api/v1/users/bob",
            Some(ADMIN),
            Some(alice.to_string().into_bytes()),
        )
        .await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("id")), "{body}");

    let team = json!({"id": "dba", "name": "Database team", "members": ["alice"]});
    let (status, body) = app
        .raw(
            "PUT",
            "/api/v1/teams/dba",
            Some(ADMIN),
            Some(team.to_string().into_bytes()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let ghost = json!({"id": "dba", "name": "Database team", "members": ["alice", "ghost"]});
    let (status, body) = app
        .raw(
            "PUT",
            "/api/v1/teams/dba",
            Some(ADMIN),
            Some(ghost.to_string().into_bytes()),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("members[1]")),
        "{body}"
    );
    assert_eq!(app.client.documents("teams").await.unwrap().len(), 1);
    assert_eq!(app.anon.documents("users").await.unwrap_err().status(), Some(401));
    let responder = app.client_with_role(klaxon_domain::wire::TokenRole::Responder).await;
    let (status, _) = app.raw("DELETE", "/api/v1/users/nobody", Some(ADMIN), None).await;
    assert_eq!(status, 404);
    assert_eq!(
        responder.delete_document("users", "alice").await.unwrap_err().status(),
        Some(403)
    );
    app.client.delete_document("users", "alice").await.unwrap();
    assert_eq!(
        app.client.document("users", "alice").await.unwrap_err().status(),
        Some(404)
    );
});

both!(escalation_policies_check_their_targets, |app| {
    app.client.create_schedule(&seed_002_example()).await.unwrap();
    for u in ["team-lead", "eng-manager"] {
        let body = json!({"id": u, "name": u, "email": format!("{u}@example.com")});
        assert_eq!(
            app.raw(
                "PUT",
                &format!("/api/v1/users/{u}"),
                Some(ADMIN),
                Some(body.to_string().into_bytes())
            )
            .await
            .0,
            200
        );
    }
    let policy = json!({"id": "platform-escalation", "repeat": 1, "levels": [
        {"name": "on-call engineer", "targets": [{"schedule": {"id": "platform", "role": "primary"}}], "delay_minutes": 15},
        {"name": "team lead", "targets": [{"user": "team-lead"}], "delay_minutes": 15},
        {"name": "engineering manager", "targets": [{"user": "eng-manager"}], "delay_minutes": 30}]});
    let (status, body) = app
        .raw(
            "PUT",
            "/api/v1/escalation-policies/platform-escalation",
            Some(ADMIN),
            Some(policy.to_string().into_bytes()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .raw(
            "GET",
            "/api/v1/escalation-policies/platform-escalation",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!((status, body["levels"][2]["delay_minutes"].as_u64()), (200, Some(30)));
    for (change, field) in [
        (json!({"targets": [{"user": "cto"}]}), "levels[1].targets[0]"),
        (
            json!({"targets": [{"schedule": {"id": "platform", "role": "janitor"}}]}),
            "levels[1].targets[0]",
        ),
        (json!({"targets": [{"team": "vendors"}]}), "levels[1].targets[0]"),
        (json!({"targets": []}), "levels[1].targets"),
        (
            json!({"targets": [{"user": "team-lead"}], "delay_minutes": 0}),
            "levels[1].delay_minutes",
        ),
    ] {
        let mut p = policy.clone();
        for (k, v) in change.as_object().unwrap() {
            p["levels"][1][k] = v.clone();
        }
        let (status, resp) = app
            .raw(
                "PUT",
                "/api/v1/escalation-policies/platform-escalation",
                Some(ADMIN),
                Some(p.to_string().into_bytes()),
            )
            .await;
        assert_eq!(
            (status, resp["error"]["field"].as_str()),
            (422, Some(field)),
            "{p} → {resp}"
        );
    }
    assert_eq!(app.client.documents("escalation-policies").await.unwrap().len(), 1);
});
