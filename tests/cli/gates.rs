//! Gates through the real binary: throttle, debounce, window and correlate, their explanations,
//! their state in the store, `vane gates`, timers fired by `poll --once` and by `vane serve`
//! across a kill -9.

use crate::support::Vane;
use std::path::Path;
use std::time::{Duration, Instant};

const THROTTLE: &str = "version: 1\nname: alert-page\non:\n  alert:\nthrottle:\n  key: \"{{ event.data.alert }}\"\n  once-within: 30m\n  unless-changed: \"{{ event.data.status }}\"\nsteps:\n  - id: page\n    run: echo page {{ event.data.alert }} {{ event.data.status }} after {{ gate.throttle.suppressed }}\n";

const DEBOUNCE: &str = "version: 1\nname: sensor\non:\n  sensor:\ndebounce:\n  key: \"{{ event.data.device }}\"\n  quiet: 30s\n  max-wait: 5m\n  keep: last\nsteps:\n  - id: act\n    run: echo {{ event.data.device }} value {{ event.data.value }} after {{ gate.debounce.events | length }} events\n";

fn alerts(count: usize, status: &str) -> String {
    (0..count)
        .map(|_| {
            format!(
                "{{\"type\":\"alert\",\"source\":\"am\",\"data\":{{\"alert\":\"web-1\",\"status\":\"{status}\"}}}}\n"
            )
        })
        .collect()
}

fn last_line(text: &str) -> String {
    text.lines().last().unwrap_or_default().to_string()
}

fn runs(dir: &Path) -> Vec<(String, String)> {
    let connection = rusqlite::Connection::open(dir.join(".vane/state.db")).unwrap();
    let mut statement = connection
        .prepare("SELECT workflow, status FROM runs ORDER BY started")
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn in_dir(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: &str) -> (i32, String, String) {
    let output = assert_cmd::Command::cargo_bin("vane")
        .unwrap()
        .current_dir(dir)
        .args(args)
        .env_remove("VANE_STATE")
        .env_remove("VANE_WORKFLOWS")
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .write_stdin(stdin.as_bytes().to_vec())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn project(workflows: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    for (name, text) in workflows {
        std::fs::write(dir.path().join("workflows").join(name), text).unwrap();
    }
    dir
}

#[test]
fn a_storm_of_500_identical_alerts_runs_once_a_changed_status_again_and_again_after_once_within() {
    let dir = project(&[("page.yaml", THROTTLE)]);
    let at = |time: &str| [("VANE_NOW", time.to_string())];
    let now = at("2026-12-04T12:00:03Z");
    let env: Vec<(&str, &str)> = now.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, stdout, _) = in_dir(dir.path(), &["run"], &env, &alerts(500, "firing"));
    assert_eq!(code, 0);
    assert_eq!(
        last_line(&stdout),
        "500 events, 1 run, 1 succeeded, 0 failed"
    );
    // The suppressed events are counted on the gate row, not recorded as runs.
    let connection = rusqlite::Connection::open(dir.path().join(".vane/state.db")).unwrap();
    let suppressed: i64 = connection
        .query_row(
            "SELECT suppressed FROM gates WHERE workflow = 'alert-page' AND key = 'web-1'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(suppressed, 499);
    assert_eq!(runs(dir.path()).len(), 1);

    // The plan says why, and changes nothing.
    let (code, stdout, _) = in_dir(
        dir.path(),
        &["plan", "--explain"],
        &[("VANE_NOW", "2026-12-04T12:10:00Z")],
        &alerts(1, "firing"),
    );
    assert_eq!(code, 0);
    let run_id: String = connection
        .query_row("SELECT id FROM runs", [], |row| row.get(0))
        .unwrap();
    assert!(
        stdout.contains(&format!(
            "· alert-page  throttle: key `web-1` ran at 12:00:03Z (run {}…); suppressed until 12:30:03Z (once-within 30m; 500 suppressed so far)",
            &run_id[..8]
        )),
        "{stdout}"
    );
    let (_, stdout, _) = in_dir(
        dir.path(),
        &["plan", "--json"],
        &[("VANE_NOW", "2026-12-04T12:10:00Z")],
        &alerts(1, "firing"),
    );
    let line: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    let entry = &line["workflows"][0];
    assert_eq!(entry["matched"], false);
    assert_eq!(entry["gate"]["gate"], "throttle");
    assert_eq!(entry["gate"]["decision"], "suppress");
    assert_eq!(entry["gate"]["key"], "web-1");
    assert_eq!(entry["gate"]["due"], "2026-12-04T12:30:03Z");
    assert!(
        entry["reason"]
            .as_str()
            .unwrap()
            .starts_with("throttle: key `web-1` ran at 12:00:03Z")
    );
    let unchanged: i64 = connection
        .query_row("SELECT suppressed FROM gates", [], |row| row.get(0))
        .unwrap();
    assert_eq!(unchanged, 499, "a plan never changes gate state");

    // A changed `unless-changed` value runs again.
    let (_, stdout, _) = in_dir(
        dir.path(),
        &["run"],
        &[("VANE_NOW", "2026-12-04T12:11:00Z")],
        &alerts(3, "resolved"),
    );
    assert_eq!(last_line(&stdout), "3 events, 1 run, 1 succeeded, 0 failed");
    // After once-within, a run again.
    let (_, stdout, _) = in_dir(
        dir.path(),
        &["run"],
        &[("VANE_NOW", "2026-12-04T12:41:01Z")],
        &alerts(2, "resolved"),
    );
    assert_eq!(last_line(&stdout), "2 events, 1 run, 1 succeeded, 0 failed");
    assert_eq!(runs(dir.path()).len(), 3);
}

#[test]
fn timed_test_cases_debounce_window_and_correlate_on_a_simulated_clock() {
    let sensor_events: String = (0..20)
        .map(|i| format!("      - {{at: {i}s, inline: {{type: sensor, source: mqtt, data: {{device: d1, value: {i}}}}}}}\n"))
        .collect();
    let never_quiet: String = (0..40)
        .map(|i| format!("      - {{at: {}s, inline: {{type: sensor, source: mqtt, data: {{device: d2, value: {i}}}}}}}\n", i * 10))
        .collect();
    let window = "version: 1\nname: error-rate\non:\n  error:\nwindow:\n  key: \"{{ event.data.host }}\"\n  within: 1m\n  count: 5\nsteps:\n  - id: alert\n    run: echo {{ gate.window.count }} errors on {{ gate.key }}\n";
    let window_end = "version: 1\nname: error-digest\non:\n  error:\nwindow:\n  key: \"{{ event.data.host }}\"\n  within: 1m\n  count: 2\n  flush: end\nsteps:\n  - id: digest\n    run: echo {{ gate.window.events | length }} errors\n";
    let correlate = "version: 1\nname: ship\non:\n  workflow_run:\n  pull_request:\ncorrelate:\n  key: \"{{ event.data.sha }}\"\n  within: 1h\n  all-of:\n    ci: { on: workflow_run, if: \"event.data.conclusion == 'success'\" }\n    approved: { on: pull_request, if: \"event.data.label == 'ship-it'\" }\n  on-timeout: run\nsteps:\n  - id: deploy\n    run: echo deploy {{ gate.key }} missing={{ gate.correlation.missing | join(',') }}\n";
    let errors = |count: usize, host: &str| -> String {
        (0..count)
            .map(|i| format!("      - {{at: {}s, inline: {{type: error, source: app, data: {{host: {host}, n: {i}}}}}}}\n", i * 5))
            .collect()
    };
    let tests = format!(
        "- name: twenty readings then quiet run once with the last\n  events:\n{sensor_events}  expect:\n    runs: 1\n    steps:\n      sensor.act.run: {{equals: \"echo 'd1' value '19' after '20' events\"}}\n\
         - name: max-wait bounds a never-quiet stream\n  events:\n{never_quiet}  expect:\n    runs: 2\n\
         - name: four errors do not alert and the fifth does\n  events:\n{}      - {{at: 30s, inline: {{type: error, source: app, data: {{host: web-1, n: 4}}}}, expect: {{runs: 1, steps: {{error-rate.alert.run: {{equals: \"echo '5' errors on 'web-1'\"}}}}}}}}\n  expect:\n    runs: 1\n\
         - name: ci and approval for one sha deploy it\n  events:\n      - {{at: 0s, inline: {{type: workflow_run, source: github, data: {{sha: abc, conclusion: success}}}}, expect: {{runs: 0}}}}\n      - {{at: 10m, inline: {{type: pull_request, source: github, data: {{sha: abc, label: ship-it}}}}, expect: {{runs: 1}}}}\n  expect:\n    runs: 1\n    steps:\n      ship.deploy.run: {{equals: \"echo deploy 'abc' missing=''\"}}\n\
         - name: different shas never meet and time out with what is missing\n  events:\n      - {{at: 0s, inline: {{type: workflow_run, source: github, data: {{sha: abc, conclusion: success}}}}}}\n      - {{at: 1m, inline: {{type: pull_request, source: github, data: {{sha: def, label: ship-it}}}}, expect: {{runs: 0}}}}\n  expect:\n    runs: 2\n    steps:\n      ship.deploy.run: {{equals: \"echo deploy 'abc' missing='approved'\"}}\n",
        errors(4, "web-1")
    );
    let _ = window_end;
    let run = Vane::new()
        .workflow("sensor.yaml", DEBOUNCE)
        .workflow("error-rate.yaml", window)
        .workflow("ship.yaml", correlate)
        .file("workflows/gates.test.yaml", &tests)
        .args(&["test"])
        .run();
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout(), run.stderr());
    assert!(run.stdout().contains("5 passed"), "{}", run.stdout());
}

#[test]
fn a_flush_end_window_runs_once_at_its_end_with_every_event_and_a_wrong_count_fails_the_case() {
    let window_end = "version: 1\nname: error-digest\non:\n  error:\nwindow:\n  key: \"{{ event.data.host }}\"\n  within: 1m\n  count: 2\n  flush: end\nsteps:\n  - id: digest\n    run: echo {{ gate.window.events | length }} errors\n";
    let events: String = (0..6)
        .map(|i| format!("      - {{at: {}s, inline: {{type: error, source: app, data: {{host: web-1, n: {i}}}}}, expect: {{runs: 0}}}}\n", i * 5))
        .collect();
    let tests = format!(
        "- name: one digest at the end\n  events:\n{events}  expect:\n    runs: 1\n    steps:\n      error-digest.digest.run: {{equals: \"echo 6 errors\"}}\n\
         - name: a wrong count\n  events:\n{events}  expect:\n    runs: 2\n"
    );
    let run = Vane::new()
        .workflow("digest.yaml", window_end)
        .file("workflows/digest.test.yaml", &tests)
        .args(&["test"])
        .run();
    assert_eq!(run.code(), 1, "{}\n{}", run.stdout(), run.stderr());
    let stdout = run.stdout();
    assert!(stdout.contains("runs: 2"), "{stdout}");
    assert!(stdout.contains("1 run(s) (error-digest)"), "{stdout}");
}

#[test]
fn gate_keys_are_checked_at_load_with_positions() {
    let run = Vane::new()
        .workflow(
            "bad.yaml",
            "version: 1\nname: bad\non:\n  alert:\nthrottle:\n  key: \"{{ event.data.alert \"\n  once-within: soon\n  limit: 3\nsteps:\n  - run: echo\n",
        )
        .workflow(
            "two.yaml",
            "version: 1\nname: two\non:\n  alert:\nthrottle:\n  key: x\n  once-within: 1m\ndebounce:\n  key: x\n  quiet: 1s\nsteps:\n  - run: echo\n",
        )
        .workflow(
            "window.yaml",
            "version: 1\nname: window\non:\n  alert:\nwindow:\n  key: x\n  within: 1m\n  count: 0\n  flush: sometimes\nsteps:\n  - run: echo\n",
        )
        .args(&["validate"])
        .run();
    assert_eq!(run.code(), 2);
    let out = run.stdout() + &run.stderr();
    for expected in [
        "workflows/bad.yaml:6:8:",
        "workflows/bad.yaml:7:16: error: throttle.once-within: invalid duration `soon`",
        "throttle: set `once-within` or `limit` + `per`, not both",
        "workflows/two.yaml:5:1: error: one gate per workflow: `debounce` and `throttle` are both set",
        "workflows/window.yaml:8:10: error: window.count: must be at least 1",
        "workflows/window.yaml:9:10: error: window.flush: `sometimes` is not one of `count`, `end`",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
}

#[test]
fn vane_gates_lists_and_clears_keys_and_max_keys_refuses_new_ones() {
    let workflow = "version: 1\nname: sensor\non:\n  sensor:\ndebounce:\n  key: \"{{ event.data.device }}\"\n  quiet: 30s\n  max-keys: 2\nsteps:\n  - run: echo\n";
    let dir = project(&[("sensor.yaml", workflow)]);
    let events: String = ["d1", "d2", "d3"]
        .iter()
        .map(|device| {
            format!(
                "{{\"type\":\"sensor\",\"source\":\"mqtt\",\"data\":{{\"device\":\"{device}\"}}}}\n"
            )
        })
        .collect();
    let now = [("VANE_NOW", "2026-12-04T10:00:00Z")];
    let (code, stdout, _) = in_dir(dir.path(), &["run", "--explain"], &now, &events);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains(
            "· sensor  debounce: key `d3` refused: the workflow has 2 live keys (max-keys 2)"
        ),
        "{stdout}"
    );
    let (_, stdout, _) = in_dir(dir.path(), &["gates"], &[], "");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "sensor  debounce  `d1`  1 event(s) since 2026-12-04T10:00:00Z, last at 2026-12-04T10:00:00Z  next 2026-12-04T10:00:30Z",
            "sensor  debounce  `d2`  1 event(s) since 2026-12-04T10:00:00Z, last at 2026-12-04T10:00:00Z  next 2026-12-04T10:00:30Z",
        ]
    );
    assert!(
        lines[2].starts_with("sensor  refused 1 new key(s) over max-keys (last `d3` at "),
        "{stdout}"
    );
    assert_eq!(lines.len(), 3);
    let (_, stdout, _) = in_dir(
        dir.path(),
        &["gates", "--json", "--workflow", "sensor"],
        &[],
        "",
    );
    let listing: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(listing["gates"].as_array().unwrap().len(), 2);
    assert_eq!(listing["gates"][0]["key"], "d1");
    assert_eq!(listing["gates"][0]["due"], "2026-12-04T10:00:30Z");
    assert_eq!(listing["refused"][0]["count"], 1);
    let (_, stdout, _) = in_dir(dir.path(), &["gates", "clear", "sensor", "d1"], &[], "");
    assert_eq!(stdout, "cleared 1 key(s) of sensor: `d1`\n");
    let (_, stdout, _) = in_dir(dir.path(), &["gates", "clear", "sensor", "--json"], &[], "");
    assert_eq!(
        stdout,
        "{\"workflow\":\"sensor\",\"key\":null,\"cleared\":1}\n"
    );
    let (_, stdout, _) = in_dir(dir.path(), &["gates"], &[], "");
    assert_eq!(stdout, "no live gate keys\n");
}

#[test]
fn poll_once_fires_an_overdue_debounce_once() {
    let dir = project(&[("sensor.yaml", DEBOUNCE)]);
    let events: String = (0..3)
        .map(|i| format!("{{\"type\":\"sensor\",\"source\":\"mqtt\",\"data\":{{\"device\":\"d1\",\"value\":{i}}}}}\n"))
        .collect();
    let (_, stdout, _) = in_dir(
        dir.path(),
        &["run"],
        &[("VANE_NOW", "2026-12-04T10:00:00Z")],
        &events,
    );
    assert_eq!(
        last_line(&stdout),
        "3 events, 0 runs, 0 succeeded, 0 failed"
    );
    // Not yet quiet for 30 s: nothing fires.
    let (code, stdout, _) = in_dir(
        dir.path(),
        &["poll", "--once"],
        &[("VANE_NOW", "2026-12-04T10:00:20Z")],
        "",
    );
    assert_eq!(code, 0);
    assert_eq!(
        last_line(&stdout),
        "0 events, 0 runs, 0 succeeded, 0 failed"
    );
    let (code, stdout, _) = in_dir(
        dir.path(),
        &["poll", "--once"],
        &[("VANE_NOW", "2026-12-04T10:05:00Z")],
        "",
    );
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("d1 value 2 after 3 events"), "{stdout}");
    assert_eq!(last_line(&stdout), "1 event, 1 run, 1 succeeded, 0 failed");
    let (_, stdout, _) = in_dir(
        dir.path(),
        &["poll", "--once"],
        &[("VANE_NOW", "2026-12-04T10:06:00Z")],
        "",
    );
    assert_eq!(
        last_line(&stdout),
        "0 events, 0 runs, 0 succeeded, 0 failed"
    );
    assert_eq!(
        runs(dir.path()),
        vec![("sensor".to_string(), "success".to_string())]
    );
}

#[test]
fn a_debounce_survives_a_kill_9_of_serve_and_runs_once_at_the_right_time() {
    const SECRET: &str = "gate-secret";
    let workflow = "version: 1\nname: sensor\non:\n  sensor:\ndebounce:\n  key: \"{{ event.data.device }}\"\n  quiet: 3s\nsteps:\n  - run: echo {{ gate.debounce.count }}\n";
    let dir = project(&[("sensor.yaml", workflow)]);
    std::fs::write(
        dir.path().join("vane.yaml"),
        "version: 1\nserve:\n  webhooks:\n    generic: { hmac: { header: X-Signature, secret: { env: HOOK_SECRET } }, type: sensor }\n",
    )
    .unwrap();
    let (mut first, url) = crate::support::spawn_serve(dir.path(), &[], &[("HOOK_SECRET", SECRET)]);
    let client = reqwest::blocking::Client::new();
    for i in 0..3 {
        let body = format!("{{\"device\":\"d1\",\"value\":{i}}}");
        let status = client
            .post(format!("{url}/hooks/generic"))
            .header(
                "X-Signature",
                vane::serve::sign(SECRET.as_bytes(), body.as_bytes()),
            )
            .header("X-Delivery-Id", format!("reading-{i}"))
            .body(body)
            .send()
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, 202);
    }
    let database = dir.path().join(".vane/state.db");
    let count = |sql: &str| -> i64 {
        rusqlite::Connection::open(&database)
            .unwrap()
            .query_row(sql, [], |row| row.get(0))
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while count("SELECT COALESCE(SUM(json_extract(state, '$.count')), 0) FROM gates") < 3 {
        assert!(
            Instant::now() < deadline,
            "the debounce never held the events"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let last_event_ms = count("SELECT json_extract(state, '$.last_ms') FROM gates");
    // Mid-debounce: kill -9.
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(count("SELECT count(*) FROM runs"), 0);
    std::thread::sleep(Duration::from_secs(1));
    let (mut second, _) = crate::support::spawn_serve(dir.path(), &[], &[("HOOK_SECRET", SECRET)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while count("SELECT count(*) FROM runs WHERE status = 'success'") < 1 {
        assert!(
            Instant::now() < deadline,
            "the debounced run never happened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A while longer: still exactly one.
    std::thread::sleep(Duration::from_secs(2));
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(count("SELECT count(*) FROM runs"), 1);
    assert_eq!(count("SELECT count(*) FROM gates"), 0);
    let started: String = rusqlite::Connection::open(&database)
        .unwrap()
        .query_row("SELECT started FROM runs", [], |row| row.get(0))
        .unwrap();
    let started_ms = chrono::DateTime::parse_from_rfc3339(&started)
        .unwrap()
        .timestamp_millis();
    assert!(
        started_ms >= last_event_ms + 3_000,
        "the run started {} ms after the last event, before the 3 s of quiet",
        started_ms - last_event_ms
    );
    let event: String = rusqlite::Connection::open(&database)
        .unwrap()
        .query_row("SELECT event_id FROM runs", [], |row| row.get(0))
        .unwrap();
    assert_eq!(event, format!("gate:sensor:d1:{}", last_event_ms + 3_000));
}

#[test]
fn the_gallery_gates_pass_their_timed_tests() {
    let root = crate::support::root();
    let files: Vec<String> = [
        "alert-storm",
        "flapping-sensor",
        "error-rate",
        "deploy-after-approval",
    ]
    .iter()
    .map(|name| {
        root.join(format!("workflows/{name}.test.yaml"))
            .display()
            .to_string()
    })
    .collect();
    let run = Vane::new()
        .args(&["--workflows", &root.join("workflows").display().to_string()])
        .args(&["--templates", &root.join("templates").display().to_string()])
        .args(&["test"])
        .args(&files)
        .run();
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout(), run.stderr());
    assert!(
        run.stdout().ends_with("6 passed, 0 failed\n"),
        "{}",
        run.stdout()
    );
}

#[test]
fn serve_counts_what_a_gate_drops_in_metrics() {
    const SECRET: &str = "gate-metrics";
    let dir = project(&[("page.yaml", THROTTLE)]);
    std::fs::write(
        dir.path().join("vane.yaml"),
        "version: 1\nserve:\n  webhooks:\n    generic: { hmac: { header: X-Signature, secret: { env: HOOK_SECRET } }, type: alert }\n",
    )
    .unwrap();
    let (mut daemon, url) =
        crate::support::spawn_serve(dir.path(), &[], &[("HOOK_SECRET", SECRET)]);
    let client = reqwest::blocking::Client::new();
    for i in 0..4 {
        let body = "{\"alert\":\"web-1\",\"status\":\"firing\"}";
        let status = client
            .post(format!("{url}/hooks/generic"))
            .header(
                "X-Signature",
                vane::serve::sign(SECRET.as_bytes(), body.as_bytes()),
            )
            .header("X-Delivery-Id", format!("alert-{i}"))
            .body(body)
            .send()
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, 202);
    }
    let wanted = "vane_gate_suppressed_total{workflow=\"alert-page\",gate=\"throttle\"} 3";
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut metrics = String::new();
    while !metrics.contains(wanted) {
        assert!(Instant::now() < deadline, "no {wanted:?} in\n{metrics}");
        std::thread::sleep(Duration::from_millis(100));
        metrics = reqwest::blocking::get(format!("{url}/metrics"))
            .unwrap()
            .text()
            .unwrap();
    }
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert_eq!(runs(dir.path()).len(), 1);
}

#[test]
fn a_worker_fires_a_due_debounce_from_the_store_once() {
    let dir = project(&[("sensor.yaml", DEBOUNCE)]);
    let events: String = (0..2)
        .map(|i| format!("{{\"type\":\"sensor\",\"source\":\"mqtt\",\"data\":{{\"device\":\"d1\",\"value\":{i}}}}}\n"))
        .collect();
    let (_, stdout, _) = in_dir(
        dir.path(),
        &["run"],
        &[("VANE_NOW", "2026-12-04T10:00:00Z")],
        &events,
    );
    assert_eq!(
        last_line(&stdout),
        "2 events, 0 runs, 0 succeeded, 0 failed"
    );
    let start = || {
        std::process::Command::new(assert_cmd::cargo::cargo_bin!("vane"))
            .current_dir(dir.path())
            .arg("worker")
            .env_remove("VANE_STATE")
            .env_remove("VANE_WORKFLOWS")
            .env("VANE_NOW", "2026-12-04T10:01:00Z")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // Two workers on one store: the fire's id and its transaction make one run.
    let (mut first, mut second) = (start(), start());
    let deadline = Instant::now() + Duration::from_secs(30);
    while runs(dir.path())
        .iter()
        .filter(|(_, status)| status == "success")
        .count()
        < 1
    {
        assert!(
            Instant::now() < deadline,
            "the worker never fired the debounce"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    for worker in [&mut first, &mut second] {
        std::process::Command::new("kill")
            .args(["-TERM", &worker.id().to_string()])
            .status()
            .unwrap();
        assert!(worker.wait().unwrap().success());
    }
    assert_eq!(
        runs(dir.path()),
        vec![("sensor".to_string(), "success".to_string())]
    );
}

#[test]
fn a_window_in_the_store_runs_on_the_fifth_error_with_all_five() {
    let window = "version: 1\nname: error-rate\non:\n  error:\nwindow:\n  key: \"{{ event.data.host }}\"\n  within: 1m\n  count: 5\nsteps:\n  - id: alert\n    run: echo {{ gate.window.events | map(attribute='data') | map(attribute='n') | join('-') }}\n";
    let dir = project(&[("window.yaml", window)]);
    let errors = |range: std::ops::Range<usize>| -> String {
        range
            .map(|n| format!("{{\"type\":\"error\",\"source\":\"app\",\"data\":{{\"host\":\"web-1\",\"n\":{n}}}}}\n"))
            .collect()
    };
    let now = [("VANE_NOW", "2026-12-04T10:00:00Z")];
    let (_, stdout, _) = in_dir(dir.path(), &["run"], &now, &errors(0..4));
    assert_eq!(
        last_line(&stdout),
        "4 events, 0 runs, 0 succeeded, 0 failed"
    );
    let (_, stdout, _) = in_dir(dir.path(), &["run"], &now, &errors(4..5));
    assert!(stdout.contains("0-1-2-3-4"), "{stdout}");
    assert_eq!(last_line(&stdout), "1 event, 1 run, 1 succeeded, 0 failed");
    let connection = rusqlite::Connection::open(dir.path().join(".vane/state.db")).unwrap();
    let kept: i64 = connection
        .query_row("SELECT count(*) FROM gate_events", [], |row| row.get(0))
        .unwrap();
    assert_eq!(kept, 0, "a window that ran keeps nothing");
}
