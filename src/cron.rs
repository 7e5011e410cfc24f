//! 5-field cron expressions (`on.schedule`): parsing, and the times they fire at (UTC).
//!
//! The syntax is the POSIX one GitHub Actions documents: `minute hour day-of-month month
//! day-of-week`, each field `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma list
//! of those; day-of-week 0 and 7 are both Sunday. Months and weekdays may be named as GitHub's docs
//! list them (`JAN`–`DEC`, `SUN`–`SAT`, any case, also in ranges: `MON-FRI`). A schedule that can
//! never fire (`0 0 30 2 *`) is refused, since it would wait silently forever. As in POSIX cron, when both day fields are
//! restricted a day matches if either does. Written here rather than taken from a crate: the
//! language is ~100 lines, and the crates in use either want 6–7 fields or other semantics.

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};

/// A checked cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    /// Bit `n` set: value `n` matches.
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// Whether the day-of-month / day-of-week field was `*` (POSIX: then only the other counts).
    any_day: bool,
    any_weekday: bool,
}

/// How far back [`Cron::latest_between`] looks: a schedule missed for longer fires once for the
/// latest time within the last year, which is what a catch-up needs, and bounds the search.
const LOOKBACK_MINUTES: i64 = 366 * 24 * 60;

impl Cron {
    /// Parses and checks `expression`; the message names the field and value that are wrong.
    pub fn parse(expression: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "cron `{expression}` has {} fields; expected 5 (minute hour day-of-month month day-of-week)",
                fields.len()
            ));
        }
        let field = |index: usize, name: &str, low: u32, high: u32, names: &[&str]| {
            parse_field(expression, fields[index], name, (low, high), names)
        };
        let minutes = field(0, "minute", 0, 59, &[])?;
        let hours = field(1, "hour", 0, 23, &[])?;
        let days = field(2, "day-of-month", 1, 31, &[])?;
        let months = field(3, "month", 1, 12, &MONTH_NAMES)?;
        let mut weekdays = field(4, "day-of-week", 0, 7, &WEEKDAY_NAMES)?;
        // 7 is Sunday too.
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        let any_weekday = fields[4].starts_with('*');
        // With the weekday field `*`, only the day of the month counts: some named month must
        // have one of the days (February counts its 29th, which does come).
        if !fields[2].starts_with('*') && any_weekday {
            let possible = (1..=12u32).any(|month| {
                months & (1 << month) != 0
                    && days & ((1u64 << (DAYS_IN_MONTH[month as usize - 1] + 1)) - 2) != 0
            });
            if !possible {
                return Err(format!(
                    "cron `{expression}` can never fire: no month it names has that day of the month"
                ));
            }
        }
        Ok(Cron {
            text: expression.to_string(),
            minutes,
            hours,
            days,
            months,
            weekdays,
            any_day: fields[2].starts_with('*'),
            any_weekday,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the schedule fires in the minute of `time`.
    pub fn fires_at(&self, time: DateTime<Utc>) -> bool {
        let has = |set: u64, value: u32| set & (1u64 << value) != 0;
        let day = has(self.days, time.day());
        let weekday = has(self.weekdays, time.weekday().num_days_from_sunday());
        let day_matches = match (self.any_day, self.any_weekday) {
            (true, true) => true,
            (true, false) => weekday,
            (false, true) => day,
            (false, false) => day || weekday,
        };
        has(self.minutes, time.minute())
            && has(self.hours, time.hour())
            && has(self.months, time.month())
            && day_matches
    }

    /// The latest minute in `(after, until]` the schedule fires at, if any: what a catch-up
    /// fires, once, however many times it came due in between.
    pub fn latest_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let mut minute = truncate_to_minute(until);
        let floor = after.max(until - Duration::minutes(LOOKBACK_MINUTES));
        while minute > floor {
            if self.fires_at(minute) {
                return Some(minute);
            }
            minute -= Duration::minutes(1);
        }
        None
    }

    /// The first minute after `after` the schedule fires at (within a year).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut minute = truncate_to_minute(after) + Duration::minutes(1);
        for _ in 0..LOOKBACK_MINUTES {
            if self.fires_at(minute) {
                return Some(minute);
            }
            minute += Duration::minutes(1);
        }
        None
    }
}

fn truncate_to_minute(time: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        0,
    )
    .single()
    // A UTC time always exists exactly once.
    .unwrap_or(time)
}

/// `JAN` is month 1; the index plus one is the month.
const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
/// `SUN` is weekday 0.
const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
/// The most days each month can have (a leap February).
const DAYS_IN_MONTH: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// A field's number, or its name (`names[0]` is `low`).
fn field_value(bound: &str, low: u32, names: &[&str]) -> Option<u32> {
    if let Ok(value) = bound.parse() {
        return Some(value);
    }
    names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(bound))
        .map(|index| low + index as u32)
}

fn parse_field(
    expression: &str,
    field: &str,
    name: &str,
    (low, high): (u32, u32),
    names: &[&str],
) -> Result<u64, String> {
    let mut set = 0u64;
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (part, None),
        };
        let step = match step {
            Some(step) => match step.parse::<u32>() {
                Ok(step) if step > 0 => step,
                _ => {
                    return Err(format!(
                        "cron `{expression}`: {name} step `{step}` is not a positive number"
                    ));
                }
            },
            None => 1,
        };
        let (from, to) = if range == "*" {
            (low, high)
        } else {
            let bounds: Vec<&str> = range.split('-').collect();
            if bounds.len() > 2 {
                return Err(format!(
                    "cron `{expression}`: {name} `{part}` is not a number or range"
                ));
            }
            let mut values = Vec::with_capacity(2);
            for bound in bounds {
                let value = field_value(bound, low, names).ok_or_else(|| {
                    let named = if names.is_empty() {
                        String::new()
                    } else {
                        format!(" (names: {}-{})", names[0], names[names.len() - 1])
                    };
                    format!("cron `{expression}`: {name} `{part}` is not a number or range{named}")
                })?;
                if value < low || value > high {
                    return Err(format!(
                        "cron `{expression}`: {name} `{value}` is outside {low}-{high}"
                    ));
                }
                values.push(value);
            }
            let from = values[0];
            // `a/n` (no range) means from `a` to the end, as in Vixie cron.
            let to = match values.get(1) {
                Some(to) => *to,
                None if step > 1 => high,
                None => from,
            };
            if to < from {
                return Err(format!(
                    "cron `{expression}`: {name} range `{range}` runs backwards"
                ));
            }
            (from, to)
        };
        let mut value = from;
        while value <= to {
            set |= 1u64 << value;
            value += step;
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn fields_are_checked() {
        for good in [
            "*/5 * * * *",
            "0 9 * * 1-5",
            "15,45 0-6/2 1 1,6 0",
            "0 0 * * 7",
        ] {
            assert!(Cron::parse(good).is_ok(), "{good}");
        }
        for (bad, needle) in [
            ("* * * *", "has 4 fields"),
            ("61 * * * *", "minute `61` is outside 0-59"),
            ("*/0 * * * *", "step `0`"),
            ("a * * * *", "not a number"),
            ("5-1 * * * *", "runs backwards"),
            (
                "0 9 * * MON-FRY",
                "day-of-week `MON-FRY` is not a number or range (names: SUN-SAT)",
            ),
            ("0 0 30 2 *", "can never fire"),
            ("0 0 31 4,6,9,11 *", "can never fire"),
        ] {
            assert!(
                Cron::parse(bad).unwrap_err().contains(needle),
                "{bad}: {:?}",
                Cron::parse(bad)
            );
        }
    }

    #[test]
    fn times_match_field_by_field() {
        let cases = [
            ("*/15 * * * *", "2026-11-26T10:45:00Z", true),
            ("*/15 * * * *", "2026-11-26T10:46:00Z", false),
            ("0 9 * * 1-5", "2026-11-26T09:00:00Z", true), // a Thursday
            ("0 9 * * 1-5", "2026-11-28T09:00:00Z", false), // a Saturday
            ("0 0 * * 7", "2026-11-29T00:00:00Z", true),   // Sunday as 7
            ("0 0 * * 0", "2026-11-29T00:00:00Z", true),
            // Both day fields restricted: either one matching is enough (POSIX).
            ("0 0 1 * 4", "2026-11-26T00:00:00Z", true),
            ("0 0 1 * 4", "2026-12-01T00:00:00Z", true),
            ("0 0 1 * 4", "2026-11-27T00:00:00Z", false),
            ("30 2 * 2 *", "2026-02-10T02:30:00Z", true),
            ("30 2 * 2 *", "2026-03-10T02:30:00Z", false),
            ("10/20 * * * *", "2026-03-10T02:50:00Z", true),
            // Names, in any case, also in ranges and lists.
            ("0 9 * * MON-FRI", "2026-11-26T09:00:00Z", true),
            ("0 9 * * mon-fri", "2026-11-28T09:00:00Z", false),
            ("0 0 * JAN,dec SUN", "2026-11-29T00:00:00Z", false),
            ("0 0 * JAN,dec SUN", "2026-12-06T00:00:00Z", true),
            // The 29th of February is a real day, in leap years.
            ("0 0 29 2 *", "2028-02-29T00:00:00Z", true),
        ];
        for (cron, time, expected) in cases {
            assert_eq!(
                Cron::parse(cron).unwrap().fires_at(at(time)),
                expected,
                "{cron} at {time}"
            );
        }
    }

    #[test]
    fn a_catch_up_finds_only_the_latest_due_minute() {
        let every_minute = Cron::parse("*/1 * * * *").unwrap();
        assert_eq!(
            every_minute.latest_between(at("2026-11-26T10:00:00Z"), at("2026-11-26T10:03:20Z")),
            Some(at("2026-11-26T10:03:00Z"))
        );
        // The bound is exclusive below: a minute that fired at the last poll is not fired again.
        assert_eq!(
            every_minute.latest_between(at("2026-11-26T10:03:00Z"), at("2026-11-26T10:03:59Z")),
            None
        );
        let nightly = Cron::parse("0 2 * * *").unwrap();
        assert_eq!(
            nightly.latest_between(at("2026-11-20T00:00:00Z"), at("2026-11-26T10:00:00Z")),
            Some(at("2026-11-26T02:00:00Z"))
        );
        assert_eq!(
            nightly.latest_between(at("2026-11-26T02:00:00Z"), at("2026-11-26T10:00:00Z")),
            None
        );
        assert_eq!(
            nightly.next_after(at("2026-11-26T02:00:00Z")),
            Some(at("2026-11-27T02:00:00Z"))
        );
    }
}
