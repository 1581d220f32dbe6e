//! The public status page and its Statuspage-compatible JSON, through the
//! real server: what shows during an incident, what never shows, caching.

use std::collections::BTreeSet;

use klaxon_domain::status_page::{ComponentDef, FooterLink, StatusPageConfig};
use klaxon_domain::wire::{DeclareIncident, PostUpdateRequest};
use serde_json::Value;

use crate::support::TestApp;

fn page() -> StatusPageConfig {
    let comp = |id: &str, name: &str, group: Option<&str>| ComponentDef {
        id: id.into(),
        name: name.into(),
        group: group.map(str::to_string),
        description: None,
        services: vec![],
        only_show_if_degraded: false,
    };
    StatusPageConfig {
        name: "Acme Status".into(),
        url: Some("https://status.example.com".into()),
        footer_links: vec![FooterLink {
            text: "Support".into(),
            url: "https://example.com/support".into(),
        }],
        components: vec![
            comp("api", "Public API", Some("Core platform")),
            comp("auth", "Login", Some("Core platform")),
            comp("web", "Website", None),
        ],
        ..Default::default()
    }
}

async fn get(app: &TestApp, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let resp = reqwest::get(format!("{}{path}", app.base)).await.unwrap();
    let code = resp.status().as_u16();
    let headers = resp.headers().clone();
    (code, resp.text().await.unwrap(), headers)
}

async fn json(app: &TestApp, path: &str) -> Value {
    let (code, body, h) = get(app, path).await;
    assert_eq!(code, 200, "{path}: {body}");
    assert_eq!(h["content-type"], "application/json");
    serde_json::from_str(&body).unwrap()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Statuspage's documented field sets (reference/wire-formats.md); Klaxon may add only these.
const PAGE: &[&str] = &["id", "name", "url", "time_zone", "updated_at"];
const COMPONENT: &[&str] = &[
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "position",
    "description",
    "showcase",
    "start_date",
    "group_id",
    "page_id",
    "group",
    "only_show_if_degraded",
];
const INCIDENT: &[&str] = &[
    "id",
    "name",
    "status",
    "impact",
    "created_at",
    "updated_at",
    "monitoring_at",
    "resolved_at",
    "shortlink",
    "started_at",
    "page_id",
    "incident_updates",
    "components",
];
const UPDATE: &[&str] = &[
    "id",
    "status",
    "body",
    "incident_id",
    "created_at",
    "updated_at",
    "display_at",
    "affected_components",
    "deliver_notifications",
    "tweet_id",
    "custom_tweet",
];

fn has_fields(v: &Value, documented: &[&str], extensions: &[&str]) {
    let got = keys(v);
    let want = set(documented);
    assert!(
        want.is_subset(&got),
        "missing {:?} in {v}",
        want.difference(&got).collect::<Vec<_>>()
    );
    let extra: Vec<&String> = got.difference(&want).collect();
    assert!(
        extra.iter().all(|k| extensions.contains(&k.as_str())),
        "undocumented fields {extra:?}"
    );
}

crate::status_both!(an_outage_shows_and_clears, |app| {
    app.refresh_status_page().await;
    let s = json(&app, "/api/v2/status.json").await;
    assert_eq!(s["status"]["indicator"], "none");
    assert_eq!(s["status"]["description"], "All Systems Operational");
    has_fields(&s["page"], PAGE, &[]);
    assert_eq!(s["page"]["name"], "Acme Status");

    // Declared, not yet published: nothing shows. A private incident never shows.
    let id = app
        .client
        .declare(&DeclareIncident {
            title: "API returning 500s".into(),
            severity: Some("SEV-1".into()),
            services: vec!["api".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let private = app
        .client
        .declare(&DeclareIncident {
            title: "Secret thing".into(),
            severity: Some("SEV-1".into()),
            services: vec!["web".into()],
            private: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    for (inc, text) in [
        (&id, "We are investigating elevated errors on the API."),
        (&private, "internal"),
    ] {
        app.client
            .post_update(
                inc,
                &PostUpdateRequest {
                    message: text.into(),
                    public: true,
                    status: None,
                },
            )
            .await
            .unwrap();
    }
    app.refresh_status_page().await;
    let sum = json(&app, "/api/v2/summary.json").await;
    assert_eq!(sum["status"]["indicator"], "critical", "{sum}");
    assert_eq!(sum["status"]["description"], "Partial System Outage");
    let comps = sum["components"].as_array().unwrap();
    let status_of = |id: &str| comps.iter().find(|c| c["id"] == id).unwrap()["status"].clone();
    assert_eq!(status_of("api"), "major_outage");
    assert_eq!(status_of("auth"), "operational");
    assert_eq!(
        status_of("web"),
        "operational",
        "a private incident changes no component"
    );
    for c in comps {
        has_fields(c, COMPONENT, &["components"]);
    }
    let group = comps.iter().find(|c| c["group"] == true).unwrap();
    assert_eq!(group["name"], "Core platform");
    assert_eq!(group["components"], serde_json::json!(["api", "auth"]));
    assert_eq!(group["status"], "major_outage");
    let incidents = sum["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{sum}");
    let inc = &incidents[0];
    has_fields(inc, INCIDENT, &["next_update_at", "workaround"]);
    assert_eq!(inc["id"], id.as_str());
    assert_eq!(inc["impact"], "critical");
    assert_eq!(inc["status"], "investigating");
    assert_eq!(
        inc["shortlink"],
        format!("https://status.example.com/status/incidents/{id}")
    );
    assert!(inc["next_update_at"].is_string(), "SEV-1 cadence gives a next update");
    let upd = &inc["incident_updates"][0];
    has_fields(upd, UPDATE, &[]);
    assert_eq!(upd["body"], "We are investigating elevated errors on the API.");
    assert_eq!(upd["affected_components"][0]["code"], "api");
    assert_eq!(upd["affected_components"][0]["new_status"], "major_outage");
    assert_eq!(
        json(&app, "/api/v2/incidents/unresolved.json").await["incidents"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The HTML page: banner, component, update, next update; no JavaScript.
    let (code, html, h) = get(&app, "/status").await;
    assert_eq!(code, 200);
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    for want in [
        "Partial System Outage",
        "API returning 500s",
        "We are investigating elevated errors on the API.",
        "Next update:",
        "Public API",
        "Major outage",
        "Core platform",
        "role=\"banner\"",
        "role=\"main\"",
        "https://example.com/support",
    ] {
        assert!(html.contains(want), "/status lacks {want:?}");
    }
    assert!(
        !html.contains("Secret thing") && !html.contains("<script"),
        "private incident or script on the page"
    );
    let (code, one, _) = get(&app, &format!("/status/incidents/{id}")).await;
    assert_eq!(code, 200);
    assert!(one.contains("API returning 500s"));
    assert_eq!(get(&app, &format!("/status/incidents/{private}")).await.0, 404);

    // Served from memory with an ETag.
    let etag = h["etag"].to_str().unwrap().to_string();
    let resp = reqwest::Client::new()
        .get(format!("{}/status", app.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 304);

    // Resolved: the page is green again, the incident is history.
    app.client
        .post_update(
            &id,
            &PostUpdateRequest {
                message: "Fixed by rolling back.".into(),
                public: true,
                status: Some("resolved".into()),
            },
        )
        .await
        .unwrap();
    app.refresh_status_page().await;
    let s = json(&app, "/api/v2/summary.json").await;
    assert_eq!(s["status"]["indicator"], "none", "{s}");
    assert!(s["incidents"].as_array().unwrap().is_empty());
    let all = json(&app, "/api/v2/incidents.json").await;
    let hist = &all["incidents"][0];
    assert_eq!(hist["status"], "resolved");
    assert!(hist["resolved_at"].is_string());
    assert_eq!(hist["incident_updates"][0]["status"], "resolved", "newest update first");
    let (_, html2, h2) = get(&app, "/status").await;
    assert_ne!(h2["etag"], etag, "a change gives a new ETag");
    assert!(html2.contains("All Systems Operational"));
    let (_, atom, h3) = get(&app, "/status/feed.atom").await;
    assert_eq!(h3["content-type"], "application/atom+xml");
    assert!(
        atom.contains("<feed") && atom.contains(&id) && atom.contains("Fixed by rolling back."),
        "{atom}"
    );
});

crate::status_both!(maintenance_windows_show_as_scheduled_then_in_progress, |app| {
    let start = app
        .clock_now()
        .checked_add(jiff::SignedDuration::from_hours(2))
        .unwrap();
    let end = start.checked_add(jiff::SignedDuration::from_hours(1)).unwrap();
    let (code, body) = app
        .raw(
            "POST",
            "/api/v1/silences",
            Some(crate::support::ADMIN),
            Some(
                serde_json::json!({"kind": "maintenance", "matchers": ["service=auth"], "starts_at": start,
                    "ends_at": end, "comment": "Database upgrade\nLogins may be slow."})
                .to_string()
                .into_bytes(),
            ),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    app.refresh_status_page().await;
    let up = json(&app, "/api/v2/scheduled-maintenances/upcoming.json").await;
    let m = &up["scheduled_maintenances"][0];
    assert_eq!(m["name"], "Database upgrade");
    assert_eq!(m["status"], "scheduled");
    assert_eq!(m["components"][0]["id"], "auth");
    assert!(m["scheduled_for"].is_string() && m["scheduled_until"].is_string());
    assert!(
        json(&app, "/api/v2/scheduled-maintenances/active.json").await["scheduled_maintenances"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    app.advance(150);
    app.refresh_status_page().await;
    let sum = json(&app, "/api/v2/summary.json").await;
    assert_eq!(sum["scheduled_maintenances"][0]["status"], "in_progress");
    let auth = sum["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "auth")
        .unwrap()
        .clone();
    assert_eq!(auth["status"], "under_maintenance");
    assert_eq!(sum["status"]["indicator"], "maintenance");
    let (_, html, _) = get(&app, "/status").await;
    assert!(html.contains("Database upgrade") && html.contains("Under maintenance"));
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_404_and_config_errors_name_the_field() {
    let app = TestApp::spawn_status("sqlite", Default::default(), page()).await;
    app.refresh_status_page().await;
    assert_eq!(get(&app, "/status/nope").await.0, 404);
    assert_eq!(get(&app, "/api/v2/nope.json").await.0, 404);
    let mut bad = page();
    bad.components[2].id = "api".into();
    assert_eq!(bad.validate().unwrap_err().field, "components[2].id");
}

crate::status_both!(components_set_by_hand_win_until_cleared, |app| {
    let id = app
        .client
        .declare(&DeclareIncident {
            title: "Login errors".into(),
            severity: Some("SEV-2".into()),
            services: vec!["auth".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    app.client
        .post_update(
            &id,
            &PostUpdateRequest {
                message: "Some logins fail.".into(),
                public: true,
                status: None,
            },
        )
        .await
        .unwrap();
    // Through the real CLI: set, show, clear.
    let url = app.base.clone();
    let run = move |args: Vec<String>| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                crate::cli::klaxon(&url, Some(crate::support::ADMIN), &a)
            })
            .await
            .unwrap()
        }
    };
    let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (code, out, err) = run(args(&[
        "status-page",
        "set",
        "auth",
        "major_outage",
        "--note",
        "all logins down",
    ]))
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let sum = json(&app, "/api/v2/summary.json").await;
    let auth = sum["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "auth")
        .unwrap()
        .clone();
    assert_eq!(
        auth["status"], "major_outage",
        "the override wins over the SEV-2's partial outage"
    );
    let (code, out, _) = run(args(&["status-page", "show"])).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("auth") && out.contains("major_outage") && out.contains("yes"),
        "{out}"
    );
    let (code, _, _) = run(args(&["status-page", "clear", "auth"])).await;
    assert_eq!(code, 0);
    let sum = json(&app, "/api/v2/summary.json").await;
    let auth = sum["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "auth")
        .unwrap()
        .clone();
    assert_eq!(auth["status"], "partial_outage");

    // Bad input: unknown component 404, unknown status 422 naming the field, viewers 403.
    let (code, body) = app
        .raw(
            "PUT",
            "/api/v1/status-page/components/nope",
            Some(crate::support::ADMIN),
            Some(br#"{"status": "major_outage"}"#.to_vec()),
        )
        .await;
    assert_eq!(code, 404, "{body}");
    let (code, body) = app
        .raw(
            "PUT",
            "/api/v1/status-page/components/api",
            Some(crate::support::ADMIN),
            Some(br#"{"status": "on_fire"}"#.to_vec()),
        )
        .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["error"]["field"], "status", "{body}");
    let viewer = app.client_with_role(klaxon_domain::wire::TokenRole::Viewer).await;
    assert!(viewer.set_component("api", "major_outage", None).await.is_err());
    let sum = json(&app, "/api/v2/summary.json").await;
    let api = sum["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "api")
        .unwrap()
        .clone();
    assert_eq!(api["status"], "operational", "refused requests change nothing");
});

/// Run Debian's headless Chromium on a URL: its serialised DOM, and a
/// screenshot at this window size.
fn chromium(url: &str, screenshot: &std::path::Path, size: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let common = |cmd: &mut std::process::Command| {
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.path().display()),
            &format!("--window-size={size}"),
        ]);
    };
    let mut dump = std::process::Command::new("chromium");
    common(&mut dump);
    let out = dump
        .args(["--dump-dom", url])
        .output()
        .expect("Debian's chromium must be installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "chromium --dump-dom: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut shot = std::process::Command::new("chromium");
    common(&mut shot);
    let s = shot
        .args([&format!("--screenshot={}", screenshot.display()), url])
        .output()
        .expect("chromium");
    assert!(
        s.status.success(),
        "chromium --screenshot: {}",
        String::from_utf8_lossy(&s.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sev1_in_a_real_browser() {
    let app = TestApp::spawn_status("sqlite", Default::default(), page()).await;
    let id = app
        .client
        .declare(&DeclareIncident {
            title: "Checkout unavailable".into(),
            severity: Some("SEV-1".into()),
            services: vec!["api".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    app.client
        .post_update(
            &id,
            &PostUpdateRequest {
                message: "Payments fail for all customers. We are rolling back.".into(),
                public: true,
                status: Some("identified".into()),
            },
        )
        .await
        .unwrap();
    app.refresh_status_page().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("{}/status", app.base);
    for (name, size) in [
        ("status-page-desktop.png", "1280,1400"),
        ("status-page-phone.png", "390,1600"),
    ] {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        let dom = tokio::task::spawn_blocking({
            let (url, path) = (url.clone(), path.clone());
            move || chromium(&url, &path, size)
        })
        .await
        .unwrap();
        for want in [
            "Partial System Outage",
            "Checkout unavailable",
            "Payments fail for all customers. We are rolling back.",
            "Identified",
            "Next update:",
            "Public API",
            "Major outage",
        ] {
            assert!(dom.contains(want), "the browser's DOM lacks {want:?}");
        }
        assert!(
            dom.contains("class=\"major_outage\" title="),
            "today's bar of the API shows the outage"
        );
        let png = std::fs::read(&path).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{name}: {} bytes",
            png.len()
        );
    }
}

/// `status_page.listen`: the real binary serves the page alone on a second address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_can_have_its_own_listener() {
    klaxon_client::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = format!(
        "status_page:\n  name: Own Host Status\n  listen: 127.0.0.1:{port}\n  components:\n    - {{id: api, name: Public API}}\n"
    );
    std::fs::write(dir.path().join("klaxon.yaml"), cfg).unwrap();
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let server = crate::cli::serve_env(
        dir.path(),
        Some(&db),
        Some(crate::support::ADMIN),
        &["--config", "klaxon.yaml"],
        &[],
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let own = format!("http://127.0.0.1:{port}");
    let mut page = None;
    for _ in 0..50 {
        match http.get(format!("{own}/status")).send().await {
            Ok(r) if r.status() == 200 => {
                page = Some(r.text().await.unwrap());
                break;
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    let page = page.expect("the status page answers on its own address");
    assert!(page.contains("Own Host Status") && page.contains("Public API"));
    let root = http.get(format!("{own}/")).send().await.unwrap();
    assert_eq!(root.status().as_u16(), 308);
    assert_eq!(root.headers()["location"], "/status");
    // Only the page: the API is not on this address.
    assert_eq!(
        http.get(format!("{own}/api/v1/incidents"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    // And the page is on the main address too.
    assert_eq!(
        http.get(format!("{}/status", server.url))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

async fn form(app: &TestApp, path: &str, body: &[(&str, &str)]) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", app.base))
        .form(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn public_update(app: &TestApp, id: &str, text: &str, public: bool) {
    app.client
        .post_update(
            id,
            &PostUpdateRequest {
                message: text.into(),
                public,
                status: None,
            },
        )
        .await
        .unwrap();
}

crate::status_both!(subscribers_confirm_then_hear_public_updates_until_they_leave, |app| {
    use klaxon_engine::channels::settings::SmtpTls;
    let mail_dir = tempfile::tempdir().unwrap();
    let pki = crate::email::pki();
    let smtp = crate::email::smtp_server(mail_dir.path(), &pki, "none", 0, None).await;
    let cfg = crate::email::email_cfg(smtp.port, SmtpTls::None, None, None);
    let channels = klaxon_engine::channels::build(
        &cfg,
        &klaxon_engine::ChannelDeps {
            store: app.store.clone(),
            public_url: None,
            webhook_secret: crate::support::WEBHOOK_SECRET.into(),
        },
    )
    .unwrap();
    app.status_page.set_mailer(channels.get("email").unwrap().clone());
    let engine = app.engine_with("node-a", &cfg, None);
    let mails = || crate::email::mails(mail_dir.path());

    // Bad input first: nothing stored, nothing sent.
    assert_eq!(form(&app, "/status/subscribe", &[]).await.0, 400);
    let (code, body) = form(&app, "/status/subscribe", &[("email", "not-an-email")]).await;
    assert_eq!(code, 422);
    assert!(body.contains("email:"), "the page names the field: {body}");
    assert_eq!(form(&app, "/status/subscribe", &[("webhook", "ftp://x")]).await.0, 422);
    assert!(app.store.subscribers().await.unwrap().is_empty());

    // Double opt-in.
    let (code, body) = form(&app, "/status/subscribe", &[("email", "reader@example.com")]).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Check your inbox"));
    let got = mails();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("Subject"), "Confirm your subscription to Acme Status");
    let text = got[0].text();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/status/subscriptions/") && w.ends_with("/confirm"))
        .unwrap_or_else(|| panic!("no confirmation link in {text}"))
        .to_string();
    let path = link.trim_start_matches("https://status.example.com");
    assert!(path.starts_with("/status/subscriptions/"), "{link}");

    // Not confirmed yet: a public update reaches nobody.
    let id = app
        .client
        .declare(&DeclareIncident {
            title: "Search is slow".into(),
            severity: Some("SEV-2".into()),
            services: vec!["api".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    public_update(&app, &id, "Searches take 10 s.", true).await;
    engine.tick().await.unwrap();
    assert_eq!(mails().len(), 1);

    // Opening the link shows a button (scanners change nothing); the POST confirms.
    let (code, page, _) = get(&app, path).await;
    assert_eq!(code, 200);
    assert!(page.contains("<form method=\"post\""), "{page}");
    assert_eq!(app.store.confirmed_subscribers().await.unwrap().len(), 0);
    let (code, body) = form(&app, path, &[]).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Subscribed"));

    // A webhook subscriber is confirmed at once.
    let rx = crate::receiver::Receiver::start().await;
    let (code, body) = form(&app, "/status/subscribe", &[("webhook", &rx.url("subscriber"))]).await;
    assert_eq!(code, 200, "{body}");

    public_update(&app, &id, "We found a slow index and are rebuilding it.", true).await;
    public_update(&app, &id, "internal: the rebuild is at 40 %", false).await;
    engine.tick().await.unwrap();
    let got = mails();
    assert_eq!(got.len(), 2, "one update by email; private updates are not sent");
    let m = &got[1];
    assert_eq!(m.header("To"), "reader@example.com");
    assert!(
        m.text().contains("We found a slow index and are rebuilding it."),
        "{}",
        m.text()
    );
    let unsubscribe = m.header("List-Unsubscribe");
    assert!(unsubscribe.contains("/unsubscribe>"), "{unsubscribe}");
    assert_eq!(m.header("List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
    let hooks = rx.received();
    assert_eq!(hooks.len(), 1);
    let env = hooks[0].json();
    assert_eq!(env["destination"], "status-page-subscribers");
    assert_eq!(env["message"]["name"], "status-page-update");
    assert_eq!(env["incident"]["id"], id.as_str());

    // One-click unsubscribe (RFC 8058): nothing more.
    let url = unsubscribe.trim_matches(['<', '>']).to_string();
    let upath = url.trim_start_matches("https://status.example.com").to_string();
    let (code, body) = form(&app, &upath, &[("List-Unsubscribe", "One-Click")]).await;
    assert_eq!(code, 200, "{body}");
    public_update(&app, &id, "Fixed.", true).await;
    engine.tick().await.unwrap();
    assert_eq!(mails().len(), 2, "unsubscribed");
    assert_eq!(rx.received().len(), 2, "the webhook still hears");
    assert_eq!(get(&app, "/status/subscriptions/nope/confirm").await.0, 404);
    drop(smtp);
});

crate::status_both!(subscribing_is_rate_limited, |app| {
    let mut codes = vec![];
    for i in 0..8 {
        codes.push(
            form(
                &app,
                "/status/subscribe",
                &[("webhook", &format!("https://hooks.example.com/{i}"))],
            )
            .await
            .0,
        );
    }
    assert!(codes[..5].iter().all(|c| *c == 200), "{codes:?}");
    assert!(codes.contains(&429), "{codes:?}");
});

crate::status_both!(health_checks_colour_components_and_bars, |app| {
    use klaxon_store::{ProbeRecord, StateUpdate};
    let s = &app.store;
    s.sync_probe("api-health", "http", Some("api"), None).await.unwrap();
    s.sync_probe("login-health", "http", Some("auth"), None).await.unwrap();
    let rec = |check: &str, hours_ago: i64, outcome: &str| ProbeRecord {
        check: check.into(),
        at: app.clock_now() - jiff::SignedDuration::from_hours(hours_ago),
        outcome: outcome.into(),
        latency_ms: 20,
        message: String::new(),
    };
    let state = |st: &str| StateUpdate {
        state: st.into(),
        failures: 0,
        successes: 0,
        failing_since: None,
        changed_at: None,
    };
    // Two days ago the API was down for 1 of 4 runs; now it is down.
    for (h, o) in [(50, "ok"), (49, "down"), (48, "ok"), (47, "ok")] {
        s.record_probe(&rec("api-health", h, o), &state("up")).await.unwrap();
    }
    s.record_probe(&rec("api-health", 0, "down"), &state("down"))
        .await
        .unwrap();
    s.record_probe(&rec("login-health", 0, "degraded"), &state("up"))
        .await
        .unwrap();
    s.compact_probes(app.clock_now()).await.unwrap();
    app.refresh_status_page().await;
    let sum = json(&app, "/api/v2/summary.json").await;
    let status_of = |id: &str| {
        sum["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status_of("api"), "major_outage", "a check that is down");
    assert_eq!(status_of("auth"), "degraded_performance", "a degraded result");
    assert_eq!(status_of("web"), "operational", "no check");
    let (_, html, _) = get(&app, "/status").await;
    // 5 runs of which 3 up: 60.00 % for the API, 100.00 % for Login.
    assert!(html.contains("60.00 % uptime"), "uptime from the checks' runs");
    assert!(html.contains("class=\"major_outage\" title="), "a red day for the API");
});

// The page is rebuilt when the store's fingerprint of incidents, silences and
// component overrides moves: it must be readable on both backends (PostgreSQL's
// SUM of bigints is numeric) and move when a silence is added.
crate::both!(the_refresh_fingerprint_reads_and_moves, |app| {
    let before = app.store.status_page_fingerprint().await.unwrap();
    app.client
        .create_silence(&crate::support::disk_swap_silence())
        .await
        .unwrap();
    let after = app.store.status_page_fingerprint().await.unwrap();
    assert_eq!(after.2, before.2 + 1, "one more silence: {before:?} -> {after:?}");
    assert_ne!(
        after.3, before.3,
        "its end moves the fingerprint: {before:?} -> {after:?}"
    );
});
