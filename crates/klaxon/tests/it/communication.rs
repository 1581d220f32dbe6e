//! Communication rules: who hears what per severity, through the outbox, to
//! a real loopback receiver; time moves only on the manual clock.

use klaxon_domain::communication::Communication;
use klaxon_domain::wire::{DeclareIncident, NotificationQuery, PostUpdateRequest};
use serde_json::Value;

use crate::receiver::{Mode, Receiver};
use crate::support::TestApp;

/// eng hears SEV-1..3, stakeholders SEV-1 (public updates only), pd forwarding on SEV-1.
async fn app(backend: &'static str, rx: &Receiver) -> TestApp {
    let yaml = format!(
        "destinations:\n  - {{name: eng, kind: webhook, address: \"{}\"}}\n  - {{name: stakeholders, kind: webhook, address: \"{}\"}}\nrules:\n  - {{severities: [SEV-1, SEV-2, SEV-3], notify: [eng]}}\n  - {{severities: [SEV-1], notify: [stakeholders], public_updates_only: true}}\n",
        rx.url("eng"),
        rx.url("stakeholders")
    );
    let mut comms: Communication = serde_saphyr::from_str(&yaml).unwrap();
    let mut cat = klaxon_domain::config::Catalog::default();
    comms.validate(&cat).unwrap();
    cat.communication = comms;
    TestApp::spawn_with(backend, cat, klaxon_http::AuthSettings::default()).await
}

async fn declare(app: &TestApp, title: &str, sev: &str) -> String {
    app.client
        .declare(&DeclareIncident {
            title: title.into(),
            severity: Some(sev.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id
}

/// (path, type, template) of everything received so far.
fn got(rx: &Receiver) -> Vec<(String, String, String)> {
    rx.received()
        .iter()
        .map(|r| {
            let v: Value = r.json();
            (
                r.path.clone(),
                v["type"].as_str().unwrap().to_string(),
                v["message"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Deliveries of one batch run concurrently: compare in a fixed order.
fn sorted(mut v: Vec<(String, String, String)>) -> Vec<(String, String, String)> {
    v.sort();
    v
}

fn t(path: &str, ty: &str, tpl: &str) -> (String, String, String) {
    (path.into(), ty.into(), tpl.into())
}

async fn severity_decides_who_hears_what(app: TestApp, rx: Receiver) {
    let engine = app.engine("node-a");
    let id = declare(&app, "API returning 500s", "SEV-1").await;
    engine.tick().await.unwrap();
    assert_eq!(
        sorted(got(&rx)),
        sorted(vec![
            t("eng", "incident.declared", "initial-notification"),
            t("stakeholders", "incident.declared", "initial-notification")
        ])
    );
    let first = rx.received().iter().find(|r| r.path == "eng").unwrap().json();
    assert_eq!(first["incident"]["id"], id.as_str());
    assert_eq!(first["destination"], "eng");
    assert_eq!(first["message"]["subject"], "[SEV-1] Incident: API returning 500s");
    assert!(
        first["message"]["body"]
            .as_str()
            .unwrap()
            .contains("INCIDENT NOTIFICATION")
    );

    // A private update reaches eng only; a public one both, numbered.
    for (text, public) in [("Rolled back the deploy", false), ("Error rate falling", true)] {
        app.client
            .post_update(
                &id,
                &PostUpdateRequest {
                    message: text.into(),
                    public,
                    status: None,
                },
            )
            .await
            .unwrap();
    }
    engine.tick().await.unwrap();
    let all = got(&rx);
    assert_eq!(
        sorted(all[2..].to_vec()),
        sorted(vec![
            t("eng", "incident.updated", "status-update"),
            t("eng", "incident.updated", "status-update"),
            t("stakeholders", "incident.updated", "status-update")
        ])
    );
    let last = rx
        .received()
        .into_iter()
        .rfind(|r| r.path == "stakeholders")
        .unwrap()
        .json();
    let body = last["message"]["body"].as_str().unwrap();
    assert!(
        body.contains("INCIDENT UPDATE #2") && body.contains("Error rate falling"),
        "{body}"
    );

    // The resolution goes out although the incident is resolved (pages would be cancelled).
    app.client
        .set_status(&id, "resolved", Some("Fixed by the rollback".into()))
        .await
        .unwrap();
    engine.tick().await.unwrap();
    let all = got(&rx);
    assert_eq!(
        sorted(all[5..].to_vec()),
        sorted(vec![
            t("eng", "incident.resolved", "resolution"),
            t("stakeholders", "incident.resolved", "resolution")
        ])
    );
    let res = rx.received().into_iter().rfind(|r| r.path == "eng").unwrap().json();
    assert!(
        res["message"]["body"]
            .as_str()
            .unwrap()
            .contains("Fixed by the rollback")
    );
    let notes = app
        .client
        .notifications(&NotificationQuery {
            incident: Some(id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(notes.len(), 7);
    assert!(notes.iter().all(|n| n.purpose == "message" && n.state == "delivered"));
    // Every delivery is on the timeline.
    let kinds = crate::support::kinds(&app, &id).await;
    assert_eq!(kinds.iter().filter(|k| *k == "notified").count(), 7, "{kinds:?}");

    // SEV-4: ticket only. Nobody hears anything, no timer is armed.
    let before = rx.received().len();
    let quiet = declare(&app, "Typo on the pricing page", "SEV-4").await;
    engine.tick().await.unwrap();
    assert_eq!(rx.received().len(), before);
    assert!(
        app.client
            .notifications(&NotificationQuery {
                incident: Some(quiet),
                ..Default::default()
            })
            .await
            .unwrap()
            .is_empty()
    );

    // Escalation requests and severity changes reach the SEV-2 audience;
    // alice, on call, is paged with the Escalation Request.
    let alice = serde_json::json!({"id": "alice", "name": "Alice", "email": "alice@example.com",
        "contact_methods": [{"name": "hook", "kind": "webhook", "address": rx.url("alice")}]});
    app.client.put_document("users", "alice", &alice).await.unwrap();
    let policy = serde_json::json!({"id": "web", "levels": [
        {"name": "on call", "targets": [{"user": "alice"}], "delay_minutes": 5},
        {"name": "again", "targets": [{"user": "alice"}], "delay_minutes": 5}]});
    app.client
        .put_document("escalation-policies", "web", &policy)
        .await
        .unwrap();
    let sev2 = app
        .client
        .declare(&DeclareIncident {
            title: "Checkout slow".into(),
            severity: Some("SEV-2".into()),
            escalation_policy: Some("web".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    engine.tick().await.unwrap();
    app.client
        .set_severity(&sev2, "SEV-1", Some("conversion dropping".into()))
        .await
        .unwrap();
    app.client
        .escalate(&sev2, Some("need the DB team".into()))
        .await
        .unwrap();
    engine.tick().await.unwrap();
    let all = got(&rx);
    assert_eq!(
        sorted(all[before..].to_vec()),
        sorted(vec![
            t("alice", "incident.paged", "initial-notification"),
            t("alice", "incident.paged", "escalation-request"),
            t("eng", "incident.declared", "initial-notification"),
            // Only the SEV-2 audience heard of the declaration; SEV-1's hears from the change on.
            t("eng", "incident.severity_changed", "internal-update"),
            t("stakeholders", "incident.severity_changed", "internal-update"),
            t("eng", "incident.escalation_requested", "escalation-request"),
            t("stakeholders", "incident.escalation_requested", "escalation-request"),
        ])
    );
    let esc = rx
        .received()
        .into_iter()
        .rfind(|r| r.json()["type"] == "incident.escalation_requested")
        .unwrap()
        .json();
    assert!(esc["message"]["body"].as_str().unwrap().contains("need the DB team"));
}

async fn a_receiver_down_for_ten_minutes_loses_nothing(app: TestApp, rx: Receiver) {
    let engine = app.engine("node-a");
    rx.set(Mode::Down);
    let id = declare(&app, "Storage full", "SEV-1").await;
    for i in 0..3 {
        app.client
            .post_update(
                &id,
                &PostUpdateRequest {
                    message: format!("step {i}"),
                    public: true,
                    status: None,
                },
            )
            .await
            .unwrap();
    }
    for _ in 0..10 {
        engine.tick().await.unwrap();
        app.advance(1);
    }
    assert!(rx.received().is_empty());
    assert!(rx.refused() >= 8, "retried while down: {}", rx.refused());
    rx.set(Mode::Up);
    for _ in 0..30 {
        app.advance(1);
        engine.tick().await.unwrap();
    }
    let got = rx.received();
    assert_eq!(got.len(), 8, "declared + 3 updates, to two destinations");
    let mut keys: Vec<&str> = got.iter().map(|r| r.idempotency_key.as_str()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 8, "no message delivered twice");
}

macro_rules! comms_test {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let rx = Receiver::start().await;
                super::$name(app("sqlite", &rx).await, rx).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let rx = Receiver::start().await;
                super::$name(app("postgres", &rx).await, rx).await
            }
        }
    };
}

comms_test!(severity_decides_who_hears_what);
comms_test!(a_receiver_down_for_ten_minutes_loses_nothing);
