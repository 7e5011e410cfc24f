//! The user docs are true to the binary: they stand on their own (no section numbers of the
//! specification in the docs or in `--help`).

use crate::support::{Vane, root};

/// Every subcommand `vane --help` lists.
fn subcommands() -> Vec<String> {
    let help = Vane::new().args(&["--help"]).run().expect_code(0).stdout();
    help.split("Commands:")
        .nth(1)
        .expect("`vane --help` lists its commands")
        .lines()
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn no_doc_and_no_help_cites_the_specification() {
    let mut texts = vec![(
        "README.md".to_string(),
        std::fs::read_to_string(root().join("README.md")).unwrap(),
    )];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|extension| extension == "md") {
            texts.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
    let commands = subcommands();
    assert!(commands.len() > 10, "{commands:?}");
    texts.push((
        "vane --help".to_string(),
        Vane::new().args(&["--help"]).run().stdout(),
    ));
    for command in &commands {
        texts.push((
            format!("vane {command} --help"),
            Vane::new()
                .args(&[command.as_str(), "--help"])
                .run()
                .stdout(),
        ));
    }
    for (name, text) in texts {
        for (number, line) in text.lines().enumerate() {
            assert!(
                !line.contains("SPEC") && !line.contains('§'),
                "{name}:{}: cites the specification: {line}",
                number + 1
            );
        }
    }
}

/// The README's tour: every fenced block after a `<!-- vane-tour: PATH -->` marker is written to
/// PATH, and every one after `<!-- vane-tour: run -->` is run with `sh -e`, in that order, in a
/// temporary folder holding the repository's `templates/` and `tests/fixtures/`, with this vane
/// first on `PATH`. Each must succeed.
#[test]
fn the_readme_tour_runs() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = |from: &str| {
        let status = std::process::Command::new("cp")
            .args(["-R", &root().join(from).display().to_string()])
            .arg(dir.path().join(from))
            .status()
            .unwrap();
        assert!(status.success(), "copying {from}");
    };
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    copy("templates");
    copy("tests/fixtures");
    let vane = assert_cmd::cargo::cargo_bin("vane");
    let path = format!(
        "{}:{}",
        vane.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (mut files, mut runs) = (0, 0);
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(target) = line
            .strip_prefix("<!-- vane-tour: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "a tour marker is followed by a fenced block: {fence}"
        );
        let block: String = lines
            .by_ref()
            .take_while(|line| !line.starts_with("```"))
            .map(|line| format!("{line}\n"))
            .collect();
        if target == "run" {
            runs += 1;
            let output = std::process::Command::new("sh")
                .args(["-ec", &block])
                .current_dir(dir.path())
                .env("PATH", &path)
                .env_remove("GITHUB_ACTIONS")
                .env_remove("VANE_WORKFLOWS")
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "the README's tour block failed:\n{block}\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        } else {
            files += 1;
            let file = dir.path().join(target);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, block).unwrap();
        }
    }
    assert!(
        files >= 1 && runs >= 2,
        "{files} files and {runs} runs in the tour"
    );
}
