//! `vane test [PATH…]`: load the workflows, find and load the test files, run every case, report.
//! Exit 0 when every case passed, 1 when one failed, 2 when the workflows or a test file are broken.

use super::Exit;
use super::args::{GlobalArgs, TestArgs};
use crate::report::Format;
use crate::testing::{self, TestReporter, load_test_file, run_case};
use std::io::IsTerminal;
use std::path::Path;

pub fn test(global: &GlobalArgs, args: &TestArgs) -> Exit {
    let (set, diagnostics) = match super::workflows::load(global, &[]) {
        Ok(loaded) => loaded,
        Err(exit) => return exit,
    };
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    if errors > 0 || global.verbose > 0 {
        for diagnostic in &diagnostics {
            eprintln!("{diagnostic}");
        }
    }
    if errors > 0 {
        eprintln!(
            "error: {errors} problem(s) in the workflows; no test was run (see `vane validate`)"
        );
        return Exit::Invalid;
    }

    let files = if args.paths.is_empty() {
        testing::discover(&global.workflows, Path::new("tests"))
    } else {
        let mut files = Vec::new();
        for path in &args.paths {
            if path.is_dir() {
                files.extend(testing::find_test_files(path));
            } else {
                // A missing file is reported by `load_test_file` like any unreadable one.
                files.push(path.clone());
            }
        }
        files
    };
    if files.is_empty() {
        eprintln!(
            "warning: no test files (*.test.yaml) under `{}` or `tests/`",
            global.workflows.display()
        );
    }

    let stdout = std::io::stdout();
    let format = if global.json {
        Format::Json
    } else if global.quiet {
        Format::Quiet
    } else {
        Format::Human
    };
    let mut reporter = TestReporter::new(
        stdout.lock(),
        format,
        global.color.enabled(stdout.is_terminal(), false),
    );
    let mut broken = 0;
    let mut broken_workflows = 0;
    for file in &files {
        match load_test_file(file, &set) {
            Ok(loaded) => {
                for case in &loaded.cases {
                    let failures = run_case(case, &set, &global.workspace);
                    // A workflow broken for the case's event is an error in the workflows.
                    for failure in failures.iter().filter(|failure| failure.broken) {
                        broken_workflows += 1;
                        eprintln!("{}: error: {}", file.display(), failure.message);
                    }
                    reporter.case(file, &case.name, failures);
                }
            }
            Err(problems) => {
                broken += 1;
                for problem in problems {
                    eprintln!("{problem}");
                }
            }
        }
    }
    let (_, failed) = reporter.finish();
    if broken > 0 {
        eprintln!(
            "error: {broken} test file{} could not be run",
            if broken == 1 { "" } else { "s" }
        );
        Exit::Invalid
    } else if broken_workflows > 0 {
        Exit::Invalid
    } else if failed > 0 {
        Exit::RunFailed
    } else {
        Exit::Success
    }
}
