//! `vane validate`: every problem in every file, as `file:line:col: error: …`, exit 2.

use crate::support::Vane;

#[test]
fn every_problem_in_every_file_is_reported_with_its_position() {
    let run = Vane::new()
        .workflow("a-unknown-key.yaml", "version: 1\nname: a\non:\n  push:\n    branch: [main]\nsteps:\n  - run: 'true'\n")
        .workflow("b-bad-glob.yaml", "version: 1\nname: b\non:\n  push:\n    branches: [main, \"release/[a-\"]\nsteps:\n  - run: 'true'\n")
        .workflow("c-template.yaml", "version: 1\nname: c\non: { push: {} }\nsteps:\n  - id: x\n    run: echo {{ event.repo\n")
        .workflow("d-version.yaml", "version: 2\nname: d\non: { push: {} }\nsteps:\n  - run: 'true'\n")
        .workflow("e-step-key.yaml", "version: 1\nname: e\non: { push: {} }\nsteps:\n  - id: x\n    rn: echo\n")
        .workflow("f-ok.yaml", "version: 1\nname: f\non: { push: {} }\nsteps:\n  - run: 'true'\n")
        .args(&["validate"])
        .run()
        .expect_code(2);
    let stdout = run.stdout();
    let expected = [
        "workflows/a-unknown-key.yaml:5:5: error: on.push: unknown key `branch` (did you mean `branches`?)",
        "workflows/b-bad-glob.yaml:5:22: error: branches: invalid pattern `release/[a-`: unclosed `[`",
        "workflows/c-template.yaml:6:10: error: steps[0].run: unclosed `{{`",
        "workflows/d-version.yaml:1:10: error: unsupported workflow `version` `2`: this vane reads version 1",
        "workflows/e-step-key.yaml:6:5: error: steps[0]: unknown key `rn` (did you mean `run`?)",
        "1 workflow valid, 5 errors, 0 warnings",
    ];
    for line in expected {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
}

#[test]
fn names_must_be_unique_and_well_formed() {
    let run = Vane::new()
        .workflow(
            "one.yaml",
            "version: 1\nname: same\non: { push: {} }\nsteps:\n  - run: 'true'\n",
        )
        .workflow(
            "two.yaml",
            "version: 1\nname: same\non: { push: {} }\nsteps:\n  - run: 'true'\n",
        )
        .workflow(
            "three.yaml",
            "version: 1\nname: Bad Name\non: { push: {} }\nsteps:\n  - run: 'true'\n",
        )
        .args(&["validate"])
        .run()
        .expect_code(2);
    assert!(run.stdout().contains("workflows/two.yaml:2:7: error: workflow name `same` is already used by workflows/one.yaml"), "{}", run.stdout());
    assert!(
        run.stdout()
            .contains("workflows/three.yaml:2:7: error: workflow name `Bad Name` must match"),
        "{}",
        run.stdout()
    );
}

#[test]
fn filter_rules_are_checked_at_load_time() {
    let run = Vane::new()
        .workflow("w.yaml", "version: 1\nname: w\non:\n  push:\n    branches: [main]\n    branches-ignore: [dev]\n  pull_request:\n    paths: [\"!docs/**\"]\nsteps:\n  - run: 'true'\n    timeout: 5 minutes\n")
        .args(&["validate"])
        .run()
        .expect_code(2);
    let stdout = run.stdout();
    assert!(
        stdout.contains(
            "workflows/w.yaml:6:5: error: `branches` and `branches-ignore` cannot both be set"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("workflows/w.yaml:8:13: error: paths: a list with `!` patterns needs at least one positive pattern"), "{stdout}");
    assert!(
        stdout.contains("workflows/w.yaml:11:14: error: invalid duration `5 minutes`"),
        "{stdout}"
    );
}

#[test]
fn run_refuses_to_start_with_a_broken_workflow() {
    let run = Vane::new()
        .workflow(
            "ok.yaml",
            "version: 1\nname: ok\non: { deploy: {} }\nsteps:\n  - run: touch ran\n",
        )
        .workflow(
            "bad.yaml",
            "version: 1\nname: bad\non: { deploy: {} }\nstep: []\n",
        )
        .args(&["run"])
        .stdin(r#"{"type": "deploy", "data": {}}"#)
        .run()
        .expect_code(2);
    assert!(
        run.stderr()
            .contains("workflows/bad.yaml:4:1: error: unknown key `step` (did you mean `steps`?)"),
        "{}",
        run.stderr()
    );
    assert!(!run.dir.join("ran").exists());
}

#[test]
fn undefined_names_fail_with_file_line_and_name() {
    let run = Vane::new()
        .workflow("w.yaml", "version: 1\nname: w\non: { deploy: {} }\nsteps:\n  - id: x\n    run: |\n      echo one\n      echo {{ event.data.missing.field }}\n")
        .args(&["run", "--json"])
        .stdin(r#"{"type": "deploy", "data": {}}"#)
        .run()
        .expect_code(1);
    let stdout = run.stdout();
    assert!(
        stdout.contains("workflows/w.yaml:8:7: steps[0].run: undefined value `event.data.missing`"),
        "{stdout}"
    );
}

#[test]
fn an_undefined_value_in_a_run_script_fails_the_step_instead_of_running_empty() {
    let run = Vane::new()
        .workflow("w.yaml", "version: 1\nname: w\non: { deploy: {} }\nsteps:\n  - id: x\n    run: touch ran-{{ event.data.nope }}\n")
        .args(&["run", "--json"])
        .stdin(r#"{"type": "deploy", "data": {}}"#)
        .run()
        .expect_code(1);
    assert!(
        run.stdout()
            .contains("workflows/w.yaml:6:10: steps[0].run: undefined value `event.data.nope`"),
        "{}",
        run.stdout()
    );
    assert!(
        std::fs::read_dir(&run.dir)
            .unwrap()
            .flatten()
            .all(|entry| !entry.file_name().to_string_lossy().starts_with("ran"))
    );
}

#[test]
fn render_templates_are_checked_at_load_time() {
    let run = Vane::new()
        .workflow("w.yaml", "version: 1\nname: w\non: { push: {} }\nsteps:\n  - render: missing.j2\n    to: out.txt\n  - render: broken.j2\n    to: out2.txt\n")
        .template("broken.j2", "line one\n{% if %}\n")
        .args(&["validate"])
        .run()
        .expect_code(2);
    let stdout = run.stdout();
    assert!(
        stdout.contains("workflows/w.yaml:5:13: error: render: template `missing.j2` not found\n"),
        "{stdout}"
    );
    assert!(stdout.contains("workflows/w.yaml:7:13: error: render: template `broken.j2` (line 2): template syntax error"), "{stdout}");
}

#[test]
fn a_problem_shows_its_line_with_a_caret_under_the_column() {
    let run = Vane::new()
        .workflow(
            "a.yaml",
            "version: 1\nname: a\non:\n  push:\n    branch: [main]\nsteps:\n  - run: 'true'\n",
        )
        .workflow(
            "b.yaml",
            "version: 1\nname: b\non: { push: {} }\nsteps:\n  - run: echo {{ secrets.TOKEN }}\n",
        )
        .args(&["validate"])
        .run()
        .expect_code(2);
    assert_eq!(
        run.stdout(),
        "workflows/a.yaml:5:5: error: on.push: unknown key `branch` (did you mean `branches`?)\n  \
         |\n5 |     branch: [main]\n  |     ^^^^^^\n\
         workflows/b.yaml:5:18: warning: template uses secret `TOKEN`, which is not declared: add it to `secrets:`\n  \
         |\n5 |   - run: echo {{ secrets.TOKEN }}\n  |                  ^^^^^^^^^^^^^\n\
         1 workflow valid, 1 error, 1 warning\n"
    );
}

#[test]
fn an_unquoted_colon_in_a_value_gets_a_hint_to_quote_it() {
    let run = Vane::new()
        .workflow(
            "w.yaml",
            "version: 1\nname: w\non: { push: {} }\nsteps:\n  - run: echo a: b\n",
        )
        .args(&["validate"])
        .run()
        .expect_code(2);
    assert!(
        run.stdout().contains(
            "(a value holding `: ` must be quoted: `key: \"a: b\"`)\n  |\n5 |   - run: echo a: b\n"
        ),
        "{}",
        run.stdout()
    );
}

#[test]
fn a_missing_workflows_folder_says_how_to_make_one() {
    let run = Vane::new()
        .args(&["validate", "--workflows", "nowhere"])
        .run()
        .expect_code(2);
    assert!(
        run.stdout().contains(
            "nowhere:1:1: error: cannot read the workflows folder: No such file or directory (os error 2) \
             (create one with `vane init`, or name yours with `--workflows <dir>`)"
        ),
        "{}",
        run.stdout()
    );
}

#[test]
fn an_empty_workflows_folder_says_none_were_loaded() {
    let run = Vane::new()
        .args(&["run"])
        .stdin(r#"{"type": "push", "data": {}}"#)
        .run()
        .expect_code(0);
    assert!(
        run.stdout().contains("0 workflows loaded"),
        "{}{}",
        run.stdout(),
        run.stderr()
    );
}

#[test]
fn an_undeclared_secret_fails_the_run_saying_to_declare_it() {
    let run = Vane::new()
        .workflow(
            "w.yaml",
            "version: 1\nname: w\non: { push: {} }\nsteps:\n  - run: echo {{ secrets.TOKEN }}\n",
        )
        .args(&["run"])
        .stdin(r#"{"type": "push", "data": {}}"#)
        .run();
    let output = format!("{}{}", run.stdout(), run.stderr());
    assert!(
        output.contains("undefined value `secrets.TOKEN` (a workflow sees only the secrets it declares: add it to `secrets:`)"),
        "{output}"
    );
}

#[test]
fn every_unknown_key_is_reported_in_one_round_also_below_a_misspelt_one() {
    let run = Vane::new()
        .workflow(
            "w.yaml",
            "version: 1\nname: w\non:\n  push:\n    branch: [main]\n    path: [\"src/**\"]\nstep:\n  - run: 'true'\nowner: me\n",
        )
        .workflow(
            "twice.yaml",
            "version: 1\nname: twice\non: { push: {} }\nsteps:\n  - run: 'true'\nname: again\n",
        )
        .args(&["validate"])
        .run()
        .expect_code(2);
    let stdout = run.stdout();
    let problems: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("workflows/"))
        .collect();
    assert_eq!(
        problems,
        [
            "workflows/twice.yaml:6:1: error: duplicate key `name`",
            "workflows/w.yaml:7:1: error: unknown key `step` (did you mean `steps`?)",
            "workflows/w.yaml:9:1: error: unknown key `owner`, expected one of `version`, `name`, `description`, `on`, `if`, `secrets`, `vars`, `env`, `concurrency`, `correlate`, `window`, `debounce`, `throttle`, `timeout`, `steps`, `jobs`",
            "workflows/w.yaml:5:5: error: on.push: unknown key `branch` (did you mean `branches`?)",
            "workflows/w.yaml:6:5: error: on.push: unknown key `path` (did you mean `paths`?)",
        ],
        "{}",
        run.stdout()
    );
}
