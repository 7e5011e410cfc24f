//! `run`: a shell script in its own process group, with a timeout that stops the whole group,
//! captured output, and outputs written to `$VANE_OUTPUT`.

use super::{
    Compiled, CompiledStep, Outputs, StepContext, StepError, StepKind, StepSite, StepSuccess,
};
use crate::engine::{LineSplitter, Stream};
use crate::template::{TemplateTree, TreeError, TreeMode};
use crate::yaml::YamlError;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// SPEC §2.3: `stdout` as an output is at most 1 MiB.
pub const MAX_STDOUT: usize = 1024 * 1024;
/// The tail of the combined output kept as the step's log.
pub const LOG_TAIL: usize = 64 * 1024;
/// After SIGTERM, the process group has this long before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// The keys of a `run` step besides the common ones.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RunKeys {
    /// A shell script (`bash -eo pipefail -c`, else `sh -ec`). Every `{{ … }}` in it is escaped
    /// for the shell context it lands in.
    pub run: Option<String>,
    /// The shell for a `run` step instead of the default (`sh`, `bash`, `python3 -c`…).
    pub shell: Option<String>,
    /// The folder a `run` step starts in, inside the workspace.
    pub working_directory: Option<String>,
}

/// The `run` step kind.
pub struct RunKind;

impl StepKind for RunKind {
    fn key(&self) -> &'static str {
        "run"
    }

    fn sibling_keys(&self) -> &'static [&'static str] {
        &["shell", "working-directory"]
    }

    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        RunKeys::json_schema(generator)
    }

    fn compile(&self, keys: serde_yaml::Value, site: &StepSite) -> Result<Compiled, YamlError> {
        let keys: RunKeys = site.keys(keys)?;
        let script = keys.run.unwrap_or_default();
        let optional = |value: Option<String>, key: &str| {
            value
                .map(|value| site.text(&value, TreeMode::Text, &site.key(key)))
                .transpose()
        };
        let step = RunStep {
            script: site.text(&script, TreeMode::Shell, &site.key("run"))?,
            shell: optional(keys.shell, "shell")?,
            working_directory: optional(keys.working_directory, "working-directory")?,
        };
        let warnings = site.unsafe_interpolations(&script, &site.key("run"));
        Ok(Compiled::new(step).with_warnings(warnings))
    }
}

/// A compiled `run` step: the script escaped for the shell, and its two options.
#[derive(Debug)]
struct RunStep {
    script: TemplateTree,
    shell: Option<TemplateTree>,
    working_directory: Option<TemplateTree>,
}

impl CompiledStep for RunStep {
    fn render(&self, context: &minijinja::Value) -> Result<Json, TreeError> {
        let mut rendered = Map::new();
        rendered.insert("run".to_string(), self.script.render(context)?);
        if let Some(shell) = &self.shell {
            rendered.insert("shell".to_string(), shell.render(context)?);
        }
        if let Some(directory) = &self.working_directory {
            rendered.insert("working-directory".to_string(), directory.render(context)?);
        }
        Ok(Json::Object(rendered))
    }

    fn execute(&self, rendered: &Json, context: &StepContext) -> Result<StepSuccess, StepError> {
        let action = RunAction {
            script: super::text_at(rendered, "run").unwrap_or_default(),
            shell: super::text_at(rendered, "shell"),
            working_directory: super::text_at(rendered, "working-directory"),
        };
        execute(&action, context)
    }
}

/// A rendered `run` action.
pub struct RunAction<'a> {
    pub script: &'a str,
    pub shell: Option<&'a str>,
    pub working_directory: Option<&'a str>,
}

pub fn execute(action: &RunAction, context: &StepContext) -> Result<StepSuccess, StepError> {
    check_syntax(action.shell, action.script).map_err(StepError::new)?;
    let output_file = OutputFile::create()?;
    let mut command = shell_command(action.shell, action.script);
    let directory = match action.working_directory {
        Some(directory) => context.workspace.join(directory),
        None => context.workspace.to_path_buf(),
    };
    command
        .current_dir(&directory)
        .envs(
            context
                .env
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str())),
        )
        .env("VANE_OUTPUT", &output_file.path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout or cancellation stops the script's children too.
        .process_group(0);
    let mut child = command.spawn().map_err(|error| {
        StepError::new(format!(
            "cannot start the shell in `{}`: {error}",
            directory.display()
        ))
    })?;
    let group = child.id() as libc::pid_t;
    let stdout = child
        .stdout
        .take()
        .map(|pipe| (pipe, MAX_STDOUT, Stream::Stdout));
    let stderr = child
        .stderr
        .take()
        .map(|pipe| (pipe, LOG_TAIL, Stream::Stderr));

    let (status_sender, status_receiver) = mpsc::channel();
    thread::spawn(move || {
        let _ = status_sender.send(child.wait());
    });
    let started = Instant::now();
    // The pipes are read on a scoped thread, so that each line reaches the step's output sink
    // (which borrows the run) the moment it is written.
    let (ending, (stdout, stderr)) = thread::scope(|threads| {
        let output = context.output;
        let reader = threads.spawn(move || read_pipes(stdout, stderr, output));
        let ending = wait_for(&status_receiver, group, context, started);
        // Whatever the script left running in its group goes with it (as GitHub Actions cleans
        // up orphan processes), which also closes the pipes the reader waits on.
        kill_group(group, libc::SIGKILL);
        (ending, reader.join().unwrap_or_default())
    });

    let stdout_text = String::from_utf8_lossy(&stdout.bytes);
    let mut outputs = Outputs::new();
    outputs.insert(
        "stdout".to_string(),
        Json::String(stdout_text.trim().to_string()),
    );
    let log = combined_log(&stdout_text, &String::from_utf8_lossy(&stderr.bytes));
    match ending {
        Ending::Exited(code) => {
            outputs.insert("exit_code".to_string(), Json::from(code));
            if let Err(message) = output_file.read_into(&mut outputs) {
                return Err(StepError::new(message).with_outputs(outputs).with_log(log));
            }
            if code == 0 {
                Ok(StepSuccess {
                    outputs,
                    log: Some(log),
                    ..StepSuccess::default()
                })
            } else {
                let last = last_line(&stderr.bytes).or_else(|| last_line(&stdout.bytes));
                let detail = last.map(|line| format!(": {line}")).unwrap_or_default();
                Err(StepError::new(format!("exit code {code}{detail}"))
                    .with_outputs(outputs)
                    .with_log(log))
            }
        }
        Ending::Signalled(signal) => Err(StepError::new(format!("killed by signal {signal}"))
            .with_outputs(outputs)
            .with_log(log)),
        Ending::TimedOut => Err(StepError::new(format!(
            "timed out after {}",
            crate::duration::format_duration(context.timeout)
        ))
        .with_outputs(outputs)
        .with_log(log)),
        Ending::Cancelled => {
            let mut error = StepError::new("cancelled")
                .with_outputs(outputs)
                .with_log(log);
            error.cancelled = true;
            Err(error)
        }
        Ending::WaitFailed(message) => {
            Err(StepError::new(message).with_outputs(outputs).with_log(log))
        }
    }
}

enum Ending {
    Exited(i32),
    Signalled(i32),
    TimedOut,
    Cancelled,
    WaitFailed(String),
}

/// Waits for the shell, stopping its group on timeout or cancellation: SIGTERM, then SIGKILL
/// after the grace period.
fn wait_for(
    receiver: &mpsc::Receiver<std::io::Result<std::process::ExitStatus>>,
    group: libc::pid_t,
    context: &StepContext,
    started: Instant,
) -> Ending {
    let poll = Duration::from_millis(50);
    let stop_reason = loop {
        match receiver.recv_timeout(poll) {
            Ok(result) => return exit_ending(result),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Ending::WaitFailed("lost track of the shell process".to_string());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if context.cancel.is_cancelled() {
            break Ending::Cancelled;
        }
        if started.elapsed() >= context.timeout {
            break Ending::TimedOut;
        }
    };
    kill_group(group, libc::SIGTERM);
    if receiver.recv_timeout(KILL_GRACE).is_err() {
        kill_group(group, libc::SIGKILL);
        let _ = receiver.recv_timeout(KILL_GRACE);
    }
    stop_reason
}

fn exit_ending(result: std::io::Result<std::process::ExitStatus>) -> Ending {
    use std::os::unix::process::ExitStatusExt;
    match result {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => Ending::Exited(code),
            (None, Some(signal)) => Ending::Signalled(signal),
            (None, None) => Ending::WaitFailed("the shell ended without a status".to_string()),
        },
        Err(error) => Ending::WaitFailed(format!("cannot wait for the shell: {error}")),
    }
}

fn kill_group(group: libc::pid_t, signal: libc::c_int) {
    // SAFETY: killpg only sends a signal; a group that is already gone yields ESRCH, ignored.
    unsafe {
        libc::killpg(group, signal);
    }
}

/// `bash -eo pipefail -c` where bash exists, else `sh -ec`; `shell:` names another
/// (`sh`, `bash`, `python3`, or a command line the script is appended to).
/// A `bash` or `sh` script is parsed whole (`-n`) before it runs, and not run at all when it is
/// not valid: both shells recover from a syntax error by going on at the next line, so a script
/// broken after a quoted multi-line value would run that value's lines as commands (found by
/// `fuzz/fuzz_targets/shell_rewriter.rs`). Other shells (`python`, a command of your own) run
/// as written.
pub fn check_syntax(shell: Option<&str>, script: &str) -> Result<(), String> {
    let mut words = match shell.map(str::trim) {
        None | Some("") if bash_exists() => vec!["bash", "--noprofile", "--norc"],
        None | Some("") | Some("sh") => vec!["sh"],
        Some("bash") => vec!["bash", "--noprofile", "--norc"],
        Some(_) => return Ok(()),
    };
    words.extend(["-n", "-c"]);
    let checked = Command::new(words[0])
        .args(&words[1..])
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match checked {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => {
            let said = String::from_utf8_lossy(&output.stderr);
            let first = said.lines().next().unwrap_or("").trim();
            Err(format!(
                "the script is not valid {} (nothing of it was run): {first}",
                words[0]
            ))
        }
        // The shell is missing: the run itself says so.
        Err(_) => Ok(()),
    }
}

fn shell_command(shell: Option<&str>, script: &str) -> Command {
    let words: Vec<&str> = match shell.map(str::trim) {
        None | Some("") => {
            if bash_exists() {
                vec!["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]
            } else {
                vec!["sh", "-ec"]
            }
        }
        Some("bash") => vec!["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"],
        Some("sh") => vec!["sh", "-ec"],
        Some("python") | Some("python3") => vec!["python3", "-c"],
        Some(other) => other.split_whitespace().collect(),
    };
    let mut command = Command::new(words[0]);
    command.args(&words[1..]).arg(script);
    command
}

fn bash_exists() -> bool {
    static FOUND: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join("bash").is_file()))
            .unwrap_or(false)
    })
}

#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
}

/// Reads both pipes to their end on one thread, keeping the first `limit` bytes of each (so a
/// chatty script cannot exhaust memory) while still draining the rest, so the script never
/// blocks on a full pipe. Every line goes to `output` as it arrives. One thread waiting on both
/// (poll) keeps lines in the order they were written far better than a thread per pipe racing
/// to report; lines written to the two streams within the same instant may still swap, as in
/// any runner that keeps stdout and stderr apart.
fn read_pipes(
    stdout: Option<(std::process::ChildStdout, usize, Stream)>,
    stderr: Option<(std::process::ChildStderr, usize, Stream)>,
    output: &(dyn Fn(Stream, &[u8]) + Sync),
) -> (Captured, Captured) {
    use std::os::fd::AsRawFd;
    struct Reader<'a> {
        pipe: Box<dyn Read + 'a>,
        fd: i32,
        limit: usize,
        lines: LineSplitter<'a>,
        captured: Captured,
        open: bool,
    }
    let mut readers: Vec<Reader> = Vec::new();
    if let Some((pipe, limit, stream)) = stdout {
        let fd = pipe.as_raw_fd();
        readers.push(Reader {
            pipe: Box::new(pipe),
            fd,
            limit,
            lines: LineSplitter::new(stream, output),
            captured: Captured::default(),
            open: true,
        });
    }
    if let Some((pipe, limit, stream)) = stderr {
        let fd = pipe.as_raw_fd();
        readers.push(Reader {
            pipe: Box::new(pipe),
            fd,
            limit,
            lines: LineSplitter::new(stream, output),
            captured: Captured::default(),
            open: true,
        });
    }
    let mut buffer = [0u8; 16 * 1024];
    while readers.iter().any(|reader| reader.open) {
        let mut fds: Vec<libc::pollfd> = readers
            .iter()
            .map(|reader| libc::pollfd {
                fd: if reader.open { reader.fd } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the call's duration.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if ready < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        for (reader, polled) in readers.iter_mut().zip(&fds) {
            if !reader.open || polled.revents == 0 {
                continue;
            }
            match reader.pipe.read(&mut buffer) {
                Ok(0) => reader.open = false,
                Ok(read) => {
                    reader.lines.push(&buffer[..read]);
                    let room = reader.limit.saturating_sub(reader.captured.bytes.len());
                    reader
                        .captured
                        .bytes
                        .extend_from_slice(&buffer[..read.min(room)]);
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => reader.open = false,
            }
        }
    }
    let mut captured = readers.into_iter().map(|mut reader| {
        reader.lines.finish();
        reader.captured
    });
    (
        captured.next().unwrap_or_default(),
        captured.next().unwrap_or_default(),
    )
}

fn combined_log(stdout: &str, stderr: &str) -> String {
    let mut log = String::with_capacity(stdout.len() + stderr.len());
    log.push_str(stdout);
    if !stderr.is_empty() {
        if !log.is_empty() && !log.ends_with('\n') {
            log.push('\n');
        }
        log.push_str(stderr);
    }
    if log.len() > LOG_TAIL {
        let mut start = log.len() - LOG_TAIL;
        while !log.is_char_boundary(start) {
            start += 1;
        }
        log = log[start..].to_string();
    }
    log
}

fn last_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .map(|line| {
            let line = line.trim();
            if line.len() > 200 {
                format!("{}…", &line[..line.floor_char_boundary(200)])
            } else {
                line.to_string()
            }
        })
}

/// The file a script writes `name=value` lines (or `name<<DELIM` blocks) to.
struct OutputFile {
    path: PathBuf,
}

impl OutputFile {
    fn create() -> Result<OutputFile, StepError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "vane-output-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::new_v4().simple()
        );
        let path = std::env::temp_dir().join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|error| {
                StepError::new(format!("cannot create the `$VANE_OUTPUT` file: {error}"))
            })?;
        Ok(OutputFile { path })
    }

    fn read_into(&self, outputs: &mut Outputs) -> Result<(), String> {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        for (name, value) in parse_outputs(&text)? {
            outputs.insert(name, Json::String(value));
        }
        Ok(())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `name=value` lines and `name<<DELIM` … `DELIM` blocks, as GitHub's `$GITHUB_OUTPUT`.
pub fn parse_outputs(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut outputs = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        let heredoc = line.find("<<");
        let equals = line.find('=');
        match (heredoc, equals) {
            (Some(marker), equals) if equals.is_none_or(|equals| marker < equals) => {
                let name = line[..marker].trim().to_string();
                let delimiter = line[marker + 2..].trim();
                if name.is_empty() || delimiter.is_empty() {
                    return Err(format!(
                        "`$VANE_OUTPUT` line {}: expected `name<<DELIMITER`",
                        number + 1
                    ));
                }
                let mut value: Vec<&str> = Vec::new();
                let mut closed = false;
                for (_, body) in lines.by_ref() {
                    if body == delimiter {
                        closed = true;
                        break;
                    }
                    value.push(body);
                }
                if !closed {
                    return Err(format!(
                        "`$VANE_OUTPUT` line {}: `{name}<<{delimiter}` is never closed by `{delimiter}`",
                        number + 1
                    ));
                }
                outputs.push((name, value.join("\n")));
            }
            (_, Some(equals)) => {
                let name = line[..equals].trim();
                if name.is_empty() {
                    return Err(format!(
                        "`$VANE_OUTPUT` line {}: the output has no name",
                        number + 1
                    ));
                }
                outputs.push((name.to_string(), line[equals + 1..].to_string()));
            }
            _ => {
                return Err(format!(
                    "`$VANE_OUTPUT` line {}: expected `name=value`",
                    number + 1
                ));
            }
        }
    }
    Ok(outputs)
}

/// The workspace-relative directory, for messages.
pub fn describe_directory(workspace: &Path, directory: Option<&str>) -> String {
    match directory {
        Some(directory) => workspace.join(directory).display().to_string(),
        None => workspace.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::compile::testing::{compile, render};
    use serde_json::json;

    #[test]
    fn a_run_step_compiles_its_keys_and_warns_of_unescaped_event_data() {
        let step = compile(
            "run: echo {{ event.data.x | safe }}\nshell: bash\nworking-directory: app",
            &[],
        )
        .unwrap();
        assert_eq!(step.kind, "run");
        let warnings: Vec<&str> = step.warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(
            warnings,
            ["`| safe` turns off shell escaping for `event.data.x`, which comes from the event"]
        );
        assert_eq!(
            render(&step, json!({"event": {"data": {"x": "hi"}}})),
            json!({"run": "echo hi", "shell": "bash", "working-directory": "app"})
        );
    }

    #[test]
    fn run_keys_belong_to_run_steps() {
        assert_eq!(
            compile("http: { url: 'https://x' }\nshell: bash", &[]).unwrap_err(),
            "3:5: `shell` belongs to `run` steps, not `http`"
        );
        assert_eq!(
            compile("run: echo\nshell: [sh]", &[]).unwrap_err(),
            "3:12: steps[0].shell: invalid type: sequence, expected a string"
        );
    }

    #[test]
    fn outputs_file_lines_and_blocks() {
        let parsed = parse_outputs("a=1\nb=x=y\nnotes<<EOF\nline 1\nline 2\nEOF\n\nc=\n").unwrap();
        assert_eq!(
            parsed,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x=y".into()),
                ("notes".into(), "line 1\nline 2".into()),
                ("c".into(), "".into())
            ]
        );
    }

    #[test]
    fn broken_output_files_are_errors() {
        assert!(
            parse_outputs("x<<EOF\nno end\n")
                .unwrap_err()
                .contains("never closed")
        );
        assert!(parse_outputs("just text\n").unwrap_err().contains("line 1"));
    }

    #[test]
    fn the_log_keeps_the_tail() {
        let long = "x".repeat(LOG_TAIL + 10);
        assert_eq!(combined_log(&long, "").len(), LOG_TAIL);
        assert_eq!(combined_log("out", "err"), "out\nerr");
    }
}
