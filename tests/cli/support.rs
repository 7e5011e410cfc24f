//! A small builder for running `vane` in a temporary project folder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;

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
