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
