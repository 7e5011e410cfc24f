//! Dead events: a queued event that no worker could handle within the queue's delivery limit is
//! recorded as one run with status `dead`, so that `history --status dead` finds it.

use super::{StateError, Store, timestamp};
use rusqlite::params;
use serde_json::Value as Json;

/// The workflow column of a dead event's row: it died before any workflow ran.
pub const DEAD_WORKFLOW: &str = "-";

impl Store {
    /// Records the event `envelope` (its JSON, as queued) under `event_id` as `dead`, with why.
    pub fn record_dead(
        &mut self,
        event_id: &str,
        envelope: &str,
        reason: &str,
    ) -> Result<(), StateError> {
        let mut event = serde_json::from_str(envelope).unwrap_or(Json::Null);
        let event_type = event["type"].as_str().unwrap_or_default().to_string();
        self.masker.mask_json(&mut event);
        let now = timestamp(chrono::Utc::now());
        let reason = self.masker.mask(reason);
        self.write("record a dead event", |transaction| {
            transaction.execute(
                "INSERT INTO runs (id, workflow, file, revision, event_id, event_type, event, \
                 status, started, finished, duration_ms, error, dry_run, replay_of) \
                 VALUES (?1, ?2, '', NULL, ?3, ?4, ?5, 'dead', ?6, ?6, 0, ?7, 0, NULL)",
                params![
                    uuid::Uuid::new_v4().to_string(),
                    DEAD_WORKFLOW,
                    event_id,
                    event_type,
                    event.to_string(),
                    now,
                    reason,
                ],
            )
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Masker;
    use crate::state::{HistoryFilter, StateLocation};

    #[test]
    fn a_dead_event_shows_in_history() {
        let mut store = Store::open(&StateLocation::Memory, Masker::new()).unwrap();
        store
            .record_dead("d-1", r#"{"type":"deploy","data":{}}"#, "delivered 5 times")
            .unwrap();
        let runs = store
            .history(&HistoryFilter {
                status: Some("dead".to_string()),
                ..HistoryFilter::default()
            })
            .unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].event_id, "d-1");
        assert_eq!(runs[0].event_type, "deploy");
        assert_eq!(runs[0].workflow, DEAD_WORKFLOW);
    }
}
