//! `vane completions SHELL`, `vane man [COMMAND]` and `vane help`: generated from the clap definitions.

use crate::support::Vane;

#[test]
fn every_shell_completes_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
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

#[test]
fn completions_help_lists_the_shells_it_accepts() {
    let run = Vane::new()
        .args(&["completions", "--help"])
        .run()
        .expect_code(0);
    assert!(
        run.stdout()
            .contains("[possible values: bash, elvish, fish, powershell, zsh]"),
        "{}",
        run.stdout()
    );
}

#[test]
fn every_command_has_its_own_man_page_with_an_environment_section() {
    let main = Vane::new().args(&["man"]).run().expect_code(0).stdout();
    // The main page refers to vane-run(1); that page exists.
    assert!(main.contains("vane\\-run(1)"), "{main}");
    assert!(main.contains(".SH ENVIRONMENT\n"));
    let run = Vane::new()
        .args(&["man", "run"])
        .run()
        .expect_code(0)
        .stdout();
    assert!(
        run.starts_with(".TH vane-run 1"),
        "{}",
        &run[..run.len().min(200)]
    );
    assert!(run.contains(".SH ENVIRONMENT\n"), "{run}");
    // A run option's variable and a global option's variable.
    assert!(
        run.contains("\\fBVANE_PARALLEL\\fR\nSets \\fB\\-\\-parallel\\fR"),
        "{run}"
    );
    assert!(run.contains("\\fBVANE_WORKFLOWS\\fR"), "{run}");
    assert!(run.contains("\\fBNO_COLOR\\fR"), "{run}");
    let unknown = Vane::new().args(&["man", "rnu"]).run().expect_code(2);
    assert!(
        unknown
            .stderr()
            .contains("error: no command `rnu` (did you mean `run`?)"),
        "{}",
        unknown.stderr()
    );
}

#[test]
fn help_run_groups_its_options_apart_from_the_global_ones_and_shows_examples() {
    let help = Vane::new()
        .args(&["help", "run"])
        .run()
        .expect_code(0)
        .stdout();
    let event = help
        .find("\nEvent options:\n")
        .expect("an Event options group");
    let global = help
        .find("\nGlobal options:\n")
        .expect("a Global options group");
    let examples = help.find("\nExamples:\n").expect("examples");
    assert!(event < global && global < examples, "{help}");
    // `--event` is a run option, `--workflows` a global one.
    assert!(help[event..global].contains("--event <FILE>"), "{help}");
    assert!(
        help[global..examples].contains("--workflows <DIR>"),
        "{help}"
    );
    assert!(help[examples..].contains("producer | vane run"), "{help}");
}
