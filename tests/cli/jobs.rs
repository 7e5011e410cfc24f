//! `jobs:` with `needs`: independent jobs overlap, dependents see their outputs, failures skip.

use crate::support::{Vane, workflow_entry};
use std::time::{Duration, Instant};

const DIAMOND: &str = r#"version: 1
name: diamond
on: { deploy: {} }
jobs:
  a:
    steps:
      - id: start
        run: echo a
  b:
    needs: a
    steps:
      - id: work
        run: sleep 1; echo "b-{{ event.data.fail_b }}"; [ "{{ event.data.fail_b }}" = "no" ]
  c:
    needs: [a]
    steps:
      - id: work
        run: sleep 1; echo c-done
  d:
    needs: [b, c]
    steps:
      - id: join
        run: echo "{{ jobs.b.outputs.stdout }}+{{ jobs.c.outputs.stdout }}"
  cleanup:
    needs: [d]
    if: failure()
    steps:
      - id: report
        run: echo "something failed"
"#;

fn run_diamond(fail_b: &str) -> (serde_json::Value, Duration, i32) {
    let vane = Vane::new().workflow("diamond.yaml", DIAMOND);
    let started = Instant::now();
    let run = vane
        .args(&["run", "--json"])
        .stdin(format!(
            r#"{{"type": "deploy", "data": {{"fail_b": "{fail_b}"}}}}"#
        ))
        .run();
    let elapsed = started.elapsed();
    let code = run.code();
    let output = run.json_lines().remove(0);
    (
        workflow_entry(&output, "diamond")["run"].clone(),
        elapsed,
        code,
    )
}

fn step<'a>(run: &'a serde_json::Value, job: &str, id: &str) -> &'a serde_json::Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["job"] == job && step["id"] == id)
        .unwrap_or_else(|| panic!("no step {job}.{id} in {run}"))
}

#[test]
fn independent_jobs_overlap_and_the_join_sees_both_outputs() {
    let (run, elapsed, code) = run_diamond("no");
    assert_eq!(code, 0, "{run}");
    // b and c each sleep 1 s; run one after the other they would take 2 s.
    assert!(
        elapsed < Duration::from_millis(1900),
        "took {elapsed:?}: b and c did not overlap"
    );
    assert_eq!(run["status"], "success");
    assert_eq!(step(&run, "d", "join")["outputs"]["stdout"], "b-no+c-done");
    assert_eq!(step(&run, "cleanup", "report")["status"], "skipped");
    // Records keep the jobs' order.
    let jobs: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["job"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, vec!["a", "b", "c", "d", "cleanup"]);
}

#[test]
fn a_failed_need_skips_its_dependents_and_runs_failure_jobs() {
    let (run, _, code) = run_diamond("yes");
    assert_eq!(code, 1);
    assert_eq!(run["status"], "failure");
    assert_eq!(step(&run, "b", "work")["status"], "failure");
    assert_eq!(step(&run, "c", "work")["status"], "success");
    assert_eq!(step(&run, "d", "join")["status"], "skipped");
    assert_eq!(step(&run, "cleanup", "report")["status"], "success");
    assert_eq!(
        step(&run, "cleanup", "report")["outputs"]["stdout"],
        "something failed"
    );
}

#[test]
fn needs_cycles_and_unknown_jobs_are_load_errors() {
    let run = Vane::new()
        .workflow(
            "cycle.yaml",
            "version: 1\nname: cycle\non: { x: {} }\njobs:\n  a:\n    needs: b\n    steps: [{run: 'true'}]\n  b:\n    needs: [a]\n    steps: [{run: 'true'}]\n  c:\n    needs: [nope]\n    steps: [{run: 'true'}]\n",
        )
        .args(&["validate"])
        .run()
        .expect_code(2);
    let stdout = run.stdout();
    assert!(stdout.contains("workflows/cycle.yaml:12:12: error: job `c` needs `nope`, which is not a job of this workflow"), "{stdout}");
    assert!(
        stdout.contains("error: jobs depend on each other in a cycle: "),
        "{stdout}"
    );
}
