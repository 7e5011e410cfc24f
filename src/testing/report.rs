//! What `vane test` prints, in the shape `cargo test` made familiar: a line per case, the
//! failures in detail after all cases, and the closing `N passed, M failed`. `--json` prints one
//! object per case instead; `--quiet` only the closing line.

use super::run::Failure;
use crate::report::Format;
use serde::Serialize;
use std::io::Write;
use std::path::Path;

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

/// Collects case results and writes them as they come.
pub struct TestReporter<W: Write> {
    out: W,
    format: Format,
    color: bool,
    passed: usize,
    /// `<file> :: <case>` and what failed, printed together after the last case.
    failed: Vec<(String, Vec<Failure>)>,
}

/// One `--json` line.
#[derive(Serialize)]
struct CaseLine<'a> {
    file: String,
    name: &'a str,
    status: &'static str,
    failures: &'a [Failure],
}

impl<W: Write> TestReporter<W> {
    pub fn new(out: W, format: Format, color: bool) -> TestReporter<W> {
        TestReporter {
            out,
            format,
            color,
            passed: 0,
            failed: Vec::new(),
        }
    }

    /// Records one case; prints its line now. Write errors (a closed pipe) are not the test's
    /// problem and are ignored, as `cargo test | head` would.
    pub fn case(&mut self, file: &Path, name: &str, failures: Vec<Failure>) {
        let passed = failures.is_empty();
        let title = format!("{} :: {name}", file.display());
        match self.format {
            Format::Json => {
                let line = CaseLine {
                    file: file.display().to_string(),
                    name,
                    status: if passed { "passed" } else { "failed" },
                    failures: &failures,
                };
                if let Ok(text) = serde_json::to_string(&line) {
                    let _ = writeln!(self.out, "{text}");
                }
            }
            Format::Human => {
                let verdict = match (passed, self.color) {
                    (true, true) => format!("{GREEN}ok{RESET}"),
                    (true, false) => "ok".to_string(),
                    (false, true) => format!("{RED}FAILED{RESET}"),
                    (false, false) => "FAILED".to_string(),
                };
                let _ = writeln!(self.out, "test {title} ... {verdict}");
            }
            Format::Quiet => {}
        }
        if passed {
            self.passed += 1;
        } else {
            self.failed.push((title, failures));
        }
    }

    /// Prints the failures in detail and the closing line; returns `(passed, failed)`.
    pub fn finish(mut self) -> (usize, usize) {
        let (passed, failed) = (self.passed, self.failed.len());
        if self.format == Format::Json {
            let _ = self.out.flush();
            return (passed, failed);
        }
        if self.format == Format::Human && !self.failed.is_empty() {
            let _ = writeln!(self.out, "\nfailures:");
            for (title, failures) in &self.failed {
                let _ = writeln!(self.out, "\n---- {title} ----");
                for failure in failures {
                    let _ = writeln!(self.out, "{}: {}", failure.expectation, failure.message);
                    if let Some(diff) = &failure.diff {
                        let _ = write!(self.out, "{}", self.colored_diff(diff));
                    }
                }
            }
        }
        if self.format == Format::Human {
            let _ = writeln!(self.out);
        }
        let _ = writeln!(self.out, "{passed} passed, {failed} failed");
        let _ = self.out.flush();
        (passed, failed)
    }

    fn colored_diff(&self, diff: &str) -> String {
        if !self.color {
            return diff.to_string();
        }
        diff.lines()
            .map(|line| {
                if line.starts_with('-') && !line.starts_with("---") {
                    format!("{RED}{line}{RESET}\n")
                } else if line.starts_with('+') && !line.starts_with("+++") {
                    format!("{GREEN}{line}{RESET}\n")
                } else {
                    format!("{line}\n")
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_output_reads_like_cargo_test() {
        let mut out = Vec::new();
        let mut reporter = TestReporter::new(&mut out, Format::Human, false);
        reporter.case(Path::new("a.test.yaml"), "one", Vec::new());
        reporter.case(
            Path::new("a.test.yaml"),
            "two",
            vec![Failure {
                expectation: "match: deploy".into(),
                message: "`deploy` did not match: branches: no match".into(),
                diff: None,
                broken: false,
            }],
        );
        assert_eq!(reporter.finish(), (1, 1));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "test a.test.yaml :: one ... ok\n\
             test a.test.yaml :: two ... FAILED\n\
             \n\
             failures:\n\
             \n\
             ---- a.test.yaml :: two ----\n\
             match: deploy: `deploy` did not match: branches: no match\n\
             \n\
             1 passed, 1 failed\n"
        );
    }
}
