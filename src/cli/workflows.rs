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

/// The daemon's workflows, reloadable: on SIGHUP, `POST /-/reload`, and with `watch` when the
/// folders' content changes (looked at every 2 s).
pub fn reloadable(
    global: &GlobalArgs,
    set: WorkflowSet,
    watch: bool,
) -> std::sync::Arc<crate::serve::reload::Workflows> {
    let options = LoadOptions {
        workflows_dir: global.workflows.clone(),
        templates_dir: global.templates.clone(),
    };
    let rev = global.workflows_ref.clone().filter(|rev| !rev.is_empty());
    let watch = watch.then_some(std::time::Duration::from_secs(2));
    let workflows = crate::serve::reload::Workflows::from_folders(set, options, rev);
    std::sync::Arc::new(workflows.watching(watch))
}
