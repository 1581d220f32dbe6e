//! Human durations ("5m", "1h 30m", "48h", "1week") for configuration and the API.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Parse a human duration such as `5m`, `1h30m`, `2d` or `1week`.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

/// Format a duration the way configuration writes it (`15m`, `4h`, `1day`).
pub fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

pub fn to_signed(d: Duration) -> jiff::SignedDuration {
    jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX)
}

/// serde helpers for `Option<Duration>` written as human text.
pub mod opt {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        match text {
            None => Ok(None),
            Some(t) if t.trim().is_empty() || t.trim() == "none" => Ok(None),
            Some(t) => parse(&t).map(Some).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_playbook_durations() {
        assert_eq!(parse("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("48h").unwrap(), Duration::from_secs(172_800));
        assert_eq!(parse("1week").unwrap(), Duration::from_secs(604_800));
        assert!(parse("soon").is_err());
        assert_eq!(format(Duration::from_secs(900)), "15m");
    }
}
