//! Health checks against real parts: a local axum server (up, 500, slow,
//! wrong body, JSON mismatch), TCP ports, `localhost` through the system
//! resolver, the PostgreSQL and Redis servers of this machine, a local
//! rustls server with certificates made here, and a Prometheus stand-in
//! answering `/api/v1/query` in Prometheus's documented shape. Then the
//! state machine through the real ingestion path (an incident opens on the
//! third failure and its alert resolves on recovery), rollup compaction on
//! the manual clock, and `klaxon check` through the real binary.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use klaxon_domain::alert::{Matcher, Route};
use klaxon_domain::{Clock, ManualClock, config::Catalog};
use klaxon_probes::spec::{ExpectedStatus, Op, RecordType, StatusItem};
use klaxon_probes::{CheckSpec, Kind, Outcome, Prober, run_probe};
use klaxon_store::{ProbeRecord, StateUpdate, Store, StoreOptions};
use serde_json::{Value, json};

use crate::support::{ADMIN, TestDb, t0};

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

/// The service under watch: `/healthz` needs the probe's header, answers
/// JSON; `/fail` 500; `/slow` after 300 ms; `/degraded` JSON with another status.
async fn app_server() -> String {
    async fn healthz(h: HeaderMap) -> impl IntoResponse {
        if h.get("x-probe").and_then(|v| v.to_str().ok()) != Some("klaxon") {
            return (StatusCode::BAD_REQUEST, "missing X-Probe").into_response();
        }
        axum::Json(json!({"status": "ok", "checks": {"db": {"ok": true}}, "version": "1.4.2"})).into_response()
    }
    let r = Router::new()
        .route("/healthz", get(healthz))
        .route("/fail", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "slow but fine"
            }),
        )
        .route(
            "/degraded",
            get(|| async { axum::Json(json!({"status": "degraded", "checks": {"db": {"ok": false}}})) }),
        );
    serve(r).await
}

fn http(url: &str) -> CheckSpec {
    let mut s = CheckSpec::new("web", Kind::Http);
    s.url = Some(url.into());
    s.headers.insert("X-Probe".into(), "klaxon".into());
    s
}

#[tokio::test]
async fn http_probe_up_down_slow_wrong_body_json_mismatch() {
    let base = app_server().await;
    let now = t0();

    let mut up = http(&format!("{base}/healthz"));
    up.body_contains = Some("\"ok\"".into());
    up.body_regex = Some(r#""version":\s*"1\.\d+\.\d+""#.into());
    up.json_field = Some("checks.db.ok".into());
    up.json_equals = Some(json!(true));
    up.max_latency = Some(Duration::from_secs(2));
    up.validate().unwrap();
    let r = run_probe(&up, now).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert!(r.message.contains("status 200"), "{r:?}");

    // Without the header the server refuses: the probe sends what it is told.
    let mut no_header = up.clone();
    no_header.headers.clear();
    let r = run_probe(&no_header, now).await;
    assert_eq!(r.outcome, Outcome::Down, "{r:?}");
    assert!(r.message.contains("status 400"), "{r:?}");

    let r = run_probe(&http(&format!("{base}/fail")), now).await;
    assert_eq!(r.outcome, Outcome::Down, "{r:?}");
    assert!(r.message.contains("status 500") && r.message.contains("boom"), "{r:?}");
    let mut fail_ok = http(&format!("{base}/fail"));
    fail_ok.expected_status = Some(ExpectedStatus::Many(vec![
        StatusItem::Code(500),
        StatusItem::Text("2xx".into()),
    ]));
    assert_eq!(run_probe(&fail_ok, now).await.outcome, Outcome::Ok);

    let mut slow = http(&format!("{base}/slow"));
    slow.max_latency = Some(Duration::from_millis(100));
    let r = run_probe(&slow, now).await;
    assert_eq!(r.outcome, Outcome::Degraded, "{r:?}");
    assert!(r.latency_ms >= 300 && r.message.contains("slower than"), "{r:?}");
    slow.timeout = Duration::from_millis(100);
    let r = run_probe(&slow, now).await;
    assert_eq!(r.outcome, Outcome::Down, "{r:?}");
    assert!(r.message.contains("timed out"), "{r:?}");

    let mut wrong_body = http(&format!("{base}/slow"));
    wrong_body.body_contains = Some("all good".into());
    let r = run_probe(&wrong_body, now).await;
    assert_eq!(r.outcome, Outcome::Down, "{r:?}");
    assert!(r.message.contains("does not contain \"all good\""), "{r:?}");
    wrong_body.body_contains = None;
    wrong_body.body_regex = Some("^fast".into());
    assert_eq!(run_probe(&wrong_body, now).await.outcome, Outcome::Down);

    let mut mismatch = http(&format!("{base}/degraded"));
    mismatch.json_field = Some("status".into());
    mismatch.json_equals = Some(json!("ok"));
    let r = run_probe(&mismatch, now).await;
    assert_eq!(r.outcome, Outcome::Down, "{r:?}");
    assert!(
        r.message.contains("JSON status is \"degraded\", expected \"ok\""),
        "{r:?}"
    );
    mismatch.json_field = Some("checks.cache.ok".into());
    mismatch.json_equals = None;
    let r = run_probe(&mismatch, now).await;
    assert!(
        r.outcome == Outcome::Down && r.message.contains("no field checks.cache.ok"),
        "{r:?}"
    );

    let r = run_probe(&http(&format!("http://127.0.0.1:{}/", closed_port().await)), now).await;
    assert_eq!(r.outcome, Outcome::Down, "{r:?}");
}

#[tokio::test]
async fn tcp_probe_open_and_closed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut s = CheckSpec::new("port", Kind::Tcp);
    s.address = Some(format!("127.0.0.1:{port}"));
    s.validate().unwrap();
    assert_eq!(run_probe(&s, t0()).await.outcome, Outcome::Ok);
    drop(listener);
    let r = run_probe(&s, t0()).await;
    assert_eq!(r.outcome, Outcome::Down, "{r:?}");
    assert!(r.message.contains("connect 127.0.0.1"), "{r:?}");
}

#[tokio::test]
async fn dns_probe_resolves_localhost_from_etc_hosts() {
    let mut s = CheckSpec::new("dns", Kind::Dns);
    s.hostname = Some("localhost".into());
    s.record_type = Some(RecordType::A);
    s.expected = vec!["127.0.0.1".into()];
    s.validate().unwrap();
    let r = run_probe(&s, t0()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert!(r.message.contains("127.0.0.1"), "{r:?}");
    s.expected = vec!["10.9.9.9".into()];
    let r = run_probe(&s, t0()).await;
    assert!(
        r.outcome == Outcome::Down && r.message.contains("expected 10.9.9.9"),
        "{r:?}"
    );
    s.expected = vec![];
    s.hostname = Some("no-such-host.invalid".into());
    assert_eq!(run_probe(&s, t0()).await.outcome, Outcome::Down);
}

#[tokio::test]
async fn postgres_probe_against_the_local_server() {
    let mut s = CheckSpec::new("db", Kind::Postgres);
    s.url = Some(crate::support::pg_admin_url());
    s.validate().unwrap();
    let r = run_probe(&s, t0()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    s.url = Some(format!(
        "postgres://app:hunter2secret@127.0.0.1:{}/app",
        closed_port().await
    ));
    let r = run_probe(&s, t0()).await;
    assert_eq!(r.outcome, Outcome::Down, "{r:?}");
    assert!(!r.message.contains("hunter2secret"), "{r:?}");
}

#[tokio::test]
async fn redis_probe_against_the_local_server() {
    let mut s = CheckSpec::new("cache", Kind::Redis);
    s.address = Some("127.0.0.1:6379".into());
    s.validate().unwrap();
    let r = run_probe(&s, t0()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert!(r.message.contains("PONG"), "{r:?}");
    s.address = None;
    s.url = Some("redis://127.0.0.1:6379/0".into());
    assert_eq!(run_probe(&s, t0()).await.outcome, Outcome::Ok);
    s.url = Some(format!("redis://127.0.0.1:{}", closed_port().await));
    assert_eq!(run_probe(&s, t0()).await.outcome, Outcome::Down);
    // A server that answers something else than +PONG.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut c, _) = l.accept().await.unwrap();
        let mut buf = [0u8; 64];
        let n = c.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"*1\r\n$4\r\nPING\r\n", "RESP PING");
        c.write_all(b"-LOADING Redis is loading the dataset in memory\r\n")
            .await
            .unwrap();
    });
    s.url = Some(format!("redis://127.0.0.1:{port}"));
    let r = run_probe(&s, t0()).await;
    assert!(r.outcome == Outcome::Down && r.message.contains("LOADING"), "{r:?}");
}

/// A rustls server on loopback presenting `cert`; returns its port.
async fn tls_server(cert: rcgen::Certificate, key: rcgen::KeyPair) -> u16 {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let Ok(mut tls) = acceptor.accept(s).await else { return };
                // An HTTPS client gets a minimal answer; the TLS probe just hangs up.
                let mut buf = [0u8; 4096];
                if let Ok(n) = tls.read(&mut buf).await
                    && n > 0
                    && buf.starts_with(b"GET / HTTP/1.1\r\n")
                {
                    let _ = tls
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nhealthy")
                        .await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    port
}

/// A CA (PEM) and a leaf for localhost valid until `until` (y, m, d), signed by it.
fn leaf_until(until: (i32, u8, u8)) -> (String, rcgen::Certificate, rcgen::KeyPair) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "Klaxon probe test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    ca.not_before = rcgen::date_time_ymd(2020, 1, 1);
    ca.not_after = rcgen::date_time_ymd(2100, 1, 1);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    leaf.use_authority_key_identifier_extension = true;
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
    leaf.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert, key)
}

#[tokio::test]
async fn tls_probe_measures_certificate_expiry() {
    klaxon_client::install_crypto_provider();
    // The clock says 2026-11-23T10:00Z: 4 days and 14 hours left.
    let (ca_pem, cert, key) = leaf_until((2026, 11, 28));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let port = tls_server(cert, key).await;
    let mut s = CheckSpec::new("cert", Kind::Tls);
    s.address = Some(format!("localhost:{port}"));
    s.warn_days = Some(14);
    s.tls_verify = Some(false);
    s.validate().unwrap();
    let r = run_probe(&s, t0()).await;
    assert_eq!(r.outcome, Outcome::Degraded, "{r:?}");
    assert!(r.message.contains("expires in 4 days"), "{r:?}");
    // Critical at 5 days: down.
    s.critical_days = Some(5);
    assert_eq!(run_probe(&s, t0()).await.outcome, Outcome::Down);
    // Verified against the test CA: the chain is fine, expiry still counts.
    s.critical_days = None;
    s.tls_verify = None;
    s.ca_file = Some(ca_file.display().to_string());
    let r = run_probe(&s, t0()).await;
    assert_eq!(r.outcome, Outcome::Degraded, "{r:?}");
    // Without the CA, verification fails: down.
    s.ca_file = None;
    let r = run_probe(&s, t0()).await;
    assert!(r.outcome == Outcome::Down && r.message.contains("not valid"), "{r:?}");
    // After expiry (the clock moved on): down.
    s.tls_verify = Some(false);
    let later: jiff::Timestamp = "2026-11-29T00:00:00Z".parse().unwrap();
    let r = run_probe(&s, later).await;
    assert!(r.outcome == Outcome::Down && r.message.contains("expired"), "{r:?}");

    // One valid for a year: ok, verified.
    let (ca_pem, cert, key) = leaf_until((2027, 11, 23));
    std::fs::write(&ca_file, ca_pem).unwrap();
    let port = tls_server(cert, key).await;
    s.address = Some(format!("localhost:{port}"));
    s.tls_verify = None;
    s.ca_file = Some(ca_file.display().to_string());
    let r = run_probe(&s, t0()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert!(r.message.contains("expires in 364 days"), "{r:?}");

    // HTTPS through the HTTP probe (rustls; verification at the machine's
    // time, so this leaf is valid until 2099).
    let (ca_pem, cert, key) = leaf_until((2099, 1, 1));
    let ca_file = dir.path().join("https-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let port = tls_server(cert, key).await;
    let mut h = CheckSpec::new("https", Kind::Http);
    h.url = Some(format!("https://localhost:{port}/"));
    h.body_contains = Some("healthy".into());
    h.validate().unwrap();
    let r = run_probe(&h, t0()).await;
    assert!(
        r.outcome == Outcome::Down && r.message.to_lowercase().contains("certificate"),
        "not trusted without the CA: {r:?}"
    );
    h.ca_file = Some(ca_file.display().to_string());
    let r = run_probe(&h, t0()).await;
    assert_eq!(r.outcome, Outcome::Ok, "trusted through ca_file: {r:?}");
    h.ca_file = None;
    h.tls_verify = Some(false);
    let r = run_probe(&h, t0()).await;
    assert_eq!(r.outcome, Outcome::Ok, "tls_verify: false: {r:?}");
}

/// A Prometheus stand-in: `GET /api/v1/query?query=...` answered as
/// Prometheus documents it (status, data.resultType, data.result with
/// `[<unix time>, "<value>"]` samples); an unknown query gets the
/// documented error shape (400, errorType bad_data).
#[derive(Clone, Default)]
struct Prom {
    value: Arc<AtomicU32>,
    queries: Arc<AtomicU32>,
}

async fn prom_query(
    State(p): State<Prom>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> impl IntoResponse {
    p.queries.fetch_add(1, Ordering::SeqCst);
    let v = f64::from(p.value.load(Ordering::SeqCst)) / 1000.0;
    match q.get("query").map(String::as_str) {
        Some("job:error_rate:ratio5m") => axum::Json(json!({
            "status": "success",
            "data": {"resultType": "vector", "result": [
                {"metric": {"job": "api", "instance": "a"}, "value": [1_764_000_000.123, "0.001"]},
                {"metric": {"job": "api", "instance": "b"}, "value": [1_764_000_000.123, v.to_string()]}
            ]}
        }))
        .into_response(),
        Some("scalar(queue_depth)") => axum::Json(json!({
            "status": "success",
            "data": {"resultType": "scalar", "result": [1_764_000_000.123, (v * 1000.0).to_string()]}
        }))
        .into_response(),
        Some("absent_metric") => {
            axum::Json(json!({"status": "success", "data": {"resultType": "vector", "result": []}})).into_response()
        }
        _ => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"status": "error", "errorType": "bad_data", "error": "1:1: parse error: unexpected"})),
        )
            .into_response(),
    }
}

#[tokio::test]
async fn prometheus_probe_compares_with_a_threshold() {
    let prom = Prom::default();
    let base = serve(
        Router::new()
            .route("/api/v1/query", get(prom_query))
            .with_state(prom.clone()),
    )
    .await;
    let mut s = CheckSpec::new("errors", Kind::Prometheus);
    s.url = Some(base.clone());
    s.query = Some("job:error_rate:ratio5m".into());
    s.op = Some(Op::Gt);
    s.threshold = Some(0.05);
    s.warn_threshold = Some(0.01);
    s.validate().unwrap();
    prom.value.store(2, Ordering::SeqCst); // 0.002
    let r = run_probe(&s, t0()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    prom.value.store(20, Ordering::SeqCst); // 0.02 > warn
    let r = run_probe(&s, t0()).await;
    assert_eq!(r.outcome, Outcome::Degraded, "{r:?}");
    prom.value.store(70, Ordering::SeqCst); // 0.07 > 0.05
    let r = run_probe(&s, t0()).await;
    assert_eq!(r.outcome, Outcome::Down, "{r:?}");
    assert!(
        r.message.contains("instance=b") && r.message.contains("0.07 > 0.05"),
        "{r:?}"
    );

    // Queue depth > 500, a scalar.
    s.query = Some("scalar(queue_depth)".into());
    s.threshold = Some(500.0);
    s.warn_threshold = None;
    prom.value.store(501, Ordering::SeqCst);
    assert_eq!(run_probe(&s, t0()).await.outcome, Outcome::Down);
    prom.value.store(499, Ordering::SeqCst);
    assert_eq!(run_probe(&s, t0()).await.outcome, Outcome::Ok);
    s.op = Some(Op::Le);
    assert_eq!(run_probe(&s, t0()).await.outcome, Outcome::Down);

    s.query = Some("absent_metric".into());
    let r = run_probe(&s, t0()).await;
    assert!(r.outcome == Outcome::Ok && r.message.contains("no samples"), "{r:?}");
    s.query = Some("sum(".into());
    let r = run_probe(&s, t0()).await;
    assert!(r.outcome == Outcome::Down && r.message.contains("bad_data"), "{r:?}");
    assert_eq!(prom.queries.load(Ordering::SeqCst), 8);
}

/// A server with checks, built like `klaxon serve` builds it: the prober
/// shares the server's ingest writer.
struct ChecksApp {
    client: klaxon_client::Client,
    store: Store,
    clock: Arc<ManualClock>,
    prober: Arc<Prober>,
    _db: TestDb,
}

async fn spawn_checks(backend: &str, checks: Vec<CheckSpec>, routes: Vec<Route>) -> ChecksApp {
    klaxon_client::install_crypto_provider();
    let db = TestDb::new(backend).await;
    let store = Store::connect(&StoreOptions::new(db.url())).await.unwrap();
    store
        .create_token("admin", klaxon_domain::wire::TokenRole::Admin, ADMIN, t0())
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let catalog = Arc::new(Catalog::default());
    let mut ingest = klaxon_store::IngestSettings::new(catalog.clone());
    ingest.routes = routes;
    let mut state = klaxon_http::AppState::new(
        store.clone(),
        clock.clone(),
        catalog,
        Default::default(),
        ingest,
        (0, 0),
    );
    let prober = Prober::new(store.clone(), clock.clone(), state.ingestor.clone(), checks, 4)
        .await
        .unwrap();
    state.checks = Some(prober.clone());
    let app = klaxon_http::Application::build(state, "127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", app.local_addr().unwrap());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    ChecksApp {
        client: klaxon_client::Client::new(&base, Some(ADMIN.into())).unwrap(),
        store,
        clock,
        prober,
        _db: db,
    }
}

/// A service that can be switched between healthy and failing.
async fn switchable() -> (String, Arc<AtomicBool>) {
    let healthy = Arc::new(AtomicBool::new(true));
    let h = healthy.clone();
    let base = serve(Router::new().route(
        "/healthz",
        get(move || {
            let h = h.clone();
            async move {
                if h.load(Ordering::SeqCst) {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
                }
            }
        }),
    ))
    .await;
    (base, healthy)
}

async fn check_down_opens_incident_and_recovery_resolves(backend: &str) {
    let (base, healthy) = switchable().await;
    let mut spec = CheckSpec::new("api-health", Kind::Http);
    spec.url = Some(format!("{base}/healthz"));
    spec.service = Some("api".into());
    spec.component = Some("api".into());
    spec.severity = "SEV-3".into();
    // The route decides: checks of the API are SEV-1 on the `api` service.
    let route = Route {
        name: "api-checks".into(),
        matchers: vec![Matcher::parse("check=~api-.*").unwrap()],
        severity: Some("SEV-1".into()),
        group_by: Some(vec!["alertname".into()]),
        ..Route::default_route()
    };
    let app = spawn_checks(backend, vec![spec], vec![route]).await;
    let c = &app.client;

    let r = c.run_check("api-health").await.unwrap();
    assert_eq!(
        (r["outcome"].as_str(), r["state"].as_str()),
        (Some("ok"), Some("up")),
        "{r}"
    );
    healthy.store(false, Ordering::SeqCst);
    for i in 1..=2 {
        app.clock.advance(jiff::SignedDuration::from_secs(30));
        let r = c.run_check("api-health").await.unwrap();
        assert_eq!(r["outcome"], "down", "{r}");
        assert_eq!(r["state"], "up", "failure {i} of 3 keeps it up: {r}");
        assert!(r.get("transition").is_none(), "{r}");
    }
    assert!(
        c.list(&Default::default()).await.unwrap().items.is_empty(),
        "no incident before the third failure"
    );
    app.clock.advance(jiff::SignedDuration::from_secs(30));
    let r = c.run_check("api-health").await.unwrap();
    assert_eq!(
        (r["state"].as_str(), r["transition"].as_str()),
        (Some("down"), Some("down")),
        "{r}"
    );
    let incident_id = r["incidents"][0].as_str().expect("an incident").to_string();
    let inc = c.incident(&incident_id).await.unwrap();
    assert_eq!(inc.severity, "SEV-1", "the route's severity");
    assert_eq!(inc.services, vec!["api".to_string()]);
    assert!(inc.title.contains("api-health"), "{}", inc.title);
    // Failing on: a repeat, never a second incident.
    app.clock.advance(jiff::SignedDuration::from_secs(30));
    let r = c.run_check("api-health").await.unwrap();
    assert!(r.get("transition").is_none() && r["state"] == "down", "{r}");

    let alerts = c.alerts(&[("status", "firing".into())]).await.unwrap();
    let items = alerts["items"].as_array().expect("alert items");
    assert_eq!(items.len(), 1, "{alerts}");
    assert_eq!(items[0]["dedup_key"], "check:api-health");
    assert_eq!(items[0]["labels"]["alertname"], "check api-health");
    assert_eq!(items[0]["labels"]["component"], "api");

    let list = c.checks().await.unwrap();
    assert_eq!(list[0]["state"], "down", "{list:?}");
    assert_eq!(list[0]["failures"], 4);
    assert_eq!(list[0]["uptime_24h"]["runs"], 5);
    assert_eq!(list[0]["uptime_24h"]["down"], 4);

    healthy.store(true, Ordering::SeqCst);
    app.clock.advance(jiff::SignedDuration::from_secs(30));
    let r = c.run_check("api-health").await.unwrap();
    assert_eq!(
        (r["state"].as_str(), r["transition"].as_str()),
        (Some("up"), Some("up")),
        "{r}"
    );
    let alerts = c.alerts(&[("status", "firing".into())]).await.unwrap();
    assert!(alerts["items"].as_array().unwrap().is_empty(), "{alerts}");
    let inc = c.incident(&incident_id).await.unwrap();
    assert_eq!(inc.status.as_str(), "resolved", "the default auto-resolve policy");

    let history = c.check_history("api-health", Some(1)).await.unwrap();
    let outcomes: Vec<&str> = history.iter().map(|h| h["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["ok", "down", "down", "down", "down", "ok"]);
    assert!(history[1]["message"].as_str().unwrap().contains("status 503"));

    let e = c.run_check("nope").await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    let e = c.check_history("api-health", Some(49)).await.unwrap_err();
    assert_eq!(e.status(), Some(422), "{e}");
    assert_eq!(app.prober.checks().len(), 1);
    let metrics = reqwest::get(format!("{}/metrics", c.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"klaxon_check_runs_total{check="api-health",outcome="down"}"#)
            && metrics.contains("klaxon_check_latency_seconds_bucket{check=\"api-health\""),
        "{metrics}"
    );
    let st = app.store.probe_state("api-health").await.unwrap().unwrap();
    assert_eq!(
        (st.state.as_str(), st.failures, st.component.as_deref()),
        ("up", 0, Some("api"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_down_opens_incident_and_recovery_resolves_sqlite() {
    check_down_opens_incident_and_recovery_resolves("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_down_opens_incident_and_recovery_resolves_postgres() {
    check_down_opens_incident_and_recovery_resolves("postgres").await;
}

fn rec(check: &str, at: jiff::Timestamp, outcome: &str, latency: i64) -> ProbeRecord {
    ProbeRecord {
        check: check.into(),
        at,
        outcome: outcome.into(),
        latency_ms: latency,
        message: String::new(),
    }
}

fn keep() -> StateUpdate {
    StateUpdate {
        state: "up".into(),
        failures: 0,
        successes: 1,
        failing_since: None,
        changed_at: None,
    }
}

crate::both!(rollups_compact_raw_results_on_the_manual_clock, |app| {
    let s = &app.store;
    s.sync_probe("web", "http", Some("website"), None).await.unwrap();
    s.sync_probe("db", "postgres", Some("website"), None).await.unwrap();
    s.sync_probe("lonely", "tcp", None, None).await.unwrap();
    let day = |d: i64, h: i64, m: i64| {
        t0() - jiff::SignedDuration::from_hours(24 * d) + jiff::SignedDuration::from_mins(60 * h + m)
    };
    // Three days ago: 4 runs of web (one down), 2 of db (one degraded).
    for (at, o, l) in [
        (day(3, 0, 0), "ok", 10),
        (day(3, 0, 30), "down", 5000),
        (day(3, 1, 0), "ok", 30),
        (day(3, 1, 10), "ok", 20),
    ] {
        s.record_probe(&rec("web", at, o, l), &keep()).await.unwrap();
    }
    s.record_probe(&rec("db", day(3, 0, 5), "degraded", 900), &keep())
        .await
        .unwrap();
    s.record_probe(&rec("db", day(3, 2, 0), "ok", 3), &keep())
        .await
        .unwrap();
    s.record_probe(&rec("lonely", day(3, 2, 0), "down", 3), &keep())
        .await
        .unwrap();
    // Now: this hour is not finished, so it stays raw.
    s.record_probe(&rec("web", t0(), "ok", 12), &keep()).await.unwrap();

    let c = s.compact_probes(t0()).await.unwrap();
    assert_eq!(c.rolled, 7, "{c:?}");
    assert_eq!(c.deleted_raw, 7, "older than 48 hours: {c:?}");
    assert_eq!(
        s.compact_probes(t0()).await.unwrap().rolled,
        0,
        "each row is rolled once"
    );

    let since = t0() - jiff::SignedDuration::from_hours(24 * 4);
    let hours = s.probe_rollups("hour", since).await.unwrap();
    let web_hours: Vec<(i64, i64, i64)> = hours
        .iter()
        .filter(|(c, _, _)| c == "web")
        .map(|(_, _, n)| (n.total, n.down, n.latency_max))
        .collect();
    assert_eq!(web_hours, [(2, 1, 5000), (2, 0, 30)]);
    let days = s.probe_rollups("day", since).await.unwrap();
    let web_day = days.iter().find(|(c, _, _)| c == "web").unwrap();
    assert_eq!(
        (web_day.2.total, web_day.2.ok, web_day.2.down, web_day.2.latency_sum),
        (4, 3, 1, 5060)
    );

    // 30-day uptime of web: 4 rolled + 1 raw run, one down.
    let u = s
        .probe_uptime("web", t0() - jiff::SignedDuration::from_hours(24 * 30))
        .await
        .unwrap();
    assert_eq!((u.total, u.down), (5, 1));
    assert!((u.uptime().unwrap() - 0.8).abs() < 1e-9);
    // Raw history is gone past 48 hours; the recent run is still there.
    assert_eq!(s.probe_history("web", since).await.unwrap().len(), 1);

    // Component bars: web and db together; "lonely" has no component.
    let bars = s.component_uptime(90, t0()).await.unwrap();
    assert_eq!(bars.len(), 2, "{bars:?}");
    let three_days_ago = bars
        .iter()
        .find(|b| b.day == day(3, 0, 0).to_zoned(jiff::tz::TimeZone::UTC).date())
        .unwrap();
    assert_eq!(three_days_ago.component, "website");
    assert_eq!((three_days_ago.counts.total, three_days_ago.counts.down), (6, 1));
    assert_eq!(three_days_ago.worst, "down");
    assert!((three_days_ago.uptime - 5.0 / 6.0).abs() < 1e-9);
    let today = bars.last().unwrap();
    assert_eq!(
        (today.day, today.worst.as_str(), today.counts.total),
        (t0().to_zoned(jiff::tz::TimeZone::UTC).date(), "ok", 1)
    );

    // 91 days on, hourly rollups are past retention; daily ones stay.
    app.clock.advance(jiff::SignedDuration::from_hours(24 * 91));
    let c = s.compact_probes(app.clock.now()).await.unwrap();
    assert!(c.deleted_rollups >= 4, "{c:?}");
    assert!(s.probe_rollups("hour", since).await.unwrap().is_empty());
    assert_eq!(
        s.probe_rollups("day", since).await.unwrap().len(),
        4,
        "web, db, lonely 3 days ago; web today"
    );
});

/// `klaxon serve` with `checks:` in its file, and `klaxon check` against it.
#[test]
fn klaxon_check_through_the_real_binary() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (base, healthy) = rt.block_on(switchable());
    let closed = rt.block_on(closed_port());
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("klaxon.yaml");
    std::fs::write(
        &cfg,
        format!(
            "checks:\n  - name: api-health\n    kind: http\n    url: {base}/healthz\n    interval: 1h\n    body_contains: ok\n    component: api\n  - name: old-port\n    kind: tcp\n    address: 127.0.0.1:{closed}\n    interval: 1h\n"
        ),
    )
    .unwrap();
    let token = "kx_cli_checks_admin_secret_0123456789";
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let cfg_path = cfg.display().to_string();
    let server = crate::cli::serve_env(dir.path(), Some(&db), Some(token), &["--config", &cfg_path], &[]);
    let run = |args: &[&str]| crate::cli::klaxon(&server.url, Some(token), args);

    let (code, out, err) = run(&["check", "run", "api-health"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("http api-health: OK") && out.contains("status 200"),
        "{out}"
    );
    let (code, out, err) = run(&["check", "run", "old-port"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("DOWN") && out.contains("connect 127.0.0.1"), "{out}");
    healthy.store(false, Ordering::SeqCst);
    let (code, out, _) = run(&["check", "run", "api-health", "--json"]);
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["outcome"], "down");
    assert!(v["message"].as_str().unwrap().contains("503"), "{v}");

    let (code, out, err) = run(&["check", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("api-health") && out.contains("old-port") && out.contains("http"),
        "{out}"
    );
    let (code, out, _) = run(&["check", "history", "api-health", "--json"]);
    assert_eq!(code, 0);
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    // The prober's own first run plus the two runs above.
    assert!(rows.len() >= 2 && rows.last().unwrap()["outcome"] == "down", "{rows:?}");
    let (code, _, err) = run(&["check", "run", "missing"]);
    assert_ne!(code, 0);
    assert!(err.contains("404"), "{err}");
    let (code, out, _) = crate::cli::klaxon(&server.url, None, &["check", "list"]);
    assert_ne!(code, 0, "reads need a token: {out}");
}

/// The run loop: every check at its interval (real time paces it; the
/// results carry the manual clock's time), state changes raise alerts, and
/// it stops when told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prober_runs_checks_at_their_interval() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut open = CheckSpec::new("open-port", Kind::Tcp);
    open.address = Some(listener.local_addr().unwrap().to_string());
    open.interval = Duration::from_secs(1);
    let mut closed = CheckSpec::new("closed-port", Kind::Tcp);
    closed.address = Some(format!("127.0.0.1:{}", closed_port().await));
    closed.interval = Duration::from_secs(1);
    closed.failures_before_down = 2;
    let app = spawn_checks("sqlite", vec![open, closed], vec![]).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(app.prober.clone().run(stopped));
    let since = t0() - jiff::SignedDuration::from_hours(1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let open_runs = app.store.probe_history("open-port", since).await.unwrap();
        let closed_state = app.store.probe_state("closed-port").await.unwrap().unwrap();
        if open_runs.len() >= 3 && closed_state.state == "down" {
            assert!(
                open_runs.iter().all(|r| r.outcome == "ok" && r.at == t0()),
                "{open_runs:?}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{open_runs:?} {closed_state:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let firing = app.client.alerts(&[("status", "firing".into())]).await.unwrap();
    assert_eq!(firing["items"][0]["dedup_key"], "check:closed-port", "{firing}");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    let n = app.store.probe_history("open-port", since).await.unwrap().len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.store.probe_history("open-port", since).await.unwrap().len(),
        n,
        "no runs after stop"
    );
}
