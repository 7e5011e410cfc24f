//! `vane poll` end to end (SPEC §6): a git remote behind `git daemon`, an HTTP resource with
//! ETags, the GitHub REST API and cron schedules, each served on 127.0.0.1; cursors that make a
//! second poll quiet, and concurrent polls that never run an event twice.

use crate::support::{
    Run, Vane, fixture, free_port, git, git_daemon, http_server, root, workflow_entry,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A project folder with `vane.yaml` and `workflows/`, shared by several `vane` invocations.
pub(crate) struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    pub(crate) fn new(sources: &str) -> Project {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
        std::fs::write(
            dir.path().join("vane.yaml"),
            format!("version: 1\nworkflows: workflows\nstate: .vane/state.db\n{sources}"),
        )
        .unwrap();
        Project { dir }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn workflow(&self, name: &str, text: &str) -> &Project {
        std::fs::write(self.path().join("workflows").join(name), text).unwrap();
        self
    }

    /// `vane --config … ARGS`, run from another folder (the config's paths are its own).
    pub(crate) fn vane(&self, args: &[&str]) -> Vane {
        let config = self.path().join("vane.yaml");
        Vane::new()
            .args(&["--config", config.to_str().unwrap()])
            .args(args)
    }

    pub(crate) fn poll(&self) -> Run {
        self.vane(&["poll", "--once", "--json"]).run()
    }
}

/// The events of a `--json` poll.
pub(crate) fn events(run: &Run) -> Vec<Value> {
    run.json_lines()
        .into_iter()
        .map(|line| line["event"].clone())
        .collect()
}

/// Records every push event: which workflow ran is checked in the `--json` output.
const ON_PUSH: &str = r#"
version: 1
name: on-push
on:
  push:
    branches: [main]
    tags: ["v*"]
steps:
  - run: "true"
"#;

/// A bare `remote.git` with `main` holding one commit, and a clone to push from.
struct GitRemote {
    _dir: tempfile::TempDir,
    root: PathBuf,
    work: PathBuf,
}

impl GitRemote {
    fn new() -> GitRemote {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let root = dir.path().to_path_buf();
        git(&root, &["init", "--bare", "remote.git"]);
        git(&root, &["init", "work"]);
        let work = root.join("work");
        std::fs::write(work.join("README.md"), "hello\n").unwrap();
        git(&work, &["add", "."]);
        git(&work, &["commit", "-m", "first"]);
        git(&work, &["remote", "add", "origin", "../remote.git"]);
        git(&work, &["push", "origin", "HEAD:refs/heads/main"]);
        GitRemote {
            _dir: dir,
            root,
            work,
        }
    }

    fn commit(&self, path: &str, text: &str, message: &str) -> String {
        let file = self.work.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
        git(&self.work, &["add", "."]);
        git(&self.work, &["commit", "-m", message]);
        self.head()
    }

    fn head(&self) -> String {
        git(&self.work, &["rev-parse", "HEAD"]).trim().to_string()
    }

    fn push(&self, refspecs: &[&str]) {
        let mut args = vec!["push", "origin"];
        args.extend(refspecs);
        git(&self.work, &args);
    }
}

#[test]
fn git_polling_emits_one_push_per_moved_ref_and_nothing_twice() {
    let remote = GitRemote::new();
    let daemon = git_daemon(&remote.root);
    let url = format!("git://127.0.0.1:{}/remote.git", daemon.port);
    let project = Project::new(&format!(
        "sources:\n  - name: app\n    git: {{ url: \"{url}\", branches: [main], tags: [\"v*\"], repo: acme/app }}\n    every: 1m\n"
    ));
    project.workflow("on-push.yaml", ON_PUSH);
    // The first poll records where the remote is (`first: record`).
    let first = project.poll().expect_code(0);
    assert!(events(&first).is_empty(), "{}", first.stdout());

    let before = remote.head();
    remote.commit("src/lib.rs", "pub fn a() {}\n", "add lib");
    let after = remote.commit("README.md", "hello, world\n", "say more");
    git(
        &remote.work,
        &["tag", "-a", "v1.2.0", "-m", "release 1.2.0"],
    );
    remote.push(&["HEAD:refs/heads/main", "refs/tags/v1.2.0"]);

    let second = project.poll().expect_code(0);
    let found = events(&second);
    assert_eq!(found.len(), 2, "{}", second.stdout());
    let main = found
        .iter()
        .find(|event| event["branch"] == "main")
        .unwrap();
    assert_eq!(main["source"], "git");
    assert_eq!(main["type"], "push");
    assert_eq!(main["subject"], "app");
    assert_eq!(main["repo"], "acme/app");
    assert_eq!(main["ref"], "refs/heads/main");
    assert_eq!(main["sha"], after.as_str());
    assert_eq!(main["data"]["before"], before.as_str());
    assert_eq!(main["data"]["after"], after.as_str());
    assert_eq!(main["data"]["created"], false);
    let mut files: Vec<String> = serde_json::from_value(main["files"].clone()).unwrap();
    files.sort();
    assert_eq!(files, vec!["README.md", "src/lib.rs"]);
    let messages: Vec<&str> = main["data"]["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|commit| commit["message"].as_str().unwrap().trim())
        .collect();
    assert_eq!(messages, vec!["add lib", "say more"]);
    assert_eq!(main["data"]["commits"][0]["added"], json!(["src/lib.rs"]));
    assert_eq!(main["data"]["commits"][1]["author"]["name"], "test");
    assert_eq!(
        main["id"],
        format!("git:app:refs/heads/main:{before}..{after}")
    );
    let tag = found.iter().find(|event| event["tag"] == "v1.2.0").unwrap();
    assert_eq!(tag["branch"], Value::Null);
    assert_eq!(tag["sha"], after.as_str(), "an annotated tag is its commit");
    assert_eq!(tag["data"]["created"], true);
    assert_eq!(
        tag["data"]["before"],
        "0000000000000000000000000000000000000000"
    );
    for line in second.json_lines() {
        let entry = workflow_entry(&line, "on-push");
        assert_eq!(entry["matched"], true, "{line}");
        assert_eq!(entry["run"]["status"], "success", "{line}");
    }

    // Nothing new: nothing emitted.
    let third = project.poll().expect_code(0);
    assert!(events(&third).is_empty(), "{}", third.stdout());

    // Two polls at the same moment: the new commit is emitted once in total.
    let newest = remote.commit("src/lib.rs", "pub fn b() {}\n", "change lib");
    remote.push(&["HEAD:refs/heads/main"]);
    let runs: Vec<Run> = std::thread::scope(|threads| {
        let handles: Vec<_> = (0..2).map(|_| threads.spawn(|| project.poll())).collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    let mut concurrent = Vec::new();
    for run in &runs {
        assert_eq!(run.code(), 0, "{}", run.stderr());
        concurrent.extend(events(run));
    }
    assert_eq!(concurrent.len(), 1, "{concurrent:?}");
    assert_eq!(concurrent[0]["sha"], newest.as_str());
    assert_eq!(concurrent[0]["data"]["before"], after.as_str());
    assert_eq!(concurrent[0]["files"], json!(["src/lib.rs"]));

    // The history holds each run once: two from the second poll, one from the concurrent ones.
    let history = project.vane(&["history", "--json"]).run().expect_code(0);
    assert_eq!(history.json_lines().len(), 3, "{}", history.stdout());

    // A force-push back to the tagged commit, and the tag deleted.
    git(&remote.work, &["reset", "--hard", &after]);
    remote.push(&["--force", "HEAD:refs/heads/main", ":refs/tags/v1.2.0"]);
    let rewound = events(&project.poll().expect_code(0));
    assert_eq!(rewound.len(), 2, "{rewound:?}");
    let main = rewound
        .iter()
        .find(|event| event["branch"] == "main")
        .unwrap();
    assert_eq!(main["data"]["forced"], true);
    assert_eq!(main["data"]["before"], newest.as_str());
    assert_eq!(main["sha"], after.as_str());
    assert_eq!(main["files"], json!(["src/lib.rs"]));
    let tag = rewound
        .iter()
        .find(|event| event["tag"] == "v1.2.0")
        .unwrap();
    assert_eq!(tag["data"]["deleted"], true);
    assert_eq!(tag["sha"], "0000000000000000000000000000000000000000");
    assert_eq!(tag["files"], json!([]));
}

#[test]
fn http_polling_sends_the_etag_and_an_unchanged_resource_is_no_event() {
    let (url, seen) = http_server(|request| {
        if request.header("If-None-Match") == Some("\"v1\"") {
            return (304, vec![("ETag", "\"v1\"".into())], String::new());
        }
        (
            200,
            vec![
                ("ETag", "\"v1\"".into()),
                ("Content-Type", "application/json".into()),
            ],
            r#"{"status": "success", "data": {"result": [{"value": 0.93}]}}"#.into(),
        )
    });
    let project = Project::new(&format!(
        "sources:\n  - name: level\n    http:\n      url: {url}/api/level\n      type: metric.level\n      pointer: /data/result/0\n      headers: {{ Authorization: {{ env: LEVEL_TOKEN }} }}\n    every: 30s\n"
    ));
    project.workflow(
        "level.yaml",
        "version: 1\nname: level\non:\n  metric.level:\nsteps:\n  - run: echo {{ event.data.value }}\n",
    );
    let first = project
        .vane(&["poll", "--once", "--json"])
        .env("LEVEL_TOKEN", "Bearer s3cret-token")
        .run()
        .expect_code(0);
    let found = events(&first);
    assert_eq!(found.len(), 1, "{}", first.stdout());
    assert_eq!(found[0]["source"], "http");
    assert_eq!(found[0]["type"], "metric.level");
    assert_eq!(found[0]["subject"], "level");
    assert_eq!(found[0]["data"], json!({"value": 0.93}));
    let request = seen.recv().unwrap();
    assert_eq!(request.url, "/api/level");
    assert_eq!(request.header("Authorization"), Some("Bearer s3cret-token"));
    assert_eq!(request.header("If-None-Match"), None);

    let second = project
        .vane(&["poll", "--once", "--json"])
        .env("LEVEL_TOKEN", "Bearer s3cret-token")
        .run()
        .expect_code(0);
    assert!(events(&second).is_empty(), "{}", second.stdout());
    let request = seen.recv().unwrap();
    assert_eq!(request.header("If-None-Match"), Some("\"v1\""));
    for run in [&first, &second] {
        assert!(!run.stdout().contains("s3cret") && !run.stderr().contains("s3cret"));
    }
}

/// The webhook fixture's run, as the REST API lists it, in the given state.
fn api_run(status: &str, conclusion: Option<&str>) -> Value {
    let payload: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("github/workflow_run.completed-failure.json")).unwrap(),
    )
    .unwrap();
    let mut run = payload["workflow_run"].clone();
    run["status"] = json!(status);
    run["conclusion"] = json!(conclusion);
    run
}

#[test]
fn github_polling_turns_a_finished_failing_run_into_the_gallery_notification() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let (api, seen) = http_server(move |request| {
        let index = counter.fetch_add(1, Ordering::SeqCst);
        let (etag, run) = if index == 0 {
            ("\"a\"", api_run("in_progress", None))
        } else {
            ("\"b\"", api_run("completed", Some("failure")))
        };
        if request.header("If-None-Match") == Some(etag) {
            return (304, vec![], String::new());
        }
        let body = json!({"total_count": 1, "workflow_runs": [run]}).to_string();
        (
            200,
            vec![
                ("ETag", etag.into()),
                ("X-RateLimit-Remaining", "4999".into()),
                ("Content-Type", "application/json".into()),
            ],
            body,
        )
    });
    let (slack, slack_seen) = http_server(|_| (200, vec![], "ok".into()));
    let project = Project::new(&format!(
        "sources:\n  - name: ci\n    github: {{ repo: octo-org/octo-repo, events: [workflow_run], api-url: \"{api}\", token: {{ env: GH_POLL_TOKEN }} }}\n    every: 2m\n"
    ));
    let gallery = std::fs::read_to_string(root().join("workflows/notify-ci-failure.yaml")).unwrap();
    project.workflow("notify-ci-failure.yaml", &gallery);
    let poll = || {
        project
            .vane(&["poll", "--once", "--json"])
            .env("GH_POLL_TOKEN", "ghp_polltoken")
            .env("SLACK_WEBHOOK", &format!("{slack}/hook"))
            .run()
            .expect_code(0)
    };
    let first = poll();
    assert!(
        events(&first).is_empty(),
        "the first poll records: {}",
        first.stdout()
    );
    let request = seen.recv().unwrap();
    assert_eq!(
        request.url,
        "/repos/octo-org/octo-repo/actions/runs?per_page=50"
    );
    assert_eq!(
        request.header("Authorization"),
        Some("Bearer ghp_polltoken")
    );

    let second = poll();
    let lines = second.json_lines();
    assert_eq!(lines.len(), 1, "{}", second.stdout());
    let event = &lines[0]["event"];
    assert_eq!(event["source"], "github");
    assert_eq!(event["type"], "workflow_run");
    assert_eq!(event["action"], "completed");
    assert_eq!(event["repo"], "octo-org/octo-repo");
    assert_eq!(event["branch"], "master");
    assert_eq!(event["data"]["workflow_run"]["conclusion"], "failure");
    let entry = workflow_entry(&lines[0], "notify-ci-failure");
    assert_eq!(entry["matched"], true, "{entry}");
    assert_eq!(entry["run"]["status"], "success", "{entry}");
    let notified = slack_seen.recv().unwrap();
    assert_eq!(notified.url, "/hook");
    // The first poll's ETag was sent with the second request.
    assert_eq!(seen.recv().unwrap().header("If-None-Match"), Some("\"a\""));

    let third = poll();
    assert!(events(&third).is_empty(), "{}", third.stdout());
}

#[test]
fn github_polling_waits_out_a_spent_rate_limit() {
    let reset = (chrono::Utc::now().timestamp() + 3600).to_string();
    let (api, seen) = http_server(move |_| {
        (
            403,
            vec![
                ("X-RateLimit-Remaining", "0".into()),
                ("X-RateLimit-Reset", reset.clone()),
            ],
            r#"{"message": "API rate limit exceeded"}"#.into(),
        )
    });
    let project = Project::new(&format!(
        "sources:\n  - name: ci\n    github: {{ repo: acme/api, events: [workflow_run], api-url: \"{api}\" }}\n"
    ));
    let first = project.poll().expect_code(0);
    assert!(
        first.stderr().contains("source `ci`: rate limited"),
        "{}",
        first.stderr()
    );
    seen.recv().unwrap();
    let second = project.poll().expect_code(0);
    assert!(
        second.stderr().contains("not polled again before"),
        "{}",
        second.stderr()
    );
    assert!(
        seen.recv_timeout(std::time::Duration::from_millis(200))
            .is_err(),
        "no request before the reset"
    );
}

#[test]
fn a_schedule_missed_for_three_minutes_fires_once() {
    let project = Project::new("");
    project.workflow(
        "tick.yaml",
        "version: 1\nname: tick\non:\n  schedule:\n    - cron: \"*/1 * * * *\"\nsteps:\n  - run: echo {{ event.data.scheduled_time }}\n",
    );
    let at = |now: &str| {
        project
            .vane(&["poll", "--once", "--json"])
            .env("VANE_NOW", now)
            .run()
            .expect_code(0)
    };
    assert!(
        events(&at("2026-11-26T10:00:10Z")).is_empty(),
        "the first poll records"
    );
    let late = at("2026-11-26T10:03:30Z");
    let lines = late.json_lines();
    assert_eq!(lines.len(), 1, "{}", late.stdout());
    let event = &lines[0]["event"];
    assert_eq!(event["type"], "schedule");
    assert_eq!(event["source"], "schedule");
    assert_eq!(event["subject"], "tick");
    assert_eq!(
        event["data"],
        json!({"cron": "*/1 * * * *", "scheduled_time": "2026-11-26T10:03:00Z"})
    );
    assert_eq!(
        workflow_entry(&lines[0], "tick")["run"]["status"],
        "success"
    );
    assert!(events(&at("2026-11-26T10:03:50Z")).is_empty());
    assert_eq!(events(&at("2026-11-26T10:04:00Z")).len(), 1);
}

#[test]
fn an_unreachable_remote_is_an_error_naming_the_source_and_stores_nothing() {
    let url = format!("git://127.0.0.1:{}/nothing.git", free_port());
    let project = Project::new(&format!(
        "sources:\n  - name: gone\n    git: {{ url: \"{url}\", branches: [main] }}\n"
    ));
    let run = project.poll().expect_code(2);
    let stderr = run.stderr();
    assert!(
        stderr.contains("vane.yaml:5:5: source `gone`: cannot fetch from"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let history = project.vane(&["history", "--json"]).run().expect_code(0);
    assert_eq!(history.stdout(), "");
}

#[test]
fn a_response_that_is_not_json_is_an_error_naming_the_source() {
    let (url, _seen) = http_server(|_| (200, vec![], "<html>hello</html>".into()));
    let project = Project::new(&format!(
        "sources:\n  - name: page\n    http: {{ url: \"{url}/\", type: page }}\n"
    ));
    let run = project.poll().expect_code(2);
    assert!(
        run.stderr().contains("source `page`: GET `") && run.stderr().contains("is not JSON"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_bad_glob_or_an_unknown_source_is_refused_before_anything_runs() {
    let project = Project::new(
        "sources:\n  - name: app\n    git: { url: /nowhere, branches: [\"!main\"] }\n",
    );
    let run = project.poll().expect_code(2);
    assert!(
        run.stderr()
            .contains("vane.yaml:6:37: error: sources[0].git.branches"),
        "{}",
        run.stderr()
    );
    let project = Project::new("");
    let run = project
        .vane(&["poll", "--once", "--source", "nope"])
        .run()
        .expect_code(2);
    assert!(
        run.stderr().contains("no source `nope`"),
        "{}",
        run.stderr()
    );
}

#[test]
fn poll_every_keeps_polling_and_stops_cleanly_on_sigterm() {
    let counter = Arc::new(AtomicUsize::new(0));
    let served = Arc::clone(&counter);
    // A resource that changes at every request: each poll is an event.
    let (url, seen) = http_server(move |_| {
        let n = served.fetch_add(1, Ordering::SeqCst);
        (200, vec![], json!({"n": n}).to_string())
    });
    let project = Project::new(&format!(
        "sources:\n  - name: ticker\n    http: {{ url: \"{url}/\", type: tick }}\n"
    ));
    project.workflow(
        "tick.yaml",
        "version: 1\nname: tick\non:\n  tick:\nsteps:\n  - run: echo {{ event.data.n }}\n",
    );
    let config = project.path().join("vane.yaml");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("vane"))
        .args(["--config", config.to_str().unwrap()])
        .args(["poll", "--every", "300ms", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..3 {
        seen.recv_timeout(std::time::Duration::from_secs(20))
            .expect("`poll --every` polls again");
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: signals the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_with_timeout(&mut child);
    assert_eq!(status.code(), Some(0));
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let values: Vec<u64> = stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .inspect(|line| assert_eq!(workflow_entry(line, "tick")["run"]["status"], "success"))
        .map(|line| line["event"]["data"]["n"].as_u64().unwrap())
        .collect();
    assert!(values.len() >= 2, "{stdout}");
    assert!(
        values.windows(2).all(|pair| pair[0] < pair[1]),
        "{values:?}"
    );
}

fn wait_with_timeout(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("`poll --every` did not stop on SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn once_wins_over_an_every_from_the_environment() {
    let project = Project::new("");
    project
        .vane(&["poll", "--once"])
        .env("VANE_POLL_EVERY", "1m")
        .command()
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(0);
}

#[test]
fn github_check_runs_of_a_branch_are_created_then_completed() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let (api, seen) = http_server(move |request| {
        if request.url.starts_with("/repos/acme/api/actions/runs") {
            return (
                200,
                vec![],
                json!({"total_count": 0, "workflow_runs": []}).to_string(),
            );
        }
        let (status, conclusion) = match counter.fetch_add(1, Ordering::SeqCst) {
            0 => ("queued", Value::Null),
            _ => ("completed", json!("failure")),
        };
        let check = json!({"id": 4, "name": "build", "head_sha": "d6fde92930d4715a2b49857d24b940956b26d2d3",
                           "status": status, "conclusion": conclusion, "check_suite": {"id": 5},
                           "app": {"owner": {"login": "github"}}});
        (
            200,
            vec![],
            json!({"total_count": 1, "check_runs": [check]}).to_string(),
        )
    });
    let project = Project::new(&format!(
        "sources:\n  - name: checks\n    github: {{ repo: acme/api, events: [workflow_run, check_run], branches: [release/1.x], api-url: \"{api}\", first: emit }}\n"
    ));
    project.workflow(
        "failed-check.yaml",
        "version: 1\nname: failed-check\non:\n  check_run:\n    types: [completed]\n    branches: [\"release/**\"]\nif: event.data.check_run.conclusion == 'failure'\nsteps:\n  - run: echo {{ event.data.check_run.name }}\n",
    );
    let first = project.poll().expect_code(0);
    let found = events(&first);
    assert_eq!(found.len(), 1, "{}", first.stdout());
    assert_eq!(found[0]["type"], "check_run");
    assert_eq!(found[0]["action"], "created");
    assert_eq!(
        workflow_entry(&first.json_lines()[0], "failed-check")["matched"],
        false
    );
    let urls: Vec<String> = seen.try_iter().map(|request| request.url).collect();
    assert!(
        urls.contains(&"/repos/acme/api/commits/release%2F1.x/check-runs?per_page=50".to_string()),
        "{urls:?}"
    );
    let second = project.poll().expect_code(0);
    let lines = second.json_lines();
    assert_eq!(lines.len(), 1, "{}", second.stdout());
    let event = &lines[0]["event"];
    assert_eq!(event["action"], "completed");
    assert_eq!(event["branch"], "release/1.x");
    assert_eq!(event["sha"], "d6fde92930d4715a2b49857d24b940956b26d2d3");
    assert_eq!(
        workflow_entry(&lines[0], "failed-check")["run"]["status"],
        "success"
    );
    assert!(events(&project.poll().expect_code(0)).is_empty());
}
