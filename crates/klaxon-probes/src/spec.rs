//! A check as written in `klaxon.yaml` (`checks:`): the common settings and
//! the fields of each kind, validated so mistakes show at `config check`.

use std::collections::BTreeMap;
use std::time::Duration;

use klaxon_domain::FieldError;
use serde::{Deserialize, Serialize};

/// The probe kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Http,
    Tcp,
    Tls,
    Dns,
    Postgres,
    Redis,
    Prometheus,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Tcp => "tcp",
            Kind::Tls => "tls",
            Kind::Dns => "dns",
            Kind::Postgres => "postgres",
            Kind::Redis => "redis",
            Kind::Prometheus => "prometheus",
        }
    }
}

/// One expected HTTP status: a code (`200`) or a class (`2xx`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StatusItem {
    Code(u16),
    Text(String),
}

/// `expected_status: 200`, `"2xx"` or `[200, 204, "3xx"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExpectedStatus {
    One(StatusItem),
    Many(Vec<StatusItem>),
}

impl ExpectedStatus {
    fn items(&self) -> Vec<&StatusItem> {
        match self {
            ExpectedStatus::One(i) => vec![i],
            ExpectedStatus::Many(v) => v.iter().collect(),
        }
    }

    /// Check the patterns: codes 100-599, classes `1xx`-`5xx`.
    pub fn validate(&self) -> Result<(), String> {
        for i in self.items() {
            match i {
                StatusItem::Code(c) if (100..=599).contains(c) => {}
                StatusItem::Text(t) if status_text_matches(t, 0).is_some() => {}
                other => return Err(format!("{other:?} is not a status code (200) or class (2xx)")),
            }
        }
        if self.items().is_empty() {
            return Err("expected_status is empty".into());
        }
        Ok(())
    }

    pub fn matches(&self, status: u16) -> bool {
        self.items().iter().any(|i| match i {
            StatusItem::Code(c) => *c == status,
            StatusItem::Text(t) => status_text_matches(t, status) == Some(true),
        })
    }
}

/// `Some(matches)` for a valid pattern (`200`, `2xx`), `None` otherwise.
fn status_text_matches(t: &str, status: u16) -> Option<bool> {
    let t = t.trim().to_ascii_lowercase();
    if let Some(d) = t.strip_suffix("xx") {
        let class: u16 = d.parse().ok().filter(|c| (1..=5).contains(c))?;
        return Some(status / 100 == class);
    }
    let code: u16 = t.parse().ok().filter(|c| (100..=599).contains(c))?;
    Some(code == status)
}

/// A comparison of a Prometheus value with a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

impl Op {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
            Op::Eq => value == threshold,
            Op::Ne => value != threshold,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

/// DNS record types the DNS probe asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum RecordType {
    #[default]
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
}

fn default_interval() -> Duration {
    Duration::from_secs(30)
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_failures() -> u32 {
    3
}

fn default_successes() -> u32 {
    1
}

fn default_severity() -> String {
    "SEV-2".into()
}

mod dur {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&klaxon_domain::duration::format(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        klaxon_domain::duration::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// One check. Common settings first, then the fields of the kinds (each
/// kind uses some; [`CheckSpec::validate`] refuses the others).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// Slug: letters, digits, `-`, `_`, `.`.
    pub name: String,
    pub kind: Kind,
    #[serde(default)]
    pub description: Option<String>,
    /// How often it runs (default 30s).
    #[serde(default = "default_interval", with = "dur")]
    pub interval: Duration,
    /// Longest one run may take (default 10s); a run that takes longer is down.
    #[serde(default = "default_timeout", with = "dur")]
    pub timeout: Duration,
    /// Consecutive failures before the check is down (default 3).
    #[serde(default = "default_failures")]
    pub failures_before_down: u32,
    /// Instead of a count: down once failing continuously for this long.
    #[serde(
        default,
        rename = "for",
        with = "klaxon_domain::duration::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub for_duration: Option<Duration>,
    /// Consecutive successes before a down check is up again (default 1).
    #[serde(default = "default_successes")]
    pub successes_before_up: u32,
    /// Status page component ID this check feeds.
    #[serde(default)]
    pub component: Option<String>,
    /// Service of the incident (label `service` of the alert).
    #[serde(default)]
    pub service: Option<String>,
    /// Severity of the alert (default SEV-2; a route may map it).
    #[serde(default = "default_severity")]
    pub severity: String,
    /// Extra labels on the alert (routes can match them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,

    // http, postgres, prometheus, redis (redis://)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// tcp, tls, redis: `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    // http
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Request body (http).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_status: Option<ExpectedStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_regex: Option<String>,
    /// Dotted path into a JSON body (`status`, `checks.db.ok`, `items.0.id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_equals: Option<serde_json::Value>,
    /// Slower than this → degraded (http).
    #[serde(
        default,
        with = "klaxon_domain::duration::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_latency: Option<Duration>,
    /// Verify the server certificate (http, tls; default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_verify: Option<bool>,
    /// PEM file of extra trusted CA certificates (http, tls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    // tls
    /// Name sent in SNI and verified (default: the host of `address`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Fewer days left → degraded (default 14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_days: Option<u32>,
    /// Fewer days left → down (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_days: Option<u32>,
    // dns
    /// The name to resolve (dns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_type: Option<RecordType>,
    /// Addresses that must all be among the answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected: Vec<String>,
    // prometheus
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The failing condition: `value op threshold` on any sample → down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<Op>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// `value op warn_threshold` → degraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_threshold: Option<f64>,
}

fn fe(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        message: message.into(),
    }
}

fn is_slug(s: &str) -> bool {
    !s.is_empty() && s.len() <= 100 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// `host:port` with a port.
fn split_address(a: &str) -> Option<(&str, u16)> {
    let (host, port) = a.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse().ok().filter(|p| *p > 0)?;
    (!host.is_empty()).then_some((host, port))
}

impl CheckSpec {
    /// A minimal spec of a kind, every other setting at its default.
    pub fn new(name: &str, kind: Kind) -> Self {
        CheckSpec {
            name: name.into(),
            kind,
            description: None,
            interval: default_interval(),
            timeout: default_timeout(),
            failures_before_down: default_failures(),
            for_duration: None,
            successes_before_up: default_successes(),
            component: None,
            service: None,
            severity: default_severity(),
            labels: BTreeMap::new(),
            url: None,
            address: None,
            method: None,
            headers: BTreeMap::new(),
            body: None,
            expected_status: None,
            body_contains: None,
            body_regex: None,
            json_field: None,
            json_equals: None,
            max_latency: None,
            tls_verify: None,
            ca_file: None,
            server_name: None,
            warn_days: None,
            critical_days: None,
            hostname: None,
            record_type: None,
            expected: vec![],
            query: None,
            op: None,
            threshold: None,
            warn_threshold: None,
        }
    }

    /// `host` and `port` of `address`.
    pub fn host_port(&self) -> Option<(&str, u16)> {
        self.address.as_deref().and_then(split_address)
    }

    /// What the check looks at, for messages and the alert's `source`.
    pub fn target(&self) -> String {
        self.url
            .clone()
            .or_else(|| self.address.clone())
            .or_else(|| self.hostname.clone())
            .unwrap_or_else(|| self.name.clone())
    }

    /// Every problem names its field.
    pub fn validate(&self) -> Result<(), FieldError> {
        if !is_slug(&self.name) {
            return Err(fe("name", "a check name is 1-100 letters, digits, '-', '_' or '.'"));
        }
        if self.interval < Duration::from_secs(1) {
            return Err(fe("interval", "at least 1s"));
        }
        if self.timeout.is_zero() {
            return Err(fe("timeout", "must be more than 0"));
        }
        if self.failures_before_down == 0 {
            return Err(fe("failures_before_down", "at least 1"));
        }
        if self.successes_before_up == 0 {
            return Err(fe("successes_before_up", "at least 1"));
        }
        if let Some(c) = &self.component
            && !is_slug(c)
        {
            return Err(fe("component", "a component ID is letters, digits, '-', '_' or '.'"));
        }
        let k = self.kind;
        let allowed: &[&str] = match k {
            Kind::Http => &[
                "url",
                "method",
                "headers",
                "body",
                "expected_status",
                "body_contains",
                "body_regex",
                "json_field",
                "json_equals",
                "max_latency",
                "tls_verify",
                "ca_file",
            ],
            Kind::Tcp => &["address"],
            Kind::Tls => &[
                "address",
                "server_name",
                "warn_days",
                "critical_days",
                "tls_verify",
                "ca_file",
            ],
            Kind::Dns => &["hostname", "record_type", "expected"],
            Kind::Postgres => &["url"],
            Kind::Redis => &["url", "address"],
            Kind::Prometheus => &["url", "query", "op", "threshold", "warn_threshold", "headers"],
        };
        let present = [
            ("url", self.url.is_some()),
            ("address", self.address.is_some()),
            ("method", self.method.is_some()),
            ("headers", !self.headers.is_empty()),
            ("body", self.body.is_some()),
            ("expected_status", self.expected_status.is_some()),
            ("body_contains", self.body_contains.is_some()),
            ("body_regex", self.body_regex.is_some()),
            ("json_field", self.json_field.is_some()),
            ("json_equals", self.json_equals.is_some()),
            ("max_latency", self.max_latency.is_some()),
            ("tls_verify", self.tls_verify.is_some()),
            ("ca_file", self.ca_file.is_some()),
            ("server_name", self.server_name.is_some()),
            ("warn_days", self.warn_days.is_some()),
            ("critical_days", self.critical_days.is_some()),
            ("hostname", self.hostname.is_some()),
            ("record_type", self.record_type.is_some()),
            ("expected", !self.expected.is_empty()),
            ("query", self.query.is_some()),
            ("op", self.op.is_some()),
            ("threshold", self.threshold.is_some()),
            ("warn_threshold", self.warn_threshold.is_some()),
        ];
        for (field, set) in present {
            if set && !allowed.contains(&field) {
                return Err(fe(field, format!("{field} does not apply to a {} check", k.as_str())));
            }
        }
        let need_url = |schemes: &[&str]| -> Result<(), FieldError> {
            let u = self
                .url
                .as_deref()
                .ok_or_else(|| fe("url", format!("a {} check needs url", k.as_str())))?;
            if !schemes.iter().any(|s| u.starts_with(&format!("{s}://"))) {
                return Err(fe("url", format!("{u:?}: expected a {} URL", schemes.join(" or "))));
            }
            Ok(())
        };
        let need_address = || -> Result<(), FieldError> {
            match &self.address {
                None => Err(fe(
                    "address",
                    format!("a {} check needs address: host:port", k.as_str()),
                )),
                Some(a) if split_address(a).is_none() => Err(fe("address", format!("{a:?} is not host:port"))),
                Some(_) => Ok(()),
            }
        };
        match k {
            Kind::Http => {
                need_url(&["http", "https"])?;
                if let Some(m) = &self.method
                    && !["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].contains(&m.as_str())
                {
                    return Err(fe(
                        "method",
                        format!("{m:?}: expected GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS"),
                    ));
                }
                if let Some(s) = &self.expected_status {
                    s.validate().map_err(|m| fe("expected_status", m))?;
                }
                if let Some(r) = &self.body_regex {
                    regex::Regex::new(r).map_err(|e| fe("body_regex", format!("not a regular expression: {e}")))?;
                }
                if self.json_equals.is_some() && self.json_field.is_none() {
                    return Err(fe("json_field", "json_equals needs json_field"));
                }
            }
            Kind::Tcp => need_address()?,
            Kind::Tls => {
                need_address()?;
                if let (Some(w), Some(c)) = (self.warn_days, self.critical_days)
                    && c > w
                {
                    return Err(fe("critical_days", "critical_days must not exceed warn_days"));
                }
            }
            Kind::Dns => {
                if self.hostname.as_deref().is_none_or(|h| h.trim().is_empty()) {
                    return Err(fe("hostname", "a dns check needs hostname: the name to resolve"));
                }
                for (i, e) in self.expected.iter().enumerate() {
                    let ip: std::net::IpAddr = e
                        .parse()
                        .map_err(|_| fe(&format!("expected[{i}]"), format!("{e:?} is not an IP address")))?;
                    let want_v6 = self.record_type == Some(RecordType::Aaaa);
                    if ip.is_ipv6() != want_v6 {
                        return Err(fe(&format!("expected[{i}]"), format!("{e} does not fit record_type")));
                    }
                }
            }
            Kind::Postgres => need_url(&["postgres", "postgresql"])?,
            Kind::Redis => match (&self.url, &self.address) {
                (Some(_), None) => need_url(&["redis"])?,
                (None, Some(_)) => need_address()?,
                _ => {
                    return Err(fe(
                        "url",
                        "a redis check needs url: redis://host:port or address: host:port",
                    ));
                }
            },
            Kind::Prometheus => {
                need_url(&["http", "https"])?;
                if self.query.as_deref().is_none_or(|q| q.trim().is_empty()) {
                    return Err(fe("query", "a prometheus check needs query"));
                }
                if self.op.is_none() {
                    return Err(fe("op", "a prometheus check needs op: one of > >= < <= == !="));
                }
                if self.threshold.is_none() {
                    return Err(fe("threshold", "a prometheus check needs threshold"));
                }
            }
        }
        Ok(())
    }
}
