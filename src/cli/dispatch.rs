//! `vane dispatch NAME [-i key=value…]`: one workflow run by hand. The inputs are checked against
//! the workflow's `on.dispatch.inputs`; the `dispatch` event then goes through the same matching,
//! execution, reporting and recording as any event of `vane run`.

use super::args::GlobalArgs;
use super::{Outcome, invalid};
use crate::event::dispatch_event;
use crate::pipeline::Pipeline;
use crate::secrets::Masker;
use crate::workflow::resolve_inputs;
use clap::Args;

#[derive(Debug, Args)]
pub struct DispatchArgs {
    /// The workflow to run (its `name`).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// An input, typed by the workflow's `on.dispatch.inputs`; repeat for more.
    #[arg(short = 'i', long = "input", value_name = "KEY=VALUE")]
    pub inputs: Vec<String>,
    /// Plan instead of executing, as `vane plan` would.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn dispatch(global: &GlobalArgs, args: &DispatchArgs) -> Outcome {
    let masker = Masker::new();
    let set = super::workflows::load_checked(global)?;
    let declared = set.dispatch_inputs(&args.name).map_err(invalid)?;
    let inputs = resolve_inputs(&args.name, declared, &args.inputs).map_err(|errors| {
        for error in errors {
            eprintln!("error: {}", masker.mask(&error.to_string()));
        }
        super::Exit::Invalid
    })?;
    let settings = super::settings::resolve(global, None, args.dry_run);
    let event = dispatch_event(&args.name, inputs);
    Ok(Pipeline::new(&settings, &set, masker).run_one(event))
}
