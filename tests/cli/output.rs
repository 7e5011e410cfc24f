//! Output shapes: human, `--json`, `--quiet`, colour rules, exit statuses.

use crate::support::{Vane, workflow_entry};

const TWO: &str = "version: 1\nname: deploy\non:\n  push:\n    branches: [main]\nsteps:\n  - id: hello\n    run: echo hello {{ event.branch }}\n";
const DOCS: &str =
    "version: 1\nname: docs\non:\n  push:\n    paths: [\"docs/**\"]\nsteps:\n  - run: 'true'\n";

fn push(branch: &str, files: &[&str]) -> String {
    serde_json::json!({"type": "push", "ref": format!("refs/heads/{branch}"), "repo": "acme/api", "files": files, "data": {}})
        .to_string()
}

#[test]
fn json_has_the_spec_shape() {
    let run = Vane::new()
        .workflow("deploy.yaml", TWO)
        .workflow("docs.yaml", DOCS)
        .args(&["run", "--json"])
        .stdin(push("main", &["src/a.rs"]))
        .run()
        .expect_code(0);
    let output = run.json_lines().remove(0);
    let deploy = workflow_entry(&output, "deploy");
    assert_eq!(deploy["matched"], true);
    assert_eq!(deploy["reason"], serde_json::Value::Null);
    assert_eq!(deploy["file"], "workflows/deploy.yaml");
    let step = &deploy["run"]["steps"][0];
    assert_eq!(step["id"], "hello");
    assert_eq!(step["kind"], "run");
    assert_eq!(step["status"], "success");
    assert_eq!(step["rendered"]["run"], "echo hello 'main'");
    assert_eq!(step["outputs"]["stdout"], "hello main");
    assert_eq!(step["outputs"]["exit_code"], 0);
    assert_eq!(step["attempts"], 1);
    let docs = workflow_entry(&output, "docs");
    assert_eq!(docs["matched"], false);
    assert_eq!(docs["reason"], "paths: no changed file matches [docs/**]");
    assert!(docs.get("run").is_none());
    assert_eq!(run.stderr().trim(), "1 event, 1 run, 1 succeeded, 0 failed");
}

#[test]
fn plan_json_is_planned_with_no_outputs() {
    let run = Vane::new()
        .workflow("deploy.yaml", TWO)
        .args(&["plan", "--json"])
        .stdin(push("main", &[]))
        .run()
        .expect_code(0);
    let output = run.json_lines().remove(0);
    let deploy = workflow_entry(&output, "deploy");
    assert_eq!(deploy["run"]["status"], "planned");
    assert_eq!(deploy["run"]["steps"][0]["status"], "planned");
    assert!(deploy["run"]["steps"][0].get("outputs").is_none());
}

#[test]
fn human_output_has_a_line_per_event_and_a_summary() {
    let run = Vane::new()
        .workflow("deploy.yaml", TWO)
        .workflow("docs.yaml", DOCS)
        .args(&["run", "--explain"])
        .stdin(format!(
            "{}\n{}\n",
            push("main", &["a"]),
            push("dev", &["docs/x.md"])
        ))
        .run()
        .expect_code(0);
    let stdout = run.stdout();
    assert!(!stdout.contains('\x1b'), "no colour when not a terminal");
    assert!(stdout.contains("● push acme/api main"), "{stdout}");
    assert!(stdout.contains("✓ deploy  success"), "{stdout}");
    assert!(stdout.contains("✓ hello  run"), "{stdout}");
    assert!(
        stdout.contains("· deploy  branches: `dev` matches none of [main]"),
        "{stdout}"
    );
    assert!(
        stdout
            .trim_end()
            .ends_with("2 events, 2 runs, 2 succeeded, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn quiet_prints_only_the_summary() {
    let run = Vane::new()
        .workflow("deploy.yaml", TWO)
        .args(&["run", "--quiet"])
        .stdin(format!("{}\n{}\n", push("main", &[]), push("main", &[])))
        .run()
        .expect_code(0);
    assert_eq!(run.stdout(), "2 events, 2 runs, 2 succeeded, 0 failed\n");
}

#[test]
fn a_failed_run_exits_1() {
    let run = Vane::new()
        .workflow("fail.yaml", "version: 1\nname: fail\non: { deploy: {} }\nsteps:\n  - run: echo broken >&2; exit 4\n")
        .args(&["run"])
        .stdin(r#"{"type": "deploy", "data": {}}"#)
        .run()
        .expect_code(1);
    assert!(
        run.stdout().contains("exit code 4: broken"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout()
            .contains("1 event, 1 run, 0 succeeded, 1 failed"),
        "{}",
        run.stdout()
    );
}

#[test]
fn nothing_matching_is_success() {
    let run = Vane::new()
        .workflow("deploy.yaml", TWO)
        .args(&["run"])
        .stdin(r#"{"type": "other", "data": {}}"#)
        .run()
        .expect_code(0);
    assert!(
        run.stdout()
            .contains("no workflow matched (1 checked; --explain says why)"),
        "{}",
        run.stdout()
    );
}

#[test]
fn a_terminal_run_is_interrupted_with_130() {
    // SIGTERM while a step sleeps: the step's process group is stopped and vane exits 130.
    let vane = Vane::new().workflow(
        "slow.yaml",
        "version: 1\nname: slow\non: { deploy: {} }\nsteps:\n  - run: sleep 30\n",
    );
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("vane"));
    command
        .current_dir(vane.path())
        .args(["run"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(br#"{"type": "deploy", "data": {}}"#)
            .unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(700));
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let started = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(started.elapsed() < std::time::Duration::from_secs(7));
}

#[test]
fn color_is_chosen_by_the_flag_then_clicolor_force_and_no_color() {
    let colored = |args: &[&str], env: &[(&str, &str)]| {
        let mut vane = Vane::new().workflow("deploy.yaml", TWO);
        for (key, value) in env {
            vane = vane.env(key, value);
        }
        vane.args(args)
            .stdin(push("main", &["a"]))
            .run()
            .expect_code(0)
            .stdout()
            .contains('\x1b')
    };
    assert!(!colored(&["run"], &[]), "a pipe is plain by default");
    assert!(colored(&["run", "--color", "always"], &[]));
    assert!(colored(&["run"], &[("CLICOLOR_FORCE", "1")]));
    assert!(!colored(&["run"], &[("CLICOLOR_FORCE", "0")]));
    assert!(!colored(
        &["run", "--color", "never"],
        &[("CLICOLOR_FORCE", "1")]
    ));
    assert!(colored(&["plan", "--color=always"], &[("NO_COLOR", "1")]));
    let run = Vane::new()
        .args(&["run", "--color", "sometimes"])
        .run()
        .expect_code(2);
    assert!(
        run.stderr()
            .contains("possible values: auto, always, never"),
        "{}",
        run.stderr()
    );
}
