//! `vane dispatch NAME -i key=value`: one workflow run by hand, its inputs typed (SPEC §2.2, §4.1).

use crate::support::{Vane, workflow_entry};
use serde_json::json;

const DEPLOY: &str = r#"version: 1
name: deploy
on:
  dispatch:
    inputs:
      env:
        description: where to deploy
        type: choice
        options: [staging, production]
        required: true
      replicas:
        type: number
        default: 2
      force:
        type: boolean
      note: {}
steps:
  - id: say
    run: echo "{{ event.data.inputs.env }} x{{ inputs.replicas }} force={{ inputs.force | tojson }} note=[{{ inputs.note }}]"
"#;

/// Listens to pushes only: never dispatched.
const ON_PUSH: &str = "version: 1\nname: on-push\non:\n  push: {}\nsteps:\n  - run: echo push\n";

fn project() -> Vane {
    Vane::new()
        .workflow("deploy.yaml", DEPLOY)
        .workflow("on-push.yaml", ON_PUSH)
        .args(&["--state", ":memory:"])
}

#[test]
fn a_dispatch_runs_the_workflow_with_its_inputs() {
    let run = project()
        .args(&[
            "dispatch",
            "deploy",
            "-i",
            "env=production",
            "--input",
            "replicas=3",
            "--json",
        ])
        .run()
        .expect_code(0);
    let line = run.json_lines().remove(0);
    let event = &line["event"];
    assert_eq!(event["source"], "dispatch");
    assert_eq!(event["type"], "dispatch");
    assert_eq!(event["subject"], "deploy");
    assert_eq!(
        event["data"],
        json!({"inputs": {"env": "production", "replicas": 3, "force": false, "note": ""}})
    );
    let deploy = workflow_entry(&line, "deploy");
    assert_eq!(deploy["run"]["status"], "success");
    assert_eq!(
        deploy["run"]["steps"][0]["outputs"]["stdout"],
        "production x3 force=false note=[]"
    );
    let on_push = workflow_entry(&line, "on-push");
    assert_eq!(on_push["matched"], false);
}

#[test]
fn defaults_fill_the_inputs_not_given() {
    let run = project()
        .args(&[
            "dispatch",
            "deploy",
            "-i",
            "env=staging",
            "-i",
            "force=true",
            "--dry-run",
            "--json",
        ])
        .run()
        .expect_code(0);
    let line = run.json_lines().remove(0);
    assert_eq!(
        line["event"]["data"]["inputs"],
        json!({"env": "staging", "replicas": 2, "force": true, "note": ""})
    );
    let step = &workflow_entry(&line, "deploy")["run"]["steps"][0];
    assert_eq!(step["status"], "planned");
    assert!(
        step["rendered"]["run"]
            .as_str()
            .unwrap()
            .contains("staging x2 force=true"),
        "{step}"
    );
}

#[test]
fn quiet_prints_only_the_summary() {
    let run = project()
        .args(&["dispatch", "deploy", "-i", "env=staging", "--quiet"])
        .run()
        .expect_code(0);
    assert_eq!(run.stdout().trim(), "1 event, 1 run, 1 succeeded, 0 failed");
}

#[test]
fn a_missing_required_input_is_refused() {
    let run = project().args(&["dispatch", "deploy"]).run().expect_code(2);
    assert!(
        run.stderr()
            .contains("error: input `env` is required (where to deploy): give it with `-i env=…`"),
        "{}",
        run.stderr()
    );
    assert_eq!(run.stdout(), "");
}

#[test]
fn values_must_parse_as_their_type() {
    let run = project()
        .args(&[
            "dispatch",
            "deploy",
            "-i",
            "env=qa",
            "-i",
            "replicas=many",
            "-i",
            "force=maybe",
        ])
        .run()
        .expect_code(2);
    let stderr = run.stderr();
    for message in [
        "error: input `env`: `qa` is not one of [staging, production]",
        "error: input `replicas`: `many` is not a number",
        "error: input `force`: `maybe` is not `true` or `false`",
    ] {
        assert!(stderr.contains(message), "{message}\n{stderr}");
    }
    assert!(!stderr.contains("is required"), "{stderr}");
}

#[test]
fn unknown_and_malformed_inputs_are_refused() {
    let run = project()
        .args(&[
            "dispatch",
            "deploy",
            "-i",
            "env=staging",
            "-i",
            "colour=red",
            "-i",
            "force",
        ])
        .run()
        .expect_code(2);
    let stderr = run.stderr();
    assert!(
        stderr.contains(
            "error: workflow `deploy` has no input `colour` (its inputs: env, replicas, force, note)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: `force` is not an input: write `-i name=value`"),
        "{stderr}"
    );
}

#[test]
fn only_workflows_with_a_dispatch_trigger_can_be_dispatched() {
    let run = project()
        .args(&["dispatch", "on-push"])
        .run()
        .expect_code(2);
    assert!(
        run.stderr().contains(
            "error: workflow `on-push` (workflows/on-push.yaml) has no `dispatch` trigger"
        ),
        "{}",
        run.stderr()
    );
    let run = project().args(&["dispatch", "deplyo"]).run().expect_code(2);
    assert!(
        run.stderr()
            .contains("error: no workflow is named `deplyo` (did you mean `deploy`?)"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_failed_run_exits_1() {
    let workflow = "version: 1\nname: fail\non:\n  dispatch: {}\nsteps:\n  - run: exit 3\n";
    Vane::new()
        .workflow("fail.yaml", workflow)
        .args(&["--state", ":memory:", "dispatch", "fail", "--quiet"])
        .run()
        .expect_code(1);
}

#[test]
fn input_definitions_are_checked_when_the_workflow_loads() {
    let workflow = "version: 1\nname: x\non:\n  dispatch:\n    inputs:\n      size:\n        type: number\n        default: large\nsteps:\n  - run: 'true'\n";
    let run = Vane::new()
        .workflow("x.yaml", workflow)
        .args(&["validate"])
        .run()
        .expect_code(2);
    assert!(
        run.stdout().contains(
            "workflows/x.yaml:8:18: error: input `size`: default `large` is not a number"
        ),
        "{}",
        run.stdout()
    );
}

#[test]
fn inputs_reach_the_workflow_if_and_the_concurrency_group() {
    let workflow = "version: 1\nname: gated\non:\n  dispatch:\n    inputs:\n      env: {required: true}\nif: inputs.env != 'frozen'\nconcurrency:\n  group: \"deploy-{{ inputs.env }}\"\nsteps:\n  - run: echo {{ inputs.env }}\n";
    let run = Vane::new()
        .workflow("gated.yaml", workflow)
        .args(&[
            "--state", ":memory:", "dispatch", "gated", "-i", "env=prod", "--json",
        ])
        .run()
        .expect_code(0);
    let line = run.json_lines().remove(0);
    let gated = workflow_entry(&line, "gated");
    assert_eq!(gated["run"]["steps"][0]["outputs"]["stdout"], "prod");
    let run = Vane::new()
        .workflow("gated.yaml", workflow)
        .args(&[
            "--state",
            ":memory:",
            "dispatch",
            "gated",
            "-i",
            "env=frozen",
            "--json",
        ])
        .run()
        .expect_code(0);
    let line = run.json_lines().remove(0);
    assert_eq!(
        workflow_entry(&line, "gated")["reason"],
        "if: `inputs.env != 'frozen'` is false"
    );
}
