//! Escalation policies: ordered levels of targets, each waited on for a while
//! before the next is paged; the whole policy repeats N times.

use serde::{Deserialize, Serialize};

use crate::config::is_slug;
use crate::error::FieldError;

/// Who a level pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum EscalationTarget {
    /// A user by ID.
    User(String),
    /// Whoever is on call in a schedule's role (`primary` by default).
    Schedule {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
    },
    /// Every member of a team.
    Team(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationLevel {
    /// What this level is (`on-call engineer`, `team lead`).
    #[serde(default)]
    pub name: String,
    #[schema(value_type = Vec<Object>)]
    pub targets: Vec<EscalationTarget>,
    /// Minutes to wait for an acknowledgement before the next level.
    pub delay_minutes: u32,
}

/// Body of `PUT /api/v1/escalation-policies/{id}` and what the API shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationPolicy {
    pub id: String,
    #[serde(default)]
    pub description: String,
    pub levels: Vec<EscalationLevel>,
    /// Run the whole policy again this many times if nobody acknowledges.
    #[serde(default)]
    pub repeat: u32,
}

impl EscalationPolicy {
    pub fn validate(&self) -> Result<(), FieldError> {
        if !is_slug(&self.id) || self.id.contains('/') {
            return Err(FieldError::new(
                "id",
                "a policy ID is 1-100 letters, digits, '-', '_' or '.'",
            ));
        }
        if self.levels.is_empty() {
            return Err(FieldError::new("levels", "a policy needs at least one level"));
        }
        if self.levels.len() > 20 {
            return Err(FieldError::new("levels", "at most 20 levels"));
        }
        if self.repeat > 10 {
            return Err(FieldError::new("repeat", "at most 10 repeats"));
        }
        for (i, l) in self.levels.iter().enumerate() {
            if l.targets.is_empty() {
                return Err(FieldError::new(
                    format!("levels[{i}].targets"),
                    "a level needs at least one target",
                ));
            }
            if l.delay_minutes == 0 || l.delay_minutes > 24 * 60 {
                return Err(FieldError::new(
                    format!("levels[{i}].delay_minutes"),
                    "between 1 and 1440 minutes",
                ));
            }
            for (j, t) in l.targets.iter().enumerate() {
                let id = match t {
                    EscalationTarget::User(id) | EscalationTarget::Team(id) | EscalationTarget::Schedule { id, .. } => {
                        id
                    }
                };
                if !is_slug(id) {
                    return Err(FieldError::new(
                        format!("levels[{i}].targets[{j}]"),
                        format!("{id:?} is not an ID"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Minutes after the page at which each level starts, over all repeats:
    /// `(minute, level index)`.
    pub fn timeline(&self) -> Vec<(u64, usize)> {
        let mut out = Vec::new();
        let mut t = 0u64;
        for _ in 0..=self.repeat {
            for (i, l) in self.levels.iter().enumerate() {
                out.push((t, i));
                t += l.delay_minutes as u64;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seed 002: on-call 0-15 min → team lead 15-30 → engineering manager 30-60 → CTO 60+.
    #[test]
    fn seed_002_path() {
        let p = EscalationPolicy {
            id: "platform".into(),
            description: String::new(),
            levels: vec![
                EscalationLevel {
                    name: "on-call engineer".into(),
                    targets: vec![EscalationTarget::Schedule {
                        id: "platform".into(),
                        role: None,
                    }],
                    delay_minutes: 15,
                },
                EscalationLevel {
                    name: "team lead".into(),
                    targets: vec![EscalationTarget::User("lead".into())],
                    delay_minutes: 15,
                },
                EscalationLevel {
                    name: "engineering manager".into(),
                    targets: vec![EscalationTarget::User("em".into())],
                    delay_minutes: 30,
                },
                EscalationLevel {
                    name: "CTO".into(),
                    targets: vec![EscalationTarget::User("cto".into())],
                    delay_minutes: 60,
                },
            ],
            repeat: 0,
        };
        p.validate().unwrap();
        assert_eq!(p.timeline(), vec![(0, 0), (15, 1), (30, 2), (60, 3)]);
        let mut bad = p.clone();
        bad.levels[1].delay_minutes = 0;
        assert_eq!(bad.validate().unwrap_err().field, "levels[1].delay_minutes");
        let mut bad = p;
        bad.levels[2].targets.clear();
        assert_eq!(bad.validate().unwrap_err().field, "levels[2].targets");
    }
}
