//! Human output for the run record: `history`'s table and `show`'s view of one run. (`--json`
//! prints the state types themselves.)

use crate::state::{RunSummary, StoredRun, StoredStep};
use serde_json::Value as Json;
use std::fmt::Write;

/// The longest output value `show` prints on its line; the log holds the whole output.
const OUTPUT_WIDTH: usize = 200;

/// What `vane history` prints: one JSON object per run (`json`), else the table, or
/// `no recorded runs`.
pub fn history_text(runs: &[RunSummary], json: bool) -> String {
    if json {
        let lines = runs
            .iter()
            .map(|run| serde_json::to_string(run).unwrap_or_default());
        return lines.map(|line| line + "\n").collect();
    }
    if runs.is_empty() {
        return "no recorded runs\n".to_string();
    }
    history_table(runs)
}

/// One row per run, columns aligned; newest first as given.
pub fn history_table(runs: &[RunSummary]) -> String {
    let header = [
        "RUN", "WORKFLOW", "STATUS", "EVENT", "REVISION", "STARTED", "DURATION",
    ];
    let rows: Vec<[String; 7]> = runs
        .iter()
        .map(|run| {
            [
                short_id(&run.id).to_string(),
                run.workflow.clone(),
                run.status.clone(),
                // A replay runs the same event again: say so where the event is named.
                match &run.replay_of {
                    Some(original) => {
                        format!("{} (replay of {})", run.event_type, short_id(original))
                    }
                    None => run.event_type.clone(),
                },
                run.revision
                    .as_deref()
                    .map_or_else(|| "-".to_string(), short_revision),
                second_precision(&run.started),
                duration(run.duration_ms),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
}

/// One run: its facts, then each step with its rendered action, outputs and log tail.
pub fn run_view(run: &StoredRun) -> String {
    let summary = &run.summary;
    let mut out = String::new();
    let _ = writeln!(out, "run {}", summary.id);
    let mut fact = |name: &str, value: &str| {
        let _ = writeln!(out, "  {name:<9} {value}");
    };
    fact(
        "workflow",
        &format!("{} ({})", summary.workflow, summary.file),
    );
    match &summary.error {
        Some(error) => fact("status", &format!("{}: {error}", summary.status)),
        None => fact("status", &summary.status),
    }
    fact("revision", summary.revision.as_deref().unwrap_or("-"));
    if let Some(digest) = &summary.digest {
        fact("digest", digest);
    }
    let source = run.event["source"].as_str().unwrap_or("?");
    fact(
        "event",
        &format!(
            "{} from {source} (id {})",
            summary.event_type, summary.event_id
        ),
    );
    fact("started", &summary.started);
    fact(
        "finished",
        &format!("{} ({})", summary.finished, duration(summary.duration_ms)),
    );
    if let Some(original) = &summary.replay_of {
        fact("replay of", original);
    }
    if run.steps.is_empty() {
        out.push_str("\nno steps ran\n");
    }
    for step in &run.steps {
        out.push('\n');
        step_view(&mut out, step);
    }
    out
}

fn step_view(out: &mut String, step: &StoredStep) {
    let name = match &step.job {
        Some(job) => format!("{job}.{}", step.id),
        None => step.id.clone(),
    };
    let mut facts = vec![step.kind.clone(), step.status.clone()];
    if step.status != "skipped" {
        facts.push(duration(step.duration_ms));
        if step.attempts > 1 {
            facts.push(format!("{} attempts", step.attempts));
        }
        if let Some(code) = step.exit_code {
            facts.push(format!("exit {code}"));
        }
    }
    let _ = writeln!(out, "step {name}  {}", facts.join(", "));
    if let Some(display) = &step.name {
        let _ = writeln!(out, "  name: {display}");
    }
    if let Some(error) = &step.error {
        let _ = writeln!(out, "  error: {error}");
    }
    if let Json::Object(rendered) = &step.rendered {
        for (key, value) in rendered {
            labelled(out, key, &text_of(value));
        }
    }
    if let Some(Json::Object(outputs)) = &step.outputs
        && !outputs.is_empty()
    {
        out.push_str("  outputs:\n");
        for (name, value) in outputs {
            let _ = writeln!(out, "    {name}: {}", one_line(&text_of(value)));
        }
    }
    if let Some(log) = step.log.as_deref().filter(|log| !log.is_empty()) {
        out.push_str("  log:\n");
        for line in log.lines() {
            let _ = writeln!(out, "    | {line}");
        }
    }
}

/// `key: value` on one line, or the value indented below the key when it has several lines.
fn labelled(out: &mut String, key: &str, value: &str) {
    if value.contains('\n') {
        let _ = writeln!(out, "  {key}:");
        for line in value.lines() {
            let _ = writeln!(out, "    {line}");
        }
    } else {
        let _ = writeln!(out, "  {key}: {value}");
    }
}

/// A string as itself, anything else as compact JSON.
fn text_of(value: &Json) -> String {
    match value {
        Json::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn one_line(text: &str) -> String {
    let flat = text.replace('\n', "⏎");
    match flat.char_indices().nth(OUTPUT_WIDTH) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

fn short_id(id: &str) -> &str {
    &id[..id.len().min(8)]
}

/// The commit's first 7 characters, keeping a `+dirty` mark.
fn short_revision(revision: &str) -> String {
    match revision.split_once('+') {
        Some((commit, mark)) => format!("{}+{mark}", &commit[..commit.len().min(7)]),
        None => revision[..revision.len().min(7)].to_string(),
    }
}

/// `2026-01-02T03:04:05.678Z` → `2026-01-02 03:04:05Z`: a table cell, not a record.
fn second_precision(time: &str) -> String {
    match time.split_once('.') {
        Some((seconds, _)) => format!("{}Z", seconds.replacen('T', " ", 1)),
        None => time.replacen('T', " ", 1),
    }
}

fn duration(milliseconds: i64) -> String {
    crate::duration::format_duration(std::time::Duration::from_millis(milliseconds.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str, workflow: &str) -> RunSummary {
        RunSummary {
            id: id.to_string(),
            workflow: workflow.to_string(),
            status: "success".to_string(),
            revision: Some("0123456789abcdef+dirty".to_string()),
            event_id: "e1".to_string(),
            event_type: "push".to_string(),
            started: "2026-01-02T03:04:05.678Z".to_string(),
            finished: "2026-01-02T03:04:06.178Z".to_string(),
            duration_ms: 500,
            file: "workflows/a.yaml".to_string(),
            error: None,
            dry_run: false,
            replay_of: None,
            digest: None,
        }
    }

    #[test]
    fn a_replay_is_marked_in_the_history_table() {
        let mut replay = summary("9c1e3f2a-bbbb", "deploy-api");
        replay.replay_of = Some("3f2a9c1e-aaaa".to_string());
        let table = history_table(&[replay, summary("3f2a9c1e-aaaa", "deploy-api")]);
        assert_eq!(
            table,
            "RUN       WORKFLOW    STATUS   EVENT                      REVISION       STARTED               DURATION\n\
             9c1e3f2a  deploy-api  success  push (replay of 3f2a9c1e)  0123456+dirty  2026-01-02 03:04:05Z  500ms\n\
             3f2a9c1e  deploy-api  success  push                       0123456+dirty  2026-01-02 03:04:05Z  500ms\n"
        );
    }

    #[test]
    fn the_history_table_aligns_its_columns() {
        let table = history_table(&[summary("3f2a9c1e-aaaa", "deploy-api"), summary("77", "x")]);
        assert_eq!(
            table,
            "RUN       WORKFLOW    STATUS   EVENT  REVISION       STARTED               DURATION\n\
             3f2a9c1e  deploy-api  success  push   0123456+dirty  2026-01-02 03:04:05Z  500ms\n\
             77        x           success  push   0123456+dirty  2026-01-02 03:04:05Z  500ms\n"
        );
    }

    #[test]
    fn long_outputs_are_cut_to_one_line() {
        assert_eq!(one_line("a\nb"), "a⏎b");
        assert_eq!(one_line(&"x".repeat(300)).chars().count(), OUTPUT_WIDTH + 1);
    }
}
