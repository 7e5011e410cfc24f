//! `gitops` steps end to end (SPEC §2.3): promotions into a bare repository on disk and behind
//! `git daemon`, no-op re-runs, dry runs, and concurrent promotions that must all land.

use crate::support::{Run, Vane, git, git_daemon, workflow_entry};
use serde_json::{Value, json};
use std::path::PathBuf;

const VALUES: &str = r#"# Values for the api chart.
replicaCount: 2   # the HPA scales this in production

defaults: &defaults
  pullPolicy: IfNotPresent

image:
  <<: *defaults
  repository: ghcr.io/acme/api
  tag: "v1.0.0"   # promoted by vane

config: |
  log: info
"#;

/// A bare repository `remote.git` under a fresh folder, with `main` holding two values files.
struct Remote {
    _dir: tempfile::TempDir,
    root: PathBuf,
    bare: PathBuf,
}

impl Remote {
    fn new() -> Remote {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let root = dir.path().to_path_buf();
        let bare = root.join("remote.git");
        git(&root, &["init", "--bare", "remote.git"]);
        let seed = root.join("seed");
        git(&root, &["init", "seed"]);
        for app in ["api", "web"] {
            std::fs::create_dir_all(seed.join("apps").join(app)).unwrap();
            std::fs::write(seed.join(format!("apps/{app}/values.yaml")), VALUES).unwrap();
        }
        git(&seed, &["add", "."]);
        git(&seed, &["commit", "-m", "seed"]);
        git(
            &seed,
            &["push", bare.to_str().unwrap(), "HEAD:refs/heads/main"],
        );
        Remote {
            _dir: dir,
            root,
            bare,
        }
    }

    fn url(&self) -> String {
        self.bare.display().to_string()
    }

    fn log(&self) -> Vec<String> {
        git(&self.bare, &["log", "--format=%s", "main"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn head(&self) -> String {
        git(&self.bare, &["rev-parse", "main"]).trim().to_string()
    }

    fn file(&self, path: &str) -> String {
        git(&self.bare, &["show", &format!("main:{path}")])
    }
}

fn workflow(repo: &str, app: &str) -> String {
    format!(
        r#"
version: 1
name: promote
on: {{ deploy: {{}} }}
steps:
  - id: promote
    gitops:
      repo: "{repo}"
      branch: main
      files:
        - path: apps/{app}/values.yaml
          set: {{ image.tag: "{{{{ event.data.tag }}}}" }}
      message: "deploy {app} {{{{ event.data.tag }}}}"
      author: {{ name: vane, email: vane@localhost }}
"#
    )
}

fn event(tag: &str) -> String {
    json!({"type": "deploy", "data": {"tag": tag}}).to_string()
}

fn promote_step(run: &Run) -> Value {
    let lines = run.json_lines();
    workflow_entry(&lines[0], "promote")["run"]["steps"][0].clone()
}

fn promote(vane: Vane, repo: &str, app: &str, tag: &str) -> Run {
    vane.workflow("promote.yaml", &workflow(repo, app))
        .args(&["run", "--json"])
        .stdin(event(tag))
        .run()
}

/// The diff between two commits of the remote, without its header lines.
fn remote_diff(remote: &Remote, from: &str, to: &str) -> Vec<String> {
    git(&remote.bare, &["diff", "--unified=0", from, to])
        .lines()
        .filter(|line| {
            (line.starts_with('+') || line.starts_with('-'))
                && !line.starts_with("+++")
                && !line.starts_with("---")
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn a_promotion_is_one_commit_with_a_one_line_diff_and_a_rerun_is_a_no_op() {
    let remote = Remote::new();
    let before = remote.head();
    let vane = Vane::new();
    let state = vane.path().to_path_buf();
    let run = promote(vane, &remote.url(), "api", "9f2c1a0b3d4e").expect_code(0);
    let step = promote_step(&run);
    assert_eq!(step["status"], "success", "{step}");
    assert_eq!(step["outputs"]["changed"], true, "{step}");
    assert_eq!(step["outputs"]["files"], json!(["apps/api/values.yaml"]));
    let after = remote.head();
    assert_eq!(step["outputs"]["commit"], after.as_str());
    assert_eq!(remote.log(), vec!["deploy api 9f2c1a0b3d4e", "seed"]);
    assert_eq!(
        remote_diff(&remote, &before, &after),
        vec![
            r#"-  tag: "v1.0.0"   # promoted by vane"#,
            r#"+  tag: "9f2c1a0b3d4e"   # promoted by vane"#,
        ]
    );
    let author = git(&remote.bare, &["log", "-1", "--format=%an <%ae>", "main"]);
    assert_eq!(author.trim(), "vane <vane@localhost>");
    // The cache is kept under the state folder, and reused.
    assert!(state.join(".vane/gitops").is_dir());

    // The same promotion again, from a fresh folder (a fresh cache) and from the warm one.
    for vane in [Vane::new(), Vane::new()] {
        let run = promote(vane, &remote.url(), "api", "9f2c1a0b3d4e").expect_code(0);
        let step = promote_step(&run);
        assert_eq!(step["outputs"]["changed"], false, "{step}");
        assert_eq!(step["outputs"]["commit"], after.as_str());
        assert_eq!(remote.head(), after);
    }
}

#[test]
fn a_warm_cache_is_fetched_not_cloned_again() {
    let remote = Remote::new();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let state = state.to_str().unwrap();
    for tag in ["a1", "b2", "c3"] {
        let run = promote(
            Vane::new().args(&["--state", state]),
            &remote.url(),
            "api",
            tag,
        )
        .expect_code(0);
        assert_eq!(promote_step(&run)["outputs"]["changed"], true);
        assert!(
            remote
                .file("apps/api/values.yaml")
                .contains(&format!("tag: \"{tag}\""))
        );
    }
    assert_eq!(remote.log().len(), 4);
    let caches: Vec<_> = std::fs::read_dir(dir.path().join("gitops"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .collect();
    assert_eq!(caches.len(), 1, "one cache per remote");
}

#[test]
fn a_dry_run_shows_the_diff_and_leaves_the_remote_untouched() {
    let remote = Remote::new();
    let before = remote.head();
    let run = Vane::new()
        .workflow("promote.yaml", &workflow(&remote.url(), "api"))
        .args(&["plan"])
        .stdin(event("9f2c1a0b3d4e"))
        .run()
        .expect_code(0);
    let stdout = run.stdout();
    assert!(
        stdout.contains(r#"-  tag: "v1.0.0"   # promoted by vane"#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"+  tag: "9f2c1a0b3d4e"   # promoted by vane"#),
        "{stdout}"
    );
    assert_eq!(remote.head(), before);
    assert_eq!(remote.log(), vec!["seed"]);
}

#[test]
fn a_missing_path_fails_clearly_and_commits_nothing() {
    let remote = Remote::new();
    let text = workflow(&remote.url(), "api").replace("image.tag", "image.version");
    let run = Vane::new()
        .workflow("promote.yaml", &text)
        .args(&["run", "--json"])
        .stdin(event("x"))
        .run()
        .expect_code(1);
    let step = promote_step(&run);
    let error = step["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("`apps/api/values.yaml`: `image.version` is not in the file"),
        "{step}"
    );
    assert_eq!(remote.log(), vec!["seed"]);
}

#[test]
fn concurrent_promotions_of_different_files_both_land() {
    for shared_cache in [false, true] {
        let remote = Remote::new();
        let state = remote.root.join("state/state.db");
        let spawn = |app: &str, tag: &str| {
            let mut vane = Vane::new().workflow("promote.yaml", &workflow(&remote.url(), app));
            if shared_cache {
                vane = vane.args(&["--state", state.to_str().unwrap()]);
            }
            let vane = vane.args(&["run", "--json"]).stdin(event(tag));
            let mut command = vane.command();
            // The folder must outlive the process; it goes with the test process.
            std::mem::forget(vane);
            std::thread::spawn(move || command.output().expect("vane runs"))
        };
        let api = spawn("api", "api-2");
        let web = spawn("web", "web-2");
        for output in [api.join().unwrap(), web.join().unwrap()] {
            assert!(
                output.status.success(),
                "{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let mut log = remote.log();
        assert_eq!(log.pop().as_deref(), Some("seed"));
        log.sort();
        assert_eq!(log, vec!["deploy api api-2", "deploy web web-2"]);
        assert!(
            remote
                .file("apps/api/values.yaml")
                .contains("tag: \"api-2\"")
        );
        assert!(
            remote
                .file("apps/web/values.yaml")
                .contains("tag: \"web-2\"")
        );
        // A straight line of commits: nothing was forced over.
        let parents = git(&remote.bare, &["rev-list", "--parents", "main"]);
        assert!(parents.lines().all(|line| line.split(' ').count() <= 2));
    }
}

#[test]
fn promotes_over_the_git_protocol() {
    let remote = Remote::new();
    let before = remote.head();
    let daemon = git_daemon(&remote.root);
    let url = format!("git://127.0.0.1:{}/remote.git", daemon.port);
    let run = promote(Vane::new(), &url, "api", "abc123").expect_code(0);
    let step = promote_step(&run);
    assert_eq!(step["outputs"]["changed"], true, "{step}");
    assert_eq!(
        remote_diff(&remote, &before, &remote.head()),
        vec![
            r#"-  tag: "v1.0.0"   # promoted by vane"#,
            r#"+  tag: "abc123"   # promoted by vane"#,
        ]
    );
    let run = promote(Vane::new(), &url, "api", "abc123").expect_code(0);
    assert_eq!(promote_step(&run)["outputs"]["changed"], false);
}
