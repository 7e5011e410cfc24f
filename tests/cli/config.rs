//! `vane.yaml` (SPEC §6): its paths are the defaults of the flags, its secrets say where secrets
//! are read from, and a broken one stops every project command with its positions.

use crate::support::{Vane, workflow_entry};

const SAY: &str = "version: 1\nname: say\nsecrets: [TOKEN]\non:\n  dispatch: {}\nsteps:\n  \
                   - id: say\n    run: echo \"from {{ vars.where }} token-length={{ secrets.TOKEN | length }}\"\nvars:\n  where: conf\n";

#[test]
fn the_config_names_the_folders_and_where_secrets_come_from() {
    let run = Vane::new()
        .file("conf/flows/say.yaml", SAY)
        .file("conf/token.txt", "abcdef\n")
        .file(
            "conf/vane.yaml",
            "version: 1\nworkflows: flows\nstate: state/vane.db\nsecrets:\n  TOKEN: { file: token.txt }\n",
        )
        .args(&["--config", "conf/vane.yaml", "dispatch", "say", "--json"])
        .run()
        .expect_code(0);
    let line = run.json_lines().remove(0);
    let say = workflow_entry(&line, "say");
    assert_eq!(
        say["run"]["steps"][0]["outputs"]["stdout"],
        "from conf token-length=6"
    );
    // Relative to the file's folder, not to where vane started.
    assert!(run.dir.join("conf/state/vane.db").exists());
    assert!(!run.dir.join(".vane").exists());
}

#[test]
fn a_flag_wins_over_the_config_and_vane_yaml_is_found_by_default() {
    let run = Vane::new()
        .workflow("say.yaml", &SAY.replace("from ", "disk "))
        .file("elsewhere/say.yaml", SAY)
        .file("vane.yaml", "version: 1\nworkflows: elsewhere\n")
        .env("TOKEN", "xyz")
        .args(&["--state", ":memory:", "dispatch", "say", "--json"])
        .run()
        .expect_code(0);
    let line = run.json_lines().remove(0);
    assert_eq!(
        workflow_entry(&line, "say")["run"]["steps"][0]["outputs"]["stdout"],
        "from conf token-length=3"
    );
    let flagged = Vane::new()
        .workflow("say.yaml", &SAY.replace("from ", "disk "))
        .file("elsewhere/say.yaml", SAY)
        .file("vane.yaml", "version: 1\nworkflows: elsewhere\n")
        .env("TOKEN", "xyz")
        .args(&[
            "--state",
            ":memory:",
            "--workflows",
            "workflows",
            "dispatch",
            "say",
            "--json",
        ])
        .run()
        .expect_code(0);
    let line = flagged.json_lines().remove(0);
    assert_eq!(
        workflow_entry(&line, "say")["run"]["steps"][0]["outputs"]["stdout"],
        "disk conf token-length=3"
    );
}

#[test]
fn a_broken_config_is_reported_at_its_lines_and_nothing_runs() {
    let run = Vane::new()
        .workflow("say.yaml", SAY)
        .file(
            "vane.yaml",
            "version: 1\nserve:\n  webhooks:\n    github: { secret: { env: S } }\n    gitlub: {}\n",
        )
        .args(&["--state", ":memory:", "dispatch", "say"])
        .run()
        .expect_code(2);
    assert!(
        run.stderr().contains(
            "vane.yaml:5:5: error: serve.webhooks: unknown key `gitlub` (did you mean `gitlab`?)"
        ),
        "{}",
        run.stderr()
    );
    assert_eq!(run.stdout(), "");
    // Commands about vane itself still work beside it.
    Vane::new()
        .file("vane.yaml", "version: 7\n")
        .args(&["schema"])
        .run()
        .expect_code(0);
    let missing = Vane::new()
        .args(&["--config", "nope.yaml", "validate"])
        .run()
        .expect_code(2);
    assert!(
        missing
            .stderr()
            .contains("nope.yaml:1:1: error: cannot read the configuration")
    );
}
