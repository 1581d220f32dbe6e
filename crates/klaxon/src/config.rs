//! `klaxon.yaml`: one file for the server and the catalog. Errors name the
//! file, the line and the key.

use std::path::{Path, PathBuf};

use klaxon_domain::alert::{FlapPolicy, Matcher, Route, Silence};
use klaxon_domain::config::{
    Catalog, Category, RoleDef, ServiceDef, default_categories, default_roles, default_severity_for,
};
use klaxon_domain::escalation::EscalationPolicy;
use klaxon_domain::id::IdFormat;
use klaxon_domain::people::{Team, User};
use klaxon_domain::schedule::ScheduleSpec;
use klaxon_domain::severity::{SeverityLevel, SeverityScheme};
use klaxon_domain::wire::IntegrationFormat;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// The file as written. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `host:port` to listen on.
    pub listen: Option<String>,
    /// `sqlite:///abs/path.db` or `postgres://user@host/db`.
    pub database_url: Option<String>,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub severities: Option<Spanned<SeveritiesConfig>>,
    pub default_severity: Option<Spanned<String>>,
    pub categories: Option<Vec<Spanned<Category>>>,
    pub roles: Option<Vec<Spanned<RoleDef>>>,
    pub services: Option<Vec<Spanned<ServiceDef>>>,
    pub id_format: Option<Spanned<String>>,
    #[serde(default)]
    pub ingest: IngestConfig,
    /// The engine: escalation timers and notification delivery (see docs/oncall.md).
    #[serde(default)]
    pub engine: EngineConfig,
    /// Provider accounts of the notification channels: Slack app, SMTP,
    /// Twilio, PagerDuty (see docs/channels.md).
    #[serde(default)]
    pub channels: klaxon_engine::ChannelsConfig,
    /// Alert sources with fixed keys (keys can also be created through the API).
    pub integrations: Option<Vec<Spanned<IntegrationConfig>>>,
    /// Alert routes, evaluated in order before the API's routes.
    pub routes: Option<Vec<Spanned<Route>>>,
    /// Settings of the route that catches what no other route matches.
    pub default_route: Option<Spanned<Route>>,
    /// Silences and maintenance windows kept in the file.
    pub silences: Option<Vec<Spanned<SilenceConfig>>>,
    /// Users, teams, schedules and escalation policies as code (see docs/oncall.md);
    /// created or replaced at each start.
    pub users: Option<Vec<Spanned<User>>>,
    pub teams: Option<Vec<Spanned<Team>>>,
    pub schedules: Option<Vec<Spanned<ScheduleSpec>>>,
    pub escalation_policies: Option<Vec<Spanned<EscalationPolicy>>>,
    /// Who else is paged and when: "SEV-1 → product owner", "SEV-2 unresolved 30m → lead".
    pub paging_rules: Option<Vec<Spanned<klaxon_domain::paging_rules::PagingRule>>>,
    /// Who hears what per severity: destinations and rules (see docs/communication.md).
    pub communication: Option<Spanned<klaxon_domain::communication::Communication>>,
    /// The public status page: name, branding, components (see docs/status-page.md).
    pub status_page: Option<Spanned<klaxon_domain::status_page::StatusPageConfig>>,
    /// Health checks run by the prober (see docs/checks.md).
    pub checks: Option<Vec<Spanned<klaxon_probes::CheckSpec>>>,
    /// Replacements of the shipped message templates, by name (see docs/templates.md).
    pub templates: Option<Spanned<std::collections::BTreeMap<String, klaxon_domain::templates::TemplateSource>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Events per second per integration; 0 disables the limit.
    #[serde(default = "default_rate")]
    pub rate_limit_per_second: u32,
    #[serde(default = "default_burst")]
    pub rate_limit_burst: u32,
    #[serde(default)]
    pub flapping: Option<FlapPolicy>,
    /// Most alerts accepted (committed) and not yet applied; beyond it a
    /// request waits up to `backlog_wait` for room, then gets 503 (429 on
    /// `/v2/enqueue`) with `Retry-After`.
    #[serde(default = "default_max_backlog")]
    pub max_backlog: usize,
    /// Default 2s; `0s` refuses at once.
    #[serde(default, with = "klaxon_domain::duration::opt")]
    pub backlog_wait: Option<std::time::Duration>,
}

/// Longest `ingest.backlog_wait`.
const MAX_BACKLOG_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

fn default_max_backlog() -> usize {
    klaxon_store::DEFAULT_MAX_BACKLOG
}

fn default_rate() -> u32 {
    20_000
}

fn default_burst() -> u32 {
    40_000
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            rate_limit_per_second: default_rate(),
            rate_limit_burst: default_burst(),
            max_backlog: default_max_backlog(),
            backlog_wait: None,
            flapping: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Run escalation timers and deliveries on this node (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// How long a node owns a claimed timer or notification (default 30s).
    #[serde(default, with = "klaxon_domain::duration::opt")]
    pub lease: Option<std::time::Duration>,
    /// Longest pause between looks at the database (default 1s).
    #[serde(default, with = "klaxon_domain::duration::opt")]
    pub poll_interval: Option<std::time::Duration>,
    /// Delivery attempts before a notification is dead (default 12).
    pub max_attempts: Option<u32>,
    /// This Klaxon's external base URL, for links in notifications.
    pub public_url: Option<String>,
    /// Secret of the `X-Klaxon-Signature` HMAC on outgoing webhooks
    /// (or `KLAXON_WEBHOOK_SECRET`).
    pub webhook_secret: Option<String>,
    /// Timeout of one webhook request (default 10s).
    #[serde(default, with = "klaxon_domain::duration::opt")]
    pub webhook_timeout: Option<std::time::Duration>,
    /// Remind the communications lead this long before an update is due (default 5m).
    #[serde(default, with = "klaxon_domain::duration::opt")]
    pub update_reminder: Option<std::time::Duration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationConfig {
    pub name: String,
    pub format: IntegrationFormat,
    /// The ingest key senders use (at least 16 characters).
    pub key: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceConfig {
    pub id: String,
    pub matchers: Vec<String>,
    pub starts_at: jiff::Timestamp,
    pub ends_at: jiff::Timestamp,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub kind: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub max_connections: Option<u32>,
    /// SQLite `synchronous`: FULL (default) or NORMAL.
    pub sqlite_synchronous: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub require_token_for_reads: bool,
    /// Requests per second per client address on `/api/v1` (0 = no limit).
    #[serde(default = "default_api_rate")]
    pub rate_limit_per_second: u32,
    #[serde(default = "default_api_burst")]
    pub rate_limit_burst: u32,
}

fn default_api_rate() -> u32 {
    2_000
}

fn default_api_burst() -> u32 {
    4_000
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            require_token_for_reads: false,
            rate_limit_per_second: default_api_rate(),
            rate_limit_burst: default_api_burst(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeveritiesConfig {
    /// `sev` (seed 003, default) or `p0-p3` (seed 002).
    pub preset: Option<String>,
    /// Replaces the preset's levels when given.
    pub levels: Option<Vec<Spanned<SeverityLevel>>>,
}

/// A configuration problem, located.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {key}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: u64,
    pub key: String,
    pub message: String,
}

/// The loaded configuration.
#[derive(Debug, Default)]
pub struct Config {
    pub file: FileConfig,
    pub catalog: Catalog,
    pub templates: klaxon_domain::templates::Templates,
    pub path: Option<PathBuf>,
    pub routes: Vec<Route>,
    pub default_route: Option<Route>,
    pub silences: Vec<Silence>,
}

pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: 0,
        key: "-".into(),
        message: format!("cannot read: {e}"),
    })?;
    let mut cfg = parse(&text, &path.display().to_string())?;
    cfg.path = Some(path.to_path_buf());
    Ok(cfg)
}

pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    let err = |line: u64, key: &str, message: String| ConfigError {
        file: file.to_string(),
        line,
        key: key.to_string(),
        message,
    };
    let mut path_of_error: Option<String> = None;
    let parsed = if text.trim().is_empty() {
        Ok(FileConfig::default())
    } else {
        serde_saphyr::with_deserializer_from_str(text, |de| {
            serde_path_to_error::deserialize::<_, FileConfig>(de).map_err(|e| {
                path_of_error = Some(e.path().to_string());
                e.into_inner()
            })
        })
    };
    let fc = match parsed {
        Ok(fc) => fc,
        Err(e) => {
            let line = e.location().map(|l| l.line()).unwrap_or(0);
            let key = path_of_error
                .filter(|k| !k.is_empty() && k != ".")
                .unwrap_or_else(|| ".".into());
            return Err(err(line, &key, first_line(&e.to_string())));
        }
    };
    let mut cat = Catalog::default();
    if let Some(sev) = &fc.severities {
        let line = sev.referenced.line();
        let mut scheme = match sev.value.preset.as_deref() {
            None => SeverityScheme::default(),
            Some(p) => SeverityScheme::preset(p).ok_or_else(|| {
                err(
                    line,
                    "severities.preset",
                    format!(
                        "unknown preset {p:?}; expected one of: {}",
                        SeverityScheme::PRESETS.join(", ")
                    ),
                )
            })?,
        };
        if let Some(levels) = &sev.value.levels {
            scheme = SeverityScheme {
                name: "custom".into(),
                levels: levels.iter().map(|l| l.value.clone()).collect(),
            };
            scheme.validate().map_err(|m| {
                let idx = m
                    .strip_prefix("levels[")
                    .and_then(|r| r.split(']').next())
                    .and_then(|i| i.parse::<usize>().ok());
                let at = idx
                    .and_then(|i| levels.get(i))
                    .map(|l| l.referenced.line())
                    .unwrap_or(line);
                err(at, "severities.levels", m)
            })?;
        }
        cat.default_severity = default_severity_for(&scheme);
        cat.severities = scheme;
    }
    if let Some(d) = &fc.default_severity {
        let level = cat.severities.find(&d.value).ok_or_else(|| {
            err(
                d.referenced.line(),
                "default_severity",
                format!(
                    "{:?} is not a level of the scheme ({})",
                    d.value,
                    cat.severities.keys().join(", ")
                ),
            )
        })?;
        cat.default_severity = level.key.clone();
    }
    cat.categories = fc
        .categories
        .as_ref()
        .map(|v| v.iter().map(|c| c.value.clone()).collect())
        .unwrap_or_else(default_categories);
    cat.roles = fc
        .roles
        .as_ref()
        .map(|v| v.iter().map(|c| c.value.clone()).collect())
        .unwrap_or_else(default_roles);
    cat.services = fc
        .services
        .as_ref()
        .map(|v| v.iter().map(|c| c.value.clone()).collect())
        .unwrap_or_default();
    if let Some(f) = &fc.id_format {
        cat.id_format = IdFormat::parse(&f.value).map_err(|m| err(f.referenced.line(), "id_format", m))?;
    }
    cat.validate().map_err(|(key, message)| {
        let idx = key
            .split('[')
            .nth(1)
            .and_then(|r| r.split(']').next())
            .and_then(|i| i.parse::<usize>().ok());
        let line = match (key.split('[').next(), idx) {
            (Some("categories"), Some(i)) => fc
                .categories
                .as_ref()
                .and_then(|v| v.get(i))
                .map(|s| s.referenced.line()),
            (Some("roles"), Some(i)) => fc.roles.as_ref().and_then(|v| v.get(i)).map(|s| s.referenced.line()),
            (Some("services"), Some(i)) => fc.services.as_ref().and_then(|v| v.get(i)).map(|s| s.referenced.line()),
            _ => None,
        };
        err(line.unwrap_or(0), &key, message)
    })?;
    if let Some(sync) = &fc.database.sqlite_synchronous
        && !["FULL", "NORMAL", "EXTRA"].contains(&sync.to_ascii_uppercase().as_str())
    {
        return Err(err(
            0,
            "database.sqlite_synchronous",
            format!("{sync:?}: expected FULL, NORMAL or EXTRA"),
        ));
    }
    if fc.ingest.max_backlog < 1_000 {
        return Err(err(
            0,
            "ingest.max_backlog",
            format!(
                "{}: at least 1000 (alerts accepted and waiting to be applied; fewer would refuse ordinary bursts)",
                fc.ingest.max_backlog
            ),
        ));
    }
    if let Some(w) = fc.ingest.backlog_wait
        && w > MAX_BACKLOG_WAIT
    {
        return Err(err(
            0,
            "ingest.backlog_wait",
            format!(
                "{}: at most {} (a request held longer outlasts its sender's timeout)",
                klaxon_domain::duration::format(w),
                klaxon_domain::duration::format(MAX_BACKLOG_WAIT)
            ),
        ));
    }
    let mut routes = Vec::new();
    for (i, r) in fc.routes.iter().flatten().enumerate() {
        klaxon_http::check_route(&r.value, &cat)
            .map_err(|(k, m)| err(r.referenced.line(), &format!("routes[{i}].{k}"), m))?;
        if routes.iter().any(|o: &Route| o.name == r.value.name) {
            return Err(err(
                r.referenced.line(),
                &format!("routes[{i}].name"),
                format!("route {:?} is defined twice", r.value.name),
            ));
        }
        routes.push(r.value.clone());
    }
    let default_route = match &fc.default_route {
        Some(r) => {
            klaxon_http::check_route(&r.value, &cat)
                .map_err(|(k, m)| err(r.referenced.line(), &format!("default_route.{k}"), m))?;
            if !r.value.matchers.is_empty() {
                return Err(err(
                    r.referenced.line(),
                    "default_route.matchers",
                    "the default route matches everything; it takes no matchers".into(),
                ));
            }
            Some(r.value.clone())
        }
        None => None,
    };
    for (i, integ) in fc.integrations.iter().flatten().enumerate() {
        if integ.value.key.len() < 16 || integ.value.key.len() > 128 {
            return Err(err(
                integ.referenced.line(),
                &format!("integrations[{i}].key"),
                "an ingest key is 16-128 characters".into(),
            ));
        }
        if !klaxon_domain::config::is_slug(&integ.value.name) {
            return Err(err(
                integ.referenced.line(),
                &format!("integrations[{i}].name"),
                "a name is 1-100 letters, digits, '-', '_', '.' or '/'".into(),
            ));
        }
    }
    let mut silences = Vec::new();
    for (i, sc) in fc.silences.iter().flatten().enumerate() {
        let line = sc.referenced.line();
        let v = &sc.value;
        let matchers = v
            .matchers
            .iter()
            .map(|m| Matcher::parse(m))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| err(line, &format!("silences[{i}].matchers"), m))?;
        if matchers.is_empty() {
            return Err(err(
                line,
                &format!("silences[{i}].matchers"),
                "a silence needs at least one matcher".into(),
            ));
        }
        if v.ends_at <= v.starts_at {
            return Err(err(
                line,
                &format!("silences[{i}].ends_at"),
                "ends_at must be after starts_at".into(),
            ));
        }
        silences.push(Silence {
            id: v.id.clone(),
            matchers,
            starts_at: v.starts_at,
            ends_at: v.ends_at,
            created_by: "config".into(),
            comment: v.comment.clone(),
            kind: v.kind.clone().unwrap_or_else(|| "maintenance".into()),
        });
    }
    let check = |list: &str, i: usize, line: u64, r: Result<(), klaxon_domain::FieldError>| {
        r.map_err(|e| err(line, &format!("{list}[{i}].{}", e.field), e.message))
    };
    for (i, u) in fc.users.iter().flatten().enumerate() {
        check("users", i, u.referenced.line(), u.value.validate())?;
    }
    for (i, t) in fc.teams.iter().flatten().enumerate() {
        check("teams", i, t.referenced.line(), t.value.validate())?;
    }
    for (i, sc) in fc.schedules.iter().flatten().enumerate() {
        check("schedules", i, sc.referenced.line(), sc.value.validate())?;
    }
    for (i, p) in fc.escalation_policies.iter().flatten().enumerate() {
        check("escalation_policies", i, p.referenced.line(), p.value.validate())?;
    }
    for (i, r) in fc.paging_rules.iter().flatten().enumerate() {
        let mut rule = r.value.clone();
        check("paging_rules", i, r.referenced.line(), rule.validate(&cat))?;
        if cat.paging_rules.iter().any(|o| o.name == rule.name) {
            return Err(err(
                r.referenced.line(),
                &format!("paging_rules[{i}].name"),
                format!("rule {:?} is defined twice", rule.name),
            ));
        }
        cat.paging_rules.push(rule);
    }
    if let Some(c) = &fc.communication {
        let mut comms = c.value.clone();
        comms
            .validate(&cat)
            .map_err(|e| err(c.referenced.line(), &format!("communication.{}", e.field), e.message))?;
        cat.communication = comms;
    }
    if let Some(p) = &fc.status_page {
        p.value
            .validate()
            .map_err(|e| err(p.referenced.line(), &format!("status_page.{}", e.field), e.message))?;
    }
    for (i, c) in fc.checks.iter().flatten().enumerate() {
        check("checks", i, c.referenced.line(), c.value.validate())?;
        if fc.checks.iter().flatten().take(i).any(|o| o.value.name == c.value.name) {
            return Err(err(
                c.referenced.line(),
                &format!("checks[{i}].name"),
                format!("check {:?} is defined twice", c.value.name),
            ));
        }
        let sev = &c.value.severity;
        if cat.severities.find(sev).is_none() {
            return Err(err(
                c.referenced.line(),
                &format!("checks[{i}].severity"),
                format!(
                    "{sev:?} is not a level of the scheme ({})",
                    cat.severities.keys().join(", ")
                ),
            ));
        }
    }
    if let Some(d) = fc.engine.update_reminder {
        cat.update_reminder = d;
    }
    let templates = match &fc.templates {
        Some(t) => klaxon_domain::templates::Templates::with_overrides(&t.value)
            .map_err(|e| err(t.referenced.line(), &e.key, e.message))?,
        None => klaxon_domain::templates::Templates::default(),
    };
    Ok(Config {
        file: fc,
        catalog: cat,
        templates,
        path: None,
        routes,
        default_route,
        silences,
    })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_defaults() {
        let c = parse("", "k.yaml").unwrap();
        assert_eq!(c.catalog.severities.keys(), vec!["SEV-1", "SEV-2", "SEV-3", "SEV-4"]);
    }

    #[test]
    fn preset_and_custom_catalog() {
        let c = parse(
            "severities:\n  preset: p0-p3\nservices:\n  - key: api\n    name: API\nid_format: \"OPS-{yyyy}-{seq:4}\"\n",
            "k.yaml",
        )
        .unwrap();
        assert_eq!(c.catalog.severities.keys(), vec!["P0", "P1", "P2", "P3"]);
        assert_eq!(c.catalog.default_severity, "P2");
        assert_eq!(c.catalog.services[0].key, "api");
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = parse("listen: 127.0.0.1:8080\nseverities:\n  preset: p9\n", "k.yaml").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (3, "severities.preset"), "{e}");
        let e = parse("listen: x\nlisten_typo: 1\n", "k.yaml").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.to_string().contains("listen_typo"), "{e}");
        let e = parse("categories:\n  - key: a\n  - key: a\n", "k.yaml").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (3, "categories[1].key"), "{e}");
        let e = parse("id_format: \"INC-{yyyy}\"\n", "k.yaml").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (1, "id_format"), "{e}");
        let e = parse("auth:\n  require_token_for_reads: maybe\n", "k.yaml").unwrap_err();
        assert_eq!(e.key, "auth.require_token_for_reads", "{e}");
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn communication_errors_name_the_key() {
        let e = parse(
            "communication:\n  destinations:\n    - {name: eng, kind: slack, address: \"#incidents\"}\n  rules:\n    - {severities: [SEV-1], notify: [eng, execs]}\n",
            "k.yaml",
        )
        .unwrap_err();
        assert_eq!(e.key, "communication.rules[0].notify[1]", "{e}");
        let c = parse(
            "communication:\n  destinations:\n    - {name: eng, kind: slack, address: \"#incidents\"}\n  rules:\n    - {severities: [critical], notify: [eng]}\n",
            "k.yaml",
        )
        .unwrap();
        assert_eq!(c.catalog.communication.rules[0].severities, vec!["SEV-1"]);
    }

    #[test]
    fn paging_rule_errors_name_file_line_and_key() {
        let e = parse(
            "paging_rules:\n  - name: a\n    when: {severity: [SEV-1]}\n    notify: [{user: po}]\n  - name: b\n    when: {severity: [SEV-9]}\n    notify: [{user: po}]\n",
            "k.yaml",
        )
        .unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (5, "paging_rules[1].when.severity[0]"), "{e}");
        let e = parse(
            "paging_rules:\n  - name: a\n    notify: [{user: po}]\n  - name: a\n    notify: [{user: po}]\n",
            "k.yaml",
        )
        .unwrap_err();
        assert_eq!(e.key, "paging_rules[1].name", "{e}");
        let c = parse(
            "engine:\n  update_reminder: 10m\npaging_rules:\n  - name: sev1\n    when: {severity: [critical]}\n    notify: [{user: po}]\n",
            "k.yaml",
        )
        .unwrap();
        assert_eq!(c.catalog.paging_rules[0].when.severity, vec!["SEV-1".to_string()]);
        assert_eq!(c.catalog.update_reminder.as_secs(), 600);
    }

    #[test]
    fn people_errors_name_file_line_and_key() {
        let e = parse("users:\n  - id: alice\n    name: A\n    email: nope\n", "k.yaml").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (2, "users[0].email"), "{e}");
        let e = parse(
            "schedules:\n  - name: s\n    time_zone: Mars/Base\n    roles: {}\n",
            "k.yaml",
        )
        .unwrap_err();
        assert_eq!(e.key, "schedules[0].time_zone", "{e}");
    }

    /// Every YAML example in the docs that shows klaxon.yaml must check.
    #[test]
    fn documented_examples_check() {
        let docs = [
            ("docs/configuration.md", include_str!("../../../docs/configuration.md")),
            ("docs/communication.md", include_str!("../../../docs/communication.md")),
            ("docs/checks.md", include_str!("../../../docs/checks.md")),
            ("docs/status-page.md", include_str!("../../../docs/status-page.md")),
        ];
        let mut n = 0;
        for (name, doc) in docs {
            for b in doc.split("```yaml\n").skip(1).map(|b| b.split("```").next().unwrap()) {
                parse(b, name).unwrap_or_else(|e| panic!("{e}\n{b}"));
                n += 1;
            }
        }
        assert!(n >= 3);
    }
}
