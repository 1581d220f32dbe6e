//! Severity schemes. The default follows seed 003 (SEV-1..SEV-4, aliases
//! P1..P4); the `p0-p3` preset follows seed 002.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration;

/// One severity level and the targets the playbooks attach to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeverityLevel {
    /// Stable key used in the API (`SEV-1`).
    pub key: String,
    /// Human name (`Critical`).
    pub name: String,
    /// Other names accepted on input (`P1`, `critical`).
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub examples: Vec<String>,
    /// Time allowed to acknowledge.
    #[serde(default, with = "duration::opt", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "5m")]
    pub ack_target: Option<Duration>,
    /// Time allowed before the first human response (defaults to the ack target).
    #[serde(default, with = "duration::opt", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "5m")]
    pub first_response_target: Option<Duration>,
    /// How often stakeholders get a status update while the incident is open.
    #[serde(default, with = "duration::opt", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "15m")]
    pub update_cadence: Option<Duration>,
    /// Time allowed to resolve, counted from detection.
    #[serde(default, with = "duration::opt", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "1h")]
    pub resolution_target: Option<Duration>,
    /// Escalate to the next level of responders if unresolved after this long.
    #[serde(default, with = "duration::opt", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "30m")]
    pub escalate_unresolved_after: Option<Duration>,
    /// Stakeholder groups to notify (`all-stakeholders`, `engineering`, `product-owner`).
    #[serde(default)]
    pub notify: Vec<String>,
    /// Whether the public status page must be updated.
    #[serde(default)]
    pub public_status_page: bool,
    /// Whether a post-incident review is required.
    #[serde(default)]
    pub pir_required: bool,
    /// When the review is due after resolution.
    #[serde(default, with = "duration::opt", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "48h")]
    pub pir_deadline: Option<Duration>,
}

/// The levels in force, most severe first.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SeverityScheme {
    /// Preset the scheme came from (`sev` or `p0-p3`), or `custom`.
    pub name: String,
    pub levels: Vec<SeverityLevel>,
}

impl SeverityScheme {
    pub const PRESETS: [&'static str; 2] = ["sev", "p0-p3"];

    pub fn preset(name: &str) -> Option<SeverityScheme> {
        match name {
            "sev" | "default" | "sev1-sev4" => Some(Self::sev()),
            "p0-p3" => Some(Self::p0_p3()),
            _ => None,
        }
    }

    /// Find a level by key or alias, ignoring case.
    pub fn find(&self, key_or_alias: &str) -> Option<&SeverityLevel> {
        let wanted = key_or_alias.trim();
        self.levels
            .iter()
            .find(|l| l.key.eq_ignore_ascii_case(wanted) || l.aliases.iter().any(|a| a.eq_ignore_ascii_case(wanted)))
    }

    /// 0 is the most severe.
    pub fn rank(&self, key: &str) -> Option<usize> {
        self.levels.iter().position(|l| l.key == key)
    }

    pub fn keys(&self) -> Vec<&str> {
        self.levels.iter().map(|l| l.key.as_str()).collect()
    }

    /// Check the scheme makes sense; errors name the offending entry.
    pub fn validate(&self) -> Result<(), String> {
        if self.levels.is_empty() {
            return Err("a severity scheme needs at least one level".into());
        }
        let mut seen: Vec<String> = Vec::new();
        for (i, level) in self.levels.iter().enumerate() {
            if level.key.trim().is_empty() {
                return Err(format!("levels[{i}].key must not be empty"));
            }
            for name in std::iter::once(&level.key).chain(level.aliases.iter()) {
                let lower = name.to_ascii_lowercase();
                if seen.contains(&lower) {
                    return Err(format!(
                        "levels[{i}]: key or alias {name:?} is used by more than one level"
                    ));
                }
                seen.push(lower);
            }
        }
        Ok(())
    }

    fn sev() -> SeverityScheme {
        let m = |mins: u64| Some(Duration::from_secs(mins * 60));
        SeverityScheme {
            name: "sev".into(),
            levels: vec![
                SeverityLevel {
                    key: "SEV-1".into(),
                    name: "Critical".into(),
                    aliases: vec!["P1".into(), "critical".into(), "sev1".into()],
                    description: "Complete service outage or critical functionality unavailable affecting all users."
                        .into(),
                    examples: vec![
                        "Entire application is down (all services unreachable)".into(),
                        "Database is completely unavailable".into(),
                        "Data loss or corruption affecting multiple users".into(),
                        "Security breach or data exposure".into(),
                    ],
                    ack_target: m(5),
                    first_response_target: m(5),
                    update_cadence: m(15),
                    resolution_target: m(60),
                    escalate_unresolved_after: None,
                    notify: vec![
                        "all-stakeholders".into(),
                        "engineering-lead".into(),
                        "product-owner".into(),
                    ],
                    public_status_page: true,
                    pir_required: true,
                    pir_deadline: m(48 * 60),
                },
                SeverityLevel {
                    key: "SEV-2".into(),
                    name: "High".into(),
                    aliases: vec!["P2".into(), "high".into(), "sev2".into()],
                    description: "Major functionality degraded or unavailable affecting significant portion of users."
                        .into(),
                    examples: vec![
                        "PDF processing completely failing (all uploads fail)".into(),
                        "Authentication system down".into(),
                        "Severe performance degradation (p95 > 30s)".into(),
                        "Single critical service down with no redundancy".into(),
                    ],
                    ack_target: m(15),
                    first_response_target: m(15),
                    update_cadence: m(30),
                    resolution_target: m(4 * 60),
                    escalate_unresolved_after: m(30),
                    notify: vec!["engineering".into(), "product-owner".into()],
                    public_status_page: false,
                    pir_required: true,
                    pir_deadline: m(48 * 60),
                },
                SeverityLevel {
                    key: "SEV-3".into(),
                    name: "Medium".into(),
                    aliases: vec!["P3".into(), "medium".into(), "sev3".into()],
                    description: "Partial functionality degraded or minor features unavailable affecting some users."
                        .into(),
                    examples: vec![
                        "Intermittent PDF processing failures (< 20% error rate)".into(),
                        "Slow response times (p95 > 10s but < 30s)".into(),
                        "Non-critical service degradation".into(),
                        "Queue depth consistently high (> 500 jobs)".into(),
                    ],
                    ack_target: m(60),
                    first_response_target: m(60),
                    update_cadence: m(120),
                    resolution_target: m(24 * 60),
                    escalate_unresolved_after: None,
                    notify: vec!["engineering".into()],
                    public_status_page: false,
                    pir_required: false,
                    pir_deadline: None,
                },
                SeverityLevel {
                    key: "SEV-4".into(),
                    name: "Low".into(),
                    aliases: vec!["P4".into(), "low".into(), "sev4".into()],
                    description: "Minor issues with minimal user impact or cosmetic problems.".into(),
                    examples: vec![
                        "Minor UI glitches".into(),
                        "Non-critical logging errors".into(),
                        "Performance slightly below targets".into(),
                        "Documentation issues".into(),
                    ],
                    // "Next business day".
                    ack_target: m(24 * 60),
                    first_response_target: m(24 * 60),
                    update_cadence: None,
                    resolution_target: m(7 * 24 * 60),
                    escalate_unresolved_after: None,
                    notify: vec![],
                    public_status_page: false,
                    pir_required: false,
                    pir_deadline: None,
                },
            ],
        }
    }

    fn p0_p3() -> SeverityScheme {
        let m = |mins: u64| Some(Duration::from_secs(mins * 60));
        SeverityScheme {
            name: "p0-p3".into(),
            levels: vec![
                SeverityLevel {
                    key: "P0".into(),
                    name: "Critical".into(),
                    aliases: vec!["critical".into()],
                    description: "Complete service outage; all users affected.".into(),
                    examples: vec![
                        "Database server down".into(),
                        "Application completely unavailable".into(),
                        "Data breach detected".into(),
                        "Payment system failure".into(),
                        "Authentication system down".into(),
                    ],
                    ack_target: m(5),
                    first_response_target: m(15),
                    update_cadence: m(15),
                    resolution_target: None,
                    escalate_unresolved_after: m(0),
                    notify: vec!["all-stakeholders".into()],
                    public_status_page: true,
                    pir_required: true,
                    pir_deadline: m(48 * 60),
                },
                SeverityLevel {
                    key: "P1".into(),
                    name: "High".into(),
                    aliases: vec!["high".into()],
                    description: "Major feature unavailable; large user subset affected.".into(),
                    examples: vec![
                        "Critical API endpoints failing".into(),
                        "Database performance severely degraded".into(),
                        "Memory leak causing crashes".into(),
                        "Security vulnerability actively exploited".into(),
                    ],
                    ack_target: m(5),
                    first_response_target: m(60),
                    update_cadence: m(30),
                    resolution_target: None,
                    escalate_unresolved_after: m(30),
                    notify: vec!["engineering".into(), "product-owner".into()],
                    public_status_page: true,
                    pir_required: true,
                    pir_deadline: m(48 * 60),
                },
                SeverityLevel {
                    key: "P2".into(),
                    name: "Medium".into(),
                    aliases: vec!["medium".into()],
                    description: "Minor feature broken; small user subset affected.".into(),
                    examples: vec![
                        "Single feature not working".into(),
                        "Performance degradation (non-critical)".into(),
                        "Intermittent errors affecting some users".into(),
                        "Minor security vulnerability".into(),
                    ],
                    ack_target: m(60),
                    first_response_target: m(4 * 60),
                    update_cadence: m(60),
                    resolution_target: None,
                    escalate_unresolved_after: m(120),
                    notify: vec!["engineering".into()],
                    public_status_page: false,
                    pir_required: false,
                    pir_deadline: None,
                },
                SeverityLevel {
                    key: "P3".into(),
                    name: "Low".into(),
                    aliases: vec!["low".into()],
                    description: "Cosmetic or minor issue; minimal impact.".into(),
                    examples: vec![
                        "UI glitches".into(),
                        "Documentation errors".into(),
                        "Minor performance issues".into(),
                        "Feature enhancement requests".into(),
                    ],
                    ack_target: m(24 * 60),
                    first_response_target: m(24 * 60),
                    update_cadence: None,
                    resolution_target: None,
                    escalate_unresolved_after: None,
                    notify: vec![],
                    public_status_page: false,
                    pir_required: false,
                    pir_deadline: None,
                },
            ],
        }
    }
}

impl Default for SeverityScheme {
    fn default() -> Self {
        Self::sev()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_seed_003() {
        let s = SeverityScheme::default();
        assert_eq!(s.keys(), vec!["SEV-1", "SEV-2", "SEV-3", "SEV-4"]);
        let sev1 = s.find("p1").unwrap();
        assert_eq!(sev1.key, "SEV-1");
        assert_eq!(sev1.ack_target, Some(Duration::from_secs(300)));
        assert_eq!(sev1.update_cadence, Some(Duration::from_secs(900)));
        assert_eq!(sev1.resolution_target, Some(Duration::from_secs(3600)));
        assert!(sev1.pir_required && sev1.public_status_page);
        let sev2 = s.find("SEV-2").unwrap();
        assert_eq!(sev2.escalate_unresolved_after, Some(Duration::from_secs(1800)));
        assert!(s.find("SEV-9").is_none());
        assert!(s.validate().is_ok());
    }

    #[test]
    fn p0_p3_follows_seed_002() {
        let s = SeverityScheme::preset("p0-p3").unwrap();
        assert_eq!(s.keys(), vec!["P0", "P1", "P2", "P3"]);
        assert_eq!(s.find("P2").unwrap().update_cadence, Some(Duration::from_secs(3600)));
        assert!(s.validate().is_ok());
    }

    #[test]
    fn duplicate_alias_is_rejected() {
        let mut s = SeverityScheme::default();
        s.levels[1].aliases.push("p1".into());
        assert!(s.validate().unwrap_err().contains("\"p1\""));
    }
}
