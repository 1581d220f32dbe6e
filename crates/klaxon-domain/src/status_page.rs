//! The public status page, as data: components and their status, the public
//! incidents with their public updates, scheduled maintenances, and the
//! overall indicator — in the shapes and vocabulary of Atlassian
//! Statuspage's public API v2, so existing widgets and clients work.
//!
//! Pure: [`build`] turns the configuration, the incidents and maintenances
//! into a [`Summary`]; the HTTP layer renders it once per change.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::alert::Silence;
use crate::config::{Catalog, is_slug};
use crate::error::FieldError;
use crate::incident::Incident;
use crate::lifecycle::Status;

/// `status_page:` in klaxon.yaml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusPageConfig {
    /// Page title (`Acme Status`).
    #[serde(default = "default_name")]
    pub name: String,
    /// Public URL of the page (`https://status.example.com`); links in feeds and JSON.
    #[serde(default)]
    pub url: Option<String>,
    /// IANA time zone times are shown in.
    #[serde(default = "utc")]
    pub time_zone: String,
    #[serde(default)]
    pub logo_url: Option<String>,
    /// Accent colour, `#rrggbb`.
    #[serde(default = "default_color")]
    pub brand_color: String,
    #[serde(default)]
    pub footer_links: Vec<FooterLink>,
    /// Components in display order. Empty: one per catalog service.
    #[serde(default)]
    pub components: Vec<ComponentDef>,
    /// Days of history on the page (default 90).
    #[serde(default = "ninety")]
    pub history_days: u32,
    /// Also serve the page (and nothing else) on this address, e.g. for
    /// `status.example.com` behind its own proxy: `0.0.0.0:8081`.
    #[serde(default)]
    pub listen: Option<String>,
}

impl Default for StatusPageConfig {
    fn default() -> Self {
        Self {
            name: default_name(),
            url: None,
            time_zone: utc(),
            logo_url: None,
            brand_color: default_color(),
            footer_links: vec![],
            components: vec![],
            history_days: ninety(),
            listen: None,
        }
    }
}

fn default_name() -> String {
    "Status".into()
}
fn utc() -> String {
    "UTC".into()
}
fn default_color() -> String {
    "#1f6feb".into()
}
fn ninety() -> u32 {
    90
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FooterLink {
    pub text: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComponentDef {
    /// Stable ID (`api`).
    pub id: String,
    pub name: String,
    /// Group shown as a heading (`Core platform`).
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Incident services that affect it (default: its ID).
    #[serde(default)]
    pub services: Vec<String>,
    /// Hidden while operational.
    #[serde(default)]
    pub only_show_if_degraded: bool,
}

impl ComponentDef {
    fn covers(&self, service: &str) -> bool {
        if self.services.is_empty() {
            self.id == service
        } else {
            self.services.iter().any(|s| s == service)
        }
    }
}

impl StatusPageConfig {
    /// The components in force: configured, or one per catalog service.
    pub fn components(&self, cat: &Catalog) -> Vec<ComponentDef> {
        if !self.components.is_empty() {
            return self.components.clone();
        }
        cat.services
            .iter()
            .map(|s| ComponentDef {
                id: s.key.clone(),
                name: if s.name.is_empty() {
                    s.key.clone()
                } else {
                    s.name.clone()
                },
                group: s.group.clone(),
                description: (!s.description.is_empty()).then(|| s.description.clone()),
                services: vec![],
                only_show_if_degraded: false,
            })
            .collect()
    }

    /// Errors name the field (`components[1].id`).
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            return Err(FieldError::new("name", "1-100 characters"));
        }
        if jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            return Err(FieldError::new(
                "time_zone",
                format!("unknown time zone {:?}", self.time_zone),
            ));
        }
        let hex = self.brand_color.strip_prefix('#').unwrap_or("");
        if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(FieldError::new("brand_color", "a colour is #rrggbb"));
        }
        for (k, u) in [("url", &self.url), ("logo_url", &self.logo_url)] {
            if let Some(u) = u
                && !(u.starts_with("https://") || u.starts_with("http://"))
            {
                return Err(FieldError::new(k, "an http(s) URL"));
            }
        }
        for (i, l) in self.footer_links.iter().enumerate() {
            if !(l.url.starts_with("https://") || l.url.starts_with("http://") || l.url.starts_with("mailto:")) {
                return Err(FieldError::new(
                    format!("footer_links[{i}].url"),
                    "an http(s) or mailto: URL",
                ));
            }
        }
        for (i, c) in self.components.iter().enumerate() {
            if !is_slug(&c.id) {
                return Err(FieldError::new(
                    format!("components[{i}].id"),
                    "1-100 letters, digits, '-', '_' or '.'",
                ));
            }
            if self.components[..i].iter().any(|o| o.id == c.id) {
                return Err(FieldError::new(
                    format!("components[{i}].id"),
                    format!("{:?} is used twice", c.id),
                ));
            }
            if c.name.trim().is_empty() {
                return Err(FieldError::new(format!("components[{i}].name"), "must not be empty"));
            }
        }
        if !(1..=365).contains(&self.history_days) {
            return Err(FieldError::new("history_days", "1-365"));
        }
        Ok(())
    }
}

/// Statuspage's component statuses, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComponentStatus {
    Operational,
    UnderMaintenance,
    DegradedPerformance,
    PartialOutage,
    MajorOutage,
}

impl ComponentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "operational",
            ComponentStatus::UnderMaintenance => "under_maintenance",
            ComponentStatus::DegradedPerformance => "degraded_performance",
            ComponentStatus::PartialOutage => "partial_outage",
            ComponentStatus::MajorOutage => "major_outage",
        }
    }

    /// The words shown next to the colour.
    pub fn label(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "Operational",
            ComponentStatus::UnderMaintenance => "Under maintenance",
            ComponentStatus::DegradedPerformance => "Degraded performance",
            ComponentStatus::PartialOutage => "Partial outage",
            ComponentStatus::MajorOutage => "Major outage",
        }
    }
}

/// Incident impact and the component status it causes, by the severity's
/// rank: the most severe level is `critical` / major outage, the next
/// `major` / partial outage, the third `minor` / degraded performance, the
/// rest `none` / operational (seed 003: SEV-1..SEV-4).
pub fn impact_of(cat: &Catalog, severity: &str) -> (&'static str, ComponentStatus) {
    let rank = cat
        .severities
        .levels
        .iter()
        .position(|l| l.key == severity)
        .unwrap_or(usize::MAX);
    match rank {
        0 => ("critical", ComponentStatus::MajorOutage),
        1 => ("major", ComponentStatus::PartialOutage),
        2 => ("minor", ComponentStatus::DegradedPerformance),
        _ => ("none", ComponentStatus::Operational),
    }
}

/// Klaxon's status in Statuspage's incident vocabulary.
pub fn incident_status(s: Status) -> &'static str {
    match s {
        Status::Triggered | Status::Acknowledged | Status::Investigating => "investigating",
        Status::Identified | Status::Mitigating => "identified",
        Status::Monitoring => "monitoring",
        Status::Resolved | Status::Closed => "resolved",
    }
}

/// A public update as the page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicUpdate {
    pub number: u32,
    pub at: Timestamp,
    pub status: Status,
    pub body: String,
}

/// An incident that may appear on the page, with its public updates.
#[derive(Debug, Clone)]
pub struct PageIncident {
    pub incident: Incident,
    pub updates: Vec<PublicUpdate>,
}

impl PageIncident {
    /// Shown when it has at least one public update and is not private.
    pub fn is_public(&self) -> bool {
        !self.incident.private && !self.updates.is_empty()
    }
}

/// A manual override of one component's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ComponentOverride {
    pub component: String,
    pub status: ComponentStatus,
    #[serde(default)]
    pub note: Option<String>,
}

/// Someone told about public updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Subscriber {
    pub id: String,
    /// `email` or `webhook`.
    pub kind: String,
    pub address: String,
    /// `pending` (email, until confirmed), `confirmed` or `unsubscribed`.
    pub state: String,
    /// Confirms or ends this subscription (in the links of its messages).
    #[serde(skip)]
    pub token: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

// ---- Statuspage API v2 shapes ----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub id: String,
    pub name: String,
    pub url: String,
    pub time_zone: String,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageStatus {
    pub indicator: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub id: String,
    pub name: String,
    pub status: ComponentStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub position: u32,
    pub description: Option<String>,
    pub showcase: bool,
    pub start_date: Option<String>,
    pub group_id: Option<String>,
    pub page_id: String,
    pub group: bool,
    pub only_show_if_degraded: bool,
    /// A group: the IDs of its components.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<String>>,
    /// The group's name, for the HTML page (not in the JSON).
    #[serde(skip)]
    pub group_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AffectedComponent {
    pub code: String,
    pub name: String,
    pub old_status: ComponentStatus,
    pub new_status: ComponentStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentUpdate {
    pub id: String,
    pub status: String,
    pub body: String,
    pub incident_id: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub display_at: Timestamp,
    pub affected_components: Vec<AffectedComponent>,
    pub deliver_notifications: bool,
    pub tweet_id: Option<String>,
    pub custom_tweet: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageIncidentJson {
    pub id: String,
    pub name: String,
    pub status: String,
    pub impact: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub monitoring_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub shortlink: String,
    pub started_at: Timestamp,
    pub page_id: String,
    /// Newest first, as Statuspage orders them.
    pub incident_updates: Vec<IncidentUpdate>,
    pub components: Vec<Component>,
    /// Scheduled maintenances only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_until: Option<Timestamp>,
    /// Klaxon extensions: when the next update is due, and the workaround.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_update_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workaround: Option<String>,
}

/// Everything the page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub page: Page,
    pub status: PageStatus,
    pub components: Vec<Component>,
    /// Unresolved public incidents, newest first.
    pub incidents: Vec<PageIncidentJson>,
    /// Upcoming and in-progress maintenances.
    pub scheduled_maintenances: Vec<PageIncidentJson>,
}

/// The roll-up (Atlassian's rule, documented in docs/status-page.md): any
/// major outage → `major` "Partial System Outage", or `critical` "Major
/// System Outage" when every component is down; partial outage → `major`
/// "Partial System Outage"; degraded → `minor` "Partially Degraded
/// Service"; maintenance only → `maintenance` "Service Under Maintenance".
/// An unresolved critical incident raises the indicator to `critical`.
pub fn roll_up(components: &[ComponentStatus], incident_impacts: &[&str]) -> PageStatus {
    let worst = components.iter().copied().max().unwrap_or(ComponentStatus::Operational);
    let all_down = !components.is_empty() && components.iter().all(|c| *c == ComponentStatus::MajorOutage);
    let (mut indicator, description) = match worst {
        ComponentStatus::MajorOutage if all_down => ("critical", "Major System Outage"),
        ComponentStatus::MajorOutage | ComponentStatus::PartialOutage => ("major", "Partial System Outage"),
        ComponentStatus::DegradedPerformance => ("minor", "Partially Degraded Service"),
        ComponentStatus::UnderMaintenance => ("maintenance", "Service Under Maintenance"),
        ComponentStatus::Operational => ("none", "All Systems Operational"),
    };
    let rank = |i: &str| match i {
        "critical" => 3,
        "major" => 2,
        "minor" => 1,
        _ => 0,
    };
    if let Some(top) = incident_impacts.iter().copied().max_by_key(|i| rank(i))
        && rank(top) > rank(indicator)
    {
        indicator = top;
    }
    PageStatus {
        indicator: indicator.into(),
        description: description.into(),
    }
}

/// Maintenance window status at `now`.
fn maintenance_status(m: &Silence, now: Timestamp) -> &'static str {
    if now < m.starts_at {
        "scheduled"
    } else if now < m.ends_at {
        "in_progress"
    } else {
        "completed"
    }
}

/// The components a maintenance window names with `service=` matchers.
fn maintenance_components<'a>(m: &Silence, comps: &'a [ComponentDef]) -> Vec<&'a ComponentDef> {
    comps
        .iter()
        .filter(|c| {
            let ids: Vec<&str> = if c.services.is_empty() {
                vec![c.id.as_str()]
            } else {
                c.services.iter().map(String::as_str).collect()
            };
            ids.iter().any(|s| {
                let labels = BTreeMap::from([("service".to_string(), s.to_string())]);
                m.matchers.iter().any(|x| x.name == "service") && m.matchers.iter().all(|x| x.matches(&labels))
            })
        })
        .collect()
}

/// Inputs of [`build`].
pub struct PageInput<'a> {
    pub cfg: &'a StatusPageConfig,
    pub catalog: &'a Catalog,
    /// Open incidents and those resolved within the history window.
    pub incidents: &'a [PageIncident],
    /// Maintenance windows (silences of kind `maintenance`).
    pub maintenances: &'a [Silence],
    /// Component statuses set by hand.
    pub overrides: &'a [ComponentOverride],
    /// Component statuses from health checks (worst first is not required).
    pub probes: &'a [(String, ComponentStatus)],
    pub now: Timestamp,
    /// When the page's inputs last changed.
    pub updated_at: Timestamp,
}

/// The page's ID in the JSON (`page_id`): stable per page name.
fn page_id(name: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(name.as_bytes())[..6])
}

/// Build the page. Private incidents and incidents without a public update
/// are left out (they affect no component either).
pub fn build(input: &PageInput<'_>) -> (Summary, Vec<PageIncidentJson>) {
    let PageInput { cfg, catalog, now, .. } = *input;
    let pid = page_id(&cfg.name);
    let base = cfg.url.clone().unwrap_or_default();
    let defs = cfg.components(catalog);
    let mut groups: BTreeMap<String, String> = BTreeMap::new();
    for d in &defs {
        if let Some(g) = &d.group {
            let n = groups.len();
            groups.entry(g.clone()).or_insert_with(|| format!("group-{n}"));
        }
    }
    let public: Vec<&PageIncident> = input.incidents.iter().filter(|p| p.is_public()).collect();
    // Status per component: the worst of open public incidents, in-progress
    // maintenance, probes; a manual override wins.
    let status_of = |d: &ComponentDef| -> ComponentStatus {
        if let Some(o) = input.overrides.iter().find(|o| o.component == d.id) {
            return o.status;
        }
        let mut s = ComponentStatus::Operational;
        for p in &public {
            if p.incident.status.is_open() && p.incident.services.iter().any(|svc| d.covers(svc)) {
                s = s.max(impact_of(catalog, &p.incident.severity).1);
            }
        }
        for m in input.maintenances {
            if m.active_at(now) && maintenance_components(m, std::slice::from_ref(d)).len() == 1 {
                s = s.max(ComponentStatus::UnderMaintenance);
            }
        }
        for (c, ps) in input.probes {
            if c == &d.id {
                s = s.max(*ps);
            }
        }
        s
    };
    let components: Vec<Component> = defs
        .iter()
        .enumerate()
        .map(|(i, d)| Component {
            id: d.id.clone(),
            name: d.name.clone(),
            status: status_of(d),
            created_at: input.updated_at,
            updated_at: input.updated_at,
            position: i as u32 + 1,
            description: d.description.clone(),
            showcase: true,
            start_date: None,
            group_id: d.group.as_ref().and_then(|g| groups.get(g).cloned()),
            page_id: pid.clone(),
            group: false,
            only_show_if_degraded: d.only_show_if_degraded,
            components: None,
            group_name: d.group.clone(),
        })
        .collect();
    // Statuspage lists groups as components too (`group: true`, member IDs).
    let group_entries: Vec<Component> = groups
        .iter()
        .map(|(name, gid)| {
            let members: Vec<&Component> = components.iter().filter(|c| c.group_id.as_ref() == Some(gid)).collect();
            Component {
                id: gid.clone(),
                name: name.clone(),
                status: members
                    .iter()
                    .map(|c| c.status)
                    .max()
                    .unwrap_or(ComponentStatus::Operational),
                created_at: input.updated_at,
                updated_at: input.updated_at,
                position: members.first().map(|c| c.position).unwrap_or(0),
                description: None,
                showcase: false,
                start_date: None,
                group_id: None,
                page_id: pid.clone(),
                group: true,
                only_show_if_degraded: false,
                components: Some(members.iter().map(|c| c.id.clone()).collect()),
                group_name: None,
            }
        })
        .collect();
    let affected = |inc: &Incident| -> Vec<Component> {
        components
            .iter()
            .filter(|c| {
                defs.iter()
                    .find(|d| d.id == c.id)
                    .is_some_and(|d| inc.services.iter().any(|s| d.covers(s)))
            })
            .cloned()
            .collect()
    };
    let to_json = |p: &PageIncident| -> PageIncidentJson {
        let inc = &p.incident;
        let (impact, new_status) = impact_of(catalog, &inc.severity);
        let comps = affected(inc);
        let mut updates: Vec<IncidentUpdate> = p
            .updates
            .iter()
            .map(|u| IncidentUpdate {
                id: format!("{}-u{}", inc.id, u.number),
                status: incident_status(u.status).into(),
                body: u.body.clone(),
                incident_id: inc.id.clone(),
                created_at: u.at,
                updated_at: u.at,
                display_at: u.at,
                affected_components: comps
                    .iter()
                    .map(|c| AffectedComponent {
                        code: c.id.clone(),
                        name: c.name.clone(),
                        old_status: ComponentStatus::Operational,
                        new_status: if u.status.is_open() {
                            new_status
                        } else {
                            ComponentStatus::Operational
                        },
                    })
                    .collect(),
                deliver_notifications: true,
                tweet_id: None,
                custom_tweet: None,
            })
            .collect();
        updates.reverse();
        PageIncidentJson {
            id: inc.id.clone(),
            name: inc.title.clone(),
            status: incident_status(inc.status).into(),
            impact: impact.into(),
            created_at: inc.declared_at,
            updated_at: inc.updated_at,
            monitoring_at: p.updates.iter().find(|u| u.status == Status::Monitoring).map(|u| u.at),
            resolved_at: inc.resolved_at,
            shortlink: format!("{}/status/incidents/{}", base.trim_end_matches('/'), inc.id),
            started_at: inc.started_at,
            page_id: pid.clone(),
            incident_updates: updates,
            components: comps,
            scheduled_for: None,
            scheduled_until: None,
            next_update_at: inc.next_update_due.filter(|_| inc.status.is_open()),
            workaround: inc.workaround.clone(),
        }
    };
    let mut unresolved: Vec<PageIncidentJson> = public
        .iter()
        .filter(|p| p.incident.status.is_open())
        .map(|p| to_json(p))
        .collect();
    unresolved.sort_by_key(|i| std::cmp::Reverse(i.created_at));
    let mut history: Vec<PageIncidentJson> = public.iter().map(|p| to_json(p)).collect();
    history.sort_by_key(|i| std::cmp::Reverse(i.created_at));
    let maintenances: Vec<PageIncidentJson> = input
        .maintenances
        .iter()
        .filter(|m| m.kind == "maintenance" && now < m.ends_at)
        .map(|m| {
            let comps: Vec<Component> = maintenance_components(m, &defs)
                .iter()
                .filter_map(|d| components.iter().find(|c| c.id == d.id).cloned())
                .collect();
            let name = m.comment.lines().next().unwrap_or("Scheduled maintenance").to_string();
            PageIncidentJson {
                id: m.id.clone(),
                name: if name.trim().is_empty() {
                    "Scheduled maintenance".into()
                } else {
                    name
                },
                status: maintenance_status(m, now).into(),
                impact: "maintenance".into(),
                created_at: m.starts_at,
                updated_at: m.starts_at,
                monitoring_at: None,
                resolved_at: None,
                shortlink: format!("{}/status", base.trim_end_matches('/')),
                started_at: m.starts_at,
                page_id: pid.clone(),
                incident_updates: vec![IncidentUpdate {
                    id: format!("{}-u1", m.id),
                    status: maintenance_status(m, now).into(),
                    body: m.comment.clone(),
                    incident_id: m.id.clone(),
                    created_at: m.starts_at,
                    updated_at: m.starts_at,
                    display_at: m.starts_at,
                    affected_components: vec![],
                    deliver_notifications: true,
                    tweet_id: None,
                    custom_tweet: None,
                }],
                components: comps,
                scheduled_for: Some(m.starts_at),
                scheduled_until: Some(m.ends_at),
                next_update_at: None,
                workaround: None,
            }
        })
        .collect();
    let impacts: Vec<&str> = unresolved.iter().map(|i| i.impact.as_str()).collect();
    let statuses: Vec<ComponentStatus> = components.iter().map(|c| c.status).collect();
    let summary = Summary {
        page: Page {
            id: pid,
            name: cfg.name.clone(),
            url: base,
            time_zone: cfg.time_zone.clone(),
            updated_at: input.updated_at,
        },
        status: roll_up(&statuses, &impacts),
        components: components.into_iter().chain(group_entries).collect(),
        incidents: unresolved,
        scheduled_maintenances: maintenances,
    };
    (summary, history)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentStatus::*;

    #[test]
    fn roll_up_follows_atlassian() {
        assert_eq!(roll_up(&[Operational, Operational], &[]).indicator, "none");
        assert_eq!(
            roll_up(&[Operational, DegradedPerformance], &[]).description,
            "Partially Degraded Service"
        );
        // The chargebee example: partial + major outage → major, "Partial System Outage".
        let s = roll_up(&[PartialOutage, MajorOutage], &[]);
        assert_eq!(
            (s.indicator.as_str(), s.description.as_str()),
            ("major", "Partial System Outage")
        );
        let s = roll_up(&[MajorOutage, MajorOutage], &[]);
        assert_eq!(
            (s.indicator.as_str(), s.description.as_str()),
            ("critical", "Major System Outage")
        );
        assert_eq!(roll_up(&[Operational], &["critical"]).indicator, "critical");
        assert_eq!(roll_up(&[UnderMaintenance], &[]).indicator, "maintenance");
    }

    #[test]
    fn severity_rank_gives_impact() {
        let cat = Catalog::default();
        assert_eq!(impact_of(&cat, "SEV-1"), ("critical", MajorOutage));
        assert_eq!(impact_of(&cat, "SEV-2"), ("major", PartialOutage));
        assert_eq!(impact_of(&cat, "SEV-3"), ("minor", DegradedPerformance));
        assert_eq!(impact_of(&cat, "SEV-4"), ("none", Operational));
    }

    #[test]
    fn config_errors_name_the_field() {
        let mut c = StatusPageConfig {
            brand_color: "blue".into(),
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "brand_color");
        c.brand_color = "#00aa00".into();
        c.components = vec![
            ComponentDef {
                id: "api".into(),
                name: "API".into(),
                group: None,
                description: None,
                services: vec![],
                only_show_if_degraded: false,
            };
            2
        ];
        assert_eq!(c.validate().unwrap_err().field, "components[1].id");
    }
}
