//! Message templates: seed 003's Initial Incident Notification, Status Update,
//! Resolution Notification, Escalation Request and User-Facing Status Page
//! Update, and seed 002's internal update — shipped as defaults, replaceable
//! by configuration, rendered with MiniJinja (Jinja2 syntax).
//!
//! Each template has a `subject` (email subject, chat headline), a rich `body`
//! (email, Slack, Teams) and a `short` form (SMS, at most 160 characters
//! is the aim). Every variable comes from [`TemplateContext`]; an unknown
//! variable is an error, found by `klaxon config check` with a sample incident.

use std::collections::BTreeMap;

use jiff::Timestamp;
use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};

use crate::event::{EventKind, TimelineEvent};
use crate::incident::Incident;

/// The template names Klaxon ships and uses.
pub const NAMES: [&str; 6] = [
    "initial-notification",
    "status-update",
    "resolution",
    "escalation-request",
    "status-page-update",
    "internal-update",
];

/// One template's sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSource {
    pub subject: String,
    pub body: String,
    pub short: String,
}

/// What a template renders to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rendered {
    pub name: String,
    pub subject: String,
    pub body: String,
    pub short: String,
}

/// Everything a template may use.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateContext {
    pub id: String,
    pub title: String,
    pub description: String,
    pub severity: String,
    /// The status key (`investigating`) and the public word (`Investigating`).
    pub status: String,
    pub status_word: String,
    pub category: Option<String>,
    pub services: Vec<String>,
    pub users_affected: Option<u64>,
    pub percent_affected: Option<f64>,
    pub user_impact: Option<String>,
    pub workaround: Option<String>,
    /// `YYYY-MM-DD HH:MM UTC`.
    pub started: String,
    pub resolved: Option<String>,
    /// `1 hour 5 minutes`.
    pub duration: String,
    pub roles: BTreeMap<String, String>,
    pub incident_commander: Option<String>,
    pub responders: Vec<String>,
    /// Notes and status messages from the timeline, oldest first.
    pub actions: Vec<String>,
    /// The message of this update (the text posted with it).
    pub message: Option<String>,
    /// Number of this update (`INCIDENT UPDATE #N`).
    pub update_number: u32,
    pub next_update: Option<String>,
    /// `15 minutes`.
    pub next_update_in: Option<String>,
    pub now: String,
    pub url: Option<String>,
}

fn utc(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// `2 hours 5 minutes`, `45 minutes`, `0 minutes`.
pub fn human_duration(secs: i64) -> String {
    let mins = secs.max(0) / 60;
    let (h, m) = (mins / 60, mins % 60);
    let unit = |n: i64, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    match (h, m) {
        (0, m) => unit(m, "minute"),
        (h, 0) => unit(h, "hour"),
        (h, m) => format!("{} {}", unit(h, "hour"), unit(m, "minute")),
    }
}

impl TemplateContext {
    /// The context of an incident at `now`, with its timeline.
    pub fn new(
        inc: &Incident,
        timeline: &[TimelineEvent],
        message: Option<String>,
        update_number: u32,
        now: Timestamp,
        url: Option<String>,
    ) -> Self {
        let end = inc.resolved_at.unwrap_or(now);
        let actions = timeline
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::NoteAdded { text } => Some(text.clone()),
                EventKind::StatusChanged {
                    to, message: Some(m), ..
                } => Some(format!("{}: {m}", to.public_word())),
                _ => None,
            })
            .collect();
        TemplateContext {
            id: inc.id.clone(),
            title: inc.title.clone(),
            description: inc.description.clone(),
            severity: inc.severity.clone(),
            status: inc.status.as_str().to_string(),
            status_word: inc.status.public_word().to_string(),
            category: inc.category.clone(),
            services: inc.services.clone(),
            users_affected: inc.impact.users_affected,
            percent_affected: inc.impact.percent,
            user_impact: inc.impact.user_facing.clone(),
            workaround: inc.workaround.clone(),
            started: utc(inc.started_at),
            resolved: inc.resolved_at.map(utc),
            duration: human_duration(end.as_second() - inc.started_at.as_second()),
            incident_commander: inc.roles.get("incident_commander").cloned(),
            roles: inc.roles.clone(),
            responders: inc.assignees.clone(),
            actions,
            message,
            update_number,
            next_update: inc.next_update_due.map(utc),
            next_update_in: inc
                .next_update_due
                .map(|d| human_duration(d.as_second() - now.as_second())),
            now: utc(now),
            url,
        }
    }

    /// A made-up SEV-1 with every field set, for `klaxon config check`.
    pub fn sample() -> Self {
        let t: Timestamp = "2026-11-23T14:00:00Z".parse().unwrap_or(Timestamp::UNIX_EPOCH);
        let mut roles = BTreeMap::new();
        roles.insert("incident_commander".to_string(), "alice".to_string());
        TemplateContext {
            id: "INC-2026-11-23-001".into(),
            title: "API returning 500s".into(),
            description: "Error rate above 5 % on the public API".into(),
            severity: "SEV-1".into(),
            status: "investigating".into(),
            status_word: "Investigating".into(),
            category: Some("availability".into()),
            services: vec!["api".into(), "auth".into()],
            users_affected: Some(1200),
            percent_affected: Some(40.0),
            user_impact: Some("Uploads fail".into()),
            workaround: Some("Use the EU endpoint".into()),
            started: utc(t),
            resolved: None,
            duration: "25 minutes".into(),
            incident_commander: Some("alice".into()),
            roles,
            responders: vec!["bob".into()],
            actions: vec!["Rolled back the 13:55 deploy".into()],
            message: Some("Error rate is falling after the rollback".into()),
            update_number: 2,
            next_update: Some(utc(t)),
            next_update_in: Some("15 minutes".into()),
            now: utc(t),
            url: Some("https://klaxon.example.com/api/v1/incidents/INC-2026-11-23-001".into()),
        }
    }
}

fn src(subject: &str, body: &str, short: &str) -> TemplateSource {
    TemplateSource {
        subject: subject.into(),
        body: body.into(),
        short: short.into(),
    }
}

/// The shipped templates (seed 003 and seed 002 wording).
pub fn defaults() -> BTreeMap<String, TemplateSource> {
    let impact = "IMPACT:\n- Affected Users: {% if users_affected %}{{ users_affected }}{% if percent_affected %} ({{ percent_affected }} %){% endif %}{% elif percent_affected %}{{ percent_affected }} %{% else %}Unknown{% endif %}\n- Affected Services: {{ services | join(\", \") or \"Unknown\" }}\n- User-Facing Impact: {{ user_impact or \"Unknown\" }}\n";
    let actions = "ACTIONS TAKEN:\n{% for a in actions %}- {{ a }}\n{% else %}- None yet\n{% endfor %}";
    let mut m = BTreeMap::new();
    m.insert(
        "initial-notification".to_string(),
        src(
            "[{{ severity }}] Incident: {{ title }}",
            &format!(
                "INCIDENT NOTIFICATION\n\nIncident ID: {{{{ id }}}}\nSeverity: {{{{ severity }}}}\nStatus: {{{{ status_word }}}}\nStarted: {{{{ started }}}}\n\nISSUE:\n{{{{ description or title }}}}\n\n{impact}\nCURRENT STATUS:\n{{{{ message or status_word }}}}\n\n{actions}\nINCIDENT COMMANDER: {{{{ incident_commander or \"Unassigned\" }}}}\nRESPONDERS: {{{{ responders | join(\", \") or \"None yet\" }}}}\n{{% if next_update_in %}}\nNext update in: {{{{ next_update_in }}}}\n{{% endif %}}"
            ),
            "[{{ severity }}] {{ id }} {{ title }} — {{ status_word }}{% if incident_commander %}, IC {{ incident_commander }}{% endif %}",
        ),
    );
    m.insert(
        "status-update".to_string(),
        src(
            "[{{ severity }}] Update: {{ title }}",
            &format!(
                "INCIDENT UPDATE #{{{{ update_number }}}}\n\nIncident ID: {{{{ id }}}}\nSeverity: {{{{ severity }}}}\nStatus: {{{{ status_word }}}}\nDuration: {{{{ duration }}}}\n\nPROGRESS:\n{{{{ message or \"No change since the last update\" }}}}\n\nCURRENT STATUS:\n{{{{ status_word }}}}\n\n{actions}{{% if workaround %}}\nWORKAROUND:\n{{{{ workaround }}}}\n{{% endif %}}{{% if next_update_in %}}\nNext update in: {{{{ next_update_in }}}}\n{{% endif %}}"
            ),
            "[{{ severity }}] {{ id }} update #{{ update_number }}: {{ status_word }}{% if message %} — {{ message }}{% endif %}",
        ),
    );
    m.insert(
        "resolution".to_string(),
        src(
            "[RESOLVED] [{{ severity }}]: {{ title }}",
            &format!(
                "INCIDENT RESOLVED\n\nIncident ID: {{{{ id }}}}\nSeverity: {{{{ severity }}}}\nStatus: Resolved\nDuration: {{{{ duration }}}}\nResolved: {{{{ resolved or now }}}}\n\nISSUE:\n{{{{ description or title }}}}\n\n{impact}\nRESOLUTION:\n{{{{ message or \"See the timeline\" }}}}\n\n{actions}\nThank you for your patience during this incident.\n"
            ),
            "[RESOLVED] {{ id }} {{ title }} after {{ duration }}",
        ),
    );
    m.insert(
        "escalation-request".to_string(),
        src(
            "ESCALATION NEEDED: [{{ severity }}] {{ title }}",
            &format!(
                "ESCALATION REQUEST\n\nIncident ID: {{{{ id }}}}\nSeverity: {{{{ severity }}}}\nDuration: {{{{ duration }}}}\nCurrent Responder: {{{{ responders | join(\", \") or incident_commander or \"Unassigned\" }}}}\n\nSITUATION:\n{{{{ description or title }}}}\n\n{impact}\nACTIONS ATTEMPTED:\n{{% for a in actions %}}- {{{{ a }}}}\n{{% else %}}- None yet\n{{% endfor %}}\nREASON FOR ESCALATION:\n{{{{ message or \"Not acknowledged in time\" }}}}\n\nCurrent Status: {{{{ status_word }}}}\n"
            ),
            "ESCALATION {{ id }} [{{ severity }}] {{ title }} — {{ duration }} open, {{ status_word }}",
        ),
    );
    m.insert(
        "status-page-update".to_string(),
        src(
            "{{ status_word }}: {{ title }}",
            "[{{ status_word | upper }}] {{ title }}\nPosted: {{ now }}\n\n{{ message or user_impact or description or title }}\n\nCurrent status: {{ status_word }}\n{% if services %}\nAffected Services:\n{% for s in services %}- {{ s }}\n{% endfor %}{% endif %}{% if workaround %}\nWorkaround:\n{{ workaround }}\n{% endif %}{% if next_update %}\nNext Update: {{ next_update }}\n{% endif %}",
            "{{ status_word }}: {{ title }}",
        ),
    );
    m.insert(
        "internal-update".to_string(),
        src(
            "{{ id }} update [{{ now }}]",
            "Incident {{ id }} Update [{{ now }}]\n\nStatus: {{ status_word }}\n\nWhat we know:\n- {{ description or title }}\n\nWhat we're doing:\n{% for a in actions %}- {{ a }}\n{% else %}- Investigating\n{% endfor %}\nImpact:\n- {{ user_impact or \"Unknown\" }}\n{% if next_update %}\nNext update: {{ next_update }}\n{% endif %}",
            "{{ id }} {{ status_word }}{% if message %}: {{ message }}{% endif %}",
        ),
    );
    m
}

/// The templates in force: defaults with configured replacements.
#[derive(Debug, Clone)]
pub struct Templates {
    sources: BTreeMap<String, TemplateSource>,
}

impl Default for Templates {
    fn default() -> Self {
        Self { sources: defaults() }
    }
}

/// A template that does not compile or render: `(key, message)` where key is
/// `templates.<name>.<part>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub key: String,
    pub message: String,
}

impl Templates {
    /// Defaults overridden by `overrides`; every template is rendered once
    /// against [`TemplateContext::sample`] so errors show at load, not at 3 a.m.
    pub fn with_overrides(overrides: &BTreeMap<String, TemplateSource>) -> Result<Self, TemplateError> {
        let mut sources = defaults();
        for (name, s) in overrides {
            if !NAMES.contains(&name.as_str()) {
                return Err(TemplateError {
                    key: format!("templates.{name}"),
                    message: format!("unknown template; the names are {}", NAMES.join(", ")),
                });
            }
            sources.insert(name.clone(), s.clone());
        }
        let t = Templates { sources };
        for name in NAMES {
            t.render(name, &TemplateContext::sample())?;
        }
        Ok(t)
    }

    pub fn source(&self, name: &str) -> Option<&TemplateSource> {
        self.sources.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }

    /// Render, and should the template fail (it was checked at start, so
    /// only a bug gets here), a plain message from the incident instead:
    /// a page must never be lost to a template.
    pub fn render_or_plain(&self, name: &str, cx: &TemplateContext) -> Rendered {
        self.render(name, cx).unwrap_or_else(|_| {
            let line = format!("[{}] {} {} — {}", cx.severity, cx.id, cx.title, cx.status_word);
            Rendered {
                name: name.to_string(),
                subject: format!("[{}] {}", cx.severity, cx.title),
                body: format!("{line}\n\n{}", cx.message.as_deref().unwrap_or_default()),
                short: line,
            }
        })
    }

    /// Render one template's three parts.
    pub fn render(&self, name: &str, cx: &TemplateContext) -> Result<Rendered, TemplateError> {
        let src = self.sources.get(name).ok_or_else(|| TemplateError {
            key: format!("templates.{name}"),
            message: "no such template".into(),
        })?;
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let part = |part: &str, text: &str| -> Result<String, TemplateError> {
            let err = |e: minijinja::Error| TemplateError {
                key: format!("templates.{name}.{part}"),
                message: match e.line() {
                    Some(l) => format!("line {l}: {}", e.detail().unwrap_or(&e.to_string())),
                    None => e.to_string(),
                },
            };
            let tmpl = env.template_from_str(text).map_err(err)?;
            tmpl.render(cx).map_err(err)
        };
        Ok(Rendered {
            name: name.to_string(),
            subject: part("subject", &src.subject)?.trim().to_string(),
            body: part("body", &src.body)?,
            short: part("short", &src.short)?.trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_renders_with_the_seed_headings() {
        let t = Templates::default();
        let cx = TemplateContext::sample();
        let r = t.render("initial-notification", &cx).unwrap();
        assert_eq!(r.subject, "[SEV-1] Incident: API returning 500s");
        for want in [
            "INCIDENT NOTIFICATION",
            "Incident ID: INC-2026-11-23-001",
            "Started: 2026-11-23 14:00 UTC",
            "- Affected Users: 1200 (40.0 %)",
            "- Affected Services: api, auth",
            "INCIDENT COMMANDER: alice",
            "- Rolled back the 13:55 deploy",
            "Next update in: 15 minutes",
        ] {
            assert!(r.body.contains(want), "{want:?} not in\n{}", r.body);
        }
        let u = t.render("status-update", &cx).unwrap();
        assert!(u.body.starts_with("INCIDENT UPDATE #2"), "{}", u.body);
        assert!(u.short.len() <= 160, "{}", u.short);
        let res = t.render("resolution", &cx).unwrap();
        assert!(res.subject.starts_with("[RESOLVED] [SEV-1]"));
        let esc = t.render("escalation-request", &cx).unwrap();
        assert!(esc.body.contains("REASON FOR ESCALATION:"));
        let page = t.render("status-page-update", &cx).unwrap();
        assert!(
            page.body.starts_with("[INVESTIGATING] API returning 500s"),
            "{}",
            page.body
        );
        assert!(page.body.contains("Workaround:\nUse the EU endpoint"));
        let internal = t.render("internal-update", &cx).unwrap();
        assert!(internal.body.contains("What we're doing:"));
        for name in NAMES {
            assert!(t.render(name, &cx).unwrap().short.chars().count() <= 160, "{name}");
        }
    }

    #[test]
    fn overrides_are_checked_at_load() {
        let mut o = BTreeMap::new();
        o.insert("status-update".to_string(), src("{{ severity }} {{ titel }}", "x", "y"));
        let e = Templates::with_overrides(&o).unwrap_err();
        assert_eq!(e.key, "templates.status-update.subject");
        assert!(
            e.message.contains("titel") || e.message.contains("undefined"),
            "{}",
            e.message
        );
        o.insert("status-update".to_string(), src("ok", "{% for x in %}", "y"));
        assert_eq!(
            Templates::with_overrides(&o).unwrap_err().key,
            "templates.status-update.body"
        );
        let mut o = BTreeMap::new();
        o.insert("gossip".to_string(), src("a", "b", "c"));
        assert_eq!(Templates::with_overrides(&o).unwrap_err().key, "templates.gossip");
        let mut o = BTreeMap::new();
        o.insert(
            "resolution".to_string(),
            src(
                "Fixed: {{ title }}",
                "{{ id }} is fixed after {{ duration }}",
                "{{ id }} fixed",
            ),
        );
        let t = Templates::with_overrides(&o).unwrap();
        let r = t.render("resolution", &TemplateContext::sample()).unwrap();
        assert_eq!(r.body, "INC-2026-11-23-001 is fixed after 25 minutes");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(0), "0 minutes");
        assert_eq!(human_duration(60), "1 minute");
        assert_eq!(human_duration(3600), "1 hour");
        assert_eq!(human_duration(3900), "1 hour 5 minutes");
        assert_eq!(human_duration(7500), "2 hours 5 minutes");
    }
}
