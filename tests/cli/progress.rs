//! Live progress: nothing of it in a pipe or with `--json` / `--quiet`; on a terminal (a
//! pseudo-terminal from util-linux `script`), a line per running step and a counter for streams.

use crate::support::Vane;
use std::process::{Command, Stdio};

const SLOW: &str = "version: 1\nname: deploy\non:\n  push:\n    branches: [main]\nsteps:\n  - id: warm\n    run: |\n      echo 'warming up'\n      sleep 1\n      echo 'still warming'\n";

fn push() -> String {
    serde_json::json!({"type": "push", "ref": "refs/heads/main", "repo": "acme/api", "files": [], "data": {}})
        .to_string()
}

/// No carriage return, escape sequence or spinner label: only the report's plain lines.
fn assert_plain(stream: &str, text: &str) {
    assert!(
        !text.contains('\r') && !text.contains('\x1b') && !text.contains('›'),
        "progress on {stream}: {text:?}"
    );
}

#[test]
fn no_progress_in_a_pipe() {
    for flags in [&[][..], &["--json"], &["--quiet"]] {
        let run = Vane::new()
            .workflow("deploy.yaml", SLOW)
            .args(&["run"])
            .args(flags)
            .stdin(format!("{}\n{}\n", push(), push()))
            .run()
            .expect_code(0);
        assert_plain("stdout", &run.stdout());
        assert_plain("stderr", &run.stderr());
        if flags.is_empty() {
            assert!(run.stdout().contains("2 events, 2 runs, 2 succeeded"));
        }
    }
}

/// Runs `vane ARGS` in `vane`'s folder on a pseudo-terminal (stdout and stderr both on it), and
/// returns what the terminal received; `None` where util-linux `script` is missing.
fn on_a_terminal(vane: &Vane, args: &str) -> Option<String> {
    let found = Command::new("script")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        eprintln!("skipped: util-linux `script` is not installed");
        return None;
    }
    // A pseudo-terminal starts 0×0: give it a size, as a terminal window has.
    let command = format!(
        "stty cols 120 rows 40; exec '{}' {args}",
        env!("CARGO_BIN_EXE_vane")
    );
    let output = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .current_dir(vane.path())
        .env("TERM", "xterm-256color")
        // One event at a time, so what a stream shows does not depend on the cores.
        .env("VANE_PARALLEL", "1")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("VANE_JSON")
        .env_remove("VANE_STATE")
        .env_remove("VANE_WORKFLOWS")
        .stdin(Stdio::null())
        .output()
        .expect("script runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "exit status {:?}: {text:?}",
        output.status
    );
    Some(text)
}

#[test]
fn a_running_step_has_a_live_line_on_a_terminal() {
    let vane = Vane::new()
        .workflow("deploy.yaml", SLOW)
        .file("event.json", &push());
    let Some(terminal) = on_a_terminal(&vane, "run --event event.json") else {
        return;
    };
    assert!(terminal.contains("deploy › warm"), "{terminal:?}");
    assert!(terminal.contains("warming up"), "{terminal:?}");
    // The line is cleared before the report, whose summary closes the output.
    assert!(
        terminal
            .trim_end()
            .ends_with("1 event, 1 run, 1 succeeded, 0 failed"),
        "{terminal:?}"
    );
}

#[test]
fn a_stream_has_a_counter_on_a_terminal() {
    let events = format!("{}\n{}\n{}\n", push(), push(), push());
    let vane = Vane::new()
        .workflow("deploy.yaml", SLOW)
        .file("events.ndjson", &events);
    let Some(terminal) = on_a_terminal(&vane, "run --event events.ndjson") else {
        return;
    };
    // The counter while the third event runs (the summary says `3 events, 3 runs, 3 succeeded`).
    assert!(terminal.contains("2 events, 2 runs "), "{terminal:?}");
    assert!(
        terminal.contains("3 events, 3 runs, 3 succeeded"),
        "{terminal:?}"
    );
}

#[test]
fn json_and_quiet_stay_plain_on_a_terminal() {
    for flag in ["--json", "--quiet"] {
        let vane = Vane::new()
            .workflow("deploy.yaml", SLOW)
            .file("event.json", &push());
        let Some(terminal) = on_a_terminal(&vane, &format!("run {flag} --event event.json")) else {
            return;
        };
        // The terminal turns each `\n` into `\r\n`; nothing else may move the cursor.
        let text = terminal.replace("\r\n", "\n");
        assert_plain(flag, &text);
    }
}
