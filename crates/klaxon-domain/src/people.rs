//! People and how to reach them: users with contact methods and notification
//! rules ("Slack at once, SMS after 5 minutes if not acknowledged"), and teams.

use serde::{Deserialize, Serialize};

use crate::config::is_slug;
use crate::error::FieldError;

/// How a contact method delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    Email,
    Sms,
    Voice,
    Slack,
    Webhook,
    /// Microsoft Teams Workflows (incoming webhook) URL; Adaptive Card.
    Teams,
    /// PagerDuty Events API v2 routing key: Klaxon forwards the incident.
    Pagerduty,
    /// ntfy topic URL (`https://ntfy.example.com/oncall-alice`): self-hosted push.
    Ntfy,
}

impl ContactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactKind::Email => "email",
            ContactKind::Sms => "sms",
            ContactKind::Voice => "voice",
            ContactKind::Slack => "slack",
            ContactKind::Webhook => "webhook",
            ContactKind::Teams => "teams",
            ContactKind::Pagerduty => "pagerduty",
            ContactKind::Ntfy => "ntfy",
        }
    }

    /// Is `address` well formed for this kind? `Err` says what is expected.
    pub fn check_address(self, address: &str) -> Result<(), &'static str> {
        let url = |a: &str| (a.starts_with("https://") || a.starts_with("http://")) && a.len() <= 2000;
        let ok = match self {
            ContactKind::Email => email_ok(address),
            ContactKind::Sms | ContactKind::Voice => {
                address.starts_with('+')
                    && (8..=16).contains(&address.len())
                    && address[1..].chars().all(|d| d.is_ascii_digit())
            }
            ContactKind::Slack => {
                let id =
                    address.len() <= 30 && !address.is_empty() && address.chars().all(|d| d.is_ascii_alphanumeric());
                let name = address.strip_prefix('#').is_some_and(|n| {
                    (1..=80).contains(&n.len())
                        && n.chars()
                            .all(|d| d.is_ascii_lowercase() || d.is_ascii_digit() || d == '-' || d == '_')
                });
                id || name || url(address)
            }
            ContactKind::Webhook | ContactKind::Teams => url(address),
            ContactKind::Pagerduty => address.len() == 32 && address.chars().all(|d| d.is_ascii_alphanumeric()),
            ContactKind::Ntfy => {
                url(address)
                    && address.rsplit_once('/').is_some_and(|(base, topic)| {
                        base.len() > "https://".len()
                            && (1..=64).contains(&topic.len())
                            && topic.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    })
            }
        };
        if ok {
            return Ok(());
        }
        Err(match self {
            ContactKind::Email => "an email address",
            ContactKind::Sms | ContactKind::Voice => "an E.164 phone number such as +4915112345678",
            ContactKind::Slack => {
                "a Slack user or channel ID (U024BE7LH, C024BE91L), a #channel name or an incoming-webhook URL"
            }
            ContactKind::Webhook | ContactKind::Teams => "an http(s) URL",
            ContactKind::Pagerduty => "a 32-character PagerDuty routing key",
            ContactKind::Ntfy => "an ntfy topic URL such as https://ntfy.example.com/oncall-alice",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactMethod {
    /// Name used by notification rules (`work-email`, `phone`).
    pub name: String,
    pub kind: ContactKind,
    /// Email address, E.164 phone number (`+4915112345678`), Slack user ID (`U024BE7LH`) or https URL.
    pub address: String,
}

/// Notify through `contact` this many minutes after the page, unless acknowledged by then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationRule {
    pub contact: String,
    #[serde(default)]
    pub after_minutes: u32,
}

/// Body of `PUT /api/v1/users/{id}` and what the API shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Stable ID (`alice`), used in schedules and escalation policies.
    pub id: String,
    pub name: String,
    pub email: String,
    /// IANA time zone (default UTC).
    #[serde(default = "utc")]
    pub time_zone: String,
    #[serde(default)]
    pub contact_methods: Vec<ContactMethod>,
    #[serde(default)]
    pub notification_rules: Vec<NotificationRule>,
}

fn utc() -> String {
    "UTC".into()
}

/// Body of `PUT /api/v1/teams/{id}` and what the API shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Team {
    pub id: String,
    pub name: String,
    /// User IDs.
    #[serde(default)]
    pub members: Vec<String>,
}

fn id_ok(id: &str) -> bool {
    is_slug(id) && !id.contains('/')
}

fn email_ok(e: &str) -> bool {
    let mut parts = e.split('@');
    matches!((parts.next(), parts.next(), parts.next()), (Some(l), Some(d), None) if !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.'))
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && e.len() <= 254
}

impl User {
    /// Check everything; errors name the field (`contact_methods[1].address`).
    pub fn validate(&self) -> Result<(), FieldError> {
        if !id_ok(&self.id) {
            return Err(FieldError::new(
                "id",
                "a user ID is 1-100 letters, digits, '-', '_' or '.'",
            ));
        }
        if self.name.trim().is_empty() || self.name.chars().count() > 200 || self.name.chars().any(char::is_control) {
            return Err(FieldError::new("name", "name must be 1-200 printable characters"));
        }
        if !email_ok(&self.email) {
            return Err(FieldError::new(
                "email",
                format!("{:?} is not an email address", self.email),
            ));
        }
        if jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            return Err(FieldError::new(
                "time_zone",
                format!("unknown time zone {:?}", self.time_zone),
            ));
        }
        for (i, c) in self.contact_methods.iter().enumerate() {
            let f = |x: &str| format!("contact_methods[{i}].{x}");
            if !id_ok(&c.name) {
                return Err(FieldError::new(
                    f("name"),
                    "a contact method name is 1-100 letters, digits, '-', '_' or '.'",
                ));
            }
            if self.contact_methods[..i].iter().any(|o| o.name == c.name) {
                return Err(FieldError::new(f("name"), format!("{:?} is used twice", c.name)));
            }
            if let Err(want) = c.kind.check_address(&c.address) {
                return Err(FieldError::new(f("address"), format!("{:?} is not {want}", c.address)));
            }
        }
        for (i, r) in self.notification_rules.iter().enumerate() {
            if !self.contact_methods.iter().any(|c| c.name == r.contact) {
                return Err(FieldError::new(
                    format!("notification_rules[{i}].contact"),
                    format!("no contact method named {:?}", r.contact),
                ));
            }
            if r.after_minutes > 24 * 60 {
                return Err(FieldError::new(
                    format!("notification_rules[{i}].after_minutes"),
                    "at most 1440 minutes",
                ));
            }
        }
        Ok(())
    }
}

impl Team {
    pub fn validate(&self) -> Result<(), FieldError> {
        if !id_ok(&self.id) {
            return Err(FieldError::new(
                "id",
                "a team ID is 1-100 letters, digits, '-', '_' or '.'",
            ));
        }
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return Err(FieldError::new("name", "name must be 1-200 characters"));
        }
        for (i, m) in self.members.iter().enumerate() {
            if !id_ok(m) {
                return Err(FieldError::new(format!("members[{i}]"), "not a user ID"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> User {
        User {
            id: "alice".into(),
            name: "Alice Doe".into(),
            email: "alice@example.com".into(),
            time_zone: "Europe/Berlin".into(),
            contact_methods: vec![
                ContactMethod {
                    name: "slack".into(),
                    kind: ContactKind::Slack,
                    address: "U024BE7LH".into(),
                },
                ContactMethod {
                    name: "phone".into(),
                    kind: ContactKind::Sms,
                    address: "+4915112345678".into(),
                },
            ],
            notification_rules: vec![
                NotificationRule {
                    contact: "slack".into(),
                    after_minutes: 0,
                },
                NotificationRule {
                    contact: "phone".into(),
                    after_minutes: 5,
                },
            ],
        }
    }

    #[test]
    fn users_validate_and_name_the_field() {
        alice().validate().unwrap();
        let mut u = alice();
        u.email = "not-an-email".into();
        assert_eq!(u.validate().unwrap_err().field, "email");
        let mut u = alice();
        u.contact_methods[1].address = "0151 123".into();
        assert_eq!(u.validate().unwrap_err().field, "contact_methods[1].address");
        let mut u = alice();
        u.notification_rules[1].contact = "pager".into();
        assert_eq!(u.validate().unwrap_err().field, "notification_rules[1].contact");
        let mut u = alice();
        u.time_zone = "Nowhere".into();
        assert_eq!(u.validate().unwrap_err().field, "time_zone");
    }
}
