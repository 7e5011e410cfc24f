//! Runs you can watch: what steps write, under each step as it is written; a failure with its run
//! id; GitHub Actions' groups, annotations and summary from the same stream; `plan`, `test` and
//! `replay` on the same pipeline as `run`.

use crate::support::{Vane, fixture};
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

const SECRET: &str = "hunter2-Watch";

const FAILING: &str = r#"version: 1
name: deploy
on: { push: {} }
secrets: [TOKEN]
steps:
  - id: prepare
    run: "true"
  - id: apply
    run: |
      echo "one {{ secrets.TOKEN }}"
      echo two
      echo three
      sleep 0.1
      echo "err1" >&2
      echo "err2 {{ secrets.TOKEN }}" >&2
      exit 3
  - id: tell
    run: echo never
"#;

const EVENT: &str = r#"{"type": "push", "data": {}}"#;

/// Run ids and durations differ from run to run; the rest is pinned.
fn normalized(text: &str) -> String {
    let ids = regex::Regex::new(r"run [0-9a-f-]{36}: vane show [0-9a-f]{8}").unwrap();
    let durations = regex::Regex::new(r"\b\d+(\.\d+)? ?(ms|s)\b").unwrap();
    let text = ids.replace_all(text, "run <id>: vane show <short>");
    // The `runs` output's JSON too: two runs of the same steps do not take the same time.
    let json_durations = regex::Regex::new(r#""duration_ms":\d+"#).unwrap();
    let text = json_durations.replace_all(&text, r#""duration_ms":<t>"#);
    durations.replace_all(&text, "<t>").into_owned()
}

#[test]
fn a_failed_steps_lines_are_shown_under_it_masked_then_the_run_id() {
    let run = Vane::new()
        .workflow("deploy.yaml", FAILING)
        .env("TOKEN", SECRET)
        .args(&["run", "--state", ":memory:"])
        .stdin(EVENT)
        .run()
        .expect_code(1);
    assert_eq!(
        normalized(&run.stdout()),
        "\
● push  (cli, id 44136fa355b3)
  ▸ deploy
      ✓ prepare  run     <t>
      ▸ apply
      │ one ***
      │ two
      │ three
      │ err1
      │ err2 ***
      ✗ apply    run     <t>  exit code 3: err2 ***
      – tell     run     skipped
  ✗ deploy  failure  <t>
      run <id>: vane show <short>
1 event, 1 run, 0 succeeded, 1 failed
"
    );
    assert!(!run.stdout().contains(SECRET) && !run.stderr().contains(SECRET));
}

#[test]
fn quiet_hides_the_lines_and_keeps_the_summary() {
    let run = Vane::new()
        .workflow("deploy.yaml", FAILING)
        .env("TOKEN", SECRET)
        .args(&["run", "-q", "--state", ":memory:"])
        .stdin(EVENT)
        .run()
        .expect_code(1);
    assert_eq!(run.stdout(), "1 event, 1 run, 0 succeeded, 1 failed\n");
}

#[test]
fn output_failed_holds_a_steps_lines_and_shows_them_only_when_it_fails() {
    let workflow = FAILING.replace("    run: \"true\"", "    run: echo quiet-success");
    let run = Vane::new()
        .workflow("deploy.yaml", &workflow)
        .env("TOKEN", SECRET)
        .args(&["run", "--output", "failed", "--state", ":memory:"])
        .stdin(EVENT)
        .run()
        .expect_code(1);
    let stdout = normalized(&run.stdout());
    assert!(!stdout.contains("quiet-success"), "{stdout}");
    assert!(
        stdout.contains(
            "      ✗ apply    run     <t>  exit code 3: err2 ***\n      │ one ***\n      │ two\n      │ three\n      │ err1\n      │ err2 ***\n"
        ),
        "{stdout}"
    );
}

#[test]
fn output_none_still_shows_the_last_twenty_lines_of_a_failed_steps_stderr() {
    let workflow = "version: 1\nname: noisy\non: { push: {} }\nsteps:\n  - id: count\n    run: |\n      echo to-stdout\n      for i in $(seq 1 30); do echo \"line $i\" >&2; done\n      exit 1\n";
    let run = Vane::new()
        .workflow("noisy.yaml", workflow)
        .args(&["run", "--output", "none", "--state", ":memory:"])
        .stdin(EVENT)
        .run()
        .expect_code(1);
    let stdout = run.stdout();
    let shown: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("      │ "))
        .collect();
    let expected: Vec<String> = (11..=30).map(|i| format!("line {i}")).collect();
    assert_eq!(shown, expected, "{stdout}");
}

#[test]
fn a_line_is_readable_before_the_step_that_wrote_it_ends() {
    let project = Vane::new().workflow(
        "slow.yaml",
        "version: 1\nname: slow\non: { push: {} }\nsteps:\n  - id: wait\n    run: |\n      echo first-line\n      sleep 2\n      echo second-line\n",
    );
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("vane"))
        .current_dir(project.path())
        .args(["run", "--state", ":memory:", "--event", "event.json"])
        .env_remove("GITHUB_ACTIONS")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("vane starts");
    std::fs::write(project.path().join("event.json"), EVENT).unwrap();
    let started = Instant::now();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = sender.send((line, Instant::now()));
        }
    });
    let first = loop {
        let (line, at) = receiver
            .recv_timeout(Duration::from_secs(10))
            .expect("a line within 10 s");
        if line.contains("first-line") {
            break at;
        }
    };
    let mut second = None;
    while let Ok((line, at)) = receiver.recv_timeout(Duration::from_secs(10)) {
        if line.contains("second-line") {
            second = Some(at);
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success());
    let second = second.expect("the second line came too");
    // The first line arrived while the step still slept: a second and more before the second.
    assert!(
        second.duration_since(first) >= Duration::from_millis(1500),
        "first after {:?}, second after {:?}",
        first - started,
        second - started
    );
}

const ACTIONS_WORKFLOW: &str = r#"version: 1
name: ci-failed
on:
  workflow_run:
    types: [completed]
secrets: [DEPLOY_TOKEN]
steps:
  - id: echo
    run: echo "token {{ secrets.DEPLOY_TOKEN }} for {{ event.repo }}"
  - id: apply
    run: |
      echo applying
      echo "kubectl: cannot apply with {{ secrets.DEPLOY_TOKEN }}" >&2
      exit 4
"#;

/// `vane ARGS` as a GitHub Actions step on the real workflow_run payload: stdout, the summary.
fn in_actions(project: &Vane, args: &[&str]) -> (i32, String, String, String) {
    let summary = project.path().join(format!("summary-{}", args[0]));
    let output = project.path().join(format!("output-{}", args[0]));
    let result = project
        .command()
        .args(args)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", "workflow_run")
        .env(
            "GITHUB_EVENT_PATH",
            fixture("github/workflow_run.completed-failure.json"),
        )
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &output)
        .env("DEPLOY_TOKEN", SECRET)
        .output()
        .expect("vane runs");
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
    (
        result.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&result.stdout).into_owned()
            + &String::from_utf8_lossy(&result.stderr),
        read(&summary),
        read(&output),
    )
}

#[test]
fn actions_mode_streams_into_the_group_and_annotates_the_failed_step() {
    let project = Vane::new().workflow("ci.yaml", ACTIONS_WORKFLOW);
    let (code, log, summary, _) = in_actions(&project, &["run"]);
    assert_eq!(code, 1, "{log}");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[0], format!("::add-mask::{SECRET}"), "{log}");
    let position = |needle: &str| {
        lines
            .iter()
            .position(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in\n{log}"))
    };
    let group = position("::group::ci-failed");
    let first_output = position("│ token *** for");
    let end = position("::endgroup::");
    assert!(group < first_output && first_output < end, "{log}");
    assert!(position("│ applying") < end && position("│ kubectl: cannot apply") < end);
    assert_eq!(
        lines[position("::error title=")],
        "::error title=ci-failed/apply,file=workflows/ci.yaml,line=10,col=5::exit code 4: kubectl: cannot apply with ***"
    );
    assert!(
        position("::error title=") > end,
        "annotations follow the group: {log}"
    );
    assert!(
        summary.contains(
            "| | apply | run | ❌ failure: exit code 4: kubectl: cannot apply with *** |"
        ),
        "{summary}"
    );
    // The secret is in `::add-mask::` and nowhere else.
    assert_eq!(log.matches(SECRET).count(), 1, "{log}");
    assert!(!summary.contains(SECRET));
}

#[test]
fn replay_in_actions_mode_writes_what_run_wrote() {
    let project = Vane::new().workflow("ci.yaml", ACTIONS_WORKFLOW);
    let (_, run_log, run_summary, run_output) = in_actions(&project, &["run"]);
    let history = project
        .command()
        .args(["history", "--json"])
        .output()
        .unwrap();
    let first: serde_json::Value =
        serde_json::from_slice(history.stdout.split(|&byte| byte == b'\n').next().unwrap())
            .unwrap();
    let run_id = first["id"].as_str().unwrap().to_string();
    let (code, replay_log, replay_summary, replay_output) =
        in_actions(&project, &["replay", &run_id]);
    assert_eq!(code, 1, "{replay_log}");
    let ids = regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f-]{27}|\b[0-9a-f]{8}\b").unwrap();
    let millis = regex::Regex::new(r#""duration_ms": ?\d+"#).unwrap();
    let same = |text: &str| {
        let text = ids.replace_all(text, "<id>");
        normalized(&millis.replace_all(&text, "\"duration_ms\":<t>"))
    };
    assert_eq!(same(&replay_log), same(&run_log));
    assert_eq!(same(&replay_summary), same(&run_summary));
    let delimiters = regex::Regex::new(r"ghadelimiter_[0-9a-f]+").unwrap();
    assert_eq!(
        same(&delimiters.replace_all(&replay_output, "<d>")),
        same(&delimiters.replace_all(&run_output, "<d>"))
    );
    assert!(replay_log.starts_with(&format!("::add-mask::{SECRET}\n")));
}

const BROKEN_GROUP: &str = r#"version: 1
name: grouped
on: { push: {} }
concurrency:
  group: "deploy-{{ event.data.env | nosuchfilter }}"
steps:
  - run: echo hi
"#;

#[test]
fn plan_and_test_fail_on_a_concurrency_group_that_cannot_render_as_run_does() {
    let project = || {
        Vane::new()
            .workflow("grouped.yaml", BROKEN_GROUP)
            .workflow(
                "grouped.test.yaml",
                "- name: it deploys\n  event:\n    inline: {type: push, data: {env: prod}}\n  expect:\n    match: [grouped]\n",
            )
    };
    let place = "workflows/grouped.yaml:5:10: concurrency.group:";
    for command in [&["plan"][..], &["run", "--state", ":memory:"]] {
        let run = project()
            .args(command)
            .stdin(r#"{"type": "push", "data": {"env": "prod"}}"#)
            .run()
            .expect_code(2);
        assert!(
            run.stdout().contains(place),
            "{command:?}: {}",
            run.stdout()
        );
    }
    let run = project().args(&["test"]).run().expect_code(2);
    assert!(run.stderr().contains(place), "{}", run.stderr());
}
