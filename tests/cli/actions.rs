//! GitHub Actions: the composite action's own scripts, run as the runner would run them, and
//! Actions mode's workflow commands, outputs and summary.

use crate::support::{Vane, fixture, root};
use std::collections::HashMap;
use std::path::Path;

const SECRET: &str = "s3cr3t-Actions-Value";

const ECHO_WORKFLOW: &str = r#"version: 1
name: ci-failed
on:
  workflow_run:
    types: [completed]
if: event.data.workflow_run.conclusion == 'failure'
secrets: [DEPLOY_TOKEN]
steps:
  - id: echo
    run: echo "token {{ secrets.DEPLOY_TOKEN }} for {{ event.repo }}"
"#;

/// Replaces `${{ inputs.x }}`, `${{ runner.tool_cache }}`, `${{ github.action_path }}` as the runner does.
fn substitute(text: &str, values: &HashMap<&str, String>) -> String {
    let pattern = regex::Regex::new(r"\$\{\{\s*([A-Za-z_.]+)\s*\}\}").unwrap();
    pattern
        .replace_all(text, |captures: &regex::Captures| {
            values
                .get(&captures[1])
                .cloned()
                .unwrap_or_else(|| panic!("no value for `{}` in action.yml", &captures[1]))
        })
        .into_owned()
}

/// Runs every `run:` step of action.yml in order, with bash, like the Actions runner.
fn run_action(
    project: &Path,
    inputs: &[(&str, &str)],
    env: &[(&str, String)],
) -> (String, String, i32) {
    let action: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("action.yml")).unwrap()).unwrap();
    let mut values: HashMap<&str, String> = HashMap::new();
    for (name, spec) in action["inputs"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        let key: &'static str = Box::leak(format!("inputs.{name}").into_boxed_str());
        values.insert(
            key,
            spec["default"].as_str().unwrap_or_default().to_string(),
        );
    }
    for (name, value) in inputs {
        let key: &'static str = Box::leak(format!("inputs.{name}").into_boxed_str());
        values.insert(key, value.to_string());
    }
    values.insert(
        "runner.tool_cache",
        project.join("tool-cache").display().to_string(),
    );
    values.insert("github.action_path", root().display().to_string());
    values.insert("github.action_ref", "main".to_string());
    values.insert("github.action_repository", "acme/vane".to_string());
    let vane_dir = assert_cmd::cargo::cargo_bin("vane")
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        vane_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (mut stdout, mut stderr, mut code) = (String::new(), String::new(), 0);
    for step in action["runs"]["steps"].as_sequence().unwrap() {
        let Some(script) = step["run"].as_str() else {
            continue;
        };
        assert_eq!(
            step["shell"].as_str(),
            Some("bash"),
            "composite run steps name their shell"
        );
        let mut command = std::process::Command::new("bash");
        command
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .current_dir(project);
        command.env_clear().env("PATH", &path).env("HOME", project);
        command.env("RUNNER_OS", "Linux").env("RUNNER_ARCH", "X64");
        for (key, value) in env {
            command.env(key, value);
        }
        if let Some(step_env) = step["env"].as_mapping() {
            for (key, value) in step_env {
                command.env(
                    key.as_str().unwrap(),
                    substitute(value.as_str().unwrap(), &values),
                );
            }
        }
        // The runner gives each step its own `$GITHUB_OUTPUT` and exposes what a step with an
        // `id` writes there as `steps.<id>.outputs`; the last step's file is the action's.
        let step_id = step["id"].as_str().filter(|id| *id != "vane");
        let step_output = project.join(format!("output-of-{}", step_id.unwrap_or("vane")));
        if step_id.is_some() {
            command.env("GITHUB_OUTPUT", &step_output);
        }
        let output = command.stdin(std::process::Stdio::null()).output().unwrap();
        if let Some(id) = step_id {
            for line in std::fs::read_to_string(&step_output)
                .unwrap_or_default()
                .lines()
            {
                let (name, value) = line.split_once('=').expect("name=value");
                let key = Box::leak(format!("steps.{id}.outputs.{name}").into_boxed_str());
                values.insert(key, value.to_string());
            }
        }
        stdout.push_str(&String::from_utf8_lossy(&output.stdout));
        stderr.push_str(&String::from_utf8_lossy(&output.stderr));
        code = output.status.code().unwrap_or(-1);
        if code != 0 {
            break;
        }
    }
    (stdout, stderr, code)
}

#[test]
fn the_composite_action_runs_the_actions_event_and_writes_outputs_and_summary() {
    let project = Vane::new()
        .workflow("ci-failed.yaml", ECHO_WORKFLOW)
        .workflow(
            "other.yaml",
            "version: 1\nname: on-push\non: { push: {} }\nsteps:\n  - run: 'true'\n",
        );
    let dir = project.path().to_path_buf();
    let output_file = dir.join("github-output");
    let summary_file = dir.join("step-summary");
    let env = vec![
        ("GITHUB_ACTIONS", "true".to_string()),
        ("GITHUB_EVENT_NAME", "workflow_run".to_string()),
        (
            "GITHUB_EVENT_PATH",
            fixture("github/workflow_run.completed-failure.json")
                .display()
                .to_string(),
        ),
        ("GITHUB_OUTPUT", output_file.display().to_string()),
        ("GITHUB_STEP_SUMMARY", summary_file.display().to_string()),
        ("GITHUB_PATH", dir.join("github-path").display().to_string()),
        ("DEPLOY_TOKEN", SECRET.to_string()),
    ];
    let (stdout, stderr, code) = run_action(&dir, &[("command", "run")], &env);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");

    // The secret is announced before anything else, and printed nowhere else.
    let first = stdout.lines().next().unwrap_or_default();
    assert_eq!(first, format!("::add-mask::{SECRET}"), "{stdout}");
    let rest: String = stdout.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert!(
        !rest.contains(SECRET) && !stderr.contains(SECRET),
        "{stdout}{stderr}"
    );
    // The group opens when the run starts; its status follows the group, visible when folded.
    assert!(stdout.contains("::group::ci-failed\n"), "{stdout}");
    assert!(
        stdout.contains("::endgroup::\n  ✓ ci-failed  success"),
        "{stdout}"
    );

    let outputs = std::fs::read_to_string(&output_file)
        .unwrap_or_else(|error| panic!("{error}: {stdout}\n{stderr}"));
    let parsed = parse_github_output(&outputs);
    assert_eq!(parsed["matched"], "ci-failed");
    assert_eq!(parsed["status"], "success");
    let runs: serde_json::Value = serde_json::from_str(&parsed["runs"]).unwrap();
    assert_eq!(runs[0]["workflow"], "ci-failed");
    assert_eq!(runs[0]["status"], "success");
    assert_eq!(runs[0]["event_type"], "workflow_run");

    let summary = std::fs::read_to_string(&summary_file).unwrap();
    assert!(
        summary.contains("| **ci-failed** | | | ✅ success |"),
        "{summary}"
    );
    assert!(
        summary.contains("| | echo | run | ✅ success |"),
        "{summary}"
    );
    assert!(
        summary.contains("- `on-push`: on: `workflow_run` is not one of [push]"),
        "{summary}"
    );
    assert!(!summary.contains(SECRET) && !outputs.contains(SECRET));
}

/// `name<<DELIM … DELIM` blocks, as the runner reads `$GITHUB_OUTPUT`.
fn parse_github_output(text: &str) -> HashMap<String, String> {
    let mut values = HashMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let (name, delimiter) = line.split_once("<<").expect("heredoc form");
        let mut value = Vec::new();
        for body in lines.by_ref() {
            if body == delimiter {
                break;
            }
            value.push(body);
        }
        values.insert(name.to_string(), value.join("\n"));
    }
    values
}

#[test]
fn workflow_problems_are_annotated_with_file_line_and_column() {
    let run = Vane::new()
        .workflow(
            "x.yaml",
            "version: 1\nname: x\non:\n  push:\n    branch: [main]\nsteps:\n  - run: 'true'\n",
        )
        .env("GITHUB_ACTIONS", "true")
        .args(&["validate"])
        .run()
        .expect_code(2);
    assert!(
        run.stdout().contains("::error file=workflows/x.yaml,line=5,col=5::on.push: unknown key `branch` (did you mean `branches`?)"),
        "{}",
        run.stdout()
    );
    let run = Vane::new()
        .workflow(
            "x.yaml",
            "version: 1\nname: x\non: { push: {} }\nsteps:\n  - run: echo {{ oops\n",
        )
        .args(&["--github", "run"])
        .stdin(r#"{"type": "push", "data": {}}"#)
        .run()
        .expect_code(2);
    assert!(
        run.stdout()
            .contains("::error file=workflows/x.yaml,line=5,col=10::steps[0].run: "),
        "{}",
        run.stdout()
    );
}

#[test]
fn an_unknown_command_input_fails_the_action() {
    let project = Vane::new();
    let dir = project.path().to_path_buf();
    let (stdout, _, code) = run_action(
        &dir,
        &[("command", "deploy")],
        &[("GITHUB_ACTIONS", "true".to_string())],
    );
    assert_eq!(code, 2);
    assert!(
        stdout.contains("::error::unknown command `deploy`"),
        "{stdout}"
    );
}
