//! `vane test [PATH…]`: load the workflows, find and load the test files, run every case, report.
//! Exit 0 when every case passed, 1 when one failed, 2 when the workflows or a test file are broken.

use super::args::{GlobalArgs, TestArgs};
use super::{Exit, Outcome};
use crate::testing::{self, TestReporter};
use std::io::IsTerminal;

pub fn test(global: &GlobalArgs, args: &TestArgs) -> Outcome {
    let set = super::workflows::load_checked(global)?;
    let files = testing::select(&args.paths, &global.workflows);
    if files.is_empty() {
        eprintln!(
            "warning: no test files (*.test.yaml) under `{}` or `tests/`",
            global.workflows.display()
        );
    }
    let stdout = std::io::stdout();
    let format = super::settings::format(global);
    let color = global.color.enabled(stdout.is_terminal(), false);
    let reporter = TestReporter::new(stdout.lock(), format, color);
    let workspace = &global.workspace;
    let totals = testing::run_files(&files, &set, workspace, reporter, &mut |problem| {
        eprintln!("{problem}")
    });
    if let Some(problem) = totals.broken_files_problem() {
        return Err(super::invalid(problem));
    }
    Ok(match totals {
        _ if totals.broken_workflows > 0 => Exit::Invalid,
        _ if totals.failed > 0 => Exit::RunFailed,
        _ => Exit::Success,
    })
}
