//! Step kinds end to end (SPEC §2.3): `notify` / `http` against a real local server, `run` timeouts,
//! retries, `$VANE_OUTPUT`, status functions, `render` confinement and `emit` chains.

use crate::support::{Run, Vane, workflow_entry};
use serde_json::{Value, json};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One request as the capture server saw it.
type Recorded = crate::support::Request;

/// Starts an HTTP server on an ephemeral port that records every request and answers `status`
/// with a small JSON body. Returns its base URL (`http://127.0.0.1:PORT`) and the recordings.
fn capture_server(status: u16) -> (String, Receiver<Recorded>) {
    crate::support::http_server(move |_| {
        (
            status,
            vec![("Content-Type", "application/json".to_string())],
            r#"{"ok":true}"#.to_string(),
        )
    })
}

/// A secret URL must appear in neither stream, not even its `host:port` part (`***` instead).
fn assert_never_shown(run: &Run, url: &str) {
    let address = url.trim_start_matches("http://");
    for (stream, text) in [("stdout", run.stdout()), ("stderr", run.stderr())] {
        assert!(
            !text.contains(address),
            "{stream} shows the secret `{url}`:\n{text}"
        );
    }
}

/// The envelope vane reads on stdin.
fn envelope(kind: &str, data: Value) -> String {
    json!({"type": kind, "data": data}).to_string()
}

/// `vane run --json` on one event, in a folder holding one workflow.
fn run_one(workflow: &str, event: &str) -> Vane {
    Vane::new()
        .workflow("t.yaml", workflow)
        .args(&["run", "--json"])
        .stdin(event)
}

/// The steps of workflow `name` in one `--json` event object.
fn steps_of<'a>(event: &'a Value, name: &str) -> &'a [Value] {
    workflow_entry(event, name)["run"]["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("workflow `{name}` has no run: {event}"))
}

/// The step `id` of workflow `name`.
fn step<'a>(event: &'a Value, name: &str, id: &str) -> &'a Value {
    steps_of(event, name)
        .iter()
        .find(|step| step["id"] == id)
        .unwrap_or_else(|| panic!("no step `{id}` in workflow `{name}`: {event}"))
}

/// A number that differs between runs and tests, for names nothing else uses.
fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|time| time.subsec_nanos())
        .unwrap_or(0);
    format!("{}{:09}", std::process::id(), nanos)
}

/// Text with everything that breaks hand-built JSON: quotes, a backslash, a newline, unicode.
const TRICKY: &str = "Deploy \"api\" \\ ok\nline 2 ✓ — ü";

#[test]
fn notify_sends_each_service_its_native_json_and_masks_the_webhook_secret() {
    let (url, requests) = capture_server(200);
    let workflow = r#"
version: 1
name: t
on: { deploy: {} }
secrets: [HOOK_URL]
steps:
  - id: slack
    notify:
      slack: { webhook: "{{ secrets.HOOK_URL }}/slack" }
      text: "{{ event.data.text }}"
  - id: discord
    notify:
      discord: { webhook: "{{ secrets.HOOK_URL }}/discord" }
      title: Deploy
      text: "{{ event.data.text }}"
      severity: success
  - id: teams
    notify:
      teams: { webhook: "{{ secrets.HOOK_URL }}/teams" }
      title: Deploy
      text: "{{ event.data.text }}"
  - id: hook
    notify:
      webhook: { url: "{{ secrets.HOOK_URL }}/hook" }
      title: Deploy
      text: "{{ event.data.text }}"
      severity: warning
      fields: { env: prod, replicas: 3 }
"#;
    let run = run_one(workflow, &envelope("deploy", json!({"text": TRICKY})))
        .env("HOOK_URL", &url)
        .run()
        .expect_code(0);

    // The webhook URL is the credential: it must not leak anywhere vane writes.
    assert_never_shown(&run, &url);
    let output = &run.json_lines()[0];
    for id in ["slack", "discord", "teams", "hook"] {
        let step = step(output, "t", id);
        assert_eq!(step["status"], "success", "{step}");
        assert_eq!(step["kind"], "notify", "{step}");
        assert_eq!(step["outputs"], json!({"status": 200}), "{step}");
        assert!(
            step["rendered"].to_string().contains("***"),
            "the URL is not masked: {step}"
        );
    }

    let recorded: Vec<Recorded> = requests.try_iter().collect();
    assert_eq!(recorded.len(), 4, "{recorded:#?}");
    let by_path = |path: &str| {
        recorded
            .iter()
            .find(|request| request.url == path)
            .unwrap_or_else(|| panic!("nothing sent to {path}"))
    };
    for request in &recorded {
        assert_eq!(request.method, "POST", "{request:?}");
        assert!(
            request
                .header("Content-Type")
                .is_some_and(|value| value.starts_with("application/json")),
            "{request:?}"
        );
    }

    // Slack: `text` as the fallback, and a Block Kit section whose mrkdwn text is the message.
    let slack = by_path("/slack").json();
    assert_eq!(slack["text"], TRICKY);
    let section = slack["blocks"]
        .as_array()
        .and_then(|blocks| {
            blocks
                .iter()
                .find(|block| block["type"] == "section" && block.get("text").is_some())
        })
        .unwrap_or_else(|| panic!("no text section: {slack}"));
    assert_eq!(section["text"]["type"], "mrkdwn");
    assert_eq!(section["text"]["text"], TRICKY);

    // Discord: one embed carrying the message.
    let discord = by_path("/discord").json();
    assert_eq!(discord["embeds"][0]["description"], TRICKY);
    assert_eq!(discord["embeds"][0]["title"], "Deploy");

    // Teams: a message with one Adaptive Card whose TextBlocks hold the title and the text.
    let teams = by_path("/teams").json();
    assert_eq!(teams["type"], "message");
    let attachment = &teams["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(attachment["content"]["type"], "AdaptiveCard");
    let texts: Vec<&Value> = attachment["content"]["body"]
        .as_array()
        .map(|body| {
            body.iter()
                .filter(|block| block["type"] == "TextBlock")
                .map(|block| &block["text"])
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(texts, [&json!("Deploy"), &json!(TRICKY)], "{teams}");

    // The generic webhook: a plain document, field values as text.
    let hook = by_path("/hook").json();
    assert_eq!(
        hook,
        json!({"text": TRICKY, "title": "Deploy", "severity": "warning", "fields": {"env": "prod", "replicas": "3"}})
    );
}

#[test]
fn notify_fails_the_run_when_the_service_answers_an_error() {
    let (url, requests) = capture_server(500);
    let workflow = r#"
version: 1
name: t
on: { deploy: {} }
secrets: [HOOK_URL]
steps:
  - id: slack
    notify:
      slack: { webhook: "{{ secrets.HOOK_URL }}/slack" }
      text: hello
"#;
    let run = run_one(workflow, &envelope("deploy", json!({})))
        .env("HOOK_URL", &url)
        .run()
        .expect_code(1);
    let output = &run.json_lines()[0];
    let slack = step(output, "t", "slack");
    assert_eq!(slack["status"], "failure");
    let error = slack["error"].as_str().unwrap_or_default();
    assert!(error.contains("HTTP status 500"), "{error}");
    assert_eq!(workflow_entry(output, "t")["run"]["status"], "failure");
    assert_eq!(
        requests.try_iter().count(),
        1,
        "notify is not retried unless asked to"
    );
    assert_never_shown(&run, &url);
}

#[test]
fn http_json_bodies_keep_the_types_of_rendered_values() {
    let (url, requests) = capture_server(200);
    let workflow = r#"
version: 1
name: t
on: { deploy: {} }
secrets: [HOOK_URL]
steps:
  - id: call
    http:
      url: "{{ secrets.HOOK_URL }}/api"
      json: { n: "{{ event.data.n }}", s: "x" }
"#;
    let run = run_one(workflow, &envelope("deploy", json!({"n": 5})))
        .env("HOOK_URL", &url)
        .run()
        .expect_code(0);
    let recorded: Vec<Recorded> = requests.try_iter().collect();
    assert_eq!(recorded.len(), 1, "{recorded:#?}");
    assert_eq!(recorded[0].method, "POST", "a body makes POST the default");
    assert_eq!(recorded[0].url, "/api");
    // 5, not "5": a `json:` body is built as a value, not by pasting text.
    assert_eq!(recorded[0].json(), json!({"n": 5, "s": "x"}));

    let output = &run.json_lines()[0];
    let call = step(output, "t", "call");
    assert_eq!(call["status"], "success", "{call}");
    assert_eq!(call["outputs"]["status"], 200);
    assert_eq!(call["outputs"]["json"], json!({"ok": true}));
    assert_eq!(call["rendered"]["http"]["json"], json!({"n": 5, "s": "x"}));
    assert_never_shown(&run, &url);
}

/// Every process whose command line contains `marker` (zombies have an empty one).
fn processes_with(marker: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|byte| byte.is_ascii_digit())
        })
        .filter_map(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline
                .contains(marker)
                .then(|| format!("{}: {cmdline}", entry.file_name().to_string_lossy()))
        })
        .collect()
}

#[test]
fn a_timeout_stops_the_script_and_its_children() {
    // A sleep length no other process uses, so a survivor can be found by its command line. One
    // child ignores SIGTERM and outlives the shell: it must go too, not be left orphaned.
    let marker = format!("60.{}", unique());
    let workflow = format!(
        r#"
version: 1
name: t
on: {{ deploy: {{}} }}
steps:
  - id: slow
    timeout: 1s
    run: sleep {marker} & (trap '' TERM; sleep {marker}) & sleep {marker}; wait
"#
    );
    let started = Instant::now();
    let run = run_one(&workflow, &envelope("deploy", json!({}))).run();
    let elapsed = started.elapsed();
    let run = run.expect_code(1);
    assert!(elapsed < Duration::from_secs(7), "took {elapsed:?}");
    let slow = step(&run.json_lines()[0], "t", "slow").clone();
    assert_eq!(slow["status"], "failure");
    let error = slow["error"].as_str().unwrap_or_default();
    assert!(error.contains("timed out after 1s"), "{error}");

    // The group is killed before vane exits; allow the kernel a moment to tear it down.
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut left = processes_with(&marker);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        left = processes_with(&marker);
    }
    assert!(left.is_empty(), "processes left behind: {left:#?}");
}

#[test]
fn retry_runs_a_step_again_until_it_succeeds_or_attempts_run_out() {
    let workflow = r#"
version: 1
name: t
on: { deploy: {} }
steps:
  - id: flaky
    retry: { attempts: 3, backoff: 10ms }
    run: n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; [ $n -ge 3 ]
  - id: broken
    retry: { attempts: 3, backoff: 10ms }
    run: echo x >> tries; exit 7
"#;
    let run = run_one(workflow, &envelope("deploy", json!({})))
        .run()
        .expect_code(1);
    let output = &run.json_lines()[0];
    let flaky = step(output, "t", "flaky");
    assert_eq!(flaky["status"], "success", "{flaky}");
    assert_eq!(flaky["attempts"], 3);
    let broken = step(output, "t", "broken");
    assert_eq!(broken["status"], "failure", "{broken}");
    assert_eq!(broken["attempts"], 3);
    assert!(
        broken["error"]
            .as_str()
            .unwrap_or_default()
            .contains("exit code 7"),
        "{broken}"
    );
    assert_eq!(workflow_entry(output, "t")["run"]["status"], "failure");
    // The attempts really ran: one line per try, and no fourth.
    assert_eq!(
        std::fs::read_to_string(run.dir.join("count"))
            .unwrap()
            .trim(),
        "3"
    );
    assert_eq!(
        std::fs::read_to_string(run.dir.join("tries"))
            .unwrap()
            .lines()
            .count(),
        3
    );
}

#[test]
fn vane_output_lines_and_blocks_become_outputs_for_later_steps() {
    let workflow = r#"
version: 1
name: t
on: { deploy: {} }
steps:
  - id: first
    run: |
      echo "version=1.2.3" >> "$VANE_OUTPUT"
      printf 'notes<<EOF\nline one\nline "two" $HOME\nEOF\n' >> "$VANE_OUTPUT"
  - id: second
    run: |
      echo "v={{ steps.first.outputs.version }}"
      printf '%s\n' {{ steps.first.outputs.notes }}
"#;
    let run = run_one(workflow, &envelope("deploy", json!({})))
        .run()
        .expect_code(0);
    let output = &run.json_lines()[0];
    let notes = "line one\nline \"two\" $HOME";
    let first = step(output, "t", "first");
    assert_eq!(first["outputs"]["version"], "1.2.3", "{first}");
    assert_eq!(first["outputs"]["notes"], notes, "{first}");
    assert_eq!(first["outputs"]["exit_code"], 0);

    let second = step(output, "t", "second");
    assert_eq!(second["status"], "success", "{second}");
    let rendered = second["rendered"]["run"].as_str().unwrap_or_default();
    assert!(rendered.contains("v=1.2.3"), "{rendered}");
    // The block arrives whole and verbatim: one argument, nothing expanded.
    assert_eq!(
        second["outputs"]["stdout"],
        format!("v=1.2.3\n{notes}"),
        "{second}"
    );
}

#[test]
fn status_functions_and_continue_on_error_decide_which_steps_run() {
    let workflow = r#"
version: 1
name: t
on: { deploy: {} }
steps:
  - id: soft
    continue-on-error: true
    run: exit 3
  - id: after-soft
    run: echo "after {{ steps.soft.outcome }}"
  - id: hard
    run: exit 4
  - id: plain
    run: echo never
  - id: on-failure
    if: failure()
    run: echo handled
  - id: always
    if: always()
    run: echo always
"#;
    let run = run_one(workflow, &envelope("deploy", json!({})))
        .run()
        .expect_code(1);
    let output = &run.json_lines()[0];
    let statuses: Vec<(&str, &str)> = steps_of(output, "t")
        .iter()
        .map(|step| {
            (
                step["id"].as_str().unwrap_or_default(),
                step["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("soft", "failure"),
            ("after-soft", "success"),
            ("hard", "failure"),
            ("plain", "skipped"),
            ("on-failure", "success"),
            ("always", "success"),
        ]
    );
    assert_eq!(
        step(output, "t", "after-soft")["outputs"]["stdout"],
        "after failure"
    );
    assert_eq!(
        step(output, "t", "on-failure")["outputs"]["stdout"],
        "handled"
    );
    assert_eq!(workflow_entry(output, "t")["run"]["status"], "failure");
}

#[test]
fn continue_on_error_alone_does_not_fail_the_run() {
    let workflow = r#"
version: 1
name: t
on: { deploy: {} }
steps:
  - id: soft
    continue-on-error: true
    run: exit 3
  - id: next
    run: echo ran
"#;
    let run = run_one(workflow, &envelope("deploy", json!({})))
        .run()
        .expect_code(0);
    let output = &run.json_lines()[0];
    assert_eq!(step(output, "t", "soft")["status"], "failure");
    assert_eq!(step(output, "t", "next")["status"], "success");
    assert_eq!(workflow_entry(output, "t")["run"]["status"], "success");
}

const RENDER_TEMPLATE: &str = "name = {{ vars.name }}\nn = {{ event.data.n }}\n";

/// A workflow with one `render` step writing `app.conf.j2` to `to`.
fn render_workflow(to: &str) -> String {
    format!(
        r#"
version: 1
name: t
on: {{ deploy: {{}} }}
steps:
  - id: write
    render: app.conf.j2
    to: "{to}"
    vars: {{ name: api }}
"#
    )
}

#[test]
fn render_refuses_paths_outside_the_workspace_and_writes_nothing() {
    let id = unique();
    let absolute = std::env::temp_dir().join(format!("vane-render-absolute-{id}.conf"));
    let cases = [
        (
            format!("../vane-render-outside-{id}.conf"),
            "leaves the workspace",
        ),
        (
            format!("sub/../../vane-render-outside-{id}.conf"),
            "leaves the workspace",
        ),
        (absolute.display().to_string(), "absolute path"),
    ];
    for (to, expected) in cases {
        let run = Vane::new()
            .workflow("t.yaml", &render_workflow(&to))
            .template("app.conf.j2", RENDER_TEMPLATE)
            .args(&["run", "--json"])
            .stdin(envelope("deploy", json!({"n": 5})))
            .run()
            .expect_code(1);
        let write = step(&run.json_lines()[0], "t", "write").clone();
        assert_eq!(write["status"], "failure", "{to}: {write}");
        let error = write["error"].as_str().unwrap_or_default();
        assert!(error.contains(expected), "{to}: {error}");
        let target = if to.starts_with('/') {
            absolute.clone()
        } else {
            run.dir.join(&to)
        };
        assert!(!target.exists(), "{to}: wrote {}", target.display());
    }
}

#[test]
fn render_writes_the_file_once_and_reports_no_change_the_second_time() {
    let vane = Vane::new()
        .workflow("t.yaml", &render_workflow("out/app.conf"))
        .template("app.conf.j2", RENDER_TEMPLATE)
        .args(&["run", "--json"])
        .stdin(envelope("deploy", json!({"n": 5})));
    // Two runs in the same folder: the builder's command can be run more than once.
    let again = || Run {
        output: vane.command().output().expect("vane runs"),
        dir: vane.path().to_path_buf(),
    };

    let first = again().expect_code(0);
    let expected = "name = api\nn = 5\n";
    let written =
        std::fs::read_to_string(first.dir.join("out/app.conf")).expect("the rendered file");
    assert_eq!(written, expected);
    let write = step(&first.json_lines()[0], "t", "write").clone();
    assert_eq!(write["status"], "success", "{write}");
    assert_eq!(write["outputs"]["path"], "out/app.conf");
    assert_eq!(write["outputs"]["changed"], true);
    use sha2::Digest;
    assert_eq!(
        write["outputs"]["sha256"],
        hex::encode(sha2::Sha256::digest(expected.as_bytes()))
    );

    let second = again().expect_code(0);
    let write_again = step(&second.json_lines()[0], "t", "write").clone();
    assert_eq!(write_again["outputs"]["changed"], false, "{write_again}");
    assert_eq!(write_again["outputs"]["sha256"], write["outputs"]["sha256"]);
}

#[test]
fn plan_shows_the_render_diff_and_writes_nothing() {
    let workflow = render_workflow("app.conf");
    // Against an existing file: the diff shows the line that changes.
    let run = Vane::new()
        .workflow("t.yaml", &workflow)
        .template("app.conf.j2", RENDER_TEMPLATE)
        .file("app.conf", "name = api\nn = 4\n")
        .args(&["plan"])
        .stdin(envelope("deploy", json!({"n": 5})))
        .run()
        .expect_code(0);
    let stdout = run.stdout();
    assert!(stdout.contains("-n = 4"), "{stdout}");
    assert!(stdout.contains("+n = 5"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(run.dir.join("app.conf")).unwrap(),
        "name = api\nn = 4\n"
    );

    // A file that does not exist yet: `--json` carries the diff, and the file is still not there.
    let run = Vane::new()
        .workflow("t.yaml", &workflow)
        .template("app.conf.j2", RENDER_TEMPLATE)
        .args(&["plan", "--json"])
        .stdin(envelope("deploy", json!({"n": 5})))
        .run()
        .expect_code(0);
    let write = step(&run.json_lines()[0], "t", "write").clone();
    assert_eq!(write["status"], "planned", "{write}");
    let diff = write["diff"].as_str().unwrap_or_default();
    assert!(
        diff.contains("+name = api") && diff.contains("+n = 5"),
        "{diff}"
    );
    assert!(!run.dir.join("app.conf").exists(), "plan wrote the file");
}

#[test]
fn emit_sends_a_child_event_through_matching() {
    let parent = r#"
version: 1
name: parent
on: { deploy: {} }
steps:
  - id: announce
    emit: { type: child, subject: api, data: { n: "{{ event.data.n }}" } }
"#;
    let child = r#"
version: 1
name: child
on: { child: {} }
steps:
  - id: got
    run: echo "got {{ event.data.n }} from {{ event.source }}"
"#;
    let run = Vane::new()
        .workflow("parent.yaml", parent)
        .workflow("child.yaml", child)
        .args(&["run", "--json"])
        .stdin(envelope("deploy", json!({"n": 5})))
        .run()
        .expect_code(0);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 2, "{}", run.stdout());
    let (first, second) = (&lines[0], &lines[1]);
    assert_eq!(first["event"]["type"], "deploy");
    assert_eq!(workflow_entry(first, "parent")["matched"], true);
    assert_eq!(workflow_entry(first, "child")["matched"], false);

    let event = &second["event"];
    assert_eq!(event["type"], "child");
    assert_eq!(event["source"], "vane");
    assert_eq!(event["subject"], "api");
    assert_eq!(event["parent"], first["event"]["id"]);
    assert_eq!(event["data"], json!({"n": 5}));
    assert_eq!(
        step(first, "parent", "announce")["outputs"]["id"],
        event["id"]
    );
    assert_eq!(workflow_entry(second, "parent")["matched"], false);
    let got = step(second, "child", "got");
    assert_eq!(got["status"], "success", "{got}");
    assert_eq!(got["outputs"]["stdout"], "got 5 from vane");
}

#[test]
fn an_emit_loop_stops_after_eight_levels() {
    let workflow = r#"
version: 1
name: loop
on: { again: {} }
steps:
  - id: echo
    emit: { type: again }
"#;
    let run = Vane::new()
        .workflow("loop.yaml", workflow)
        .args(&["run", "--json"])
        .stdin(envelope("again", json!({})))
        .run()
        .expect_code(1);
    let lines = run.json_lines();
    // The outside event and eight emitted ones; the ninth emit is refused.
    assert_eq!(lines.len(), 9, "{}", run.stdout());
    for pair in lines.windows(2) {
        assert_eq!(pair[1]["event"]["parent"], pair[0]["event"]["id"]);
    }
    for line in &lines[..8] {
        assert_eq!(step(line, "loop", "echo")["status"], "success", "{line}");
    }
    let last = step(&lines[8], "loop", "echo");
    assert_eq!(last["status"], "failure", "{last}");
    let error = last["error"].as_str().unwrap_or_default();
    assert!(error.contains("deeper than 8"), "{error}");
}

#[test]
fn a_connection_error_names_the_origin_and_never_the_path_or_query() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let workflow = format!(
        "version: 1\nname: w\non: {{ push: {{}} }}\nsteps:\n  - http:\n      url: http://127.0.0.1:{port}/hooks/SECRETPATH?token=SECRETQUERY\n"
    );
    let run = Vane::new()
        .workflow("w.yaml", &workflow)
        .args(&["run"])
        .stdin(r#"{"type": "push", "data": {}}"#)
        .run()
        .expect_code(1);
    let output = format!("{}{}", run.stdout(), run.stderr());
    assert!(
        output.contains(&format!("cannot connect to http://127.0.0.1:{port}: ")),
        "{output}"
    );
    assert!(
        !output.contains("SECRETPATH") && !output.contains("SECRETQUERY"),
        "{output}"
    );
}
