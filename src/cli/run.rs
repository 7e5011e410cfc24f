//! `vane run` and `vane plan`: read events, send them down the pipeline, exit with its status.

use super::args::{EventArgs, GlobalArgs};
use super::{Outcome, invalid};
use crate::event::InputOptions;
use crate::pipeline::{Pipeline, open_events};
use crate::secrets::Masker;

pub fn run(global: &GlobalArgs, args: &EventArgs, dry_run: bool) -> Outcome {
    let set = super::workflows::load_checked(global)?;
    let input = InputOptions {
        kind: args.kind.clone(),
        source: args.source.clone(),
        delivery_id: None,
    };
    let (origin, events) =
        open_events(args.event.as_deref(), args.max_event_size, input).map_err(invalid)?;
    let settings = super::settings::resolve(global, Some(args), dry_run);
    Ok(Pipeline::new(&settings, &set, Masker::new()).run(&origin, events))
}
