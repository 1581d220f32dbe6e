//! Schedules as users write them: roles (Primary, Secondary, Incident
//! Commander — seed 002) each with rotation layers, plus overrides.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use serde::{Deserialize, Serialize};

use crate::config::is_slug;
use crate::error::FieldError;
use crate::rotation::{Layer, Override, Plan, Restriction, ShiftLength};

/// One rotation layer of a role. `time_zone` defaults to the schedule's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// People in rotation order.
    pub participants: Vec<String>,
    /// `{"hours": 12}`, `{"days": 1}` or `{"weeks": 1}`.
    #[schema(value_type = Object, example = json!({"weeks": 1}))]
    pub shift: ShiftLength,
    /// Local date of the first hand-off.
    #[schema(value_type = String, example = "2026-11-23")]
    pub start: Date,
    /// Local time of every hand-off (default 09:00).
    #[serde(default = "nine")]
    #[schema(value_type = String, example = "09:00")]
    pub handoff: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Windows when the layer applies, e.g. `{"days": ["mon","tue"], "start": "09:00", "end": "17:00"}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub restrictions: Vec<Restriction>,
}

fn nine() -> Time {
    Time::constant(9, 0, 0, 0)
}

/// Body of `POST /api/v1/schedules` and `PUT /api/v1/schedules/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// The schedule's ID: letters, digits, '-', '_', '.'.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// IANA time zone used by layers that name none.
    pub time_zone: String,
    /// Role → layers, later layers winning where they have someone.
    pub roles: BTreeMap<String, Vec<LayerSpec>>,
}

impl ScheduleSpec {
    /// Check everything; errors name the field (`roles.primary[0].time_zone`).
    pub fn validate(&self) -> Result<(), FieldError> {
        if !is_slug(&self.name) || self.name.contains('/') {
            return Err(FieldError::new(
                "name",
                "a schedule name is 1-100 letters, digits, '-', '_' or '.'",
            ));
        }
        if jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            return Err(FieldError::new(
                "time_zone",
                format!("unknown time zone {:?}", self.time_zone),
            ));
        }
        if self.roles.is_empty() {
            return Err(FieldError::new(
                "roles",
                "a schedule needs at least one role (e.g. primary)",
            ));
        }
        for (role, layers) in &self.roles {
            if !is_slug(role) {
                return Err(FieldError::new(
                    format!("roles.{role}"),
                    "a role name is 1-100 letters, digits, '-', '_' or '.'",
                ));
            }
            if layers.is_empty() {
                return Err(FieldError::new(
                    format!("roles.{role}"),
                    "a role needs at least one layer",
                ));
            }
            for (i, l) in layers.iter().enumerate() {
                let field = format!("roles.{role}[{i}]");
                for (j, p) in l.participants.iter().enumerate() {
                    if p.trim().is_empty() || p.chars().count() > 200 || p.chars().any(char::is_control) {
                        return Err(FieldError::new(
                            format!("{field}.participants[{j}]"),
                            "a participant is 1-200 printable characters",
                        ));
                    }
                }
                self.layer(l).check().map_err(|m| {
                    let sub = if m.contains("time zone") {
                        "time_zone"
                    } else if m.contains("participant") {
                        "participants"
                    } else {
                        "shift"
                    };
                    FieldError::new(format!("{field}.{sub}"), m)
                })?;
            }
        }
        Ok(())
    }

    fn layer(&self, l: &LayerSpec) -> Layer {
        Layer {
            participants: l.participants.iter().map(|p| p.trim().to_string()).collect(),
            shift: l.shift,
            start: l.start,
            handoff: l.handoff,
            time_zone: l.time_zone.clone().unwrap_or_else(|| self.time_zone.clone()),
            restrictions: l.restrictions.clone(),
        }
    }

    /// The plan of one role with the overrides that apply to it.
    pub fn plan(&self, role: &str, overrides: &[ScheduleOverride]) -> Option<Plan> {
        let layers = self.roles.get(role)?;
        Some(Plan {
            layers: layers.iter().map(|l| self.layer(l)).collect(),
            overrides: overrides
                .iter()
                .filter(|o| o.role == role)
                .map(|o| Override {
                    user: o.user.clone(),
                    start: o.start,
                    end: o.end,
                })
                .collect(),
        })
    }
}

/// Someone covering a role of a schedule for a while (holidays, swaps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduleOverride {
    pub id: String,
    pub role: String,
    pub user: String,
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub end: Timestamp,
    pub created_by: String,
}

/// Body of `POST /api/v1/schedules/{id}/overrides`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOverride {
    /// Default: the schedule's only role, or `primary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub user: String,
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub end: Timestamp,
}

/// A schedule as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Schedule {
    #[serde(flatten)]
    pub spec: ScheduleSpec,
    /// Overrides that have not ended.
    pub overrides: Vec<ScheduleOverride>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// Answer of `GET /api/v1/schedules/{id}/oncall`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OnCall {
    pub schedule: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// Role → person on call (null: nobody).
    pub oncall: BTreeMap<String, Option<String>>,
}

/// One shift in `GET /api/v1/schedules/{id}/shifts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShiftOut {
    pub role: String,
    pub user: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub end: Timestamp,
}

/// Seed 002's on-call table as a schedule: weekly Primary A→B→C, Secondary B→C→A, IC X→Y.
pub fn seed_002_example() -> ScheduleSpec {
    let layer = |people: &[&str]| LayerSpec {
        participants: people.iter().map(|p| p.to_string()).collect(),
        shift: ShiftLength::Weeks(1),
        start: Date::constant(2026, 11, 23),
        handoff: nine(),
        time_zone: None,
        restrictions: vec![],
    };
    ScheduleSpec {
        name: "platform".into(),
        description: "Seed 002's weekly rotation".into(),
        time_zone: "Europe/Berlin".into(),
        roles: [
            (
                "primary".to_string(),
                vec![layer(&["engineer-a", "engineer-b", "engineer-c"])],
            ),
            (
                "secondary".to_string(),
                vec![layer(&["engineer-b", "engineer-c", "engineer-a"])],
            ),
            (
                "incident_commander".to_string(),
                vec![layer(&["manager-x", "manager-y"])],
            ),
        ]
        .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_002_table_week_by_week() {
        let spec = seed_002_example();
        spec.validate().unwrap();
        let who = |role: &str, t: &str| {
            spec.plan(role, &[])
                .unwrap()
                .who_at(t.parse().unwrap())
                .map(str::to_string)
        };
        // Week 1 (from Monday 2026-11-23 09:00 Berlin = 08:00Z).
        assert_eq!(who("primary", "2026-11-23T08:00:00Z").as_deref(), Some("engineer-a"));
        assert_eq!(who("secondary", "2026-11-23T08:00:00Z").as_deref(), Some("engineer-b"));
        assert_eq!(
            who("incident_commander", "2026-11-23T08:00:00Z").as_deref(),
            Some("manager-x")
        );
        // Week 2.
        assert_eq!(who("primary", "2026-12-01T12:00:00Z").as_deref(), Some("engineer-b"));
        assert_eq!(who("secondary", "2026-12-01T12:00:00Z").as_deref(), Some("engineer-c"));
        assert_eq!(
            who("incident_commander", "2026-12-01T12:00:00Z").as_deref(),
            Some("manager-y")
        );
        // Week 3.
        assert_eq!(who("primary", "2026-12-08T12:00:00Z").as_deref(), Some("engineer-c"));
        assert_eq!(
            who("incident_commander", "2026-12-08T12:00:00Z").as_deref(),
            Some("manager-x")
        );
    }

    #[test]
    fn validation_names_the_field() {
        let mut s = seed_002_example();
        s.time_zone = "Mars/Olympus".into();
        assert_eq!(s.validate().unwrap_err().field, "time_zone");
        let mut s = seed_002_example();
        s.roles.get_mut("primary").unwrap()[0].participants.clear();
        assert_eq!(s.validate().unwrap_err().field, "roles.primary[0].participants");
        let mut s = seed_002_example();
        s.roles.get_mut("primary").unwrap()[0].shift = ShiftLength::Days(0);
        assert_eq!(s.validate().unwrap_err().field, "roles.primary[0].shift");
        let mut s = seed_002_example();
        s.roles.get_mut("primary").unwrap()[0].time_zone = Some("Nowhere/City".into());
        assert_eq!(s.validate().unwrap_err().field, "roles.primary[0].time_zone");
    }
}
