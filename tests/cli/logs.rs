//! Structured daemon logs: `vane serve --log-format json` writes one JSON object per stderr line
//! (`timestamp`, `level`, `message`, the fields flattened beside them); deliveries accepted and
//! rejected (with the reason, never the body or a secret), runs started and finished with their
//! ids, startup and shutdown.

use crate::support::fixture;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "log-secret-Zq81";

/// A running daemon whose stderr lines are kept.
pub struct Logged {
    pub child: Child,
    pub url: String,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Logged {
    /// `vane ARGS` in `dir` (a daemon that prints `listening on http://…` first).
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Logged {
        Logged::start_until(dir, args, env, "listening on http://")
    }

    /// `vane ARGS` in `dir`, once a line holds `ready` (the URL is the one it names, if any).
    pub fn start_until(dir: &Path, args: &[&str], env: &[(&str, &str)], ready: &str) -> Logged {
        let ready = ready.to_string();
        let mut child = Command::new(assert_cmd::cargo::cargo_bin!("vane"))
            .current_dir(dir)
            .args(args)
            .env_remove("VANE_STATE")
            .env_remove("VANE_WORKFLOWS")
            .env_remove("VANE_LOG")
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("vane starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let (sender, receiver) = std::sync::mpsc::channel();
        let kept = Arc::clone(&lines);
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && line.contains(&ready) {
                    let address: String = line
                        .split("listening on http://")
                        .nth(1)
                        .unwrap_or_default()
                        .chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                        .collect();
                    let _ = sender.send(address);
                    sent = true;
                }
                kept.lock().unwrap().push(line);
            }
        });
        let address = receiver
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no ready line in {:?}", lines.lock().unwrap()));
        Logged {
            child,
            url: format!("http://{address}"),
            lines,
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until a line contains `text`.
    pub fn wait_for_line(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.lines().iter().any(|line| line.contains(text)) {
            assert!(
                Instant::now() < deadline,
                "no line with {text:?} in:\n{}",
                self.lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit status once it has exited (and its last lines are read).
    pub fn stop(mut self) -> (i32, Vec<String>) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the daemon did not stop");
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(200));
        (code, self.lines())
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn github_headers(delivery: &str, body: &[u8], secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-GitHub-Event", "push".to_string()),
        ("X-GitHub-Delivery", delivery.to_string()),
        (
            "X-Hub-Signature-256",
            vane::serve::sign(secret.as_bytes(), body),
        ),
        ("Content-Type", "application/json".to_string()),
    ]
}

pub fn post(url: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
    let client = reqwest::blocking::Client::new();
    let mut request = client.post(url).body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.text().unwrap_or_default())
}

#[test]
fn serve_logs_json_lines_with_deliveries_runs_and_no_body_or_secret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    std::fs::write(
        dir.path().join("workflows/on-push.yaml"),
        "version: 1\nname: on-push\non: { push: {} }\nsteps:\n  - run: echo ran\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("vane.yaml"),
        "version: 1\nserve:\n  webhooks:\n    github: { secret: { env: HOOK_SECRET } }\n",
    )
    .unwrap();
    let daemon = Logged::start(
        dir.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "-v",
            "--log-format",
            "json",
        ],
        &[("HOOK_SECRET", SECRET)],
    );
    let payload = std::fs::read(fixture("github/push.branch.json")).unwrap();
    // A marker inside the body: it must never reach the log, whether the delivery is refused
    // or run.
    let marker = "body-marker-7Hq2";
    let mut value: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    value["head_commit"]["message"] = serde_json::json!(marker);
    let body = serde_json::to_vec(&value).unwrap();
    let url = format!("{}/hooks/github", daemon.url);
    let refused = post(&url, &github_headers("bad-1", &body, "wrong"), &body);
    assert_eq!(refused.0, 401, "{refused:?}");
    let accepted = post(&url, &github_headers("good-1", &body, SECRET), &body);
    assert_eq!(accepted.0, 202, "{accepted:?}");
    daemon.wait_for_line("finished: success");
    let (code, lines) = daemon.stop();
    assert_eq!(code, 0, "{}", lines.join("\n"));

    let objects: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"))
        })
        .collect();
    for object in &objects {
        let keys: Vec<&String> = object.as_object().unwrap().keys().collect();
        assert_eq!(keys[..3], ["timestamp", "level", "message"], "{object}");
        assert!(object.get("fields").is_none() && object.get("target").is_none());
    }
    let find = |message: &str| {
        objects
            .iter()
            .find(|object| object["message"].as_str().unwrap().contains(message))
            .unwrap_or_else(|| panic!("no {message:?} in {objects:#?}"))
    };
    let listening = find("listening on http://");
    assert_eq!(listening["level"], "INFO");
    assert_eq!(listening["address"], daemon_url(&lines));
    assert_eq!(listening["endpoints"], "github /hooks/github");
    assert_eq!(listening["queue"], "sqlite .vane/state.db");
    let rejected = find("delivery rejected");
    assert_eq!(rejected["level"], "WARN");
    assert_eq!(rejected["reason"], "bad_signature");
    assert_eq!(rejected["endpoint"], "github");
    assert_eq!(rejected["status"], 401);
    let queued = find("delivery good-1 accepted");
    assert_eq!(queued["delivery"], "good-1");
    let started = find("started for event good-1");
    let run = started["run"].as_str().unwrap();
    assert_eq!(run.len(), 36, "a run id: {started}");
    assert_eq!(started["workflow"], "on-push");
    let finished = find("finished: success");
    assert_eq!(finished["run"], run);
    assert_eq!(finished["status"], "success");
    find("shutting down");
    assert_eq!(objects.last().unwrap()["message"], "stopped");
    let all = lines.join("\n");
    assert!(!all.contains(marker), "the body reached the log:\n{all}");
    assert!(!all.contains(SECRET), "the secret reached the log:\n{all}");
}

fn daemon_url(lines: &[String]) -> String {
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let message = first["message"].as_str().unwrap();
    let rest = message.split("http://").nth(1).unwrap();
    format!("http://{}", rest.split_whitespace().next().unwrap())
}

#[test]
fn text_logs_carry_level_and_fields_and_vane_log_filters_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    std::fs::write(
        dir.path().join("workflows/any.yaml"),
        "version: 1\nname: any\non: { push: {} }\nsteps:\n  - run: echo ran\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("vane.yaml"),
        "version: 1\nserve:\n  webhooks:\n    github: { secret: { env: HOOK_SECRET } }\n",
    )
    .unwrap();
    let daemon = Logged::start(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0"],
        &[("HOOK_SECRET", SECRET), ("VANE_LOG", "vane::pipeline=warn")],
    );
    let url = format!("{}/hooks/github", daemon.url);
    let body = std::fs::read(fixture("github/push.branch.json")).unwrap();
    assert_eq!(
        post(&url, &github_headers("t-1", &body, SECRET), &body).0,
        202
    );
    let state = dir.path().join(".vane/state.db");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !state.exists()
        || rusqlite::Connection::open(&state)
            .unwrap()
            .query_row(
                "SELECT count(*) FROM runs WHERE status = 'success'",
                [],
                |row| row.get::<_, i64>(0),
            )
            .unwrap_or(0)
            == 0
    {
        assert!(Instant::now() < deadline, "the run did not happen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, lines) = daemon.stop();
    assert_eq!(code, 0);
    let listening = &lines[0];
    assert!(
        listening.contains(" INFO listening on http://127.0.0.1:"),
        "{listening}"
    );
    assert!(
        listening.contains("queue=sqlite .vane/state.db"),
        "{listening}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line.contains("delivery t-1 accepted")),
        "{lines:#?}"
    );
    // `vane::pipeline=warn` hides the runs' lines, not the others.
    assert!(
        !lines.iter().any(|line| line.contains("started for event")),
        "{lines:#?}"
    );
    assert!(
        lines.last().unwrap().ends_with(" INFO stopped"),
        "{lines:#?}"
    );
}

#[test]
fn poll_every_and_worker_log_their_start_and_stop_as_json() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    for (args, ready) in [
        (
            &["poll", "--every", "1s", "--log-format", "json"][..],
            "polling every 1s",
        ),
        (&["worker", "--log-format", "json"][..], "worker started"),
    ] {
        let daemon = Logged::start_until(dir.path(), args, &[], ready);
        let (code, lines) = daemon.stop();
        assert_eq!(code, 0, "{lines:#?}");
        let objects: Vec<serde_json::Value> = lines
            .iter()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
            .collect();
        let first = objects
            .iter()
            .find(|object| object["message"].as_str().unwrap().contains(ready))
            .unwrap();
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["queue"], "sqlite .vane/state.db");
        assert_eq!(objects.last().unwrap()["message"], "stopped");
    }
}
