//! Workflow tests (SPEC §4.6, `vane test`): files of cases, each an event and what the workflows
//! must do with it — which match, which do not, what their steps render to. Nothing is executed:
//! every case is a dry run through the same engine `plan` uses.
//!
//! - [`case`]: the test file format, read and checked against the loaded workflows;
//! - [`run`]: one case through the engine, its expectations checked;
//! - [`report`]: `cargo test`-style output, or one JSON object per case.

mod case;
mod report;
mod run;

pub use case::{Check, FieldCheck, TestCase, TestFile, json_schema, load_test_file};
pub use report::TestReporter;
pub use run::{Failure, diff, run_case};

use crate::workflow::WorkflowSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What running test files came to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Test files that could not be loaded.
    pub broken_files: usize,
    /// Case failures that are errors in the workflows (broken for the case's event).
    pub broken_workflows: usize,
    /// Cases that failed.
    pub failed: usize,
}

impl Totals {
    /// `N test file(s) could not be run`, when one could not.
    pub fn broken_files_problem(&self) -> Option<String> {
        let count = self.broken_files;
        let plural = if count == 1 { "" } else { "s" };
        (count > 0).then(|| format!("{count} test file{plural} could not be run"))
    }
}

/// The test files `vane test PATH…` runs: every test file under each folder named and each file
/// named as is (a missing one is reported when loaded); with no path, those [`discover`] finds.
pub fn select(paths: &[PathBuf], workflows_dir: &Path) -> Vec<PathBuf> {
    if paths.is_empty() {
        return discover(workflows_dir, Path::new("tests"));
    }
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(find_test_files(path));
        } else {
            files.push(path.clone());
        }
    }
    files
}

/// Runs every case of every file through `reporter`. The problems of a file that cannot be run,
/// and of a workflow broken for a case's event, go to `problem` as they are found.
pub fn run_files<W: Write>(
    files: &[PathBuf],
    set: &WorkflowSet,
    workspace: &Path,
    mut reporter: TestReporter<W>,
    problem: &mut dyn FnMut(String),
) -> Totals {
    let mut totals = Totals::default();
    for file in files {
        let loaded = match load_test_file(file, set) {
            Ok(loaded) => loaded,
            Err(problems) => {
                totals.broken_files += 1;
                problems.iter().for_each(|p| problem(p.to_string()));
                continue;
            }
        };
        for case in &loaded.cases {
            let failures = run_case(case, set, workspace);
            for failure in failures.iter().filter(|failure| failure.broken) {
                totals.broken_workflows += 1;
                problem(format!("{}: error: {}", file.display(), failure.message));
            }
            reporter.case(file, &case.name, failures);
        }
    }
    totals.failed = reporter.finish().1;
    totals
}

/// `*.test.yaml` / `*.test.yml`: the files `load_workflows` leaves out.
pub fn is_test_file(name: &str) -> bool {
    name.ends_with(".test.yaml") || name.ends_with(".test.yml")
}

/// The test files `vane test` runs without arguments: those beside the workflows (anywhere under
/// the workflows folder) and those under `tests_dir` where it exists. Sorted, each once.
pub fn discover(workflows_dir: &Path, tests_dir: &Path) -> Vec<PathBuf> {
    let mut files = find_test_files(workflows_dir);
    if tests_dir.is_dir() {
        for file in find_test_files(tests_dir) {
            if !files.contains(&file) {
                files.push(file);
            }
        }
    }
    files
}

/// Test files below `dir` (or `dir` itself when it is a file), sorted; hidden folders skipped.
pub fn find_test_files(dir: &Path) -> Vec<PathBuf> {
    if dir.is_file() {
        return vec![dir.to_path_buf()];
    }
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(entry.path()),
                Ok(_) if is_test_file(&name) => files.push(entry.path()),
                _ => {}
            }
        }
    }
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_files_are_found_beside_workflows_and_under_tests() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str| {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "[]").unwrap();
        };
        write("workflows/deploy.yaml");
        write("workflows/deploy.test.yaml");
        write("workflows/nested/b.test.yml");
        write("workflows/.hidden/c.test.yaml");
        write("tests/more/d.test.yaml");
        write("tests/notes.yaml");
        let found: Vec<String> = discover(&dir.path().join("workflows"), &dir.path().join("tests"))
            .iter()
            .map(|path| path.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            found,
            vec![
                "workflows/deploy.test.yaml",
                "workflows/nested/b.test.yml",
                "tests/more/d.test.yaml"
            ]
        );
        assert!(is_test_file("x.test.yml"));
        assert!(!is_test_file("x.yaml"));
    }
}
