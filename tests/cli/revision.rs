//! Workflows traced to their git revision (SPEC §4.3), and loaded from one (`--workflows-ref`).

use crate::support::{Run, Vane, workflow_entry};
use std::path::Path;
use std::process::Command;

const PUSH: &str = r#"{"type": "push", "data": {}}"#;

/// A workflow whose one step says `word` and the revision it was loaded from.
fn hello(word: &str) -> String {
    format!(
        "version: 1\nname: hello\non:\n  push: {{}}\nsteps:\n  - id: say\n    run: echo {word} {{{{ workflow.revision }}}}\n"
    )
}

/// A workflow that renders `greeting.j2` to `out/greeting.txt`.
const RENDER: &str = "version: 1\nname: greet\non:\n  push: {}\nsteps:\n  - id: write\n    render: greeting.j2\n    to: out/greeting.txt\n";

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=vane",
            "-c",
            "user.email=vane@localhost",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Commits everything in the folder; returns the new commit's sha.
fn commit(dir: &Path, message: &str) -> String {
    if !dir.join(".git").exists() {
        git(dir, &["init", "-q"]);
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

/// One invocation in the project folder, which outlives it (several runs share one repository).
fn vane(project: &Vane, args: &[&str]) -> Run {
    let output = project
        .command()
        .args(args)
        .write_stdin(PUSH)
        .output()
        .expect("vane runs");
    Run {
        output,
        dir: project.path().to_path_buf(),
    }
}

/// The `say` step's rendered script and the `revision` of workflow `hello` in a `--json` line.
fn said(run: &Run) -> (String, String) {
    let line = run.json_lines().remove(0);
    let entry = workflow_entry(&line, "hello");
    (
        entry["run"]["steps"][0]["rendered"]["run"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        entry["revision"].as_str().unwrap_or_default().to_string(),
    )
}

/// A repository where `hello` said `one` in the first commit and `two` in the second.
fn two_commits() -> (Vane, String, String) {
    let project = Vane::new().workflow("hello.yaml", &hello("one"));
    let first = commit(project.path(), "first");
    let project = project.workflow("hello.yaml", &hello("two"));
    let second = commit(project.path(), "second");
    (project, first, second)
}

#[test]
fn plan_reports_the_head_commit_and_a_ref_loads_the_older_text() {
    let (project, first, second) = two_commits();

    let head = vane(&project, &["plan", "--json"]).expect_code(0);
    assert_eq!(
        said(&head),
        (format!("echo two '{second}'"), second.clone())
    );

    let old = vane(&project, &["plan", "--json", "--workflows-ref", &first]).expect_code(0);
    assert_eq!(said(&old), (format!("echo one '{first}'"), first.clone()));

    // Branches, tags and anything else `git rev-parse` takes; the sha recorded is the commit's.
    git(project.path(), &["tag", "v1", &first]);
    for rev in ["v1", "HEAD~1", &first[..8]] {
        let run = vane(&project, &["plan", "--json", "--workflows-ref", rev]).expect_code(0);
        assert_eq!(said(&run).1, first, "{rev}");
    }
    let from_env = project
        .command()
        .args(["plan", "--json"])
        .env("VANE_WORKFLOWS_REF", "v1")
        .write_stdin(PUSH)
        .output()
        .expect("vane runs");
    let from_env = Run {
        output: from_env,
        dir: project.path().to_path_buf(),
    }
    .expect_code(0);
    assert_eq!(said(&from_env).1, first);
}

#[test]
fn a_ref_ignores_the_working_tree() {
    let (project, _, second) = two_commits();
    // Uncommitted and untracked changes are not part of any revision.
    let project = project
        .workflow("hello.yaml", "this is not yaml: [")
        .workflow("extra.yaml", "neither: [");
    let run = vane(&project, &["plan", "--json", "--workflows-ref", "main"]).expect_code(0);
    assert_eq!(said(&run), (format!("echo two '{second}'"), second));
    // A workflow deleted from the working tree still loads from the revision that has it.
    std::fs::remove_dir_all(project.path().join("workflows")).unwrap();
    vane(&project, &["plan", "--json", "--workflows-ref", "main"]).expect_code(0);
}

#[test]
fn changes_not_committed_make_the_revision_dirty() {
    let (project, _, second) = two_commits();
    let project = project
        .file(".gitignore", "*.bak\n")
        .workflow("notes.bak", "ignored");
    commit(project.path(), "ignore backups");
    let head = git(project.path(), &["rev-parse", "HEAD"]);
    assert_ne!(head, second);
    // An ignored file, and a change outside the workflows and templates folders, are clean.
    let project = project.workflow("more.bak", "ignored").file("README", "x");
    assert_eq!(
        said(&vane(&project, &["plan", "--json"]).expect_code(0)).1,
        head
    );

    let project = project.workflow("hello.yaml", &hello("three"));
    let run = vane(&project, &["plan", "--json"]).expect_code(0);
    assert_eq!(
        said(&run),
        (
            format!("echo three '{head}+dirty'"),
            format!("{head}+dirty")
        )
    );

    // Staged counts, and so does a new template.
    git(project.path(), &["add", "workflows/hello.yaml"]);
    assert!(
        said(&vane(&project, &["plan", "--json"]))
            .1
            .ends_with("+dirty")
    );
    commit(project.path(), "three");
    let project = project.template("new.j2", "x");
    assert!(
        said(&vane(&project, &["plan", "--json"]))
            .1
            .ends_with("+dirty")
    );
}

#[test]
fn outside_a_repository_there_is_no_revision() {
    let project = Vane::new().workflow("hello.yaml", &hello("one"));
    let run = vane(&project, &["plan", "--json"]).expect_code(0);
    let line = run.json_lines().remove(0);
    assert!(workflow_entry(&line, "hello")["revision"].is_null());
    // An empty `VANE_WORKFLOWS_REF` (a CI input left blank) names no revision.
    let output = project
        .command()
        .args(["plan", "--json"])
        .env("VANE_WORKFLOWS_REF", "")
        .write_stdin(PUSH)
        .output()
        .expect("vane runs");
    Run {
        output,
        dir: project.path().to_path_buf(),
    }
    .expect_code(0);
}

#[test]
fn templates_come_from_the_same_revision() {
    let project = Vane::new()
        .workflow("greet.yaml", RENDER)
        .template("greeting.j2", "hello from the first commit\n");
    let first = commit(project.path(), "first");
    let project = project.template("greeting.j2", "hello from the second commit\n");
    commit(project.path(), "second");

    vane(&project, &["run", "--json", "--workflows-ref", &first]).expect_code(0);
    let written = std::fs::read_to_string(project.path().join("out/greeting.txt")).unwrap();
    assert_eq!(written, "hello from the first commit\n");
    vane(&project, &["run", "--json"]).expect_code(0);
    let written = std::fs::read_to_string(project.path().join("out/greeting.txt")).unwrap();
    assert_eq!(written, "hello from the second commit\n");
}

#[test]
fn validate_checks_the_revision() {
    let project = Vane::new().workflow("hello.yaml", "version: 1\nname: hello\n");
    let broken = commit(project.path(), "broken");
    let project = project.workflow("hello.yaml", &hello("fixed"));
    commit(project.path(), "fixed");
    vane(&project, &["validate"]).expect_code(0);
    let run = vane(&project, &["validate", "--workflows-ref", &broken]).expect_code(2);
    assert!(
        run.stdout()
            .contains("workflows/hello.yaml:1:1: error: missing required key `on`"),
        "{}",
        run.stdout()
    );
}

#[test]
fn a_ref_that_cannot_be_read_is_a_usage_error() {
    let (project, first, _) = two_commits();
    let run = vane(&project, &["plan", "--workflows-ref", "no-such-branch"]).expect_code(2);
    assert!(
        run.stderr().contains(
            "error: `--workflows-ref`: `no-such-branch` is not a commit of the repository"
        ),
        "{}",
        run.stderr()
    );
    assert_eq!(run.stdout(), "");

    let run = vane(
        &project,
        &[
            "plan",
            "--workflows",
            "elsewhere",
            "--workflows-ref",
            &first,
        ],
    )
    .expect_code(2);
    assert!(
        run.stderr().contains(&format!(
            "the workflows folder `elsewhere` does not exist at `{first}`"
        )),
        "{}",
        run.stderr()
    );

    let run = vane(
        &project,
        &[
            "validate",
            "--workflows-ref",
            &first,
            "workflows/hello.yaml",
        ],
    )
    .expect_code(2);
    assert!(
        run.stderr().contains("name no files with it"),
        "{}",
        run.stderr()
    );

    let outside = Vane::new().workflow("hello.yaml", &hello("one"));
    let run = vane(&outside, &["plan", "--workflows-ref", "main"]).expect_code(2);
    assert!(
        run.stderr().contains("is not inside a git repository"),
        "{}",
        run.stderr()
    );
}

#[test]
fn history_shows_the_revision_each_run_came_from() {
    let (project, first, second) = two_commits();
    vane(&project, &["run", "--quiet", "--workflows-ref", &first]).expect_code(0);
    vane(&project, &["run", "--quiet"]).expect_code(0);
    let history = vane(&project, &["history", "--json"]).expect_code(0);
    let mut revisions: Vec<String> = history
        .json_lines()
        .iter()
        .map(|run| run["revision"].as_str().unwrap_or_default().to_string())
        .collect();
    revisions.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(revisions, expected);
    let human = vane(&project, &["history"]).expect_code(0);
    assert!(
        human.stdout().contains(&expected[0][..7]),
        "{}",
        human.stdout()
    );
}
