//! `vane dispatch NAME [-i key=value…]`: one workflow run by hand (SPEC §2.2, §4.1). The inputs
//! are checked against the workflow's `on.dispatch.inputs`; the `dispatch` event then goes
//! through the same matching, execution, reporting and recording as any event of `vane run`.

use super::Exit;
use super::args::GlobalArgs;
use crate::event::dispatch_event;
use crate::secrets::Masker;
use crate::workflow::{TriggerKind, WorkflowSet, resolve_inputs};
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

pub fn dispatch(global: &GlobalArgs, args: &DispatchArgs) -> Exit {
    let masker = Masker::new();
    let Some(set) = super::run::load_or_report(global) else {
        return Exit::Invalid;
    };
    let inputs = match dispatchable_inputs(&set, &args.name) {
        Ok(inputs) => inputs,
        Err(message) => {
            eprintln!("error: {message}");
            return Exit::Invalid;
        }
    };
    let inputs = match resolve_inputs(&args.name, inputs, &args.inputs) {
        Ok(inputs) => inputs,
        Err(errors) => {
            for error in errors {
                eprintln!("error: {}", masker.mask(&error.to_string()));
            }
            return Exit::Invalid;
        }
    };
    let event = dispatch_event(&args.name, inputs);
    let settings = super::settings::resolve(global, None, args.dry_run);
    super::run::run_event(
        crate::pipeline::Pipeline::new(&settings, &set, masker),
        event,
    )
}

/// The inputs of workflow `name`'s `dispatch` trigger, or why it cannot be dispatched.
fn dispatchable_inputs<'a>(
    set: &'a WorkflowSet,
    name: &str,
) -> Result<&'a [crate::workflow::DispatchInput], String> {
    let Some(workflow) = set.get(name) else {
        let closest = set
            .workflows
            .iter()
            .map(|workflow| (strsim::jaro_winkler(name, &workflow.name), &workflow.name))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        return Err(match closest {
            Some((_, suggestion)) => {
                format!("no workflow is named `{name}` (did you mean `{suggestion}`?)")
            }
            None => format!("no workflow is named `{name}`"),
        });
    };
    workflow
        .triggers
        .iter()
        .find_map(|trigger| match &trigger.kind {
            TriggerKind::Dispatch(inputs) => Some(inputs.as_slice()),
            _ => None,
        })
        .ok_or_else(|| {
            format!(
                "workflow `{name}` ({}) has no `dispatch` trigger, so it cannot be run by hand: \
                 add `dispatch:` under its `on:`",
                workflow.file.display()
            )
        })
}
