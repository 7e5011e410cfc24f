//! Reloading a running `vane serve`: SIGHUP, `POST /-/reload` and `--watch` pick up new
//! workflows; a broken file changes nothing (400 with `file:line:col`, the metric at 0); a run in
//! flight finishes on the definition it started with, and each run records its definition's
//! digest; schedules neither fire twice nor skip across a reload.

use crate::logs::{Logged, github_headers, post};
use crate::support::fixture;
use sha2::Digest;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SECRET: &str = "reload-secret-8Kd";

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    std::fs::write(
        dir.path().join("vane.yaml"),
        "version: 1\nserve:\n  webhooks:\n    github: { secret: { env: HOOK_SECRET } }\n",
    )
    .unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join("workflows").join(name), text).unwrap();
    }
    dir
}

fn workflow(name: &str, run: &str) -> String {
    format!("version: 1\nname: {name}\non: {{ push: {{}} }}\nsteps:\n  - run: {run}\n")
}

fn serve(dir: &Path, extra: &[&str]) -> Logged {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Logged::start(dir, &args, &[("HOOK_SECRET", SECRET)])
}

fn deliver(daemon: &Logged, delivery: &str) {
    let body = std::fs::read(fixture("github/push.branch.json")).unwrap();
    let url = format!("{}/hooks/github", daemon.url);
    let answer = post(&url, &github_headers(delivery, &body, SECRET), &body);
    assert_eq!(answer.0, 202, "{answer:?}");
}

fn hangup(daemon: &Logged) {
    Command::new("kill")
        .args(["-HUP", &daemon.child.id().to_string()])
        .status()
        .unwrap();
}

/// (workflow, status, digest) of the runs of one event, by workflow name.
fn runs(dir: &Path, event: &str) -> Vec<(String, String, String)> {
    let state = dir.join(".vane/state.db");
    if !state.exists() {
        return Vec::new();
    }
    let connection = rusqlite::Connection::open(state).unwrap();
    let mut statement = connection
        .prepare(
            "SELECT workflow, status, coalesce(digest, '') FROM runs WHERE event_id = ?1 \
             AND status != 'running' ORDER BY workflow",
        )
        .unwrap();
    statement
        .query_map([event], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn wait_for_runs(dir: &Path, event: &str, count: usize) -> Vec<(String, String, String)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = runs(dir, event);
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{count} run(s) of {event}: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn names(runs: &[(String, String, String)]) -> Vec<&str> {
    runs.iter().map(|(name, _, _)| name.as_str()).collect()
}

fn metrics(daemon: &Logged) -> String {
    reqwest::blocking::get(format!("{}/metrics", daemon.url))
        .unwrap()
        .text()
        .unwrap()
}

fn digest(text: &str) -> String {
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(text.as_bytes()))
    )
}

fn reload(daemon: &Logged) -> (u16, serde_json::Value) {
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/-/reload", daemon.url))
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap())
}

#[test]
fn sighup_and_post_reload_pick_up_new_workflows_and_a_broken_file_changes_nothing() {
    let dir = project(&[("a.yaml", &workflow("a", "echo a"))]);
    let daemon = serve(dir.path(), &[]);
    assert!(metrics(&daemon).contains("vane_config_last_reload_successful 1"));

    std::fs::write(dir.path().join("workflows/b.yaml"), workflow("b", "echo b")).unwrap();
    hangup(&daemon);
    daemon.wait_for_line("reloaded: 2 workflow(s)");
    deliver(&daemon, "d-1");
    assert_eq!(names(&wait_for_runs(dir.path(), "d-1", 2)), ["a", "b"]);

    // A new good file and a broken one: neither is taken.
    std::fs::write(dir.path().join("workflows/c.yaml"), workflow("c", "echo c")).unwrap();
    std::fs::write(
        dir.path().join("workflows/d.yaml"),
        "version: 1\nname: d\non: { push: {} }\nsteps:\n  - run: echo d\n    bogus: 1\n",
    )
    .unwrap();
    let (status, answer) = reload(&daemon);
    assert_eq!(status, 400, "{answer}");
    let problems = answer["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{answer}");
    let problem = problems[0].as_str().unwrap();
    assert!(
        problem.starts_with("workflows/d.yaml:6:5: error:"),
        "{problem}"
    );
    let text = metrics(&daemon);
    assert!(
        text.contains("vane_config_last_reload_successful 0"),
        "{text}"
    );
    assert!(text.contains("vane_config_last_reload_success_timestamp_seconds "));
    daemon.wait_for_line("workflows/d.yaml:6:5");
    hangup(&daemon);
    let deadline = Instant::now() + Duration::from_secs(30);
    while daemon
        .lines()
        .iter()
        .filter(|line| line.contains("reload failed"))
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "{:#?}", daemon.lines());
        std::thread::sleep(Duration::from_millis(50));
    }
    deliver(&daemon, "d-2");
    let after = wait_for_runs(dir.path(), "d-2", 2);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(names(&runs(dir.path(), "d-2")), ["a", "b"], "{after:?}");

    std::fs::remove_file(dir.path().join("workflows/d.yaml")).unwrap();
    let (status, answer) = reload(&daemon);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["workflows"], 3);
    assert!(metrics(&daemon).contains("vane_config_last_reload_successful 1"));
    deliver(&daemon, "d-3");
    assert_eq!(names(&wait_for_runs(dir.path(), "d-3", 3)), ["a", "b", "c"]);
    let (code, lines) = daemon.stop();
    assert_eq!(code, 0, "{lines:#?}");
}

#[test]
fn watch_picks_up_an_edit() {
    let first = workflow("a", "echo one");
    let dir = project(&[("a.yaml", &first)]);
    let daemon = serve(dir.path(), &["--watch"]);
    deliver(&daemon, "w-1");
    let before = wait_for_runs(dir.path(), "w-1", 1);
    assert_eq!(before[0].2, digest(&first));
    let second = workflow("a", "echo two");
    std::fs::write(dir.path().join("workflows/a.yaml"), &second).unwrap();
    daemon.wait_for_line("reloaded: 1 workflow(s)");
    assert!(
        daemon.lines().iter().any(|line| line.contains("--watch")),
        "{:#?}",
        daemon.lines()
    );
    deliver(&daemon, "w-2");
    let after = wait_for_runs(dir.path(), "w-2", 1);
    assert_eq!(after[0].2, digest(&second));
    let (code, _) = daemon.stop();
    assert_eq!(code, 0);
    // `vane history --json` names each run's definition.
    let history = Command::new(assert_cmd::cargo::cargo_bin!("vane"))
        .current_dir(dir.path())
        .args(["history", "--json"])
        .env_remove("VANE_STATE")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&history.stdout);
    let digests: Vec<String> = text
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["digest"].to_string())
        .collect();
    assert_eq!(
        digests,
        [
            format!("{:?}", digest(&second)),
            format!("{:?}", digest(&first))
        ],
        "{text}"
    );
}

#[test]
fn a_run_in_flight_finishes_on_the_definition_it_started_with() {
    let definition = |marker: &str| {
        format!(
            "version: 1\nname: slow\non: {{ push: {{}} }}\nsteps:\n  - run: sleep 2\n  \
             - run: echo {marker} >> \"out-{{{{ event.id }}}}\"\n"
        )
    };
    let (old, new) = (definition("old"), definition("new"));
    let dir = project(&[("slow.yaml", &old)]);
    let daemon = serve(dir.path(), &[]);
    deliver(&daemon, "f-1");
    daemon.wait_for_line("started for event f-1");
    std::fs::write(dir.path().join("workflows/slow.yaml"), &new).unwrap();
    hangup(&daemon);
    daemon.wait_for_line("reloaded: 1 workflow(s)");
    // The first run is still in its first step.
    assert!(runs(dir.path(), "f-1").is_empty());
    deliver(&daemon, "f-2");
    let first = wait_for_runs(dir.path(), "f-1", 1);
    let second = wait_for_runs(dir.path(), "f-2", 1);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out-f-1")).unwrap(),
        "old\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out-f-2")).unwrap(),
        "new\n"
    );
    assert_eq!(first[0].1, "success");
    assert_eq!(first[0].2, digest(&old));
    assert_eq!(second[0].2, digest(&new));
    let (code, _) = daemon.stop();
    assert_eq!(code, 0);
}

/// The schedule runs of `workflow` recorded in the store, by scheduled time.
fn scheduled(dir: &Path, workflow: &str) -> Vec<String> {
    let state = dir.join(".vane/state.db");
    let connection = rusqlite::Connection::open(state).unwrap();
    let mut statement = connection
        .prepare(
            "SELECT event_id FROM runs WHERE workflow = ?1 AND status = 'success' \
             ORDER BY event_id",
        )
        .unwrap();
    statement
        .query_map([workflow], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn schedules_neither_fire_twice_nor_skip_across_a_reload() {
    let tick = |name: &str, extra: &str| {
        format!(
            "version: 1\nname: {name}\n{extra}on:\n  schedule:\n    - cron: \"* * * * *\"\nsteps:\n  - run: echo tick\n"
        )
    };
    let dir = project(&[("tick.yaml", &tick("tick", ""))]);
    let poll = |now: &str| {
        let output = Command::new(assert_cmd::cargo::cargo_bin!("vane"))
            .current_dir(dir.path())
            .args(["poll", "--once"])
            .env_remove("VANE_STATE")
            .env_remove("VANE_WORKFLOWS")
            .env("VANE_NOW", now)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
    };
    // The schedule's first sight, at 10:00:00.
    poll("2026-11-26T10:00:00Z");
    let start = |now: &str| {
        Logged::start(
            dir.path(),
            &["serve", "--listen", "127.0.0.1:0"],
            &[("HOOK_SECRET", SECRET), ("VANE_NOW", now)],
        )
    };
    let daemon = start("2026-11-26T10:05:30Z");
    let deadline = Instant::now() + Duration::from_secs(30);
    while scheduled(dir.path(), "tick").is_empty() {
        assert!(Instant::now() < deadline, "{:#?}", daemon.lines());
        std::thread::sleep(Duration::from_millis(50));
    }
    // The workflow changes (a description) and a second schedule arrives, both by a reload.
    std::fs::write(
        dir.path().join("workflows/tick.yaml"),
        tick("tick", "description: edited\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("workflows/tock.yaml"), tick("tock", "")).unwrap();
    hangup(&daemon);
    daemon.wait_for_line("reloaded: 2 workflow(s)");
    std::thread::sleep(Duration::from_millis(500));
    let (code, lines) = daemon.stop();
    assert_eq!(code, 0, "{lines:#?}");
    assert_eq!(
        scheduled(dir.path(), "tick"),
        ["schedule:tick:* * * * *:2026-11-26T10:05:00Z"],
        "the reload must not fire it again"
    );
    assert!(scheduled(dir.path(), "tock").is_empty());
    // Two minutes on: the kept schedule fires from its cursor, and the new one from the reload
    // (not from a later minute tick, which would have skipped 10:07).
    poll("2026-11-26T10:07:10Z");
    assert_eq!(
        scheduled(dir.path(), "tick"),
        [
            "schedule:tick:* * * * *:2026-11-26T10:05:00Z",
            "schedule:tick:* * * * *:2026-11-26T10:07:00Z"
        ]
    );
    assert_eq!(
        scheduled(dir.path(), "tock"),
        ["schedule:tock:* * * * *:2026-11-26T10:07:00Z"]
    );
}

#[test]
fn with_a_reload_token_post_reload_takes_only_the_bearer_token() {
    let dir = project(&[("a.yaml", &workflow("a", "echo a"))]);
    std::fs::write(
        dir.path().join("vane.yaml"),
        "version: 1\nserve:\n  reload-token: { env: RELOAD_TOKEN }\n  webhooks:\n    github: { secret: { env: HOOK_SECRET } }\n",
    )
    .unwrap();
    let daemon = Logged::start(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0"],
        &[("HOOK_SECRET", SECRET), ("RELOAD_TOKEN", "tok-55x")],
    );
    let ask = |token: Option<&str>| {
        let mut request = reqwest::blocking::Client::new().post(format!("{}/-/reload", daemon.url));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        request.send().unwrap().status().as_u16()
    };
    assert_eq!(ask(None), 401);
    assert_eq!(ask(Some("wrong")), 401);
    assert_eq!(ask(Some("tok-55x")), 200);
    let (code, lines) = daemon.stop();
    assert_eq!(code, 0);
    assert!(!lines.join("\n").contains("tok-55x"));
}

#[test]
fn a_worker_reloads_on_sighup_all_or_nothing() {
    let dir = project(&[("a.yaml", &workflow("a", "echo a"))]);
    let daemon = Logged::start_until(dir.path(), &["worker"], &[], "worker started");
    std::fs::write(
        dir.path().join("workflows/b.yaml"),
        "version: 1\nname: b\non: { push: {} }\nsteps:\n  - run: echo b\n    bogus: 1\n",
    )
    .unwrap();
    hangup(&daemon);
    daemon.wait_for_line("workflows/b.yaml:6:5");
    daemon.wait_for_line("reload failed: 1 problem(s)");
    std::fs::write(dir.path().join("workflows/b.yaml"), workflow("b", "echo b")).unwrap();
    hangup(&daemon);
    daemon.wait_for_line("reloaded: 2 workflow(s)");
    let (code, lines) = daemon.stop();
    assert_eq!(code, 0, "{lines:#?}");
}

/// Runs of `workflow` in the store, any event.
fn finished_runs_of(dir: &Path, workflow: &str) -> i64 {
    let state = dir.join(".vane/state.db");
    let connection = rusqlite::Connection::open(state).unwrap();
    connection
        .query_row(
            "SELECT count(*) FROM runs WHERE workflow = ?1 AND status = 'success'",
            [workflow],
            |row| row.get(0),
        )
        .unwrap()
}

/// A reload that gives a workflow its first gate: the daemon (started with no gate at all) fires
/// the new gate's timer — `vane serve` from its scheduler, `vane worker` from its own.
#[test]
fn a_gate_a_reload_brings_fires_its_timer_in_serve_and_in_a_worker() {
    let debounced = "version: 1\nname: a\non: { push: {} }\ndebounce:\n  key: \"{{ event.data.repository.full_name }}\"\n  quiet: 1s\nsteps:\n  - run: echo a\n";
    for command in ["serve", "worker"] {
        let dir = project(&[("a.yaml", &workflow("a", "echo a"))]);
        let (daemon, ready) = match command {
            "serve" => (serve(dir.path(), &[]), "listening"),
            _ => (
                Logged::start_until(dir.path(), &["worker"], &[], "worker started"),
                "worker started",
            ),
        };
        daemon.wait_for_line(ready);
        std::fs::write(dir.path().join("workflows/a.yaml"), debounced).unwrap();
        hangup(&daemon);
        daemon.wait_for_line("reloaded: 1 workflow(s)");
        for n in 0..3 {
            let delivery = format!("{command}-burst-{n}");
            match command {
                "serve" => deliver(&daemon, &delivery),
                _ => {
                    // The worker takes from the store's queue, where `vane poll` would put it.
                    let body = std::fs::read(fixture("github/push.branch.json")).unwrap();
                    let envelope = serde_json::json!({
                        "id": delivery, "type": "push", "source": "github",
                        "data": serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
                    });
                    let queue = vane::queue::SqliteQueue::open(
                        &vane::state::StateLocation::File(dir.path().join(".vane/state.db")),
                        vane::secrets::Masker::new(),
                    )
                    .unwrap();
                    vane::queue::Queue::push(
                        &queue,
                        &[vane::queue::QueueItem {
                            delivery: delivery.clone(),
                            source: "test".to_string(),
                            event: envelope.to_string(),
                        }],
                        None,
                    )
                    .unwrap();
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while finished_runs_of(dir.path(), "a") < 1 {
            assert!(
                Instant::now() < deadline,
                "{command}: the debounce never fired: {:#?}",
                daemon.lines()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(finished_runs_of(dir.path(), "a"), 1, "{command}");
        let (code, lines) = daemon.stop();
        assert_eq!(code, 0, "{command}: {lines:#?}");
    }
}
