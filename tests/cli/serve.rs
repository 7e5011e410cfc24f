//! `vane serve` end to end (SPEC §6): real signed GitHub payloads over HTTP to the real daemon;
//! every refusal leaves the queue untouched; accepted deliveries survive `kill -9`.

use crate::support::fixture;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const SECRET: &str = "It's a Secret to Everybody";

/// A project folder with a vane.yaml serving GitHub and generic webhooks.
fn project(workflow: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    std::fs::write(dir.path().join("workflows/on-push.yaml"), workflow).unwrap();
    std::fs::write(
        dir.path().join("vane.yaml"),
        "version: 1\nserve:\n  max-body: 1000000\n  webhooks:\n    github: { secret: { env: HOOK_SECRET } }\n    \
         gitlab: { token: { env: HOOK_SECRET } }\n    \
         generic: { hmac: { header: X-Signature, secret: { env: HOOK_SECRET } }, type: alert }\n    \
         cloudevents: {}\n",
    )
    .unwrap();
    dir
}

const ON_PUSH: &str = "version: 1\nname: on-push\non: { push: {}, alert: {}, deploy.requested: {} }\n\
steps:\n  - run: echo ran {{ event.id }} nice=$(nice)\n";

/// A running `vane serve`, killed when dropped.
struct Daemon {
    child: Child,
    url: String,
}

impl Daemon {
    fn start(dir: &Path) -> Daemon {
        let (child, url) = crate::support::spawn_serve(dir, &[], &[("HOOK_SECRET", SECRET)]);
        Daemon { child, url }
    }

    fn post(&self, path: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
        let client = reqwest::blocking::Client::new();
        let mut request = client
            .post(format!("{}{path}", self.url))
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        (status, response.text().unwrap_or_default())
    }

    /// Status of a signed-looking GitHub delivery that declares `length` bytes of body and sends
    /// only the first 64 KiB of them before reading the answer.
    fn post_declaring(&self, length: usize) -> u16 {
        use std::io::{Read, Write};
        let address = self.url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let head = format!(
            "POST /hooks/github HTTP/1.1\r\nHost: {address}\r\nX-GitHub-Event: push\r\n\
             X-Hub-Signature-256: sha256=00\r\nContent-Type: application/json\r\n\
             Content-Length: {length}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
        let _ = stream.write_all(&vec![b' '; 64 * 1024]);
        let mut answer = [0u8; 64];
        let read = stream.read(&mut answer).unwrap();
        let line = String::from_utf8_lossy(&answer[..read]).to_string();
        line.split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {line:?}"))
    }

    fn get(&self, path: &str) -> String {
        reqwest::blocking::get(format!("{}{path}", self.url))
            .unwrap()
            .text()
            .unwrap()
    }

    fn stop(mut self) -> i32 {
        unsafe_term(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_term(pid: u32) {
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
}

fn github(kind: &str, delivery: &str, body: &[u8], secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-GitHub-Event", kind.to_string()),
        ("X-GitHub-Delivery", delivery.to_string()),
        (
            "X-Hub-Signature-256",
            vane::serve::sign(secret.as_bytes(), body),
        ),
        ("Content-Type", "application/json".to_string()),
    ]
}

fn state(dir: &Path) -> PathBuf {
    dir.join(".vane/state.db")
}

/// Rows in a table of the store (0 where the store does not exist yet).
fn rows(dir: &Path, table: &str) -> i64 {
    if !state(dir).exists() {
        return 0;
    }
    let connection = rusqlite::Connection::open(state(dir)).unwrap();
    connection
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .unwrap()
}

/// The recorded runs' event ids.
fn run_events(dir: &Path) -> Vec<String> {
    if !state(dir).exists() {
        return Vec::new();
    }
    let connection = rusqlite::Connection::open(state(dir)).unwrap();
    let mut statement = connection
        .prepare("SELECT event_id FROM runs WHERE status = 'success' ORDER BY event_id")
        .unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_signed_delivery_runs_and_every_bad_one_is_refused_without_a_trace() {
    let dir = project(ON_PUSH);
    let daemon = Daemon::start(dir.path());
    let payload = std::fs::read(fixture("github/push.branch.json")).unwrap();

    // Refusals first: none may reach the queue or the record of deliveries.
    let wrong = daemon.post(
        "/hooks/github",
        &github("push", "bad-1", &payload, "not the secret"),
        &payload,
    );
    assert_eq!(wrong.0, 401, "{wrong:?}");
    let mut unsigned = github("push", "bad-2", &payload, SECRET);
    unsigned.retain(|(name, _)| *name != "X-Hub-Signature-256");
    assert_eq!(daemon.post("/hooks/github", &unsigned, &payload).0, 401);
    let malformed = b"{\"ref\": \"refs/heads/main\", ";
    let bad_json = daemon.post(
        "/hooks/github",
        &github("push", "bad-3", malformed, SECRET),
        malformed,
    );
    assert_eq!(bad_json.0, 400, "{bad_json:?}");
    // 30 MB, over the configured 1 MB limit (and GitHub's own 25 MB): answered from the headers,
    // before the body is read — so the request is written by hand, as a sender that stops
    // writing once answered.
    assert_eq!(daemon.post_declaring(30 * 1024 * 1024), 413);
    assert_eq!(rows(dir.path(), "queue"), 0);
    assert_eq!(rows(dir.path(), "deliveries"), 0);

    let accepted = daemon.post(
        "/hooks/github",
        &github("push", "delivery-1", &payload, SECRET),
        &payload,
    );
    assert_eq!(accepted.0, 202, "{accepted:?}");
    wait_for("the run", || run_events(dir.path()) == ["delivery-1"]);
    // A replay of the same delivery id: 200, and no second run.
    let replayed = daemon.post(
        "/hooks/github",
        &github("push", "delivery-1", &payload, SECRET),
        &payload,
    );
    assert_eq!(replayed.0, 200, "{replayed:?}");
    assert!(replayed.1.contains("duplicate"));
    let metrics = daemon.get("/metrics");
    assert!(
        metrics.contains(
            "vane_webhook_rejected_total{endpoint=\"github\",reason=\"bad_signature\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("reason=\"unsigned\"} 1"), "{metrics}");
    assert!(metrics.contains("reason=\"malformed\"} 1"), "{metrics}");
    assert!(metrics.contains("reason=\"too_large\"} 1"), "{metrics}");
    assert!(metrics.contains("vane_webhook_duplicates_total{endpoint=\"github\"} 1"));
    assert!(
        metrics.contains("vane_runs_total{status=\"success\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("vane_step_duration_seconds_count{kind=\"run\"} 1"));
    let response = reqwest::blocking::get(format!("{}/metrics", daemon.url)).unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(
        metrics.contains("\nvane_build_info{version=\""),
        "{metrics}"
    );
    promtool_check(&metrics);
    assert!(daemon.get("/healthz").contains("\"status\":\"ok\""));
    assert_eq!(daemon.stop(), 0);
    assert_eq!(run_events(dir.path()), ["delivery-1"]);
    assert_eq!(rows(dir.path(), "queue"), 0);
}

#[test]
fn gitlab_generic_and_cloudevents_endpoints_verify_and_queue() {
    let dir = project(ON_PUSH);
    let daemon = Daemon::start(dir.path());
    let gitlab = br#"{"object_kind":"push","ref":"refs/heads/main","checkout_sha":"abc","project":{"path_with_namespace":"acme/api"}}"#;
    let token = |value: &str| {
        vec![
            ("X-Gitlab-Event", "Push Hook".to_string()),
            ("X-Gitlab-Token", value.to_string()),
            ("X-Gitlab-Event-UUID", "gl-1".to_string()),
        ]
    };
    assert_eq!(daemon.post("/hooks/gitlab", &token("wrong"), gitlab).0, 401);
    assert_eq!(daemon.post("/hooks/gitlab", &token(SECRET), gitlab).0, 202);

    let alert = br#"{"severity":"high"}"#;
    let signed = |body: &[u8]| {
        vec![
            ("X-Signature", vane::serve::sign(SECRET.as_bytes(), body)),
            ("X-Delivery-Id", "alert-1".to_string()),
        ]
    };
    assert_eq!(daemon.post("/hooks/generic", &signed(b"{}"), alert).0, 401);
    assert_eq!(daemon.post("/hooks/generic", &signed(alert), alert).0, 202);

    let binary = vec![
        ("ce-specversion", "1.0".to_string()),
        ("ce-type", "deploy.requested".to_string()),
        ("ce-source", "/ci".to_string()),
        ("ce-id", "ce-1".to_string()),
        ("Content-Type", "application/json".to_string()),
    ];
    assert_eq!(
        daemon
            .post("/hooks/cloudevents", &binary, br#"{"service":"api"}"#)
            .0,
        202
    );
    let structured =
        br#"{"specversion":"1.0","type":"deploy.requested","source":"/ci","id":"ce-2","data":{}}"#;
    let headers = vec![("Content-Type", "application/cloudevents+json".to_string())];
    assert_eq!(
        daemon.post("/hooks/cloudevents", &headers, structured).0,
        202
    );
    wait_for("four runs", || run_events(dir.path()).len() == 4);
    // A CloudEvent is known by its source and id together.
    assert_eq!(
        run_events(dir.path()),
        ["/ci ce-1", "/ci ce-2", "alert-1", "gl-1"]
    );
    assert_eq!(daemon.stop(), 0);
    // Runs yield the CPU to the webhook intake: their processes inherit the workers' nice 10.
    let connection = rusqlite::Connection::open(state(dir.path())).unwrap();
    let outputs: Vec<String> = connection
        .prepare("SELECT outputs FROM steps")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(outputs.len(), 4);
    for output in outputs {
        assert!(output.contains("nice=10"), "{output}");
    }
}

#[test]
fn sigterm_lets_the_run_in_flight_finish_and_exits_0() {
    let dir = project(
        "version: 1\nname: on-push\non: { push: {} }\nsteps:\n  - run: sleep 1 && echo done\n",
    );
    let daemon = Daemon::start(dir.path());
    let payload = std::fs::read(fixture("github/push.branch.json")).unwrap();
    let answer = daemon.post(
        "/hooks/github",
        &github("push", "slow-1", &payload, SECRET),
        &payload,
    );
    assert_eq!(answer.0, 202);
    // The run has started (it is `running` in the store) when the signal arrives.
    wait_for("the run to start", || rows(dir.path(), "runs") == 1);
    assert_eq!(daemon.stop(), 0);
    assert_eq!(run_events(dir.path()), ["slow-1"]);
    assert_eq!(rows(dir.path(), "queue"), 0);
}

#[test]
fn every_accepted_delivery_runs_exactly_once_across_a_kill_9() {
    let dir = project(ON_PUSH);
    let payload = std::fs::read(fixture("github/push.branch.json")).unwrap();
    let mut accepted: Vec<String> = Vec::new();
    // Requests cut off by the kill: stored or not, the sender never heard (it would redeliver).
    let mut unanswered: Vec<String> = Vec::new();
    let mut next = 0;
    // Deliveries are posted from a few threads while the daemon is killed under them.
    for round in 0..2 {
        let daemon = Daemon::start(dir.path());
        let url = daemon.url.clone();
        let stop_at = Instant::now() + Duration::from_millis(700 + 300 * round);
        let senders: Vec<_> = (0..4)
            .map(|thread| {
                let url = url.clone();
                let payload = payload.clone();
                let first = next + thread * 100_000;
                std::thread::spawn(move || {
                    let client = reqwest::blocking::Client::new();
                    let mut mine = Vec::new();
                    let mut cut = None;
                    for index in first.. {
                        if Instant::now() > stop_at + Duration::from_secs(1) {
                            break;
                        }
                        let delivery = format!("d-{index}");
                        let mut request = client.post(format!("{url}/hooks/github"));
                        for (name, value) in github("push", &delivery, &payload, SECRET) {
                            request = request.header(name, value);
                        }
                        match request.body(payload.clone()).send() {
                            Ok(response) if response.status().as_u16() == 202 => {
                                mine.push(delivery)
                            }
                            Ok(response) => panic!("unexpected {}", response.status()),
                            // The daemon was killed: this one was never acknowledged.
                            Err(_) => {
                                cut = Some(delivery);
                                break;
                            }
                        }
                    }
                    (mine, cut)
                })
            })
            .collect();
        std::thread::sleep(stop_at.saturating_duration_since(Instant::now()));
        let mut daemon = daemon;
        daemon.child.kill().unwrap();
        daemon.child.wait().unwrap();
        eprintln!(
            "killed: {} queued, {} runs recorded",
            rows(dir.path(), "queue"),
            rows(dir.path(), "runs")
        );
        for sender in senders {
            let (mine, cut) = sender.join().unwrap();
            accepted.extend(mine);
            unanswered.extend(cut);
        }
        next += 1_000_000;
    }
    assert!(
        accepted.len() > 20,
        "too few deliveries: {}",
        accepted.len()
    );
    // A last daemon finds what the killed ones left, and runs it.
    let daemon = Daemon::start(dir.path());
    wait_for("the queue to drain", || rows(dir.path(), "queue") == 0);
    assert_eq!(daemon.stop(), 0);
    let ran = run_events(dir.path());
    let unique: std::collections::BTreeSet<&String> = ran.iter().collect();
    assert_eq!(unique.len(), ran.len(), "a delivery ran twice");
    for delivery in &accepted {
        assert!(unique.contains(delivery), "accepted {delivery} never ran");
    }
    for delivery in &ran {
        assert!(
            accepted.contains(delivery) || unanswered.contains(delivery),
            "{delivery} ran but was never sent"
        );
    }
    let all_runs = rows(dir.path(), "runs");
    assert_eq!(
        all_runs as usize,
        ran.len(),
        "no interrupted or doubled run rows"
    );
}

#[test]
fn a_missing_webhook_secret_stops_serve_before_it_listens() {
    let dir = project(ON_PUSH);
    let output = Command::new(assert_cmd::cargo::cargo_bin!("vane"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("HOOK_SECRET")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "serve.webhooks.github.secret: the environment variable `HOOK_SECRET` is not set"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("listening"));
}

#[test]
fn serve_runs_its_pollers_into_the_same_queue() {
    let dir = project(
        "version: 1\nname: on-metric\non: { metric.load: {} }\nsteps:\n  - run: echo load {{ event.data.value }}\n",
    );
    // A resource whose value changes on every poll: each poll is one event.
    let counter = std::sync::atomic::AtomicU64::new(0);
    let (url, _requests) = crate::support::http_server(move |_| {
        let value = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        (200, Vec::new(), format!("{{\"value\": {value}}}"))
    });
    let config = std::fs::read_to_string(dir.path().join("vane.yaml")).unwrap();
    std::fs::write(
        dir.path().join("vane.yaml"),
        format!(
            "{config}sources:\n  - name: load\n    every: 1s\n    http: {{ url: \"{url}/load\", type: metric.load, emit: changed }}\n"
        ),
    )
    .unwrap();
    let daemon = Daemon::start(dir.path());
    wait_for("two polled events to run", || {
        run_events(dir.path()).len() >= 2
    });
    assert_eq!(daemon.stop(), 0);
}

/// `promtool check metrics` on a `/metrics` text (Prometheus's own linter of the exposition
/// format), when promtool is installed (Debian's `prometheus`; `.ci/run` installs it); else the
/// check is skipped, saying so.
fn promtool_check(metrics: &str) {
    use std::io::Write;
    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        println!("skipped: `promtool` is not installed (apt-get install prometheus)");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics:\n{}{}\n{metrics}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
