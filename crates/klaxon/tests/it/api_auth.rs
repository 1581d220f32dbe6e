//! Authentication: writes need a token; roles gate what a token may do.

use klaxon_domain::wire::{CreateToken, DeclareIncident, IncidentQuery, TokenRole};
use klaxon_http::AuthSettings;

use crate::both;
use crate::support::TestApp;

fn req() -> DeclareIncident {
    DeclareIncident {
        title: "auth".into(),
        ..Default::default()
    }
}

both!(writes_need_a_valid_token, |app| {
    assert_eq!(app.anon.declare(&req()).await.unwrap_err().status(), Some(401));
    let (status, body) = app
        .raw(
            "POST",
            "/api/v1/incidents",
            Some("kx_not_a_real_token"),
            Some(b"{\"title\":\"x\"}".to_vec()),
        )
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
    let (status, _) = app
        .raw("POST", "/api/v1/incidents", None, Some(b"not json at all".to_vec()))
        .await;
    assert_eq!(status, 401, "authentication is checked before the body");

    let viewer = app.client_with_role(TokenRole::Viewer).await;
    assert_eq!(viewer.declare(&req()).await.unwrap_err().status(), Some(403));
    let responder = app.client_with_role(TokenRole::Responder).await;
    let inc = responder.declare(&req()).await.unwrap();
    assert_eq!(inc.declared_by, "responder-user", "the token's name is the actor");
    assert_eq!(viewer.incident(&inc.id).await.unwrap().id, inc.id);
    assert_eq!(
        responder.tokens().await.unwrap_err().status(),
        Some(403),
        "only admins manage tokens"
    );
});

both!(tokens_are_created_listed_and_revoked, |app| {
    let created = app
        .client
        .create_token(&CreateToken {
            name: "ci-bot".into(),
            role: TokenRole::Responder,
        })
        .await
        .unwrap();
    assert!(created.token.starts_with("kx_") && created.token.len() == 67);
    let bot = klaxon_client::Client::new(&app.base, Some(created.token.clone())).unwrap();
    bot.declare(&req()).await.unwrap();
    let listed = app.client.tokens().await.unwrap();
    let row = listed.iter().find(|t| t.name == "ci-bot").unwrap();
    assert_eq!(row.prefix, &created.token[..10]);
    let listed_json = serde_json::to_string(&listed).unwrap();
    assert!(!listed_json.contains(&created.token), "secrets are never listed");
    let revoked = app.client.revoke_token("ci-bot").await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(
        bot.declare(&req()).await.unwrap_err().status(),
        Some(401),
        "a revoked token is refused"
    );
    assert_eq!(app.client.revoke_token("nobody").await.unwrap_err().status(), Some(404));
    let bad = app
        .client
        .create_token(&CreateToken {
            name: " ".into(),
            role: TokenRole::Viewer,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.status(), Some(422));
});

#[tokio::test]
async fn reads_can_require_a_token() {
    let app = TestApp::spawn_with(
        "sqlite",
        Default::default(),
        AuthSettings {
            require_token_for_reads: true,
        },
    )
    .await;
    assert_eq!(
        app.anon.list(&IncidentQuery::default()).await.unwrap_err().status(),
        Some(401)
    );
    assert!(app.client.list(&IncidentQuery::default()).await.is_ok());
    let (status, _) = app.raw("GET", "/healthz", None, None).await;
    assert_eq!(status, 200, "health stays open");
}

#[tokio::test]
async fn the_api_answers_429_beyond_its_rate_limit() {
    let app = TestApp::spawn_limited(1, 3).await;
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(app.raw("GET", "/api/v1/incidents", None, None).await.0);
    }
    assert_eq!(&codes[..3], &[200, 200, 200], "{codes:?}");
    assert!(codes.contains(&429), "{codes:?}");
    let (status, body) = app.raw("GET", "/api/v1/severities", None, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (429, Some("rate_limited")));
    assert_eq!(
        app.raw("GET", "/healthz", None, None).await.0,
        200,
        "health is never limited"
    );
}
