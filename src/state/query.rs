//! Reading runs back: `history`'s filtered list, and one run with its steps for `show` and `replay`.

use super::write::timestamp;
use super::{StateError, Store};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::Value as Json;

/// The statuses a recorded run can have (SPEC §4.5), and `dead`: an event the NATS queue gave
/// up on after its delivery limit (its row has no workflow).
pub const RUN_STATUSES: &[&str] = &[
    "success",
    "failure",
    "cancelled",
    "skipped",
    "interrupted",
    "dead",
];

/// Which runs `history` lists.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub workflow: Option<String>,
    pub status: Option<String>,
    /// Runs that started at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many, newest first; `None` for all.
    pub limit: Option<usize>,
}

/// One run as `history` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub id: String,
    pub workflow: String,
    pub status: String,
    pub revision: Option<String>,
    pub event_id: String,
    pub event_type: String,
    pub started: String,
    pub finished: String,
    pub duration_ms: i64,
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<String>,
    /// The definition the run ran: `sha256:` of its workflow file's text (absent in runs
    /// recorded before vane recorded it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// One run with everything recorded about it, as `show` prints it.
impl StoredRun {
    /// The run's event rebuilt from its stored envelope, for `vane replay`; why it cannot be
    /// (its payload pruned after `serve.payload-retention`, an envelope that no longer reads).
    pub fn replayable_event(&self) -> Result<crate::event::Event, String> {
        let id = &self.summary.id;
        if self.event.get("payload_pruned").is_some() {
            return Err(format!(
                "run `{id}`: its event's payload was removed after `serve.payload-retention`; \
                 it cannot be replayed"
            ));
        }
        let options = crate::event::InputOptions::default();
        crate::event::from_text(&self.event.to_string(), &options).map_err(|error| {
            format!(
                "run `{id}`: the recorded event cannot be read: {}",
                error.message
            )
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StoredRun {
    #[serde(flatten)]
    pub summary: RunSummary,
    /// The event envelope (SPEC §1.1), as recorded (masked).
    pub event: Json,
    pub steps: Vec<StoredStep>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoredStep {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub kind: String,
    pub status: String,
    pub rendered: Json,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    pub attempts: i64,
    pub duration_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

const SUMMARY_COLUMNS: &str = "id, workflow, status, revision, event_id, event_type, started, \
     finished, duration_ms, file, error, dry_run, replay_of, digest";

fn summary(row: &Row) -> rusqlite::Result<RunSummary> {
    Ok(RunSummary {
        id: row.get(0)?,
        workflow: row.get(1)?,
        status: row.get(2)?,
        revision: row.get(3)?,
        event_id: row.get(4)?,
        event_type: row.get(5)?,
        started: row.get(6)?,
        finished: row.get(7)?,
        duration_ms: row.get(8)?,
        file: row.get(9)?,
        error: row.get(10)?,
        dry_run: row.get(11)?,
        replay_of: row.get(12)?,
        digest: row.get(13)?,
    })
}

impl Store {
    /// The runs that pass `filter`, newest first.
    pub fn history(&self, filter: &HistoryFilter) -> Result<Vec<RunSummary>, StateError> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM runs \
             WHERE (?1 IS NULL OR workflow = ?1) AND (?2 IS NULL OR status = ?2) \
               AND (?3 IS NULL OR started >= ?3) \
             ORDER BY started DESC, rowid DESC LIMIT ?4"
        );
        let since = filter.since.map(timestamp);
        // SQLite reads a negative LIMIT as none.
        let limit = filter.limit.map_or(-1, |limit| limit as i64);
        let read = || -> rusqlite::Result<Vec<RunSummary>> {
            let mut statement = self.connection.prepare(&sql)?;
            let rows = statement.query_map(
                params![filter.workflow, filter.status, since, limit],
                summary,
            )?;
            rows.collect()
        };
        read().map_err(|source| self.sqlite_error("reading the history", source))
    }

    /// [`Store::find_run`] in the store at `location`, for the reading commands: where there is
    /// no store yet there is no run, and looking creates none.
    pub fn find_run_at(
        location: &super::StateLocation,
        masker: crate::secrets::Masker,
        prefix: &str,
    ) -> Result<StoredRun, StateError> {
        match Store::open_existing(location, masker)? {
            Some(store) => store.find_run(prefix),
            None => Err(StateError::RunNotFound {
                prefix: prefix.to_string(),
            }),
        }
    }

    /// The run whose id is `prefix`, or the only one whose id starts with it.
    pub fn find_run(&self, prefix: &str) -> Result<StoredRun, StateError> {
        let id = self.resolve_id(prefix)?;
        let read = || -> rusqlite::Result<Option<(RunSummary, String, Vec<StoredStep>)>> {
            let found = self
                .connection
                .query_row(
                    &format!("SELECT {SUMMARY_COLUMNS}, event FROM runs WHERE id = ?1"),
                    [&id],
                    |row| Ok((summary(row)?, row.get::<_, String>(14)?)),
                )
                .optional()?;
            let Some((summary, event)) = found else {
                return Ok(None);
            };
            let mut statement = self.connection.prepare(
                "SELECT job, step_id, name, kind, status, rendered, outputs, exit_code, attempts, \
                 duration_ms, error, log FROM steps WHERE run_id = ?1 ORDER BY position",
            )?;
            let steps = statement
                .query_map([&id], |row| {
                    Ok((
                        StoredStep {
                            job: row.get(0)?,
                            id: row.get(1)?,
                            name: row.get(2)?,
                            kind: row.get(3)?,
                            status: row.get(4)?,
                            rendered: Json::Null,
                            outputs: None,
                            exit_code: row.get(7)?,
                            attempts: row.get(8)?,
                            duration_ms: row.get(9)?,
                            error: row.get(10)?,
                            log: row.get(11)?,
                        },
                        row.get::<_, String>(5)?,
                        row.get::<_, Option<String>>(6)?,
                    ))
                })?
                .map(|row| {
                    let (mut step, rendered, outputs) = row?;
                    // Written by vane as JSON; a hand-edited value shows as the text it holds.
                    step.rendered = parse_or_text(rendered);
                    step.outputs = outputs.map(parse_or_text);
                    Ok(step)
                })
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some((summary, event, steps)))
        };
        let (summary, event, steps) = read()
            .map_err(|source| self.sqlite_error("reading a run", source))?
            .ok_or_else(|| StateError::RunNotFound {
                prefix: prefix.to_string(),
            })?;
        let event = serde_json::from_str(&event).map_err(|source| StateError::CorruptJson {
            id: summary.id.clone(),
            what: "event",
            source,
        })?;
        Ok(StoredRun {
            summary,
            event,
            steps,
        })
    }

    /// The full id for a prefix: the exact id, or the one id that starts with it.
    fn resolve_id(&self, prefix: &str) -> Result<String, StateError> {
        if prefix.is_empty() {
            return Err(StateError::RunNotFound {
                prefix: String::new(),
            });
        }
        // A range over the primary key instead of `LIKE`, which would need escaping and could not
        // use the index. U+10FFFF sorts after every character an id holds.
        let upper = format!("{prefix}\u{10FFFF}");
        let read = || -> rusqlite::Result<Vec<String>> {
            let mut statement = self
                .connection
                .prepare("SELECT id FROM runs WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 6")?;
            let ids = statement.query_map([prefix, upper.as_str()], |row| row.get(0))?;
            ids.collect()
        };
        let ids = read().map_err(|source| self.sqlite_error("looking up a run", source))?;
        if ids.iter().any(|id| id == prefix) {
            return Ok(prefix.to_string());
        }
        match ids.len() {
            0 => Err(StateError::RunNotFound {
                prefix: prefix.to_string(),
            }),
            1 => Ok(ids.into_iter().next().unwrap_or_default()),
            _ => Err(StateError::AmbiguousRun {
                prefix: prefix.to_string(),
                candidates: ids,
            }),
        }
    }
}

fn parse_or_text(text: String) -> Json {
    serde_json::from_str(&text).unwrap_or(Json::String(text))
}

/// `--since`: an RFC 3339 time, or a duration back from `now` (`90m`, `1h`, `7d`).
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(time.with_timezone(&Utc));
    }
    let duration = crate::duration::parse_duration(text).map_err(|_| {
        format!(
            "invalid `--since` value `{text}`: expected an RFC 3339 time or a duration like `1h`"
        )
    })?;
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|duration| now.checked_sub_signed(duration))
        .ok_or_else(|| format!("invalid `--since` value `{text}`: too far back"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_and_durations() {
        let now = DateTime::parse_from_rfc3339("2026-01-02T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let cases = [
            ("1h", "2026-01-02T11:00:00.000Z"),
            ("90m", "2026-01-02T10:30:00.000Z"),
            ("2d", "2025-12-31T12:00:00.000Z"),
            ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00.000Z"),
            ("2026-01-01T02:00:00+02:00", "2026-01-01T00:00:00.000Z"),
        ];
        for (text, expected) in cases {
            assert_eq!(
                timestamp(parse_since(text, now).unwrap()),
                expected,
                "{text}"
            );
        }
        assert!(
            parse_since("yesterday", now)
                .unwrap_err()
                .contains("`yesterday`")
        );
    }
}
