//! `vane replay RUN`: the run's stored event sent through the current workflows again, down the
//! same pipeline as `vane run` (output, GitHub Actions report, masks, metrics, record errors) and
//! recorded as a replay of that run; `--dry-run` plans it instead.

use super::args::GlobalArgs;
use super::{Outcome, invalid};
use crate::event::{self, InputOptions};
use crate::pipeline::Pipeline;
use crate::secrets::Masker;
use crate::state::{StateLocation, Store};
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

pub fn replay(global: &GlobalArgs, args: &ReplayArgs) -> Outcome {
    let masker = Masker::new();
    let location = StateLocation::from_flag(&global.state);
    let run = Store::find_run_at(&location, masker.clone(), &args.run).map_err(invalid)?;
    if run.event.get("payload_pruned").is_some() {
        let id = &run.summary.id;
        return Err(invalid(format!(
            "run `{id}`: its event's payload was removed after `serve.payload-retention`; \
             it cannot be replayed"
        )));
    }
    let event =
        event::from_text(&run.event.to_string(), &InputOptions::default()).map_err(|error| {
            let id = &run.summary.id;
            invalid(format!(
                "run `{id}`: the recorded event cannot be read: {}",
                error.message
            ))
        })?;
    let set = super::workflows::load_checked(global)?;
    let mut settings = super::settings::resolve(global, None, args.dry_run);
    settings.explain = args.explain;
    let mut pipeline = Pipeline::new(&settings, &set, masker);
    pipeline.replay_of = Some(run.summary.id);
    Ok(super::run::run_event(pipeline, event))
}
