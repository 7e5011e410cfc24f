//! Human output: a line per event, each matched workflow with its steps and their status; in a
//! plan, every rendered action, so the dry run shows exactly what would run.

use super::ReportOptions;
use crate::engine::{EventOutcome, RunRecord, RunStatus, StepRecord, StepStatus};
use crate::plan::Selection;
use crate::workflow::WorkflowSet;
use serde_json::Value as Json;
use std::fmt::Write;

struct Palette {
    color: bool,
}

impl Palette {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
    fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }
    fn green(&self, text: &str) -> String {
        self.paint("32", text)
    }
    fn red(&self, text: &str) -> String {
        self.paint("31", text)
    }
    fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }
    fn cyan(&self, text: &str) -> String {
        self.paint("36", text)
    }
}

pub fn event_block(outcome: &EventOutcome, set: &WorkflowSet, options: &ReportOptions) -> String {
    let palette = Palette {
        color: options.color,
    };
    let mut out = String::new();
    let event = &outcome.event;
    let origin = match &event.parent {
        Some(parent) => format!("emitted by {}", short_id(parent)),
        None => event.source.clone(),
    };
    let _ = writeln!(
        out,
        "{} {}  {}",
        palette.bold("●"),
        palette.bold(&event.headline()),
        palette.dim(&format!("({origin}, id {})", short_id(event.id())))
    );
    for (index, run) in &outcome.runs {
        let workflow = &set.workflows[*index];
        write_run(&mut out, &workflow.name, run, options, &palette);
    }
    for (index, selection) in &outcome.selections {
        if let Selection::Broken(message) = selection {
            let _ = writeln!(
                out,
                "  {} {}  {}",
                palette.red("✗"),
                set.workflows[*index].name,
                palette.red(message)
            );
        }
    }
    let matched_or_broken = outcome.runs.len()
        + outcome
            .selections
            .iter()
            .filter(|(_, selection)| matches!(selection, Selection::Broken(_)))
            .count();
    let others = set.len().saturating_sub(matched_or_broken);
    if options.explain {
        for (index, selection) in super::not_run(outcome, set) {
            if let Selection::NotMatched(reason) = selection {
                let _ = writeln!(
                    out,
                    "  {} {}  {}",
                    palette.dim("·"),
                    palette.dim(&set.workflows[index].name),
                    palette.dim(&reason)
                );
            }
        }
    } else if outcome.runs.is_empty() && others > 0 {
        let _ = writeln!(
            out,
            "  {}",
            palette.dim(&format!(
                "no workflow matched ({others} checked; --explain says why)"
            ))
        );
    }
    out
}

fn write_run(
    out: &mut String,
    name: &str,
    run: &RunRecord,
    options: &ReportOptions,
    palette: &Palette,
) {
    let (mark, status) = match run.status {
        RunStatus::Success => (palette.green("✓"), palette.green("success")),
        RunStatus::Failure => (palette.red("✗"), palette.red("failure")),
        RunStatus::Cancelled => (palette.yellow("⊘"), palette.yellow("cancelled")),
        RunStatus::Planned => (palette.cyan("○"), palette.cyan("planned")),
    };
    if options.github {
        out.push_str(&super::github::group_start(name, run.status.as_str()));
    }
    let duration = if options.dry_run {
        String::new()
    } else {
        format!("  {}", palette.dim(&millis(run.duration_ms)))
    };
    let _ = writeln!(out, "  {mark} {}  {status}{duration}", palette.bold(name));
    if let Some(error) = &run.error {
        let _ = writeln!(out, "      {}", palette.red(error));
    }
    let id_width = run
        .steps
        .iter()
        .map(|step| step_label(step).len())
        .max()
        .unwrap_or(0);
    for step in &run.steps {
        write_step(out, step, id_width, options, palette);
    }
    if options.github {
        out.push_str(super::github::GROUP_END);
    }
}

fn step_label(step: &StepRecord) -> String {
    match &step.job {
        Some(job) => format!("{job}.{}", step.id),
        None => step.id.clone(),
    }
}

fn write_step(
    out: &mut String,
    step: &StepRecord,
    width: usize,
    options: &ReportOptions,
    palette: &Palette,
) {
    let mark = match step.status {
        StepStatus::Success => palette.green("✓"),
        StepStatus::Failure => palette.red("✗"),
        StepStatus::Skipped => palette.dim("–"),
        StepStatus::Cancelled => palette.yellow("⊘"),
        StepStatus::Planned => palette.cyan("○"),
    };
    let label = format!("{:width$}", step_label(step));
    let mut line = format!("      {mark} {label}  {:6}", step.kind);
    match step.status {
        StepStatus::Skipped => line.push_str(&format!("  {}", palette.dim("skipped"))),
        StepStatus::Planned => {}
        _ => {
            line.push_str(&format!("  {}", palette.dim(&millis(step.duration_ms))));
            if step.attempts > 1 {
                line.push_str(&format!(
                    "  {}",
                    palette.dim(&format!("{} attempts", step.attempts))
                ));
            }
        }
    }
    if let Some(error) = &step.error {
        line.push_str(&format!("  {}", palette.red(error)));
    }
    let _ = writeln!(out, "{}", line.trim_end());
    if options.dry_run && step.status != StepStatus::Skipped {
        write_rendered(out, &step.rendered, palette);
        // What the step's kind says of the outputs a plan knows (a `scale` decision's reason).
        if let Some(summary) = &step.summary {
            let _ = writeln!(out, "          → {summary}");
        }
        if let Some(diff) = &step.diff {
            for diff_line in diff.lines() {
                let painted = if diff_line.starts_with('+') && !diff_line.starts_with("+++") {
                    palette.green(diff_line)
                } else if diff_line.starts_with('-') && !diff_line.starts_with("---") {
                    palette.red(diff_line)
                } else {
                    palette.dim(diff_line)
                };
                let _ = writeln!(out, "          {painted}");
            }
        }
    }
}

/// The rendered action as YAML, indented under its step.
fn write_rendered(out: &mut String, rendered: &Json, palette: &Palette) {
    if rendered.is_null() {
        return;
    }
    let text = crate::yaml::to_string(rendered).unwrap_or_default();
    for line in text.lines() {
        let _ = writeln!(out, "          {}", palette.dim(line));
    }
}

fn millis(duration_ms: u64) -> String {
    crate::duration::format_duration(std::time::Duration::from_millis(duration_ms))
}

fn short_id(id: &str) -> &str {
    &id[..id.len().min(12)]
}
