//! The workflows as the global flags name them: the folders on disk, or (with `--workflows-ref`)
//! one git revision of them.

use super::Exit;
use super::args::GlobalArgs;
use crate::diagnostic::Diagnostic;
use crate::workflow::{
    LoadOptions, WorkflowSet, WorkflowSource, load_workflows_from, read_revision,
};
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
    // An empty value (`VANE_WORKFLOWS_REF=` from a CI input left blank) means no revision.
    let workflows_ref = global
        .workflows_ref
        .as_deref()
        .filter(|rev| !rev.is_empty());
    let source = match workflows_ref {
        None => WorkflowSource::Disk,
        Some(_) if !paths.is_empty() => {
            eprintln!(
                "error: `--workflows-ref` loads the whole workflows folder at that revision; \
                 name no files with it"
            );
            return Err(Exit::Invalid);
        }
        Some(rev) => match read_revision(&options.workflows_dir, &options.templates_dir, rev) {
            Ok(snapshot) => WorkflowSource::Revision(snapshot),
            Err(error) => {
                eprintln!("error: {error}");
                return Err(Exit::Invalid);
            }
        },
    };
    Ok(load_workflows_from(&options, source, paths))
}
