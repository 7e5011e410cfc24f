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
    let config = crate::config::load(&file).map_err(|problems| {
        problems.iter().for_each(|problem| eprintln!("{problem}"));
        let count = problems.len();
        super::invalid(format!(
            "{count} problem(s) in {}; nothing was run",
            file.display()
        ))
    })?;
    let defaulted = |id: &str| {
        matches!(
            value_source(matches, id),
            None | Some(ValueSource::DefaultValue)
        )
    };
    // vane.yaml's paths are defaults: a flag or its variable wins.
    let paths = [
        ("workflows", &config.workflows, &mut global.workflows),
        ("templates", &config.templates, &mut global.templates),
        ("state", &config.state, &mut global.state),
    ];
    for (id, configured, flag) in paths {
        if let Some(path) = configured.as_ref().filter(|_| defaulted(id)) {
            *flag = path.clone();
        }
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
