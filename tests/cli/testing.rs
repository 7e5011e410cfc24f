//! `vane test`: workflow test files run as dry runs, reported like `cargo test`.

use crate::support::{Vane, fixture, root};

const DEPLOY: &str = "\
version: 1
name: deploy
on:
  push:
    branches: [main]
secrets: [HOOK]
env:
  REGION: eu
steps:
  - id: apply
    run: kubectl apply -f {{ event.repo }} --region {{ env.REGION }}
  - id: tell
    http:
      url: \"{{ secrets.HOOK }}\"
      json: { text: \"{{ event.repo }} deployed\" }
";

const DOCS: &str = "\
version: 1
name: docs
on:
  push:
    paths: [\"docs/**\"]
steps:
  - run: echo docs
";

fn push_to(branch: &str) -> String {
    format!(
        "{{\"type\": \"push\", \"source\": \"github\", \"data\": {{\"ref\": \"refs/heads/{branch}\", \"after\": \"abc\", \"repository\": {{\"full_name\": \"acme/api\"}}, \"commits\": [{{\"added\": [\"src/a.rs\"], \"modified\": [], \"removed\": []}}]}}}}"
    )
}

fn project() -> Vane {
    Vane::new()
        .workflow("deploy.yaml", DEPLOY)
        .workflow("docs.yaml", DOCS)
        .file("events/main.json", &push_to("main"))
        .file("events/dev.json", &push_to("dev"))
}

#[test]
fn passing_cases_are_ok_and_the_summary_closes() {
    let run = project()
        .workflow(
            "deploy.test.yaml",
            "\
- name: main deploys
  event: { file: ../events/main.json }
  expect:
    match: [deploy]
    no-match: [docs]
    steps:
      deploy.apply.run: { equals: \"kubectl apply -f 'acme/api' --region 'eu'\" }
      deploy.tell.http.url: { equals: \"***\" }
      deploy.tell.http.json.text: { contains: deployed, matches: \"^acme/\" }
- name: secrets and env come from the case
  event: { file: ../events/main.json }
  vars: { HOOK: \"https://hooks.example.com/x\", REGION: us }
  expect:
    steps:
      deploy.tell.http.url: { equals: \"https://hooks.example.com/x\" }
      deploy.apply.run: { contains: \"--region 'us'\" }
",
        )
        .args(&["test"])
        .run()
        .expect_code(0);
    assert_eq!(
        run.stdout(),
        "test workflows/deploy.test.yaml :: main deploys ... ok\n\
         test workflows/deploy.test.yaml :: secrets and env come from the case ... ok\n\
         \n\
         2 passed, 0 failed\n"
    );
}

#[test]
fn secrets_render_masked_even_when_the_environment_has_them() {
    project()
        .env("HOOK", "https://real.example.com/secret")
        .workflow(
            "deploy.test.yaml",
            "\
- name: hermetic
  event: { file: ../events/main.json }
  expect:
    steps:
      deploy.tell.http.url: { equals: \"***\" }
",
        )
        .args(&["test"])
        .run()
        .expect_code(0);
}

#[test]
fn a_failing_case_says_why_and_exits_1() {
    let run = project()
        .workflow(
            "deploy.test.yaml",
            "\
- name: dev deploys
  event: { file: ../events/dev.json }
  expect:
    match: [deploy]
- name: main renders something else
  event: { file: ../events/main.json }
  expect:
    match: [docs]
    no-match: [deploy]
    steps:
      deploy.apply.run: { equals: \"kubectl apply -f other\" }
- name: this one passes
  event: { file: ../events/main.json }
  expect: { match: [deploy] }
",
        )
        .args(&["test"])
        .run()
        .expect_code(1);
    let stdout = run.stdout();
    assert!(
        stdout.contains("test workflows/deploy.test.yaml :: dev deploys ... FAILED\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("test workflows/deploy.test.yaml :: this one passes ... ok\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("---- workflows/deploy.test.yaml :: dev deploys ----\nmatch: deploy: `deploy` did not match: branches: `dev` "),
        "{stdout}"
    );
    assert!(
        stdout.contains("match: docs: `docs` did not match: paths: "),
        "{stdout}"
    );
    assert!(
        stdout.contains("no-match: deploy: `deploy` matched the event `push acme/api main@abc`"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "deploy.apply.run equals: the rendered `run` differs\n\
             --- expected\n\
             +++ actual\n\
             @@ -1 +1 @@\n\
             -kubectl apply -f other\n\
             +kubectl apply -f 'acme/api' --region 'eu'\n"
        ),
        "{stdout}"
    );
    assert!(stdout.ends_with("\n1 passed, 2 failed\n"), "{stdout}");
}

#[test]
fn json_prints_one_object_per_case() {
    let run = project()
        .workflow(
            "deploy.test.yaml",
            "\
- name: ok
  event: { file: ../events/main.json }
  expect: { match: [deploy] }
- name: not ok
  event: { file: ../events/main.json }
  expect: { no-match: [deploy] }
",
        )
        .args(&["test", "--json"])
        .run()
        .expect_code(1);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 2, "{}", run.stdout());
    assert_eq!(lines[0]["name"], "ok");
    assert_eq!(lines[0]["status"], "passed");
    assert_eq!(lines[0]["file"], "workflows/deploy.test.yaml");
    assert_eq!(lines[1]["status"], "failed");
    assert_eq!(lines[1]["failures"][0]["expectation"], "no-match: deploy");
}

#[test]
fn a_broken_test_file_is_reported_at_its_line_and_exits_2() {
    let run = project()
        .workflow(
            "deploy.test.yaml",
            "\
- name: typo
  event: { file: ../events/main.json }
  expect:
    mach: [deploy]
- name: missing event file
  event: { file: ../events/nope.json }
- name: unknown workflow and step
  event: { file: ../events/main.json }
  expect:
    match: [deplyo]
    steps:
      deploy.aply.run: { equals: x }
",
        )
        .args(&["test"])
        .run()
        .expect_code(2);
    let stderr = run.stderr();
    for expected in [
        "workflows/deploy.test.yaml:4:5: error: [0].expect: unknown key `mach` (did you mean `match`?)",
        "workflows/deploy.test.yaml:6:18: error: cannot read the event file `workflows/../events/nope.json`",
        "workflows/deploy.test.yaml:10:13: error: no workflow is named `deplyo` (did you mean `deploy`?)",
        "workflows/deploy.test.yaml:12:7: error: `deploy.aply.run`: workflow `deploy` has no step `aply` (did you mean `apply`?)",
    ] {
        assert!(
            stderr.contains(expected),
            "missing `{expected}` in:\n{stderr}"
        );
    }
    assert!(
        run.stdout().ends_with("0 passed, 0 failed\n"),
        "{}",
        run.stdout()
    );
}

#[test]
fn bad_yaml_is_a_broken_file() {
    project()
        .workflow("deploy.test.yaml", "- name: [unclosed\n")
        .args(&["test"])
        .run()
        .expect_code(2);
}

#[test]
fn files_named_on_the_command_line_and_under_tests_run() {
    let case = "- name: main deploys\n  event: { file: ../events/main.json }\n  expect: { match: [deploy] }\n";
    // Default discovery: beside the workflows and under tests/.
    let run = project()
        .file("tests/deploy.test.yaml", case)
        .args(&["test"])
        .run()
        .expect_code(0);
    assert!(
        run.stdout()
            .contains("test tests/deploy.test.yaml :: main deploys ... ok"),
        "{}",
        run.stdout()
    );
    // Named files only.
    let run = project()
        .file("other/x.test.yaml", case)
        .workflow(
            "skipped.test.yaml",
            "- name: skipped\n  event: { file: ../events/main.json }\n",
        )
        .args(&["test", "other/x.test.yaml"])
        .run()
        .expect_code(0);
    assert_eq!(
        run.stdout(),
        "test other/x.test.yaml :: main deploys ... ok\n\n1 passed, 0 failed\n"
    );
}

#[test]
fn inline_events_and_raw_payloads() {
    let payload = fixture("github/push.branch.json");
    let run = Vane::new()
        .workflow("deploy.yaml", &DEPLOY.replace("[main]", "[master]"))
        .file(
            "tests/raw.test.yaml",
            &format!(
                "\
- name: a raw GitHub payload, typed
  event: {{ file: {}, type: push, source: github }}
  expect: {{ match: [deploy] }}
- name: an inline envelope
  event:
    inline: {{ type: push, source: github, data: {{ ref: refs/heads/master, repository: {{ full_name: a/b }} }} }}
  expect:
    steps:
      deploy.apply.run: {{ contains: \"'a/b'\" }}
",
                payload.display()
            ),
        )
        .args(&["test"])
        .run()
        .expect_code(0);
    assert!(
        run.stdout().ends_with("2 passed, 0 failed\n"),
        "{}",
        run.stdout()
    );
}

#[test]
fn the_gallery_tests_pass() {
    let run = Vane::new()
        .args(&[
            "--workflows",
            &root().join("workflows").display().to_string(),
        ])
        .args(&[
            "--templates",
            &root().join("templates").display().to_string(),
        ])
        .args(&["test"])
        .run()
        .expect_code(0);
    let stdout = run.stdout();
    assert!(stdout.ends_with(" passed, 0 failed\n"), "{stdout}");
    // Every example workflow has a test file beside it.
    for entry in std::fs::read_dir(root().join("workflows")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(stem) = name
            .strip_suffix(".yaml")
            .filter(|stem| !stem.ends_with(".test"))
        {
            assert!(
                stdout.contains(&format!("{stem}.test.yaml :: ")),
                "no test for {name}:\n{stdout}"
            );
        }
    }
}
