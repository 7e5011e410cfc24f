//! Human durations as workflows write them: `500ms`, `90s`, `15m`, `1h`, `1h30m`.

use std::time::Duration;

/// The longest duration vane accepts: 100 years. Anything longer is surely a typo, and a time
/// that far ahead cannot be added to a clock without overflowing.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// A duration as a file writes it, before it is parsed: text (`90s`) or, as workflows take it, a
/// whole number of seconds (`90`). vane.yaml and test files read their durations through it.
pub struct DurationText(pub String);

impl<'de> serde::Deserialize<'de> for DurationText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Written {
            Text(String),
            Seconds(u64),
        }
        match <Written as serde::Deserialize>::deserialize(deserializer) {
            Ok(Written::Text(text)) => Ok(DurationText(text)),
            Ok(Written::Seconds(seconds)) => Ok(DurationText(seconds.to_string())),
            Err(_) => Err(serde::de::Error::custom(
                "expected a duration such as `90s`, `15m`, `1h30m` or a number of seconds",
            )),
        }
    }
}

/// Parses `500ms`, `90s`, `15m`, `2h`, `1d` and sums of them (`1h30m`); a bare number is seconds.
/// Nothing over [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_unbounded(text)?;
    if duration > MAX_DURATION {
        return Err(format!(
            "duration `{}` is too long: the most is 100 years (`36500d`)",
            text.trim()
        ));
    }
    Ok(duration)
}

fn parse_unbounded(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty duration".to_string());
    }
    if let Ok(seconds) = trimmed.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "invalid duration `{text}`: expected a number like `90s`, `15m` or `1h`"
            ));
        }
        let number: f64 = rest[..digits].parse().map_err(|_| {
            format!(
                "invalid duration `{text}`: `{}` is not a number",
                &rest[..digits]
            )
        })?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let seconds_per_unit = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "" => {
                return Err(format!(
                    "invalid duration `{text}`: missing unit (`ms`, `s`, `m`, `h`, `d`)"
                ));
            }
            other => {
                return Err(format!(
                    "invalid duration `{text}`: unknown unit `{other}` (use `ms`, `s`, `m`, `h` or `d`)"
                ));
            }
        };
        let too_long = || {
            format!(
                "duration `{}` is too long: the most is 100 years (`36500d`)",
                text.trim()
            )
        };
        let part =
            Duration::try_from_secs_f64(number * seconds_per_unit).map_err(|_| too_long())?;
        total = total.checked_add(part).ok_or_else(too_long)?;
    }
    Ok(total)
}

/// Formats a duration the way users write them back (`1m30s`, `250ms`).
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let seconds = duration.as_secs();
    let (hours, minutes, secs) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    if secs > 0 || out.is_empty() {
        if hours == 0 && minutes == 0 && !millis.is_multiple_of(1000) {
            out.push_str(&format!("{:.1}s", duration.as_secs_f64()));
        } else {
            out.push_str(&format!("{secs}s"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_durations_are_errors_not_panics() {
        for text in [
            "99999999999999999999d",
            "5000000000000000d",
            "18446744073709551615",
            "36501d",
        ] {
            let error = parse_duration(text).unwrap_err();
            assert!(
                error.contains("too long") || error.contains("not a number"),
                "{text}: {error}"
            );
        }
        assert_eq!(parse_duration("36500d"), Ok(MAX_DURATION));
    }

    #[test]
    fn parses_the_forms_workflows_use() {
        let cases = [
            ("90s", Duration::from_secs(90)),
            ("15m", Duration::from_secs(900)),
            ("1h", Duration::from_secs(3600)),
            ("1h30m", Duration::from_secs(5400)),
            ("500ms", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1500)),
            ("30", Duration::from_secs(30)),
            ("0s", Duration::ZERO),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for text in ["", "s", "10x", "ten", "5 m", "1h-"] {
            assert!(parse_duration(text).is_err(), "{text} should be rejected");
        }
        assert!(
            parse_duration("10x")
                .unwrap_err()
                .contains("unknown unit `x`")
        );
    }

    #[test]
    fn formats_round_numbers_compactly() {
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
    }
}
