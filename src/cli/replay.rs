//! `vane replay RUN`: the run's stored event sent through the current workflows again, down the
//! same pipeline as `vane run` (output, GitHub Actions report, masks, metrics, record errors) and
//! recorded as a replay of that run; `--dry-run` plans it instead.

use super::args::GlobalArgs;
use super::{Outcome, invalid};
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
    let event = run.replayable_event().map_err(invalid)?;
    let set = super::workflows::load_checked(global)?;
    let mut settings = super::settings::resolve(global, None, args.dry_run);
    settings.explain = args.explain;
    let mut pipeline = Pipeline::new(&settings, &set, masker);
    pipeline.replay_of = Some(run.summary.id);
    Ok(pipeline.run_one(event))
}
