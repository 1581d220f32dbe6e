//! Paging rules: who else hears about an incident, and when, beyond its
//! escalation policy. Seed 003: "SEV-1 → notify the product owner at once",
//! "SEV-2 unresolved after 30 minutes → engineering lead"; PRODUCT §3:
//! "category security → security team", "more than one service → engineering lead".
//!
//! A rule fires at most once per incident, when its condition holds — at once,
//! or `unresolved_for` after detection if the incident is still unresolved.
//! Raising the severity re-evaluates the rules.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::{Catalog, is_slug};
use crate::duration;
use crate::error::FieldError;
use crate::escalation::EscalationTarget;
use crate::incident::Incident;

/// When a rule applies; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleCondition {
    /// Severity keys or aliases (`SEV-1`, `p0`); any of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<String>,
    /// Category keys; any of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<String>,
    /// More than this many affected services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services_more_than: Option<usize>,
    /// Only once the incident has been unresolved this long since detection.
    #[serde(default, with = "duration::opt", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "30m")]
    pub unresolved_for: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PagingRule {
    pub name: String,
    #[serde(default)]
    pub when: RuleCondition,
    /// Users, teams or schedule roles to page.
    #[schema(value_type = Vec<Object>)]
    pub notify: Vec<EscalationTarget>,
}

impl PagingRule {
    /// Check the rule against the catalog; severities are stored as keys.
    pub fn validate(&mut self, cat: &Catalog) -> Result<(), FieldError> {
        if !is_slug(&self.name) || self.name.contains(['/', ':']) {
            return Err(FieldError::new(
                "name",
                "a rule name is 1-100 letters, digits, '-', '_' or '.'",
            ));
        }
        if self.notify.is_empty() {
            return Err(FieldError::new("notify", "name at least one target"));
        }
        for (i, s) in self.when.severity.iter_mut().enumerate() {
            match cat.severities.find(s) {
                Some(l) => *s = l.key.clone(),
                None => {
                    return Err(FieldError::new(
                        format!("when.severity[{i}]"),
                        format!("unknown severity {s:?}"),
                    ));
                }
            }
        }
        for (i, c) in self.when.category.iter().enumerate() {
            if cat.find_category(c).is_none() {
                return Err(FieldError::new(
                    format!("when.category[{i}]"),
                    format!("unknown category {c:?}"),
                ));
            }
        }
        Ok(())
    }

    /// Whether the condition (apart from time) holds for an open incident.
    pub fn matches(&self, inc: &Incident) -> bool {
        let w = &self.when;
        inc.status.is_open()
            && (w.severity.is_empty() || w.severity.contains(&inc.severity))
            && (w.category.is_empty() || inc.category.as_ref().is_some_and(|c| w.category.contains(c)))
            && w.services_more_than.is_none_or(|n| inc.services.len() > n)
    }

    /// When the rule fires for an incident it matches.
    pub fn due(&self, inc: &Incident, now: Timestamp) -> Timestamp {
        match self.when.unresolved_for {
            Some(d) => jiff::SignedDuration::try_from(d)
                .ok()
                .and_then(|d| inc.detected_at.checked_add(d).ok())
                .unwrap_or(now),
            None => now,
        }
    }
}

/// Seed 003's rules, as shipped in the docs.
pub fn seed_003_examples() -> Vec<PagingRule> {
    let user = |u: &str| vec![EscalationTarget::User(u.into())];
    vec![
        PagingRule {
            name: "sev1-product-owner".into(),
            when: RuleCondition {
                severity: vec!["SEV-1".into()],
                ..Default::default()
            },
            notify: user("product-owner"),
        },
        PagingRule {
            name: "sev2-unresolved-30m".into(),
            when: RuleCondition {
                severity: vec!["SEV-2".into()],
                unresolved_for: Some(Duration::from_secs(30 * 60)),
                ..Default::default()
            },
            notify: user("eng-lead"),
        },
        PagingRule {
            name: "security".into(),
            when: RuleCondition {
                category: vec!["security".into()],
                ..Default::default()
            },
            notify: vec![EscalationTarget::Team("security".into())],
        },
        PagingRule {
            name: "multi-service".into(),
            when: RuleCondition {
                services_more_than: Some(1),
                ..Default::default()
            },
            notify: user("eng-lead"),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide;
    use crate::wire::DeclareIncident;

    fn inc(sev: &str, cat: Option<&str>, services: &[&str]) -> Incident {
        let c = Catalog::default();
        let req = DeclareIncident {
            title: "x".into(),
            severity: Some(sev.into()),
            category: cat.map(str::to_string),
            services: services.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        decide::validate_declaration(&req, "a", "2026-11-23T10:00:00Z".parse().unwrap(), &c).unwrap()
    }

    #[test]
    fn seed_003_rules_match_what_the_playbook_says() {
        let cat = Catalog::default();
        let mut rules = seed_003_examples();
        for r in &mut rules {
            r.validate(&cat).unwrap();
        }
        let names =
            |i: &Incident| -> Vec<&str> { rules.iter().filter(|r| r.matches(i)).map(|r| r.name.as_str()).collect() };
        assert_eq!(names(&inc("SEV-1", None, &["api"])), vec!["sev1-product-owner"]);
        assert_eq!(names(&inc("SEV-3", Some("security"), &[])), vec!["security"]);
        assert_eq!(names(&inc("SEV-3", None, &["api", "db"])), vec!["multi-service"]);
        let sev2 = inc("SEV-2", None, &[]);
        assert_eq!(names(&sev2), vec!["sev2-unresolved-30m"]);
        let now: Timestamp = "2026-11-23T10:05:00Z".parse().unwrap();
        assert_eq!(rules[1].due(&sev2, now).to_string(), "2026-11-23T10:30:00Z");
        assert_eq!(rules[0].due(&sev2, now), now);
        let mut closed = inc("SEV-1", None, &[]);
        closed.status = crate::Status::Resolved;
        assert!(names(&closed).is_empty());
    }

    #[test]
    fn validation_names_the_field() {
        let cat = Catalog::default();
        let mut r = seed_003_examples().remove(0);
        r.when.severity = vec!["critical".into()];
        r.validate(&cat).unwrap();
        assert_eq!(r.when.severity, vec!["SEV-1".to_string()], "aliases become keys");
        r.when.severity = vec!["SEV-9".into()];
        assert_eq!(r.validate(&cat).unwrap_err().field, "when.severity[0]");
        let mut r = seed_003_examples().remove(2);
        r.when.category = vec!["gossip".into()];
        assert_eq!(r.validate(&cat).unwrap_err().field, "when.category[0]");
        r.notify.clear();
        r.when.category.clear();
        assert_eq!(r.validate(&cat).unwrap_err().field, "notify");
    }
}
