//! `vane init`: a starter project that validates and passes its own tests, written once.

use crate::support::Vane;

/// An empty folder (the builder's `workflows/` and `templates/` removed).
fn empty() -> Vane {
    let vane = Vane::new();
    std::fs::remove_dir(vane.path().join("workflows")).unwrap();
    std::fs::remove_dir(vane.path().join("templates")).unwrap();
    vane
}

#[test]
fn init_writes_a_project_that_validates_and_passes_its_tests() {
    let vane = empty();
    let dir = vane.path().to_path_buf();
    let run = vane.args(&["init"]).run().expect_code(0);
    for file in [
        "vane.yaml",
        "workflows/starter.test.yaml",
        "templates/deployment.yaml.j2",
        "events/push.json",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
        assert!(
            run.stdout().contains(&format!("created {file}\n")),
            "{}",
            run.stdout()
        );
    }
    let ignored = std::fs::read_to_string(dir.join(".gitignore")).unwrap();
    assert!(ignored.ends_with("\n.vane/\nout/\n"), "{ignored}");
    assert!(
        run.stdout().contains("created .gitignore\n"),
        "{}",
        run.stdout()
    );
    let config = std::fs::read_to_string(dir.join("vane.yaml")).unwrap();
    assert!(config.contains("version: 1\nworkflows: workflows\ntemplates: templates\n"));
    // One example per step kind.
    let workflows: String = std::fs::read_dir(dir.join("workflows"))
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    for kind in [
        "run:", "http:", "notify:", "render:", "gitops:", "scale:", "emit:",
    ] {
        assert!(workflows.contains(kind), "no `{kind}` example");
    }

    let in_dir = |args: &[&str]| {
        let mut command = assert_cmd::Command::cargo_bin("vane").unwrap();
        command
            .current_dir(&dir)
            .args(args)
            .env_remove("VANE_WORKFLOWS");
        command.output().unwrap()
    };
    let validate = in_dir(&["validate"]);
    assert_eq!(
        validate.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&validate.stdout)
    );
    assert!(String::from_utf8_lossy(&validate.stdout).contains("0 errors, 0 warnings"));
    let test = in_dir(&["test"]);
    let stdout = String::from_utf8_lossy(&test.stdout);
    assert_eq!(test.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.ends_with(" passed, 0 failed\n") && !stdout.contains("\n0 passed"),
        "{stdout}"
    );
    let plan = in_dir(&["plan", "--event", "events/push.json"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );

    // A second init writes nothing and names what is in the way.
    let again = in_dir(&["init"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("`vane.yaml`"));
}

#[test]
fn init_refuses_when_any_file_exists_and_writes_nothing() {
    let vane = empty().file("workflows/build.yaml", "mine\n");
    let dir = vane.path().to_path_buf();
    let run = vane.args(&["init"]).run().expect_code(2);
    assert_eq!(
        run.stderr(),
        "error: `workflows/build.yaml` already exists; `vane init` writes nothing over existing files\n"
    );
    assert!(!dir.join("vane.yaml").exists());
    assert!(!dir.join("events").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("workflows/build.yaml")).unwrap(),
        "mine\n"
    );
}

#[test]
fn init_into_a_named_folder() {
    let vane = empty();
    let dir = vane.path().to_path_buf();
    vane.args(&["init", "ops"]).run().expect_code(0);
    assert!(dir.join("ops/workflows/starter.test.yaml").is_file());
}
