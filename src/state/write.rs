//! Recording runs: one event's runs and their steps in one transaction, every text masked before
//! it reaches the database (SPEC §5.3: history is one of the places a secret must never appear).

use super::{StateError, Store};
use crate::engine::{EventOutcome, RunRecord, RunStatus, StepRecord, StepStatus};
use crate::secrets::Masker;
use crate::workflow::WorkflowSet;
use rusqlite::params;
use serde_json::Value as Json;

/// The longest log tail kept per step.
pub const LOG_TAIL_BYTES: usize = 64 * 1024;

/// How the runs being recorded came about.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordOptions<'a> {
    /// The process was interrupted (SIGINT/SIGTERM): its cancelled runs are `interrupted`.
    pub interrupted: bool,
    /// The runs are a replay of this run.
    pub replay_of: Option<&'a str>,
    pub dry_run: bool,
}

/// The status history shows: the engine's, plus `skipped`, which it cannot tell by itself. A run
/// stopped by SIGINT/SIGTERM was cancelled and is recorded so; `interrupted` is for a run whose
/// process died without recording it (see `Coordinator`), and `running` while it is in progress.
pub fn stored_status(run: &RunRecord, _interrupted: bool) -> &'static str {
    match run.status {
        // GitHub's meaning: a run whose every step was skipped by its conditions was skipped.
        RunStatus::Success
            if !run.steps.is_empty()
                && run
                    .steps
                    .iter()
                    .all(|step| step.status == StepStatus::Skipped) =>
        {
            "skipped"
        }
        status => status.as_str(),
    }
}

/// One `runs` row, masked and serialized, ready to insert.
struct RunRow {
    id: String,
    workflow: String,
    file: String,
    status: &'static str,
    started: String,
    finished: String,
    duration_ms: i64,
    error: Option<String>,
    /// The content digest of the workflow file the run ran.
    digest: String,
    steps: Vec<StepRow>,
}

struct StepRow {
    job: Option<String>,
    step_id: String,
    name: Option<String>,
    kind: &'static str,
    status: &'static str,
    rendered: String,
    outputs: Option<String>,
    exit_code: Option<i64>,
    attempts: i64,
    duration_ms: i64,
    error: Option<String>,
    log: Option<String>,
}

const INSERT_RUN: &str = "INSERT OR REPLACE INTO runs (id, workflow, file, revision, event_id, event_type, event, \
     status, started, finished, duration_ms, error, dry_run, replay_of, digest) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
const INSERT_STEP: &str = "INSERT INTO steps (run_id, position, job, step_id, name, kind, status, \
     rendered, outputs, exit_code, attempts, duration_ms, error, log) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

impl Store {
    /// Writes the runs of one event (none for an event that matched nothing) in one transaction.
    /// Returns how many runs were written.
    pub fn record(
        &mut self,
        outcome: &EventOutcome,
        set: &WorkflowSet,
        options: &RecordOptions,
    ) -> Result<usize, StateError> {
        if outcome.runs.is_empty() {
            return Ok(0);
        }
        // Everything is serialized and masked before the write lock is taken, to hold it briefly.
        let mut event = serde_json::to_value(&*outcome.event).unwrap_or(Json::Null);
        self.masker.mask_json(&mut event);
        let event_id = event["id"].as_str().unwrap_or_default().to_string();
        let event_type = event["type"].as_str().unwrap_or_default().to_string();
        let event_text = event.to_string();
        let revision = set
            .revision
            .as_deref()
            .map(|revision| self.masker.mask(revision));
        let rows: Vec<RunRow> = outcome
            .runs
            .iter()
            .map(|(index, run)| {
                let workflow = &set.workflows[*index];
                let mut row = run_row(
                    run,
                    &workflow.name,
                    &workflow.file.display().to_string(),
                    options.interrupted,
                    &self.masker,
                );
                row.digest = workflow.digest();
                row
            })
            .collect();
        self.write("recording runs", |transaction| {
            let mut insert_run = transaction.prepare_cached(INSERT_RUN)?;
            let mut insert_step = transaction.prepare_cached(INSERT_STEP)?;
            for row in &rows {
                insert_run.execute(params![
                    row.id,
                    row.workflow,
                    row.file,
                    revision,
                    event_id,
                    event_type,
                    event_text,
                    row.status,
                    row.started,
                    row.finished,
                    row.duration_ms,
                    row.error,
                    options.dry_run,
                    options.replay_of,
                    row.digest,
                ])?;
                for (position, step) in row.steps.iter().enumerate() {
                    insert_step.execute(params![
                        row.id,
                        position as i64,
                        step.job,
                        step.step_id,
                        step.name,
                        step.kind,
                        step.status,
                        step.rendered,
                        step.outputs,
                        step.exit_code,
                        step.attempts,
                        step.duration_ms,
                        step.error,
                        step.log,
                    ])?;
                }
            }
            Ok(())
        })?;
        Ok(rows.len())
    }
}

fn run_row(
    run: &RunRecord,
    workflow: &str,
    file: &str,
    interrupted: bool,
    masker: &Masker,
) -> RunRow {
    let finished = run.started + chrono::Duration::milliseconds(run.duration_ms as i64);
    RunRow {
        id: run.id.clone(),
        workflow: workflow.to_string(),
        file: masker.mask(file),
        status: stored_status(run, interrupted),
        started: timestamp(run.started),
        finished: timestamp(finished),
        duration_ms: run.duration_ms as i64,
        error: run.error.as_deref().map(|error| masker.mask(error)),
        digest: String::new(),
        steps: run
            .steps
            .iter()
            .map(|step| step_row(step, masker))
            .collect(),
    }
}

fn step_row(step: &StepRecord, masker: &Masker) -> StepRow {
    let masked_json = |value: &Json| {
        let mut value = value.clone();
        masker.mask_json(&mut value);
        value.to_string()
    };
    let outputs = step
        .outputs
        .as_ref()
        .map(|outputs| Json::Object(outputs.clone()));
    StepRow {
        job: step.job.clone(),
        step_id: masker.mask(&step.id),
        name: step.name.as_deref().map(|name| masker.mask(name)),
        kind: step.kind,
        status: step.status.as_str(),
        rendered: masked_json(&step.rendered),
        exit_code: outputs
            .as_ref()
            .and_then(|outputs| outputs.get("exit_code"))
            .and_then(Json::as_i64),
        outputs: outputs.as_ref().map(masked_json),
        attempts: i64::from(step.attempts),
        duration_ms: step.duration_ms as i64,
        error: step.error.as_deref().map(|error| masker.mask(error)),
        // Masked before it is cut: cutting first could leave the end of a secret unmasked.
        log: step
            .log
            .as_deref()
            .map(|log| tail(&masker.mask(log), LOG_TAIL_BYTES).to_string()),
    }
}

/// The last `limit` bytes of `text`, starting on a character boundary.
fn tail(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut start = text.len() - limit;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// RFC 3339 in UTC with milliseconds: fixed width, so that timestamps sort as text in SQL.
pub fn timestamp(time: chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_starts_on_a_character_boundary() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("abcdef", 3), "def");
        // `é` is two bytes: a cut inside it moves forward.
        assert_eq!(tail("aéb", 2), "b");
    }

    #[test]
    fn timestamps_have_a_fixed_width() {
        let time = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(timestamp(time), "2026-01-02T03:04:05.000Z");
    }
}
