//! Hardening: hostile event data in bash arithmetic contexts, hostile files in the workflows
//! folder, hostile webhook requests, broken pipes and absurd values; every one refused with a
//! clear error, never run, never a panic.

use crate::support::Vane;

fn push_event(value: &str) -> String {
    serde_json::json!({"type": "push", "data": {"x": value}}).to_string()
}

/// Each bash arithmetic context, with a canary value that creates a file when bash runs it:
/// `validate` and `run` both refuse the workflow with the interpolation's position, and the
/// file never appears.
#[test]
fn event_data_in_arithmetic_contexts_is_a_load_error_and_never_runs() {
    let marker_dir = tempfile::tempdir().unwrap();
    let canary = marker_dir.path().join("pwned");
    let payload = format!("a[$(touch {})]", canary.display());
    let scripts = [
        (
            "[[ 1 -eq {{ event.data.x }} ]]",
            "an operand of `-eq` in `[[ … ]]`",
        ),
        (
            "[[ \"{{ event.data.x }}\" -lt 5 ]]",
            "an operand of `-lt` in `[[ … ]]`",
        ),
        (
            "(( {{ event.data.x }} > 0 ))",
            "inside an arithmetic expression",
        ),
        (
            "echo $(( {{ event.data.x }} + 1 ))",
            "inside an arithmetic expression",
        ),
        ("let n={{ event.data.x }}", "an argument of `let`"),
        (
            "declare -i n={{ event.data.x }}",
            "in an argument of `declare -i`",
        ),
        (
            "f() { local -i n='{{ event.data.x }}'; }; f",
            "in an argument of `local -i`",
        ),
        (
            "typeset -i n; n={{ event.data.x }}",
            "assigned to `n`, an integer variable",
        ),
        ("[[ -v {{ event.data.x }} ]]", "the operand of `-v`"),
        (
            "a[{{ event.data.x }}]=1",
            "in the array subscript of `a[…]=`",
        ),
    ];
    for (script, context) in scripts {
        let workflow = format!(
            "version: 1\nname: arith\non: {{ push: {{}} }}\nsteps:\n  - run: |\n      echo start\n      {script}\n"
        );
        let expected = format!(
            "workflows/arith.yaml:7:7: error: steps[0].run: `{{{{ event.data.x }}}}` is {context}"
        );
        for args in [&["validate"][..], &["run"][..]] {
            let run = Vane::new()
                .workflow("arith.yaml", &workflow)
                .args(args)
                .stdin(push_event(&payload))
                .run();
            assert_ne!(run.code(), 0, "{script}: {args:?} accepted it");
            assert_ne!(run.code(), 101, "{script}: panic");
            let all = format!("{}{}", run.stdout(), run.stderr());
            assert!(all.contains(&expected), "{script}: {args:?}\n{all}");
            assert!(
                all.contains("make it a number with `{{ event.data.x | int }}`"),
                "{all}"
            );
            assert!(!canary.exists(), "{script}: the value ran");
        }
    }
}

/// With `| int` the value is a number: a number runs, the canary fails the step before bash
/// sees it.
#[test]
fn int_filtered_values_run_in_arithmetic_and_hostile_ones_fail_the_step() {
    let marker_dir = tempfile::tempdir().unwrap();
    let canary = marker_dir.path().join("pwned");
    let workflow = "version: 1\nname: arith\non: { push: {} }\nsteps:\n  - run: |\n      \
        [[ {{ event.data.x | int }} -eq 7 ]] && echo \"sum=$(( {{ event.data.x | int }} + 1 ))\"\n";
    let run = Vane::new()
        .workflow("arith.yaml", workflow)
        .args(&["run", "--json"])
        .stdin(push_event("7"))
        .run()
        .expect_code(0);
    assert!(run.stdout().contains("sum=8"), "{}", run.stdout());
    let run = Vane::new()
        .workflow("arith.yaml", workflow)
        .args(&["run"])
        .stdin(push_event(&format!("a[$(touch {})]", canary.display())))
        .run();
    assert_ne!(run.code(), 0);
    assert_ne!(run.code(), 101);
    assert!(!canary.exists(), "the value ran");
}
