//! HTTP(S): method, headers, expected status, body contains / regex, a JSON
//! field's value, and a latency limit (slower → degraded). rustls; TLS
//! verification can be turned off or given extra CA certificates.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::spec::{CheckSpec, ExpectedStatus, StatusItem};
use crate::{Found, Outcome};

/// Most of a body read for the checks.
const MAX_BODY: usize = 1024 * 1024;

/// The client of one check (rustls, its timeout, no redirects followed).
pub(crate) fn client(spec: &CheckSpec) -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder()
        .timeout(spec.timeout)
        .connect_timeout(spec.timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("klaxon-probe/", env!("CARGO_PKG_VERSION")))
        .tls_danger_accept_invalid_certs(spec.tls_verify == Some(false));
    if let Some(f) = &spec.ca_file {
        let pem = std::fs::read(f).map_err(|e| format!("ca_file {f}: {e}"))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("ca_file {f}: {e}"))?;
        b = b.tls_certs_merge(certs);
    }
    b.build().map_err(|e| format!("HTTP client: {e}"))
}

/// The value at a dotted path (`a.b.0.c`): object keys and array indexes.
pub(crate) fn json_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|s| !s.is_empty())
        .try_fold(v, |cur, seg| match cur {
            Value::Object(m) => m.get(seg),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        })
}

/// Equal, or the same text (`"true"` matches `true`, `"200"` matches `200`).
fn json_matches(actual: &Value, expected: &Value) -> bool {
    if actual == expected {
        return true;
    }
    match (actual, expected) {
        (Value::String(_), _) => false,
        // The number or boolean as JSON text (`Value == str` would only match strings).
        (a, Value::String(e)) => {
            let shown = a.to_string();
            shown == *e
        }
        (Value::Number(a), Value::Number(e)) => a.as_f64() == e.as_f64(),
        _ => false,
    }
}

pub(crate) async fn probe(spec: &CheckSpec) -> Found {
    let url = spec.url.as_deref().ok_or("url is not set")?;
    let http = client(spec)?;
    let method: reqwest::Method = spec
        .method
        .as_deref()
        .unwrap_or("GET")
        .parse()
        .map_err(|_| "bad method".to_string())?;
    let mut rb = http.request(method.clone(), url);
    for (k, v) in &spec.headers {
        rb = rb.header(k, v);
    }
    if let Some(b) = &spec.body {
        rb = rb.body(b.clone());
    }
    let started = Instant::now();
    let mut resp = rb.send().await.map_err(|e| describe(method.as_str(), url, &e))?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("{method} {url}: reading the body: {e}"))?
    {
        let room = MAX_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    let elapsed = started.elapsed();
    let expected = spec
        .expected_status
        .clone()
        .unwrap_or(ExpectedStatus::One(StatusItem::Text("2xx".into())));
    if !expected.matches(status) {
        let snippet: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        return Err(format!(
            "{method} {url}: status {status}, expected {}: {snippet}",
            show(&expected)
        ));
    }
    let text = String::from_utf8_lossy(&body);
    if let Some(needle) = &spec.body_contains
        && !text.contains(needle.as_str())
    {
        return Err(format!("{method} {url}: body does not contain {needle:?}"));
    }
    if let Some(r) = &spec.body_regex {
        let re = regex::Regex::new(r).map_err(|e| format!("body_regex: {e}"))?;
        if !re.is_match(&text) {
            return Err(format!("{method} {url}: body does not match /{r}/"));
        }
    }
    if let Some(path) = &spec.json_field {
        let v: Value = serde_json::from_slice(&body).map_err(|e| format!("{method} {url}: body is not JSON: {e}"))?;
        let found = json_path(&v, path).ok_or_else(|| format!("{method} {url}: JSON has no field {path}"))?;
        if let Some(want) = &spec.json_equals
            && !json_matches(found, want)
        {
            return Err(format!("{method} {url}: JSON {path} is {found}, expected {want}"));
        }
    }
    let ms = elapsed.as_millis();
    if let Some(max) = spec.max_latency
        && elapsed > max
    {
        return Ok((
            Outcome::Degraded,
            format!(
                "{method} {url}: status {status} in {ms} ms, slower than {}",
                klaxon_domain::duration::format(max)
            ),
        ));
    }
    Ok((Outcome::Ok, format!("{method} {url}: status {status} in {ms} ms")))
}

fn show(e: &ExpectedStatus) -> String {
    let item = |i: &StatusItem| match i {
        StatusItem::Code(c) => c.to_string(),
        StatusItem::Text(t) => t.clone(),
    };
    match e {
        ExpectedStatus::One(i) => item(i),
        ExpectedStatus::Many(v) => v.iter().map(item).collect::<Vec<_>>().join(" or "),
    }
}

/// A transport error with its cause chain (TLS problems are in the sources).
fn describe(method: &str, url: &str, e: &reqwest::Error) -> String {
    let mut msg = format!("{method} {url}: {e}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths_and_loose_equality() {
        let v = json!({"status": "ok", "checks": {"db": {"ok": true}}, "items": [{"id": 7}]});
        assert_eq!(json_path(&v, "checks.db.ok"), Some(&json!(true)));
        assert_eq!(json_path(&v, "items.0.id"), Some(&json!(7)));
        assert_eq!(json_path(&v, "items.1.id"), None);
        assert!(json_matches(&json!(true), &json!("true")));
        assert!(json_matches(&json!(7), &json!(7.0)));
        assert!(!json_matches(&json!("ok"), &json!("degraded")));
    }
}
