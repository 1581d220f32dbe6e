//! Slack end to end against the loopback stand-in (fake_slack.rs):
//! incoming webhooks, bot messages with threads and a status board,
//! per-incident channels, provider errors and retries; inbound slash
//! commands and interactions with Slack's request signing.

use klaxon_domain::config::Catalog;
use klaxon_domain::message::{Envelope, EnvelopeIncident, types};
use klaxon_domain::templates::Rendered;
use klaxon_domain::wire::{DeclareIncident, NotificationQuery};
use klaxon_engine::ChannelsConfig;
use klaxon_engine::channels::slack::{incident_channel_name, slack_signature};
use klaxon_store::NewNotification;
use serde_json::{Value, json};

use crate::fake_slack::{BOT_TOKEN, FakeSlack, Fault};
use crate::support::TestApp;

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const PUBLIC: &str = "https://klaxon.example.com";

fn cfg(fake: &FakeSlack) -> ChannelsConfig {
    let mut c = ChannelsConfig::default();
    c.slack.api_url = fake.api_url();
    c.slack.bot_token = Some(BOT_TOKEN.into());
    c.slack.signing_secret = Some(SECRET.into());
    c
}

/// A test body run on SQLite and PostgreSQL, with a fake Slack and a server
/// configured for it.
macro_rules! both_slack {
    ($name:ident, |$app:ident, $fake:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($app: TestApp, $fake: FakeSlack) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let f = FakeSlack::start().await;
                body(TestApp::spawn_channels("sqlite", Catalog::default(), cfg(&f)).await, f).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let f = FakeSlack::start().await;
                body(TestApp::spawn_channels("postgres", Catalog::default(), cfg(&f)).await, f).await
            }
        }
    };
}

async fn declare(app: &TestApp, title: &str, severity: &str, policy: Option<&str>) -> String {
    app.client
        .declare(&DeclareIncident {
            title: title.into(),
            severity: Some(severity.into()),
            escalation_policy: policy.map(str::to_string),
            ..Default::default()
        })
        .await
        .unwrap()
        .id
}

/// Queue a stakeholder message about `id` to a Slack address, as the
/// communication rules would.
async fn enqueue(app: &TestApp, id: &str, event_type: &str, address: &str, subject: &str) {
    let inc = app.client.incident(id).await.unwrap();
    let now = app.clock_now();
    // Built from JSON so that optional envelope fields default.
    let env: Envelope = serde_json::from_value(json!({
        "type": event_type,
        "idempotency_key": format!("{id}:{event_type}:{address}:{}", now.as_millisecond()),
        "incident": EnvelopeIncident::of(&inc, Some(PUBLIC)),
        "message": Rendered {
            name: "test".into(),
            subject: subject.into(),
            body: format!("{subject}\nCustomers see <errors> & timeouts."),
            short: subject.into(),
        },
        "sent_at": now,
        "reason": "declared",
        "destination": "ops",
    }))
    .unwrap();
    app.store
        .enqueue_notifications(
            id,
            &[NewNotification {
                idempotency_key: env.idempotency_key.clone(),
                user_id: "ops".into(),
                channel: "slack".into(),
                contact: "ops".into(),
                address: address.into(),
                body: env.to_json(),
                due_at: now,
                cancel_on_ack: false,
                message: true,
            }],
            now,
        )
        .await
        .unwrap();
}

async fn notifications(app: &TestApp, id: &str) -> Vec<klaxon_store::Notification> {
    app.client
        .notifications(&NotificationQuery {
            incident: Some(id.into()),
            ..Default::default()
        })
        .await
        .unwrap()
}

fn block<'a>(blocks: &'a Value, kind: &str) -> Option<&'a Value> {
    blocks.as_array()?.iter().find(|b| b["type"] == kind)
}

/// The text of the `*Status*` field.
fn status_field(blocks: &Value) -> String {
    block(blocks, "section")
        .and_then(|s| s["fields"].as_array())
        .and_then(|f| {
            f.iter()
                .find(|x| x["text"].as_str().unwrap_or("").starts_with("*Status*"))
        })
        .map(|x| x["text"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

fn buttons(blocks: &Value) -> Vec<(String, String)> {
    block(blocks, "actions")
        .and_then(|a| a["elements"].as_array())
        .map(|e| {
            e.iter()
                .map(|b| {
                    (
                        b["action_id"].as_str().unwrap().into(),
                        b["value"].as_str().unwrap().into(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

both_slack!(
    incoming_webhook_gets_block_kit_and_errors_are_classified,
    |app, fake| {
        let engine = app.engine_with("n1", &cfg(&fake), Some(PUBLIC));
        let id = declare(&app, "API down", "SEV-1", None).await;
        enqueue(
            &app,
            &id,
            types::DECLARED,
            &fake.webhook_url(),
            "SEV-1 declared: API down",
        )
        .await;
        engine.tick().await.unwrap();
        assert_eq!(fake.invalid(), vec![], "every request must be valid for Slack");
        let got = fake.accepted("webhook");
        assert_eq!(got.len(), 1);
        let body = &got[0];
        assert_eq!(body["text"], "SEV-1 declared: API down");
        let blocks = &body["blocks"];
        assert_eq!(block(blocks, "header").unwrap()["text"]["text"], "[SEV-1] API down");
        let fields = block(blocks, "section").unwrap()["fields"].to_string();
        assert!(
            fields.contains(&id) && fields.contains("Triggered") && fields.contains("SEV-1"),
            "{fields}"
        );
        let all = blocks.to_string();
        assert!(
            all.contains("&lt;errors&gt; &amp; timeouts"),
            "mrkdwn is escaped: {all}"
        );
        assert!(
            all.contains(&format!("{PUBLIC}/api/v1/incidents/{id}")),
            "links the incident"
        );
        assert!(block(blocks, "actions").is_none(), "webhooks cannot take button clicks");
        assert_eq!(fake.accepted("chat.postMessage").len(), 0, "webhooks need no bot");
        assert_eq!(notifications(&app, &id).await[0].state, "delivered");

        // 404 no_service is permanent; the secret URL stays out of the error.
        fake.fail_webhook(Some((404, "no_service")));
        app.advance(1);
        enqueue(&app, &id, types::UPDATED, &fake.webhook_url(), "Update 1").await;
        engine.tick().await.unwrap();
        let n = notifications(&app, &id).await;
        let dead = n.iter().find(|n| n.state == "dead").expect("dead letter");
        let err = dead.last_error.clone().unwrap();
        assert!(err.contains("404") && err.contains("no_service"), "{err}");
        assert!(!err.contains("XXXXSECRET"), "webhook URLs are secrets: {err}");

        // 429 is retried after Retry-After (60 s).
        fake.fail_webhook(Some((429, "rate_limited")));
        app.advance(1);
        enqueue(&app, &id, types::UPDATED, &fake.webhook_url(), "Update 2").await;
        engine.tick().await.unwrap();
        let pending: Vec<_> = notifications(&app, &id)
            .await
            .into_iter()
            .filter(|n| n.state == "pending")
            .collect();
        assert_eq!(pending.len(), 1);
        assert!(pending[0].due_at >= app.clock_now() + jiff::SignedDuration::from_secs(60));
        fake.fail_webhook(None);
        app.advance(2);
        engine.tick().await.unwrap();
        assert_eq!(fake.accepted("webhook").len(), 2);
        assert!(notifications(&app, &id).await.iter().all(|n| n.state != "pending"));
    }
);

both_slack!(bot_messages_build_a_board_with_thread_replies, |app, fake| {
    let engine = app.engine_with("n1", &cfg(&fake), Some(PUBLIC));
    let id = declare(&app, "Checkout slow", "SEV-2", None).await;
    enqueue(&app, &id, types::DECLARED, "C0OPS", "SEV-2 declared: Checkout slow").await;
    enqueue(&app, &id, types::DECLARED, "#ops-room", "SEV-2 declared: Checkout slow").await;
    engine.tick().await.unwrap();
    assert_eq!(fake.invalid(), vec![], "bearer token, JSON and fields must be right");
    let posts = fake.accepted("chat.postMessage");
    assert_eq!(posts.len(), 2);
    let root = posts.iter().find(|p| p["channel"] == "C0OPS").unwrap();
    assert!(root["thread_ts"].is_null());
    assert_eq!(
        buttons(&root["blocks"]),
        vec![
            ("klaxon_ack".to_string(), id.clone()),
            ("klaxon_resolve".to_string(), id.clone()),
            ("klaxon_update".to_string(), id.clone())
        ]
    );
    let board: Value = serde_json::from_str(
        &app.store
            .channel_state(&format!("slack:msg:{id}:C0OPS"))
            .await
            .unwrap()
            .expect("the board is remembered"),
    )
    .unwrap();
    assert_eq!(board["channel"], "C0OPS");
    let root_ts = board["ts"].as_str().unwrap().to_string();

    app.client.ack(&id, None).await.unwrap();
    app.advance(1);
    enqueue(&app, &id, types::ACKNOWLEDGED, "C0OPS", "Acknowledged").await;
    enqueue(&app, &id, types::ACKNOWLEDGED, "#ops-room", "Acknowledged").await;
    engine.tick().await.unwrap();
    let posts = fake.accepted("chat.postMessage");
    assert_eq!(posts.len(), 4);
    let reply = posts[2..].iter().find(|p| p["channel"] == "C0OPS").unwrap();
    assert_eq!(
        reply["thread_ts"],
        root_ts.as_str(),
        "later messages are thread replies"
    );
    let named = posts[2..].iter().find(|p| p["channel"] != "C0OPS").unwrap();
    assert_eq!(
        named["channel"], "CNAMEDOPSROOM",
        "#name boards continue on the channel ID"
    );
    assert!(named["thread_ts"].is_string());
    let updates = fake.accepted("chat.update");
    assert_eq!(updates.len(), 2);
    let refresh = updates.iter().find(|u| u["channel"] == "C0OPS").unwrap();
    assert_eq!(
        refresh["ts"],
        root_ts.as_str(),
        "the board (first message) is refreshed"
    );
    assert_eq!(status_field(&refresh["blocks"]), "*Status*\nAcknowledged");

    app.client.set_status(&id, "resolved", None).await.unwrap();
    app.advance(1);
    enqueue(&app, &id, types::RESOLVED, "C0OPS", "Resolved").await;
    engine.tick().await.unwrap();
    let last = fake.accepted("chat.update").pop().unwrap();
    assert_eq!(status_field(&last["blocks"]), "*Status*\nResolved");
    assert!(buttons(&last["blocks"]).is_empty(), "no buttons on resolved incidents");

    // Someone deleted the board in Slack: the next message starts a new one.
    fake.fail("chat.postMessage", vec![Fault::Error("thread_not_found")]);
    app.advance(1);
    enqueue(&app, &id, types::UPDATED, "C0OPS", "Postmortem scheduled").await;
    engine.tick().await.unwrap();
    let states: Vec<_> = notifications(&app, &id).await.into_iter().map(|n| n.state).collect();
    assert_eq!(states, vec!["delivered"; 6]);
    let fresh = fake.accepted("chat.postMessage").pop().unwrap();
    assert!(fresh["thread_ts"].is_null(), "a new board, not a reply: {fresh}");
    let board: Value = serde_json::from_str(
        &app.store
            .channel_state(&format!("slack:msg:{id}:C0OPS"))
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_ne!(board["ts"], root_ts.as_str(), "the new board is remembered");
    assert_eq!(fake.invalid(), vec![]);
});

both_slack!(pages_are_dms_and_an_incident_channel_is_created, |app, fake| {
    let mut c = cfg(&fake);
    c.slack.incident_channels.enabled = true;
    c.slack.incident_channels.severities = vec!["SEV-1".into()];
    let engine = app.engine_with("n1", &c, Some(PUBLIC));
    let alice = json!({"id": "alice", "name": "Alice Example", "email": "alice@example.com",
        "contact_methods": [{"name": "slack", "kind": "slack", "address": "U024ALICE"}],
        "notification_rules": [{"contact": "slack"}]});
    app.client.put_document("users", "alice", &alice).await.unwrap();
    let policy = json!({"id": "ops", "levels": [{"targets": [{"user": "alice"}], "delay_minutes": 5}]});
    app.client
        .put_document("escalation-policies", "ops", &policy)
        .await
        .unwrap();

    let id = declare(&app, "API down!", "SEV-1", Some("ops")).await;
    // Two stakeholder messages of the same event and the page go out in one batch, at once.
    enqueue(&app, &id, types::DECLARED, "C0OPS", "SEV-1 declared: API down!").await;
    enqueue(&app, &id, types::DECLARED, "#ops-room", "SEV-1 declared: API down!").await;
    engine.tick().await.unwrap();
    assert_eq!(fake.invalid(), vec![]);
    let created = fake.accepted("conversations.create");
    assert_eq!(
        created.len(),
        1,
        "concurrent deliveries agree on one channel: {created:?}"
    );
    let name = format!("{}-api-down", id.to_lowercase());
    assert_eq!(created[0]["name"], name.as_str());
    assert_eq!(name, incident_channel_name(&id, "API down!"));
    let invites = fake.accepted("conversations.invite");
    assert_eq!(invites.len(), 1);
    assert_eq!(
        (invites[0]["channel"].as_str(), invites[0]["users"].as_str()),
        (Some("CINC0001"), Some("U024ALICE"))
    );
    let posts = fake.accepted("chat.postMessage");
    let dm = posts
        .iter()
        .find(|p| p["channel"] == "U024ALICE")
        .expect("a DM to the paged user");
    assert!(dm["thread_ts"].is_null());
    assert_eq!(buttons(&dm["blocks"]).len(), 3);
    let copies: Vec<_> = posts.iter().filter(|p| p["channel"] == "CINC0001").collect();
    assert_eq!(
        copies.len(),
        2,
        "one copy per event (declared, paged) in the incident channel: {copies:?}"
    );
    let stored = app
        .store
        .channel_state(&format!("slack:channel:{id}"))
        .await
        .unwrap()
        .unwrap();
    assert!(stored.contains("CINC0001") && stored.contains(&name), "{stored}");

    // The second page reuses the channel; the name is taken for the next incident.
    let id2_name = name.replace("-001-", "-002-");
    fake.take_name(&id2_name);
    let id2 = declare(&app, "API down!", "SEV-1", Some("ops")).await;
    assert_eq!(format!("{}-api-down", id2.to_lowercase()), id2_name);
    engine.tick().await.unwrap();
    let created = fake.accepted("conversations.create");
    assert_eq!(created.len(), 2, "one new channel: {created:?}");
    assert_eq!(
        created[1]["name"],
        format!("{id2_name}-2").as_str(),
        "name_taken: a suffix"
    );

    // A SEV-3 gets no channel of its own (severities: [SEV-1]).
    let id3 = declare(&app, "Docs typo", "SEV-3", Some("ops")).await;
    engine.tick().await.unwrap();
    assert_eq!(fake.accepted("conversations.create").len(), 2);
    assert!(
        app.store
            .channel_state(&format!("slack:channel:{id3}"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(fake.invalid(), vec![]);
});

both_slack!(web_api_errors_are_dead_or_retried, |app, fake| {
    let engine = app.engine_with("n1", &cfg(&fake), None);
    let id = declare(&app, "Queue stuck", "SEV-2", None).await;

    fake.fail("chat.postMessage", vec![Fault::Error("channel_not_found")]);
    enqueue(&app, &id, types::DECLARED, "C0GONE", "declared").await;
    engine.tick().await.unwrap();
    let n = notifications(&app, &id).await;
    assert_eq!(n[0].state, "dead");
    assert!(n[0].last_error.as_deref().unwrap().contains("channel_not_found"));

    // HTTP 429 and ok:false ratelimited wait for Retry-After.
    for (i, fault) in [Fault::Http429(120), Fault::RateLimited(120), Fault::Down]
        .into_iter()
        .enumerate()
    {
        let before = fake.accepted("chat.postMessage").len();
        fake.fail("chat.postMessage", vec![fault.clone()]);
        app.advance(10);
        enqueue(&app, &id, types::UPDATED, &format!("C0OK{i}"), "update").await;
        engine.tick().await.unwrap();
        let pending: Vec<_> = notifications(&app, &id)
            .await
            .into_iter()
            .filter(|n| n.state == "pending")
            .collect();
        assert_eq!(pending.len(), 1, "{fault:?} is transient");
        if !matches!(fault, Fault::Down) {
            assert!(
                pending[0].due_at >= app.clock_now() + jiff::SignedDuration::from_secs(120),
                "{fault:?}: Retry-After is honoured"
            );
            app.advance(1);
            engine.tick().await.unwrap();
            assert_eq!(
                fake.accepted("chat.postMessage").len(),
                before,
                "not before Retry-After"
            );
        }
        app.advance(5);
        engine.tick().await.unwrap();
        assert_eq!(
            fake.accepted("chat.postMessage").len(),
            before + 1,
            "{fault:?}: delivered later"
        );
    }

    // Without a bot token only webhooks work.
    let mut c = cfg(&fake);
    c.slack.bot_token = None;
    let tokenless = app.engine_with("n2", &c, None);
    app.advance(10);
    enqueue(&app, &id, types::UPDATED, "C0OPS", "update").await;
    tokenless.tick().await.unwrap();
    let dead: Vec<_> = notifications(&app, &id)
        .await
        .into_iter()
        .filter(|n| n.state == "dead")
        .collect();
    assert_eq!(dead.len(), 2);
    assert!(
        dead.iter()
            .any(|n| n.last_error.as_deref().unwrap_or("").contains("bot token"))
    );
});

// ---- inbound ----

/// POST a form body signed as Slack signs it.
async fn signed(app: &TestApp, path: &str, body: &str, ts: i64, secret: &str) -> (u16, String) {
    let sig = slack_signature(secret.as_bytes(), &ts.to_string(), body.as_bytes());
    send(app, path, body, &ts.to_string(), &sig).await
}

async fn send(app: &TestApp, path: &str, body: &str, ts: &str, sig: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", sig)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn command_body(user_id: &str, user_name: &str, text: &str) -> String {
    serde_urlencoded::to_string([
        ("token", "deprecated"),
        ("team_id", "T1DC2JH3J"),
        ("team_domain", "testteamnow"),
        ("channel_id", "C0OPS"),
        ("channel_name", "ops"),
        ("user_id", user_id),
        ("user_name", user_name),
        ("command", "/incident"),
        ("text", text),
        ("response_url", "https://hooks.slack.com/commands/T1DC2JH3J/1/x"),
        (
            "trigger_id",
            "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
        ),
    ])
    .unwrap()
}

/// Run `/incident <text>`; the JSON reply.
async fn slash(app: &TestApp, user_id: &str, text: &str) -> Value {
    let body = command_body(user_id, "roadrunner", text);
    let now = app.clock_now().as_second();
    let (status, reply) = signed(app, "/hooks/slack/commands", &body, now, SECRET).await;
    assert_eq!(status, 200, "{reply}");
    // Each request must be new: move the clock a second so signatures differ.
    app.clock.advance(jiff::SignedDuration::from_secs(1));
    serde_json::from_str(&reply).unwrap()
}

async fn interact(app: &TestApp, payload: &Value) -> (u16, String) {
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let now = app.clock_now().as_second();
    let out = signed(app, "/hooks/slack/interactions", &body, now, SECRET).await;
    app.clock.advance(jiff::SignedDuration::from_secs(1));
    out
}

async fn last_actor(app: &TestApp, id: &str) -> String {
    app.client
        .timeline(id)
        .await
        .unwrap()
        .events
        .last()
        .unwrap()
        .actor
        .clone()
}

both_slack!(signatures_are_checked_before_anything_happens, |app, fake| {
    let _ = &fake;
    let id = declare(&app, "API down", "SEV-1", None).await;
    let body = command_body("U2CERLKJA", "roadrunner", &format!("update {id} Failover started"));
    let now = app.clock_now().as_second();
    let path = "/hooks/slack/commands";

    let (status, reply) = signed(&app, path, &body, now, "not-the-secret").await;
    assert_eq!(status, 401, "{reply}");
    let (status, reply) = signed(&app, path, &body, now - 301, SECRET).await;
    assert_eq!(status, 401, "stale: {reply}");
    let (status, _) = signed(&app, path, &body, now + 301, SECRET).await;
    assert_eq!(status, 401, "from the future");
    let (status, _) = send(&app, path, &body, "", "").await;
    assert_eq!(status, 401, "unsigned");
    let (status, _) = send(&app, path, &body, &i64::MIN.to_string(), "v0=00").await;
    assert_eq!(status, 401, "absurd timestamp");
    let sig = slack_signature(SECRET.as_bytes(), &now.to_string(), body.as_bytes());
    let (status, _) = send(&app, path, &format!("{body}&x=1"), &now.to_string(), &sig).await;
    assert_eq!(status, 401, "tampered body");
    assert!(
        app.client.updates(&id).await.unwrap().is_empty(),
        "nothing changed on 401"
    );
    let json: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(json["error"]["code"], "unauthorized");

    let (status, reply) = signed(&app, path, &body, now - 299, SECRET).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(app.client.updates(&id).await.unwrap().len(), 1);

    let (status, reply) = signed(&app, path, &body, now - 299, SECRET).await;
    assert_eq!(status, 401, "a replay is refused: {reply}");
    assert!(reply.contains("replay"));
    assert_eq!(
        app.client.updates(&id).await.unwrap().len(),
        1,
        "nothing changed on a replay"
    );
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_signing_secret_slack_hooks_are_off() {
    let app = TestApp::spawn("sqlite").await;
    let now = app.clock_now().as_second();
    let (status, reply) = signed(&app, "/hooks/slack/commands", "text=help", now, SECRET).await;
    assert_eq!(status, 503, "{reply}");
    assert!(reply.contains("signing_secret"), "{reply}");
}

both_slack!(slash_command_subcommands, |app, fake| {
    let _ = &fake;
    let alice = json!({"id": "alice", "name": "Alice Example", "email": "alice@example.com",
        "contact_methods": [{"name": "slack", "kind": "slack", "address": "U024ALICE"}]});
    app.client.put_document("users", "alice", &alice).await.unwrap();

    let help = slash(&app, "U9", "help").await;
    assert_eq!(help["response_type"], "ephemeral");
    assert!(help["text"].as_str().unwrap().contains("/incident declare"));
    let empty = slash(&app, "U9", "").await;
    assert_eq!(empty["text"], help["text"]);
    let unknown = slash(&app, "U9", "explode now").await;
    assert_eq!(unknown["response_type"], "ephemeral");
    assert!(
        unknown["text"]
            .as_str()
            .unwrap()
            .starts_with("Unknown subcommand `explode`")
    );

    let r = slash(&app, "U9", "declare API returning 500s --sev SEV-1").await;
    assert_eq!(r["response_type"], "in_channel", "{r}");
    let list = app.client.list(&Default::default()).await.unwrap().items;
    assert_eq!(list.len(), 1);
    let one = &list[0];
    assert_eq!(
        (one.title.as_str(), one.severity.as_str()),
        ("API returning 500s", "SEV-1")
    );
    assert!(r["text"].as_str().unwrap().contains(&one.id));
    assert_eq!(
        last_actor(&app, &one.id).await,
        "slack:roadrunner",
        "unknown Slack users act as slack:<name>"
    );

    // Slack escapes &, < and > in the text.
    let r = slash(&app, "U024ALICE", "declare SEV-2 Checkout &amp; cart slow").await;
    assert_eq!(r["response_type"], "in_channel");
    let two = app.client.list(&Default::default()).await.unwrap().items[0].clone();
    assert_eq!(
        (two.title.as_str(), two.severity.as_str()),
        ("Checkout & cart slow", "SEV-2")
    );
    assert_eq!(
        last_actor(&app, &two.id).await,
        "alice",
        "known Slack users act as themselves"
    );
    let r = slash(&app, "U9", "declare --sev SEV-1").await;
    assert!(r["text"].as_str().unwrap().contains("needs a title"));
    let r = slash(&app, "U9", "declare Thing --sev SEV-9").await;
    assert_eq!(r["response_type"], "ephemeral");
    assert!(r["text"].as_str().unwrap().starts_with("Could not declare"), "{r}");

    let r = slash(&app, "U9", "status").await;
    let text = r["text"].as_str().unwrap();
    assert!(text.contains(&one.id) && text.contains(&two.id), "{text}");
    let r = slash(&app, "U9", &format!("status {}", one.id.to_lowercase())).await;
    assert!(r["text"].as_str().unwrap().contains("API returning 500s"), "{r}");

    let r = slash(&app, "U024ALICE", &format!("update {} Rolled back the deploy", one.id)).await;
    assert_eq!(r["response_type"], "in_channel", "{r}");
    let ups = app.client.updates(&one.id).await.unwrap();
    assert_eq!(ups.len(), 1);
    assert_eq!(
        (ups[0].message.as_str(), ups[0].by.as_str()),
        ("Rolled back the deploy", "alice")
    );
    let r = slash(&app, "U9", &format!("update {}", one.id)).await;
    assert!(r["text"].as_str().unwrap().contains("needs the update's text"));

    let r = slash(&app, "U024ALICE", &format!("ack {}", one.id)).await;
    assert_eq!(r["response_type"], "in_channel", "{r}");
    assert_eq!(
        app.client.incident(&one.id).await.unwrap().status.as_str(),
        "acknowledged"
    );
    assert_eq!(last_actor(&app, &one.id).await, "alice");

    let r = slash(&app, "U9", &format!("resolve {} Deploy rolled back", one.id)).await;
    assert_eq!(r["response_type"], "in_channel");
    assert_eq!(app.client.incident(&one.id).await.unwrap().status.as_str(), "resolved");
    let r = slash(&app, "U9", &format!("ack {}", one.id)).await;
    assert_eq!(r["response_type"], "ephemeral", "acking a resolved incident fails: {r}");

    let r = slash(&app, "U9", "ack").await;
    assert!(r["text"].as_str().unwrap().contains("needs an incident ID"), "{r}");
    let r = slash(&app, "U9", "resolve INC-NOPE-1").await;
    assert!(
        r["text"]
            .as_str()
            .unwrap()
            .contains("There is no incident `INC-NOPE-1`"),
        "{r}"
    );

    let r = slash(&app, "U9", "status").await;
    let text = r["text"].as_str().unwrap();
    assert!(
        !text.contains(&one.id) && text.contains(&two.id),
        "resolved ones are not open: {text}"
    );
});

fn click(fake: &FakeSlack, user: &str, action: &str, id: &str) -> Value {
    json!({"type": "block_actions", "user": {"id": user, "username": "bob", "name": "bob", "team_id": "T1"},
        "api_app_id": "A1", "trigger_id": "12345.98765.abcd2358fdea",
        "response_url": fake.response_url(),
        "container": {"type": "message", "channel_id": "C0OPS", "message_ts": "1764900000.000001"},
        "actions": [{"type": "button", "block_id": "klaxon_actions", "action_id": action, "value": id,
            "text": {"type": "plain_text", "text": "Acknowledge"}, "action_ts": "1764900001.000001"}]})
}

both_slack!(buttons_ack_and_resolve_as_the_slack_user, |app, fake| {
    let alice = json!({"id": "alice", "name": "Alice Example", "email": "alice@example.com",
        "contact_methods": [{"name": "slack", "kind": "slack", "address": "U024ALICE"}]});
    app.client.put_document("users", "alice", &alice).await.unwrap();
    let id = declare(&app, "API down", "SEV-1", None).await;

    let (status, body) = interact(&app, &click(&fake, "U024ALICE", "klaxon_ack", &id)).await;
    assert_eq!((status, body.as_str()), (200, ""));
    assert_eq!(app.client.incident(&id).await.unwrap().status.as_str(), "acknowledged");
    assert_eq!(last_actor(&app, &id).await, "alice");
    // The clicked message is replaced (response_url) by the incident as it is now.
    let shown = fake.accepted("response_url");
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0]["replace_original"], true);
    assert_eq!(shown[0]["text"], format!("{id} acknowledged by alice").as_str());
    assert!(status_field(&shown[0]["blocks"]).contains("Acknowledged"));
    assert_eq!(buttons(&shown[0]["blocks"]).len(), 3);

    let (status, _) = interact(&app, &click(&fake, "U0BOB", "klaxon_resolve", &id)).await;
    assert_eq!(status, 200);
    assert_eq!(app.client.incident(&id).await.unwrap().status.as_str(), "resolved");
    assert_eq!(last_actor(&app, &id).await, "slack:bob");
    let shown = fake.accepted("response_url");
    assert_eq!(shown.len(), 2);
    assert!(status_field(&shown[1]["blocks"]).contains("Resolved"));
    assert!(buttons(&shown[1]["blocks"]).is_empty(), "no buttons once resolved");

    // A click on an already resolved incident changes nothing and still answers 200.
    let events = app.client.timeline(&id).await.unwrap().events.len();
    let (status, _) = interact(&app, &click(&fake, "U0BOB", "klaxon_ack", &id)).await;
    assert_eq!(status, 200);
    assert_eq!(app.client.timeline(&id).await.unwrap().events.len(), events);
    assert_eq!(
        fake.accepted("response_url").len(),
        2,
        "nothing to show when nothing changed"
    );
    assert_eq!(fake.invalid(), vec![]);
});

both_slack!(update_button_opens_a_modal_that_posts_an_update, |app, fake| {
    let id = declare(&app, "API down", "SEV-1", None).await;
    let (status, _) = interact(&app, &click(&fake, "U024ALICE", "klaxon_update", &id)).await;
    assert_eq!(status, 200);
    assert_eq!(fake.invalid(), vec![]);
    let opened = fake.accepted("views.open");
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0]["trigger_id"], "12345.98765.abcd2358fdea");
    let view = &opened[0]["view"];
    assert_eq!(
        (view["callback_id"].as_str(), view["private_metadata"].as_str()),
        (Some("klaxon_update"), Some(id.as_str()))
    );
    let input = view["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "input")
        .unwrap();
    let (block_id, action_id) = (
        input["block_id"].as_str().unwrap(),
        input["element"]["action_id"].as_str().unwrap(),
    );

    let submit = |text: &str| {
        json!({"type": "view_submission", "user": {"id": "U024ALICE", "username": "alice", "name": "alice"},
            "view": {"id": "V0001", "type": "modal", "callback_id": view["callback_id"], "private_metadata": view["private_metadata"],
                "state": {"values": {block_id: {action_id: {"type": "plain_text_input", "value": text}}}}}})
    };
    let (status, body) = interact(&app, &submit("   ")).await;
    assert_eq!(status, 200);
    let errors: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(errors["response_action"], "errors");
    assert!(errors["errors"][block_id].is_string());
    assert!(app.client.updates(&id).await.unwrap().is_empty());

    let (status, body) = interact(&app, &submit("Failover to the standby database is done")).await;
    assert_eq!((status, body.as_str()), (200, ""), "an empty 200 closes the modal");
    let ups = app.client.updates(&id).await.unwrap();
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].message, "Failover to the standby database is done");
    assert_eq!(ups[0].by, "slack:alice");
});

/// The whole loop: a communication rule tells `#incidents`; `/incident
/// update` and the Resolve button in Slack go back through Klaxon and show
/// up on the incident's board in the same Slack channel.
async fn round_trip(backend: &'static str) {
    let fake = FakeSlack::start().await;
    let yaml = "destinations:\n  - {name: eng-chat, kind: slack, address: \"#incidents\"}\nrules:\n  - {severities: [SEV-1, SEV-2], notify: [eng-chat]}\n";
    let mut comms: klaxon_domain::communication::Communication = serde_saphyr::from_str(yaml).unwrap();
    let mut cat = Catalog::default();
    comms.validate(&cat).unwrap();
    cat.communication = comms;
    let app = TestApp::spawn_channels(backend, cat, cfg(&fake)).await;
    let engine = app.engine_with("n1", &cfg(&fake), Some(PUBLIC));

    let r = slash(&app, "U9", "declare SEV-1 Payments failing").await;
    assert_eq!(r["response_type"], "in_channel", "{r}");
    let id = app.client.list(&Default::default()).await.unwrap().items[0].id.clone();
    engine.tick().await.unwrap();
    let posts = fake.accepted("chat.postMessage");
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0]["channel"], "#incidents");
    assert!(posts[0]["text"].as_str().unwrap().contains("Payments failing"));
    assert_eq!(buttons(&posts[0]["blocks"]).len(), 3);

    slash(&app, "U9", &format!("update {id} Card processor is failing over")).await;
    engine.tick().await.unwrap();
    let posts = fake.accepted("chat.postMessage");
    assert_eq!(posts.len(), 2);
    assert!(posts[1]["thread_ts"].is_string(), "the update is a thread reply");
    assert!(
        posts[1]["blocks"]
            .to_string()
            .contains("Card processor is failing over")
    );
    assert_eq!(fake.accepted("chat.update").len(), 1);

    let (status, _) = interact(&app, &click(&fake, "U9", "klaxon_resolve", &id)).await;
    assert_eq!(status, 200);
    engine.tick().await.unwrap();
    let board = fake.accepted("chat.update").pop().unwrap();
    assert_eq!(status_field(&board["blocks"]), "*Status*\nResolved", "{board}");
    assert!(buttons(&board["blocks"]).is_empty());
    assert_eq!(fake.invalid(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_through_slack_sqlite() {
    round_trip("sqlite").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_through_slack_postgres() {
    round_trip("postgres").await
}

/// docs/channels/slack.md: the klaxon.yaml example passes `klaxon config
/// check` and builds the Slack app; the person example is accepted by the
/// API; the JSON message example is valid Block Kit for the fake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_examples_are_valid() {
    let doc = include_str!("../../../../docs/channels/slack.md");
    let app = TestApp::spawn("sqlite").await;
    let dir = tempfile::tempdir().unwrap();
    let (mut configs, mut people) = (0, 0);
    for block in doc.split("```yaml\n").skip(1).filter_map(|r| r.split("```").next()) {
        if block.starts_with("# klaxon.yaml") {
            configs += 1;
            let path = dir.path().join("klaxon.yaml");
            std::fs::write(&path, block).unwrap();
            let out = std::process::Command::new(crate::cli::BIN)
                .args(["config", "check", path.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            #[derive(serde::Deserialize)]
            struct File {
                channels: ChannelsConfig,
            }
            let f: File = serde_saphyr::from_str(block).unwrap();
            assert_eq!(f.channels.slack.bot_token.as_deref(), Some("xoxb-your-bot-token"));
            assert!(f.channels.slack.incident_channels.enabled);
            let deps = klaxon_engine::ChannelDeps {
                store: app.store.clone(),
                public_url: Some(PUBLIC.into()),
                webhook_secret: "s".into(),
            };
            let built = klaxon_engine::channels::build(&f.channels, &deps).unwrap();
            assert!(built.get("slack").is_some());
        } else {
            people += 1;
            let user: Value = serde_saphyr::from_str(block).unwrap();
            let id = user["id"].as_str().unwrap().to_string();
            app.client.put_document("users", &id, &user).await.unwrap();
        }
    }
    assert_eq!((configs, people), (1, 1));
    let json_block = doc
        .split("```json\n")
        .nth(1)
        .and_then(|r| r.split("```").next())
        .unwrap();
    let example: Value = serde_json::from_str(json_block).unwrap();
    crate::fake_slack::validate_blocks(&example["blocks"]).unwrap();
    let ids: Vec<_> = buttons(&example["blocks"]).into_iter().map(|(a, _)| a).collect();
    assert_eq!(ids, ["klaxon_ack", "klaxon_resolve", "klaxon_update"]);
}

crate::both!(the_replay_guard_forgets_old_signatures, |app| {
    let s = &app.store;
    let now = app.clock_now();
    let old = now - jiff::SignedDuration::from_mins(30);
    s.put_channel_state("slack:seen:old", "x", old).await.unwrap();
    s.put_channel_state("slack:seen:new", "x", now).await.unwrap();
    s.put_channel_state("slack:msg:INC-1:#incidents", "{}", old)
        .await
        .unwrap();
    let before = now - jiff::SignedDuration::from_mins(10);
    assert_eq!(s.prune_channel_state("slack:seen:", before).await.unwrap(), 1);
    assert!(s.channel_state("slack:seen:old").await.unwrap().is_none());
    assert!(s.channel_state("slack:seen:new").await.unwrap().is_some());
    assert!(
        s.channel_state("slack:msg:INC-1:#incidents").await.unwrap().is_some(),
        "other keys stay"
    );
});
