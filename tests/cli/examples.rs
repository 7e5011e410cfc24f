//! The gallery: every workflow in `workflows/` validates, and each is planned against a real payload.

use crate::support::{Vane, fixture, root, workflow_entry};
use serde_json::Value;

/// `vane plan --json` in the repository root (its `workflows/` and `templates/`), one event.
fn plan(args: &[&str]) -> Value {
    let vane = Vane::new();
    let run = vane
        .args(&[
            "--workflows",
            &root().join("workflows").display().to_string(),
        ])
        .args(&[
            "--templates",
            &root().join("templates").display().to_string(),
        ])
        .args(&["plan", "--json"])
        .args(args)
        .run()
        .expect_code(0);
    run.json_lines().remove(0)
}

fn matched(output: &Value) -> Vec<String> {
    output["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|workflow| workflow["matched"] == true)
        .map(|workflow| workflow["name"].as_str().unwrap().to_string())
        .collect()
}

fn github(kind: &str, file: &str) -> Vec<String> {
    vec![
        "--type".into(),
        kind.into(),
        "--source".into(),
        "github".into(),
        "--event".into(),
        fixture(&format!("github/{file}")).display().to_string(),
    ]
}

fn plan_github(kind: &str, file: &str) -> Value {
    let args = github(kind, file);
    plan(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn every_example_validates() {
    let run = Vane::new()
        .args(&[
            "--workflows",
            &root().join("workflows").display().to_string(),
        ])
        .args(&[
            "--templates",
            &root().join("templates").display().to_string(),
        ])
        .args(&["validate"])
        .run()
        .expect_code(0);
    assert!(
        run.stdout().contains(" 0 errors, 0 warnings"),
        "{}",
        run.stdout()
    );
}

#[test]
fn push_to_the_default_branch_deploys() {
    let output = plan_github("push", "push.branch.json");
    assert_eq!(matched(&output), vec!["deploy-on-push"]);
    let run = &workflow_entry(&output, "deploy-on-push")["run"];
    assert_eq!(run["status"], "planned");
    let steps = run["steps"].as_array().unwrap();
    assert_eq!(
        steps[0]["rendered"]["to"],
        "out/codertocat-hello-world/deployment.yaml"
    );
    assert!(
        steps[0]["diff"]
            .as_str()
            .unwrap()
            .contains("+          image: ghcr.io/codertocat/hello-world:6113728f27ae")
    );
    assert_eq!(
        steps[1]["rendered"]["run"],
        "kubectl apply -f 'out/codertocat-hello-world/deployment.yaml'"
    );
    assert_eq!(steps[2]["rendered"]["notify"]["slack"]["webhook"], "***");
    assert!(
        steps.iter().all(|step| step.get("outputs").is_none()),
        "a plan has no outputs"
    );
    // Nothing was written by the plan.
    assert!(!root().join("out/codertocat-hello-world").exists());
}

#[test]
fn a_tag_push_releases_and_a_tag_delete_does_not() {
    let output = plan_github("push", "push.tag.json");
    assert_eq!(matched(&output), vec!["release-on-tag"]);
    let steps = &workflow_entry(&output, "release-on-tag")["run"]["steps"];
    assert_eq!(steps[0]["rendered"]["to"], "out/releases/simple-tag.md");
    assert_eq!(
        steps[1]["rendered"]["http"]["json"]["tag_name"],
        "simple-tag"
    );
    assert_eq!(steps[1]["rendered"]["http"]["json"]["draft"], false);

    let output = plan_github("push", "push.tag-deleted.json");
    assert!(matched(&output).is_empty());
    assert_eq!(
        workflow_entry(&output, "release-on-tag")["reason"],
        "if: `not event.data.deleted` is false"
    );
    assert_eq!(
        workflow_entry(&output, "deploy-on-push")["reason"],
        "branches: `simple-tag` is a tag, and only branches are filtered"
    );
}

#[test]
fn a_failed_ci_run_notifies_and_a_green_one_does_not() {
    let output = plan_github("workflow_run", "workflow_run.completed-failure.json");
    assert_eq!(matched(&output), vec!["notify-ci-failure"]);
    let notify =
        &workflow_entry(&output, "notify-ci-failure")["run"]["steps"][0]["rendered"]["notify"];
    assert_eq!(notify["title"], "CI failed on octo-org/octo-repo");
    assert_eq!(notify["severity"], "error");

    let output = plan_github("workflow_run", "workflow_run.completed.json");
    assert!(matched(&output).is_empty());
    assert_eq!(
        workflow_entry(&output, "notify-ci-failure")["reason"],
        "if: `event.data.workflow_run.conclusion == 'failure'` is false"
    );
}

#[test]
fn a_bug_label_gets_a_comment() {
    let output = plan_github("issues", "issues.labeled.json");
    assert_eq!(matched(&output), vec!["comment-on-bug"]);
    let comment = &workflow_entry(&output, "comment-on-bug")["run"]["steps"][0]["rendered"]["notify"]
        ["github"]["comment"];
    assert_eq!(comment["issue"], "1");
    assert!(
        comment["body"]
            .as_str()
            .unwrap()
            .starts_with("Thanks @Codertocat!")
    );
}

#[test]
fn a_pull_request_gets_a_preview_and_a_closed_one_does_not() {
    let output = plan_github("pull_request", "pull_request.opened.json");
    assert_eq!(matched(&output), vec!["pr-preview"]);
    let output = plan_github("pull_request", "pull_request.closed.json");
    assert!(matched(&output).is_empty());
    assert_eq!(
        workflow_entry(&output, "pr-preview")["reason"],
        "types: `closed` is not one of [opened, synchronize, reopened]"
    );
}

#[test]
fn a_hot_metric_alerts_and_emits() {
    let event = fixture("events/metric.cpu.json").display().to_string();
    let vane = Vane::new();
    let run = vane
        .args(&[
            "--workflows",
            &root().join("workflows").display().to_string(),
        ])
        .args(&[
            "--templates",
            &root().join("templates").display().to_string(),
        ])
        .args(&["plan", "--json", "--event", &event])
        .run()
        .expect_code(0);
    let lines = run.json_lines();
    assert_eq!(matched(&lines[0]), vec!["metric-threshold"]);
    let steps = &workflow_entry(&lines[0], "metric-threshold")["run"]["steps"];
    assert_eq!(steps[1]["rendered"]["emit"]["data"]["value"], 91.5);
    // The emitted event is planned too, with its parent.
    assert_eq!(lines[1]["event"]["type"], "alert.raised");
    assert_eq!(lines[1]["event"]["source"], "vane");
    assert_eq!(lines[1]["event"]["parent"], lines[0]["event"]["id"]);
}

#[test]
fn a_cloudevent_rolls_out() {
    let event = fixture("events/deploy.cloudevent.json")
        .display()
        .to_string();
    let output = plan(&["--event", &event]);
    assert_eq!(matched(&output), vec!["cloudevents-deploy"]);
    let steps = &workflow_entry(&output, "cloudevents-deploy")["run"]["steps"];
    assert_eq!(
        steps[0]["rendered"]["run"],
        "echo \"rolling out payments 2.14.1 to staging\"\necho \"version=2.14.1\" >> \"$VANE_OUTPUT\"\n"
    );
    // A value from a step that did not run is a placeholder.
    assert_eq!(
        steps[1]["rendered"]["run"],
        "echo \"deployed <steps.rollout.outputs.version> (requested as b8f1c1c2-5b7a-4a53-9c1e-2f3d6c1a0e11)\""
    );
}

#[test]
fn a_cloudevent_runs_end_to_end() {
    let event = fixture("events/deploy.cloudevent.json")
        .display()
        .to_string();
    let run = Vane::new()
        .args(&[
            "--workflows",
            &root().join("workflows").display().to_string(),
        ])
        .args(&[
            "--templates",
            &root().join("templates").display().to_string(),
        ])
        .args(&["run", "--json", "--event", &event])
        .run()
        .expect_code(0);
    let output = run.json_lines().remove(0);
    let steps = &workflow_entry(&output, "cloudevents-deploy")["run"]["steps"];
    assert_eq!(steps[0]["outputs"]["version"], "2.14.1");
    assert_eq!(
        steps[1]["outputs"]["stdout"],
        "deployed 2.14.1 (requested as b8f1c1c2-5b7a-4a53-9c1e-2f3d6c1a0e11)"
    );
}

/// The gallery's GitOps pair end to end, against a local deploy repository standing in for
/// `https://github.com/acme/deploy.git`: a push to acme/storefront's main promotes its image tag (one
/// changed line, a re-run is a no-op), a failed smoke test rolls it back to `stable`.
#[test]
fn the_gitops_examples_promote_and_roll_back() {
    use crate::support::git;
    const VALUES: &str = "# storefront chart values\nimage:\n  repository: ghcr.io/acme/storefront\n  tag: \"0.9.0\"   # set by vane\nreplicas: 3\n";
    let deploy = tempfile::tempdir().unwrap();
    git(deploy.path(), &["init", "--bare", "deploy.git"]);
    let seed = deploy.path().join("seed");
    git(deploy.path(), &["init", "seed"]);
    std::fs::create_dir_all(seed.join("apps/storefront")).unwrap();
    std::fs::write(seed.join("apps/storefront/values.yaml"), VALUES).unwrap();
    git(&seed, &["add", "."]);
    git(&seed, &["commit", "-m", "seed"]);
    let bare = deploy.path().join("deploy.git");
    git(
        &seed,
        &["push", bare.to_str().unwrap(), "HEAD:refs/heads/main"],
    );
    let values = || git(&bare, &["show", "main:apps/storefront/values.yaml"]);
    let commits = || {
        git(&bare, &["rev-list", "--count", "main"])
            .trim()
            .to_string()
    };

    // The gallery's own files, with the deploy repository's URL pointed at the local one.
    let gallery = |name: &str| {
        std::fs::read_to_string(root().join("workflows").join(name))
            .unwrap()
            .replace("https://github.com/acme/deploy.git", bare.to_str().unwrap())
    };
    let project = Vane::new()
        .workflow("promote-on-push.yaml", &gallery("promote-on-push.yaml"))
        .workflow(
            "rollback-on-failure.yaml",
            &gallery("rollback-on-failure.yaml"),
        );
    let state = project.path().join("state.db").display().to_string();
    let dir = project.path().to_path_buf();
    std::mem::forget(project);

    // A real push payload, as acme/storefront's main.
    let mut push: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("github/push.branch.json")).unwrap())
            .unwrap();
    push["repository"]["full_name"] = "acme/storefront".into();
    push["ref"] = "refs/heads/main".into();
    let sha = push["after"].as_str().unwrap().to_string();
    let run = |event: &Value, kind: &str| {
        let vane = Vane::new();
        let mut command = vane.command();
        command
            .current_dir(&dir)
            .env("DEPLOY_REPO_TOKEN", "not-needed-for-a-local-repository")
            .args([
                "--state", &state, "run", "--type", kind, "--source", "github", "--json",
            ])
            .write_stdin(event.to_string());
        let output = command.output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    let promoted = run(&push, "push");
    let step = &workflow_entry(&promoted, "promote-on-push")["run"]["steps"][0];
    assert_eq!(step["outputs"]["changed"], true, "{step}");
    let expected = VALUES.replace("\"0.9.0\"", &format!("\"{}\"", &sha[..12]));
    assert_eq!(values(), expected, "only the tag's text changed");
    assert_eq!(commits(), "2");
    // The same push again: nothing to change, no commit.
    let again = run(&push, "push");
    assert_eq!(
        workflow_entry(&again, "promote-on-push")["run"]["steps"][0]["outputs"]["changed"],
        false
    );
    assert_eq!(commits(), "2");

    // A real failed workflow run, as acme/storefront's smoke test on main.
    let mut failed: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("github/workflow_run.completed-failure.json")).unwrap(),
    )
    .unwrap();
    failed["repository"]["full_name"] = "acme/storefront".into();
    failed["workflow_run"]["head_branch"] = "main".into();
    failed["workflow_run"]["name"] = "smoke-test".into();
    let rolled = run(&failed, "workflow_run");
    assert_eq!(
        workflow_entry(&rolled, "rollback-on-failure")["run"]["status"],
        "success"
    );
    assert_eq!(values(), VALUES.replace("\"0.9.0\"", "\"stable\""));
    assert_eq!(commits(), "3");
}

/// The gallery's image automation on the recorded `image.updated` event, against a local deploy
/// repository standing in for `https://github.com/acme/deploy.git`: the dry run shows the diff of
/// the two scalars and commits nothing; the run commits exactly that, with the reason.
#[test]
fn the_image_update_example_plans_then_commits_the_tag_and_digest() {
    use crate::registry::{Deploy, VALUES, gallery_image_update};
    let deploy = Deploy::new();
    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("events/image.updated.json")).unwrap(),
    )
    .unwrap();
    let digest = event["data"]["digest"].as_str().unwrap();
    let project = Vane::new().workflow(
        "image-update.yaml",
        &gallery_image_update(&deploy.bare, "ghcr.io/acme/api"),
    );
    let event_file = fixture("events/image.updated.json").display().to_string();
    let planned = project
        .args(&["plan", "--event", &event_file])
        .env("DEPLOY_REPO_TOKEN", "not-needed-for-a-local-repository")
        .run()
        .expect_code(0);
    let stdout = planned.stdout();
    for line in [
        "-  tag: \"1.4.0\"   # set by vane".to_string(),
        "+  tag: \"1.4.1\"   # set by vane".to_string(),
        "-  digest: \"\"      # set by vane".to_string(),
        format!("+  digest: \"{digest}\"      # set by vane"),
    ] {
        assert!(stdout.contains(&line), "{line}\n{stdout}");
    }
    assert_eq!(deploy.log(), vec!["seed"], "a dry run commits nothing");
    assert_eq!(deploy.values(), VALUES);

    let run = Vane::new()
        .workflow(
            "image-update.yaml",
            &gallery_image_update(&deploy.bare, "ghcr.io/acme/api"),
        )
        .args(&["run", "--json", "--event", &event_file])
        .env("DEPLOY_REPO_TOKEN", "not-needed-for-a-local-repository")
        .run()
        .expect_code(0);
    let line = &run.json_lines()[0];
    assert_eq!(
        workflow_entry(line, "image-update")["run"]["status"],
        "success"
    );
    assert_eq!(
        deploy.values(),
        VALUES
            .replace("\"1.4.0\"", "\"1.4.1\"")
            .replace("digest: \"\"", &format!("digest: \"{digest}\""))
    );
    assert_eq!(
        deploy.log(),
        vec![
            "api: 1.4.1 (patch)\n\n`1.4.1` is the highest version in `>=1.4.0 <2` of 3 tags; it was `1.4.0`",
            "seed"
        ]
    );
}

/// The gallery's metric alert, run for real: the webhook URL comes from the `ALERT_WEBHOOK_URL`
/// secret in the environment (templates never see the process environment, so an `env.` lookup
/// here could never be set), and the alert reaches that server.
#[test]
fn a_hot_metric_alerts_the_webhook_its_secret_names() {
    let (url, requests) = crate::support::http_server(|_| (200, Vec::new(), "ok".to_string()));
    let vane = Vane::new();
    std::fs::copy(
        root().join("workflows/metric-threshold.yaml"),
        vane.path().join("workflows/metric-threshold.yaml"),
    )
    .unwrap();
    let run = vane
        .env("ALERT_WEBHOOK_URL", &format!("{url}/alerts"))
        .args(&["run", "--json", "--event"])
        .args(&[fixture("events/metric.cpu.json").display().to_string()])
        .run()
        .expect_code(0);
    let request = requests
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the alert reached the webhook");
    assert_eq!(
        (request.method.as_str(), request.url.as_str()),
        ("POST", "/alerts")
    );
    assert!(
        request
            .body
            .contains("metric.cpu is 91.5 on sensors/rack-4/cpu"),
        "{}",
        request.body
    );
    // Without the secret the run fails before sending anything, saying which secret is missing.
    let vane = Vane::new();
    std::fs::copy(
        root().join("workflows/metric-threshold.yaml"),
        vane.path().join("workflows/metric-threshold.yaml"),
    )
    .unwrap();
    let missing = vane
        .args(&["run", "--event"])
        .args(&[fixture("events/metric.cpu.json").display().to_string()])
        .run();
    assert_ne!(missing.code(), 0, "{}", run.stdout());
    assert!(
        format!("{}{}", missing.stdout(), missing.stderr())
            .contains("secret `ALERT_WEBHOOK_URL` is not set"),
        "{}{}",
        missing.stdout(),
        missing.stderr()
    );
}
