//! Alerts from monitoring: the normalised form every ingest format becomes,
//! label matchers, routes, silences and flapping detection.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::duration;
use crate::severity::SeverityScheme;

/// What the sender asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertAction {
    Trigger,
    Resolve,
    Acknowledge,
}

/// A link attached to an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertLink {
    pub href: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// One alert event, whatever format it arrived in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertInput {
    pub action: AlertAction,
    /// Fingerprint (Alertmanager, Grafana), dedup_key (PagerDuty, generic) or a hash of the labels.
    pub dedup_key: String,
    pub summary: String,
    /// Severity as the sender says it (`critical`, `warning`, `SEV-2`, ...).
    pub severity: Option<String>,
    pub source: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub links: Vec<AlertLink>,
    /// The sender's own group key (Alertmanager `groupKey`).
    pub group_key: Option<String>,
    /// Anything else the sender sent (custom_details, values, ...).
    pub details: serde_json::Value,
}

/// The fallback dedup key: a hash of the sorted labels.
pub fn labels_fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in labels {
        h.update(k.as_bytes());
        h.update([0xff]);
        h.update(v.as_bytes());
        h.update([0xfe]);
    }
    hex::encode(&h.finalize()[..8])
}

/// A label matcher: `name=value`, `name!=value`, `name=~regex`, `name!~regex`.
/// Regexes are anchored, as in Prometheus.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<regex::Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Eq,
    Ne,
    Re,
    NotRe,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

impl Matcher {
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let t = text.trim();
        let (pos, op, len) = ["=~", "!~", "!=", "="]
            .iter()
            .filter_map(|o| t.find(o).map(|p| (p, *o)))
            .min_by_key(|(p, o)| (*p, std::cmp::Reverse(o.len())))
            .map(|(p, o)| {
                let op = match o {
                    "=~" => MatchOp::Re,
                    "!~" => MatchOp::NotRe,
                    "!=" => MatchOp::Ne,
                    _ => MatchOp::Eq,
                };
                (p, op, o.len())
            })
            .ok_or_else(|| format!("matcher {t:?} needs one of =, !=, =~, !~"))?;
        let name = t[..pos].trim().to_string();
        let mut value = t[pos + len..].trim().to_string();
        if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
            value = value[1..value.len() - 1].to_string();
        }
        Self::new(&name, op, &value)
    }

    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, String> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
        {
            return Err(format!("matcher label name {name:?} is not a label name"));
        }
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => Some(
                regex::Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("matcher {name}: bad regex {value:?}: {e}"))?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.name).map(String::as_str).unwrap_or("");
        match self.op {
            MatchOp::Eq => v == self.value,
            MatchOp::Ne => v != self.value,
            MatchOp::Re => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRe => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    pub fn to_text(&self) -> String {
        let op = match self.op {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        };
        format!("{}{op}{}", self.name, self.value)
    }
}

impl Serialize for Matcher {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_text())
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Matcher::parse(&s).map_err(serde::de::Error::custom)
    }
}

pub fn all_match(matchers: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// What happens to an incident when every one of its alerts has resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AutoResolveAction {
    /// Move the incident to `resolved`.
    #[default]
    Resolve,
    /// Move it to `monitoring`; a human resolves.
    Monitoring,
    /// Only note it on the timeline.
    Annotate,
}

/// A routing rule: label matchers → how the alert becomes (part of) an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: String,
    /// All must match. Empty matches everything.
    #[serde(default)]
    #[schema(value_type = Vec<String>, example = json!(["severity=critical", "service=~api|web"]))]
    pub matchers: Vec<Matcher>,
    /// Keep evaluating later routes after this one matched.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// Service the incident affects; default: the alert's `service` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Fixed severity (key or alias). Default: mapped from the alert's severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Sender severity → our severity, overriding the default mapping.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub severity_map: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Escalation policy used by the on-call engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    /// Labels whose values form the group key. Default: the sender's group key
    /// (Alertmanager `groupKey`) or else `alertname`. `["..."]` groups by all labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    #[serde(default)]
    pub auto_resolve: AutoResolveAction,
    /// An alert of a resolved incident that fires again within this window reopens it.
    #[serde(default = "default_reopen_window", with = "duration::opt")]
    #[schema(value_type = Option<String>, example = "30m")]
    pub reopen_window: Option<Duration>,
}

fn default_reopen_window() -> Option<Duration> {
    Some(Duration::from_secs(30 * 60))
}

impl Route {
    pub fn default_route() -> Route {
        Route {
            name: "default".into(),
            matchers: vec![],
            continue_matching: false,
            service: None,
            severity: None,
            severity_map: BTreeMap::new(),
            category: None,
            escalation_policy: None,
            runbook: None,
            group_by: None,
            auto_resolve: AutoResolveAction::Resolve,
            reopen_window: default_reopen_window(),
        }
    }

    /// The group key of an alert under this route.
    pub fn group_key(&self, a: &AlertInput) -> String {
        let inner = match &self.group_by {
            Some(by) if by.iter().any(|b| b == "...") => labels_fingerprint(&a.labels),
            Some(by) => by
                .iter()
                .map(|l| format!("{l}={}", a.labels.get(l).map(String::as_str).unwrap_or("")))
                .collect::<Vec<_>>()
                .join(","),
            None => match &a.group_key {
                Some(k) => k.clone(),
                None => format!(
                    "alertname={}",
                    a.labels.get("alertname").map(String::as_str).unwrap_or(&a.summary)
                ),
            },
        };
        format!("{}|{inner}", self.name)
    }

    /// The severity key an alert gets under this route.
    pub fn severity_for(&self, a: &AlertInput, scheme: &SeverityScheme, default: &str) -> String {
        if let Some(s) = self.severity.as_deref().and_then(|s| scheme.find(s)) {
            return s.key.clone();
        }
        let hint = a.severity.clone().or_else(|| a.labels.get("severity").cloned());
        if let Some(h) = hint {
            if let Some(mapped) = self.severity_map.get(&h).and_then(|m| scheme.find(m)) {
                return mapped.key.clone();
            }
            if let Some(level) = scheme.find(&h) {
                return level.key.clone();
            }
            if let Some(level) =
                default_severity_rank(&h).and_then(|r| scheme.levels.get(r.min(scheme.levels.len().saturating_sub(1))))
            {
                return level.key.clone();
            }
        }
        default.to_string()
    }
}

/// The documented default mapping of sender severities onto the scheme's
/// levels, most severe first: critical → 1st level, error/high → 2nd,
/// warning → 3rd, info/low → 4th.
pub fn default_severity_rank(sender: &str) -> Option<usize> {
    match sender.trim().to_ascii_lowercase().as_str() {
        "critical" | "crit" | "fatal" | "emergency" | "page" | "disaster" => Some(0),
        "error" | "high" | "major" | "err" => Some(1),
        "warning" | "warn" | "medium" | "average" | "minor" => Some(2),
        "info" | "low" | "informational" | "notice" | "none" | "ok" => Some(3),
        _ => None,
    }
}

/// First match wins; `continue` lets later routes match too. Falls back to `fallback`.
pub fn matching_routes<'a>(
    routes: &'a [Route],
    fallback: &'a Route,
    labels: &BTreeMap<String, String>,
) -> Vec<&'a Route> {
    let mut out = Vec::new();
    for r in routes {
        if all_match(&r.matchers, labels) {
            out.push(r);
            if !r.continue_matching {
                return out;
            }
        }
    }
    if out.is_empty() {
        out.push(fallback);
    }
    out
}

/// A silence or maintenance window: matching alerts are stored, marked
/// suppressed, and open no incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Silence {
    pub id: String,
    #[schema(value_type = Vec<String>)]
    pub matchers: Vec<Matcher>,
    #[schema(value_type = String, format = DateTime)]
    pub starts_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub ends_at: Timestamp,
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
    /// `silence` or `maintenance`.
    #[serde(default = "default_kind")]
    pub kind: String,
}

fn default_kind() -> String {
    "silence".into()
}

impl Silence {
    pub fn active_at(&self, now: Timestamp) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    pub fn silences(&self, labels: &BTreeMap<String, String>, now: Timestamp) -> bool {
        self.active_at(now) && all_match(&self.matchers, labels)
    }
}

/// Flapping: more than `max_changes` state changes within `window`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FlapPolicy {
    pub max_changes: usize,
    #[serde(with = "duration::opt")]
    pub window: Option<Duration>,
}

impl Default for FlapPolicy {
    fn default() -> Self {
        FlapPolicy {
            max_changes: 6,
            window: Some(Duration::from_secs(30 * 60)),
        }
    }
}

impl FlapPolicy {
    /// Keep the changes inside the window (plus `now`) and say whether it flaps.
    pub fn record(&self, mut changes: Vec<i64>, now: Timestamp) -> (Vec<i64>, bool) {
        let window_ms = self.window.map(|w| w.as_millis() as i64).unwrap_or(0);
        let now_ms = now.as_millisecond();
        changes.push(now_ms);
        changes.retain(|t| now_ms - *t <= window_ms);
        let flapping = changes.len() > self.max_changes;
        (changes, flapping)
    }

    /// Stable again: no change within the window before `now`.
    pub fn stable(&self, changes: &[i64], now: Timestamp) -> bool {
        let window_ms = self.window.map(|w| w.as_millis() as i64).unwrap_or(0);
        changes.iter().all(|t| now.as_millisecond() - *t > window_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn matchers_follow_prometheus() {
        let l = labels(&[("severity", "critical"), ("service", "api")]);
        assert!(Matcher::parse("severity=critical").unwrap().matches(&l));
        assert!(Matcher::parse("severity!=warning").unwrap().matches(&l));
        assert!(Matcher::parse("service=~api|web").unwrap().matches(&l));
        assert!(
            !Matcher::parse("service=~ap").unwrap().matches(&l),
            "regexes are anchored"
        );
        assert!(
            Matcher::parse("team!~.+").unwrap().matches(&l),
            "missing label is empty"
        );
        assert!(Matcher::parse(r#"service="api""#).unwrap().matches(&l));
        assert!(Matcher::parse("severity").is_err());
        assert!(Matcher::parse("x=~(").is_err());
    }

    #[test]
    fn severity_mapping_is_documented_default() {
        let scheme = SeverityScheme::default();
        let r = Route::default_route();
        let mut a = AlertInput {
            action: AlertAction::Trigger,
            dedup_key: "k".into(),
            summary: "s".into(),
            severity: Some("critical".into()),
            source: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            starts_at: None,
            ends_at: None,
            links: vec![],
            group_key: None,
            details: serde_json::Value::Null,
        };
        assert_eq!(r.severity_for(&a, &scheme, "SEV-3"), "SEV-1");
        a.severity = Some("warning".into());
        assert_eq!(r.severity_for(&a, &scheme, "SEV-3"), "SEV-3");
        a.severity = Some("info".into());
        assert_eq!(r.severity_for(&a, &scheme, "SEV-3"), "SEV-4");
        a.severity = Some("P2".into());
        assert_eq!(r.severity_for(&a, &scheme, "SEV-3"), "SEV-2");
        a.severity = Some("whatever".into());
        assert_eq!(r.severity_for(&a, &scheme, "SEV-3"), "SEV-3");
        let fixed = Route {
            severity: Some("SEV-2".into()),
            ..Route::default_route()
        };
        assert_eq!(fixed.severity_for(&a, &scheme, "SEV-3"), "SEV-2");
    }

    #[test]
    fn first_match_wins_unless_continue() {
        let a = Route {
            name: "a".into(),
            matchers: vec![Matcher::parse("team=db").unwrap()],
            ..Route::default_route()
        };
        let b = Route {
            name: "b".into(),
            continue_matching: true,
            ..Route::default_route()
        };
        let c = Route {
            name: "c".into(),
            ..Route::default_route()
        };
        let fallback = Route::default_route();
        let routes = vec![a, b, c];
        let names = |l| {
            matching_routes(&routes, &fallback, &l)
                .iter()
                .map(|r| r.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(labels(&[("team", "db")])), vec!["a"]);
        assert_eq!(names(labels(&[("team", "web")])), vec!["b", "c"]);
    }

    #[test]
    fn flapping_needs_more_than_n_changes_in_the_window() {
        let p = FlapPolicy {
            max_changes: 3,
            window: Some(Duration::from_secs(600)),
        };
        let t = |m: i64| Timestamp::from_second(m * 60).unwrap();
        let (c, f) = p.record(vec![], t(0));
        assert!(!f);
        let (c, f) = p.record(c, t(1));
        let (c, _) = p.record(c, t(2));
        assert!(!f);
        let (c, f) = p.record(c, t(3));
        assert!(f, "4 changes in 10 minutes");
        assert!(!p.stable(&c, t(5)));
        assert!(p.stable(&c, t(14)));
        let (_, f) = p.record(c, t(30));
        assert!(!f, "old changes age out");
    }
}
