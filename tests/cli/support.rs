//! A small builder for running `vane` in a temporary project folder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// The repository root, for fixtures and the example gallery.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// One `vane` invocation in a fresh folder with its own `workflows/` and `templates/`.
pub struct Vane {
    dir: tempfile::TempDir,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    env: HashMap<String, String>,
    remove_env: Vec<String>,
}

pub struct Run {
    pub output: Output,
    pub dir: PathBuf,
}

impl Vane {
    pub fn new() -> Vane {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::create_dir_all(dir.path().join("workflows")).expect("workflows folder");
        std::fs::create_dir_all(dir.path().join("templates")).expect("templates folder");
        Vane {
            dir,
            args: Vec::new(),
            stdin: None,
            env: HashMap::new(),
            remove_env: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn workflow(self, name: &str, text: &str) -> Vane {
        self.file(&format!("workflows/{name}"), text)
    }

    pub fn template(self, name: &str, text: &str) -> Vane {
        self.file(&format!("templates/{name}"), text)
    }

    pub fn file(self, name: &str, text: &str) -> Vane {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("parent folder");
        }
        std::fs::write(path, text).expect("write file");
        self
    }

    pub fn args<S: AsRef<str>>(mut self, args: &[S]) -> Vane {
        self.args
            .extend(args.iter().map(|arg| arg.as_ref().to_string()));
        self
    }

    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Vane {
        self.stdin = Some(input.into());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Vane {
        self.env.insert(key.to_string(), value.to_string());
        self
    }

    pub fn command(&self) -> assert_cmd::Command {
        let mut command = assert_cmd::Command::cargo_bin("vane").expect("the vane binary");
        command.current_dir(self.dir.path()).args(&self.args);
        // The tests' own environment must not leak into vane's behaviour.
        for key in [
            "CLICOLOR_FORCE",
            "GITHUB_ACTIONS",
            "GITHUB_EVENT_NAME",
            "GITHUB_EVENT_PATH",
            "NO_COLOR",
            "VANE_STATE",
            "VANE_WORKFLOWS",
        ] {
            command.env_remove(key);
        }
        for key in &self.remove_env {
            command.env_remove(key);
        }
        command.envs(&self.env);
        match &self.stdin {
            Some(input) => {
                command.write_stdin(input.clone());
            }
            None => {
                command.write_stdin(Vec::new());
            }
        }
        command
    }

    pub fn run(self) -> Run {
        let output = self.command().output().expect("vane runs");
        let dir = self.dir.path().to_path_buf();
        // Keep the folder for assertions on written files: it is removed when the process ends.
        std::mem::forget(self.dir);
        Run { output, dir }
    }
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Asserts the exit status, showing both streams when it differs.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code(),
            code,
            "exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    /// Every stdout line parsed as JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout()
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("not JSON: {error}: {line}"))
            })
            .collect()
    }
}

/// The workflow entry named `name` in one `--json` event object.
pub fn workflow_entry<'a>(event: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    event["workflows"]
        .as_array()
        .and_then(|workflows| workflows.iter().find(|workflow| workflow["name"] == name))
        .unwrap_or_else(|| panic!("no workflow `{name}` in {event}"))
}

/// Runs git in `dir`, panicking with its output when it fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=test", "-c", "user.email=test@localhost"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `git daemon` on 127.0.0.1, stopped when dropped.
pub struct Daemon {
    child: Child,
    pub port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap().port()
}

pub fn git_daemon(base: &Path) -> Daemon {
    let port = free_port();
    // `git daemon` forks `git-daemon` and killing the wrapper would leave it running: the
    // program itself is started, so that dropping the handle stops it.
    let exec_path = git(base, &["--exec-path"]);
    let child = Command::new(Path::new(exec_path.trim()).join("git-daemon"))
        .arg("--reuseaddr")
        .arg(format!("--base-path={}", base.display()))
        .arg("--export-all")
        .arg("--enable=receive-pack")
        .arg(format!("--port={port}"))
        // A connection child left behind by a killed daemon must not linger (or hold the test
        // harness's stdout open).
        .arg("--timeout=10")
        .arg("--init-timeout=5")
        .arg("--listen=127.0.0.1")
        .arg(base)
        // It reports each client that hangs up, which says nothing about the test.
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("git daemon starts");
    let daemon = Daemon { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "git daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon
}

/// One request as a test server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|error| {
            panic!("body of {} is not JSON: {error}: {}", self.url, self.body)
        })
    }
}

/// What a test server answers: status, headers, body.
pub type Answer = (u16, Vec<(&'static str, String)>, String);

/// An HTTP server on an ephemeral port of 127.0.0.1 that answers every request with
/// `answer(request)` and records it. Returns its base URL (`http://127.0.0.1:PORT`) and the
/// recordings; each is sent before its answer, so everything vane sent is in the channel once it
/// exits. The server thread blocks on its socket and dies with the test process.
pub fn http_server(
    answer: impl Fn(&Request) -> Answer + Send + 'static,
) -> (String, std::sync::mpsc::Receiver<Request>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("a local HTTP server");
    let url = format!("http://{}", server.server_addr());
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let mut body = String::new();
            let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
            let seen = Request {
                method: request.method().to_string(),
                url: request.url().to_string(),
                headers: request
                    .headers()
                    .iter()
                    .map(|header| (header.field.to_string(), header.value.to_string()))
                    .collect(),
                body,
            };
            let (status, headers, text) = answer(&seen);
            if sender.send(seen).is_err() {
                return;
            }
            let mut response = tiny_http::Response::from_string(text).with_status_code(status);
            for (name, value) in headers {
                response = response
                    .with_header(tiny_http::Header::from_bytes(name, value).expect("a header"));
            }
            let _ = request.respond(response);
        }
    });
    (url, receiver)
}

/// `vane serve --listen 127.0.0.1:0 [ARGS]` started in `dir`: the process, and the base URL it
/// printed (`http://127.0.0.1:PORT`) once listening. Its stderr keeps being drained, so that it
/// never blocks on a full pipe; stdout is discarded.
pub fn spawn_serve(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    spawn_serve_under(&[], dir, args, env)
}

/// [`spawn_serve`] run by `wrapper` (a command and its arguments, `vane …` appended), e.g.
/// `unshare --pid --fork --mount-proc` to run it as PID 1.
pub fn spawn_serve_under(
    wrapper: &[&str],
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let vane = assert_cmd::cargo::cargo_bin!("vane");
    let mut command = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut command = Command::new(program);
            command.args(rest).arg(vane);
            command
        }
        None => Command::new(vane),
    };
    let mut child = command
        .current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("VANE_STATE")
        .env_remove("VANE_WORKFLOWS")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("vane serve starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let address = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://{address}"))
}
