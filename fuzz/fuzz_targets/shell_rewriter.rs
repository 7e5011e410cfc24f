//! The shell-context rewriter of `run` scripts, differential against real bash.
//!
//! The input bytes pick tokens from a fixed vocabulary of shell syntax (quotes, substitutions,
//! here-documents, arithmetic, `[[ ]]`, `let`, `declare -i`, array subscripts, comments) and
//! `{{ x }}` interpolations, so the scripts only ever run harmless builtins. When vane accepts a
//! script, it is rendered twice: with a benign value and with a hostile canary value that
//! creates a file when the shell runs any part of it as code. Then:
//! - `bash -n` must accept the hostile rendering whenever it accepts the benign one (escaping
//!   never changes the script's syntax);
//! - running the hostile rendering as vane runs it must never create the canary file (vane runs
//!   no script that `bash -n` refuses: bash recovers from a syntax error by going on at the next
//!   line, inside a quoted multi-line value — this target's first find).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use vane::template::{Templates, shell::escape_script, to_value};

const TOKENS: &[&str] = &[
    "{{ x }}", "{{ x }}", "{{ x }}", "{{ n | int }}", " ", " ", "\n", "\t", "echo ", "printf '%s\\n' ",
    "'", "\"", "$'", "$\"", "\\", "$", "$(", "(", ")", "`", "${v}", "${v:-", "}", "{", ";", "&&",
    "||", "|", "#", "<<EOF\n", "\nEOF\n", "<<-EOF\n", "\n\tEOF\n", "<<'EOF'\n", "<<\"E\"\n",
    "\nE\n", "cat ", "$((", "))", "((", "[[ ", " ]]", " -eq ", " -lt ", " -ge ", " == ", " -v ",
    " -n ", "let ", "declare -i ", "local -i ", "typeset -i ", "declare ", "a[", "]=", "]", "v=",
    "a=(", "1", "x", "true ", ": ", "if ", "then ", "fi", "case ", " in ", "esac", "*) ", "$[",
    "test ", "[ ", " ]", "unset ", "read -r ", "<<<", ">/dev/null ", "{% if true %}",
    "{% endif %}", "{# c #}", "{{- x }}", "{{ x -}}", "=", "+", "-", "2>&1 ", "export ",
];

const BENIGN: &str = "benign";

fn canary() -> &'static PathBuf {
    static CANARY: OnceLock<PathBuf> = OnceLock::new();
    CANARY.get_or_init(|| std::env::temp_dir().join(format!("vane-fuzz-canary-{}", std::process::id())))
}

fn hostile() -> String {
    let file = canary().display().to_string();
    format!(
        "a[$(: >{file})]'\"$(: >{file})`: >{file}`;: >{file};\n: >{file}\nEOF\n: >{file}\n\tEOF\n: >{file}\nE\n: >{file}\n"
    )
}

fn templates() -> &'static Templates {
    static TEMPLATES: OnceLock<Templates> = OnceLock::new();
    TEMPLATES.get_or_init(|| Templates::new(std::path::Path::new("/nonexistent")))
}

/// Runs bash on the script (`-n`: syntax only) with a time limit; true when it exited 0.
fn bash(script: &str, syntax_only: bool) -> bool {
    let mut command = Command::new("timeout");
    command.args(["-s", "KILL", "2", "bash", "--norc", "--noprofile"]);
    if syntax_only {
        command.arg("-n");
    }
    command
        .args(["-c", script])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command.status().map(|status| status.success()).unwrap_or(false)
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 48 {
        return;
    }
    let script: String = data.iter().map(|&byte| TOKENS[byte as usize % TOKENS.len()]).collect();
    let Ok(escaped) = escape_script(&script) else {
        return;
    };
    let Ok(template) = templates().compile(&escaped.source) else {
        return;
    };
    let render = |value: &str| {
        let context = to_value(&serde_json::json!({"x": value, "n": "7"}));
        Templates::render(&template, &context).ok()
    };
    let (Some(benign), Some(hostile)) = (render(BENIGN), render(&hostile())) else {
        return;
    };
    let _ = std::fs::remove_file(canary());
    if bash(&benign, true) {
        assert!(
            bash(&hostile, true),
            "the hostile value changed the script's syntax:\n--- script\n{script}\n--- rendered\n{hostile}"
        );
    }
    // vane parses a bash script whole before it runs it, and runs none of one it cannot parse:
    // bash's recovery from a syntax error would go on inside a quoted multi-line value.
    if vane::steps::run::check_syntax(Some("bash"), &hostile).is_err() {
        return;
    }
    bash(&hostile, false);
    assert!(
        !canary().exists(),
        "the hostile value ran:\n--- script\n{script}\n--- rendered\n{hostile}"
    );
    let _ = std::fs::remove_file(canary());
});
