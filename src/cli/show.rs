//! `vane show RUN`: one recorded run with its steps, rendered actions, outputs and log tails.

use super::args::GlobalArgs;
use super::{Exit, Outcome, invalid};
use crate::secrets::Masker;
use crate::state::{StateLocation, Store};
use clap::Args;

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run's id, or a prefix of it that only one run has.
    #[arg(value_name = "RUN")]
    pub run: String,
}

pub fn show(global: &GlobalArgs, args: &ShowArgs) -> Outcome {
    let location = StateLocation::from_flag(&global.state);
    let run = Store::find_run_at(&location, Masker::new(), &args.run).map_err(invalid)?;
    let text = if global.json {
        format!("{}\n", serde_json::to_string(&run).unwrap_or_default())
    } else {
        crate::report::run_view(&run)
    };
    super::schema::write_stdout(text.as_bytes())
}

/// The store for the reading commands; `None` (and nothing created) where there is none yet.
pub fn open_existing(global: &GlobalArgs) -> Result<Option<Store>, Exit> {
    let location = StateLocation::from_flag(&global.state);
    Store::open_existing(&location, Masker::new()).map_err(invalid)
}
