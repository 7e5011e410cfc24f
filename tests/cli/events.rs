//! Events in: real GitHub payloads, every input form, NDJSON with a bad line.

use crate::support::{Vane, fixture, workflow_entry};
use serde_json::Value;

const CATCH_ALL: &str = "version: 1\nname: all\non: { \"**\": {} }\nsteps:\n  - run: 'true'\n";

/// Plans one raw GitHub payload and returns the `--json` object.
fn plan_github(kind: &str, file: &str) -> Value {
    let run = Vane::new()
        .workflow("all.yaml", CATCH_ALL)
        .args(&[
            "plan", "--json", "--type", kind, "--source", "github", "--event",
        ])
        .args(&[fixture(&format!("github/{file}")).display().to_string()])
        .run()
        .expect_code(0);
    run.json_lines().remove(0)
}

#[test]
fn real_github_payloads_get_the_derived_fields() {
    // (type, fixture, action, ref, branch, tag, sha, files)
    type Case = (
        &'static str,
        &'static str,
        Value,
        Value,
        Value,
        Value,
        Value,
        Value,
    );
    let cases: Vec<Case> = vec![
        (
            "push",
            "push.branch.json",
            Value::Null,
            "refs/heads/master".into(),
            "master".into(),
            Value::Null,
            "6113728f27ae82c7b1a177c8d03f9e96e0adf246".into(),
            serde_json::json!(["README.md"]),
        ),
        (
            "push",
            "push.tag.json",
            Value::Null,
            "refs/tags/simple-tag".into(),
            Value::Null,
            "simple-tag".into(),
            "6113728f27ae82c7b1a177c8d03f9e96e0adf246".into(),
            serde_json::json!([]),
        ),
        (
            "push",
            "push.tag-deleted.json",
            Value::Null,
            "refs/tags/simple-tag".into(),
            Value::Null,
            "simple-tag".into(),
            "0000000000000000000000000000000000000000".into(),
            serde_json::json!([]),
        ),
        (
            "pull_request",
            "pull_request.opened.json",
            "opened".into(),
            Value::Null,
            "master".into(),
            Value::Null,
            "ec26c3e57ca3a959ca5aad62de7213c562f8c821".into(),
            Value::Null,
        ),
        (
            "pull_request",
            "pull_request.closed.json",
            "closed".into(),
            Value::Null,
            "master".into(),
            Value::Null,
            "ec26c3e57ca3a959ca5aad62de7213c562f8c821".into(),
            Value::Null,
        ),
        (
            "workflow_run",
            "workflow_run.completed.json",
            "completed".into(),
            Value::Null,
            "master".into(),
            Value::Null,
            "3484a3fb816e0859fd6e1cea078d76385ff50625".into(),
            Value::Null,
        ),
        (
            "issues",
            "issues.labeled.json",
            "labeled".into(),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
        ),
        (
            "release",
            "release.published.json",
            "published".into(),
            Value::Null,
            Value::Null,
            "0.0.1".into(),
            Value::Null,
            Value::Null,
        ),
        (
            "ping",
            "ping.json",
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
        ),
        (
            "delete",
            "delete.tag.json",
            Value::Null,
            "refs/tags/simple-tag".into(),
            Value::Null,
            "simple-tag".into(),
            Value::Null,
            Value::Null,
        ),
    ];
    for (kind, file, action, git_ref, branch, tag, sha, files) in cases {
        let output = plan_github(kind, file);
        let event = &output["event"];
        let payload: Value =
            serde_json::from_slice(&std::fs::read(fixture(&format!("github/{file}"))).unwrap())
                .unwrap();
        assert_eq!(event["type"], kind, "{file}");
        assert_eq!(event["source"], "github", "{file}");
        assert_eq!(event["repo"], payload["repository"]["full_name"], "{file}");
        assert_eq!(event["actor"], payload["sender"]["login"], "{file}");
        assert_eq!(event["action"], action, "{file}: action");
        assert_eq!(event["ref"], git_ref, "{file}: ref");
        assert_eq!(event["branch"], branch, "{file}: branch");
        assert_eq!(event["tag"], tag, "{file}: tag");
        assert_eq!(event["sha"], sha, "{file}: sha");
        assert_eq!(event["files"], files, "{file}: files");
        // The payload is carried exactly as received.
        assert_eq!(event["data"], payload, "{file}: data");
        assert_eq!(
            event["id"].as_str().map(str::len),
            Some(64),
            "{file}: content id"
        );
        assert_eq!(workflow_entry(&output, "all")["matched"], true, "{file}");
    }
}

#[test]
fn the_same_payload_twice_has_the_same_id() {
    let first = plan_github("push", "push.branch.json");
    let second = plan_github("push", "push.branch.json");
    assert_eq!(first["event"]["id"], second["event"]["id"]);
    assert_ne!(
        first["event"]["id"],
        plan_github("push", "push.tag.json")["event"]["id"]
    );
}

#[test]
fn envelopes_and_cloudevents_keep_their_ids() {
    let run = Vane::new()
        .workflow("all.yaml", CATCH_ALL)
        .args(&["plan", "--json", "--event"])
        .args(&[fixture("events/deploy.cloudevent.json")
            .display()
            .to_string()])
        .run()
        .expect_code(0);
    let event = &run.json_lines()[0]["event"];
    assert_eq!(event["id"], "b8f1c1c2-5b7a-4a53-9c1e-2f3d6c1a0e11");
    assert_eq!(event["source"], "/ci/pipelines/482");
    assert_eq!(event["type"], "com.acme.deploy.requested");
    assert_eq!(event["subject"], "payments");
    assert_eq!(event["data"]["version"], "2.14.1");

    let run = Vane::new()
        .workflow("all.yaml", CATCH_ALL)
        .args(&["plan", "--json"])
        .stdin(r#"{"id": "d-1", "type": "deploy", "source": "ops", "data": {"x": 1}}"#)
        .run()
        .expect_code(0);
    let event = &run.json_lines()[0]["event"];
    assert_eq!(
        (event["id"].as_str(), event["source"].as_str()),
        (Some("d-1"), Some("ops"))
    );
}

#[test]
fn ndjson_with_a_malformed_line_runs_the_others_and_exits_2() {
    let input = concat!(
        r#"{"type": "a", "data": {"n": 1}}"#,
        "\n",
        r#"{"type": "b", "data": {"n": 2}}"#,
        "\n",
        r#"{"type": "c", "data": {"n": "#,
        "\n",
        r#"{"type": "d", "data": {"n": 4}}"#,
        "\n",
        "\n",
        r#"{"type": "e", "data": {"n": 5}}"#,
        "\n",
    );
    let run = Vane::new()
        .workflow("all.yaml", CATCH_ALL)
        .args(&["run", "--json"])
        .stdin(input)
        .run()
        .expect_code(2);
    let types: Vec<String> = run
        .json_lines()
        .iter()
        .map(|line| line["event"]["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, vec!["a", "b", "d", "e"]);
    for line in run.json_lines() {
        assert_eq!(workflow_entry(&line, "all")["run"]["status"], "success");
    }
    assert!(
        run.stderr().contains("stdin:3: error: "),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr()
            .contains("4 events, 4 runs, 4 succeeded, 0 failed, 1 bad input"),
        "{}",
        run.stderr()
    );
}

#[test]
fn broken_input_is_a_clear_error_never_a_panic() {
    let deep = format!(
        "{{\"type\": \"x\", \"data\": {}{}}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"{\"type\": \"x\", \"data\": \"\xff\"}\n".to_vec(),
            "invalid UTF-8",
        ),
        (
            b"{\"type\": \"x\",\n \"data\": {\"a\": [1,\n".to_vec(),
            "truncated",
        ),
        (deep.into_bytes(), "deeper than 128"),
        (b"[1, 2]\n".to_vec(), "must be a JSON object"),
        (b"{\"zen\": \"raw payload\"}\n".to_vec(), "--type"),
    ];
    for (input, needle) in cases {
        let run = Vane::new()
            .workflow("all.yaml", CATCH_ALL)
            .args(&["run"])
            .stdin(input)
            .run()
            .expect_code(2);
        assert!(run.stderr().contains(needle), "{needle}: {}", run.stderr());
        assert!(!run.stderr().contains("panicked"), "{}", run.stderr());
    }
}

#[test]
fn oversized_events_are_refused() {
    let big = format!(
        "{{\"type\": \"x\", \"data\": \"{}\"}}\n{{\"type\": \"y\", \"data\": 1}}\n",
        "a".repeat(2000)
    );
    let run = Vane::new()
        .workflow("all.yaml", CATCH_ALL)
        .args(&["run", "--json", "--max-event-size", "1000"])
        .stdin(big)
        .run()
        .expect_code(2);
    assert!(
        run.stderr()
            .contains("stdin:1: error: event is over the limit of 1000 bytes"),
        "{}",
        run.stderr()
    );
    assert_eq!(run.json_lines().len(), 1);
}

#[test]
fn github_actions_environment_supplies_the_event() {
    let vane = Vane::new().workflow("all.yaml", CATCH_ALL);
    let run = vane
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env(
            "GITHUB_EVENT_PATH",
            &fixture("github/pull_request.opened.json")
                .display()
                .to_string(),
        )
        .env("GITHUB_REF", "refs/pull/2/merge")
        .args(&["plan", "--json"])
        .run()
        .expect_code(0);
    let event = &run.json_lines()[0]["event"];
    assert_eq!(event["type"], "pull_request");
    assert_eq!(event["source"], "github");
    assert_eq!(event["branch"], "master");
    assert_eq!(event["ref"], "refs/pull/2/merge");
}

#[test]
fn no_event_at_all_is_a_usage_error() {
    let run = Vane::new()
        .workflow("all.yaml", CATCH_ALL)
        .args(&["run"])
        .run()
        .expect_code(2);
    assert!(run.stderr().contains("no event"), "{}", run.stderr());
}

#[test]
fn raw_payload_mistakes_say_what_to_pass() {
    let github = r#"{"ref": "refs/heads/main", "after": "abc", "repository": {"full_name": "acme/api"}, "sender": {"login": "octocat"}}"#;
    let run = Vane::new()
        .args(&["plan"])
        .stdin(github)
        .run()
        .expect_code(2);
    assert!(
        run.stderr().contains(
            "this looks like a GitHub webhook body: pass its event name (the `X-GitHub-Event` header) \
             as `--type <X-GitHub-Event> --source github`, e.g. `--type push --source github`"
        ),
        "{}",
        run.stderr()
    );
    let run = Vane::new()
        .args(&["plan"])
        .stdin(r#"{"type": "push"}"#)
        .run()
        .expect_code(2);
    assert!(
        run.stderr()
            .contains("an envelope needs `data` (the payload)"),
        "{}",
        run.stderr()
    );
    // `--type` without `--source` on a GitHub body: read as GitHub's, so `branches` matches.
    let run = Vane::new()
        .workflow(
            "w.yaml",
            "version: 1\nname: w\non:\n  push:\n    branches: [main]\nsteps:\n  - run: 'true'\n",
        )
        .args(&["plan", "--type", "push", "--json"])
        .stdin(github)
        .run()
        .expect_code(0);
    let output = run.json_lines().remove(0);
    assert_eq!(output["event"]["source"], "github", "{output}");
    assert_eq!(output["workflows"][0]["matched"], true, "{output}");
}
