//! `vane completions SHELL` and `vane man`: generated from the clap definitions.

use crate::support::Vane;

#[test]
fn every_shell_completes_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let run = Vane::new()
            .args(&["completions", shell])
            .run()
            .expect_code(0);
        let script = run.stdout();
        for command in ["validate", "test", "schema"] {
            assert!(script.contains(command), "{shell}: no `{command}`");
        }
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    Vane::new()
        .args(&["completions", "tcsh"])
        .run()
        .expect_code(2);
}

#[test]
fn man_prints_a_roff_page() {
    let run = Vane::new().args(&["man"]).run().expect_code(0);
    let page = run.stdout();
    assert!(page.starts_with(".TH"), "{}", &page[..page.len().min(200)]);
    assert!(page.contains("validate"));
}
