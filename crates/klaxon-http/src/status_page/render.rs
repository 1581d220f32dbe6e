//! The page as HTML (askama templates compiled into the binary, no
//! JavaScript) and as an Atom feed.

use askama::Template;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use klaxon_domain::status_page::{ComponentStatus, FooterLink, PageIncidentJson, StatusPageConfig, Summary};
use klaxon_engine::channels::email::escape_html;
use klaxon_store::ComponentDay;

/// What every page shows around its content.
pub struct PageView {
    pub name: String,
    pub base: String,
    pub brand_color: String,
    pub logo_url: Option<String>,
    pub footer_links: Vec<FooterLink>,
    pub updated: String,
    pub time_zone: String,
}

pub struct UpdateView {
    pub status: String,
    pub body: String,
    pub at: String,
}

pub struct IncidentView {
    pub id: String,
    pub name: String,
    pub impact: String,
    pub impact_label: String,
    pub status_label: String,
    pub components: String,
    pub updates: Vec<UpdateView>,
    pub workaround: Option<String>,
    pub next_update: Option<String>,
    pub started: String,
    pub resolved: Option<String>,
}

pub struct BarView {
    pub class: &'static str,
    pub title: String,
}

pub struct ComponentView {
    pub name: String,
    pub description: Option<String>,
    pub status: &'static str,
    pub label: &'static str,
    pub bars: Vec<BarView>,
    pub uptime: String,
}

pub struct GroupView {
    pub name: Option<String>,
    pub components: Vec<ComponentView>,
}

#[derive(Template)]
#[template(path = "status/index.html")]
pub struct IndexPage<'a> {
    pub page: &'a PageView,
    pub status_indicator: String,
    pub status_description: String,
    pub maintenances: Vec<IncidentView>,
    pub incidents: Vec<IncidentView>,
    pub groups: Vec<GroupView>,
    pub days: u32,
}

#[derive(Template)]
#[template(path = "status/incident.html")]
pub struct IncidentPage<'a> {
    pub page: &'a PageView,
    pub inc: IncidentView,
}

#[derive(Template)]
#[template(path = "status/history.html")]
pub struct HistoryPage<'a> {
    pub page: &'a PageView,
    pub incidents: Vec<IncidentView>,
    pub days: u32,
}

/// Times as the page's readers see them.
pub struct Clockface(TimeZone);

impl Clockface {
    pub fn new(cfg: &StatusPageConfig) -> Self {
        Self(TimeZone::get(&cfg.time_zone).unwrap_or(TimeZone::UTC))
    }

    pub fn show(&self, t: Timestamp) -> String {
        t.to_zoned(self.0.clone()).strftime("%b %d, %Y %H:%M %Z").to_string()
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect::<String>().replace('_', " "),
        None => String::new(),
    }
}

pub fn incident_view(i: &PageIncidentJson, clock: &Clockface) -> IncidentView {
    let impact_label = match i.impact.as_str() {
        "critical" => "Critical impact — major outage",
        "major" => "Major impact — partial outage",
        "minor" => "Minor impact — degraded performance",
        "maintenance" => "Scheduled maintenance",
        _ => "No impact",
    };
    let when = |t: Timestamp| clock.show(t);
    let mut updates: Vec<UpdateView> = i
        .incident_updates
        .iter()
        .map(|u| UpdateView {
            status: capitalise(&u.status),
            body: u.body.clone(),
            at: when(u.display_at),
        })
        .collect();
    if i.impact == "maintenance"
        && let (Some(from), Some(to)) = (i.scheduled_for, i.scheduled_until)
    {
        for u in &mut updates {
            u.at = format!("{} – {}", when(from), when(to));
        }
    }
    IncidentView {
        id: i.id.clone(),
        name: i.name.clone(),
        impact: i.impact.clone(),
        impact_label: impact_label.into(),
        status_label: capitalise(&i.status),
        components: i
            .components
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        updates,
        workaround: i.workaround.clone(),
        next_update: i.next_update_at.map(when),
        started: when(i.started_at),
        resolved: i.resolved_at.map(when),
    }
}

/// Per component and day (oldest first): the worst status of the public
/// incidents that affected it and of its health checks, and its uptime: the
/// checks' share of successful runs when it has checks, else the share of
/// the window it was not in a partial or major outage.
pub fn bars(
    component: &str,
    history: &[PageIncidentJson],
    probe_days: &[ComponentDay],
    days: u32,
    now: Timestamp,
    clock: &Clockface,
) -> (Vec<BarView>, String) {
    let day_ms: i64 = 86_400_000;
    let end = now.as_millisecond();
    let start = end - i64::from(days) * day_ms;
    let mut worst = vec![ComponentStatus::Operational; days as usize];
    let mut down_ms: i64 = 0;
    for inc in history {
        let Some(c) = inc.components.iter().find(|c| c.id == component) else {
            continue;
        };
        let status = inc
            .incident_updates
            .iter()
            .flat_map(|u| u.affected_components.iter())
            .filter(|a| a.code == c.id)
            .map(|a| a.new_status)
            .max()
            .unwrap_or(ComponentStatus::Operational);
        let from = inc.started_at.as_millisecond().max(start);
        // An ongoing incident counts up to now, and marks today even if it just began.
        let to = inc.resolved_at.map(|t| t.as_millisecond()).unwrap_or(end).min(end);
        let to = if inc.resolved_at.is_none() {
            to.max(from + 1)
        } else {
            to
        };
        if to <= from {
            continue;
        }
        if status >= ComponentStatus::PartialOutage {
            down_ms += to - from;
        }
        let last = i64::from(days) - 1;
        let (a, b) = (
            ((from - start) / day_ms).min(last),
            ((to - 1 - start) / day_ms).min(last),
        );
        for d in a.max(0)..=b {
            if let Some(w) = worst.get_mut(d as usize) {
                *w = (*w).max(status);
            }
        }
    }
    let mut runs = (0i64, 0i64);
    let today = now.to_zoned(TimeZone::UTC).date();
    for d in probe_days.iter().filter(|d| d.component == component) {
        let ago = i64::from((today - d.day).get_days());
        let idx = i64::from(days) - 1 - ago;
        let status = match d.worst.as_str() {
            "down" if d.uptime < 0.95 => ComponentStatus::MajorOutage,
            "down" => ComponentStatus::PartialOutage,
            "degraded" => ComponentStatus::DegradedPerformance,
            _ => ComponentStatus::Operational,
        };
        if let Some(w) = usize::try_from(idx).ok().and_then(|i| worst.get_mut(i)) {
            *w = (*w).max(status);
        }
        runs.0 += d.counts.total;
        runs.1 += d.counts.ok + d.counts.degraded;
    }
    let uptime = if runs.0 > 0 {
        100.0 * runs.1 as f64 / runs.0 as f64
    } else {
        100.0 * (1.0 - down_ms as f64 / (end - start).max(1) as f64)
    };
    let bars = worst
        .iter()
        .enumerate()
        .map(|(d, s)| {
            let day = Timestamp::from_millisecond(start + d as i64 * day_ms + day_ms / 2).unwrap_or(now);
            let date = clock.show(day);
            BarView {
                class: s.as_str(),
                title: format!("{}: {}", date.get(..12).unwrap_or(&date), s.label()),
            }
        })
        .collect();
    (bars, format!("{uptime:.2} %"))
}

/// The components by group, in configured order.
pub fn groups(
    summary: &Summary,
    history: &[PageIncidentJson],
    probe_days: &[ComponentDay],
    days: u32,
    now: Timestamp,
    clock: &Clockface,
) -> Vec<GroupView> {
    let mut out: Vec<GroupView> = Vec::new();
    for c in summary.components.iter().filter(|c| !c.group) {
        if c.only_show_if_degraded && c.status == ComponentStatus::Operational {
            continue;
        }
        let (bars, uptime) = bars(&c.id, history, probe_days, days, now, clock);
        let view = ComponentView {
            name: c.name.clone(),
            description: c.description.clone(),
            status: c.status.as_str(),
            label: c.status.label(),
            bars,
            uptime,
        };
        match out.iter_mut().find(|g| g.name == c.group_name) {
            Some(g) => g.components.push(view),
            None => out.push(GroupView {
                name: c.group_name.clone(),
                components: vec![view],
            }),
        }
    }
    out
}

/// The Atom feed: one entry per public incident, its updates as content.
pub fn atom(page: &PageView, history: &[PageIncidentJson], now: Timestamp) -> String {
    use atom_syndication::{Content, Entry, Feed, FixedDateTime, Link, Text};
    let date =
        |t: Timestamp| -> FixedDateTime { FixedDateTime::parse_from_rfc3339(&t.to_string()).unwrap_or_default() };
    let link = |href: String| Link {
        href,
        rel: "alternate".into(),
        mime_type: Some("text/html".into()),
        ..Default::default()
    };
    let entries: Vec<Entry> = history
        .iter()
        .map(|i| {
            let text: String = i
                .incident_updates
                .iter()
                .map(|u| {
                    format!(
                        "<p><strong>{}</strong> — {}</p>",
                        capitalise(&u.status),
                        escape_html(&u.body)
                    )
                })
                .collect();
            Entry {
                id: format!("tag:klaxon,{}:{}", page.name.replace([' ', ','], "-"), i.id),
                title: Text::plain(i.name.clone()),
                updated: date(i.updated_at),
                published: Some(date(i.created_at)),
                links: vec![link(i.shortlink.clone())],
                content: Some(Content {
                    content_type: Some("html".into()),
                    value: Some(text),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    let feed = Feed {
        title: Text::plain(format!("{} — incident history", page.name)),
        id: format!("{}/status/feed.atom", page.base),
        updated: date(history.first().map(|i| i.updated_at).unwrap_or(now)),
        links: vec![link(format!("{}/status", page.base))],
        entries,
        ..Default::default()
    };
    feed.to_string()
}
