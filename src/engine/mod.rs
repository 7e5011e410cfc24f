//! Executes what `plan` selected: for one event, every matched workflow's jobs and steps, with
//! status functions, retries, timeouts and cancellation. A dry run goes through the same code
//! with effects swapped for what each step can know without them.

mod observe;
mod overrides;
mod record;
mod renewer;
mod run;
mod scheduler;

pub use observe::{LineSplitter, MAX_LINE, Observer, RunEvent, StepRef, Stream, Unobserved};
pub use overrides::Overrides;
pub use record::{RunRecord, RunStatus, StepRecord, StepStatus};
pub use renewer::Renewer;
pub use scheduler::{
    GroupLease, GroupLocks, Hold, LocalOnly, StreamItem, StreamOptions, run_stream, wait_until,
};

use crate::cancel::CancelToken;
use crate::event::Event;
use crate::plan::Selection;
use crate::secrets::Masker;
use crate::workflow::WorkflowSet;
use std::path::PathBuf;
use std::sync::Arc;

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub dry_run: bool,
    /// Where `run` steps start and `render` writes.
    pub workspace: PathBuf,
    /// The state store's folder, where `gitops` keeps its clones; `None` for `--state :memory:`.
    pub state_folder: Option<PathBuf>,
    /// How many events one input may cause through `emit` steps, in all.
    pub max_emitted: usize,
}

#[derive(Clone)]
pub struct Engine<'a> {
    pub set: &'a WorkflowSet,
    pub options: EngineOptions,
    pub masker: Masker,
    pub cancel: CancelToken,
    /// Where `scale` steps keep their recommendations: the state store for real runs, memory in
    /// a plan.
    pub recommendations: crate::state::Recommendations,
    /// Where gates keep their state, and the clock they read.
    pub gates: crate::gates::GateStore,
    /// Who hears what happens as it happens (the run-event stream).
    pub observer: &'a dyn Observer,
}

/// Everything that happened for one event.
#[derive(Clone)]
pub struct EventOutcome {
    pub event: Arc<Event>,
    /// How deep in an `emit` chain the event is (0: it came from outside).
    pub depth: usize,
    /// Verdicts for the candidate workflows (the others cannot match).
    pub selections: Vec<(usize, Selection)>,
    /// The runs of the matched workflows, by workflow index.
    pub runs: Vec<(usize, RunRecord)>,
    /// Events emitted by `emit` steps, to be processed after this one.
    pub emitted: Vec<Event>,
    /// The event's place in the output order (see [`RunEvent`]).
    pub sequence: u64,
    /// What each gated workflow's gate decided for the event.
    pub gates: Vec<(usize, crate::gates::GateNote)>,
}

impl EventOutcome {
    pub fn failed(&self) -> bool {
        self.runs
            .iter()
            .any(|(_, run)| run.status == RunStatus::Failure)
            || self
                .selections
                .iter()
                .any(|(_, selection)| matches!(selection, Selection::Broken(_)))
    }
}

impl Engine<'_> {
    /// Matches the event and runs every matched workflow, one after another.
    pub fn process(&self, event: Event, depth: usize) -> EventOutcome {
        self.process_with(event, depth, &Overrides::default())
    }

    /// [`Engine::process`], with secrets and env values fixed by the caller (`vane test`).
    pub fn process_with(&self, event: Event, depth: usize, overrides: &Overrides) -> EventOutcome {
        let admitted = self.gates.admit(self.set, event, self.options.dry_run);
        let (event, event_value) = (admitted.event, admitted.event_value);
        let mut selections = admitted.selections;
        // The concurrency group is rendered as a run would render it: one that cannot render is
        // an error in the workflow, in a plan as in a run.
        for (index, selection) in selections.iter_mut() {
            if *selection == Selection::Matched
                && let Err(message) = crate::plan::concurrency_group(
                    &self.set.workflows[*index],
                    &event,
                    &event_value,
                    self.set.revision.as_deref(),
                )
            {
                *selection = Selection::Broken(message);
            }
        }
        self.observer.observe(&RunEvent::Matched {
            sequence: overrides.sequence,
            event: &event,
            selections: &selections,
        });
        let mut runs = Vec::new();
        let mut emitted = Vec::new();
        for (index, selection) in &selections {
            if *selection != Selection::Matched {
                continue;
            }
            if self.cancel.is_cancelled() {
                break;
            }
            let gated;
            let overrides = match admitted.runs.get(index) {
                Some((run_id, context)) => {
                    gated = Overrides {
                        gate: Some(context.clone()),
                        run_id: run_id.clone().or_else(|| overrides.run_id.clone()),
                        ..overrides.clone()
                    };
                    &gated
                }
                None => overrides,
            };
            let (record, mut events) =
                run::run_workflow(self, *index, &event, &event_value, depth, overrides);
            emitted.append(&mut events);
            runs.push((*index, record));
        }
        EventOutcome {
            event,
            depth,
            selections,
            runs,
            emitted,
            sequence: overrides.sequence,
            gates: admitted.notes,
        }
    }
}
