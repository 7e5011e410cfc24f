//! Backing off when a server says so: GitHub's `X-RateLimit-Remaining` / `X-RateLimit-Reset`,
//! Docker Hub's `RateLimit-Remaining: N;w=SECONDS`, and `Retry-After` anywhere. The decision is stored in the source's cursor (`not_before`), so
//! that a `poll --once` started by cron a minute later also waits instead of hammering.

use chrono::{DateTime, Utc};

/// The headers that say when to ask again, as received.
#[derive(Debug, Default, Clone, Copy)]
pub struct Limits<'a> {
    pub status: u16,
    pub remaining: Option<&'a str>,
    pub reset: Option<&'a str>,
    pub retry_after: Option<&'a str>,
    /// `RateLimit-Remaining` as Docker Hub sends it: `100;w=21600` (requests left in a window
    /// of that many seconds).
    pub window_remaining: Option<&'a str>,
}

/// GitHub's advice for a secondary rate limit that names no time: wait at least a minute.
const DEFAULT_WAIT_SECONDS: i64 = 60;

impl<'a> Limits<'a> {
    /// The limits of a response.
    pub fn of(response: &'a reqwest::blocking::Response) -> Limits<'a> {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
        };
        Limits {
            status: response.status().as_u16(),
            remaining: header("x-ratelimit-remaining"),
            reset: header("x-ratelimit-reset"),
            retry_after: header("retry-after"),
            window_remaining: header("ratelimit-remaining"),
        }
    }

    /// Until when (Unix seconds) the source must not be asked again, if the server said so.
    pub fn not_before(&self, now: i64) -> Option<i64> {
        let limited = matches!(self.status, 403 | 429 | 503);
        if limited && let Some(seconds) = self.retry_after.and_then(retry_after_seconds) {
            return Some(now + seconds.max(1));
        }
        if let Some((left, window)) = self.window_remaining.and_then(window_remaining)
            && left == 0
        {
            return Some(now + window.max(1));
        }
        let exhausted = self.remaining.map(str::trim) == Some("0");
        if exhausted {
            let reset = self
                .reset
                .and_then(|reset| reset.trim().parse::<i64>().ok())
                .filter(|reset| *reset > now);
            return Some(reset.unwrap_or(now + DEFAULT_WAIT_SECONDS));
        }
        // 403 is also "forbidden"; only 429 is a rate limit by itself.
        (self.status == 429).then_some(now + DEFAULT_WAIT_SECONDS)
    }
}

/// `N;w=SECONDS` as (N, SECONDS); a window not given is a minute.
fn window_remaining(value: &str) -> Option<(u64, i64)> {
    let mut parts = value.split(';').map(str::trim);
    let left = parts.next()?.parse().ok()?;
    let window = parts
        .find_map(|part| part.strip_prefix("w="))
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or(DEFAULT_WAIT_SECONDS);
    Some((left, window))
}

/// `Retry-After` as seconds, or as an HTTP date (seconds from now are what matter).
fn retry_after_seconds(value: &str) -> Option<i64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<i64>() {
        return Some(seconds);
    }
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|time| (time.to_utc() - Utc::now()).num_seconds())
}

/// A poll skipped because of an earlier answer: nothing found, the note that says so.
pub fn skipped(not_before: Option<i64>, now: DateTime<Utc>) -> Option<super::Found> {
    skip(not_before, now).map(|note| super::Found {
        note: Some(note),
        ..super::Found::default()
    })
}

/// Whether a poll is skipped because of an earlier answer, and the note that says so.
pub fn skip(not_before: Option<i64>, now: DateTime<Utc>) -> Option<String> {
    let until = not_before.filter(|until| *until > now.timestamp())?;
    let shown = DateTime::from_timestamp(until, 0)
        .map(|time| time.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| until.to_string());
    Some(format!(
        "rate limited by the server; not polled again before {shown}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_follow_the_headers() {
        let now = 1_000;
        let limits = |status, remaining, reset, retry_after| Limits {
            status,
            remaining,
            reset,
            retry_after,
            window_remaining: None,
        };
        let cases = [
            // Plenty left: ask again on schedule.
            (limits(200, Some("4999"), Some("4600"), None), None),
            // The last request of the window: wait for the reset.
            (limits(200, Some("0"), Some("4600"), None), Some(4600)),
            (limits(403, Some("0"), Some("4600"), None), Some(4600)),
            // A reset already past (clock skew): a minute.
            (limits(403, Some("0"), Some("10"), None), Some(1060)),
            // Secondary limits say Retry-After, which wins.
            (limits(403, Some("10"), None, Some("120")), Some(1120)),
            (limits(429, None, None, Some("5")), Some(1005)),
            (limits(503, None, None, Some("30")), Some(1030)),
            (limits(429, None, None, None), Some(1060)),
            // A plain 403 (a bad token) is an error, not a reason to wait.
            (limits(403, Some("10"), None, None), None),
            // Retry-After on a success means nothing.
            (limits(200, None, None, Some("30")), None),
        ];
        for (limits, expected) in cases {
            assert_eq!(limits.not_before(now), expected, "{limits:?}");
        }
        // Docker Hub: the window's last pull spent, wait for the window; some left, go on.
        let hub = |window_remaining| Limits {
            status: 200,
            window_remaining,
            ..Limits::default()
        };
        assert_eq!(hub(Some("0;w=21600")).not_before(now), Some(22_600));
        assert_eq!(hub(Some("76;w=21600")).not_before(now), None);
        assert_eq!(hub(Some("0")).not_before(now), Some(1060));
    }

    #[test]
    fn a_poll_is_skipped_only_before_the_time() {
        let now = DateTime::from_timestamp(1_000, 0).unwrap();
        assert!(
            skip(Some(1_001), now)
                .unwrap()
                .contains("1970-01-01T00:16:41Z")
        );
        assert_eq!(skip(Some(1_000), now), None);
        assert_eq!(skip(None, now), None);
    }
}
