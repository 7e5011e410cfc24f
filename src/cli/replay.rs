//! `vane replay RUN`: the run's stored event sent through the current workflows again, down the
//! same pipeline as `vane run` (output, GitHub Actions report, masks, metrics, record errors) and
//! recorded as a replay of that run; `--dry-run` plans it instead.

use super::Exit;
use super::args::GlobalArgs;
use crate::event::{self, Event, InputOptions};
use crate::pipeline::Pipeline;
use crate::secrets::Masker;
use crate::state::StateError;
use clap::Args;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The run's id, or a prefix of it that only one run has.
    #[arg(value_name = "RUN")]
    pub run: String,
    /// Plan instead of executing, as `vane plan` would; nothing is recorded.
    #[arg(long)]
    pub dry_run: bool,
    /// Also say why every other workflow did not match.
    #[arg(long)]
    pub explain: bool,
}

pub fn replay(global: &GlobalArgs, args: &ReplayArgs) -> Exit {
    let masker = Masker::new();
    let (run_id, event) = match stored_event(global, &args.run, &masker) {
        Ok(found) => found,
        Err(exit) => return exit,
    };
    let Some(set) = super::run::load_or_report(global) else {
        return Exit::Invalid;
    };
    let mut settings = super::settings::resolve(global, None, args.dry_run);
    settings.explain = args.explain;
    let mut pipeline = Pipeline::new(&settings, &set, masker);
    pipeline.replay_of = Some(run_id);
    super::run::run_event(pipeline, event)
}

/// The run's full id and its event, rebuilt from the stored envelope.
fn stored_event(
    global: &GlobalArgs,
    prefix: &str,
    masker: &Masker,
) -> Result<(String, Event), Exit> {
    let fail = |message: String| {
        eprintln!("error: {message}");
        Exit::Invalid
    };
    let not_found = || StateError::RunNotFound {
        prefix: prefix.to_string(),
    };
    let store = super::state::open_existing(global, masker)?
        .ok_or_else(|| fail(not_found().to_string()))?;
    let run = store
        .find_run(prefix)
        .map_err(|error| fail(error.to_string()))?;
    if run.event.get("payload_pruned").is_some() {
        return Err(fail(format!(
            "run `{}`: its event's payload was removed after `serve.payload-retention`; \
             it cannot be replayed",
            run.summary.id
        )));
    }
    let event =
        event::from_text(&run.event.to_string(), &InputOptions::default()).map_err(|error| {
            fail(format!(
                "run `{}`: the recorded event cannot be read: {}",
                run.summary.id, error.message
            ))
        })?;
    Ok((run.summary.id, event))
}
