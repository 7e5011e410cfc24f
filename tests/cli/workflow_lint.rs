//! The repository's GitHub workflows, its action and the README's example workflow, checked with
//! the ecosystem's linters (zizmor, actionlint). A linter that is not installed skips its check
//! with a printed reason (`.ci/run` installs both where it can).

use crate::support::root;
use std::process::Command;

/// Whether `tool` runs at all; prints why the check is skipped when it does not.
fn installed(tool: &str) -> bool {
    match Command::new(tool).arg("--version").output() {
        Ok(output) if output.status.success() => true,
        _ => {
            println!("skipped: `{tool}` is not installed (pip install {tool}, or see .ci/run)");
            false
        }
    }
}

/// The README's example workflow (the YAML block starting `# .github/workflows/vane.yml`).
fn readme_example() -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("```yaml\n# .github/workflows/vane.yml\n")
        .expect("the README has an example workflow");
    let body = &readme[start + "```yaml\n".len()..];
    body[..body.find("```").unwrap()].to_string()
}

#[test]
fn zizmor_finds_nothing_in_the_action_and_the_release_workflow() {
    if !installed("zizmor") {
        return;
    }
    for file in ["action.yml", ".github/workflows/release.yml"] {
        let output = Command::new("zizmor")
            .args(["--offline", "--no-progress"])
            .arg(root().join(file))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "zizmor {file}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn actionlint_finds_nothing_in_the_release_workflow_and_the_readme_example() {
    let example = readme_example();
    assert!(example.contains("workflows: [CI]") && example.contains("permissions:"));
    if !installed("actionlint") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(workflows.join("vane.yml"), example).unwrap();
    std::fs::copy(
        root().join(".github/workflows/release.yml"),
        workflows.join("release.yml"),
    )
    .unwrap();
    let output = Command::new("actionlint")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "actionlint:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
