//! The workflows as the global flags name them: the folders on disk, or (with `--workflows-ref`)
//! one git revision of them.

use super::args::GlobalArgs;
use super::{Exit, invalid};
use crate::diagnostic::Diagnostic;
use crate::workflow::{LoadOptions, WorkflowSet, WorkflowSource, load_workflows_from};
use std::path::PathBuf;

/// Loads the workflows, with their problems as diagnostics. A revision that cannot be read is
/// reported here and is exit status 2: there is nothing to diagnose in files never read.
pub fn load(
    global: &GlobalArgs,
    paths: &[PathBuf],
) -> Result<(WorkflowSet, Vec<Diagnostic>), Exit> {
    let options = LoadOptions {
        workflows_dir: global.workflows.clone(),
        templates_dir: global.templates.clone(),
    };
    let workflows_ref = global.workflows_ref.as_deref();
    let source =
        WorkflowSource::select(&options, workflows_ref, !paths.is_empty()).map_err(invalid)?;
    Ok(load_workflows_from(&options, source, paths))
}

/// Loads the workflows for a command that runs them: every problem printed (and annotated in
/// GitHub Actions) and exit status 2 when one is an error; warnings only with `-v`.
pub fn load_checked(global: &GlobalArgs) -> Result<WorkflowSet, Exit> {
    let (set, diagnostics) = load(global, &[])?;
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let github = crate::report::github::enabled(global.github);
    for diagnostic in diagnostics
        .iter()
        .filter(|_| errors > 0 || global.verbose > 0)
    {
        eprintln!("{diagnostic}");
        if github && errors > 0 {
            println!("{}", crate::report::github::annotation(diagnostic));
        }
    }
    if errors > 0 {
        eprintln!(
            "error: {errors} problem(s) in the workflows; nothing was run (see `vane validate`)"
        );
        return Err(Exit::Invalid);
    }
    Ok(set)
}
