//! Human incident IDs: `INC-YYYY-MM-DD-NNN` by default, per-day sequence in UTC.
//!
//! The format is a template with `{yyyy}`, `{mm}`, `{dd}` and `{seq}` (or
//! `{seq:N}` for a zero-padded width). The sequence restarts for every
//! distinct date prefix the template contains: per day with `{dd}`, per month
//! with only `{mm}`, per year with only `{yyyy}`, never without any.

use jiff::Timestamp;
use jiff::tz::TimeZone;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Year,
    Month,
    Day,
    Seq(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdFormat {
    template: String,
    parts: Vec<Part>,
}

pub const DEFAULT_ID_FORMAT: &str = "INC-{yyyy}-{mm}-{dd}-{seq:3}";

impl Default for IdFormat {
    fn default() -> Self {
        // The default template is known to parse.
        Self::parse(DEFAULT_ID_FORMAT).unwrap_or(IdFormat {
            template: DEFAULT_ID_FORMAT.into(),
            parts: vec![Part::Seq(3)],
        })
    }
}

impl IdFormat {
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = template;
        let mut seqs = 0;
        while let Some(open) = rest.find('{') {
            lit.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("unclosed '{{' in id format {template:?}"))?;
            let token = &after[..close];
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(match token {
                "yyyy" => Part::Year,
                "mm" => Part::Month,
                "dd" => Part::Day,
                "seq" => {
                    seqs += 1;
                    Part::Seq(1)
                }
                t if t.starts_with("seq:") => {
                    seqs += 1;
                    let width: usize = t[4..]
                        .parse()
                        .map_err(|_| format!("bad width in {{{t}}}: expected {{seq:N}}"))?;
                    if width == 0 || width > 12 {
                        return Err(format!("{{{t}}}: width must be 1..=12"));
                    }
                    Part::Seq(width)
                }
                other => {
                    return Err(format!(
                        "unknown placeholder {{{other}}} in id format; use {{yyyy}}, {{mm}}, {{dd}}, {{seq}} or {{seq:N}}"
                    ));
                }
            });
            rest = &after[close + 1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        if seqs != 1 {
            return Err("id format must contain {seq} (or {seq:N}) exactly once".into());
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        for p in &parts {
            if let Part::Lit(l) = p
                && !l.chars().all(allowed)
            {
                return Err(format!(
                    "id format literal {l:?} may only hold letters, digits, '-', '_' and '.'"
                ));
            }
        }
        Ok(Self {
            template: template.to_string(),
            parts,
        })
    }

    pub fn template(&self) -> &str {
        &self.template
    }

    /// The sequence scope the timestamp falls in: the date parts the template uses.
    pub fn scope(&self, at: Timestamp) -> String {
        let d = at.to_zoned(TimeZone::UTC).date();
        let has = |p: &Part| self.parts.contains(p);
        if has(&Part::Day) {
            format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
        } else if has(&Part::Month) {
            format!("{:04}-{:02}", d.year(), d.month())
        } else if has(&Part::Year) {
            format!("{:04}", d.year())
        } else {
            "all".to_string()
        }
    }

    pub fn render(&self, at: Timestamp, seq: u64) -> String {
        let d = at.to_zoned(TimeZone::UTC).date();
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.push_str(l),
                Part::Year => out.push_str(&format!("{:04}", d.year())),
                Part::Month => out.push_str(&format!("{:02}", d.month())),
                Part::Day => out.push_str(&format!("{:02}", d.day())),
                Part::Seq(w) => out.push_str(&format!("{seq:0w$}", w = *w)),
            }
        }
        out
    }
}

/// Is this text shaped like an incident ID we could have issued? (Cheap guard
/// for path parameters; the store decides whether it exists.)
pub fn looks_like_id(text: &str) -> bool {
    !text.is_empty() && text.len() <= 64 && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_format_is_seed_003() {
        let f = IdFormat::default();
        let at: Timestamp = "2026-11-23T23:59:59Z".parse().unwrap();
        assert_eq!(f.render(at, 1), "INC-2026-11-23-001");
        assert_eq!(f.render(at, 1234), "INC-2026-11-23-1234");
        assert_eq!(f.scope(at), "2026-11-23");
    }

    #[test]
    fn custom_formats_choose_their_scope() {
        let f = IdFormat::parse("OPS-{yyyy}{mm}-{seq:4}").unwrap();
        let at: Timestamp = "2026-02-03T00:00:00Z".parse().unwrap();
        assert_eq!(f.render(at, 7), "OPS-202602-0007");
        assert_eq!(f.scope(at), "2026-02");
        assert_eq!(IdFormat::parse("INC-{seq}").unwrap().scope(at), "all");
    }

    #[test]
    fn bad_formats_say_why() {
        assert!(IdFormat::parse("INC-{yyyy}").unwrap_err().contains("{seq}"));
        assert!(IdFormat::parse("INC-{year}-{seq}").unwrap_err().contains("{year}"));
        assert!(IdFormat::parse("INC {seq}").unwrap_err().contains("literal"));
        assert!(IdFormat::parse("INC-{seq").unwrap_err().contains("unclosed"));
    }
}
