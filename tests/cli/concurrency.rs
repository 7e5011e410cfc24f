//! Concurrency groups (SPEC §4.4): one running and one pending run per group, a newer pending run
//! replacing the older, `cancel-in-progress` stopping the running one and its processes.

use crate::support::{Vane, workflow_entry};
use std::time::{Duration, Instant};

fn group_workflow(cancel_in_progress: bool, marker: &str) -> String {
    format!(
        r#"version: 1
name: deploy
on: {{ deploy: {{}} }}
concurrency:
  group: "deploy-{{{{ event.data.env }}}}"
  cancel-in-progress: {cancel_in_progress}
steps:
  - id: work
    run: sleep {{{{ event.data.sleep }}}}{marker}; echo "done {{{{ event.data.n }}}}"
"#
    )
}

fn event(n: u32, sleep: &str) -> String {
    format!(r#"{{"type": "deploy", "data": {{"n": {n}, "env": "prod", "sleep": "{sleep}"}}}}"#)
}

fn process_running(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .map(|cmdline| String::from_utf8_lossy(&cmdline).contains(marker))
            .unwrap_or(false)
    })
}

#[test]
fn cancel_in_progress_stops_the_earlier_run_and_its_processes() {
    let marker = format!("{}", 7000 + std::process::id() % 1000);
    // `sleep 30.<marker>` is a unique command line to look for afterwards.
    let workflow = group_workflow(true, &format!(".{marker}"));
    let started = Instant::now();
    let run = Vane::new()
        .workflow("deploy.yaml", &workflow)
        .args(&["run", "--json"])
        .stdin(format!("{}\n{}\n", event(1, "30"), event(2, "0")))
        .run();
    let elapsed = started.elapsed();
    let lines = run.json_lines();
    assert_eq!(lines.len(), 2, "{}", run.stdout());
    let first = &workflow_entry(&lines[0], "deploy")["run"];
    let second = &workflow_entry(&lines[1], "deploy")["run"];
    assert_eq!(first["status"], "cancelled", "{first}");
    assert_eq!(first["steps"][0]["status"], "cancelled", "{first}");
    assert_eq!(second["status"], "success", "{second}");
    assert_eq!(second["steps"][0]["outputs"]["stdout"], "done 2");
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert!(
        !process_running(&format!("sleep 30.{marker}")),
        "the cancelled run's sleep is still running"
    );
    // A cancelled run is not a failure of the stream.
    assert_eq!(run.code(), 0, "{}", run.stderr());
}

#[test]
fn a_newer_pending_run_replaces_the_older_one() {
    let workflow = group_workflow(false, "");
    let run = Vane::new()
        .workflow("deploy.yaml", &workflow)
        .args(&["run", "--json", "--parallel", "4"])
        .stdin(format!(
            "{}\n{}\n{}\n",
            event(1, "1"),
            event(2, "0"),
            event(3, "0")
        ))
        .run()
        .expect_code(0);
    let lines = run.json_lines();
    let statuses: Vec<String> = lines
        .iter()
        .map(|line| {
            workflow_entry(line, "deploy")["run"]["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        statuses,
        vec!["success", "cancelled", "success"],
        "{}",
        run.stdout()
    );
    let replaced = &workflow_entry(&lines[1], "deploy")["run"];
    assert!(
        replaced["error"]
            .as_str()
            .unwrap()
            .contains("a newer run of concurrency group `deploy-prod` replaced it")
    );
    assert_eq!(
        workflow_entry(&lines[2], "deploy")["run"]["steps"][0]["outputs"]["stdout"],
        "done 3"
    );
}

#[test]
fn runs_without_a_group_overlap_up_to_parallel() {
    let workflow = "version: 1\nname: slow\non: { tick: {} }\nsteps:\n  - run: sleep 1\n";
    let events = "{\"type\": \"tick\", \"data\": 1}\n".repeat(4);
    let started = Instant::now();
    Vane::new()
        .workflow("slow.yaml", workflow)
        .args(&["run", "--quiet", "--parallel", "4"])
        .stdin(events)
        .run()
        .expect_code(0);
    assert!(
        started.elapsed() < Duration::from_millis(3000),
        "4 runs of 1 s with --parallel 4 took {:?}",
        started.elapsed()
    );
}

/// `vane history --json` of a project folder, one object per run.
fn history(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("vane"))
        .current_dir(dir)
        .args(["history", "--json", "--limit", "100"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn spawn_run(dir: &std::path::Path, input: String) -> std::process::Child {
    use std::io::Write;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("vane"))
        .current_dir(dir)
        .args(["run", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child
}

#[test]
fn two_processes_never_run_one_group_at_once() {
    let vane = Vane::new().workflow("deploy.yaml", &group_workflow(false, ""));
    let dir = vane.path().to_path_buf();
    // Create the store first, so both processes open an existing one.
    Vane::command(&vane)
        .args(["run", "--quiet"])
        .write_stdin(r#"{"type": "other", "data": {}}"#)
        .assert()
        .success();
    let first = spawn_run(&dir, event(1, "1"));
    let second = spawn_run(&dir, event(2, "1"));
    assert!(first.wait_with_output().unwrap().status.success());
    assert!(second.wait_with_output().unwrap().status.success());
    let mut runs: Vec<(String, String)> = history(&dir)
        .iter()
        .filter(|run| run["workflow"] == "deploy")
        .map(|run| {
            (
                run["started"].as_str().unwrap().to_string(),
                run["finished"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    runs.sort();
    assert_eq!(runs.len(), 2, "{runs:?}");
    // RFC 3339 UTC timestamps with milliseconds sort as text.
    assert!(runs[0].1 <= runs[1].0, "the runs overlapped: {runs:?}");
}

#[test]
fn a_killed_holder_does_not_block_its_group_and_its_run_ends_interrupted() {
    let marker = format!(".{}", 5000 + std::process::id() % 1000);
    let vane = Vane::new().workflow("deploy.yaml", &group_workflow(false, &marker));
    let dir = vane.path().to_path_buf();
    let mut killed = spawn_run(&dir, event(1, "30"));
    // Wait until the first run is recorded as running (it holds the group's lock by then).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !history(&dir).iter().any(|run| run["status"] == "running") {
        assert!(Instant::now() < deadline, "the first run never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    killed.kill().unwrap(); // SIGKILL: no chance to release anything
    killed.wait().unwrap();
    let started = Instant::now();
    let run = Vane::command(&vane)
        .args(["run", "--json"])
        .write_stdin(event(2, "0"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited {:?} for a dead holder",
        started.elapsed()
    );
    let statuses: Vec<String> = history(&dir)
        .iter()
        .map(|run| run["status"].as_str().unwrap().to_string())
        .collect();
    assert!(
        statuses.contains(&"interrupted".to_string()),
        "{statuses:?}"
    );
    assert!(statuses.contains(&"success".to_string()), "{statuses:?}");
    assert!(!statuses.contains(&"running".to_string()), "{statuses:?}");
    // The killed run's `sleep 30` was in its own process group and outlives vane; stop it.
    let _ = std::process::Command::new("pkill")
        .args(["-f", &format!("sleep 30{marker}")])
        .status();
}

#[test]
fn a_held_group_times_out_with_a_clear_message() {
    let vane = Vane::new().workflow("deploy.yaml", &group_workflow(false, ""));
    let dir = vane.path().to_path_buf();
    let holder = spawn_run(&dir, event(1, "3"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !history(&dir).iter().any(|run| run["status"] == "running") {
        assert!(Instant::now() < deadline, "the first run never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let run = Vane::command(&vane)
        .args(["run", "--json", "--lock-timeout", "500ms"])
        .write_stdin(event(2, "0"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("timed out after 500ms waiting for concurrency group `deploy-prod`"),
        "{stdout}"
    );
    assert!(holder.wait_with_output().unwrap().status.success());
}
