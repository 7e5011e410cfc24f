//! `scale` steps end to end (SPEC §2.3): the decision and its reason through `vane run --json`,
//! stabilization remembered across processes in the project's store, `apply` only when the count
//! changes, plans that decide without applying, and clear failures for bad inputs.

use crate::support::{Run, Vane, workflow_entry};
use serde_json::{Value, json};

/// A workflow whose one `scale` step reads everything from the event, plus `extra` step keys
/// (`apply`) under `scale:`.
fn scale_workflow(extra: &str) -> String {
    format!(
        r#"version: 1
name: autoscale
on: {{ metric.cpu: {{}} }}
steps:
  - id: decide
    scale:
      key: "api-{{{{ event.data.cluster }}}}"
      current: "{{{{ event.data.replicas }}}}"
      metric: "{{{{ event.data.cpu }}}}"
      target: "{{{{ event.data.target | default(0.6) }}}}"
      min: "{{{{ event.data.min | default(2) }}}}"
      max: 100
      scale-up: {{ max-step: 20 }}
      scale-down: {{ stabilization: 5m }}
{extra}"#
    )
}

fn reading(data: Value) -> String {
    let mut data = data;
    if data.get("cluster").is_none() {
        data["cluster"] = json!("eu-1");
    }
    json!({"type": "metric.cpu", "source": "cli", "data": data}).to_string()
}

/// `vane ARGS` in the builder's folder, with `stdin`; the folder (and its `.vane/state.db`) stays
/// the same from one call to the next.
fn again(vane: &Vane, args: &[&str], stdin: &str) -> Run {
    let mut command = vane.command();
    command.args(args).write_stdin(stdin.as_bytes().to_vec());
    Run {
        output: command.output().expect("vane runs"),
        dir: vane.path().to_path_buf(),
    }
}

/// The `decide` step of the only event's `autoscale` run.
fn decide(run: &Run) -> Value {
    let lines = run.json_lines();
    assert_eq!(lines.len(), 1, "{}", run.stdout());
    workflow_entry(&lines[0], "autoscale")["run"]["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|step| step["id"] == "decide"))
        .cloned()
        .unwrap_or_else(|| panic!("no decide step: {}", run.stdout()))
}

#[test]
fn a_decision_shows_its_arithmetic_and_feeds_later_steps() {
    let workflow = format!(
        "{}  - id: tell\n    run: echo \"{{{{ steps.decide.outputs.direction }}}} to {{{{ steps.decide.outputs.desired }}}}\"\n",
        scale_workflow("")
    );
    let vane = Vane::new().workflow("autoscale.yaml", &workflow);
    let run = again(
        &vane,
        &["run", "--json"],
        &reading(json!({"replicas": 50, "cpu": 90, "target": 75})),
    )
    .expect_code(0);
    let step = decide(&run);
    assert_eq!(step["kind"], "scale", "{step}");
    assert_eq!(step["status"], "success", "{step}");
    assert_eq!(
        step["outputs"],
        json!({
            "desired": 60,
            "current": 50,
            "direction": "up",
            "reason": "ceil(50 × 90 / 75) = 60; within [2, 100]; scale up 50 → 60",
        })
    );
    // Templates rendered to text; the rendered action keeps what the step read.
    assert_eq!(step["rendered"]["scale"]["current"], "50");
    let lines = run.json_lines();
    let tell = &workflow_entry(&lines[0], "autoscale")["run"]["steps"][1];
    assert_eq!(tell["outputs"]["stdout"], "up to 60", "{tell}");

    // Within the tolerance, nothing changes, and the reason says why.
    let run = again(
        &vane,
        &["run", "--json", "--state", ":memory:"],
        &reading(json!({"replicas": 4, "cpu": 0.62})),
    )
    .expect_code(0);
    let step = decide(&run);
    assert_eq!(step["outputs"]["direction"], "none");
    assert_eq!(
        step["outputs"]["reason"],
        "metric 0.62 is within 10% of target 0.6: stay at 4"
    );
}

#[test]
fn scale_down_is_held_by_the_window_across_separate_processes() {
    let vane = Vane::new().workflow("autoscale.yaml", &scale_workflow(""));
    // First process: 10 replicas at the target recommend 10, remembered in .vane/state.db.
    let first = again(
        &vane,
        &["run", "--json"],
        &reading(json!({"replicas": 10, "cpu": 0.6})),
    )
    .expect_code(0);
    assert_eq!(decide(&first)["outputs"]["desired"], 10);
    assert!(vane.path().join(".vane/state.db").exists());

    // Second process: the load has dropped (raw 2), but 10 is within the 5m window.
    let second = again(
        &vane,
        &["run", "--json"],
        &reading(json!({"replicas": 10, "cpu": 0.12})),
    )
    .expect_code(0);
    let outputs = &decide(&second)["outputs"];
    assert_eq!(outputs["desired"], 10, "{outputs}");
    assert_eq!(outputs["direction"], "none");
    assert_eq!(
        outputs["reason"],
        "ceil(10 × 0.12 / 0.6) = 2, but the highest recommendation in the last 5m is 10: stay at 10 (scale-down stabilization)"
    );

    // The window is per key: another cluster's first low reading scales down at once (to min).
    let other = again(
        &vane,
        &["run", "--json"],
        &reading(json!({"replicas": 10, "cpu": 0.12, "cluster": "us-2"})),
    )
    .expect_code(0);
    assert_eq!(decide(&other)["outputs"]["desired"], 2);

    // And a process with a store of its own remembers nothing of the others.
    let fresh = again(
        &vane,
        &["run", "--json", "--state", ":memory:"],
        &reading(json!({"replicas": 10, "cpu": 0.12})),
    )
    .expect_code(0);
    assert_eq!(decide(&fresh)["outputs"]["direction"], "down");
}

#[test]
fn apply_runs_only_when_the_count_changes() {
    let apply = "      apply: echo \"{{ desired }} {{ direction }} from {{ current }}\" | tee -a applied.txt\n";
    let vane = Vane::new().workflow("autoscale.yaml", &scale_workflow(apply));
    let applied = vane.path().join("applied.txt");

    // Within the tolerance: no change, no apply.
    let run = again(
        &vane,
        &["run", "--json"],
        &reading(json!({"replicas": 4, "cpu": 0.6})),
    )
    .expect_code(0);
    let step = decide(&run);
    assert_eq!(step["outputs"]["direction"], "none");
    assert!(step["outputs"].get("apply_exit_code").is_none(), "{step}");
    assert!(!applied.exists(), "apply ran without a change");

    // Double the load: up to 8, and apply runs with the decision in its context.
    let run = again(
        &vane,
        &["run", "--json"],
        &reading(json!({"replicas": 4, "cpu": 1.2})),
    )
    .expect_code(0);
    let step = decide(&run);
    assert_eq!(step["outputs"]["desired"], 8, "{step}");
    assert_eq!(step["outputs"]["apply_exit_code"], 0, "{step}");
    assert_eq!(step["outputs"]["apply_stdout"], "8 up from 4");
    assert_eq!(
        step["rendered"]["scale"]["apply"], "echo \"8 up from 4\" | tee -a applied.txt",
        "the record shows the script as it ran"
    );
    assert_eq!(
        std::fs::read_to_string(&applied).expect("apply wrote the file"),
        "8 up from 4\n"
    );

    // A plan decides, and shows the decision, but applies nothing.
    let plan = again(
        &vane,
        &["plan", "--json"],
        &reading(json!({"replicas": 8, "cpu": 2.4})),
    )
    .expect_code(0);
    let step = decide(&plan);
    assert_eq!(step["status"], "planned", "{step}");
    assert_eq!(step["outputs"]["desired"], 28, "{step}");
    assert_eq!(
        step["outputs"]["reason"],
        "ceil(8 × 2.4 / 0.6) = 32, limited to +20 by scale-up max-step: scale up 8 → 28"
    );
    assert_eq!(
        std::fs::read_to_string(&applied).unwrap(),
        "8 up from 4\n",
        "a plan ran apply"
    );
    let human = again(
        &vane,
        &["plan"],
        &reading(json!({"replicas": 8, "cpu": 2.4})),
    )
    .expect_code(0)
    .stdout();
    assert!(
        human.contains("→ ceil(8 × 2.4 / 0.6) = 32, limited to +20"),
        "{human}"
    );
}

#[test]
fn a_failing_apply_fails_the_step_with_the_decision_kept() {
    let apply = "      apply: echo \"cannot reach the cluster\" >&2; exit 3\n";
    let run = Vane::new()
        .workflow("autoscale.yaml", &scale_workflow(apply))
        .args(&["run", "--json"])
        .stdin(reading(json!({"replicas": 4, "cpu": 1.2})))
        .run()
        .expect_code(1);
    let step = decide(&run);
    assert_eq!(step["status"], "failure", "{step}");
    assert_eq!(
        step["error"],
        "scale: apply: exit code 3: cannot reach the cluster"
    );
    assert_eq!(step["outputs"]["desired"], 8);
    assert_eq!(step["outputs"]["apply_exit_code"], 3);
}

#[test]
fn bad_inputs_fail_the_step_naming_the_field() {
    let cases = [
        (
            json!({"replicas": 4, "cpu": "n/a"}),
            "scale: `metric` must be a number, found `n/a`",
        ),
        (
            json!({"replicas": 4, "cpu": 0.5, "target": 0}),
            "scale: `target` must be greater than 0, found `0`",
        ),
        (
            json!({"replicas": 4, "cpu": 0.5, "min": 200}),
            "scale: `min` (200) is greater than `max` (100)",
        ),
        (
            json!({"replicas": -3, "cpu": 0.5}),
            "scale: `current` must not be negative, found `-3`",
        ),
    ];
    for (data, message) in cases {
        let run = Vane::new()
            .workflow("autoscale.yaml", &scale_workflow(""))
            .args(&["run", "--json", "--state", ":memory:"])
            .stdin(reading(data.clone()))
            .run()
            .expect_code(1);
        let step = decide(&run);
        assert_eq!(step["status"], "failure", "{data}: {step}");
        assert_eq!(step["error"], message, "{data}");
    }
}

#[test]
fn scale_keys_and_literal_windows_are_checked_at_load() {
    let cases = [
        ("      scale-down: { stabilisation: 5m }\n", "unknown key"),
        (
            "      scale-up: { stabilization: soon }\n",
            "scale-up.stabilization",
        ),
    ];
    for (extra, expected) in cases {
        let workflow = r#"version: 1
name: autoscale
on: { metric.cpu: {} }
steps:
  - id: decide
    scale:
      key: api
      current: 4
      metric: 0.5
      target: 0.6
      max: 10
"#
        .to_string()
            + extra;
        let run = Vane::new()
            .workflow("autoscale.yaml", &workflow)
            .args(&["validate"])
            .run()
            .expect_code(2);
        let stderr = run.stderr() + &run.stdout();
        assert!(stderr.contains(expected), "{extra}: {stderr}");
        assert!(stderr.contains("autoscale.yaml:"), "{extra}: {stderr}");
    }
}

/// Kubernetes' zero-replica answers through the binary: from zero with `min: 0` and an
/// activation (a total, tolerance not applied), and `current: 0` with `min > 0` disabled.
#[test]
fn scale_from_zero_with_activation_and_disabled_at_zero_without_one() {
    let workflow = r#"version: 1
name: autoscale
on: { metric.queue: {} }
steps:
  - id: decide
    scale:
      key: "worker-{{ event.data.case }}"
      current: "{{ event.data.replicas }}"
      metric: "{{ event.data.depth }}"
      total: true
      target: 10
      min: "{{ event.data.min }}"
      max: 20
      activation: "{{ event.data.activation | default(0) }}"
      cooldown: 10m
"#;
    let vane = Vane::new().workflow("autoscale.yaml", workflow);
    let event =
        |data: Value| json!({"type": "metric.queue", "source": "cli", "data": data}).to_string();
    let run = again(
        &vane,
        &["run", "--json"],
        &event(json!({"case": "a", "replicas": 0, "depth": 10.5, "min": 0})),
    )
    .expect_code(0);
    assert_eq!(
        decide(&run)["outputs"],
        json!({
            "desired": 2, "current": 0, "direction": "up",
            "reason": "scale from zero: ceil(10.5 / 10) = 2 (tolerance not applied); within [0, 20]; scale up 0 → 2",
        })
    );
    // Idle right after: the cooldown (10m) holds one replica before 0.
    let run = again(
        &vane,
        &["run", "--json"],
        &event(json!({"case": "a", "replicas": 2, "depth": 0, "min": 0})),
    )
    .expect_code(0);
    assert_eq!(decide(&run)["outputs"]["desired"], 1);
    let workflow_disabled = workflow.replace(
        "      activation: \"{{ event.data.activation | default(0) }}\"\n",
        "",
    );
    let disabled = Vane::new().workflow("autoscale.yaml", &workflow_disabled);
    let run = again(
        &disabled,
        &["run", "--json"],
        &event(json!({"case": "b", "replicas": 0, "depth": 500, "min": 2})),
    )
    .expect_code(0);
    let outputs = &decide(&run)["outputs"];
    assert_eq!(outputs["desired"], 0);
    assert_eq!(outputs["direction"], "none");
}
