//! Twilio SMS and voice (with press-1-to-acknowledge), Microsoft Teams and
//! PagerDuty forwarding end to end: the engine delivers through the real
//! channels to loopback stand-ins that validate every request
//! (fake_providers.rs); Twilio's voice callback comes back signed.

use std::sync::Arc;

use klaxon_domain::message::{Envelope, EnvelopeIncident, types};
use klaxon_domain::templates::Rendered;
use klaxon_domain::wire::{CreateIntegration, DeclareIncident, IncidentQuery, IntegrationFormat, NotificationQuery};
use klaxon_domain::{ManualClock, Status, config::Catalog};
use klaxon_http::{AppState, Application, AuthSettings};
use klaxon_store::{NewNotification, Store, StoreOptions};
use serde_json::{Value, json};

use crate::fake_providers::{Fakes, Mode, Provider, TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN};
use crate::support::{ADMIN, TestApp, TestDb, t0};

/// This Klaxon's public URL (a TLS proxy in front of it, in real life):
/// links and Twilio's callback URL use it; Twilio signs that URL.
const PUBLIC: &str = "https://klaxon.example.com";
const ROUTING_KEY: &str = "0123456789abcdef0123456789abcdef";

/// A server whose inbound hooks know the fake Twilio account and [`PUBLIC`].
async fn spawn(backend: &'static str, channels: klaxon_engine::ChannelsConfig) -> TestApp {
    klaxon_client::install_crypto_provider();
    let db = TestDb::new(backend).await;
    let store = Store::connect(&StoreOptions::new(db.url())).await.unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    store
        .create_token("admin", klaxon_domain::wire::TokenRole::Admin, ADMIN, t0())
        .await
        .unwrap();
    let catalog = Arc::new(Catalog::default());
    let ingest = klaxon_store::IngestSettings::new(catalog.clone());
    let mut state = AppState::new(
        store.clone(),
        clock.clone(),
        catalog.clone(),
        AuthSettings::default(),
        ingest,
        (0, 0),
    );
    state.channels = Arc::new(channels);
    state.public_url = Some(PUBLIC.into());
    let ingestor = state.ingestor.clone();
    let app = Application::build(state, "127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", app.local_addr().unwrap());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        client: klaxon_client::Client::new(&base, Some(ADMIN.into())).unwrap(),
        anon: klaxon_client::Client::new(&base, None).unwrap(),
        base,
        clock,
        store,
        db,
        backend,
        catalog,
        status_page: Default::default(),
        ingestor,
    }
}

/// Run a test body on SQLite and PostgreSQL with fresh provider fakes.
macro_rules! with_fakes {
    ($name:ident, |$app:ident, $fakes:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($app: TestApp, $fakes: Fakes) $body

            async fn run(backend: &'static str) {
                let fakes = Fakes::start().await;
                body(spawn(backend, fakes.channels()).await, fakes).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run("sqlite").await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run("postgres").await
            }
        }
    };
}

/// `id` has one contact method (`primary`) and is paged on it at once by
/// the `ops` policy (one level; the next round is an hour away).
async fn setup(app: &TestApp, id: &str, kind: &str, address: &str) {
    let user = json!({"id": id, "name": format!("{id} Example"), "email": format!("{id}@example.com"),
        "contact_methods": [{"name": "primary", "kind": kind, "address": address}],
        "notification_rules": [{"contact": "primary"}]});
    app.client.put_document("users", id, &user).await.unwrap();
    let policy = json!({"id": "ops", "levels": [{"name": "on-call", "targets": [{"user": id}], "delay_minutes": 60}]});
    app.client
        .put_document("escalation-policies", "ops", &policy)
        .await
        .unwrap();
}

async fn declare(app: &TestApp) -> String {
    app.client
        .declare(&DeclareIncident {
            title: "API returning 500s".into(),
            severity: Some("SEV-1".into()),
            services: vec!["api".into(), "db".into()],
            escalation_policy: Some("ops".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id
}

fn engine(app: &TestApp, fakes: &Fakes) -> Arc<klaxon_engine::Engine> {
    app.engine_with("n1", &fakes.channels(), Some(PUBLIC))
}

async fn notifications(app: &TestApp, id: &str) -> Vec<klaxon_domain::wire::Notification> {
    app.client
        .notifications(&NotificationQuery {
            incident: Some(id.into()),
            ..Default::default()
        })
        .await
        .unwrap()
}

async fn only_notification(app: &TestApp, id: &str) -> klaxon_domain::wire::Notification {
    let list = notifications(app, id).await;
    assert_eq!(list.len(), 1, "{list:?}");
    list.into_iter().next().unwrap()
}

/// Twilio's signature, computed by Python's standard library (independent
/// of Klaxon's implementation) the way Twilio documents it.
async fn python_twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let program = "import sys, json, hmac, hashlib, base64\n\
        token, url, params = json.load(sys.stdin)\n\
        data = url + ''.join(k + v for k, v in sorted(params))\n\
        print(base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode())\n";
    let input = json!([token, url, params]).to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new("python3")
            .arg("-c")
            .arg(program)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "python failed");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
    .await
    .unwrap()
}

/// Post Twilio's `<Gather>` result to the action URL (as seen behind the proxy).
async fn gather(
    app: &TestApp,
    action: &str,
    params: &[(&str, &str)],
    signature: Option<&str>,
) -> (u16, String, String) {
    let path = action
        .strip_prefix(PUBLIC)
        .expect("the action URL is under the public URL");
    let mut rb = reqwest::Client::new()
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(params).unwrap());
    if let Some(s) = signature {
        rb = rb.header("X-Twilio-Signature", s);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, resp.text().await.unwrap())
}

/// Parse with Python's XML parser: well-formed, root `<Response>`; the texts of its `<Say>`s.
async fn twiml_says(xml: &str) -> Vec<String> {
    let program = "import sys, json, xml.etree.ElementTree as E\n\
        root = E.fromstring(sys.stdin.read())\n\
        assert root.tag == 'Response', root.tag\n\
        print(json.dumps([s.text for s in root.iter('Say')]))\n";
    let input = xml.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new("python3")
            .arg("-c")
            .arg(program)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "not well-formed TwiML: {input}");
        serde_json::from_slice(&out.stdout).unwrap()
    })
    .await
    .unwrap()
}

fn attr<'a>(xml: &'a str, name: &str) -> &'a str {
    let start = xml
        .find(&format!("{name}=\""))
        .unwrap_or_else(|| panic!("no {name} in {xml}"))
        + name.len()
        + 2;
    &xml[start..start + xml[start..].find('"').unwrap()]
}

with_fakes!(sms_page_reaches_twilio, |app, fakes| {
    setup(&app, "alice", "sms", "+4915112345678").await;
    let engine = engine(&app, &fakes);
    let id = declare(&app).await;
    engine.tick().await.unwrap();

    assert_eq!(fakes.rejected(), Vec::<String>::new());
    let got = fakes.got(Provider::Sms);
    assert_eq!(got.len(), 1);
    let sms = &got[0];
    assert_eq!(sms.path, format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"));
    assert_eq!(sms.auth, Some((TWILIO_SID.to_string(), TWILIO_TOKEN.to_string())));
    assert!(sms.content_type.starts_with("application/x-www-form-urlencoded"));
    assert_eq!(sms.field("To"), Some("+4915112345678"));
    assert_eq!(sms.field("From"), Some(TWILIO_FROM));
    let body = sms.field("Body").unwrap();
    assert!(
        body.contains("[SEV-1]") && body.contains(&id) && body.contains("API returning 500s"),
        "{body}"
    );
    assert!(body.contains(&format!("Ack: klaxon ack {id}")), "{body}");
    assert!(body.contains(&format!("{PUBLIC}/api/v1/incidents/{id}")), "{body}");
    assert!(body.chars().count() <= 1600);
    let n = only_notification(&app, &id).await;
    assert_eq!(
        (n.state.as_str(), n.attempts, n.channel.as_str()),
        ("delivered", 1, "sms")
    );
    assert!(fakes.got(Provider::Call).is_empty());
});

with_fakes!(voice_page_and_press_1_acknowledges, |app, fakes| {
    setup(&app, "bob", "voice", "+4915112345679").await;
    let engine = engine(&app, &fakes);
    let id = declare(&app).await;
    engine.tick().await.unwrap();

    assert_eq!(fakes.rejected(), Vec::<String>::new());
    let calls = fakes.got(Provider::Call);
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.path, format!("/2010-04-01/Accounts/{TWILIO_SID}/Calls.json"));
    assert_eq!(call.auth, Some((TWILIO_SID.to_string(), TWILIO_TOKEN.to_string())));
    assert_eq!(
        (call.field("To"), call.field("From")),
        (Some("+4915112345679"), Some(TWILIO_FROM))
    );
    assert!(call.field("Url").is_none());
    let twiml = call.field("Twiml").unwrap();
    assert!(twiml.starts_with("<Response><Gather "), "{twiml}");
    assert_eq!(
        (attr(twiml, "numDigits"), attr(twiml, "method"), attr(twiml, "timeout")),
        ("1", "POST", "10")
    );
    assert!(twiml.contains("Press 1 to acknowledge.</Say></Gather>"), "{twiml}");
    assert!(twiml.contains(&id) && twiml.contains("API returning 500s"), "{twiml}");
    assert!(
        twiml.ends_with("<Say>No input received. Goodbye.</Say></Response>"),
        "{twiml}"
    );
    let says = twiml_says(twiml).await;
    assert_eq!(says.len(), 2, "{says:?}");
    assert!(
        says[0].ends_with("Press 1 to acknowledge.") && says[0].contains(&id),
        "{says:?}"
    );
    // The attribute is XML-escaped; Twilio requests the unescaped URL.
    let escaped = attr(twiml, "action");
    assert!(escaped.contains("&amp;user=bob"), "{escaped}");
    let action = escaped.replace("&amp;", "&");
    assert_eq!(action, format!("{PUBLIC}/hooks/twilio/voice?incident={id}&user=bob"));

    let press = |digits: &'static str| {
        vec![
            ("AccountSid", TWILIO_SID),
            ("CallSid", "CA0123456789abcdef0123456789abcdef"),
            ("From", TWILIO_FROM),
            ("To", "+4915112345679"),
            ("CallStatus", "in-progress"),
            ("Digits", digits),
            ("FinishedOnKey", ""),
        ]
    };
    let status_now = || async { app.client.incident(&id).await.unwrap().status };
    let events_before = crate::support::kinds(&app, &id).await.len();

    // Forged: wrong key, missing header, a signature for other digits, another account.
    let forged = python_twilio_signature("not-the-token", &action, &press("1")).await;
    let (status, _, _) = gather(&app, &action, &press("1"), Some(&forged)).await;
    assert_eq!(status, 403);
    let (status, _, _) = gather(&app, &action, &press("1"), None).await;
    assert_eq!(status, 403);
    let for_two = python_twilio_signature(TWILIO_TOKEN, &action, &press("2")).await;
    let (status, _, _) = gather(&app, &action, &press("1"), Some(&for_two)).await;
    assert_eq!(status, 403, "the signature covers the digits");
    let other_user = action.replace("user=bob", "user=mallory");
    let (status, _, _) = gather(&app, &other_user, &press("1"), Some(&for_two)).await;
    assert_eq!(status, 403, "the signature covers the URL");
    let mut other_account = press("1");
    other_account[0].1 = "AC00000000000000000000000000000000";
    let sig = python_twilio_signature(TWILIO_TOKEN, &action, &other_account).await;
    let (status, _, _) = gather(&app, &action, &other_account, Some(&sig)).await;
    assert_eq!(status, 403, "another Twilio account");
    assert_eq!(status_now().await, Status::Triggered);
    assert_eq!(crate::support::kinds(&app, &id).await.len(), events_before);

    // Another key: nothing changes.
    let (status, ct, twiml) = gather(&app, &action, &press("2"), Some(&for_two)).await;
    assert_eq!((status, ct.as_str()), (200, "text/xml; charset=utf-8"));
    assert!(twiml.contains("<Response><Say>Nothing was changed."), "{twiml}");
    assert_eq!(status_now().await, Status::Triggered);

    // 1: acknowledged, by bob.
    let sig = python_twilio_signature(TWILIO_TOKEN, &action, &press("1")).await;
    let (status, ct, twiml) = gather(&app, &action, &press("1"), Some(&sig)).await;
    assert_eq!((status, ct.as_str()), (200, "text/xml; charset=utf-8"), "{twiml}");
    assert_eq!(
        twiml_says(&twiml).await,
        vec![format!("Incident {id} acknowledged. Thank you.")]
    );
    assert_eq!(status_now().await, Status::Acknowledged);
    let timeline = app.client.timeline(&id).await.unwrap();
    let last = timeline.events.last().unwrap();
    assert_eq!(last.actor, "bob");
    assert_eq!(last.kind.type_name(), "status_changed");
    assert!(
        serde_json::to_string(&last.kind)
            .unwrap()
            .contains("Twilio call CA0123456789abcdef")
    );

    // Pressing 1 again (Twilio retries, or a second call) says so and changes nothing.
    let (status, _, twiml) = gather(&app, &action, &press("1"), Some(&sig)).await;
    assert_eq!(status, 200);
    assert!(twiml.contains("already acknowledged"), "{twiml}");
    assert_eq!(
        app.client.timeline(&id).await.unwrap().events.len(),
        timeline.events.len()
    );

    // A late keypress after the incident was resolved.
    app.client.set_status(&id, "resolved", None).await.unwrap();
    let (status, _, twiml) = gather(&app, &action, &press("1"), Some(&sig)).await;
    assert_eq!(status, 200);
    assert!(
        twiml.contains(&format!("Incident {id} is already resolved.")),
        "{twiml}"
    );
    assert_eq!(status_now().await, Status::Resolved);
});

with_fakes!(teams_gets_an_adaptive_card, |app, fakes| {
    setup(&app, "carol", "teams", &fakes.teams_url("ops-channel")).await;
    let engine = engine(&app, &fakes);
    let id = declare(&app).await;
    engine.tick().await.unwrap();

    assert_eq!(fakes.rejected(), Vec::<String>::new());
    let got = fakes.got(Provider::Teams);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/teams/ops-channel");
    assert!(got[0].content_type.starts_with("application/json"));
    let m = &got[0].json;
    assert_eq!(m["type"], "message");
    let att = &m["attachments"][0];
    assert_eq!(att["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(att["contentUrl"], Value::Null);
    let card = &att["content"];
    assert_eq!(card["$schema"], "http://adaptivecards.io/schemas/adaptive-card.json");
    assert_eq!(
        (card["type"].as_str(), card["version"].as_str()),
        (Some("AdaptiveCard"), Some("1.4"))
    );
    let title = &card["body"][0];
    assert_eq!(
        (&title["type"], &title["weight"], &title["size"], &title["wrap"]),
        (&json!("TextBlock"), &json!("Bolder"), &json!("Medium"), &json!(true))
    );
    assert!(title["text"].as_str().unwrap().contains("API returning 500s"));
    let facts: Vec<(String, String)> = card["body"][1]["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["title"].as_str().unwrap().into(), f["value"].as_str().unwrap().into()))
        .collect();
    assert_eq!(card["body"][1]["type"], "FactSet");
    let fact = |t: &str| facts.iter().find(|f| f.0 == t).map(|f| f.1.as_str());
    assert_eq!(fact("Severity"), Some("SEV-1"));
    assert_eq!(fact("Status"), Some("triggered"));
    assert_eq!(fact("Incident"), Some(id.as_str()));
    assert_eq!(fact("Services"), Some("api, db"));
    assert!(fact("Next update").is_some());
    assert_eq!(fact("Paged"), Some("carol Example (on-call)"));
    let body = &card["body"][2];
    assert_eq!((&body["type"], &body["wrap"]), (&json!("TextBlock"), &json!(true)));
    assert!(body["text"].as_str().unwrap().contains(&id));
    assert_eq!(
        card["actions"],
        json!([{"type": "Action.OpenUrl", "title": format!("Open {id}"), "url": format!("{PUBLIC}/api/v1/incidents/{id}")}])
    );
    assert_eq!(only_notification(&app, &id).await.state, "delivered");
});

/// Queue a stakeholder message of this type for the incident on `pagerduty`.
async fn enqueue_pd(app: &TestApp, id: &str, event_type: &str, routing_key: &str) {
    enqueue(app, id, event_type, "pagerduty", routing_key).await
}

/// Queue an `incident.updated` stakeholder message on this channel.
async fn enqueue_message(app: &TestApp, id: &str, channel: &str, address: &str) {
    enqueue(app, id, types::UPDATED, channel, address).await
}

async fn enqueue(app: &TestApp, id: &str, event_type: &str, channel: &str, address: &str) {
    let queued = notifications(app, id).await.len();
    let inc = app.client.incident(id).await.unwrap();
    let env = Envelope {
        event_type: event_type.into(),
        idempotency_key: format!("{id}:{event_type}:{channel}:{queued}"),
        incident: EnvelopeIncident::of(&inc, Some(PUBLIC)),
        message: Rendered {
            name: "status-update".into(),
            subject: format!("[{}] Update: {}", inc.severity, inc.title),
            body: "Progress".into(),
            short: "short".into(),
        },
        sent_at: app.clock_now(),
        reason: event_type.trim_start_matches("incident.").into(),
        user: None,
        policy: None,
        level: None,
        level_name: None,
        round: None,
        update_due: None,
        destination: Some(format!("{channel}-destination")),
        unsubscribe_url: None,
    };
    app.store
        .enqueue_notifications(
            id,
            &[NewNotification {
                idempotency_key: env.idempotency_key.clone(),
                user_id: String::new(),
                channel: channel.into(),
                contact: format!("{channel}-destination"),
                address: address.into(),
                body: env.to_json(),
                due_at: app.clock_now(),
                cancel_on_ack: false,
                message: true,
            }],
            app.clock_now(),
        )
        .await
        .unwrap();
}

with_fakes!(
    pagerduty_trigger_acknowledge_resolve_share_the_dedup_key,
    |app, fakes| {
        setup(&app, "pd-bridge", "pagerduty", ROUTING_KEY).await;
        let engine = engine(&app, &fakes);
        let id = declare(&app).await;
        engine.tick().await.unwrap();
        let got = fakes.got(Provider::PagerDuty);
        assert_eq!(got.len(), 1);
        let t = &got[0].json;
        assert_eq!(
            (
                t["routing_key"].as_str(),
                t["event_action"].as_str(),
                t["dedup_key"].as_str()
            ),
            (Some(ROUTING_KEY), Some("trigger"), Some(id.as_str()))
        );
        let p = &t["payload"];
        assert!(p["summary"].as_str().unwrap().contains("API returning 500s"), "{p}");
        assert_eq!(
            (p["source"].as_str(), p["severity"].as_str()),
            (Some("klaxon"), Some("critical"))
        );
        assert_eq!(
            p["timestamp"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap(),
            app.clock_now()
        );
        assert_eq!(
            (p["component"].as_str(), p["group"].as_str()),
            (Some("api"), Some("api,db"))
        );
        assert_eq!(p["class"], "incident.paged");
        let details = &p["custom_details"];
        assert_eq!(
            (details["incident"].as_str(), details["status"].as_str()),
            (Some(id.as_str()), Some("triggered"))
        );
        assert_eq!(details["url"], format!("{PUBLIC}/api/v1/incidents/{id}"));
        assert!(
            details["message"]
                .as_str()
                .unwrap()
                .contains(&format!("Incident ID: {id}")),
            "{details}"
        );
        assert_eq!(t["links"][0]["href"], format!("{PUBLIC}/api/v1/incidents/{id}"));
        assert_eq!(
            (t["client"].as_str(), t["client_url"].as_str()),
            (Some("Klaxon"), Some(PUBLIC))
        );

        app.client.ack(&id, None).await.unwrap();
        enqueue_pd(&app, &id, types::ACKNOWLEDGED, ROUTING_KEY).await;
        engine.tick().await.unwrap();
        app.client.set_status(&id, "resolved", None).await.unwrap();
        enqueue_pd(&app, &id, types::RESOLVED, ROUTING_KEY).await;
        engine.tick().await.unwrap();

        assert_eq!(fakes.rejected(), Vec::<String>::new());
        let got = fakes.got(Provider::PagerDuty);
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[1].json,
            json!({"routing_key": ROUTING_KEY, "event_action": "acknowledge", "dedup_key": id})
        );
        assert_eq!(
            got[2].json,
            json!({"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": id})
        );
        assert!(notifications(&app, &id).await.iter().all(|n| n.state == "delivered"));
    }
);

with_fakes!(throttled_sms_is_retried_after_the_clock_moves, |app, fakes| {
    fakes.set(Provider::Sms, Mode::Throttle(Some(300)));
    setup(&app, "alice", "sms", "+4915112345678").await;
    let engine = engine(&app, &fakes);
    let id = declare(&app).await;
    engine.tick().await.unwrap();
    assert_eq!((fakes.failed(), fakes.got(Provider::Sms).len()), (1, 0));
    let n = only_notification(&app, &id).await;
    assert_eq!((n.state.as_str(), n.attempts), ("pending", 1));
    let error = n.last_error.unwrap();
    assert!(error.contains("429") && error.contains("20429"), "{error}");
    assert_eq!(
        n.due_at,
        app.clock_now() + jiff::SignedDuration::from_secs(300),
        "Retry-After is honoured"
    );

    fakes.set(Provider::Sms, Mode::Up);
    engine.tick().await.unwrap();
    app.advance(4);
    engine.tick().await.unwrap();
    assert_eq!(fakes.got(Provider::Sms).len(), 0, "not before Retry-After");
    app.advance(1);
    engine.tick().await.unwrap();
    assert_eq!(fakes.got(Provider::Sms).len(), 1);
    let n = only_notification(&app, &id).await;
    assert_eq!((n.state.as_str(), n.attempts), ("delivered", 2));
});

with_fakes!(refusals_are_permanent_and_outages_are_retried, |app, fakes| {
    // Twilio 400 (invalid number): dead at once, with Twilio's error code.
    fakes.set(Provider::Sms, Mode::Refuse(400));
    setup(&app, "alice", "sms", "+4915112345678").await;
    let engine = engine(&app, &fakes);
    let id = declare(&app).await;
    engine.tick().await.unwrap();
    let n = only_notification(&app, &id).await;
    assert_eq!((n.state.as_str(), n.attempts), ("dead", 1));
    assert!(n.last_error.as_deref().unwrap().contains("21211"), "{:?}", n.last_error);

    // PagerDuty 400: dead; 503: retried, then delivered.
    fakes.set(Provider::PagerDuty, Mode::Refuse(400));
    enqueue_pd(&app, &id, types::UPDATED, ROUTING_KEY).await;
    engine.tick().await.unwrap();
    let pd = |list: Vec<klaxon_domain::wire::Notification>| {
        list.into_iter()
            .filter(|n| n.channel == "pagerduty")
            .collect::<Vec<_>>()
    };
    let list = pd(notifications(&app, &id).await);
    assert_eq!((list[0].state.as_str(), list[0].attempts), ("dead", 1));
    assert!(list[0].last_error.as_deref().unwrap().contains("invalid event"));

    fakes.set(Provider::PagerDuty, Mode::Down);
    enqueue_pd(&app, &id, types::SEVERITY_CHANGED, ROUTING_KEY).await;
    engine.tick().await.unwrap();
    let list = pd(notifications(&app, &id).await);
    let retried = list.iter().find(|n| n.state == "pending").expect("a pending retry");
    assert_eq!(retried.attempts, 1);
    fakes.set(Provider::PagerDuty, Mode::Up);
    app.advance(1);
    engine.tick().await.unwrap();
    assert_eq!(fakes.got(Provider::PagerDuty).len(), 1);
    assert_eq!(
        fakes.got(Provider::PagerDuty)[0].json["payload"]["class"],
        "incident.severity_changed"
    );
    assert_eq!(fakes.rejected(), Vec::<String>::new());
});

with_fakes!(teams_throttling_and_refusal, |app, fakes| {
    fakes.set(Provider::Teams, Mode::Throttle(Some(120)));
    setup(&app, "carol", "teams", &fakes.teams_url("ops")).await;
    let engine = engine(&app, &fakes);
    let id = declare(&app).await;
    engine.tick().await.unwrap();
    let n = only_notification(&app, &id).await;
    assert_eq!((n.state.as_str(), n.attempts), ("pending", 1));
    fakes.set(Provider::Teams, Mode::Refuse(400));
    app.advance(2);
    engine.tick().await.unwrap();
    let n = only_notification(&app, &id).await;
    assert_eq!((n.state.as_str(), n.attempts), ("dead", 2));
    let error = n.last_error.unwrap();
    assert!(error.contains("400") && error.contains("127.0.0.1"), "{error}");
    assert!(!error.contains("teams/ops"), "the secret URL is not logged: {error}");

    // Legacy connectors: 200 with a failure text; a throttled one is retried, others are dead.
    for code in ["429", "413"] {
        let text =
            format!("Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error {code}");
        fakes.set(Provider::Teams, Mode::Legacy200(Box::leak(text.into_boxed_str())));
        enqueue_message(&app, &id, "teams", &fakes.teams_url("ops")).await;
        engine.tick().await.unwrap();
    }
    let list = notifications(&app, &id).await;
    let state = |code: &str| {
        let n = list
            .iter()
            .find(|n| {
                n.last_error
                    .as_deref()
                    .unwrap_or("")
                    .contains(&format!("HTTP error {code}"))
            })
            .unwrap_or_else(|| panic!("no notification failed with {code}: {list:?}"));
        (n.state.clone(), n.attempts)
    };
    assert_eq!(state("429"), ("pending".to_string(), 1));
    assert_eq!(state("413"), ("dead".to_string(), 1));
    assert!(fakes.got(Provider::Teams).is_empty());
});

/// A slow provider times out (the request's timeout, not the fake's sleep, decides) and is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_twilio_times_out_and_is_retried() {
    let fakes = Fakes::start().await;
    let app = spawn("sqlite", fakes.channels()).await;
    fakes.set(Provider::Call, Mode::Slow(std::time::Duration::from_secs(3)));
    setup(&app, "bob", "voice", "+4915112345679").await;
    let mut cfg = fakes.channels();
    cfg.timeout = Some(std::time::Duration::from_millis(500));
    let engine = app.engine_with("n1", &cfg, Some(PUBLIC));
    let id = declare(&app).await;
    engine.tick().await.unwrap();
    let n = only_notification(&app, &id).await;
    assert_eq!((n.state.as_str(), n.attempts), ("pending", 1), "{:?}", n.last_error);
    fakes.set(Provider::Call, Mode::Up);
    app.advance(1);
    engine.tick().await.unwrap();
    assert_eq!(only_notification(&app, &id).await.state, "delivered");
}

/// Wire compatibility: Klaxon A forwards to Klaxon B's PagerDuty-compatible
/// `/v2/enqueue`; B opens, acknowledges and resolves its own incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_forwarding_drives_another_klaxon() {
    let b = TestApp::spawn("sqlite").await;
    let key = b
        .client
        .create_integration(&CreateIntegration {
            name: "klaxon-a".into(),
            format: IntegrationFormat::Pagerduty,
        })
        .await
        .unwrap()
        .key;
    let fakes = Fakes::start().await;
    let a = spawn("sqlite", fakes.channels()).await;
    setup(&a, "pd-bridge", "pagerduty", &key).await;
    let mut cfg = fakes.channels();
    cfg.pagerduty.events_url = format!("{}/v2/enqueue", b.base);
    let engine = a.engine_with("n1", &cfg, Some(PUBLIC));
    let id = declare(&a).await;
    engine.tick().await.unwrap();
    assert_eq!(only_notification(&a, &id).await.state, "delivered");
    // B answered once the event was committed; it applies it next.
    b.settled().await;
    let on_b = b.client.list(&IncidentQuery::default()).await.unwrap().items;
    assert_eq!(on_b.len(), 1);
    assert_eq!(on_b[0].severity, "SEV-1", "critical maps back to SEV-1");
    assert!(on_b[0].title.contains("API returning 500s"), "{}", on_b[0].title);
    assert_eq!(on_b[0].status, Status::Triggered);

    enqueue_pd(&a, &id, types::ACKNOWLEDGED, &key).await;
    engine.tick().await.unwrap();
    b.settled().await;
    assert_eq!(
        b.client.incident(&on_b[0].id).await.unwrap().status,
        Status::Acknowledged
    );
    enqueue_pd(&a, &id, types::RESOLVED, &key).await;
    engine.tick().await.unwrap();
    b.settled().await;
    assert_eq!(b.client.incident(&on_b[0].id).await.unwrap().status, Status::Resolved);
    assert!(notifications(&a, &id).await.iter().all(|n| n.state == "delivered"));
}

/// The ```yaml blocks of a channel page, by their first line (`# klaxon.yaml`, `# alice.yaml`).
fn yaml_blocks(doc: &str) -> Vec<(String, String)> {
    doc.split("```yaml\n")
        .skip(1)
        .filter_map(|r| r.split("```").next())
        .map(|b| {
            (
                b.lines().next().unwrap_or("").trim_start_matches("# ").to_string(),
                b.to_string(),
            )
        })
        .collect()
}

/// Every configuration example of the three pages passes `klaxon config check`
/// and builds its channels; every person example is accepted by the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_examples_are_valid() {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        channels: klaxon_engine::ChannelsConfig,
    }
    let app = TestApp::spawn("sqlite").await;
    let dir = tempfile::tempdir().unwrap();
    let docs = [
        ("sms-voice.md", include_str!("../../../../docs/channels/sms-voice.md")),
        ("teams.md", include_str!("../../../../docs/channels/teams.md")),
        ("pagerduty.md", include_str!("../../../../docs/channels/pagerduty.md")),
    ];
    let (mut configs, mut people) = (0, 0);
    for (name, doc) in docs {
        for (file, yaml) in yaml_blocks(doc) {
            if file == "klaxon.yaml" {
                configs += 1;
                let path = dir.path().join(format!("{name}.yaml"));
                std::fs::write(&path, &yaml).unwrap();
                let out = std::process::Command::new(crate::cli::BIN)
                    .args(["config", "check", path.to_str().unwrap()])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
                let mut f: File = serde_saphyr::from_str(&yaml).unwrap();
                if let Some(t) = f.channels.twilio.as_mut() {
                    assert_eq!(t.auth_token, None, "{name}: the token belongs in the environment");
                    t.auth_token = Some("from-the-environment".into());
                }
                let deps = klaxon_engine::ChannelDeps {
                    store: app.store.clone(),
                    public_url: Some(PUBLIC.into()),
                    webhook_secret: "s".into(),
                };
                let built = klaxon_engine::channels::build(&f.channels, &deps).unwrap();
                let kinds: Vec<&str> = built.kinds().collect();
                assert!(kinds.contains(&"teams") && kinds.contains(&"pagerduty"), "{kinds:?}");
                assert_eq!(kinds.contains(&"sms"), name == "sms-voice.md", "{kinds:?}");
            } else {
                people += 1;
                let user: Value = serde_saphyr::from_str(&yaml).unwrap();
                let id = user["id"].as_str().unwrap().to_string();
                app.client
                    .put_document("users", &id, &user)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: {file}: {e}"));
            }
        }
    }
    assert_eq!((configs, people), (3, 3));
}

/// A PagerDuty communication destination follows the incident: declared →
/// trigger, acknowledged → acknowledge, resolved → resolve, one dedup key.
async fn pagerduty_destination_follows_the_incident(backend: &'static str) {
    let fakes = Fakes::start().await;
    let yaml = format!(
        "destinations:\n  - {{name: pd, kind: pagerduty, address: {ROUTING_KEY}}}\nrules:\n  - {{severities: [SEV-1], notify: [pd]}}\n"
    );
    let mut comms: klaxon_domain::communication::Communication = serde_saphyr::from_str(&yaml).unwrap();
    let mut cat = Catalog::default();
    comms.validate(&cat).unwrap();
    cat.communication = comms;
    let app = TestApp::spawn_with(backend, cat, AuthSettings::default()).await;
    let engine = engine(&app, &fakes);
    let id = app
        .client
        .declare(&DeclareIncident {
            title: "Checkout failing".into(),
            severity: Some("SEV-1".into()),
            services: vec!["checkout".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    engine.tick().await.unwrap();
    app.client.ack(&id, Some("on it".into())).await.unwrap();
    engine.tick().await.unwrap();
    app.client
        .set_status(&id, "resolved", Some("rolled back".into()))
        .await
        .unwrap();
    engine.tick().await.unwrap();

    assert_eq!(fakes.rejected(), Vec::<String>::new());
    let got = fakes.got(Provider::PagerDuty);
    let actions: Vec<(&str, &str)> = got
        .iter()
        .map(|g| {
            (
                g.json["event_action"].as_str().unwrap(),
                g.json["dedup_key"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("trigger", id.as_str()),
            ("acknowledge", id.as_str()),
            ("resolve", id.as_str())
        ]
    );
    let trigger = &got[0].json["payload"];
    assert_eq!(trigger["class"], "incident.declared");
    assert_eq!(
        (trigger["severity"].as_str(), trigger["component"].as_str()),
        (Some("critical"), Some("checkout"))
    );
    assert!(trigger["summary"].as_str().unwrap().contains("Checkout failing"));
}

mod pagerduty_destination {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::pagerduty_destination_follows_the_incident("sqlite").await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::pagerduty_destination_follows_the_incident("postgres").await
    }
}
