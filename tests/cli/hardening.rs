//! Hardening: hostile event data in bash arithmetic contexts, hostile files in the workflows
//! folder, hostile webhook requests, broken pipes and absurd values; every one refused with a
//! clear error, never run, never a panic.

use crate::support::Vane;

fn push_event(value: &str) -> String {
    serde_json::json!({"type": "push", "data": {"x": value}}).to_string()
}

/// Each bash arithmetic context, with a canary value that creates a file when bash runs it:
/// `validate` and `run` both refuse the workflow with the interpolation's position, and the
/// file never appears.
#[test]
fn event_data_in_arithmetic_contexts_is_a_load_error_and_never_runs() {
    let marker_dir = tempfile::tempdir().unwrap();
    let canary = marker_dir.path().join("pwned");
    let payload = format!("a[$(touch {})]", canary.display());
    let scripts = [
        (
            "[[ 1 -eq {{ event.data.x }} ]]",
            "an operand of `-eq` in `[[ … ]]`",
        ),
        (
            "[[ \"{{ event.data.x }}\" -lt 5 ]]",
            "an operand of `-lt` in `[[ … ]]`",
        ),
        (
            "(( {{ event.data.x }} > 0 ))",
            "inside an arithmetic expression",
        ),
        (
            "echo $(( {{ event.data.x }} + 1 ))",
            "inside an arithmetic expression",
        ),
        ("let n={{ event.data.x }}", "an argument of `let`"),
        (
            "declare -i n={{ event.data.x }}",
            "in an argument of `declare -i`",
        ),
        (
            "f() { local -i n='{{ event.data.x }}'; }; f",
            "in an argument of `local -i`",
        ),
        (
            "typeset -i n; n={{ event.data.x }}",
            "assigned to `n`, an integer variable",
        ),
        ("[[ -v {{ event.data.x }} ]]", "the operand of `-v`"),
        (
            "a[{{ event.data.x }}]=1",
            "in the array subscript of `a[…]=`",
        ),
    ];
    for (script, context) in scripts {
        let workflow = format!(
            "version: 1\nname: arith\non: {{ push: {{}} }}\nsteps:\n  - run: |\n      echo start\n      {script}\n"
        );
        let expected = format!(
            "workflows/arith.yaml:7:7: error: steps[0].run: `{{{{ event.data.x }}}}` is {context}"
        );
        for args in [&["validate"][..], &["run"][..]] {
            let run = Vane::new()
                .workflow("arith.yaml", &workflow)
                .args(args)
                .stdin(push_event(&payload))
                .run();
            assert_ne!(run.code(), 0, "{script}: {args:?} accepted it");
            assert_ne!(run.code(), 101, "{script}: panic");
            let all = format!("{}{}", run.stdout(), run.stderr());
            assert!(all.contains(&expected), "{script}: {args:?}\n{all}");
            assert!(
                all.contains("make it a number with `{{ event.data.x | int }}`"),
                "{all}"
            );
            assert!(!canary.exists(), "{script}: the value ran");
        }
    }
}

/// `>&word` with no descriptor before it: bash expands the word a second time when it is not a
/// number (the shell_rewriter fuzz target's third find). An interpolation there is refused at
/// load with its position, by `validate` and `run` alike; `2>&`, `&>` and `| int` are fine.
#[test]
fn a_value_after_a_bare_duplication_is_a_load_error_and_never_runs() {
    let marker_dir = tempfile::tempdir().unwrap();
    let canary = marker_dir.path().join("pwned");
    let payload = format!("x$(touch {})", canary.display());
    for script in [
        "echo hi >&{{ event.data.x }}",
        "echo hi >& '{{ event.data.x }}'",
    ] {
        let workflow = format!(
            "version: 1\nname: dup\non: {{ push: {{}} }}\nsteps:\n  - run: |\n      {script}\n"
        );
        for args in [&["validate"][..], &["run"][..]] {
            let run = Vane::new()
                .workflow("dup.yaml", &workflow)
                .args(args)
                .stdin(push_event(&payload))
                .run()
                .expect_code(2);
            let all = format!("{}{}", run.stdout(), run.stderr());
            assert!(
                all.contains(
                    "workflows/dup.yaml:6:7: error: steps[0].run: `{{ event.data.x }}` is the \
                     target of `>&`, which bash expands a second time when it is not a number"
                ),
                "{script}: {args:?}\n{all}"
            );
            assert!(!canary.exists(), "{script}: the value ran");
        }
    }
    let fine = "version: 1\nname: dup\non: { push: {} }\nsteps:\n  - run: |\n      \
        echo {{ event.data.x }} 2>&1 >&2\n      echo hi >&{{ event.data.n | int }}\n";
    let run = Vane::new()
        .workflow("dup.yaml", fine)
        .args(&["run", "--output", "all"])
        .stdin(serde_json::json!({"type": "push", "data": {"x": payload, "n": "1"}}).to_string())
        .run()
        .expect_code(0);
    assert!(run.stdout().contains("hi"), "{}", run.stdout());
    assert!(!canary.exists(), "the value ran");
}

/// With `| int` the value is a number: a number runs, the canary fails the step before bash
/// sees it.
#[test]
fn int_filtered_values_run_in_arithmetic_and_hostile_ones_fail_the_step() {
    let marker_dir = tempfile::tempdir().unwrap();
    let canary = marker_dir.path().join("pwned");
    let workflow = "version: 1\nname: arith\non: { push: {} }\nsteps:\n  - run: |\n      \
        [[ {{ event.data.x | int }} -eq 7 ]] && echo \"sum=$(( {{ event.data.x | int }} + 1 ))\"\n";
    let run = Vane::new()
        .workflow("arith.yaml", workflow)
        .args(&["run", "--json"])
        .stdin(push_event("7"))
        .run()
        .expect_code(0);
    assert!(run.stdout().contains("sum=8"), "{}", run.stdout());
    let run = Vane::new()
        .workflow("arith.yaml", workflow)
        .args(&["run"])
        .stdin(push_event(&format!("a[$(touch {})]", canary.display())))
        .run();
    assert_ne!(run.code(), 0);
    assert_ne!(run.code(), 101);
    assert!(!canary.exists(), "the value ran");
}

/// A script that is not valid shell is not run at all: bash goes on after a syntax error at the
/// next line (with `set +e`), which would run the lines of a multi-line value that was meant to
/// be quoted. The fuzzer's find (`fuzz/fuzz_targets/shell_rewriter.rs`), as a workflow would
/// meet it. A valid script with the same value runs and prints it.
#[test]
fn a_script_that_is_not_valid_shell_runs_nothing_not_even_the_lines_of_a_value() {
    let marker_dir = tempfile::tempdir().unwrap();
    let canary = marker_dir.path().join("pwned");
    let hostile = format!("a\ntouch {}\nb", canary.display());
    // `a=(` inside `a=(` is the error; the parser goes on inside the second value.
    let broken = "version: 1\nname: broken\non: { push: {} }\nsteps:\n  - run: |\n      \
        set +e\n      a=({{ event.data.x }} a=({{ event.data.x }}\n";
    for shell in ["bash", "sh"] {
        let workflow = broken.replace("  - run: |", &format!("  - shell: {shell}\n    run: |"));
        let run = Vane::new()
            .workflow("broken.yaml", &workflow)
            .args(&["run"])
            .stdin(push_event(&hostile))
            .run()
            .expect_code(1);
        assert!(!canary.exists(), "{shell}: the value's line ran");
        assert!(
            run.stdout().contains(&format!(
                "the script is not valid {shell} (nothing of it was run): "
            )),
            "{}",
            run.stdout()
        );
    }
    let fine = broken.replace(
        "a=({{ event.data.x }} a=({{ event.data.x }}",
        "a=({{ event.data.x }}) && echo \"${a[0]}\"",
    );
    let run = Vane::new()
        .workflow("broken.yaml", &fine)
        .args(&["run", "--output", "all"])
        .stdin(push_event(&hostile))
        .run()
        .expect_code(0);
    assert!(!canary.exists(), "the quoted value ran");
    assert!(
        run.stdout()
            .contains(&format!("touch {}", canary.display())),
        "{}",
        run.stdout()
    );
}

const SECRET: &str = "It's a Secret to Everybody";

/// A `vane serve` with GitHub and CloudEvents endpoints, killed when dropped.
struct Daemon {
    child: std::process::Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Daemon {
    fn start(workflow: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
        std::fs::write(dir.path().join("workflows/w.yaml"), workflow).unwrap();
        std::fs::write(
            dir.path().join("vane.yaml"),
            "version: 1\nserve:\n  webhooks:\n    github: { secret: { env: HOOK_SECRET } }\n    cloudevents: {}\n",
        )
        .unwrap();
        let (child, url) = crate::support::spawn_serve(dir.path(), &[], &[("HOOK_SECRET", SECRET)]);
        Daemon { child, url, dir }
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
        let mut request = reqwest::blocking::Client::new()
            .post(format!("{}{path}", self.url))
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        (status, response.text().unwrap_or_default())
    }

    /// The finished runs: event id and the step's stdout, by event id.
    fn runs(&self) -> Vec<(String, String)> {
        let path = self.dir.path().join(".vane/state.db");
        if !path.exists() {
            return Vec::new();
        }
        let connection = rusqlite::Connection::open(path).unwrap();
        let mut statement = connection
            .prepare(
                "SELECT runs.event_id, steps.outputs FROM runs JOIN steps ON steps.run_id = runs.id \
                 WHERE runs.status = 'success' ORDER BY runs.event_id",
            )
            .unwrap();
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn wait_for_runs(&self, count: usize) -> Vec<(String, String)> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let runs = self.runs();
            if runs.len() >= count {
                return runs;
            }
            assert!(std::time::Instant::now() < deadline, "timed out: {runs:?}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_github_signature_without_its_sha256_prefix_is_refused() {
    let daemon =
        Daemon::start("version: 1\nname: w\non: { push: {} }\nsteps:\n  - run: echo ran\n");
    let body = br#"{"ref":"refs/heads/main"}"#;
    let signature = vane::serve::sign(SECRET.as_bytes(), body);
    let bare = signature.trim_start_matches("sha256=");
    let headers = |signature: &str| {
        vec![
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", "d-1"),
            ("X-Hub-Signature-256", signature),
        ]
        .into_iter()
        .map(|(name, value)| (name, value.to_string()))
        .collect::<Vec<_>>()
    };
    let post = |signature: &str| {
        let headers = headers(signature);
        let borrowed: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        daemon.post("/hooks/github", &borrowed, body)
    };
    let refused = post(bare);
    assert_eq!(refused.0, 401, "{refused:?}");
    assert!(
        refused
            .1
            .contains("`X-Hub-Signature-256` does not match the body"),
        "{refused:?}"
    );
    assert_eq!(post(&signature).0, 202);
}

#[test]
fn cloudevents_are_read_as_the_http_binding_says() {
    let daemon = Daemon::start(
        "version: 1\nname: w\non: { deploy.requested: {} }\nsteps:\n  - run: echo \"subject={{ event.subject }} data={{ event.data }}\"\n",
    );
    let binary = |id: &'static str, source: &'static str, subject: &'static str| {
        vec![
            ("ce-specversion", "1.0"),
            ("ce-type", "deploy.requested"),
            ("ce-source", source),
            ("ce-id", id),
            ("ce-subject", subject),
        ]
    };
    // Percent-encoded header values are decoded; a bad escape or bytes that are not UTF-8
    // once decoded are a 400.
    let mut headers = binary("1", "/ci", "caf%C3%A9%20%22api%22");
    headers.push(("Content-Type", "application/json"));
    assert_eq!(daemon.post("/hooks/cloudevents", &headers, b"{}").0, 202);
    for bad in ["%C0%A0", "%G1", "50%"] {
        let mut headers = binary("bad", "/ci", bad);
        headers.push(("Content-Type", "application/json"));
        let answer = daemon.post("/hooks/cloudevents", &headers, b"{}");
        assert_eq!(answer.0, 400, "{bad}: {answer:?}");
        assert!(answer.1.contains("`ce-subject`"), "{answer:?}");
    }
    // The same id from another source is another event.
    let mut headers = binary("1", "/other", "s");
    headers.push(("Content-Type", "application/json"));
    assert_eq!(daemon.post("/hooks/cloudevents", &headers, b"{}").0, 202);
    // … and the same source and id again is a duplicate.
    assert_eq!(daemon.post("/hooks/cloudevents", &headers, b"{}").0, 200);
    // Media types are case-insensitive.
    let structured = br#"{"specversion":"1.0","type":"deploy.requested","source":"/ci","id":"2","subject":"s","data":{}}"#;
    let headers = [(
        "Content-Type",
        "Application/CloudEvents+JSON; charset=UTF-8",
    )];
    let answer = daemon.post("/hooks/cloudevents", &headers, structured);
    assert_eq!(answer.0, 202, "{answer:?}");
    // A binary body that is not UTF-8 is kept as base64.
    let mut headers = binary("3", "/ci", "s");
    headers.push(("Content-Type", "application/octet-stream"));
    assert_eq!(
        daemon
            .post("/hooks/cloudevents", &headers, &[0xff, 0x00, 0x80])
            .0,
        202
    );

    let runs = daemon.wait_for_runs(4);
    let ids: Vec<&str> = runs.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["/ci 1", "/ci 2", "/ci 3", "/other 1"]);
    assert!(
        runs[0].1.contains("subject=café \\\"api\\\" data={}"),
        "{:?}",
        runs[0]
    );
    assert!(runs[2].1.contains("data=/wCA"), "{:?}", runs[2]);
}

/// A pipe whose reading end is already closed: every write to it fails with `EPIPE`.
fn closed_pipe() -> std::process::Stdio {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    unsafe { libc::close(fds[0]) };
    unsafe { std::process::Stdio::from(std::fs::File::from_raw_fd(fds[1])) }
}

/// Every subcommand `vane help` lists, run with stdout closed in a starter project: none may
/// panic (exit 101). The long-running ones (`serve`, `worker`, `poll`) are stopped after a
/// moment if they are still up.
#[test]
fn no_subcommand_panics_on_a_closed_stdout() {
    let project = Vane::new().args(&["init"]).run().expect_code(0);
    let dir = project.dir;
    let help = Vane::new().args(&["help"]).run().stdout();
    let commands: Vec<String> = help
        .lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect();
    assert!(commands.len() >= 15, "{commands:?}");
    for command in &commands {
        let args: Vec<&str> = match command.as_str() {
            "run" | "plan" => vec![command, "--event", "events/push.json"],
            "dispatch" => vec![command, "release"],
            "completions" => vec![command, "bash"],
            "show" | "replay" => vec![command, "x"],
            "serve" => vec![command, "--listen", "127.0.0.1:0"],
            "init" => vec![command, "--force"],
            _ => vec![command],
        };
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("vane"))
            .current_dir(&dir)
            .args(&args)
            .env_remove("VANE_STATE")
            .env_remove("VANE_WORKFLOWS")
            .stdin(std::process::Stdio::null())
            .stdout(closed_pipe())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let daemon = matches!(command.as_str(), "serve" | "worker" | "poll");
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            let waited =
                daemon && std::time::Instant::now() + std::time::Duration::from_secs(18) > deadline;
            if waited || std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert!(
            daemon || status.is_some(),
            "`vane {}` hung with stdout closed",
            args.join(" ")
        );
        if let Some(status) = status {
            assert_ne!(
                status.code(),
                Some(101),
                "`vane {}` panicked",
                args.join(" ")
            );
        }
    }
}

#[test]
fn an_absurd_timeout_is_an_error_not_a_panic() {
    let run = Vane::new()
        .workflow(
            "w.yaml",
            "version: 1\nname: w\non: { push: {} }\ntimeout: 99999999999999999999d\nsteps:\n  - run: echo hi\n    timeout: 5000000000000000d\n",
        )
        .args(&["validate"])
        .run();
    assert_eq!(run.code(), 2, "{}{}", run.stdout(), run.stderr());
    let all = format!("{}{}", run.stdout(), run.stderr());
    assert!(
        all.contains("duration `99999999999999999999d` is too long: the most is 100 years"),
        "{all}"
    );
    assert!(
        all.contains("duration `5000000000000000d` is too long"),
        "{all}"
    );
}

#[test]
fn links_out_of_the_workflows_folder_are_refused_and_never_read() {
    let outside = tempfile::tempdir().unwrap();
    let credentials = outside.path().join(".git-credentials");
    std::fs::write(
        &credentials,
        "https://user:ghp_t0ken_never_shown@github.com\n",
    )
    .unwrap();
    let vane = Vane::new()
        .workflow(
            "ok.yaml",
            "version: 1\nname: ok\non: { push: {} }\nsteps:\n  - run: echo hi\n",
        )
        .file(
            "workflows/inside.txt",
            "version: 1\nname: inside\non: { push: {} }\nsteps:\n  - run: echo in\n",
        );
    std::os::unix::fs::symlink(&credentials, vane.path().join("workflows/creds.yaml")).unwrap();
    std::os::unix::fs::symlink("inside.txt", vane.path().join("workflows/inside.yaml")).unwrap();
    let dir = vane.path().to_path_buf();
    for args in [&["validate"][..], &["run", "--event", "e.json"][..]] {
        std::fs::write(dir.join("e.json"), push_event("x")).unwrap();
        let output = assert_cmd::Command::cargo_bin("vane")
            .unwrap()
            .current_dir(&dir)
            .args(args)
            .env_remove("VANE_WORKFLOWS")
            .env_remove("VANE_STATE")
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.status.code(), Some(2), "{args:?}: {all}");
        assert!(
            all.contains(&format!(
                "workflows/creds.yaml:1:1: error: the file is a symbolic link to `{}`, outside the workflows folder; vane does not follow it",
                std::fs::canonicalize(&credentials).unwrap().display()
            )),
            "{all}"
        );
        assert!(!all.contains("t0ken"), "{all}");
    }
    // A link inside the folder is read as the file it names.
    let run = Vane::new()
        .workflow(
            "a.yaml",
            "version: 1\nname: a\non: { push: {} }\nsteps:\n  - run: echo hi\n",
        )
        .file(
            "workflows/b.txt",
            "version: 1\nname: b\non: { push: {} }\nsteps:\n  - run: echo hi\n",
        );
    std::os::unix::fs::symlink("b.txt", run.path().join("workflows/b.yaml")).unwrap();
    let run = run.args(&["validate"]).run().expect_code(0);
    assert!(
        run.stdout().contains("2 workflows valid"),
        "{}",
        run.stdout()
    );
}

#[test]
fn yaml_errors_show_no_more_of_the_file_than_the_offending_line() {
    // A file that is one plain string over three lines: the message quotes none of it, and the
    // snippet under it shows the offending line only.
    let run = Vane::new()
        .workflow("w.yaml", "first secret line\nsecond secret line\nthird\n")
        .args(&["validate"])
        .run()
        .expect_code(2);
    assert_eq!(
        run.stdout(),
        "workflows/w.yaml:1:1: error: invalid type: a string, expected a mapping\n  |\n1 | first secret line\n  | ^^^^^\n0 workflows valid, 1 error, 0 warnings\n"
    );
    // A value of the line it is on is still quoted.
    let run = Vane::new()
        .workflow(
            "w.yaml",
            "version: 1\nname: w\non: { push: { branches: main } }\nsteps:\n  - run: echo\n",
        )
        .args(&["validate"])
        .run()
        .expect_code(2);
    assert!(run.stdout().contains("string `main`"), "{}", run.stdout());
}

#[test]
fn a_workflow_file_over_1_mib_is_refused() {
    let big = format!(
        "version: 1\nname: big\non: {{ push: {{}} }}\nsteps:\n  - run: echo {}\n",
        "a".repeat(2 * 1024 * 1024)
    );
    let run = Vane::new()
        .workflow("big.yaml", &big)
        .args(&["validate"])
        .run()
        .expect_code(2);
    assert!(
        run.stdout().contains(
            "workflows/big.yaml:1:1: error: the file is over the 1 MiB limit for a workflow file"
        ),
        "{}",
        run.stdout()
    );
}

#[test]
fn an_empty_state_file_is_refused_not_taken_for_a_new_store() {
    let vane = Vane::new()
        .workflow(
            "w.yaml",
            "version: 1\nname: w\non: { push: {} }\nsteps:\n  - run: echo hi\n",
        )
        .file(".vane/state.db", "");
    let store = vane.path().join(".vane/state.db");
    // As a truncated store looks: empty for a while, no journal beside it.
    let touched = std::process::Command::new("touch")
        .args(["-d", "1 minute ago"])
        .arg(&store)
        .status()
        .unwrap();
    assert!(touched.success());
    let run = vane
        .args(&["run"])
        .stdin(push_event("x"))
        .run()
        .expect_code(2);
    assert!(
        run.stderr().contains(
            "the state store `.vane/state.db` is an empty file, not a store: it may have been truncated"
        ),
        "{}",
        run.stderr()
    );
    assert_eq!(
        std::fs::metadata(run.dir.join(".vane/state.db"))
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn a_secret_is_masked_url_encoded_base64_and_json_escaped() {
    let secret = "p@ss w/rd+\"q\"-Sup3r";
    let workflow = r#"version: 1
name: leaky
on: { deploy: {} }
secrets: [API_TOKEN]
steps:
  - env: { TOKEN: "{{ secrets.API_TOKEN }}" }
    run: |
      echo "url {{ secrets.API_TOKEN | urlencode }}"
      echo "b64 {{ secrets.API_TOKEN | b64encode }}"
      echo "basic $(printf 'user:%s' "$TOKEN" | base64 -w0)"
      echo "json {{ secrets.API_TOKEN | tojson }}"
      echo "https://x:{{ secrets.API_TOKEN | urlencode }}@bad url" >&2; exit 1
"#;
    for args in [&["run"][..], &["run", "--json"][..]] {
        let run = Vane::new()
            .workflow("leaky.yaml", workflow)
            .env("API_TOKEN", secret)
            .args(args)
            .stdin(r#"{"type": "deploy", "data": {}}"#)
            .run();
        let everything = format!("{}{}", run.stdout(), run.stderr());
        for form in ["p%40ss", "cEBzcy", "BzcyB3", "wQHNz", "Sup3r"] {
            assert!(
                !everything.contains(form),
                "{args:?} leaked {form}:\n{everything}"
            );
        }
        assert!(everything.contains("url ***"), "{everything}");
        assert!(everything.contains("b64 ***"), "{everything}");
    }
}

#[test]
fn a_dash_heredoc_keeps_the_tabs_of_a_value() {
    let workflow = "version: 1\nname: w\non: { push: {} }\nsteps:\n  - run: \"cat <<-EOF | sed 's/\\\\t/<TAB>/g'\\n\\t{{ event.data.x }}\\n\\tEOF\\n\"\n";
    let run = Vane::new()
        .workflow("w.yaml", workflow)
        .args(&["run", "--json"])
        .stdin(push_event("\tone\n\t\ttwo\nEOF\n\tEOF"))
        .run()
        .expect_code(0);
    let output = run.json_lines().remove(0);
    let stdout = &output["workflows"][0]["run"]["steps"][0]["outputs"]["stdout"];
    assert_eq!(stdout, "<TAB>one\n<TAB><TAB>two\nEOF\n<TAB>EOF", "{output}");
}
