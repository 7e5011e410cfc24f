//! The state store and the run record (SPEC §4.5): `run` records, `history` lists, `show` prints,
//! `replay` runs a stored event again; secrets never reach the file; a newer store is refused;
//! concurrent writers lose nothing.

use crate::support::{Run, Vane};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One project folder that several `vane` commands run in, one after another.
struct Project {
    vane: Vane,
}

impl Project {
    fn new(workflows: &[(&str, &str)]) -> Project {
        let mut vane = Vane::new();
        for (name, text) in workflows {
            vane = vane.workflow(name, text);
        }
        Project { vane }
    }

    fn dir(&self) -> &Path {
        self.vane.path()
    }

    fn state_file(&self) -> PathBuf {
        self.dir().join(".vane/state.db")
    }

    fn vane(&self, args: &[&str], stdin: &str) -> Run {
        let mut command = self.vane.command();
        command.args(args).write_stdin(stdin.as_bytes().to_vec());
        Run {
            output: command.output().expect("vane runs"),
            dir: self.dir().to_path_buf(),
        }
    }

    /// `history --json` with extra arguments, parsed.
    fn history(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["history", "--json"];
        all.extend(args);
        self.vane(&all, "").expect_code(0).json_lines()
    }

    fn show(&self, run: &str) -> Value {
        let lines = self
            .vane(&["show", run, "--json"], "")
            .expect_code(0)
            .json_lines();
        assert_eq!(lines.len(), 1, "show prints one object");
        lines.into_iter().next().unwrap_or_default()
    }
}

const DEPLOY: &str = r#"version: 1
name: deploy
on:
  push: {}
steps:
  - id: build
    run: |
      echo "building {{ event.data.sha }}"
      echo "image=registry/app:{{ event.data.sha }}" >> "$VANE_OUTPUT"
  - id: apply
    run: echo "applying {{ steps.build.outputs.image }}"
"#;

fn push(sha: &str) -> String {
    json!({"type": "push", "source": "cli", "data": {"sha": sha}}).to_string()
}

/// The fields of each step that do not depend on when or how fast it ran.
fn rendered_steps(run: &Value) -> Vec<(Value, Value, Value)> {
    run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|step| {
            (
                step["id"].clone(),
                step["kind"].clone(),
                step["rendered"].clone(),
            )
        })
        .collect()
}

#[test]
fn run_history_show_and_replay_round_trip() {
    let project = Project::new(&[("deploy.yaml", DEPLOY)]);
    project.vane(&["run"], &push("abc123")).expect_code(0);

    let history = project.history(&[]);
    assert_eq!(history.len(), 1, "{history:?}");
    let original = &history[0];
    for key in [
        "id",
        "workflow",
        "status",
        "revision",
        "event_id",
        "event_type",
        "started",
        "finished",
        "duration_ms",
    ] {
        assert!(
            original.get(key).is_some(),
            "history lacks `{key}`: {original}"
        );
    }
    assert_eq!(original["workflow"], "deploy");
    assert_eq!(original["status"], "success");
    assert_eq!(original["event_type"], "push");
    for key in ["started", "finished"] {
        let time = original[key].as_str().expect("a time");
        chrono::DateTime::parse_from_rfc3339(time)
            .unwrap_or_else(|error| panic!("`{key}` {time} is not RFC 3339: {error}"));
    }
    let id = original["id"].as_str().expect("an id").to_string();

    // The human table names the run by its short id.
    let table = project.vane(&["history"], "").expect_code(0).stdout();
    assert!(table.starts_with("RUN "), "{table}");
    assert!(
        table.contains(&id[..8]) && table.contains("deploy"),
        "{table}"
    );

    // `show` finds the run by a prefix, with its rendered steps, outputs and log tails.
    let shown = project.show(&id[..8]);
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["event"]["data"], json!({"sha": "abc123"}));
    let steps = shown["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["outputs"]["image"], "registry/app:abc123");
    assert_eq!(steps[0]["log"], "building abc123\n");
    assert_eq!(
        steps[1]["rendered"]["run"],
        r#"echo "applying registry/app:abc123""#
    );
    assert_eq!(steps[1]["exit_code"], 0);
    let human = project.vane(&["show", &id], "").expect_code(0).stdout();
    assert!(
        human.contains("step apply") && human.contains("| applying registry/app:abc123"),
        "{human}"
    );

    // A dry replay plans the same steps and records nothing.
    let planned = project
        .vane(&["replay", &id[..8], "--dry-run", "--json"], "")
        .expect_code(0)
        .json_lines();
    let planned_run = &crate::support::workflow_entry(&planned[0], "deploy")["run"];
    assert_eq!(planned_run["status"], "planned");
    assert_eq!(planned_run["steps"][0]["rendered"], steps[0]["rendered"]);
    assert_eq!(project.history(&[]).len(), 1, "a dry replay is not history");

    // A replay runs the stored event again through the current workflows and is recorded.
    project.vane(&["replay", &id], "").expect_code(0);
    let history = project.history(&[]);
    assert_eq!(history.len(), 2, "{history:?}");
    let replay = &history[0];
    assert_ne!(replay["id"], original["id"]);
    assert_eq!(replay["replay_of"], id.as_str());
    assert_eq!(replay["event_id"], original["event_id"]);
    let table = project.vane(&["history"], "").expect_code(0).stdout();
    assert!(
        table.contains(&format!("(replay of {})", &id[..8])),
        "{table}"
    );
    let replayed = project.show(replay["id"].as_str().expect("an id"));
    assert_eq!(rendered_steps(&replayed), rendered_steps(&shown));
    assert_eq!(replayed["steps"][1]["log"], steps[1]["log"]);
}

#[test]
fn history_filters_by_workflow_status_time_and_count() {
    let failing = "version: 1\nname: checks\non: { push: {} }\nsteps:\n  - run: exit 1\n";
    let project = Project::new(&[("deploy.yaml", DEPLOY), ("checks.yaml", failing)]);
    let events = [push("a1"), push("b2"), push("c3")].join("\n");
    project.vane(&["run"], &events).expect_code(1);

    assert_eq!(project.history(&[]).len(), 6);
    let deploys = project.history(&["--workflow", "deploy"]);
    assert_eq!(deploys.len(), 3);
    assert!(deploys.iter().all(|run| run["workflow"] == "deploy"));
    let failures = project.history(&["--status", "failure"]);
    assert_eq!(failures.len(), 3);
    assert!(failures.iter().all(|run| run["workflow"] == "checks"));
    // Newest first: the last event's runs lead.
    let latest = project.history(&["--limit", "1", "--workflow", "deploy"]);
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0]["event_id"], deploys[0]["event_id"]);
    assert_eq!(project.history(&["--since", "1h"]).len(), 6);
    assert!(
        project
            .history(&["--since", "2999-01-01T00:00:00Z"])
            .is_empty()
    );

    let bad = project.vane(&["history", "--since", "last tuesday"], "");
    let bad = bad.expect_code(2);
    assert!(bad.stderr().contains("`last tuesday`"), "{}", bad.stderr());
    project
        .vane(&["history", "--status", "exploded"], "")
        .expect_code(2);
}

#[test]
fn show_names_missing_and_ambiguous_runs() {
    let project = Project::new(&[("deploy.yaml", DEPLOY)]);
    // Nothing recorded yet, and looking does not create a store.
    let missing = project.vane(&["show", "abc"], "").expect_code(2);
    assert!(missing.stderr().contains("`abc`"), "{}", missing.stderr());
    assert_eq!(project.history(&[]).len(), 0);
    assert!(!project.state_file().exists());

    let events: Vec<String> = (0..40).map(|n| push(&format!("sha{n}"))).collect();
    project.vane(&["run"], &events.join("\n")).expect_code(0);
    // 40 random ids: some share their first character.
    let ids: Vec<String> = project
        .history(&["--limit", "0"])
        .iter()
        .map(|run| run["id"].as_str().expect("an id").to_string())
        .collect();
    let shared = ids
        .iter()
        .find(|id| ids.iter().filter(|other| other[..1] == id[..1]).count() > 1)
        .expect("two ids with the same first character");
    let ambiguous = project.vane(&["show", &shared[..1]], "").expect_code(2);
    assert!(
        ambiguous.stderr().contains("ambiguous"),
        "{}",
        ambiguous.stderr()
    );
    project.vane(&["replay", "no-such-run"], "").expect_code(2);
}

#[test]
fn plans_and_memory_stores_write_no_file() {
    let project = Project::new(&[("deploy.yaml", DEPLOY)]);
    project.vane(&["plan"], &push("a1")).expect_code(0);
    project
        .vane(&["run", "--dry-run"], &push("a1"))
        .expect_code(0);
    project
        .vane(&["run", "--state", ":memory:"], &push("a1"))
        .expect_code(0);
    assert!(!project.state_file().exists(), "a plan created the store");
    project.vane(&["run"], &push("a1")).expect_code(0);
    // Only the last run went to disk.
    assert_eq!(project.history(&[]).len(), 1);

    let memory = Project::new(&[("deploy.yaml", DEPLOY)]);
    memory
        .vane(&["run", "--state", ":memory:"], &push("a1"))
        .expect_code(0);
    let mut command = memory.vane.command();
    command
        .env("VANE_STATE", ":memory:")
        .args(["run"])
        .write_stdin(push("b2"));
    assert!(command.output().expect("vane runs").status.success());
    let entries: Vec<_> = std::fs::read_dir(memory.dir())
        .expect("the project folder")
        .map(|entry| entry.expect("an entry").file_name())
        .collect();
    assert!(
        !memory.dir().join(".vane").exists() && !memory.dir().join(":memory:").exists(),
        "{entries:?}"
    );
}

#[test]
fn a_custom_state_path_is_created_with_its_folder() {
    let project = Project::new(&[("deploy.yaml", DEPLOY)]);
    project
        .vane(&["run", "--state", "var/lib/vane/runs.db"], &push("a1"))
        .expect_code(0);
    assert!(project.dir().join("var/lib/vane/runs.db").exists());
    assert!(!project.state_file().exists());
    assert_eq!(
        project.history(&["--state", "var/lib/vane/runs.db"]).len(),
        1
    );
}

#[test]
fn secrets_never_reach_the_state_file() {
    const SECRET: &str = "hunter2-very-secret-value";
    let workflow = r#"version: 1
name: leaky
on:
  push: {}
secrets: [DEPLOY_TOKEN]
steps:
  - id: echo
    run: |
      echo "token $DEPLOY_TOKEN"
      echo "rendered {{ secrets.DEPLOY_TOKEN }}"
      echo "to stderr $DEPLOY_TOKEN" >&2
      echo "out=$DEPLOY_TOKEN" >> "$VANE_OUTPUT"
  - id: fail
    run: echo "failing with $DEPLOY_TOKEN" >&2; exit 4
"#;
    let project = Project::new(&[("leaky.yaml", workflow)]);
    // The event carries it too, as an attacker or a careless producer might.
    let event = json!({"type": "push", "data": {"note": format!("has {SECRET} inside")}});
    let mut command = project.vane.command();
    command
        .env("DEPLOY_TOKEN", SECRET)
        .args(["run"])
        .write_stdin(event.to_string());
    let output = command.output().expect("vane runs");
    assert_eq!(output.status.code(), Some(1));

    let mut files = 0;
    for entry in std::fs::read_dir(project.dir().join(".vane")).expect("the state folder") {
        let path = entry.expect("an entry").path();
        let bytes = std::fs::read(&path).expect("a state file");
        files += 1;
        assert!(
            !bytes
                .windows(SECRET.len())
                .any(|window| window == SECRET.as_bytes()),
            "the secret is in {}",
            path.display()
        );
    }
    assert!(files >= 1);

    // The record is there, masked.
    let run = project.show(project.history(&[])[0]["id"].as_str().expect("an id"));
    assert_eq!(run["event"]["data"]["note"], "has *** inside");
    let steps = run["steps"].as_array().expect("steps");
    assert_eq!(steps[0]["outputs"]["out"], "***");
    assert_eq!(
        steps[0]["rendered"]["run"]
            .as_str()
            .map(|run| run.contains("rendered ***")),
        Some(true)
    );
    assert!(
        steps[0]["log"]
            .as_str()
            .expect("a log")
            .contains("to stderr ***")
    );
    assert!(
        steps[1]["log"]
            .as_str()
            .expect("a log")
            .contains("failing with ***")
    );
    assert_eq!(steps[1]["exit_code"], 4);
}

#[test]
fn a_store_from_a_newer_vane_is_refused_untouched() {
    let marker = "version: 1\nname: marker\non: { push: {} }\nsteps:\n  - run: touch ran\n";
    let project = Project::new(&[("marker.yaml", marker)]);
    std::fs::create_dir_all(project.dir().join(".vane")).expect("the state folder");
    {
        let connection = rusqlite::Connection::open(project.state_file()).expect("a database");
        connection
            .execute_batch("CREATE TABLE future (x); INSERT INTO future VALUES (1);")
            .expect("a table");
        connection
            .pragma_update(None, "user_version", 999)
            .expect("a version");
    }
    let before = std::fs::read(project.state_file()).expect("the store");

    for args in [vec!["run"], vec!["history"], vec!["show", "abc"]] {
        let run = project.vane(&args, &push("a1")).expect_code(2);
        let stderr = run.stderr();
        assert!(
            stderr.contains("999")
                && stderr.contains(&format!("up to {}", vane::state::SCHEMA_VERSION)),
            "{args:?}: {stderr}"
        );
    }
    assert!(!project.dir().join("ran").exists(), "a step ran");
    assert_eq!(
        std::fs::read(project.state_file()).expect("the store"),
        before,
        "the store was changed"
    );
}

#[test]
fn a_run_stopped_by_sigterm_is_recorded_cancelled_and_its_child_is_gone() {
    let marker = format!("sleep 30.{}", 3000 + std::process::id() % 1000);
    let slow = format!("version: 1\nname: slow\non: {{ push: {{}} }}\nsteps:\n  - run: {marker}\n");
    let slow = slow.as_str();
    let project = Project::new(&[("slow.yaml", slow)]);
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("vane"))
        .current_dir(project.dir())
        .env_remove("VANE_STATE")
        .arg("run")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("vane starts");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(push("a1").as_bytes()).expect("an event");
    }
    std::thread::sleep(std::time::Duration::from_millis(700));
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    assert_eq!(child.wait().expect("vane ends").code(), Some(130));
    let history = project.history(&[]);
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["status"], "cancelled");
    assert_eq!(project.history(&["--status", "cancelled"]).len(), 1);
    let still_running = std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .map(|cmdline| String::from_utf8_lossy(&cmdline).contains(&marker))
            .unwrap_or(false)
    });
    assert!(!still_running, "the step's `{marker}` outlived vane");
}

#[test]
fn two_concurrent_writers_lose_no_run() {
    const EVENTS: usize = 1000;
    // One cheap step, so that both processes spend their time writing records, not forking.
    let trivial = "version: 1\nname: tick\non: { tick: {} }\nsteps:\n  - emit: { type: tock }\n";
    let project = Project::new(&[("tick.yaml", trivial)]);
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let mut child = Command::new(assert_cmd::cargo::cargo_bin("vane"))
                .current_dir(project.dir())
                .env_remove("VANE_STATE")
                .args(["run", "--quiet"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("vane starts");
            let mut stdin = child.stdin.take().expect("stdin");
            let input: String = (0..EVENTS)
                .map(|n| {
                    format!("{{\"type\":\"tick\",\"data\":{{\"writer\":{writer},\"n\":{n}}}}}\n")
                })
                .collect();
            std::thread::spawn(move || stdin.write_all(input.as_bytes()));
            child
        })
        .collect();
    for child in writers {
        let output = child.wait_with_output().expect("vane ends");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let history = project.history(&["--limit", "5000"]);
    assert_eq!(history.len(), 2 * EVENTS);
    let mut ids: Vec<&str> = history
        .iter()
        .filter_map(|run| run["id"].as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 2 * EVENTS, "every run once");
}
