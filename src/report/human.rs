//! Human output: a line per event, each matched workflow with its steps and their status; in a
//! plan, every rendered action, so the dry run shows exactly what would run. A real run is told
//! as it happens: the workflow when its run starts, each line a step writes under that step as
//! it is written, each step's status when it ends, the run's status (and, when it failed, its id
//! and how to see it whole) last.

use super::{ReportOptions, Totals};
use crate::engine::{
    EventOutcome, RunEvent, RunRecord, RunStatus, StepRecord, StepRef, StepStatus, Stream,
};
use crate::pipeline::{Consumer, Exit, OutputMode};
use crate::plan::Selection;
use crate::secrets::Masker;
use crate::workflow::WorkflowSet;
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
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

/// The line that opens an event's block.
fn event_header(out: &mut String, event: &crate::event::Event, palette: &Palette) {
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
}

/// A whole event at once: how a plan is shown.
pub fn event_block(outcome: &EventOutcome, set: &WorkflowSet, options: &ReportOptions) -> String {
    let palette = Palette {
        color: options.color,
    };
    let mut out = String::new();
    event_header(&mut out, &outcome.event, &palette);
    for (index, run) in &outcome.runs {
        let workflow = &set.workflows[*index];
        write_run(&mut out, &workflow.name, run, options, &palette);
    }
    event_tail(&mut out, outcome, set, options, &palette);
    out
}

/// What follows an event's runs: the workflows that broke on it, and why the others did not run
/// (with `--explain`) or how many there were.
fn event_tail(
    out: &mut String,
    outcome: &EventOutcome,
    set: &WorkflowSet,
    options: &ReportOptions,
    palette: &Palette,
) {
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
    } else if set.is_empty() {
        // An empty or mistyped workflows folder would otherwise look like a quiet success.
        let _ = writeln!(
            out,
            "  {}",
            palette.dim("0 workflows loaded (is `--workflows` the folder they are in?)")
        );
    }
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

/// How many lines of a failed step's stderr are shown when its output was not (`--output none`).
pub const FAILURE_TAIL: usize = 20;
/// The most lines held for a step under `--output failed`; the oldest go first.
const HELD_LINES: usize = 1000;

/// Human output of real runs, told as they happen. Events may run at once (`--parallel`), but
/// the output keeps input order: what belongs to the event at the head of the order is written
/// at once, what belongs to later ones is held until they reach the head.
pub struct LiveReporter<'a, W: std::io::Write + Send> {
    out: W,
    set: &'a WorkflowSet,
    options: ReportOptions,
    output: OutputMode,
    masker: Masker,
    palette: Palette,
    /// The sequence whose text goes out directly; every earlier event has finished.
    head: u64,
    /// Text of later events, waiting for their turn.
    held: BTreeMap<u64, String>,
    /// Events whose header line is written (or held).
    opened: HashSet<u64>,
    /// Runs whose start was told (the others are told whole when their event ends).
    told: HashSet<String>,
    /// Per event, the step whose lines were written last: another step's line needs its name.
    last_writer: HashMap<u64, String>,
    /// Per running step, its held lines (`--output failed`) or its stderr tail (`--output none`).
    lines: HashMap<String, VecDeque<String>>,
    /// Per run, its failed steps' annotations (GitHub Actions), written after the group.
    annotations: HashMap<String, Vec<String>>,
}

impl<'a, W: std::io::Write + Send> LiveReporter<'a, W> {
    pub fn new(
        out: W,
        set: &'a WorkflowSet,
        options: ReportOptions,
        output: OutputMode,
        masker: Masker,
    ) -> LiveReporter<'a, W> {
        LiveReporter {
            out,
            set,
            palette: Palette {
                color: options.color,
            },
            options,
            output,
            masker,
            head: 0,
            held: BTreeMap::new(),
            opened: HashSet::new(),
            told: HashSet::new(),
            last_writer: HashMap::new(),
            lines: HashMap::new(),
            annotations: HashMap::new(),
        }
    }

    /// Text for event `sequence`: written now at the head, held otherwise.
    fn emit(&mut self, sequence: u64, text: &str) {
        if text.is_empty() {
            return;
        }
        if sequence == self.head {
            let text = self.masker.mask(text);
            super::progress::suspend(|| {
                let _ = self.out.write_all(text.as_bytes());
                let _ = self.out.flush();
            });
        } else {
            self.held.entry(sequence).or_default().push_str(text);
        }
    }

    /// Event `sequence` is done: the next one's held text goes out, and it writes directly.
    fn advance(&mut self, sequence: u64) {
        self.opened.remove(&sequence);
        self.last_writer.remove(&sequence);
        self.head = sequence + 1;
        if let Some(text) = self.held.remove(&self.head) {
            self.emit(self.head, &text);
        }
    }

    fn open_event(&mut self, sequence: u64, event: &crate::event::Event) {
        if self.opened.insert(sequence) {
            let mut text = String::new();
            event_header(&mut text, event, &self.palette);
            self.emit(sequence, &text);
        }
    }

    fn step_key(step: &StepRef) -> String {
        format!(
            "{}/{}/{}",
            step.run_id,
            step.job.unwrap_or(""),
            step.step.id
        )
    }

    fn label(step: &StepRef) -> String {
        match step.job {
            Some(job) => format!("{job}.{}", step.step.id),
            None => step.step.id.clone(),
        }
    }

    /// The widest step label of a workflow, so its status lines align.
    fn label_width(&self, workflow: usize) -> usize {
        let workflow = &self.set.workflows[workflow];
        let jobs = workflow.jobs.len() > 1 || workflow.jobs.iter().any(|job| job.id != "main");
        workflow
            .jobs
            .iter()
            .flat_map(|job| {
                job.steps.iter().map(move |step| {
                    if jobs {
                        job.id.len() + 1 + step.id.len()
                    } else {
                        step.id.len()
                    }
                })
            })
            .max()
            .unwrap_or(0)
    }

    fn output_line(&mut self, step: &StepRef, stream: Stream, line: &str) {
        let key = Self::step_key(step);
        match self.output {
            OutputMode::All => {
                let mut text = String::new();
                if self.last_writer.get(&step.sequence) != Some(&key) {
                    let name = &self.set.workflows[step.workflow].name;
                    let header = if self.options.github {
                        format!("{name} › {}", Self::label(step))
                    } else {
                        Self::label(step)
                    };
                    let _ = writeln!(text, "      {} {}", self.palette.dim("▸"), header);
                    self.last_writer.insert(step.sequence, key);
                }
                let _ = writeln!(text, "      {} {line}", self.palette.dim("│"));
                self.emit(step.sequence, &text);
            }
            OutputMode::Failed => {
                let held = self.lines.entry(key).or_default();
                if held.len() == HELD_LINES {
                    held.pop_front();
                }
                held.push_back(line.to_string());
            }
            OutputMode::None if stream == Stream::Stderr => {
                let tail = self.lines.entry(key).or_default();
                if tail.len() == FAILURE_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line.to_string());
            }
            OutputMode::None => {}
        }
    }

    fn step_finished(&mut self, step: &StepRef, record: &StepRecord) {
        let key = Self::step_key(step);
        let kept = self.lines.remove(&key);
        let width = self.label_width(step.workflow);
        let mut text = String::new();
        write_step(&mut text, record, width, &self.options, &self.palette);
        if record.status == StepStatus::Failure {
            for line in kept.iter().flatten() {
                let _ = writeln!(text, "      {} {line}", self.palette.dim("│"));
            }
            if self.options.github {
                let workflow = &self.set.workflows[step.workflow];
                let position = workflow.locate(&step.step.path);
                let message = record.error.as_deref().unwrap_or("failed");
                self.annotations
                    .entry(step.run_id.to_string())
                    .or_default()
                    .push(super::github::step_error(
                        &workflow.name,
                        &Self::label(step),
                        &workflow.file,
                        position,
                        message,
                    ));
            }
        }
        if let Some(summary) = &record.summary {
            let _ = writeln!(text, "          {} {summary}", self.palette.dim("→"));
        }
        self.last_writer.remove(&step.sequence);
        self.emit(step.sequence, &text);
    }

    fn run_started(&mut self, sequence: u64, workflow: usize, run_id: &str) {
        self.told.insert(run_id.to_string());
        let name = &self.set.workflows[workflow].name;
        let text = if self.options.github {
            super::github::group_open(name)
        } else {
            format!("  {} {}\n", self.palette.bold("▸"), self.palette.bold(name))
        };
        self.emit(sequence, &text);
    }

    fn run_finished(&mut self, sequence: u64, workflow: usize, record: &RunRecord) {
        let name = self.set.workflows[workflow].name.clone();
        let mut text = String::new();
        if self.options.github && self.told.contains(&record.id) {
            text.push_str(super::github::GROUP_END);
        }
        let (mark, status) = run_mark(record.status, &self.palette);
        let _ = writeln!(
            text,
            "  {mark} {}  {status}  {}",
            self.palette.bold(&name),
            self.palette.dim(&millis(record.duration_ms))
        );
        if let Some(error) = &record.error {
            let _ = writeln!(text, "      {}", self.palette.red(error));
        }
        if record.status == RunStatus::Failure {
            let _ = writeln!(
                text,
                "      {}",
                self.palette.dim(&format!(
                    "run {}: vane show {}",
                    record.id,
                    short_run_id(&record.id)
                ))
            );
        }
        for annotation in self.annotations.remove(&record.id).unwrap_or_default() {
            text.push_str(&annotation);
        }
        self.emit(sequence, &text);
    }

    fn event_finished(&mut self, sequence: u64, outcome: &EventOutcome) {
        let mut text = String::new();
        if !self.opened.contains(&sequence) {
            event_header(&mut text, &outcome.event, &self.palette);
        }
        // Runs that never started (cancelled before, their group's lock not had) are told whole.
        for (index, run) in &outcome.runs {
            if !self.told.remove(&run.id) {
                let name = &self.set.workflows[*index].name;
                let _ = writeln!(
                    text,
                    "  {} {}  {}",
                    run_mark(run.status, &self.palette).0,
                    self.palette.bold(name),
                    run_mark(run.status, &self.palette).1
                );
                if let Some(error) = &run.error {
                    let _ = writeln!(text, "      {}", self.palette.red(error));
                }
            }
        }
        event_tail(&mut text, outcome, self.set, &self.options, &self.palette);
        self.emit(sequence, &text);
        self.advance(sequence);
    }
}

impl<W: std::io::Write + Send> Consumer for LiveReporter<'_, W> {
    fn observe(&mut self, event: &RunEvent<'_>) {
        match *event {
            RunEvent::Matched {
                sequence,
                event,
                selections,
            } => {
                if selections
                    .iter()
                    .any(|(_, selection)| *selection == Selection::Matched)
                {
                    self.open_event(sequence, event);
                }
            }
            RunEvent::RunStarted {
                sequence,
                workflow,
                run_id,
            } => self.run_started(sequence, workflow, run_id),
            RunEvent::StepStarted(_) => {}
            RunEvent::StepOutput { step, stream, line } => self.output_line(&step, stream, line),
            RunEvent::StepFinished { step, record } => self.step_finished(&step, record),
            RunEvent::RunFinished {
                sequence,
                workflow,
                record,
            } => self.run_finished(sequence, workflow, record),
            RunEvent::EventFinished { sequence, outcome } => self.event_finished(sequence, outcome),
            RunEvent::BadInput {
                sequence,
                place,
                message,
            } => {
                tracing::error!(place, "{message}");
                self.advance(sequence);
            }
        }
    }

    fn finish(&mut self, totals: &Totals) -> Exit {
        let line = totals.line(false);
        super::progress::suspend(|| {
            let _ = writeln!(self.out, "{line}");
            let _ = self.out.flush();
        });
        Exit::Success
    }
}

fn run_mark(status: RunStatus, palette: &Palette) -> (String, String) {
    match status {
        RunStatus::Success => (palette.green("✓"), palette.green("success")),
        RunStatus::Failure => (palette.red("✗"), palette.red("failure")),
        RunStatus::Cancelled => (palette.yellow("⊘"), palette.yellow("cancelled")),
        RunStatus::Planned => (palette.cyan("○"), palette.cyan("planned")),
    }
}

/// The id `vane show` takes: its first group, unique in any store of a sane size.
fn short_run_id(id: &str) -> &str {
    id.split('-').next().unwrap_or(id)
}
