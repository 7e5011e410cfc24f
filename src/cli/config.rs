//! `vane.yaml` applied to the command line: its paths are the defaults of `--workflows`,
//! `--templates` and `--state` (a flag or its environment variable still wins), its secrets are
//! where secrets are resolved from.

use super::Exit;
use super::args::GlobalArgs;
use clap::ArgMatches;
use clap::parser::ValueSource;

/// Loads the configuration (where there is one) into `global`. A broken file is every problem
/// printed as `file:line:col: error: …` and exit status 2: nothing runs on a half-read config.
pub fn apply(global: &mut GlobalArgs, matches: &ArgMatches) -> Result<(), Exit> {
    let Some(file) = crate::config::locate_file(global.config.as_deref()) else {
        return Ok(());
    };
    let config = match crate::config::load(&file) {
        Ok(config) => config,
        Err(problems) => {
            for problem in &problems {
                eprintln!("{problem}");
            }
            eprintln!(
                "error: {} problem(s) in {}; nothing was run",
                problems.len(),
                file.display()
            );
            return Err(Exit::Invalid);
        }
    };
    let defaulted = |id: &str| {
        matches!(
            value_source(matches, id),
            None | Some(ValueSource::DefaultValue)
        )
    };
    if let Some(workflows) = &config.workflows
        && defaulted("workflows")
    {
        global.workflows = workflows.clone();
    }
    if let Some(templates) = &config.templates
        && defaulted("templates")
    {
        global.templates = templates.clone();
    }
    if let Some(state) = &config.state
        && defaulted("state")
    {
        global.state = state.clone();
    }
    crate::secrets::configure(config.secrets.clone());
    global.loaded = Some(std::sync::Arc::new(config));
    Ok(())
}

/// Where a global flag's value came from: the subcommand's matches hold it when it was written
/// after the subcommand, the top level's when before.
fn value_source(matches: &ArgMatches, id: &str) -> Option<ValueSource> {
    let top = matches.value_source(id);
    let sub = matches
        .subcommand()
        .and_then(|(_, sub)| sub.value_source(id));
    match (top, sub) {
        (Some(ValueSource::DefaultValue), Some(other)) | (Some(other), _) => Some(other),
        (None, other) => other,
    }
}
