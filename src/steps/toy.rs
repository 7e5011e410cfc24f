//! A step kind that exists only in tests, to show that a kind is one file and one registry line:
//! `greet: TEXT` (a template) with `times: N` beside it; its output `text` is the rendered text
//! `times` times over. The tests load a workflow that uses it with the built-in kinds plus this
//! one, validate it, plan an event and run it.

use super::{
    Compiled, CompiledStep, Outputs, StepContext, StepError, StepKind, StepSite, StepSuccess,
};
use crate::template::{TemplateTree, TreeError, TreeMode};
use crate::yaml::YamlError;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

/// The keys of a `greet` step besides the common ones.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GreetKeys {
    /// The greeting, a template.
    pub greet: Option<String>,
    /// How often it is said (default 1, at least 1).
    pub times: Option<u32>,
}

/// The `greet` step kind.
pub struct GreetKind;

impl StepKind for GreetKind {
    fn key(&self) -> &'static str {
        "greet"
    }

    fn sibling_keys(&self) -> &'static [&'static str] {
        &["times"]
    }

    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        GreetKeys::json_schema(generator)
    }

    fn compile(&self, keys: serde_yaml::Value, site: &StepSite) -> Result<Compiled, YamlError> {
        let keys: GreetKeys = site.keys(keys)?;
        let times = keys.times.unwrap_or(1);
        if times == 0 {
            return Err(site.at("times", "`times` must be at least 1, found `0`"));
        }
        let text = keys.greet.unwrap_or_default();
        Ok(Compiled::new(GreetStep {
            text: site.text(&text, TreeMode::Text, &site.key("greet"))?,
            times,
        }))
    }
}

#[derive(Debug)]
struct GreetStep {
    text: TemplateTree,
    times: u32,
}

impl GreetStep {
    fn outputs(&self, rendered: &Json) -> Outputs {
        let text = super::text_at(rendered, "greet").unwrap_or_default();
        let said = vec![text; self.times as usize].join(" ");
        let mut outputs = Map::new();
        outputs.insert("text".to_string(), Json::String(said));
        outputs
    }
}

impl CompiledStep for GreetStep {
    fn render(&self, context: &minijinja::Value) -> Result<Json, TreeError> {
        let mut rendered = Map::new();
        rendered.insert("greet".to_string(), self.text.render(context)?);
        rendered.insert("times".to_string(), Json::from(self.times));
        Ok(Json::Object(rendered))
    }

    /// The greeting is pure: a plan says it too.
    fn plan(&self, rendered: &Json, _context: &StepContext) -> Result<StepSuccess, StepError> {
        Ok(StepSuccess {
            outputs: self.outputs(rendered),
            ..StepSuccess::default()
        })
    }

    fn execute(&self, rendered: &Json, _context: &StepContext) -> Result<StepSuccess, StepError> {
        let mut outputs = self.outputs(rendered);
        outputs.insert("said".to_string(), Json::Bool(true));
        Ok(StepSuccess {
            outputs,
            ..StepSuccess::default()
        })
    }

    fn planned_outputs_are_real(&self) -> bool {
        true
    }

    fn summary(&self, outputs: &Outputs) -> Option<String> {
        outputs
            .get("text")
            .and_then(Json::as_str)
            .map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::CancelToken;
    use crate::engine::{Engine, EngineOptions, RunRecord, StepStatus};
    use crate::event::Event;
    use crate::secrets::Masker;
    use crate::steps::Registry;
    use crate::workflow::{LoadOptions, WorkflowSet, WorkflowSource, load_workflows_with};
    use serde_json::json;

    const WORKFLOW: &str = "\
version: 1
name: greetings
on:
  push:
steps:
  - id: hello
    greet: 'hello {{ event.repo }}'
    times: 2
  - id: again
    greet: '{{ steps.hello.outputs.text }}!'
";

    /// The built-in kinds and the toy one: its registry line.
    fn kinds() -> Registry {
        Registry::builtin().with(&GreetKind)
    }

    fn load(text: &str, kinds: &Registry) -> (WorkflowSet, Vec<String>, tempfile::TempDir) {
        let folder = tempfile::tempdir().unwrap();
        let workflows = folder.path().join("workflows");
        std::fs::create_dir_all(&workflows).unwrap();
        std::fs::write(workflows.join("greetings.yaml"), text).unwrap();
        let options = LoadOptions {
            workflows_dir: workflows,
            templates_dir: folder.path().join("templates"),
        };
        let (set, diagnostics) = load_workflows_with(&options, WorkflowSource::Disk, &[], kinds);
        let messages = diagnostics
            .iter()
            .map(|diagnostic| {
                let (line, column) = diagnostic.line_col();
                format!("{line}:{column}:{}", diagnostic.message)
            })
            .collect();
        (set, messages, folder)
    }

    fn run(set: &WorkflowSet, workspace: &std::path::Path, dry_run: bool) -> RunRecord {
        let engine = Engine {
            set,
            options: EngineOptions {
                dry_run,
                workspace: workspace.to_path_buf(),
                state_folder: None,
                max_emitted: crate::steps::emit::DEFAULT_MAX_EMITTED,
            },
            masker: Masker::new(),
            cancel: CancelToken::new(),
            recommendations: crate::state::Recommendations::in_memory(),
            gates: crate::gates::GateStore::in_memory(),
            observer: &crate::engine::Unobserved,
        };
        let mut event = Event::new("github", "push", json!({}));
        event.repo = Some("acme/web".to_string());
        let mut outcome = engine.process(event, 0);
        assert_eq!(outcome.runs.len(), 1, "the workflow matches");
        outcome.runs.remove(0).1
    }

    #[test]
    fn a_toy_kind_validates_plans_and_runs() {
        let (set, problems, folder) = load(WORKFLOW, &kinds());
        assert_eq!(problems, Vec::<String>::new());
        let kinds: Vec<&str> = set.workflows[0].steps().map(|step| step.kind).collect();
        assert_eq!(kinds, ["greet", "greet"]);

        let plan = run(&set, folder.path(), true);
        assert_eq!(plan.steps[0].status, StepStatus::Planned);
        assert_eq!(
            plan.steps[0].rendered,
            json!({"greet": "hello acme/web", "times": 2})
        );
        // A plan's outputs reach the next step, and the kind's summary reaches the record.
        assert_eq!(
            plan.steps[1].outputs,
            Some(Map::from_iter([(
                "text".to_string(),
                json!("hello acme/web hello acme/web!")
            )]))
        );
        assert_eq!(
            plan.steps[1].summary.as_deref(),
            Some("hello acme/web hello acme/web!")
        );

        let done = run(&set, folder.path(), false);
        assert_eq!(done.steps[1].status, StepStatus::Success);
        assert_eq!(
            done.steps[1].outputs,
            Some(Map::from_iter([
                ("text".to_string(), json!("hello acme/web hello acme/web!")),
                ("said".to_string(), json!(true)),
            ]))
        );
    }

    #[test]
    fn a_toy_kind_is_checked_at_load_with_positions() {
        let bad = WORKFLOW.replace("times: 2", "times: 0");
        let (_, problems, _folder) = load(&bad, &kinds());
        assert_eq!(problems, ["8:5:`times` must be at least 1, found `0`"]);
        // Its sibling key on another kind's step names its owner, as the built-in ones do.
        let misplaced = WORKFLOW.replace(
            "    times: 2\n",
            "    times: 2\n  - run: echo\n    times: 3\n",
        );
        let (_, problems, _folder) = load(&misplaced, &kinds());
        assert_eq!(
            problems,
            ["10:5:`times` belongs to `greet` steps, not `run`"]
        );
        // Without its registry line the key is unknown, suggested among the kinds vane has.
        let (_, problems, _folder) = load(WORKFLOW, &Registry::builtin());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("7:5:steps[0]: unknown key `greet`"),
            "{problems:?}"
        );
    }
}
