//! On-call rotation math: who is on call at an instant, and the shifts that
//! tile a range. Pure: time zones come from the bundled tz database, `now`
//! from the caller.
//!
//! A plan is layers (a later layer wins wherever it has someone) plus
//! overrides (the last one covering an instant wins over every layer). A
//! layer hands off at a local wall-clock time every N hours, days or weeks:
//! a 09:00 Europe/Berlin hand-off stays at 09:00 local across DST.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

/// How long one person's shift is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShiftLength {
    /// Absolute hours (a 12 h shift is 12 h even across DST).
    Hours(u32),
    /// Calendar days, handing off at the local hand-off time.
    Days(u32),
    /// Calendar weeks, handing off at the local hand-off time.
    Weeks(u32),
}

/// A day of the week, as configuration writes it (`mon` .. `sun`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    pub const ALL: [Day; 7] = [Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri, Day::Sat, Day::Sun];

    fn of(w: Weekday) -> Day {
        Day::ALL[w.to_monday_zero_offset() as usize]
    }
}

/// A window in which a layer applies (e.g. weekdays 09:00-17:00). An end at or
/// before the start means the window runs past midnight into the next day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Restriction {
    pub days: Vec<Day>,
    pub start: Time,
    pub end: Time,
}

/// One rotation layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    pub participants: Vec<String>,
    pub shift: ShiftLength,
    /// Local date of the first hand-off.
    pub start: Date,
    /// Local time of every hand-off.
    pub handoff: Time,
    /// IANA time zone name (`Europe/Berlin`).
    pub time_zone: String,
    /// Empty: always applies.
    #[serde(default)]
    pub restrictions: Vec<Restriction>,
}

/// Someone covering [start, end) whatever the layers say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    pub user: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Layers and overrides of one schedule role (Primary, Secondary, IC, ...).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Plan {
    pub layers: Vec<Layer>,
    #[serde(default)]
    pub overrides: Vec<Override>,
}

/// A stretch of time with one person (or nobody) on call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shift {
    pub user: Option<String>,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Layer {
    pub fn check(&self) -> Result<(), String> {
        if self.participants.is_empty() {
            return Err("a layer needs at least one participant".into());
        }
        match self.shift {
            ShiftLength::Hours(0) | ShiftLength::Days(0) | ShiftLength::Weeks(0) => {
                Err("a shift must be longer than zero".into())
            }
            _ => self.tz().map(|_| ()),
        }
    }

    fn tz(&self) -> Result<TimeZone, String> {
        TimeZone::get(&self.time_zone).map_err(|e| format!("unknown time zone {:?}: {e}", self.time_zone))
    }

    fn local(&self, date: Date, time: Time, tz: &TimeZone) -> Option<Timestamp> {
        date.to_datetime(time).to_zoned(tz.clone()).ok().map(|z| z.timestamp())
    }

    /// The instant of the k-th hand-off (k = 0 is the first).
    fn handoff_at(&self, k: i64, tz: &TimeZone) -> Option<Timestamp> {
        let first = self.local(self.start, self.handoff, tz)?;
        match self.shift {
            ShiftLength::Hours(h) => first
                .checked_add(SignedDuration::from_hours(k.checked_mul(h as i64)?))
                .ok(),
            ShiftLength::Days(d) => {
                let date = self.start.checked_add((k.checked_mul(d as i64)?).days()).ok()?;
                self.local(date, self.handoff, tz)
            }
            ShiftLength::Weeks(w) => {
                let date = self.start.checked_add((k.checked_mul(w as i64 * 7)?).days()).ok()?;
                self.local(date, self.handoff, tz)
            }
        }
    }

    /// The shift index covering `t`, or None before the first hand-off.
    fn index_at(&self, t: Timestamp, tz: &TimeZone) -> Option<i64> {
        let first = self.handoff_at(0, tz)?;
        if t < first {
            return None;
        }
        let guess = match self.shift {
            ShiftLength::Hours(h) => t.duration_since(first).as_secs() / (h as i64 * 3600),
            ShiftLength::Days(n) | ShiftLength::Weeks(n) => {
                let per = if matches!(self.shift, ShiftLength::Weeks(_)) {
                    n as i64 * 7
                } else {
                    n as i64
                };
                let today = t.to_zoned(tz.clone()).date();
                let days = (today - self.start).get_days() as i64;
                days.div_euclid(per)
            }
        };
        let mut k = guess.max(0);
        while k > 0 && self.handoff_at(k, tz).is_some_and(|h| h > t) {
            k -= 1;
        }
        while self.handoff_at(k + 1, tz).is_some_and(|h| h <= t) {
            k += 1;
        }
        Some(k)
    }

    /// Is `t` inside one of the restriction windows? Windows are instants
    /// computed like the boundaries of [`Layer::shifts`] (a local time in a
    /// DST gap is read forward), so the two always agree.
    fn allowed(&self, t: Timestamp, tz: &TimeZone) -> bool {
        if self.restrictions.is_empty() {
            return true;
        }
        let today = t.to_zoned(tz.clone()).date();
        let Ok(yesterday) = today.yesterday() else {
            return false;
        };
        [yesterday, today].into_iter().any(|day| {
            self.restrictions.iter().any(|r| {
                if !r.days.contains(&Day::of(day.weekday())) {
                    return false;
                }
                // Past midnight (or a whole day): the window ends the next day.
                let end_day = if r.start < r.end { Ok(day) } else { day.tomorrow() };
                match (
                    self.local(day, r.start, tz),
                    end_day.ok().and_then(|d| self.local(d, r.end, tz)),
                ) {
                    (Some(start), Some(end)) => start <= t && t < end,
                    _ => false,
                }
            })
        })
    }

    /// Who this layer puts on call at `t`.
    pub fn who_at(&self, t: Timestamp) -> Option<&str> {
        let tz = self.tz().ok()?;
        if !self.allowed(t, &tz) {
            return None;
        }
        let k = self.index_at(t, &tz)?;
        let n = self.participants.len() as i64;
        self.participants.get(k.rem_euclid(n) as usize).map(String::as_str)
    }

    /// Instants in [from, to) where this layer may change hands.
    fn boundaries(&self, from: Timestamp, to: Timestamp, out: &mut Vec<Timestamp>) {
        let Ok(tz) = self.tz() else { return };
        let mut k = self.index_at(from, &tz).unwrap_or(0);
        while let Some(h) = self.handoff_at(k, &tz) {
            if h >= to {
                break;
            }
            if h > from {
                out.push(h);
            }
            k += 1;
        }
        if self.restrictions.is_empty() {
            return;
        }
        let (Ok(first), Ok(last)) = (
            from.to_zoned(tz.clone()).date().yesterday(),
            to.to_zoned(tz.clone()).date().tomorrow(),
        ) else {
            return;
        };
        let mut day = first;
        while day <= last {
            for r in &self.restrictions {
                for time in [r.start, r.end] {
                    if let Some(t) = self.local(day, time, &tz)
                        && t > from
                        && t < to
                    {
                        out.push(t);
                    }
                }
            }
            match day.tomorrow() {
                Ok(d) => day = d,
                Err(_) => break,
            }
        }
    }
}

impl Plan {
    /// Who is on call at `t`: the last override covering it, else the last
    /// layer that has someone.
    pub fn who_at(&self, t: Timestamp) -> Option<&str> {
        if let Some(o) = self.overrides.iter().rev().find(|o| o.start <= t && t < o.end) {
            return Some(&o.user);
        }
        self.layers.iter().rev().find_map(|l| l.who_at(t))
    }

    /// The shifts tiling [from, to): contiguous, no overlap, adjacent shifts
    /// with the same person merged.
    pub fn shifts(&self, from: Timestamp, to: Timestamp) -> Vec<Shift> {
        if to <= from {
            return vec![];
        }
        let mut cuts = vec![from, to];
        for l in &self.layers {
            l.boundaries(from, to, &mut cuts);
        }
        for o in &self.overrides {
            for t in [o.start, o.end] {
                if t > from && t < to {
                    cuts.push(t);
                }
            }
        }
        cuts.sort();
        cuts.dedup();
        let mut out: Vec<Shift> = Vec::new();
        for w in cuts.windows(2) {
            let user = self.who_at(w[0]).map(str::to_string);
            match out.last_mut() {
                Some(last) if last.user == user => last.end = w[1],
                _ => out.push(Shift {
                    user,
                    start: w[0],
                    end: w[1],
                }),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn weekly(people: &[&str], tz: &str) -> Layer {
        Layer {
            participants: people.iter().map(|p| p.to_string()).collect(),
            shift: ShiftLength::Weeks(1),
            start: "2026-03-02".parse().unwrap(),
            handoff: "09:00".parse().unwrap(),
            time_zone: tz.into(),
            restrictions: vec![],
        }
    }

    #[test]
    fn berlin_handoff_stays_at_nine_local_across_dst() {
        // DST starts in Berlin on 2026-03-29: 09:00 is 08:00Z before, 07:00Z after.
        let l = weekly(&["alice", "bob", "carol"], "Europe/Berlin");
        assert_eq!(l.who_at(ts("2026-03-02T07:59:59Z")), None, "before the first hand-off");
        assert_eq!(l.who_at(ts("2026-03-02T08:00:00Z")), Some("alice"));
        assert_eq!(l.who_at(ts("2026-03-23T07:59:59Z")), Some("carol"));
        assert_eq!(l.who_at(ts("2026-03-23T08:00:00Z")), Some("alice"));
        // After the switch: the hand-off is at 07:00Z.
        assert_eq!(l.who_at(ts("2026-03-30T06:59:59Z")), Some("alice"));
        assert_eq!(l.who_at(ts("2026-03-30T07:00:00Z")), Some("bob"));
        let plan = Plan {
            layers: vec![l],
            overrides: vec![],
        };
        let s = plan.shifts(ts("2026-03-20T00:00:00Z"), ts("2026-04-10T00:00:00Z"));
        let starts: Vec<String> = s.iter().map(|x| x.start.to_string()).collect();
        assert_eq!(
            starts,
            vec![
                "2026-03-20T00:00:00Z",
                "2026-03-23T08:00:00Z",
                "2026-03-30T07:00:00Z",
                "2026-04-06T07:00:00Z"
            ]
        );
    }

    /// Found by the property test in CI: a Saturday-night window ending at
    /// 02:30 on the Sunday New York skips 02:00-03:00. The window ends at
    /// 02:30 read forward (03:30 EDT), for `who_at` and `shifts` alike.
    #[test]
    fn a_window_ending_in_the_dst_gap_agrees_with_the_shifts() {
        let layer = Layer {
            participants: vec!["a".into()],
            shift: ShiftLength::Hours(1),
            start: "2026-01-01".parse().unwrap(),
            handoff: "00:03".parse().unwrap(),
            time_zone: "America/New_York".into(),
            restrictions: vec![Restriction {
                days: vec![Day::Sat],
                start: "04:00".parse().unwrap(),
                end: "02:30".parse().unwrap(),
            }],
        };
        assert_eq!(layer.who_at(ts("2026-03-08T06:59:00Z")), Some("a"), "01:59 EST");
        assert_eq!(
            layer.who_at(ts("2026-03-08T07:00:00Z")),
            Some("a"),
            "03:00 EDT, in the read-forward window"
        );
        assert_eq!(layer.who_at(ts("2026-03-08T07:30:00Z")), None, "03:30 EDT");
        let plan = Plan {
            layers: vec![layer],
            overrides: vec![],
        };
        let shifts = plan.shifts(ts("2026-03-08T06:00:00Z"), ts("2026-03-08T09:00:00Z"));
        assert_eq!(shifts.len(), 2, "{shifts:?}");
        assert_eq!(shifts[0].end, ts("2026-03-08T07:30:00Z"));
        assert_eq!(shifts[1].user, None);
    }

    #[test]
    fn later_layers_and_overrides_win() {
        let base = weekly(&["alice", "bob"], "UTC");
        let mut office = weekly(&["dave"], "UTC");
        office.restrictions = vec![Restriction {
            days: vec![Day::Mon, Day::Tue],
            start: "09:00".parse().unwrap(),
            end: "17:00".parse().unwrap(),
        }];
        let plan = Plan {
            layers: vec![base, office],
            overrides: vec![Override {
                user: "erin".into(),
                start: ts("2026-03-03T12:00:00Z"),
                end: ts("2026-03-03T13:00:00Z"),
            }],
        };
        assert_eq!(
            plan.who_at(ts("2026-03-02T10:00:00Z")),
            Some("dave"),
            "Monday office hours"
        );
        assert_eq!(
            plan.who_at(ts("2026-03-02T18:00:00Z")),
            Some("alice"),
            "outside the restriction the base layer shows"
        );
        assert_eq!(plan.who_at(ts("2026-03-03T12:30:00Z")), Some("erin"), "override");
        assert_eq!(
            plan.who_at(ts("2026-03-04T10:00:00Z")),
            Some("alice"),
            "Wednesday is not restricted-in"
        );
    }

    #[test]
    fn overnight_restriction_runs_past_midnight() {
        let mut l = weekly(&["night"], "UTC");
        l.restrictions = vec![Restriction {
            days: vec![Day::Fri],
            start: "22:00".parse().unwrap(),
            end: "06:00".parse().unwrap(),
        }];
        assert_eq!(l.who_at(ts("2026-03-06T23:00:00Z")), Some("night"));
        assert_eq!(
            l.who_at(ts("2026-03-07T05:59:00Z")),
            Some("night"),
            "Saturday early morning belongs to Friday's window"
        );
        assert_eq!(l.who_at(ts("2026-03-07T06:00:00Z")), None);
    }

    fn arb_layer() -> impl Strategy<Value = Layer> {
        let tzs = prop::sample::select(vec![
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "Australia/Lord_Howe",
            "Asia/Kolkata",
        ]);
        let shift = prop_oneof![
            (1u32..30).prop_map(ShiftLength::Hours),
            (1u32..4).prop_map(ShiftLength::Days),
            (1u32..3).prop_map(ShiftLength::Weeks)
        ];
        let restriction =
            (prop::collection::vec(0usize..7, 1..4), 0i8..24, 0i8..24).prop_map(|(days, a, b)| Restriction {
                days: days.into_iter().map(|d| Day::ALL[d]).collect(),
                start: Time::new(a, 0, 0, 0).unwrap(),
                end: Time::new(b, 30, 0, 0).unwrap(),
            });
        (
            prop::collection::vec("[a-e]", 1..4),
            shift,
            0i32..60,
            0i8..24,
            0i8..60,
            tzs,
            prop::collection::vec(restriction, 0..2),
        )
            .prop_map(|(people, shift, day, h, m, tz, restrictions)| Layer {
                participants: people,
                shift,
                start: Date::new(2026, 1, 1).unwrap().checked_add(day.days()).unwrap(),
                handoff: Time::new(h, m, 0, 0).unwrap(),
                time_zone: tz.to_string(),
                restrictions,
            })
    }

    fn arb_plan() -> impl Strategy<Value = Plan> {
        let base = ts("2026-02-01T00:00:00Z").as_second();
        let ov = ("[x-z]", 0i64..(60 * 86_400), 60i64..(3 * 86_400)).prop_map(move |(u, s, len)| Override {
            user: u,
            start: Timestamp::from_second(base + s).unwrap(),
            end: Timestamp::from_second(base + s + len).unwrap(),
        });
        (
            prop::collection::vec(arb_layer(), 1..3),
            prop::collection::vec(ov, 0..3),
        )
            .prop_map(|(layers, overrides)| Plan { layers, overrides })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The shifts tile the range with no gap or overlap, and every instant
        /// has exactly the person the layers and overrides say.
        #[test]
        fn shifts_tile_the_range_and_agree_with_who_at(plan in arb_plan(), probes in prop::collection::vec(0i64..(45 * 86_400), 40)) {
            let from = ts("2026-02-10T00:00:00Z");
            let to = ts("2026-03-27T00:00:00Z");
            let shifts = plan.shifts(from, to);
            prop_assert_eq!(shifts.first().map(|s| s.start), Some(from));
            prop_assert_eq!(shifts.last().map(|s| s.end), Some(to));
            for w in shifts.windows(2) {
                prop_assert_eq!(w[0].end, w[1].start, "contiguous");
                prop_assert!(w[0].user != w[1].user, "merged");
            }
            for s in &shifts {
                prop_assert!(s.start < s.end);
            }
            for p in probes {
                let t = Timestamp::from_second(from.as_second() + p).unwrap();
                let s = shifts.iter().find(|s| s.start <= t && t < s.end).unwrap();
                prop_assert_eq!(s.user.as_deref(), plan.who_at(t), "at {}", t);
            }
        }
    }
}
