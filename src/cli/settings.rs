//! The command line's flags and `vane.yaml`, resolved once into the pipeline's [`Settings`].

use super::args::{EventArgs, GlobalArgs};
use crate::pipeline::Settings;
use crate::report::{Format, github};
use crate::state::StateLocation;
use std::io::IsTerminal;

/// `--json`, `--quiet`, or human output.
pub fn format(global: &GlobalArgs) -> Format {
    match (global.json, global.quiet) {
        (true, _) => Format::Json,
        (false, true) => Format::Quiet,
        (false, false) => Format::Human,
    }
}

/// Settings for a command that runs events; `events` where it takes `run`'s event flags.
pub fn resolve(global: &GlobalArgs, events: Option<&EventArgs>, dry_run: bool) -> Settings {
    let github = github::enabled(global.github);
    Settings {
        format: format(global),
        color: global
            .color
            .enabled(std::io::stdout().is_terminal(), github),
        github,
        output: global.output,
        explain: events.is_some_and(|args| args.explain),
        dry_run,
        parallel: events
            .and_then(|args| args.parallel)
            .map(usize::from)
            .unwrap_or_else(Settings::default_parallelism),
        lock_timeout: events.map_or(std::time::Duration::from_secs(600), |args| {
            args.lock_timeout
        }),
        max_emitted: global
            .max_emitted
            .or_else(|| global.loaded.as_ref().and_then(|config| config.max_emitted))
            .unwrap_or(crate::steps::emit::DEFAULT_MAX_EMITTED),
        workspace: global.workspace.clone(),
        state: StateLocation::from_flag(&global.state),
        config: global.loaded.clone(),
        verbose: global.verbose,
    }
}
