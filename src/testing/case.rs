//! Workflow test files as written (SPEC §4.6): a YAML list of cases, each an event and what the
//! workflows must do with it. Read once, checked against the loaded workflows (names, step ids,
//! regexes, the event itself), and compiled into `TestCase`s; every problem is a `Diagnostic` at
//! `file:line:col`.

use crate::diagnostic::Diagnostic;
use crate::engine::Overrides;
use crate::event::{self, Event, EventError, InputOptions};
use crate::workflow::schema;
use crate::workflow::{Workflow, WorkflowSet};
use crate::yaml::{self, Position, YamlPath};
use regex::Regex;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// One case as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = schema::one_of_keys(&["event", "events"]))]
struct CaseConfig {
    /// The case's name, unique in its file.
    name: String,
    /// The event: a file or inline.
    event: Option<EventConfig>,
    /// A timed sequence on a simulated clock: `[{at: 0s, file: …}, {at: 10s, inline: …}]`.
    #[schemars(with = "Option<Vec<TimedEventConfig>>", length(min = 1))]
    events: Option<Vec<serde_yaml::Value>>,
    /// Values of `vars` for the case, as `--var` gives them.
    #[serde(default)]
    #[schemars(with = "serde_json::Map<String, Json>")]
    vars: serde_yaml::Mapping,
    #[serde(default)]
    expect: ExpectConfig,
}

/// The test file: a list of cases.
#[derive(JsonSchema)]
#[schemars(title = "vane workflow tests (*.test.yaml)")]
#[schemars(transform = non_empty)]
struct TestFileSchema(#[allow(dead_code)] Vec<CaseConfig>);

fn non_empty(schema: &mut schemars::Schema) {
    schema.insert("minItems".to_string(), Json::from(1));
}

/// Where the schema of test files says it lives.
pub const SCHEMA_ID: &str = "https://vane.dev/schema/test-v1.json";

/// The JSON Schema of a `*.test.yaml` file (`vane schema --for test`).
pub fn json_schema() -> Json {
    schema::root_schema::<TestFileSchema>(SCHEMA_ID)
}

/// One event of `events:`: when it arrives (from the case's start) and what it must do.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = schema::one_of_keys(&["file", "inline"]))]
struct TimedEventConfig {
    /// When it arrives, from the case's start (`0s`, `10s`, `1m30s`).
    #[serde(deserialize_with = "duration_text")]
    #[schemars(with = "schema::Duration")]
    at: String,
    /// A file, relative to the test file.
    file: Option<String>,
    /// The event itself.
    #[schemars(with = "Option<Json>")]
    inline: Option<serde_yaml::Value>,
    #[serde(rename = "type")]
    kind: Option<String>,
    source: Option<String>,
    #[serde(default)]
    expect: ExpectConfig,
}

/// `event:` — a file (relative to the test file) or the event inline.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = schema::one_of_keys(&["file", "inline"]))]
struct EventConfig {
    /// A file, relative to the test file.
    file: Option<String>,
    /// The event itself.
    #[schemars(with = "Option<Json>")]
    inline: Option<serde_yaml::Value>,
    /// As `--type`: the event is a raw payload of this type.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// As `--source`.
    source: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ExpectConfig {
    /// The workflows that must match.
    #[serde(rename = "match", default)]
    matched: Vec<String>,
    /// The workflows that must not match.
    #[serde(rename = "no-match", default)]
    not_matched: Vec<String>,
    /// `<workflow>.<step>.<field>` → check; kept as a mapping so each key can be located.
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, CheckConfig>")]
    steps: serde_yaml::Mapping,
    /// How many runs (of every workflow): for the event (with the timers that fired since the
    /// one before it), or, at the case's level, for the whole sequence.
    runs: Option<u64>,
}

/// One check on a rendered field; every key given must hold.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CheckConfig {
    equals: Option<Json>,
    contains: Option<String>,
    matches: Option<String>,
}

/// `at:` as text, whether written `10s` or `10`.
fn duration_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(crate::duration::DurationText::deserialize(deserializer)?.0)
}

/// A test file, every case compiled.
#[derive(Debug)]
pub struct TestFile {
    /// The file as the user named it (or as it was found).
    pub path: PathBuf,
    pub cases: Vec<TestCase>,
}

/// One case, ready to run.
#[derive(Debug)]
pub struct TestCase {
    pub name: String,
    /// The case's event (the first of a timed sequence).
    pub event: Event,
    /// The case's `vars`: the names the workflows declare as secrets set those, the others env.
    pub overrides: Overrides,
    /// Workflow indexes (into the set) that must match, as written.
    pub expect_match: Vec<usize>,
    /// Workflow indexes that must not match.
    pub expect_no_match: Vec<usize>,
    pub checks: Vec<FieldCheck>,
    /// `expect.runs`: how many runs in all.
    pub expect_runs: Option<u64>,
    /// `events:` — a timed sequence (empty for a case with one `event`).
    pub timeline: Vec<TimedEvent>,
}

/// One event of a timed sequence, with what it must do.
#[derive(Debug)]
pub struct TimedEvent {
    /// Milliseconds from the case's start.
    pub at_ms: i64,
    pub event: Event,
    pub expect_match: Vec<usize>,
    pub expect_no_match: Vec<usize>,
    pub checks: Vec<FieldCheck>,
    pub expect_runs: Option<u64>,
}

/// `deploy.apply.run: {contains: "kubectl"}`, resolved against the workflow.
#[derive(Debug)]
pub struct FieldCheck {
    /// The key as written, for messages.
    pub key: String,
    /// The workflow's index in the set.
    pub workflow: usize,
    /// The job, where the key names one (`<workflow>.<job>.<step>.<field>`).
    pub job: Option<String>,
    pub step: String,
    /// The path into the step's rendered action (`["http", "url"]`).
    pub field: Vec<String>,
    pub check: Check,
}

#[derive(Debug)]
pub enum Check {
    /// The value equals this one (a string also equals the text of a number or boolean).
    Equals(Json),
    /// The value's text contains this.
    Contains(String),
    /// The value's text matches this regular expression somewhere.
    Matches(Regex),
}

impl Check {
    /// `equals`, `contains` or `matches`: the key as written.
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Equals(_) => "equals",
            Check::Contains(_) => "contains",
            Check::Matches(_) => "matches",
        }
    }
}

/// Reads and compiles a test file. Any problem makes the whole file broken: its cases do not run,
/// and every problem found comes back.
pub fn load_test_file(path: &Path, set: &WorkflowSet) -> Result<TestFile, Vec<Diagnostic>> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| vec![Diagnostic::error(path, None, "the file is not valid UTF-8")])?,
        Err(error) => {
            return Err(vec![Diagnostic::error(
                path,
                None,
                format!("cannot read the test file: {error}"),
            )]);
        }
    };
    compile_test_file(path, &text, set).map_err(|mut diagnostics| {
        crate::diagnostic::attach_source(&mut diagnostics, &text);
        diagnostics
    })
}

/// The cases of a test file whose text is `text`.
fn compile_test_file(
    path: &Path,
    text: &str,
    set: &WorkflowSet,
) -> Result<TestFile, Vec<Diagnostic>> {
    let items = match yaml::parse_value(text) {
        Ok(serde_yaml::Value::Sequence(items)) if !items.is_empty() => items,
        Ok(_) => {
            return Err(vec![Diagnostic::error(
                path,
                Some(Position::new(1, 1)),
                "a test file is a list of cases (`- name: …`)",
            )]);
        }
        Err(error) => return Err(vec![Diagnostic::error(path, error.position, error.message)]),
    };
    let compiler = Compiler {
        file: path,
        text,
        set,
        secret_names: set
            .workflows
            .iter()
            .flat_map(|workflow| workflow.secrets.iter().map(String::as_str))
            .collect(),
    };
    let mut diagnostics = Vec::new();
    let mut cases = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    for (index, item) in items.into_iter().enumerate() {
        let case_path = YamlPath::root().index(index);
        // Each case on its own, so that one bad case does not hide the problems of the others.
        let config: CaseConfig = match yaml::from_value(item, text, &case_path) {
            Ok(config) => config,
            Err(error) => {
                diagnostics.push(Diagnostic::error(path, error.position, error.message));
                continue;
            }
        };
        if let Some(first) = names.insert(config.name.clone(), index) {
            diagnostics.push(compiler.error(
                &case_path.key("name"),
                false,
                format!(
                    "case name `{}` is also used by case {} of this file",
                    config.name,
                    first + 1
                ),
            ));
        }
        match compiler.case(config, &case_path) {
            Ok(case) => cases.push(case),
            Err(mut problems) => diagnostics.append(&mut problems),
        }
    }
    if diagnostics.is_empty() {
        Ok(TestFile {
            path: path.to_path_buf(),
            cases,
        })
    } else {
        Err(diagnostics)
    }
}

/// What compiling the cases of one file needs.
struct Compiler<'a> {
    file: &'a Path,
    text: &'a str,
    set: &'a WorkflowSet,
    secret_names: HashSet<&'a str>,
}

impl Compiler<'_> {
    fn error(&self, path: &YamlPath, at_key: bool, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(
            self.file,
            yaml::locate(self.text, path, at_key),
            message.into(),
        )
    }

    fn case(&self, config: CaseConfig, path: &YamlPath) -> Result<TestCase, Vec<Diagnostic>> {
        let mut problems = Vec::new();
        let mut timeline = Vec::new();
        let event = match (config.event, config.events) {
            (Some(_), Some(_)) => {
                problems.push(self.error(
                    &path.key("events"),
                    true,
                    "set `event` or `events` (a timed sequence), not both",
                ));
                None
            }
            (None, None) => {
                problems.push(self.error(
                    &path.key("name"),
                    true,
                    "the case needs `event` (or `events`, a timed sequence)",
                ));
                None
            }
            (Some(event), None) => self
                .event(event, &path.key("event"))
                .map_err(|problem| problems.push(problem))
                .ok(),
            (None, Some(items)) => {
                if items.is_empty() {
                    problems.push(self.error(
                        &path.key("events"),
                        false,
                        "`events` needs at least one `{at, file|inline}`",
                    ));
                }
                let mut last = 0i64;
                for (index, item) in items.into_iter().enumerate() {
                    let item_path = path.key("events").index(index);
                    match self.timed(item, &item_path, last) {
                        Ok(timed) => {
                            last = timed.at_ms;
                            timeline.push(timed);
                        }
                        Err(mut found) => problems.append(&mut found),
                    }
                }
                timeline.first().map(|timed| timed.event.clone())
            }
        };
        let overrides = self
            .overrides(&config.vars, &path.key("vars"))
            .map_err(|problem| problems.push(problem))
            .unwrap_or_default();
        let expect_runs = config.expect.runs;
        let (expect_match, expect_no_match, checks) =
            self.expectations(config.expect, &path.key("expect"), &mut problems);
        match event {
            Some(event) if problems.is_empty() => Ok(TestCase {
                name: config.name,
                event,
                overrides,
                expect_match,
                expect_no_match,
                checks,
                expect_runs,
                timeline,
            }),
            _ => Err(problems),
        }
    }

    /// One event of `events:`; `after` is the previous one's time (times never go back).
    fn timed(
        &self,
        item: serde_yaml::Value,
        path: &YamlPath,
        after: i64,
    ) -> Result<TimedEvent, Vec<Diagnostic>> {
        let config: TimedEventConfig = yaml::from_value(item, self.text, path)
            .map_err(|error| vec![Diagnostic::error(self.file, error.position, error.message)])?;
        let mut problems = Vec::new();
        let at_ms = match crate::duration::parse_duration(&config.at) {
            Ok(at) => {
                let at = i64::try_from(at.as_millis()).unwrap_or(i64::MAX);
                if at < after {
                    problems.push(self.error(
                        &path.key("at"),
                        false,
                        format!(
                            "`at` goes back in time: {} is before the event before it",
                            config.at
                        ),
                    ));
                }
                at
            }
            Err(message) => {
                problems.push(self.error(&path.key("at"), false, format!("at: {message}")));
                0
            }
        };
        let event = self
            .event(
                EventConfig {
                    file: config.file,
                    inline: config.inline,
                    kind: config.kind,
                    source: config.source,
                },
                path,
            )
            .map_err(|problem| problems.push(problem))
            .ok();
        let expect_runs = config.expect.runs;
        let (expect_match, expect_no_match, checks) =
            self.expectations(config.expect, &path.key("expect"), &mut problems);
        match event {
            Some(event) if problems.is_empty() => Ok(TimedEvent {
                at_ms,
                event,
                expect_match,
                expect_no_match,
                checks,
                expect_runs,
            }),
            _ => Err(problems),
        }
    }

    /// `expect:` compiled: the workflows that must (not) match and the field checks.
    fn expectations(
        &self,
        config: ExpectConfig,
        expect: &YamlPath,
        problems: &mut Vec<Diagnostic>,
    ) -> (Vec<usize>, Vec<usize>, Vec<FieldCheck>) {
        let expect = expect.clone();
        let mut workflows = |names: &[String], key: &str| -> Vec<usize> {
            names
                .iter()
                .enumerate()
                .filter_map(|(index, name)| {
                    self.workflow(name)
                        .map_err(|message| {
                            problems.push(self.error(&expect.key(key).index(index), false, message))
                        })
                        .ok()
                })
                .collect()
        };
        let expect_match = workflows(&config.matched, "match");
        let expect_no_match = workflows(&config.not_matched, "no-match");
        for index in &expect_match {
            if expect_no_match.contains(index) {
                problems.push(self.error(
                    &expect.key("no-match"),
                    false,
                    format!(
                        "`{}` is in both `match` and `no-match`",
                        self.set.workflows[*index].name
                    ),
                ));
            }
        }
        let mut checks = Vec::new();
        for (key, value) in config.steps {
            let Some(key) = key.as_str().map(str::to_string) else {
                problems.push(self.error(
                    &expect.key("steps"),
                    false,
                    "`steps` keys are `<workflow>.<step>.<field>` strings",
                ));
                continue;
            };
            let check_path = expect.key("steps").key(&key);
            match self.checks(&key, value, &check_path) {
                Ok(mut found) => checks.append(&mut found),
                Err(problem) => problems.push(problem),
            }
        }
        (expect_match, expect_no_match, checks)
    }

    /// The case's event: read, parsed and turned into an envelope like `--event` input would be.
    fn event(&self, config: EventConfig, path: &YamlPath) -> Result<Event, Diagnostic> {
        let options = InputOptions {
            kind: config.kind,
            source: config.source,
            delivery_id: None,
        };
        if options.source.is_some() && options.kind.is_none() {
            return Err(self.error(
                &path.key("source"),
                true,
                "`source` is for raw payloads and needs `type` (as `--source` needs `--type`)",
            ));
        }
        let document = match (config.file, config.inline) {
            (Some(_), Some(_)) => {
                return Err(self.error(
                    &path.key("inline"),
                    true,
                    "set `file` or `inline`, not both",
                ));
            }
            (None, None) => {
                return Err(self.error(
                    path,
                    true,
                    "the event needs `file` (relative to this test file) or `inline`",
                ));
            }
            (Some(file), None) => self
                .event_file(&file)
                .map_err(|message| self.error(&path.key("file"), false, message))?,
            (None, Some(inline)) => serde_json::to_value(&inline).map_err(|error| {
                self.error(
                    &path.key("inline"),
                    false,
                    format!("the inline event is not JSON: {error}"),
                )
            })?,
        };
        let at = if path_exists(self.text, &path.key("file")) {
            path.key("file")
        } else {
            path.key("inline")
        };
        event_from_document(document, &options)
            .map_err(|error| self.error(&at, false, format!("the event: {}", error.message)))
    }

    /// An event file: JSON, or YAML where it is named `*.yaml` / `*.yml`.
    fn event_file(&self, file: &str) -> Result<Json, String> {
        let base = self.file.parent().unwrap_or(Path::new("."));
        let full = base.join(file);
        let bytes = std::fs::read(&full)
            .map_err(|error| format!("cannot read the event file `{}`: {error}", full.display()))?;
        if file.ends_with(".yaml") || file.ends_with(".yml") {
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("the event file `{}` is not UTF-8", full.display()))?;
            let value = yaml::parse_value(&text).map_err(|error| {
                format!(
                    "the event file {}",
                    error.render(&full.display().to_string())
                )
            })?;
            return serde_json::to_value(&value)
                .map_err(|error| format!("the event file `{}`: {error}", full.display()));
        }
        if bytes.len() > event::DEFAULT_MAX_EVENT_SIZE {
            return Err(format!(
                "the event file `{}` is over the limit of {} bytes",
                full.display(),
                event::DEFAULT_MAX_EVENT_SIZE
            ));
        }
        serde_json::from_slice(&bytes)
            .map_err(|error| format!("the event file `{}` is not JSON: {error}", full.display()))
    }

    /// `vars:` split into the secrets it sets and the env values it sets.
    fn overrides(
        &self,
        vars: &serde_yaml::Mapping,
        path: &YamlPath,
    ) -> Result<Overrides, Diagnostic> {
        let mut secrets = HashMap::new();
        let mut env = Vec::new();
        for (key, value) in vars {
            let Some(name) = key.as_str() else {
                return Err(self.error(path, false, "`vars` keys must be names (strings)"));
            };
            let text = match value {
                serde_yaml::Value::String(text) => text.clone(),
                serde_yaml::Value::Number(number) => number.to_string(),
                serde_yaml::Value::Bool(flag) => flag.to_string(),
                _ => {
                    return Err(self.error(
                        &path.key(name),
                        false,
                        format!("`vars.{name}` must be a string, number or boolean"),
                    ));
                }
            };
            if self.secret_names.contains(name) {
                secrets.insert(name.to_string(), text);
            } else {
                env.push((name.to_string(), text));
            }
        }
        Ok(Overrides {
            secrets: Some(secrets),
            env,
            ..Overrides::default()
        })
    }

    /// The index of the workflow called `name`, or a message with a suggestion.
    fn workflow(&self, name: &str) -> Result<usize, String> {
        self.set
            .workflows
            .iter()
            .position(|workflow| workflow.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self
                    .set
                    .workflows
                    .iter()
                    .map(|workflow| workflow.name.as_str())
                    .collect();
                let suggestion = yaml::did_you_mean(name, &names)
                    .map(|known| format!(" (did you mean `{known}`?)"))
                    .unwrap_or_default();
                format!("no workflow is named `{name}`{suggestion}")
            })
    }

    /// `<workflow>.[<job>.]<step>.<field>: {equals|contains|matches: …}` → one check per key.
    fn checks(
        &self,
        key: &str,
        value: serde_yaml::Value,
        path: &YamlPath,
    ) -> Result<Vec<FieldCheck>, Diagnostic> {
        let at_key = |message: String| self.error(path, true, message);
        // Workflow names may contain dots: the longest name that prefixes the key wins.
        let Some(index) = self
            .set
            .workflows
            .iter()
            .enumerate()
            .filter(|(_, workflow)| {
                key.strip_prefix(workflow.name.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
            })
            .max_by_key(|(_, workflow)| workflow.name.len())
            .map(|(index, _)| index)
        else {
            let first = key.split('.').next().unwrap_or_default();
            return Err(at_key(format!(
                "`{key}`: {} (keys are `<workflow>.<step>.<field>`)",
                self.workflow(first).err().unwrap_or_default()
            )));
        };
        let workflow = &self.set.workflows[index];
        let rest: Vec<&str> = key[workflow.name.len() + 1..].split('.').collect();
        let (job, step, field) = resolve_step(workflow, &rest)
            .map_err(|message| at_key(format!("`{key}`: {message}")))?;
        let config: CheckConfig = yaml::from_value(value, self.text, path)
            .map_err(|error| Diagnostic::error(self.file, error.position, error.message))?;
        let mut checks = Vec::new();
        let mut add = |check: Check| {
            checks.push(FieldCheck {
                key: key.to_string(),
                workflow: index,
                job: job.clone(),
                step: step.clone(),
                field: field.clone(),
                check,
            })
        };
        if let Some(expected) = config.equals {
            add(Check::Equals(expected));
        }
        if let Some(part) = config.contains {
            add(Check::Contains(part));
        }
        if let Some(pattern) = config.matches {
            let regex = Regex::new(&pattern).map_err(|error| {
                self.error(
                    &path.key("matches"),
                    false,
                    format!(
                        "`matches` is not a valid regular expression: {}",
                        // regex's message draws the pattern over several lines; the last one says why.
                        error
                            .to_string()
                            .lines()
                            .last()
                            .unwrap_or_default()
                            .trim_start_matches("error: ")
                    ),
                )
            })?;
            add(Check::Matches(regex));
        }
        if checks.is_empty() {
            return Err(self.error(
                path,
                false,
                "a check needs `equals`, `contains` or `matches`",
            ));
        }
        Ok(checks)
    }
}

/// Splits `[<job>.]<step>.<field…>` against the workflow's jobs and steps.
fn resolve_step(
    workflow: &Workflow,
    rest: &[&str],
) -> Result<(Option<String>, String, Vec<String>), String> {
    let field = |from: usize| -> Result<Vec<String>, String> {
        let field: Vec<String> = rest[from..].iter().map(|part| part.to_string()).collect();
        if field.is_empty() || field.iter().any(String::is_empty) {
            return Err(
                "name a field of the step's rendered action after the step (`run`, `http.url`, `notify.text`…)"
                    .to_string(),
            );
        }
        Ok(field)
    };
    let first = rest.first().copied().unwrap_or_default();
    let jobs_with_step: Vec<&str> = workflow
        .jobs
        .iter()
        .filter(|job| job.steps.iter().any(|step| step.id == first))
        .map(|job| job.id.as_str())
        .collect();
    match jobs_with_step.len() {
        1 => return Ok((None, first.to_string(), field(1)?)),
        0 => {}
        _ => {
            return Err(format!(
                "step `{first}` is in several jobs ({}): write `{}.<job>.{first}.<field>`",
                jobs_with_step.join(", "),
                workflow.name
            ));
        }
    }
    if let Some(job) = workflow.jobs.iter().find(|job| job.id == first) {
        let second = rest.get(1).copied().unwrap_or_default();
        if job.steps.iter().any(|step| step.id == second) {
            return Ok((Some(job.id.clone()), second.to_string(), field(2)?));
        }
        let ids: Vec<&str> = job.steps.iter().map(|step| step.id.as_str()).collect();
        return Err(unknown_step(&workflow.name, second, &ids));
    }
    let ids: Vec<&str> = workflow.steps().map(|step| step.id.as_str()).collect();
    Err(unknown_step(&workflow.name, first, &ids))
}

fn unknown_step(workflow: &str, id: &str, ids: &[&str]) -> String {
    let suggestion = yaml::did_you_mean(id, ids)
        .map(|known| format!(" (did you mean `{known}`?)"))
        .unwrap_or_default();
    format!(
        "workflow `{workflow}` has no step `{id}`{suggestion}; its steps are {}",
        ids.iter()
            .map(|id| format!("`{id}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn path_exists(text: &str, path: &YamlPath) -> bool {
    yaml::locate(text, path, true).is_some()
}

/// The one place a test event is built from a parsed document, as `--event` input is.
fn event_from_document(document: Json, options: &InputOptions) -> Result<Event, EventError> {
    event::from_value(&document, options)
}
