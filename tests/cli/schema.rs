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

/// The fenced YAML blocks (```yaml … ```) of a Markdown text.
fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
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
}

/// The fenced YAML blocks of the README that are workflows (they start with `version: 1`).
fn readme_workflows() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    yaml_blocks(&readme)
        .into_iter()
        .filter(|block| block.trim_start().starts_with("version: 1"))
        .collect()
}

/// Every file passes the schema.
fn assert_pass(validator: &jsonschema::Validator, files: &[PathBuf]) {
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        assert_eq!(
            problems(validator, &text),
            Vec::<String>::new(),
            "{}",
            file.display()
        );
    }
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
    assert_pass(&validator, &files);
}

#[test]
fn every_starter_workflow_passes_the_schema() {
    let validator = validator();
    assert_pass(
        &validator,
        &yaml_files(&root().join("src/init/starter/workflows")),
    );
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

/// The schema `vane schema --for FILE` prints, as a validator.
fn validator_for(file: &str) -> jsonschema::Validator {
    let run = Vane::new()
        .args(&["schema", "--for", file])
        .run()
        .expect_code(0);
    let schema: Value = serde_json::from_str(&run.stdout()).expect("JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(
        schema["$id"],
        format!("https://vane.dev/schema/{file}-v1.json")
    );
    jsonschema::draft202012::new(&schema).expect("a valid draft 2020-12 schema")
}

/// The fenced YAML blocks of the docs and the README, with the file each is in.
fn doc_blocks() -> Vec<(String, String)> {
    let mut files = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        files.push(entry.unwrap().path());
    }
    files
        .into_iter()
        .filter(|file| file.extension().is_some_and(|extension| extension == "md"))
        .flat_map(|file| {
            let text = std::fs::read_to_string(&file).unwrap();
            let name = file.display().to_string();
            yaml_blocks(&text)
                .into_iter()
                .map(move |block| (name.clone(), block))
        })
        .collect()
}

#[test]
fn the_config_schema_passes_every_vane_yaml_shown_and_the_starters() {
    let validator = validator_for("config");
    let mut checked = 0;
    for (file, block) in doc_blocks() {
        // A whole vane.yaml (a version and no workflow `name:`), or its `sources:` part.
        let config = if block.starts_with("version: 1") && !block.contains("\nname:") {
            block
        } else if block.starts_with("sources:") {
            format!("version: 1\n{block}")
        } else {
            continue;
        };
        assert_eq!(
            problems(&validator, &config),
            Vec::<String>::new(),
            "{file}\n{config}"
        );
        checked += 1;
    }
    assert!(checked >= 5, "{checked} vane.yaml blocks in the docs");
    let starter = std::fs::read_to_string(root().join("src/init/starter/vane.yaml")).unwrap();
    assert_eq!(problems(&validator, &starter), Vec::<String>::new());
}

#[test]
fn the_test_schema_passes_every_gallery_and_docs_test_file() {
    let validator = validator_for("test");
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("workflows"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(".test.yaml"))
        .collect();
    files.push(root().join("src/init/starter/workflows/starter.test.yaml"));
    assert!(files.len() >= 8, "{files:?}");
    assert_pass(&validator, &files);
    let shown: Vec<(String, String)> = doc_blocks()
        .into_iter()
        .filter(|(_, block)| {
            block
                .lines()
                .find(|line| !line.starts_with('#'))
                .is_some_and(|line| line.starts_with("- name:"))
        })
        .collect();
    assert!(shown.len() >= 2, "{shown:?}");
    for (file, block) in shown {
        assert_eq!(
            problems(&validator, &block),
            Vec::<String>::new(),
            "{file}\n{block}"
        );
    }
}

/// What `vane validate` (which reads `vane.yaml`) and the config schema say of one file.
fn config_verdicts(validator: &jsonschema::Validator, text: &str) -> (bool, bool, String) {
    let run = Vane::new()
        .file("vane.yaml", text)
        .workflow(
            "w.yaml",
            "version: 1\nname: w\non: { push: {} }\nsteps:\n  - run: 'true'\n",
        )
        .args(&["validate"])
        .run();
    (
        run.code() == 0,
        problems(validator, text).is_empty(),
        run.stdout() + &run.stderr(),
    )
}

/// The config schema and the loader agree: each vane.yaml is accepted by both or refused by both,
/// as the table says.
#[test]
fn the_config_schema_and_the_loader_agree() {
    let validator = validator_for("config");
    let nats = "queue: nats://127.0.0.1:4222\njetstream:\n";
    let cases = [
        ("queue: sqlite\n".to_string(), true),
        (format!("{nats}  ack-wait: 30\n"), true),
        (format!("{nats}  ack-wait: 90s\n"), true),
        (format!("{nats}  ack-wait: soon\n"), false),
        (format!("{nats}  ack-wiat: 30s\n"), false),
        ("serve:\n  dedup-window: 2h\n  header-timeout: 5\n".to_string(), true),
        ("serve:\n  listn: 127.0.0.1:9000\n".to_string(), false),
        ("secrets:\n  token: { env: TOKEN }\n".to_string(), true),
        ("secrets:\n  token: { env: TOKEN, file: t }\n".to_string(), false),
        (
            "sources:\n  - name: s\n    every: 30\n    git: { url: 'https://example.com/r.git', branches: [main] }\n"
                .to_string(),
            true,
        ),
        (
            "sources:\n  - name: s\n    every: soon\n    git: { url: 'https://example.com/r.git', branches: [main] }\n"
                .to_string(),
            false,
        ),
        (
            "sources:\n  - name: s\n    git: { url: 'https://example.com/r.git', branches: [main] }\n    nats: { url: 'nats://127.0.0.1:4222', subject: a }\n"
                .to_string(),
            false,
        ),
        (
            "sources:\n  - name: s\n    mqtt: { url: 'mqtt://127.0.0.1:1883', topics: ['t/#'], share: false }\n"
                .to_string(),
            true,
        ),
        (
            "sources:\n  - name: s\n    mqtt: { url: 'mqtt://127.0.0.1:1883', topics: ['t/#'], share: a/b }\n"
                .to_string(),
            false,
        ),
    ];
    let mut disagreements = Vec::new();
    for (body, accepted) in &cases {
        let text = format!("version: 1\n{body}");
        let (by_loader, by_schema, output) = config_verdicts(&validator, &text);
        if by_loader != *accepted || by_schema != *accepted {
            disagreements.push(format!(
                "expected {}, the loader {by_loader}, the schema {by_schema}:\n{text}{output}",
                if *accepted { "accepted" } else { "refused" },
            ));
        }
    }
    let (by_loader, by_schema, _) = config_verdicts(&validator, "version: 2\n");
    assert!(!by_loader && !by_schema, "version 2");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// The test-file schema and `vane test` agree on a table of cases.
#[test]
fn the_test_schema_and_the_loader_agree() {
    let validator = validator_for("test");
    let workflow = "version: 1\nname: w\non: { push: {} }\nsteps:\n  - id: s\n    run: 'true'\n";
    let push = "{ type: push, data: { ref: refs/heads/main } }";
    let cases = [
        (
            format!("- name: a\n  event: {{ inline: {push} }}\n  expect: {{ match: [w] }}\n"),
            true,
        ),
        (
            format!(
                "- name: a\n  events:\n    - {{ at: 0, inline: {push} }}\n    - {{ at: 10s, inline: {push}, expect: {{ runs: 1 }} }}\n"
            ),
            true,
        ),
        (
            format!(
                "- name: a\n  event: {{ inline: {push} }}\n  expect: {{ steps: {{ w.s.run: {{ contains: 'true' }} }} }}\n"
            ),
            true,
        ),
        (
            format!("- name: a\n  event: {{ inline: {push} }}\n  expcet: {{ match: [w] }}\n"),
            false,
        ),
        (
            format!("- name: a\n  event: {{ inline: {push}, file: e.json }}\n"),
            false,
        ),
        (
            format!(
                "- name: a\n  event: {{ inline: {push} }}\n  events:\n    - {{ at: 0s, inline: {push} }}\n"
            ),
            false,
        ),
        ("- name: a\n  events: []\n".to_string(), false),
        (
            format!("- name: a\n  events:\n    - {{ at: soon, inline: {push} }}\n"),
            false,
        ),
        (
            format!(
                "- name: a\n  event: {{ inline: {push} }}\n  expect: {{ steps: {{ w.s.run: {{ contians: x }} }} }}\n"
            ),
            false,
        ),
        ("[]\n".to_string(), false),
    ];
    let mut disagreements = Vec::new();
    for (text, accepted) in &cases {
        let run = Vane::new()
            .workflow("w.yaml", workflow)
            .workflow("w.test.yaml", text)
            .args(&["test"])
            .run();
        let by_loader = run.code() == 0;
        let by_schema = problems(&validator, text).is_empty();
        if by_loader != *accepted || by_schema != *accepted {
            disagreements.push(format!(
                "expected {}, the loader {by_loader}, the schema {by_schema}:\n{text}{}{}",
                if *accepted { "accepted" } else { "refused" },
                run.stdout(),
                run.stderr()
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
