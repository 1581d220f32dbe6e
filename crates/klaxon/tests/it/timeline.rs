//! The timeline is append-only and its hash chain detects tampering.

use klaxon_domain::wire::DeclareIncident;
use sqlx::AssertSqlSafe;

use crate::both;

async fn exec(app: &crate::support::TestApp, sql: &str) -> Result<(), sqlx::Error> {
    let mut conn = app.main_db().await?;
    sqlx::query(AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await
        .map(|_| ())
}

both!(tampering_is_refused_and_detected, |app| {
    let c = &app.client;
    let inc = c
        .declare(&DeclareIncident {
            title: "evidence".into(),
            severity: Some("SEV-2".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    c.ack(&inc.id, None).await.unwrap();
    c.note(&inc.id, "attacker IP 203.0.113.7").await.unwrap();
    c.set_status(&inc.id, "investigating", None).await.unwrap();
    assert!(c.verify(&inc.id).await.unwrap().ok);

    // The database itself refuses to rewrite history.
    let err = exec(&app, "UPDATE incident_events SET payload = 'x' WHERE seq = 3")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert!(exec(&app, "DELETE FROM incident_events WHERE seq = 3").await.is_err());

    // Someone with superuser powers disables the guard and edits a note.
    let disable = if app.backend == "sqlite" {
        "DROP TRIGGER incident_events_no_update"
    } else {
        "ALTER TABLE incident_events DISABLE TRIGGER incident_events_append_only"
    };
    exec(&app, disable).await.unwrap();
    exec(
        &app,
        "UPDATE incident_events SET payload = replace(payload, '203.0.113.7', '198.51.100.1') WHERE seq = 3",
    )
    .await
    .unwrap();
    let report = c.verify(&inc.id).await.unwrap();
    assert!(!report.ok);
    let broken = report.first_broken.expect("a broken link");
    assert_eq!(broken.seq, 3);
    assert!(broken.reason.contains("hash"), "{}", broken.reason);
});

both!(the_incident_row_is_checked_against_its_events, |app| {
    let c = &app.client;
    let inc = c
        .declare(&DeclareIncident {
            title: "projection".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    c.ack(&inc.id, None).await.unwrap();
    exec(
        &app,
        &format!(
            "UPDATE incidents SET body = replace(body, '\"acknowledged\"', '\"resolved\"') WHERE id = '{}'",
            inc.id
        ),
    )
    .await
    .unwrap();
    let report = c.verify(&inc.id).await.unwrap();
    assert!(report.first_broken.is_none(), "the chain itself is intact");
    assert!(!report.projection_matches && !report.ok);
});
