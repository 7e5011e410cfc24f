//! The GitHub Action's install script (`scripts/action-install.sh`, run by `action.yml`): the
//! release binary for the runner, its SHA-256 checked, downloaded from a local server serving a
//! fake release; the fallback to a build for refs without a release.

use crate::support::root;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc::Receiver;

/// The release target the script picks on this machine.
fn target() -> String {
    let arch = std::env::consts::ARCH;
    let os = match std::env::consts::OS {
        "macos" => "apple-darwin",
        _ => "unknown-linux-musl",
    };
    format!("{arch}-{os}")
}

/// A release of `v0.1.0` holding a fake `vane` (a script that prints its version), as
/// `(asset name, tar.gz bytes, its SHA-256 in hex)`.
fn fake_release(dir: &Path) -> (String, Vec<u8>, String) {
    let build = dir.join("build");
    std::fs::create_dir_all(&build).unwrap();
    let binary = build.join("vane");
    std::fs::write(&binary, "#!/bin/sh\necho 'vane 0.1.0'\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&binary).unwrap().permissions(),
        0o755,
    );
    Command::new("chmod")
        .arg("755")
        .arg(&binary)
        .status()
        .unwrap();
    let asset = format!("vane-{}.tar.gz", target());
    let archive = dir.join(&asset);
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&build)
        .arg("vane")
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&archive).unwrap();
    let digest = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes));
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    (asset, bytes, hex)
}

/// Serves `files` (URL path → bytes) on 127.0.0.1, 404 for anything else; the paths asked for.
fn release_server(files: Vec<(String, Vec<u8>)>) -> (String, Receiver<String>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.server_addr());
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let path = request.url().to_string();
            let _ = sender.send(path.clone());
            let response = match files.iter().find(|(name, _)| *name == path) {
                Some((_, bytes)) => tiny_http::Response::from_data(bytes.clone()),
                None => tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404),
            };
            let _ = request.respond(response);
        }
    });
    (url, receiver)
}

struct Install {
    code: i32,
    stdout: String,
    outputs: String,
    path: String,
}

fn install(dir: &Path, releases: &str, reference: &str) -> Install {
    let output = Command::new("bash")
        .arg(root().join("scripts/action-install.sh"))
        .arg("download")
        .env("VANE_ROOT", dir.join("tool"))
        .env("VANE_SOURCE", root())
        .env("VANE_REF", reference)
        .env("VANE_RELEASES", releases)
        .env("GITHUB_OUTPUT", dir.join("output"))
        .env("GITHUB_PATH", dir.join("path"))
        .output()
        .unwrap();
    Install {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
        outputs: std::fs::read_to_string(dir.join("output")).unwrap_or_default(),
        path: std::fs::read_to_string(dir.join("path")).unwrap_or_default(),
    }
}

#[test]
fn a_release_tag_downloads_the_binary_for_this_runner_and_checks_its_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let (asset, bytes, hex) = fake_release(dir.path());
    let (url, requests) = release_server(vec![
        (format!("/v0.1.0/{asset}"), bytes),
        (
            format!("/v0.1.0/{asset}.sha256"),
            format!("{hex}  {asset}\n").into_bytes(),
        ),
    ]);
    let run = install(dir.path(), &url, "v0.1.0");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.outputs.contains("installed=true\n"), "{}", run.outputs);
    assert!(
        run.outputs.contains(&format!("key=vane-{}-", target())),
        "{}",
        run.outputs
    );
    assert!(
        run.stdout.contains(&format!(
            "installed vane 0.1.0 ({}, SHA-256 {hex})",
            target()
        )),
        "{}",
        run.stdout
    );
    let bin = dir.path().join("tool/bin");
    assert_eq!(run.path.trim(), bin.display().to_string());
    let version = Command::new(bin.join("vane"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&version.stdout), "vane 0.1.0\n");
    let asked: Vec<String> = requests.try_iter().collect();
    assert_eq!(
        asked,
        vec![
            format!("/v0.1.0/{asset}"),
            format!("/v0.1.0/{asset}.sha256")
        ]
    );
}

#[test]
fn a_binary_whose_sha256_does_not_match_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (asset, bytes, _) = fake_release(dir.path());
    let wrong = "0".repeat(64);
    let (url, _requests) = release_server(vec![
        (format!("/v0.1.0/{asset}"), bytes),
        (
            format!("/v0.1.0/{asset}.sha256"),
            format!("{wrong}  {asset}\n").into_bytes(),
        ),
    ]);
    let run = install(dir.path(), &url, "v0.1.0");
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("::error::the SHA-256 of {asset} is "))
            && run.stdout.contains(&format!(
                "but the release says {wrong}: refusing to install it"
            )),
        "{}",
        run.stdout
    );
    assert!(!dir.path().join("tool/bin/vane").exists());
    assert!(!run.outputs.contains("installed="), "{}", run.outputs);
}

#[test]
fn a_ref_without_a_release_asset_falls_back_to_building() {
    let dir = tempfile::tempdir().unwrap();
    let (url, requests) = release_server(Vec::new());
    // A tag whose release has no asset for this runner.
    let run = install(dir.path(), &url, "v9.9.9");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.outputs.contains("installed=false\n"), "{}", run.outputs);
    assert!(
        run.stdout.contains(&format!(
            "no release asset vane-{}.tar.gz for v9.9.9: building vane",
            target()
        )),
        "{}",
        run.stdout
    );
    assert_eq!(requests.try_iter().count(), 1);
    // A branch has no release at all: nothing is asked for.
    let dir = tempfile::tempdir().unwrap();
    let (url, requests) = release_server(Vec::new());
    let run = install(dir.path(), &url, "main");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.outputs.contains("installed=false\n"), "{}", run.outputs);
    assert!(
        run.stdout.contains("no release for the ref `main`"),
        "{}",
        run.stdout
    );
    assert_eq!(requests.try_iter().count(), 0);
}

#[test]
fn the_build_cache_key_changes_with_the_actions_source() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("action");
    std::fs::create_dir_all(source.join("src")).unwrap();
    std::fs::write(source.join("Cargo.toml"), "version = \"0.1.0\"\n").unwrap();
    std::fs::write(source.join("Cargo.lock"), "").unwrap();
    std::fs::write(source.join("src/main.rs"), "fn main() {}\n").unwrap();
    let key = |dir: &Path| {
        let output = dir.join("output");
        let _ = std::fs::remove_file(&output);
        let status = Command::new("bash")
            .arg(root().join("scripts/action-install.sh"))
            .arg("download")
            .env("VANE_ROOT", dir.join("tool"))
            .env("VANE_SOURCE", dir.join("action"))
            .env("VANE_REF", "main")
            .env("GITHUB_OUTPUT", &output)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read_to_string(&output)
            .unwrap()
            .lines()
            .find_map(|line| line.strip_prefix("key=").map(str::to_string))
            .unwrap()
    };
    let first = key(dir.path());
    assert_eq!(key(dir.path()), first);
    std::fs::write(source.join("src/main.rs"), "fn main() { }\n").unwrap();
    assert_ne!(key(dir.path()), first);
}
