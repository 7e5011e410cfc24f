//! The workflows' `on.schedule` crons as a source: `schedule` events whose `subject` is the
//! workflow's name (the matcher sends each to its own workflow only).
//!
//! The cursor of a workflow (`schedule:<workflow>`) is the time of its last evaluation. A poll
//! fires, per cron, the latest minute in (cursor, now] it fires at — once, however many minutes
//! were missed — so a `poll --once` run after a gap catches up without a storm. The first poll
//! only records the time: a schedule starts from when vane first saw it.

use super::Found;
use crate::cron::Cron;
use crate::event::Event;
use crate::workflow::{TriggerKind, WorkflowSet};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// One workflow's crons.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub workflow: String,
    pub crons: Vec<Cron>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    last: DateTime<Utc>,
}

/// The key of a workflow's schedule cursor.
pub fn cursor_key(workflow: &str) -> String {
    format!("schedule:{workflow}")
}

impl Schedule {
    /// The schedules of the loaded workflows (their crons were checked at load time).
    pub fn from_workflows(set: &WorkflowSet) -> Vec<Schedule> {
        set.workflows
            .iter()
            .filter_map(|workflow| {
                let crons: Vec<Cron> = workflow
                    .triggers
                    .iter()
                    .filter_map(|trigger| match &trigger.kind {
                        TriggerKind::Schedule(crons) => Some(crons),
                        _ => None,
                    })
                    .flatten()
                    .filter_map(|cron| Cron::parse(cron).ok())
                    .collect();
                (!crons.is_empty()).then(|| Schedule {
                    workflow: workflow.name.clone(),
                    crons,
                })
            })
            .collect()
    }

    /// The events due as of `now`, given the stored cursor, and the new cursor.
    pub fn due(&self, cursor: Option<&str>, now: DateTime<Utc>) -> Result<Found, String> {
        let record = Some(
            serde_json::to_string(&Cursor { last: now })
                .map_err(|error| format!("cannot write the cursor: {error}"))?,
        );
        let Some(cursor) = cursor else {
            return Ok(Found {
                cursor: record,
                ..Found::default()
            });
        };
        let last = serde_json::from_str::<Cursor>(cursor)
            .map_err(|error| format!("the stored cursor `{cursor}` is damaged: {error}"))?
            .last;
        if last >= now {
            // The clock went back (or another poller was later): nothing is due, nothing moves.
            return Ok(Found::default());
        }
        let events = self
            .crons
            .iter()
            .filter_map(|cron| {
                let due = cron.latest_between(last, now)?;
                Some(self.event(cron, due))
            })
            .collect();
        Ok(Found {
            events,
            cursor: record,
            note: None,
        })
    }

    fn event(&self, cron: &Cron, scheduled: DateTime<Utc>) -> Event {
        let scheduled_time = scheduled.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let mut event = Event::with_id(
            format!(
                "schedule:{}:{}:{scheduled_time}",
                self.workflow,
                cron.as_str()
            ),
            "schedule",
            "schedule",
            json!({"cron": cron.as_str(), "scheduled_time": scheduled_time}),
        );
        event.subject = Some(self.workflow.clone());
        event.time = scheduled_time;
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn schedule(crons: &[&str]) -> Schedule {
        Schedule {
            workflow: "nightly".into(),
            crons: crons
                .iter()
                .map(|cron| Cron::parse(cron).unwrap())
                .collect(),
        }
    }

    #[test]
    fn the_first_poll_records_and_later_ones_catch_up_once() {
        let schedule = schedule(&["*/1 * * * *", "0 2 * * *"]);
        let first = schedule.due(None, at("2026-11-26T10:00:10Z")).unwrap();
        assert!(first.events.is_empty());
        let cursor = first.cursor.unwrap();
        let later = schedule
            .due(Some(&cursor), at("2026-11-26T10:03:30Z"))
            .unwrap();
        assert_eq!(later.events.len(), 1, "three minutes missed, one event");
        let event = &later.events[0];
        assert_eq!(event.subject.as_deref(), Some("nightly"));
        assert_eq!(event.kind, "schedule");
        assert_eq!(
            event.id(),
            "schedule:nightly:*/1 * * * *:2026-11-26T10:03:00Z"
        );
        assert_eq!(
            event.data.value()["scheduled_time"],
            json!("2026-11-26T10:03:00Z")
        );
        let again = schedule
            .due(later.cursor.as_deref(), at("2026-11-26T10:03:50Z"))
            .unwrap();
        assert!(again.events.is_empty(), "same minute: nothing new");
    }

    #[test]
    fn a_clock_that_went_back_fires_nothing_and_keeps_the_cursor() {
        let schedule = schedule(&["*/1 * * * *"]);
        let cursor = r#"{"last":"2026-11-26T10:00:00Z"}"#;
        let found = schedule
            .due(Some(cursor), at("2026-11-26T09:00:00Z"))
            .unwrap();
        assert!(found.events.is_empty());
        assert_eq!(found.cursor, None);
        assert!(
            schedule
                .due(Some("nonsense"), at("2026-11-26T09:00:00Z"))
                .is_err()
        );
    }
}
