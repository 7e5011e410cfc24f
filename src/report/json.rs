//! `--json`: one object per event on one line, in SPEC §4.2's shape.

use crate::engine::EventOutcome;
use crate::plan::Selection;
use crate::secrets::Masker;
use crate::workflow::WorkflowSet;
use serde_json::{Map, Value as Json, json};

pub fn event_line(outcome: &EventOutcome, set: &WorkflowSet, masker: &Masker) -> String {
    let mut value = event_value(outcome, set);
    masker.mask_json(&mut value);
    let mut line = serde_json::to_string(&value).unwrap_or_default();
    line.push('\n');
    line
}

/// Every loaded workflow, in file order: the matched ones with their run, the others with the
/// reason they did not match.
fn event_value(outcome: &EventOutcome, set: &WorkflowSet) -> Json {
    let mut workflows = Vec::with_capacity(set.len());
    let mut verdicts = super::not_run(outcome, set).into_iter().peekable();
    for (index, workflow) in set.workflows.iter().enumerate() {
        let mut entry = Map::new();
        entry.insert("name".to_string(), json!(workflow.name));
        entry.insert(
            "file".to_string(),
            json!(workflow.file.display().to_string()),
        );
        let run = outcome
            .runs
            .iter()
            .find(|(run_index, _)| *run_index == index)
            .map(|(_, run)| run);
        if let Some(run) = run {
            entry.insert("revision".to_string(), json!(set.revision));
            entry.insert("matched".to_string(), json!(true));
            entry.insert("reason".to_string(), Json::Null);
            entry.insert(
                "run".to_string(),
                serde_json::to_value(run).unwrap_or(Json::Null),
            );
        } else {
            let selection = verdicts
                .next_if(|(candidate, _)| *candidate == index)
                .map(|(_, selection)| selection);
            let reason = match selection.unwrap_or(Selection::Matched) {
                Selection::NotMatched(reason) | Selection::Broken(reason) => reason,
                // Matched but not run: the process was cancelled before it started.
                Selection::Matched => "not started: cancelled".to_string(),
            };
            entry.insert("matched".to_string(), json!(false));
            entry.insert("reason".to_string(), json!(reason));
        }
        if let Some((_, note)) = outcome.gates.iter().find(|(gated, _)| *gated == index) {
            entry.insert(
                "gate".to_string(),
                serde_json::to_value(note).unwrap_or(Json::Null),
            );
        }
        workflows.push(Json::Object(entry));
    }
    let event = serde_json::to_value(&*outcome.event).unwrap_or(Json::Null);
    json!({ "event": event, "workflows": workflows })
}
