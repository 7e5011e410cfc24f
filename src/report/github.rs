//! GitHub Actions mode (SPEC §7): workflow commands (`::add-mask::`, `::error file=…`,
//! `::group::`), the step outputs `matched`, `runs` and `status` in `$GITHUB_OUTPUT`, and a
//! Markdown summary in `$GITHUB_STEP_SUMMARY`.

use crate::diagnostic::{Diagnostic, Severity};
use crate::engine::{EventOutcome, RunStatus, StepStatus};
use crate::plan::Selection;
use crate::secrets::Masker;
use crate::workflow::WorkflowSet;
use serde_json::{Value as Json, json};
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

/// Whether vane runs as a GitHub Actions step: `--github`, or the runner's own `GITHUB_ACTIONS`.
pub fn enabled(flag: bool) -> bool {
    flag || std::env::var("GITHUB_ACTIONS").is_ok_and(|value| value == "true")
}

/// Escapes a workflow command's message (`%`, CR, LF), as the runner's toolkit does.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value (also `:` and `,`).
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// `::error file=workflows/x.yaml,line=3,col=5::message` (or `::warning`).
pub fn annotation(diagnostic: &Diagnostic) -> String {
    let (line, column) = diagnostic.line_col();
    let kind = match diagnostic.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    format!(
        "::{kind} file={},line={line},col={column}::{}",
        escape_property(&diagnostic.file.display().to_string()),
        escape_data(&diagnostic.message)
    )
}

/// Resolves every secret the loaded workflows declare, adds it to the masker and announces it
/// with `::add-mask::` — before anything else is printed, so no later line can show it.
pub fn announce_masks(set: &WorkflowSet, masker: &Masker, out: &mut impl Write) {
    let mut names: Vec<&str> = set
        .workflows
        .iter()
        .flat_map(|workflow| workflow.secrets.iter().map(String::as_str))
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        if let Some(value) = crate::secrets::resolve(name) {
            masker.add(&value);
            for line in value.lines().filter(|line| !line.trim().is_empty()) {
                let _ = writeln!(out, "::add-mask::{}", escape_data(line));
            }
        }
    }
    let _ = out.flush();
}

/// `::group::` before a run's lines and `::endgroup::` after, so the log folds per run.
pub fn group_start(name: &str, status: &str) -> String {
    format!("::group::{} ({status})\n", escape_data(name))
}

/// The group a real run's lines stream into, opened when the run starts.
pub fn group_open(name: &str) -> String {
    format!("::group::{}\n", escape_data(name))
}

/// `::error title=deploy/apply,file=workflows/deploy.yaml,line=12,col=5::exit code 3`: a failed
/// step, annotated at its place in the workflow file.
pub fn step_error(
    workflow: &str,
    step: &str,
    file: &std::path::Path,
    position: Option<crate::yaml::Position>,
    message: &str,
) -> String {
    let mut properties = format!(
        "title={},file={}",
        escape_property(&format!("{workflow}/{step}")),
        escape_property(&file.display().to_string())
    );
    if let Some(position) = position {
        let _ = write!(
            properties,
            ",line={},col={}",
            position.line, position.column
        );
    }
    format!("::error {properties}::{}\n", escape_data(message))
}

pub const GROUP_END: &str = "::endgroup::\n";

/// What the Actions step reports when the process ends.
#[derive(Default)]
pub struct ActionsReport {
    matched: Vec<String>,
    runs: Vec<Json>,
    failed: bool,
    summary: String,
}

impl ActionsReport {
    /// Adds one event's outcome to the outputs and the summary.
    pub fn record(&mut self, outcome: &EventOutcome, set: &WorkflowSet) {
        let event = &outcome.event;
        let _ = writeln!(
            self.summary,
            "### {} `{}`\n",
            markdown(&event.headline()),
            event.id().chars().take(12).collect::<String>()
        );
        if outcome.runs.is_empty() {
            self.summary.push_str("No workflow matched.\n\n");
        } else {
            self.summary.push_str(
                "| workflow | step | kind | status | duration |\n| --- | --- | --- | --- | --- |\n",
            );
        }
        for (index, run) in &outcome.runs {
            let name = &set.workflows[*index].name;
            if !self.matched.contains(name) {
                self.matched.push(name.clone());
            }
            self.failed |= run.status == RunStatus::Failure;
            self.runs.push(json!({
                "workflow": name, "event_id": event.id(), "event_type": event.kind,
                "run_id": run.id, "status": run.status.as_str(), "duration_ms": run.duration_ms,
            }));
            let _ = writeln!(
                self.summary,
                "| **{}** | | | {} {} | {} ms |",
                markdown(name),
                run_icon(run.status),
                run.status.as_str(),
                run.duration_ms
            );
            if let Some(error) = &run.error {
                let _ = writeln!(self.summary, "| | | | {} | |", markdown(error));
            }
            for step in &run.steps {
                let error = step
                    .error
                    .as_deref()
                    .map(|error| format!(": {}", markdown(error)))
                    .unwrap_or_default();
                let _ = writeln!(
                    self.summary,
                    "| | {} | {} | {} {}{error} | {} ms |",
                    markdown(&step.id),
                    step.kind,
                    step_icon(step.status),
                    step.status.as_str(),
                    step.duration_ms
                );
            }
        }
        self.failed |= outcome.failed();
        let mut others = String::new();
        for (index, selection) in super::not_run(outcome, set) {
            if let Selection::NotMatched(reason) | Selection::Broken(reason) = selection {
                let name = &set.workflows[index].name;
                let _ = writeln!(others, "- `{name}`: {}", markdown(&reason));
            }
        }
        if !others.is_empty() {
            let _ = write!(
                self.summary,
                "\n<details><summary>Did not match</summary>\n\n{others}\n</details>\n"
            );
        }
        self.summary.push('\n');
    }

    /// `success`, `failure`, or `none` when nothing ran.
    pub fn status(&self) -> &'static str {
        if self.failed {
            "failure"
        } else if self.runs.is_empty() {
            "none"
        } else {
            "success"
        }
    }

    /// Appends the outputs to `$GITHUB_OUTPUT` and the summary to `$GITHUB_STEP_SUMMARY`.
    pub fn finish(&self, masker: &Masker) -> std::io::Result<()> {
        if let Some(path) = env_path("GITHUB_OUTPUT") {
            // The heredoc form is safe for any value; the delimiter is random so no value ends it.
            let delimiter = format!("ghadelimiter_{}", uuid::Uuid::new_v4().simple());
            let runs = masker
                .mask(&serde_json::to_string(&self.runs).unwrap_or_else(|_| "[]".to_string()));
            let mut text = String::new();
            for (name, value) in [
                ("matched", self.matched.join(",")),
                ("runs", runs),
                ("status", self.status().to_string()),
            ] {
                let _ = write!(text, "{name}<<{delimiter}\n{value}\n{delimiter}\n");
            }
            append(&path, &text)?;
        }
        if let Some(path) = env_path("GITHUB_STEP_SUMMARY") {
            let mut text = String::from("## vane\n\n");
            text.push_str(&self.summary);
            append(&path, &masker.mask(&text))?;
        }
        Ok(())
    }
}

/// GitHub Actions as a consumer of the stream: the outputs and summary gathered per event and
/// written at the end; where human output does not carry them (`--json`, `--quiet`), failed
/// steps' `::error` annotations on `annotations`.
pub struct Actions<'a> {
    pub report: ActionsReport,
    pub set: &'a WorkflowSet,
    pub masker: Masker,
    /// Where annotations go when the human reporter does not write them.
    pub annotations: Option<Box<dyn Write + Send + 'a>>,
}

impl crate::pipeline::Consumer for Actions<'_> {
    fn observe(&mut self, event: &crate::engine::RunEvent<'_>) {
        match event {
            crate::engine::RunEvent::EventFinished { outcome, .. } => {
                self.report.record(outcome, self.set)
            }
            crate::engine::RunEvent::StepFinished { step, record }
                if record.status == StepStatus::Failure =>
            {
                if let Some(out) = self.annotations.as_mut() {
                    let workflow = &self.set.workflows[step.workflow];
                    let label = match step.job {
                        Some(job) => format!("{job}.{}", step.step.id),
                        None => step.step.id.clone(),
                    };
                    let line = step_error(
                        &workflow.name,
                        &label,
                        &workflow.file,
                        workflow.locate(&step.step.path),
                        record.error.as_deref().unwrap_or("failed"),
                    );
                    let _ = out.write_all(self.masker.mask(&line).as_bytes());
                    let _ = out.flush();
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self, _totals: &crate::report::Totals) -> crate::pipeline::Exit {
        match self.report.finish(&self.masker) {
            Ok(()) => crate::pipeline::Exit::Success,
            Err(error) => {
                tracing::error!("cannot write the GitHub Actions outputs: {error}");
                crate::pipeline::Exit::Invalid
            }
        }
    }
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

fn append(path: &PathBuf, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// Text for a Markdown table cell.
fn markdown(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn run_icon(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Success => "✅",
        RunStatus::Failure => "❌",
        RunStatus::Cancelled => "⊘",
        RunStatus::Planned => "○",
    }
}

fn step_icon(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Success => "✅",
        StepStatus::Failure => "❌",
        StepStatus::Skipped => "–",
        StepStatus::Cancelled => "⊘",
        StepStatus::Planned => "○",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::Position;

    #[test]
    fn annotations_escape_their_parts() {
        let diagnostic = Diagnostic::error(
            "workflows/a,b.yaml",
            Some(Position { line: 3, column: 5 }),
            "bad: 100%\nnext",
        );
        assert_eq!(
            annotation(&diagnostic),
            "::error file=workflows/a%2Cb.yaml,line=3,col=5::bad: 100%25%0Anext"
        );
    }
}
