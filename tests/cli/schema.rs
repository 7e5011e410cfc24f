//! `vane schema`: the JSON Schema editors check workflows against. The gallery, the README's
//! workflows and `vane init`'s starter all pass it under an independent validator (the
//! `jsonschema` crate), and a workflow with an unknown key fails it; the README's workflows also
//! pass `vane validate`.

use crate::support::{Vane, root};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The schema as `vane schema` prints it.
fn schema() -> Value {
    let run = Vane::new().args(&["schema"]).run().expect_code(0);
    serde_json::from_str(&run.stdout()).expect("`vane schema` prints JSON")
}

fn validator() -> jsonschema::Validator {
    jsonschema::draft202012::new(&schema()).expect("the schema is a valid draft 2020-12 schema")
}

/// A YAML workflow as the JSON a validator takes.
fn as_json(text: &str) -> Value {
    let yaml: serde_yaml::Value = serde_yaml::from_str(text).expect("valid YAML");
    serde_json::to_value(yaml).expect("YAML with string keys")
}

/// The schema's complaints about a workflow, one line each (empty: it passes).
fn problems(validator: &jsonschema::Validator, text: &str) -> Vec<String> {
    let instance = as_json(text);
    validator
        .iter_errors(&instance)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect()
}

/// The fenced YAML blocks of the README that are workflows (they start with `version: 1`).
fn readme_workflows() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match &mut current {
            None if line.trim_start().starts_with("```yaml") || line.trim() == "```yml" => {
                current = Some(String::new())
            }
            Some(block) if line.trim_start().starts_with("```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
        .into_iter()
        .filter(|block| block.trim_start().starts_with("version: 1"))
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("a folder of workflows")
        .map(|entry| entry.expect("a folder entry").path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            (name.ends_with(".yaml") || name.ends_with(".yml")) && !name.contains(".test.")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_schema_is_draft_2020_12_and_closed() {
    let schema = schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["$defs"]["StepConfig"]["additionalProperties"], false);
    assert_eq!(
        schema["$defs"]["NotifyConfig"]["additionalProperties"],
        false
    );
    assert!(
        schema["properties"]["on"]["description"]
            .as_str()
            .is_some_and(|text| !text.is_empty())
    );
}

#[test]
fn every_gallery_workflow_passes_the_schema() {
    let validator = validator();
    let files = yaml_files(&root().join("workflows"));
    assert!(files.len() >= 7, "the gallery: {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            problems(&validator, &text),
            Vec::<String>::new(),
            "{}",
            file.display()
        );
    }
}

#[test]
fn every_starter_workflow_passes_the_schema() {
    let validator = validator();
    for file in yaml_files(&root().join("src/init/starter/workflows")) {
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            problems(&validator, &text),
            Vec::<String>::new(),
            "{}",
            file.display()
        );
    }
}

#[test]
fn every_readme_workflow_passes_the_schema() {
    let validator = validator();
    let blocks = readme_workflows();
    assert!(!blocks.is_empty(), "the README shows at least one workflow");
    for block in blocks {
        assert_eq!(
            problems(&validator, &block),
            Vec::<String>::new(),
            "{block}"
        );
    }
}

#[test]
fn every_readme_workflow_passes_validate() {
    for (index, block) in readme_workflows().into_iter().enumerate() {
        let mut vane = Vane::new().workflow(&format!("readme-{index}.yaml"), &block);
        // The README's workflows render the gallery's templates.
        for template in std::fs::read_dir(root().join("templates")).unwrap() {
            let path = template.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            vane = vane.template(&name, &std::fs::read_to_string(&path).unwrap());
        }
        let run = vane.args(&["validate"]).run().expect_code(0);
        assert!(
            run.stdout().contains(" 0 errors"),
            "{block}\n{}",
            run.stdout()
        );
    }
}

#[test]
fn unknown_keys_fail_the_schema() {
    let validator = validator();
    let base =
        "version: 1\nname: x\non:\n  push:\n    branches: [main]\nsteps:\n  - run: echo hi\n";
    assert_eq!(problems(&validator, base), Vec::<String>::new());
    // Each fails at the node that holds the unknown key, or at an optional node above it (an
    // optional value is "this, or null", and a validator may report the pair).
    let cases = [
        // top level, a filter, a step, an action's own map, a notify target
        (
            "version: 1\nname: x\nnmae: y\non:\n  push:\nsteps:\n  - run: echo\n",
            "",
        ),
        (
            "version: 1\nname: x\non:\n  push:\n    branch: [main]\nsteps:\n  - run: echo\n",
            "/on/push",
        ),
        (
            "version: 1\nname: x\non:\n  push:\nsteps:\n  - run: echo\n    shel: sh\n",
            "/steps/0",
        ),
        (
            "version: 1\nname: x\non:\n  push:\nsteps:\n  - http: { url: 'https://x', jsn: {} }\n",
            "/steps/0/http",
        ),
        (
            "version: 1\nname: x\non:\n  push:\nsteps:\n  - notify: { slack: { webhook: w, channel: c }, text: t }\n",
            "/steps/0/notify/slack",
        ),
    ];
    for (text, place) in cases {
        let found = problems(&validator, text);
        assert!(!found.is_empty(), "passes, but should not:\n{text}");
        let deepest = place.rsplit_once('/').map_or("", |(parent, _)| parent);
        assert!(
            found.iter().any(|problem| {
                let path = problem.split(": ").next().unwrap_or_default();
                place.starts_with(path) && path.len() >= deepest.len().min(place.len())
            }),
            "{text}\n{found:?}"
        );
    }
}

#[test]
fn the_schema_knows_what_the_loader_rejects() {
    let validator = validator();
    let rejected = [
        // no action, two actions
        "version: 1\nname: x\non:\n  push:\nsteps:\n  - id: a\n",
        "version: 1\nname: x\non:\n  push:\nsteps:\n  - run: echo\n    emit: { type: t }\n",
        // neither steps nor jobs; another version; a bad name; an empty `on`
        "version: 1\nname: x\non:\n  push:\n",
        "version: 2\nname: x\non:\n  push:\nsteps:\n  - run: echo\n",
        "version: 1\nname: Deploy\non:\n  push:\nsteps:\n  - run: echo\n",
        "version: 1\nname: x\non: {}\nsteps:\n  - run: echo\n",
        // two notify targets; a severity that is neither a level nor a template
        "version: 1\nname: x\non:\n  push:\nsteps:\n  - notify: { slack: { webhook: a }, discord: { webhook: b }, text: t }\n",
        "version: 1\nname: x\non:\n  push:\nsteps:\n  - notify: { slack: { webhook: a }, text: t, severity: loud }\n",
        // a duration vane cannot read
        "version: 1\nname: x\non:\n  push:\ntimeout: soon\nsteps:\n  - run: echo\n",
    ];
    for text in rejected {
        assert!(
            !problems(&validator, text).is_empty(),
            "passes, but should not:\n{text}"
        );
    }
    let accepted = [
        // a templated severity and issue number; a schedule; jobs
        "version: 1\nname: x\non:\n  issues:\nsteps:\n  - notify:\n      github: { comment: { issue: '{{ event.data.issue.number }}' } }\n      text: t\n      severity: \"{{ 'error' if true else 'info' }}\"\n",
        "version: 1\nname: x\non:\n  schedule:\n    - cron: '0 * * * *'\n  dispatch:\n    inputs: { env: { default: staging } }\njobs:\n  a:\n    steps: [{ run: echo }]\n  b:\n    needs: a\n    steps: [{ render: t.j2, to: out/x }]\n",
    ];
    for text in accepted {
        assert_eq!(problems(&validator, text), Vec::<String>::new(), "{text}");
    }
}

/// The schema and the loader agree on durations: each value is accepted by both or refused by
/// both, as the table says.
#[test]
fn the_schema_and_the_loader_agree_on_durations() {
    let validator = validator();
    let cases = [
        ("30", true),
        ("\"30\"", true),
        ("90s", true),
        (".5s", true),
        ("1.5m", true),
        ("1h30m", true),
        ("500ms", true),
        ("\" 2m \"", true),
        ("1d", true),
        ("5 minutes", false),
        ("-5", false),
        ("1.5", false),
        ("10x", false),
        ("\"\"", false),
        ("true", false),
        ("1e3s", false),
        ("1h 30m", false),
    ];
    let mut disagreements = Vec::new();
    for (value, accepted) in cases {
        let text = format!(
            "version: 1\nname: w\non: {{ push: {{}} }}\ntimeout: {value}\nsteps:\n  - run: 'true'\n    timeout: {value}\n"
        );
        let loader = Vane::new()
            .workflow("w.yaml", &text)
            .args(&["validate"])
            .run();
        let by_loader = loader.code() == 0;
        let by_schema = problems(&validator, &text).is_empty();
        if by_loader != accepted || by_schema != accepted {
            disagreements.push(format!(
                "`timeout: {value}`: expected {}, the loader {}, the schema {}\n{}",
                if accepted { "accepted" } else { "refused" },
                if by_loader { "accepts" } else { "refuses" },
                if by_schema { "accepts" } else { "refuses" },
                loader.stdout()
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
