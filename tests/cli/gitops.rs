//! `gitops` steps end to end (SPEC §2.3): promotions into a bare repository on disk and behind
//! `git daemon` and behind a smart-HTTP server that wants the token, no-op re-runs, pushes refused
//! because the branch moved, dry runs, and concurrent promotions that must all land.

use crate::git_http::GitHttp;
use crate::support::{Run, Vane, git, git_daemon, workflow_entry};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

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
    workflow_with(repo, app, "")
}

/// The promotion workflow with `extra` keys (indented YAML lines) added to its `gitops:`.
fn workflow_with(repo: &str, app: &str, extra: &str) -> String {
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
{extra}      files:
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

/// The token the smart-HTTP server accepts; distinctive, so that a leak cannot hide.
const TOKEN: &str = "gho_vaneTestToken4f7c2a91";
const WRONG_TOKEN: &str = "gho_wrongTokenNeverShown83be1d";

fn token_workflow(url: &str) -> String {
    workflow_with(url, "api", "      token: \"{{ secrets.GITOPS_TOKEN }}\"\n")
        .replace("\nsteps:", "\nsecrets: [GITOPS_TOKEN]\nsteps:")
}

#[test]
fn promotes_over_smart_http_with_the_token_from_a_secret() {
    let remote = Remote::new();
    let before = remote.head();
    let server = GitHttp::start(&remote.root, TOKEN);
    let url = server.url("remote.git");
    let run = Vane::new()
        .workflow("promote.yaml", &token_workflow(&url))
        .env("GITOPS_TOKEN", TOKEN)
        .args(&["run", "--json"])
        .stdin(event("abc123"))
        .run()
        .expect_code(0);
    let step = promote_step(&run);
    assert_eq!(step["outputs"]["changed"], true, "{step}");
    assert_eq!(step["outputs"]["commit"], remote.head().as_str());
    assert_eq!(
        remote_diff(&remote, &before, &remote.head()),
        vec![
            r#"-  tag: "v1.0.0"   # promoted by vane"#,
            r#"+  tag: "abc123"   # promoted by vane"#,
        ]
    );
    // The fetch and the push both went through the password check, with the token's user name.
    assert!(server.seen.authorized.load(Ordering::SeqCst) >= 4);
    let users = server.seen.users.lock().unwrap().clone();
    assert!(
        users.iter().all(|user| user == "x-access-token"),
        "{users:?}"
    );
    assert!(!run.stdout().contains(TOKEN) && !run.stderr().contains(TOKEN));
}

/// Every file under `dir` (the state database, its WAL, the gitops cache) as bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    found
}

#[test]
fn a_refused_token_fails_clearly_and_is_written_nowhere() {
    let remote = Remote::new();
    let server = GitHttp::start(&remote.root, TOKEN);
    let url = server.url("remote.git");
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("state.db");
    let state = state.to_str().unwrap();
    for json in [true, false] {
        let mut args = vec!["--state", state, "run"];
        if json {
            args.push("--json");
        }
        let run = Vane::new()
            .workflow("promote.yaml", &token_workflow(&url))
            .env("GITOPS_TOKEN", WRONG_TOKEN)
            .args(&args)
            .stdin(event("abc123"))
            .run()
            .expect_code(1);
        let (stdout, stderr) = (run.stdout(), run.stderr());
        let shown = format!("{stdout}\n{stderr}");
        assert!(
            shown.contains(&format!(
                "cannot fetch from `{url}`: authentication failed (the token was refused)"
            )),
            "{shown}"
        );
        assert!(!shown.contains(WRONG_TOKEN), "{shown}");
        if json {
            let step = promote_step(&run);
            assert_eq!(step["status"], "failure", "{step}");
        }
    }
    assert_eq!(remote.log(), vec!["seed"]);
    assert!(server.seen.refused.load(Ordering::SeqCst) >= 2);
    let files = files_under(state_dir.path());
    assert!(files.iter().any(|(path, _)| path.ends_with("state.db")));
    for (path, bytes) in files {
        assert!(
            !bytes
                .windows(WRONG_TOKEN.len())
                .any(|window| window == WRONG_TOKEN.as_bytes()),
            "the token is in {}",
            path.display()
        );
    }

    // No token at all: the step says which key is missing.
    let run = Vane::new()
        .workflow("promote.yaml", &workflow(&url, "api"))
        .args(&["run", "--json"])
        .stdin(event("abc123"))
        .run()
        .expect_code(1);
    let error = promote_step(&run)["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("the remote asks for credentials; set `token`"),
        "{error}"
    );
}

/// An `update` hook on the remote that lands another commit on `main` (a new file `moved-N`)
/// while a push is being received, `times` times in all: the pushed update then finds the branch
/// moved and is refused, as it is when another pusher wins the race.
fn move_the_branch_during_pushes(remote: &Remote, times: u32) {
    let hook = remote.bare.join("hooks/update");
    let script = format!(
        r#"#!/bin/sh
set -e
count=$(cat "$GIT_DIR/moves" 2>/dev/null || echo 0)
[ "$count" -ge {times} ] && exit 0
echo $((count + 1)) > "$GIT_DIR/moves"
export GIT_INDEX_FILE="$GIT_DIR/move-index" GIT_AUTHOR_NAME=other GIT_AUTHOR_EMAIL=other@localhost
export GIT_COMMITTER_NAME=other GIT_COMMITTER_EMAIL=other@localhost
git read-tree "$2"
blob=$(echo "moved $count" | git hash-object -w --stdin)
git update-index --add --cacheinfo "100644,$blob,moved-$count"
commit=$(echo "other $count" | git commit-tree "$(git write-tree)" -p "$2")
git update-ref "$1" "$commit" "$2"
"#
    );
    std::fs::write(&hook, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn moves(remote: &Remote) -> u32 {
    std::fs::read_to_string(remote.bare.join("moves"))
        .map(|text| text.trim().parse().unwrap())
        .unwrap_or(0)
}

#[test]
fn a_push_refused_because_the_branch_moved_is_made_again_on_the_new_head() {
    let remote = Remote::new();
    move_the_branch_during_pushes(&remote, 2);
    let daemon = git_daemon(&remote.root);
    let url = format!("git://127.0.0.1:{}/remote.git", daemon.port);
    let run = promote(Vane::new(), &url, "api", "abc123").expect_code(0);
    let step = promote_step(&run);
    assert_eq!(step["outputs"]["changed"], true, "{step}");
    assert_eq!(moves(&remote), 2);
    // Two refused pushes, then the third attempt landed on top of both other commits.
    assert_eq!(
        remote.log(),
        vec!["deploy api abc123", "other 1", "other 0", "seed"]
    );
    assert_eq!(step["outputs"]["commit"], remote.head().as_str());
    assert_eq!(remote.file("moved-0"), "moved 0\n");
    assert_eq!(remote.file("moved-1"), "moved 1\n");
    assert!(
        remote
            .file("apps/api/values.yaml")
            .contains(r#"tag: "abc123"   # promoted by vane"#)
    );
}

#[test]
fn a_branch_that_keeps_moving_fails_after_five_attempts() {
    let remote = Remote::new();
    move_the_branch_during_pushes(&remote, 100);
    let daemon = git_daemon(&remote.root);
    let url = format!("git://127.0.0.1:{}/remote.git", daemon.port);
    let run = promote(Vane::new(), &url, "api", "abc123").expect_code(1);
    let step = promote_step(&run);
    let error = step["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "gitops: push to `{url}` `main` was rejected 5 times: the branch kept moving"
        )),
        "{step}"
    );
    // Exactly five pushes reached the remote, and none of them landed.
    assert_eq!(moves(&remote), 5);
    assert!(
        !remote
            .log()
            .iter()
            .any(|subject| subject.starts_with("deploy"))
    );
}

/// One request the GitHub API stand-in received.
#[derive(Debug, Clone)]
struct ApiRequest {
    method: String,
    url: String,
    authorization: Option<String>,
    body: Value,
}

/// A stand-in for GitHub's pull request endpoints on 127.0.0.1: it answers like GitHub does
/// (201 with `html_url` and `number`, 422 "A pull request already exists" for a second one from
/// the same head, 401 "Bad credentials" for another token) and keeps every request it saw.
struct GithubApi {
    server: std::sync::Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
    port: u16,
    requests: std::sync::Arc<std::sync::Mutex<Vec<ApiRequest>>>,
}

impl GithubApi {
    fn start(token: &'static str) -> GithubApi {
        let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let thread = {
            let (server, requests) = (server.clone(), requests.clone());
            std::thread::spawn(move || {
                // head branch → number of its open pull request
                let mut open: Vec<String> = Vec::new();
                for mut request in server.incoming_requests() {
                    let mut text = String::new();
                    let _ = request.as_reader().read_to_string(&mut text);
                    let seen = ApiRequest {
                        method: request.method().to_string(),
                        url: request.url().to_string(),
                        authorization: request
                            .headers()
                            .iter()
                            .find(|header| header.field.equiv("Authorization"))
                            .map(|header| header.value.to_string()),
                        body: serde_json::from_str(&text).unwrap_or(Value::Null),
                    };
                    requests.lock().unwrap().push(seen.clone());
                    let (status, answer) = if seen.authorization.as_deref()
                        != Some(&format!("Bearer {token}"))
                    {
                        (401, json!({"message": "Bad credentials"}))
                    } else if seen.method == "POST" && seen.url == "/repos/acme/deploy/pulls" {
                        let head = seen.body["head"].as_str().unwrap_or_default().to_string();
                        match open.iter().position(|open| *open == head) {
                            Some(_) => (
                                422,
                                json!({"message": "Validation Failed", "errors": [{
                                    "resource": "PullRequest", "code": "custom",
                                    "message": format!("A pull request already exists for acme:{head}.")
                                }]}),
                            ),
                            None => {
                                open.push(head);
                                let number = open.len() + 6;
                                (
                                    201,
                                    json!({"number": number,
                                        "html_url": format!("https://github.com/acme/deploy/pull/{number}")}),
                                )
                            }
                        }
                    } else if seen.method == "GET"
                        && seen.url.starts_with("/repos/acme/deploy/pulls?")
                    {
                        let found: Vec<Value> = open
                            .iter()
                            .enumerate()
                            .filter(|(_, head)| {
                                seen.url
                                    .contains(&format!("head=acme:{}&", head.replace('/', "%2F")))
                            })
                            .map(|(at, _)| {
                                json!({"number": at + 7,
                                    "html_url": format!("https://github.com/acme/deploy/pull/{}", at + 7)})
                            })
                            .collect();
                        (200, Value::Array(found))
                    } else {
                        (404, json!({"message": "Not Found"}))
                    };
                    let _ = request.respond(
                        tiny_http::Response::from_string(answer.to_string())
                            .with_status_code(status),
                    );
                }
            })
        };
        GithubApi {
            server,
            thread: Some(thread),
            port,
            requests,
        }
    }

    fn requests(&self) -> Vec<ApiRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for GithubApi {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

const API_TOKEN: &str = "ghp_vanePullRequestToken91ac";

fn pull_request_workflow(remote: &Remote, api: &GithubApi) -> String {
    pull_request_workflow_to(remote, api, "vane/api-{{ event.data.tag }}")
}

/// A promotion that pushes to `head` and proposes it into `main`.
fn pull_request_workflow_to(remote: &Remote, api: &GithubApi, head: &str) -> String {
    let extra = format!(
        r#"      pull-request:
        title: "deploy api {{{{ event.data.tag }}}}"
        body: "Promotes api to {{{{ event.data.tag }}}}."
        head: "{head}"
        repo: acme/deploy
        api-url: "http://127.0.0.1:{}/"
        token: "{{{{ secrets.GITHUB_TOKEN }}}}"
"#,
        api.port
    );
    workflow_with(&remote.url(), "api", &extra)
        .replace("\nsteps:", "\nsecrets: [GITHUB_TOKEN]\nsteps:")
}

fn promote_with_pull_request(
    remote: &Remote,
    api: &GithubApi,
    token: &str,
    command: &str,
    tag: &str,
) -> Run {
    Vane::new()
        .workflow("promote.yaml", &pull_request_workflow(remote, api))
        .env("GITHUB_TOKEN", token)
        .args(&[command, "--json"])
        .stdin(event(tag))
        .run()
}

#[test]
fn a_pull_request_is_opened_from_the_pushed_branch_and_found_again_on_a_rerun() {
    let remote = Remote::new();
    let main = remote.head();
    let api = GithubApi::start(API_TOKEN);

    // A dry run shows the diff and calls nobody.
    let run = promote_with_pull_request(&remote, &api, API_TOKEN, "plan", "abc123").expect_code(0);
    assert!(
        run.stdout().contains(r#"+  tag: \"abc123\""#),
        "{}",
        run.stdout()
    );
    assert!(api.requests().is_empty(), "{:?}", api.requests());

    let run = promote_with_pull_request(&remote, &api, API_TOKEN, "run", "abc123").expect_code(0);
    assert!(!run.stdout().contains(API_TOKEN) && !run.stderr().contains(API_TOKEN));
    let step = promote_step(&run);
    assert_eq!(step["status"], "success", "{step}");
    assert_eq!(step["outputs"]["changed"], true, "{step}");
    assert_eq!(
        step["outputs"]["pr-url"],
        "https://github.com/acme/deploy/pull/7"
    );
    assert_eq!(
        step["outputs"]["pull-request-url"],
        "https://github.com/acme/deploy/pull/7"
    );
    assert_eq!(step["outputs"]["pull-request-number"], 7);
    // The commit went on a new branch that starts at `main`; `main` did not move.
    assert_eq!(remote.head(), main);
    let head = git(&remote.bare, &["rev-parse", "vane/api-abc123"]);
    assert_eq!(step["outputs"]["commit"], head.trim());
    assert_eq!(
        git(&remote.bare, &["rev-parse", "vane/api-abc123^"]).trim(),
        main
    );
    let requests = api.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].url, "/repos/acme/deploy/pulls");
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(format!("Bearer {API_TOKEN}").as_str())
    );
    assert_eq!(
        requests[0].body,
        json!({
            "title": "deploy api abc123",
            "head": "vane/api-abc123",
            "base": "main",
            "body": "Promotes api to abc123.",
        })
    );

    // Again: nothing to commit on the branch, GitHub says the pull request exists, and the step
    // reports it.
    let run = promote_with_pull_request(&remote, &api, API_TOKEN, "run", "abc123").expect_code(0);
    let step = promote_step(&run);
    assert_eq!(step["outputs"]["changed"], false, "{step}");
    assert_eq!(step["outputs"]["pull-request-number"], 7, "{step}");
    assert_eq!(
        step["outputs"]["pr-url"],
        "https://github.com/acme/deploy/pull/7"
    );
    let requests = api.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert_eq!(requests[2].method, "GET");
    assert_eq!(
        requests[2].url,
        "/repos/acme/deploy/pulls?head=acme:vane%2Fapi-abc123&base=main&state=open"
    );
    assert!(!run.stdout().contains(API_TOKEN) && !run.stderr().contains(API_TOKEN));
}

#[test]
fn a_pull_request_refused_by_github_fails_the_step_without_showing_the_token() {
    let remote = Remote::new();
    let api = GithubApi::start(API_TOKEN);
    let wrong = "ghp_notTheRightOne5d2e";
    let run = promote_with_pull_request(&remote, &api, wrong, "run", "abc123").expect_code(1);
    let step = promote_step(&run);
    assert_eq!(
        step["error"], "gitops: GitHub refused the pull request: HTTP 401: Bad credentials",
        "{step}"
    );
    // The branch was pushed before GitHub was asked; a re-run with the right token proposes it.
    assert!(step["outputs"]["commit"].is_string(), "{step}");
    assert!(!run.stdout().contains(wrong) && !run.stderr().contains(wrong));
    let run = promote_with_pull_request(&remote, &api, API_TOKEN, "run", "abc123").expect_code(0);
    assert_eq!(promote_step(&run)["outputs"]["pull-request-number"], 7);
}

#[test]
fn a_head_branch_already_on_the_remote_gets_the_next_commit_on_top() {
    let remote = Remote::new();
    let main = remote.head();
    let api = GithubApi::start(API_TOKEN);
    let promote_to_one_branch = |tag: &str| {
        Vane::new()
            .workflow(
                "promote.yaml",
                &pull_request_workflow_to(&remote, &api, "vane/api"),
            )
            .env("GITHUB_TOKEN", API_TOKEN)
            .args(&["run", "--json"])
            .stdin(event(tag))
            .run()
            .expect_code(0)
    };
    let first = promote_step(&promote_to_one_branch("v2"));
    let second = promote_step(&promote_to_one_branch("v3"));
    assert_eq!(second["outputs"]["changed"], true, "{second}");
    let log = git(&remote.bare, &["log", "--format=%s", "vane/api"]);
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        vec!["deploy api v3", "deploy api v2", "seed"]
    );
    assert_eq!(
        git(&remote.bare, &["rev-parse", "vane/api^"]).trim(),
        first["outputs"]["commit"].as_str().unwrap()
    );
    assert_eq!(remote.head(), main);
    // One pull request for the branch: the second run found it.
    assert_eq!(first["outputs"]["pull-request-number"], 7);
    assert_eq!(second["outputs"]["pull-request-number"], 7, "{second}");
}

#[test]
fn a_push_the_remote_refuses_for_another_reason_fails_at_once_with_its_reason() {
    let remote = Remote::new();
    let hook = remote.bare.join("hooks/update");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho attempt >> \"$GIT_DIR/attempts\"\necho 'main is protected' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let daemon = git_daemon(&remote.root);
    let url = format!("git://127.0.0.1:{}/remote.git", daemon.port);
    let run = promote(Vane::new(), &url, "api", "abc123").expect_code(1);
    let error = promote_step(&run)["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.starts_with(&format!(
            "gitops: push to `{url}` was rejected: hook declined"
        )),
        "{error}"
    );
    // One push: the fetch after it showed the branch had not moved, so there was no retry.
    let attempts = std::fs::read_to_string(remote.bare.join("attempts")).unwrap();
    assert_eq!(attempts.lines().count(), 1, "{error}");
    assert_eq!(remote.log(), vec!["seed"]);
}
