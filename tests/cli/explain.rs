//! `--explain` text pinned for fixed inputs: written on the code before matching was optimised
//! (issue 15), so any change to what a workflow's verdict or reason says fails here. The inputs
//! (`tests/fixtures/explain/`) cover every kind of verdict: index ruled out, trigger filters,
//! `if` conditions that are conjunctions of `==` (and ones that are not: `or`, `now`, numbers
//! against strings), conditions that break, and events without the fields a condition reads.
//! One change since, on purpose: a condition that breaks on a path the event lacks names that
//! path (``if: `event.data.size` is undefined``) instead of minijinja's bare "undefined value".

use crate::support::{Vane, fixture};

fn project() -> Vane {
    let mut vane = Vane::new();
    let folder = fixture("explain/workflows");
    let mut names: Vec<_> = std::fs::read_dir(&folder)
        .expect("the fixture workflows")
        .map(|entry| entry.expect("an entry").file_name())
        .collect();
    names.sort();
    for name in names {
        let name = name.to_string_lossy().into_owned();
        let text = std::fs::read_to_string(folder.join(&name)).expect("a workflow");
        vane = vane.workflow(&name, &text);
    }
    let events = std::fs::read(fixture("explain/events.ndjson")).expect("the events");
    vane.stdin(events)
}

fn expected(name: &str) -> String {
    std::fs::read_to_string(fixture(&format!("explain/{name}"))).expect("the expected text")
}

#[test]
fn plan_explain_text_is_unchanged() {
    let run = project()
        .args(&["plan", "--explain", "--state", ":memory:"])
        .run()
        .expect_code(2);
    assert_eq!(run.stdout(), expected("plan.txt"));
}

#[test]
fn dry_run_explain_text_is_unchanged() {
    let run = project()
        .args(&["run", "--dry-run", "--explain", "--state", ":memory:"])
        .run()
        .expect_code(2);
    assert_eq!(run.stdout(), expected("dry-run.txt"));
}

#[test]
fn json_verdicts_and_reasons_are_unchanged() {
    let run = project()
        .args(&["plan", "--json", "--state", ":memory:"])
        .run()
        .expect_code(2);
    let verdicts: String = run
        .json_lines()
        .iter()
        .map(|line| {
            let workflows: Vec<serde_json::Value> = line["workflows"]
                .as_array()
                .expect("workflows")
                .iter()
                .map(|entry| serde_json::json!([entry["name"], entry["matched"], entry["reason"]]))
                .collect();
            format!(
                "{} {}\n",
                line["event"]["id"].as_str().expect("an id"),
                serde_json::to_string(&workflows).expect("json")
            )
        })
        .collect();
    assert_eq!(verdicts, expected("plan-json.txt"));
    assert_eq!(run.stderr().trim(), "5 events, 9 runs, 9 planned, 5 failed");
}

#[test]
fn quiet_counts_are_unchanged() {
    let run = project()
        .args(&["run", "--dry-run", "--quiet", "--state", ":memory:"])
        .run()
        .expect_code(2);
    assert_eq!(run.stdout(), "5 events, 9 runs, 9 planned, 5 failed\n");
}

#[test]
fn a_path_the_event_lacks_is_named_with_the_key_it_was_probably_meant_to_be() {
    let run = Vane::new()
        .workflow(
            "a.yaml",
            "version: 1\nname: a\non: { push: {} }\nif: event.data.valeu > 3\nsteps:\n  - run: echo hi\n",
        )
        .workflow(
            "b.yaml",
            "version: 1\nname: b\non: { push: {} }\nif: event.data.valeu\nsteps:\n  - run: echo hi\n",
        )
        .args(&["plan", "--explain", "--state", ":memory:"])
        .stdin(r#"{"type": "push", "data": {"value": 5}}"#)
        .run()
        .expect_code(2);
    assert_eq!(
        run.stdout(),
        "● push  (cli, id 36060134d807)\n\
         \x20 ✗ a  workflows/a.yaml:4:5: if: `event.data.valeu` is undefined (did you mean `value`?)\n\
         \x20 · b  if: `event.data.valeu` is undefined (did you mean `value`?)\n\
         1 event, 0 runs, 0 planned, 1 failed\n"
    );
}
