//! `registry` sources end to end: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1,
//! with and without htpasswd Basic auth, tags pushed by the test over plain HTTP (blob and
//! manifest uploads); and, for what that registry does not do (`n`/`last` pagination, the
//! Bearer token flow, 429), an in-process fake that answers as the distribution spec and
//! Docker Hub do. The gallery's `image-update.yaml` is driven into a local deploy repository.

use crate::poll::{Project, events};
use crate::support::{Run, free_port, git, http_server, root};
use serde_json::{Value, json};
use sha2::Digest as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `docker-registry serve` on an ephemeral port of 127.0.0.1 with its own storage, stopped
/// when dropped.
struct Distribution {
    child: Child,
    port: u16,
    login: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Distribution {
    fn start(login: Option<(&str, &str)>) -> Distribution {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog: {{ disabled: true }}\nstorage:\n  filesystem: {{ rootdirectory: {} }}\n  delete: {{ enabled: true }}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((username, password)) = login {
            let output = Command::new("htpasswd")
                .args(["-Bbn", username, password])
                .output()
                .expect("htpasswd (apache2-utils) is installed");
            assert!(output.status.success());
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, output.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: vane-test\n    path: {}\n",
                file.display()
            ));
        }
        let config_file = dir.path().join("config.yml");
        std::fs::write(&config_file, config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is installed (apt-get install docker-registry)");
        let registry = Distribution {
            child,
            port,
            login: login.map(|(user, password)| (user.to_string(), password.to_string())),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::blocking::get(format!("http://127.0.0.1:{port}/v2/")).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    fn image(&self) -> String {
        format!("127.0.0.1:{}/acme/api", self.port)
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::blocking::RequestBuilder {
        let request = reqwest::blocking::Client::new().request(method, url);
        match &self.login {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }

    /// Pushes an image built at `created` as `acme/api:TAG` (a config blob, an OCI manifest
    /// without layers); returns the manifest's digest.
    fn push(&self, tag: &str, created: &str) -> String {
        let base = format!("http://127.0.0.1:{}/v2/acme/api", self.port);
        let config = json!({
            "architecture": "amd64", "os": "linux", "created": created,
            "rootfs": {"type": "layers", "diff_ids": []}, "config": {}
        })
        .to_string();
        let config_digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&config)));
        let started = self
            .request(reqwest::Method::POST, &format!("{base}/blobs/uploads/"))
            .send()
            .unwrap();
        assert_eq!(started.status(), 202, "upload start");
        let location = started.headers()["location"].to_str().unwrap().to_string();
        let separator = if location.contains('?') { '&' } else { '?' };
        let uploaded = self
            .request(
                reqwest::Method::PUT,
                &format!("{location}{separator}digest={config_digest}"),
            )
            .header("Content-Type", "application/octet-stream")
            .body(config.clone())
            .send()
            .unwrap();
        assert_eq!(uploaded.status(), 201, "blob upload");
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest, "size": config.len()
            },
            "layers": []
        })
        .to_string();
        let put = self
            .request(reqwest::Method::PUT, &format!("{base}/manifests/{tag}"))
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.clone())
            .send()
            .unwrap();
        assert_eq!(put.status(), 201, "manifest upload");
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&manifest)));
        assert_eq!(put.headers()["docker-content-digest"], digest.as_str());
        digest
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Records every `image.updated` event.
const ON_IMAGE: &str = r#"
version: 1
name: on-image
on:
  image.updated:
    sources: [registry]
steps:
  - run: "true"
"#;

fn source(image: &str, extra: &str) -> String {
    format!(
        "sources:\n  - name: api-image\n    every: 5m\n    registry:\n      image: \"{image}\"\n      policy: {{ semver: \">=1.4.0 <2\" }}\n      tags: {{ exclude: [\"\\\\.sig$\", \"^sha256-\"] }}\n{extra}"
    )
}

/// Everything a poll left behind and said: where a secret must not appear.
fn everything(project: &Project, runs: &[&Run]) -> String {
    let mut text = String::new();
    for run in runs {
        text.push_str(&run.stdout());
        text.push_str(&run.stderr());
    }
    for entry in std::fs::read_dir(project.path().join(".vane")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(path).unwrap()));
        }
    }
    text
}

#[test]
fn a_new_patch_is_one_event_a_rerun_none_and_a_repushed_tag_a_digest_event() {
    let registry = Distribution::start(None);
    let first_digest = registry.push("1.4.0", "2026-11-01T10:00:00Z");
    let project = Project::new(&source(&registry.image(), "      digest: true\n"));
    project.workflow("on-image.yaml", ON_IMAGE);
    // The first poll records where the image is.
    let first = project.poll().expect_code(0);
    assert!(events(&first).is_empty(), "{}", first.stdout());

    registry.push("1.5.0-rc.1", "2026-11-02T10:00:00Z");
    let patch_digest = registry.push("1.4.1", "2026-11-03T10:00:00Z");
    registry.push("sha256-0123.sig", "2026-11-03T10:00:01Z");
    let second = project
        .vane(&["poll", "--once", "--json", "--explain"])
        .run()
        .expect_code(0);
    let found = events(&second);
    assert_eq!(found.len(), 1, "{}", second.stdout());
    let event = &found[0];
    assert_eq!(event["type"], "image.updated");
    assert_eq!(event["source"], "registry");
    assert_eq!(event["subject"], registry.image().as_str());
    assert_eq!(
        event["id"],
        format!("registry:api-image:1.4.1@{patch_digest}")
    );
    let reason = "`1.4.1` is the highest version in `>=1.4.0 <2` of 4 tags; it was `1.4.0`";
    assert_eq!(
        event["data"],
        json!({
            "image": registry.image(),
            "tag": "1.4.1",
            "digest": patch_digest,
            "previous": {"tag": "1.4.0", "digest": first_digest},
            "change": "patch",
            "reason": reason,
        })
    );
    let entry = crate::support::workflow_entry(&second.json_lines()[0], "on-image").clone();
    assert_eq!(entry["run"]["status"], "success", "{entry}");
    assert_eq!(
        second.stderr(),
        format!(
            "source `api-image` ({}): 4 tags, policy semver `>=1.4.0 <2`\n\
             \x20 TAG              VALUE       DISPOSITION\n\
             \x20 1.4.1            1.4.1       winner: the highest version in `>=1.4.0 <2` (was `1.4.0`)\n\
             \x20 1.4.0            1.4.0       current\n\
             \x20 1.5.0-rc.1       1.5.0-rc.1  a prerelease; the range allows none (`prereleases: true` takes them)\n\
             \x20 sha256-0123.sig  -           excluded by `\\.sig$`\n\
             event: image.updated, change patch: {reason}\n\
             1 event, 1 run, 1 succeeded, 0 failed\n",
            registry.image()
        )
    );

    // Nothing new: nothing emitted.
    let third = project.poll().expect_code(0);
    assert!(events(&third).is_empty(), "{}", third.stdout());

    // 1.4.1 pushed again (a rebuilt image): the same tag under a new digest.
    let rebuilt = registry.push("1.4.1", "2026-11-04T10:00:00Z");
    assert_ne!(rebuilt, patch_digest);
    let fourth = project.poll().expect_code(0);
    let found = events(&fourth);
    assert_eq!(found.len(), 1, "{}", fourth.stdout());
    assert_eq!(found[0]["data"]["change"], "digest");
    assert_eq!(found[0]["data"]["digest"], rebuilt.as_str());
    assert_eq!(
        found[0]["data"]["previous"],
        json!({"tag": "1.4.1", "digest": patch_digest})
    );
    assert_eq!(
        found[0]["id"],
        format!("registry:api-image:1.4.1@{rebuilt}")
    );
    let again = project.poll().expect_code(0);
    assert!(events(&again).is_empty(), "{}", again.stdout());
}

#[test]
fn without_digest_a_repushed_tag_is_no_event() {
    let registry = Distribution::start(None);
    registry.push("1.4.0", "2026-11-01T10:00:00Z");
    let project = Project::new(&source(&registry.image(), "      first: emit\n"));
    project.workflow("on-image.yaml", ON_IMAGE);
    let first = project.poll().expect_code(0);
    let found = events(&first);
    assert_eq!(found.len(), 1, "`first: emit`: {}", first.stdout());
    assert_eq!(found[0]["data"]["change"], "initial");
    assert_eq!(found[0]["data"]["previous"], Value::Null);
    assert_eq!(found[0]["data"]["digest"], Value::Null);
    assert_eq!(found[0]["id"], "registry:api-image:1.4.0");
    registry.push("1.4.0", "2026-11-02T10:00:00Z");
    let second = project.poll().expect_code(0);
    assert!(events(&second).is_empty(), "{}", second.stdout());
}

#[test]
fn a_registry_behind_htpasswd_basic_auth_needs_the_credentials_and_never_shows_them() {
    const PASSWORD: &str = "s3cret-registry-password";
    let registry = Distribution::start(Some(("ci", PASSWORD)));
    registry.push("1.4.0", "2026-11-01T10:00:00Z");
    let anonymous = Project::new(&source(&registry.image(), ""));
    let refused = anonymous.poll().expect_code(2);
    assert!(
        refused.stderr().contains(&format!(
            "source `api-image`: GET `http://{}/v2/acme/api/tags/list` (page 1): the registry wants a login (Basic); give `credentials`",
            registry.image().trim_end_matches("/acme/api")
        )),
        "{}",
        refused.stderr()
    );

    let project = Project::new(&source(
        &registry.image(),
        "      first: emit\n      credentials: { username: ci, password: { env: REG_TOKEN } }\n",
    ));
    project.workflow("on-image.yaml", ON_IMAGE);
    let run = project
        .vane(&["poll", "--once", "--json", "--explain"])
        .env("REG_TOKEN", PASSWORD)
        .run()
        .expect_code(0);
    assert_eq!(events(&run)[0]["data"]["tag"], "1.4.0", "{}", run.stdout());
    // A wrong password: an error that names neither it nor the right one.
    let wrong = project
        .vane(&["poll", "--once", "--json"])
        .env("REG_TOKEN", "not-the-password")
        .run()
        .expect_code(2);
    assert!(
        wrong.stderr().contains("refused the credentials"),
        "{}",
        wrong.stderr()
    );
    let missing = project.vane(&["poll", "--once"]).run().expect_code(2);
    assert!(
        missing
            .stderr()
            .contains("credentials.password: the environment variable `REG_TOKEN` is not set"),
        "{}",
        missing.stderr()
    );
    let seen = everything(&project, &[&run, &wrong, &missing]);
    assert!(!seen.contains(PASSWORD) && !seen.contains("not-the-password"));
}

/// The fake's tags, three pages of two (Docker Hub and GHCR page; distribution 2.8 does not).
const PAGES: [&[&str]; 3] = [
    &["1.4.0", "1.4.1"],
    &["1.5.0-rc.1", "1.9.0"],
    &["1.10.0", "latest"],
];

/// The distribution spec's answer to a request without a valid token, as Docker Hub sends it.
fn unauthorized(host: &str) -> crate::support::Answer {
    (
        401,
        vec![
            ("Content-Type", "application/json".to_string()),
            (
                "Www-Authenticate",
                format!(
                    "Bearer realm=\"http://{host}/token\",service=\"fake-registry\",scope=\"repository:acme/api:pull\""
                ),
            ),
        ],
        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository","Class":"","Name":"acme/api","Action":"pull"}]}]}"#.to_string(),
    )
}

/// Page `index` of the tag list, with the `Link` to the next one.
fn page(index: usize) -> crate::support::Answer {
    let mut headers = vec![("Content-Type", "application/json".to_string())];
    if index + 1 < PAGES.len() {
        let last = PAGES[index].last().unwrap();
        headers.push((
            "Link",
            format!("</v2/acme/api/tags/list?last={last}&n=2>; rel=\"next\""),
        ));
    }
    (
        200,
        headers,
        json!({"name": "acme/api", "tags": PAGES[index]}).to_string(),
    )
}

#[test]
fn bearer_tokens_and_three_pages_of_tags_through_the_fake() {
    const PASSWORD: &str = "fake-password-123";
    const TOKEN: &str = "fake-token-456";
    let (url, seen) = http_server(|request| {
        let host = request.header("host").unwrap_or_default().to_string();
        let authorized = request.header("authorization") == Some(&format!("Bearer {TOKEN}"));
        let path = request.url.as_str();
        if path.starts_with("/token?") {
            let login = format!("Basic {}", base64_login("ci", PASSWORD));
            if request.header("authorization") != Some(login.as_str()) {
                return (
                    401,
                    vec![],
                    r#"{"details":"incorrect username or password"}"#.into(),
                );
            }
            return (
                200,
                vec![("Content-Type", "application/json".to_string())],
                json!({"token": TOKEN, "access_token": TOKEN, "expires_in": 300, "issued_at": "2026-12-03T12:00:00Z"}).to_string(),
            );
        }
        if !authorized {
            return unauthorized(&host);
        }
        match path {
            "/v2/acme/api/tags/list?n=1000" => page(0),
            "/v2/acme/api/tags/list?last=1.4.1&n=2" => page(1),
            "/v2/acme/api/tags/list?last=1.9.0&n=2" => page(2),
            "/v2/acme/api/manifests/1.10.0" => (
                200,
                vec![
                    (
                        "Content-Type",
                        "application/vnd.oci.image.index.v1+json".to_string(),
                    ),
                    (
                        "Docker-Content-Digest",
                        format!("sha256:{}", "a".repeat(64)),
                    ),
                ],
                String::new(),
            ),
            _ => (
                404,
                vec![],
                r#"{"errors":[{"code":"NAME_UNKNOWN"}]}"#.into(),
            ),
        }
    });
    let image = format!("{}/acme/api", url.trim_start_matches("http://"));
    let project = Project::new(&source(
        &image,
        "      digest: true\n      first: emit\n      credentials: { username: { env: REG_USER }, password: { env: REG_TOKEN } }\n",
    ));
    project.workflow("on-image.yaml", ON_IMAGE);
    let run = project
        .vane(&["poll", "--once", "--json", "--explain"])
        .env("REG_USER", "ci")
        .env("REG_TOKEN", PASSWORD)
        .run()
        .expect_code(0);
    let found = events(&run);
    assert_eq!(found.len(), 1, "{}\n{}", run.stdout(), run.stderr());
    assert_eq!(found[0]["data"]["tag"], "1.10.0");
    assert_eq!(
        found[0]["data"]["digest"],
        format!("sha256:{}", "a".repeat(64))
    );
    let requests: Vec<String> = seen
        .try_iter()
        .map(|request| format!("{} {}", request.method, request.url))
        .collect();
    assert_eq!(
        requests,
        vec![
            "GET /v2/acme/api/tags/list?n=1000",
            "GET /token?service=fake-registry&scope=repository%3Aacme%2Fapi%3Apull",
            "GET /v2/acme/api/tags/list?n=1000",
            "GET /v2/acme/api/tags/list?last=1.4.1&n=2",
            "GET /v2/acme/api/tags/list?last=1.9.0&n=2",
            "HEAD /v2/acme/api/manifests/1.10.0",
        ]
    );
    // `1.9.0` sorts last as text; the table says the versions disagree.
    assert!(
        run.stderr().contains(
            "note: text order and version order disagree: as text `1.9.0` sorts last; by the policy `1.10.0` wins\n"
        ),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr()
            .contains("  latest      latest      not semver (MAJOR.MINOR.PATCH)\n"),
        "{}",
        run.stderr()
    );
    let seen_text = everything(&project, &[&run]);
    assert!(!seen_text.contains(PASSWORD) && !seen_text.contains(TOKEN));

    // A refused login: the token service's 401, said without the password.
    let refused = project
        .vane(&["poll", "--once"])
        .env("REG_USER", "ci")
        .env("REG_TOKEN", "wrong")
        .run()
        .expect_code(2);
    assert!(
        refused.stderr().contains(&format!(
            "the token service `{url}/token` answered 401 Unauthorized (the credentials were refused)"
        )),
        "{}",
        refused.stderr()
    );
    assert!(!refused.stderr().contains("wrong"));
}

fn base64_login(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

#[test]
fn basic_auth_through_the_fake() {
    let (url, seen) = http_server(|request| {
        if request.header("authorization")
            != Some(&format!("Basic {}", base64_login("ci", "pw-789")))
        {
            return (
                401,
                vec![(
                    "Www-Authenticate",
                    "Basic realm=\"Registry Realm\"".to_string(),
                )],
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#
                    .into(),
            );
        }
        (
            200,
            vec![],
            json!({"name": "acme/api", "tags": ["1.4.0", "1.6.2"]}).to_string(),
        )
    });
    let image = format!("{}/acme/api", url.trim_start_matches("http://"));
    let project = Project::new(&source(
        &image,
        "      first: emit\n      credentials: { username: ci, password: { env: REG_TOKEN } }\n",
    ));
    project.workflow("on-image.yaml", ON_IMAGE);
    let run = project
        .vane(&["poll", "--once", "--json"])
        .env("REG_TOKEN", "pw-789")
        .run()
        .expect_code(0);
    assert_eq!(events(&run)[0]["data"]["tag"], "1.6.2", "{}", run.stderr());
    let headers: Vec<bool> = seen
        .try_iter()
        .map(|request| request.header("authorization").is_some())
        .collect();
    assert_eq!(headers, vec![false, true], "challenged once, then Basic");
    assert!(!everything(&project, &[&run]).contains("pw-789"));
}

#[test]
fn a_429_with_retry_after_is_waited_out_even_by_the_next_cron_poll() {
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&answered);
    let (url, seen) = http_server(move |_| {
        if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            return (
                429,
                vec![("Retry-After", "120".to_string())],
                r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}"#.into(),
            );
        }
        (
            200,
            vec![],
            json!({"name": "acme/api", "tags": ["1.4.0"]}).to_string(),
        )
    });
    let image = format!("{}/acme/api", url.trim_start_matches("http://"));
    let project = Project::new(&source(&image, "      first: emit\n"));
    project.workflow("on-image.yaml", ON_IMAGE);
    let at = |now: &str| {
        project
            .vane(&["poll", "--once", "--json", "--explain"])
            .env("VANE_NOW", now)
            .run()
            .expect_code(0)
    };
    let limited = at("2026-12-03T12:00:00Z");
    assert!(events(&limited).is_empty());
    assert_eq!(
        limited.stderr().matches("rate limited").count(),
        1,
        "{}",
        limited.stderr()
    );
    assert!(
        limited.stderr().contains(
            "source `api-image`: rate limited by the server; not polled again before 2026-12-03T12:02:00Z"
        ),
        "{}",
        limited.stderr()
    );
    // A minute later (cron's next run): not asked at all.
    let waiting = at("2026-12-03T12:01:00Z");
    assert!(events(&waiting).is_empty());
    assert_eq!(seen.try_iter().count(), 1, "one request, then none");
    let after = at("2026-12-03T12:02:30Z");
    assert_eq!(
        events(&after)[0]["data"]["tag"],
        "1.4.0",
        "{}",
        after.stderr()
    );
}

/// The deploy repository the gallery's `image-update.yaml` commits to, as a local bare one.
pub(crate) struct Deploy {
    _dir: tempfile::TempDir,
    pub(crate) bare: PathBuf,
}

/// `apps/api/values.yaml` in the deploy repository before any update.
pub(crate) const VALUES: &str = "# api chart values\nimage:\n  repository: ghcr.io/acme/api\n  tag: \"1.4.0\"   # set by vane\n  digest: \"\"      # set by vane\nreplicas: 2\n";

impl Deploy {
    pub(crate) fn new() -> Deploy {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "--bare", "deploy.git"]);
        git(dir.path(), &["init", "seed"]);
        let seed = dir.path().join("seed");
        std::fs::create_dir_all(seed.join("apps/api")).unwrap();
        std::fs::write(seed.join("apps/api/values.yaml"), VALUES).unwrap();
        git(&seed, &["add", "."]);
        git(&seed, &["commit", "-m", "seed"]);
        let bare = dir.path().join("deploy.git");
        git(
            &seed,
            &["push", bare.to_str().unwrap(), "HEAD:refs/heads/main"],
        );
        Deploy { _dir: dir, bare }
    }

    pub(crate) fn values(&self) -> String {
        git(&self.bare, &["show", "main:apps/api/values.yaml"])
    }

    pub(crate) fn log(&self) -> Vec<String> {
        git(&self.bare, &["log", "--format=%B%x00", "main"])
            .split('\0')
            .map(|message| message.trim().to_string())
            .filter(|message| !message.is_empty())
            .collect()
    }
}

/// The gallery's workflow, committing to `bare` and watching `image`.
pub(crate) fn gallery_image_update(bare: &Path, image: &str) -> String {
    std::fs::read_to_string(root().join("workflows/image-update.yaml"))
        .unwrap()
        .replace("https://github.com/acme/deploy.git", bare.to_str().unwrap())
        .replace("\"ghcr.io/acme/api\"", &format!("\"{image}\""))
}

#[test]
fn a_new_tag_in_the_registry_is_one_commit_of_two_scalars_in_the_deploy_repository() {
    let registry = Distribution::start(None);
    registry.push("1.4.0", "2026-11-01T10:00:00Z");
    let deploy = Deploy::new();
    let project = Project::new(&source(&registry.image(), "      digest: true\n"));
    project.workflow(
        "image-update.yaml",
        &gallery_image_update(&deploy.bare, &registry.image()),
    );
    let poll = || {
        project
            .vane(&["poll", "--once", "--json"])
            .env("DEPLOY_REPO_TOKEN", "not-needed-for-a-local-repository")
            .run()
            .expect_code(0)
    };
    assert!(events(&poll()).is_empty());
    let digest = registry.push("1.4.1", "2026-11-03T10:00:00Z");
    let run = poll();
    let lines = run.json_lines();
    assert_eq!(lines.len(), 1, "{}", run.stdout());
    let entry = crate::support::workflow_entry(&lines[0], "image-update");
    assert_eq!(entry["run"]["status"], "success", "{entry}");
    assert_eq!(entry["run"]["steps"][0]["outputs"]["changed"], true);
    assert_eq!(
        deploy.values(),
        VALUES
            .replace("\"1.4.0\"", "\"1.4.1\"")
            .replace("digest: \"\"", &format!("digest: \"{digest}\"")),
        "only the two scalars changed"
    );
    assert_eq!(
        deploy.log(),
        vec![
            format!(
                "api: 1.4.1 (patch)\n\n`1.4.1` is the highest version in `>=1.4.0 <2` of 2 tags; it was `1.4.0`"
            ),
            "seed".to_string(),
        ]
    );
    // Nothing new in the registry: no event, no commit.
    assert!(events(&poll()).is_empty());
    assert_eq!(deploy.log().len(), 2);
}

#[test]
fn the_documented_registry_sources_load() {
    let mut registries = 0;
    for document in ["docs/sources.md", "docs/cli.md", "README.md"] {
        for block in crate::nats::config_blocks(document) {
            let config = crate::nats::documented_config(document, &block);
            registries += config
                .sources
                .iter()
                .filter(|source| matches!(source.kind, vane::config::SourceKind::Registry(_)))
                .count();
        }
    }
    assert_eq!(registries, 3, "one in each document");
}

#[test]
fn newest_build_reads_the_created_time_of_each_candidate() {
    let registry = Distribution::start(None);
    registry.push("main-3f2a1b0", "2026-11-01T10:00:00Z");
    let newest = registry.push("main-9c0d4e1", "2026-11-03T10:00:00Z");
    registry.push("main-0a1b2c3", "2026-11-02T10:00:00Z");
    registry.push("pr-77", "2026-11-04T10:00:00Z");
    let project = Project::new(&format!(
        "sources:\n  - name: api-image\n    registry:\n      image: \"{}\"\n      policy: {{ newest-build: true }}\n      tags: {{ include: \"^main-\" }}\n      digest: true\n      first: emit\n",
        registry.image()
    ));
    project.workflow("on-image.yaml", ON_IMAGE);
    let run = project
        .vane(&["poll", "--once", "--json", "--explain"])
        .run()
        .expect_code(0);
    let found = events(&run);
    assert_eq!(found.len(), 1, "{}", run.stderr());
    assert_eq!(found[0]["data"]["tag"], "main-9c0d4e1");
    assert_eq!(found[0]["data"]["digest"], newest.as_str());
    let stderr = run.stderr();
    for line in [
        "  main-9c0d4e1  main-9c0d4e1 built 2026-11-03T10:00:00Z  winner: the newest build (`created` of its image)\n",
        "  main-0a1b2c3  main-0a1b2c3 built 2026-11-02T10:00:00Z  kept (lower than the winner)\n",
        "  pr-77         -                                        not matched by `include`\n",
    ] {
        assert!(stderr.contains(line), "{line}\n{stderr}");
    }
}

#[test]
fn a_public_image_gets_an_anonymous_token() {
    let (url, seen) = http_server(|request| {
        let host = request.header("host").unwrap_or_default().to_string();
        if request.url.starts_with("/token?") {
            // Anonymous: no credentials were configured, so none may be sent.
            assert_eq!(request.header("authorization"), None);
            return (
                200,
                vec![],
                json!({"token": "anonymous-token", "expires_in": 300}).to_string(),
            );
        }
        if request.header("authorization") != Some("Bearer anonymous-token") {
            return unauthorized(&host);
        }
        (
            200,
            vec![],
            json!({"name": "acme/api", "tags": ["1.4.0", "1.4.2"]}).to_string(),
        )
    });
    let image = format!("{}/acme/api", url.trim_start_matches("http://"));
    let project = Project::new(&source(&image, "      first: emit\n"));
    project.workflow("on-image.yaml", ON_IMAGE);
    let run = project.poll().expect_code(0);
    assert_eq!(events(&run)[0]["data"]["tag"], "1.4.2", "{}", run.stderr());
    assert_eq!(seen.try_iter().count(), 3, "challenge, token, list");
}
