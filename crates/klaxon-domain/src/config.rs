//! The catalog the domain decides with: severities, categories, roles,
//! services and the ID format. Loaded from `klaxon.yaml` by the binary.

use serde::{Deserialize, Serialize};

use crate::id::IdFormat;
use crate::severity::SeverityScheme;

/// An incident category (seed 001: availability, performance, security, data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub key: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// An incident role (seeds 001 and 002).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleDef {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub description: String,
}

/// A service or status-page component an incident can affect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    pub key: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Component group on the status page.
    #[serde(default)]
    pub group: Option<String>,
    /// Escalation policy of incidents declared for this service without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_policy: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Catalog {
    pub severities: SeverityScheme,
    /// Severity used when a declaration names none.
    pub default_severity: String,
    pub categories: Vec<Category>,
    pub roles: Vec<RoleDef>,
    /// Known services. Empty means any well-formed service name is accepted.
    pub services: Vec<ServiceDef>,
    pub id_format: IdFormat,
    /// Who else is paged, and when (see [`crate::paging_rules`]).
    pub paging_rules: Vec<crate::paging_rules::PagingRule>,
    /// How long before `next_update_due` the communications lead is reminded.
    pub update_reminder: std::time::Duration,
    /// Who hears what, per severity (see [`crate::communication`]).
    pub communication: crate::communication::Communication,
}

impl Default for Catalog {
    fn default() -> Self {
        let severities = SeverityScheme::default();
        let default_severity = default_severity_for(&severities);
        Self {
            severities,
            default_severity,
            categories: default_categories(),
            roles: default_roles(),
            services: Vec::new(),
            id_format: IdFormat::default(),
            paging_rules: Vec::new(),
            update_reminder: std::time::Duration::from_secs(5 * 60),
            communication: Default::default(),
        }
    }
}

/// The second-least severe level: a declaration without a severity is taken
/// seriously but does not wake everyone.
pub fn default_severity_for(scheme: &SeverityScheme) -> String {
    let n = scheme.levels.len();
    let idx = n.saturating_sub(2);
    scheme.levels.get(idx).map(|l| l.key.clone()).unwrap_or_default()
}

pub fn default_categories() -> Vec<Category> {
    [
        (
            "availability",
            "Availability",
            "Service unavailability, connectivity failures, crashed workers",
        ),
        (
            "performance",
            "Performance",
            "High response times, memory leaks, CPU spikes, queue backlogs",
        ),
        (
            "security",
            "Security",
            "Unauthorized access, data breaches, attacks, vulnerable configuration",
        ),
        (
            "data",
            "Data",
            "Data corruption, backup failures, data loss, integrity violations",
        ),
    ]
    .into_iter()
    .map(|(k, n, d)| Category {
        key: k.into(),
        name: n.into(),
        description: d.into(),
    })
    .collect()
}

pub fn default_roles() -> Vec<RoleDef> {
    [
        (
            "incident_commander",
            "Incident Commander",
            &["ic", "commander"][..],
            "Overall coordination, decisions, stakeholder communication; leads the post-mortem",
        ),
        (
            "technical_lead",
            "Technical Lead",
            &["tech_lead", "tl"][..],
            "Investigates root cause, implements fixes, gives technical updates to the IC",
        ),
        (
            "communications_lead",
            "Communications Lead",
            &["comms", "comms_lead"][..],
            "Status page, user communication, Slack/email updates",
        ),
        (
            "scribe",
            "Scribe",
            &[][..],
            "Records the timeline, actions taken and decisions",
        ),
        (
            "customer_success_lead",
            "Customer Success Lead",
            &["cs_lead", "customer_success"][..],
            "Customer-facing follow-up",
        ),
    ]
    .into_iter()
    .map(|(k, n, a, d)| RoleDef {
        key: k.into(),
        name: n.into(),
        aliases: a.iter().map(|s| s.to_string()).collect(),
        description: d.into(),
    })
    .collect()
}

/// `Incident-Commander`, `incident commander` and `incident_commander` are one name.
fn normalise(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

impl Catalog {
    pub fn find_role(&self, key_or_alias: &str) -> Option<&RoleDef> {
        let wanted = normalise(key_or_alias);
        self.roles.iter().find(|r| {
            normalise(&r.key) == wanted
                || normalise(&r.name) == wanted
                || r.aliases.iter().any(|a| normalise(a) == wanted)
        })
    }

    pub fn find_category(&self, key: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.key.eq_ignore_ascii_case(key.trim()))
    }

    pub fn find_service(&self, key: &str) -> Option<&ServiceDef> {
        self.services.iter().find(|s| s.key.eq_ignore_ascii_case(key.trim()))
    }

    /// Check the catalog is coherent. Errors name the key at fault.
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.severities.validate().map_err(|e| ("severities".to_string(), e))?;
        if self.severities.find(&self.default_severity).is_none() {
            return Err((
                "default_severity".into(),
                format!(
                    "{:?} is not a level of the scheme ({})",
                    self.default_severity,
                    self.severities.keys().join(", ")
                ),
            ));
        }
        if self.categories.is_empty() {
            return Err(("categories".into(), "at least one category is needed".into()));
        }
        for (list, keys) in [
            ("categories", self.categories.iter().map(|c| &c.key).collect::<Vec<_>>()),
            ("roles", self.roles.iter().map(|r| &r.key).collect()),
            ("services", self.services.iter().map(|s| &s.key).collect()),
        ] {
            for (i, k) in keys.iter().enumerate() {
                if !is_slug(k) {
                    return Err((
                        format!("{list}[{i}].key"),
                        format!("{k:?} must be 1-100 letters, digits, '-', '_' or '.'"),
                    ));
                }
                if keys[..i].iter().any(|o| o.eq_ignore_ascii_case(k)) {
                    return Err((format!("{list}[{i}].key"), format!("{k:?} is defined twice")));
                }
            }
        }
        Ok(())
    }
}

/// Keys, service names and label names: short, printable, no spaces.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty() && s.len() <= 100 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_found_by_key_name_or_alias() {
        let c = Catalog::default();
        assert_eq!(c.find_role("IC").unwrap().key, "incident_commander");
        assert_eq!(c.find_role("incident-commander").unwrap().key, "incident_commander");
        assert_eq!(c.find_role("Technical Lead").unwrap().key, "technical_lead");
        assert!(c.find_role("janitor").is_none());
        assert_eq!(c.default_severity, "SEV-3");
        assert!(c.validate().is_ok());
    }

    #[test]
    fn validation_names_the_key() {
        let c = Catalog {
            default_severity: "SEV-9".into(),
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().0, "default_severity");
        let mut c = Catalog::default();
        c.categories.push(c.categories[0].clone());
        assert_eq!(c.validate().unwrap_err().0, "categories[4].key");
    }
}
