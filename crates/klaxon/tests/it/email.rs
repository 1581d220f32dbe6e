//! The email channel against a real SMTP server: aiosmtpd in
//! `smtp_server.py`, with STARTTLS or implicit TLS on a certificate from a CA
//! made here (rcgen), SMTP AUTH, and failures on demand (451, 550, down).
//! Every received message is parsed (mail-parser) and checked.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use klaxon_domain::Incident;
use klaxon_domain::message::{Envelope, EnvelopeIncident, types};
use klaxon_domain::templates::Rendered;
use klaxon_domain::wire::DeclareIncident;
use klaxon_engine::ChannelsConfig;
use klaxon_engine::channels::settings::{EmailSettings, SmtpTls};
use klaxon_store::{NewNotification, Notification, NotificationFilter};
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::both;
use crate::support::TestApp;

const PUBLIC_URL: &str = "https://klaxon.example.com";

/// A CA and a server certificate for 127.0.0.1 / localhost, as PEM files.
pub(crate) struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

pub(crate) fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "Klaxon test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "smtp.test");
    leaf.use_authority_key_identifier_extension = true;
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, pem: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    Pki {
        ca: write("ca.pem", ca_cert.pem()),
        cert: write("server.pem", leaf_cert.pem()),
        key: write("server.key", leaf_key.serialize_pem()),
        _dir: dir,
    }
}

/// One run of `smtp_server.py`; killed when dropped.
pub(crate) struct SmtpServer {
    child: tokio::process::Child,
    pub(crate) port: u16,
}

/// `tls`: `none`, `starttls` or `implicit`; `port` 0 for any free port.
pub(crate) async fn smtp_server(mail: &Path, pki: &Pki, tls: &str, port: u16, auth: Option<&str>) -> SmtpServer {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/smtp_server.py");
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg(script)
        .arg("--dir")
        .arg(mail)
        .args(["--tls", tls, "--port", &port.to_string()])
        .arg("--cert")
        .arg(&pki.cert)
        .arg("--key")
        .arg(&pki.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    if let Some(a) = auth {
        cmd.args(["--auth", a]);
    }
    let mut child = cmd
        .spawn()
        .expect("python3 (with aiosmtpd: python3 -m pip install --user aiosmtpd)");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .expect("smtp_server.py did not start in 20 s")
    .unwrap();
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("smtp_server.py failed to start (is aiosmtpd installed?): {line:?}"));
    SmtpServer { child, port }
}

impl SmtpServer {
    async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// A message as the server stored it, parsed.
pub(crate) struct Mail {
    msg: mail_parser::Message<'static>,
    /// Session facts: `tls`, `starttls`, `login`, `mail_from`, `rcpt_tos`, `ehlo`.
    meta: Value,
}

impl Mail {
    pub(crate) fn header(&self, name: &str) -> String {
        self.msg
            .header_raw(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .trim()
            .to_string()
    }
    pub(crate) fn text(&self) -> String {
        let part = self.msg.text_part(0).expect("a text part");
        assert_eq!(part.content_type().map(|c| c.subtype()), Some(Some("plain")));
        self.msg.body_text(0).unwrap().replace("\r\n", "\n")
    }
    fn html(&self) -> String {
        let part = self.msg.html_part(0).expect("an HTML part");
        assert_eq!(part.content_type().map(|c| c.subtype()), Some(Some("html")));
        self.msg.body_html(0).unwrap().replace("\r\n", "\n")
    }
    fn references(&self) -> Vec<String> {
        let r = self.msg.references();
        r.as_text_list()
            .map(|l| l.iter().map(|s| s.to_string()).collect())
            .or_else(|| r.as_text().map(|s| vec![s.to_string()]))
            .unwrap_or_default()
    }
    fn in_reply_to(&self) -> String {
        self.msg.in_reply_to().as_text().unwrap_or_default().to_string()
    }
    fn message_id(&self) -> String {
        self.msg.message_id().expect("Message-ID").to_string()
    }
}

/// The messages received so far, oldest first.
pub(crate) fn mails(dir: &Path) -> Vec<Mail> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| {
            let raw = std::fs::read(&p).unwrap();
            let meta: Value = serde_json::from_slice(&std::fs::read(p.with_extension("json")).unwrap()).unwrap();
            let msg = MessageParser::default().parse(&raw).expect("RFC 5322").into_owned();
            Mail { msg, meta }
        })
        .collect()
}

/// Make the server answer every RCPT TO with `reply` (None: accept again).
fn force_rcpt_reply(dir: &Path, reply: Option<&str>) {
    let f = dir.join("reply-rcpt");
    match reply {
        Some(r) => std::fs::write(f, r).unwrap(),
        None => std::fs::remove_file(f).unwrap(),
    }
}

pub(crate) fn email_cfg(port: u16, tls: SmtpTls, ca: Option<&Path>, auth: Option<(&str, &str)>) -> ChannelsConfig {
    ChannelsConfig {
        email: Some(EmailSettings {
            host: "127.0.0.1".into(),
            port: Some(port),
            tls,
            username: auth.map(|a| a.0.to_string()),
            password: auth.map(|a| a.1.to_string()),
            from: "Klaxon Alerts <klaxon@example.com>".into(),
            ca_file: ca.map(Path::to_path_buf),
            hello_name: Some("klaxon.test".into()),
        }),
        ..Default::default()
    }
}

async fn declare(app: &TestApp, title: &str, policy: Option<&str>) -> Incident {
    app.client
        .declare(&DeclareIncident {
            title: title.into(),
            escalation_policy: policy.map(str::to_string),
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Queue a stakeholder email for `inc` directly, as the communication rules would.
async fn enqueue(app: &TestApp, inc: &Incident, event_type: &str, key: &str, to: &str, subject: &str, body: &str) {
    let now = app.clock_now();
    let env = Envelope {
        event_type: event_type.into(),
        idempotency_key: key.into(),
        incident: EnvelopeIncident::of(inc, Some(PUBLIC_URL)),
        message: Rendered {
            name: "status-update".into(),
            subject: subject.into(),
            body: body.into(),
            short: subject.into(),
        },
        sent_at: now,
        reason: event_type.trim_start_matches("incident.").into(),
        user: None,
        policy: None,
        level: None,
        level_name: None,
        round: None,
        update_due: None,
        destination: Some("stakeholders".into()),
        unsubscribe_url: None,
    };
    let n = NewNotification {
        idempotency_key: key.into(),
        user_id: "stakeholders".into(),
        channel: "email".into(),
        contact: "stakeholders".into(),
        address: to.into(),
        body: env.to_json(),
        due_at: now,
        cancel_on_ack: false,
        message: true,
    };
    assert_eq!(app.store.enqueue_notifications(&inc.id, &[n], now).await.unwrap(), 1);
}

async fn notifications(app: &TestApp, incident: &str) -> Vec<Notification> {
    let mut all = app
        .store
        .notifications(&NotificationFilter {
            incident_id: Some(incident.to_string()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    all.reverse();
    all
}

both!(a_page_arrives_by_email_over_starttls, |app| {
    let pki = pki();
    let mail = tempfile::tempdir().unwrap();
    let smtp = smtp_server(mail.path(), &pki, "starttls", 0, Some("klaxon:s3cret pass")).await;
    let user = json!({"id": "alice", "name": "Alice Example", "email": "alice@example.com",
        "contact_methods": [{"name": "work-email", "kind": "email", "address": "alice@example.com"}],
        "notification_rules": [{"contact": "work-email"}]});
    app.client.put_document("users", "alice", &user).await.unwrap();
    let policy = json!({"id": "platform", "levels": [
        {"name": "on-call engineer", "targets": [{"user": "alice"}], "delay_minutes": 5}]});
    app.client
        .put_document("escalation-policies", "platform", &policy)
        .await
        .unwrap();
    let cfg = email_cfg(
        smtp.port,
        SmtpTls::Starttls,
        Some(&pki.ca),
        Some(("klaxon", "s3cret pass")),
    );
    let engine = app.engine_with("n1", &cfg, Some(PUBLIC_URL));
    let inc = declare(&app, "API <v2> down & \"out\"", Some("platform")).await;
    engine.tick().await.unwrap();

    let sent = notifications(&app, &inc.id).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let n = &sent[0];
    assert_eq!(
        (n.channel.as_str(), n.state.as_str(), n.attempts),
        ("email", "delivered", 1),
        "{n:?}"
    );
    let env: Envelope = serde_json::from_str(&n.body).unwrap();
    assert_eq!(env.event_type, types::PAGED);

    let got = mails(mail.path());
    assert_eq!(got.len(), 1);
    let m = &got[0];
    // The session: STARTTLS upgraded it, AUTH with the configured account, our EHLO name.
    assert!(m.meta["starttls"].as_bool().unwrap(), "{}", m.meta);
    assert!(m.meta["tls"].as_str().unwrap().starts_with("TLSv1."), "{}", m.meta);
    assert_eq!(m.meta["login"], "klaxon");
    assert_eq!(m.meta["ehlo"], "klaxon.test");
    assert_eq!(m.meta["mail_from"], "klaxon@example.com");
    assert_eq!(m.meta["rcpt_tos"], json!(["alice@example.com"]));

    // Headers.
    let from = m.msg.from().unwrap().first().unwrap();
    assert_eq!(
        (from.name(), from.address()),
        (Some("Klaxon Alerts"), Some("klaxon@example.com"))
    );
    assert_eq!(
        m.msg.to().unwrap().first().unwrap().address(),
        Some("alice@example.com")
    );
    assert_eq!(m.msg.subject(), Some(env.message.subject.as_str()));
    assert!(
        env.message.subject.contains("API <v2> down & \"out\""),
        "{}",
        env.message.subject
    );
    assert_eq!(m.header("X-Klaxon-Incident"), inc.id);
    assert_eq!(m.header("X-Klaxon-Idempotency-Key"), n.idempotency_key);
    assert_eq!(m.header("X-Klaxon-Event"), "incident.paged");
    assert_eq!(m.header("Auto-Submitted"), "auto-generated");
    assert_eq!(m.header("Importance"), "high", "a page is important");
    assert_eq!(m.msg.date().unwrap().to_timestamp(), app.clock_now().as_second());
    let root = format!("{}@klaxon", inc.id);
    assert_eq!(m.in_reply_to(), root);
    assert_eq!(m.references(), vec![root.clone()]);
    assert!(
        m.message_id().starts_with(&format!("{}.", inc.id)) && m.message_id().ends_with("@klaxon"),
        "{}",
        m.message_id()
    );
    assert_eq!(
        m.msg.root_part().content_type().map(|c| (c.ctype(), c.subtype())),
        Some(("multipart", Some("alternative")))
    );

    // Both parts: the template's text as is, and the same escaped in HTML.
    assert_eq!(m.text().trim_end(), env.message.body.trim_end());
    let html = m.html();
    assert!(html.contains("API &lt;v2&gt; down &amp; &quot;out&quot;"), "{html}");
    assert!(!html.contains("<v2>"), "{html}");
    assert!(html.contains(&format!("Incident ID: {}<br>", inc.id)), "{html}");
    let url = format!("{PUBLIC_URL}/api/v1/incidents/{}", inc.id);
    assert!(html.contains(&format!("<a href=\"{url}\">")), "{html}");

    // The delivery is on the timeline.
    let k = crate::support::kinds(&app, &inc.id).await;
    assert!(k.iter().any(|k| k == "notified"), "{k:?}");
    smtp.stop().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_is_one_thread_over_implicit_tls() {
    let app = TestApp::spawn("sqlite").await;
    let pki = pki();
    let mail = tempfile::tempdir().unwrap();
    let smtp = smtp_server(mail.path(), &pki, "implicit", 0, None).await;
    let engine = app.engine_with(
        "n1",
        &email_cfg(smtp.port, SmtpTls::Implicit, Some(&pki.ca), None),
        Some(PUBLIC_URL),
    );
    let one = declare(&app, "Checkout failing", None).await;
    let two = declare(&app, "Search slow", None).await;
    let to = "status@example.com";
    enqueue(
        &app,
        &one,
        types::DECLARED,
        "k-one-1",
        to,
        "[SEV-3] Incident: Checkout failing",
        "INCIDENT NOTIFICATION\n\nIssue: checkout < 50 % & falling",
    )
    .await;
    enqueue(
        &app,
        &two,
        types::DECLARED,
        "k-two-1",
        to,
        "[SEV-3] Incident: Search slow",
        "Search is slow",
    )
    .await;
    engine.tick().await.unwrap();
    app.advance(10);
    enqueue(
        &app,
        &one,
        types::UPDATED,
        "k-one-2",
        to,
        "[SEV-3] Update: Checkout failing",
        "INCIDENT UPDATE #1\n\nPROGRESS:\n- rolled back\n- watching",
    )
    .await;
    engine.tick().await.unwrap();
    app.advance(10);
    enqueue(
        &app,
        &one,
        types::RESOLVED,
        "k-one-3",
        to,
        "[RESOLVED] [SEV-3]: Checkout failing",
        "INCIDENT RESOLVED",
    )
    .await;
    engine.tick().await.unwrap();

    let got = mails(mail.path());
    assert_eq!(got.len(), 4);
    for m in &got {
        assert_eq!(
            m.meta["tls"].as_str().map(|v| v.starts_with("TLSv1.")),
            Some(true),
            "{}",
            m.meta
        );
        assert_eq!(m.meta["starttls"], false, "implicit TLS: encrypted from the first byte");
        assert!(
            m.msg.header_raw("Importance").is_none(),
            "stakeholder messages are not pages"
        );
    }
    let of = |inc: &Incident| {
        got.iter()
            .filter(|m| m.header("X-Klaxon-Incident") == inc.id)
            .collect::<Vec<_>>()
    };
    let (first, second) = (of(&one), of(&two));
    assert_eq!(first.len(), 3);
    assert_eq!(second.len(), 1);
    let mut ids: Vec<String> = got.iter().map(Mail::message_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "every message has its own Message-ID: {ids:?}");
    for (inc, msgs) in [(&one, &first), (&two, &second)] {
        let root = format!("{}@klaxon", inc.id);
        for m in msgs.iter() {
            assert_eq!(m.in_reply_to(), root);
            assert_eq!(m.references(), vec![root.clone()]);
            assert_eq!(m.header("Thread-Topic"), format!("{}: {}", inc.id, inc.title));
        }
    }
    assert_ne!(
        first[0].in_reply_to(),
        second[0].in_reply_to(),
        "two incidents, two threads"
    );
    // Outlook: the Thread-Index root (first 22 bytes) is the incident's.
    let index_root = |m: &Mail| m.header("Thread-Index")[..28].to_string();
    assert!(first.iter().all(|m| index_root(m) == index_root(first[0])));
    assert_ne!(index_root(first[0]), index_root(second[0]));
    let subjects: Vec<_> = first.iter().map(|m| m.msg.subject().unwrap().to_string()).collect();
    assert_eq!(
        subjects,
        vec![
            "[SEV-3] Incident: Checkout failing",
            "[SEV-3] Update: Checkout failing",
            "[RESOLVED] [SEV-3]: Checkout failing"
        ]
    );
    assert!(first[0].html().contains("checkout &lt; 50 % &amp; falling"));
    assert!(
        first[1].html().contains("<li>rolled back</li><li>watching</li>"),
        "{}",
        first[1].html()
    );
    assert!(first[1].html().contains(">PROGRESS:</h3>"), "{}", first[1].html());
    assert_eq!(
        first[1].text(),
        "INCIDENT UPDATE #1\n\nPROGRESS:\n- rolled back\n- watching"
    );
    smtp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_451_is_retried_and_a_550_is_dead() {
    let app = TestApp::spawn("sqlite").await;
    let pki = pki();
    let mail = tempfile::tempdir().unwrap();
    let smtp = smtp_server(mail.path(), &pki, "starttls", 0, None).await;
    let engine = app.engine_with(
        "n1",
        &email_cfg(smtp.port, SmtpTls::Starttls, Some(&pki.ca), None),
        None,
    );
    let inc = declare(&app, "Queue backlog", None).await;

    force_rcpt_reply(mail.path(), Some("451 4.3.0 Mailbox busy, try again later"));
    enqueue(
        &app,
        &inc,
        types::DECLARED,
        "k-451",
        "ops@example.com",
        "Backlog",
        "Growing",
    )
    .await;
    engine.tick().await.unwrap();
    let n = notifications(&app, &inc.id).await.remove(0);
    assert_eq!((n.state.as_str(), n.attempts), ("pending", 1), "{n:?}");
    let err = n.last_error.clone().unwrap();
    assert!(err.contains("451") && err.contains("Mailbox busy"), "{err}");
    assert!(mails(mail.path()).is_empty());

    // The relay recovers; the retry (after the backoff) goes through.
    force_rcpt_reply(mail.path(), None);
    engine.tick().await.unwrap();
    assert!(mails(mail.path()).is_empty(), "nothing before the backoff is over");
    app.advance(1);
    engine.tick().await.unwrap();
    let n = notifications(&app, &inc.id).await.remove(0);
    assert_eq!((n.state.as_str(), n.attempts), ("delivered", 2), "{n:?}");
    let got = mails(mail.path());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("X-Klaxon-Idempotency-Key"), "k-451");

    // 550: no such user. Retrying cannot help: dead at once, the reply kept.
    force_rcpt_reply(mail.path(), Some("550 5.1.1 No such user here"));
    enqueue(
        &app,
        &inc,
        types::UPDATED,
        "k-550",
        "nobody@example.com",
        "Backlog",
        "Still",
    )
    .await;
    engine.tick().await.unwrap();
    let n = notifications(&app, &inc.id).await.pop().unwrap();
    assert_eq!(n.idempotency_key, "k-550");
    assert_eq!((n.state.as_str(), n.attempts), ("dead", 1), "{n:?}");
    let err = n.last_error.unwrap();
    assert!(err.contains("550") && err.contains("No such user here"), "{err}");
    assert!(err.contains("nobody@example.com"), "{err}");
    app.advance(60);
    engine.tick().await.unwrap();
    assert_eq!(mails(mail.path()).len(), 1, "a dead notification is not tried again");
    smtp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_is_down_is_retried_until_it_is_back() {
    let app = TestApp::spawn("sqlite").await;
    let pki = pki();
    let mail = tempfile::tempdir().unwrap();
    let smtp = smtp_server(mail.path(), &pki, "starttls", 0, None).await;
    let port = smtp.port;
    smtp.stop().await;
    let engine = app.engine_with("n1", &email_cfg(port, SmtpTls::Starttls, Some(&pki.ca), None), None);
    let inc = declare(&app, "Relay down", None).await;
    enqueue(
        &app,
        &inc,
        types::DECLARED,
        "k-down",
        "ops@example.com",
        "Down",
        "Relay down",
    )
    .await;
    engine.tick().await.unwrap();
    let n = notifications(&app, &inc.id).await.remove(0);
    assert_eq!((n.state.as_str(), n.attempts), ("pending", 1), "{n:?}");
    assert!(
        n.last_error.as_deref().unwrap().contains(&format!("127.0.0.1:{port}")),
        "{n:?}"
    );

    let smtp = smtp_server(mail.path(), &pki, "starttls", port, None).await;
    assert_eq!(smtp.port, port);
    app.advance(1);
    engine.tick().await.unwrap();
    let n = notifications(&app, &inc.id).await.remove(0);
    assert_eq!((n.state.as_str(), n.attempts), ("delivered", 2), "{n:?}");
    assert_eq!(mails(mail.path()).len(), 1);
    smtp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_is_required_and_the_certificate_checked() {
    let app = TestApp::spawn("sqlite").await;
    let pki = pki();
    let mail = tempfile::tempdir().unwrap();
    let inc = declare(&app, "TLS", None).await;

    // A relay that does not offer STARTTLS: nothing is sent in the clear.
    let plain = smtp_server(mail.path(), &pki, "none", 0, None).await;
    let engine = app.engine_with(
        "n1",
        &email_cfg(plain.port, SmtpTls::Starttls, Some(&pki.ca), None),
        None,
    );
    enqueue(&app, &inc, types::DECLARED, "k-plain", "ops@example.com", "S", "B").await;
    engine.tick().await.unwrap();
    let n = notifications(&app, &inc.id).await.remove(0);
    assert_eq!(n.state, "pending", "{n:?}");
    assert!(
        n.last_error.as_deref().unwrap().to_lowercase().contains("starttls"),
        "{n:?}"
    );
    assert!(mails(mail.path()).is_empty());
    // …but `tls: none` is allowed to talk to it.
    let engine_plain = app.engine_with("n2", &email_cfg(plain.port, SmtpTls::None, None, None), None);
    app.advance(1);
    engine_plain.tick().await.unwrap();
    let got = mails(mail.path());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].meta["tls"], Value::Null);
    plain.stop().await;

    // A certificate from a CA we were not told to trust.
    let tls = smtp_server(mail.path(), &pki, "starttls", 0, None).await;
    let untrusting = app.engine_with("n3", &email_cfg(tls.port, SmtpTls::Starttls, None, None), None);
    enqueue(&app, &inc, types::UPDATED, "k-untrusted", "ops@example.com", "S", "B").await;
    untrusting.tick().await.unwrap();
    let n = notifications(&app, &inc.id).await.pop().unwrap();
    assert_eq!(
        (n.idempotency_key.as_str(), n.state.as_str()),
        ("k-untrusted", "pending"),
        "{n:?}"
    );
    assert!(n.last_error.as_deref().unwrap().contains("UnknownIssuer"), "{n:?}");
    assert_eq!(mails(mail.path()).len(), 1);
    tls.stop().await;
}

#[test]
fn the_documented_configuration_parses_and_builds() {
    #[derive(serde::Deserialize)]
    struct File {
        channels: ChannelsConfig,
    }
    let doc = include_str!("../../../../docs/channels/email.md");
    let yaml = doc
        .split("```yaml\n")
        .nth(1)
        .and_then(|r| r.split("```").next())
        .expect("a yaml block in docs/channels/email.md");
    let f: File = serde_saphyr::from_str(yaml).unwrap();
    let e = f.channels.email.clone().expect("channels.email");
    assert_eq!(e.tls, SmtpTls::Starttls);
    assert_eq!(e.port, Some(587));
    let ch = klaxon_engine::channels::email::Email::new(&e, Some("pw".into()), f.channels.timeout());
    assert!(ch.is_ok(), "{:?}", ch.err());
    // A username without any password is refused at start.
    assert!(klaxon_engine::channels::email::Email::new(&e, None, f.channels.timeout()).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_never_answers_times_out_and_is_retried() {
    let app = TestApp::spawn("sqlite").await;
    // Accepts connections and says nothing: no SMTP greeting ever comes.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            conns.push(c);
        }
    });
    let mut cfg = email_cfg(port, SmtpTls::None, None, None);
    cfg.timeout = Some(std::time::Duration::from_millis(500));
    let engine = app.engine_with("n1", &cfg, None);
    let inc = declare(&app, "Silent relay", None).await;
    enqueue(&app, &inc, types::DECLARED, "k-silent", "ops@example.com", "S", "B").await;
    let started = std::time::Instant::now();
    engine.tick().await.unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let n = notifications(&app, &inc.id).await.remove(0);
    assert_eq!((n.state.as_str(), n.attempts), ("pending", 1), "{n:?}");
    assert!(n.last_error.as_deref().unwrap().contains("timed out"), "{n:?}");
    held.abort();
}
