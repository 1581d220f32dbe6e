//! The real Prometheus Alertmanager (Debian's prometheus-alertmanager) sends
//! to Klaxon's webhook. `.ci/run` installs it; without it this test FAILS.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use klaxon_domain::Status;
use klaxon_domain::wire::{CreateIntegration, IncidentQuery, IntegrationFormat};
use serde_json::json;

use crate::both;

struct Alertmanager {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn start_alertmanager(webhook: &str) -> Alertmanager {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "route:\n  receiver: klaxon\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
         receivers:\n  - name: klaxon\n    webhook_configs:\n      - url: '{webhook}'\n        send_resolved: true\n"
    );
    std::fs::write(dir.path().join("alertmanager.yml"), config).expect("config");
    let port = free_port();
    let bin = std::env::var("KLAXON_ALERTMANAGER_BIN").unwrap_or_else(|_| "prometheus-alertmanager".into());
    let child = Command::new(&bin)
        .arg(format!(
            "--config.file={}",
            dir.path().join("alertmanager.yml").display()
        ))
        .arg(format!("--storage.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin} (apt-get install prometheus-alertmanager): {e}"));
    Alertmanager {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// Poll until `check` holds; Alertmanager works on its own schedule.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

both!(real_alertmanager_opens_one_grouped_incident_then_resolves_it, |app| {
    let integ = app
        .client
        .create_integration(&CreateIntegration {
            name: "alertmanager".into(),
            format: IntegrationFormat::Alertmanager,
        })
        .await
        .unwrap();
    let am = start_alertmanager(&format!("{}{}", app.base, integ.ingest_path));
    let http = reqwest::Client::new();
    eventually("alertmanager to start", || {
        let http = http.clone();
        let url = format!("{}/-/ready", am.url);
        async move {
            http.get(url)
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false)
        }
    })
    .await;
    #[allow(clippy::disallowed_methods)]
    let now = jiff::Timestamp::now();
    let alerts = |ends: jiff::Timestamp| {
        json!([
            {"labels": {"alertname": "HighErrorRate", "severity": "critical", "service": "api", "instance": "api-1"},
             "annotations": {"summary": "Error rate above 5% for 5 minutes"}, "startsAt": now.to_string(), "endsAt": ends.to_string()},
            {"labels": {"alertname": "HighErrorRate", "severity": "critical", "service": "api", "instance": "api-2"},
             "annotations": {"summary": "Error rate above 5% for 5 minutes"}, "startsAt": now.to_string(), "endsAt": ends.to_string()}
        ])
    };
    let later = now.checked_add(jiff::SignedDuration::from_hours(1)).unwrap();
    let r = http
        .post(format!("{}/api/v2/alerts", am.url))
        .json(&alerts(later))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());

    let client = app.client.clone();
    eventually("one incident with both alerts", || {
        let client = client.clone();
        async move {
            let page = client.list(&IncidentQuery::default()).await.unwrap();
            match page.items.first() {
                Some(i) => {
                    client.alerts(&[("incident", i.id.clone())]).await.unwrap()["items"]
                        .as_array()
                        .unwrap()
                        .len()
                        == 2
                }
                None => false,
            }
        }
    })
    .await;
    let list = app.client.list(&IncidentQuery::default()).await.unwrap().items;
    assert_eq!(list.len(), 1, "Alertmanager's group is one incident");
    let inc = &list[0];
    assert_eq!((inc.severity.as_str(), inc.status), ("SEV-1", Status::Triggered));

    // Resolve them at Alertmanager; it tells Klaxon, which resolves the incident.
    #[allow(clippy::disallowed_methods)]
    let past = jiff::Timestamp::now();
    let r = http
        .post(format!("{}/api/v2/alerts", am.url))
        .json(&alerts(past))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let id = inc.id.clone();
    eventually("the incident to resolve", || {
        let client = client.clone();
        let id = id.clone();
        async move { client.incident(&id).await.unwrap().status == Status::Resolved }
    })
    .await;
    assert_eq!(app.client.list(&IncidentQuery::default()).await.unwrap().items.len(), 1);
    assert!(app.client.verify(&inc.id).await.unwrap().ok);
});
