//! Loading workflows from a folder (or one git revision of it): every `*.yml` / `*.yaml` below
//! it, each checked completely, every problem reported as `file:line:col`.

use super::config::{FilterConfig, JobConfig, WorkflowConfig};
use super::revision::{Snapshot, read_revision, worktree_revision};
use super::step::{compile_condition, compile_env, tree_error};
use super::{Concurrency, Job, SUPPORTED_VERSIONS, Step, Trigger, Workflow, WorkflowSet};
use crate::diagnostic::Diagnostic;
use crate::duration::parse_duration;
use crate::steps::{Registry, StepSite};
use crate::template::{TemplateTree, Templates, TreeMode};
use crate::yaml::{self, YamlError, YamlPath};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where workflows and templates are.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub workflows_dir: PathBuf,
    pub templates_dir: PathBuf,
}

/// Where the workflow and template files come from.
#[derive(Debug)]
pub enum WorkflowSource {
    /// The folders on disk; the revision is their repository's HEAD (`+dirty` when they differ).
    Disk,
    /// One git revision of them, already read (`--workflows-ref`).
    Revision(Snapshot),
}

impl WorkflowSource {
    /// The source `--workflows-ref` names: an empty value (`VANE_WORKFLOWS_REF=` from a CI input
    /// left blank) means no revision. `files_named`: the command names workflow files, which a
    /// revision (read as a whole folder) cannot honour.
    pub fn select(
        options: &LoadOptions,
        workflows_ref: Option<&str>,
        files_named: bool,
    ) -> Result<WorkflowSource, String> {
        match workflows_ref.filter(|rev| !rev.is_empty()) {
            None => Ok(WorkflowSource::Disk),
            Some(_) if files_named => Err("`--workflows-ref` loads the whole workflows folder at \
                 that revision; name no files with it"
                .to_string()),
            Some(rev) => read_revision(&options.workflows_dir, &options.templates_dir, rev)
                .map(WorkflowSource::Revision)
                .map_err(|error| error.to_string()),
        }
    }
}

/// One workflow file to load: a path to read, or its bytes as read from a git revision.
enum WorkflowFile {
    Disk(PathBuf),
    Read(PathBuf, Vec<u8>),
}

impl WorkflowFile {
    fn path(&self) -> &Path {
        match self {
            WorkflowFile::Disk(path) | WorkflowFile::Read(path, _) => path,
        }
    }
}

/// Loads every workflow under the folder (or the given files). Problems come back as diagnostics;
/// the set holds the workflows that loaded cleanly.
pub fn load_workflows(options: &LoadOptions, paths: &[PathBuf]) -> (WorkflowSet, Vec<Diagnostic>) {
    load_workflows_from(options, WorkflowSource::Disk, paths)
}

/// [`load_workflows`] from the disk or from one git revision. `paths` selects files on disk and
/// is ignored for a revision, which is always its whole workflows folder.
pub fn load_workflows_from(
    options: &LoadOptions,
    source: WorkflowSource,
    paths: &[PathBuf],
) -> (WorkflowSet, Vec<Diagnostic>) {
    load_workflows_with(options, source, paths, &Registry::builtin())
}

/// [`load_workflows_from`] with the step kinds of `kinds` (the built-in ones, or those and more).
pub fn load_workflows_with(
    options: &LoadOptions,
    source: WorkflowSource,
    paths: &[PathBuf],
    kinds: &Registry,
) -> (WorkflowSet, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    // `revision` is known for a git revision; for the disk it comes from a git status, which
    // `trace_worktree` asks for.
    let (templates, files, revision, trace_worktree) = match source {
        WorkflowSource::Revision(snapshot) => {
            for (path, reason) in &snapshot.skipped {
                diagnostics.push(Diagnostic::warning(path, None, reason.clone()));
            }
            let files = snapshot
                .workflows
                .into_iter()
                .map(|(path, bytes)| WorkflowFile::Read(path, bytes))
                .collect();
            (
                Templates::from_files(snapshot.templates),
                files,
                Some(snapshot.commit),
                false,
            )
        }
        WorkflowSource::Disk => {
            let files = disk_files(options, paths, &mut diagnostics);
            // The revision describes the folder; files named one by one may be from anywhere.
            let trace_worktree = paths.is_empty();
            (
                Templates::new(&options.templates_dir),
                files,
                None,
                trace_worktree,
            )
        }
    };
    // The git status runs beside the compiling of the workflows rather than before it: measured
    // with 1,000 workflows, it is about 3 ms of a cold start.
    let (loaded, revision) = std::thread::scope(|scope| {
        let worktree = trace_worktree.then(|| {
            scope.spawn(|| worktree_revision(&options.workflows_dir, &options.templates_dir))
        });
        let loaded = read_all(&files, &templates, kinds);
        let revision = match worktree {
            // A panic is a bug; surface it rather than lose the revision.
            Some(job) => job
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            None => revision,
        };
        (loaded, revision)
    });
    let mut workflows: Vec<Workflow> = Vec::with_capacity(files.len());
    let mut names: HashMap<String, PathBuf> = HashMap::new();
    for (file, loaded, mut file_diagnostics) in loaded {
        if let Some(workflow) = loaded {
            match names.get(&workflow.name) {
                Some(first) => file_diagnostics.push(Diagnostic::error(
                    &file,
                    yaml::locate(&workflow.source, &YamlPath::default().key("name"), false),
                    format!(
                        "workflow name `{}` is already used by {}",
                        workflow.name,
                        first.display()
                    ),
                )),
                None => {
                    names.insert(workflow.name.clone(), file.clone());
                    if !file_diagnostics.iter().any(Diagnostic::is_error) {
                        workflows.push(workflow);
                    }
                }
            }
        }
        diagnostics.extend(file_diagnostics);
    }
    let mut set = WorkflowSet::new(workflows, templates);
    set.revision = revision;
    (set, diagnostics)
}

/// The workflow files on disk: every one under the folder, or the given files and folders.
fn disk_files(
    options: &LoadOptions,
    paths: &[PathBuf],
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<WorkflowFile> {
    let mut files = Vec::new();
    if paths.is_empty() {
        match find_workflow_files(&options.workflows_dir, diagnostics) {
            Ok(found) => files = found,
            Err(diagnostic) => diagnostics.push(diagnostic),
        }
    } else {
        for path in paths {
            if path.is_dir() {
                match find_workflow_files(path, diagnostics) {
                    Ok(found) => files.extend(found),
                    Err(diagnostic) => diagnostics.push(diagnostic),
                }
            } else {
                files.push(path.clone());
            }
        }
    }
    files.into_iter().map(WorkflowFile::Disk).collect()
}

/// The largest workflow file vane reads: 1 MiB. A real one is a few KiB; a bigger one is a
/// mistake, and parsing it costs hundreds of MB.
pub const MAX_WORKFLOW_FILE: u64 = 1024 * 1024;

/// A file's bytes, reading at most one byte over [`MAX_WORKFLOW_FILE`].
fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_WORKFLOW_FILE + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// One file read and compiled: the workflow, if it parsed, and its problems.
type Loaded = (PathBuf, Option<Workflow>, Vec<Diagnostic>);

/// Reads and compiles every file, in order. Large folders are split over the cores: measured,
/// with 1,000 workflows loading is most of a cold start, and files are independent.
fn read_all(files: &[WorkflowFile], templates: &Templates, kinds: &Registry) -> Vec<Loaded> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |count| count.get())
        .min(8);
    if files.len() < 64 || threads < 2 {
        return files
            .iter()
            .map(|file| read_one(file, templates, kinds))
            .collect();
    }
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|file| read_one(file, templates, kinds))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| {
                // A panic while loading is a bug; surface it rather than lose the files.
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

fn read_one(source: &WorkflowFile, templates: &Templates, kinds: &Registry) -> Loaded {
    let mut diagnostics = Vec::new();
    let file = source.path();
    let bytes = match source {
        WorkflowFile::Disk(path) => read_capped(path),
        // Blobs are small and read once; a copy keeps the disk path's ownership simple.
        WorkflowFile::Read(_, bytes) => Ok(bytes.clone()),
    };
    let text = match bytes {
        Ok(bytes) if bytes.len() as u64 > MAX_WORKFLOW_FILE => {
            diagnostics.push(Diagnostic::error(
                file,
                None,
                "the file is over the 1 MiB limit for a workflow file; split it, or move \
                 large text into a template file",
            ));
            return (file.to_path_buf(), None, diagnostics);
        }
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => {
                diagnostics.push(Diagnostic::error(file, None, "the file is not valid UTF-8"));
                return (file.to_path_buf(), None, diagnostics);
            }
        },
        Err(error) => {
            diagnostics.push(Diagnostic::error(
                file,
                None,
                format!("cannot read the file: {error}"),
            ));
            return (file.to_path_buf(), None, diagnostics);
        }
    };
    // The snippets come from the text as read: for a git revision the file on disk may differ.
    let source = text.clone();
    let loaded = load_one(file, text, templates, kinds, &mut diagnostics);
    crate::diagnostic::attach_source(&mut diagnostics, &source);
    (file.to_path_buf(), loaded, diagnostics)
}

/// Workflow files below `dir`, sorted, skipping test files (`*.test.yaml`) and hidden folders.
/// A symbolic link is followed only when its target is inside `dir`: one that leaves it is an
/// error (its content is never read), since a link can point anywhere (`~/.git-credentials`).
fn find_workflow_files(
    dir: &Path,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<Vec<PathBuf>, Diagnostic> {
    let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|error| {
            // The first thing a new user meets: say how to get a folder.
            let hint = if error.kind() == std::io::ErrorKind::NotFound && current == dir {
                " (create one with `vane init`, or name yours with `--workflows <dir>`)"
            } else {
                ""
            };
            Diagnostic::error(
                &current,
                None,
                format!("cannot read the workflows folder: {error}{hint}"),
            )
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(mut file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_symlink() {
                let target = std::fs::canonicalize(&path);
                match target {
                    Ok(target) if target.starts_with(&root) => {
                        // A folder linked inside the folder is walked where it really is.
                        if target.is_dir() {
                            continue;
                        }
                        let Ok(metadata) = std::fs::metadata(&target) else {
                            continue;
                        };
                        file_type = metadata.file_type();
                    }
                    Ok(target) => {
                        if target.is_dir() || is_workflow_file(&name) {
                            diagnostics.push(Diagnostic::error(
                                &path,
                                None,
                                format!(
                                    "the file is a symbolic link to `{}`, outside the workflows folder; \
                                     vane does not follow it (copy the file in, or link the \
                                     folder itself)",
                                    target.display()
                                ),
                            ));
                        }
                        continue;
                    }
                    // A dangling link: nothing to read.
                    Err(_) => continue,
                }
            }
            if file_type.is_dir() {
                pending.push(path);
            } else if is_workflow_file(&name) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// `*.yml` / `*.yaml`, but not workflow test files (`*.test.yaml`).
pub fn is_workflow_file(name: &str) -> bool {
    (name.ends_with(".yml") || name.ends_with(".yaml")) && !name.contains(".test.")
}

fn load_one(
    file: &Path,
    text: String,
    templates: &Templates,
    kinds: &Registry,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Workflow> {
    let error = |diagnostics: &mut Vec<Diagnostic>, error: YamlError| {
        diagnostics.push(Diagnostic::error(file, error.position, error.message));
    };
    // Unknown keys do not stop the loading: the problems below them are reported in the same
    // round (the workflow is not loaded, having errors).
    let (config, yaml_errors) = yaml::from_str_all::<WorkflowConfig>(&text);
    for yaml_error in yaml_errors {
        error(diagnostics, yaml_error);
    }
    let mut config = config?;
    let gate = match crate::gates::compile_gate(&mut config, templates, &text) {
        Ok(gate) => gate.map(Arc::new),
        Err(errors) => {
            for yaml_error in errors {
                error(diagnostics, yaml_error);
            }
            None
        }
    };
    let root = YamlPath::default();
    let at = |key: &str| yaml::locate(&text, &root.key(key), true);
    let at_value = |key: &str| yaml::locate(&text, &root.key(key), false);

    let version = match &config.version {
        Some(serde_yaml::Value::Number(number))
            if number
                .as_u64()
                .is_some_and(|v| SUPPORTED_VERSIONS.contains(&v)) =>
        {
            number.as_u64().unwrap_or(1)
        }
        Some(other) => {
            let found = yaml::to_string(other).unwrap_or_default();
            diagnostics.push(Diagnostic::error(
                file,
                at_value("version"),
                format!(
                    "unsupported workflow `version` `{}`: this vane reads version {}",
                    found.trim(),
                    SUPPORTED_VERSIONS
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
            return None;
        }
        None => {
            diagnostics.push(Diagnostic::error(
                file,
                Some(yaml::Position { line: 1, column: 1 }),
                "missing required key `version` (this vane reads version 1)",
            ));
            return None;
        }
    };
    let name = match config.name {
        Some(name) if valid_name(&name) => name,
        Some(name) => {
            diagnostics.push(Diagnostic::error(
                file,
                at_value("name"),
                format!("workflow name `{name}` must match [a-z0-9][a-z0-9._-]*"),
            ));
            name
        }
        None => {
            diagnostics.push(Diagnostic::error(
                file,
                Some(yaml::Position { line: 1, column: 1 }),
                "missing required key `name`",
            ));
            String::new()
        }
    };

    let mut triggers = Vec::new();
    match config.triggers {
        None => diagnostics.push(Diagnostic::error(
            file,
            Some(yaml::Position { line: 1, column: 1 }),
            "missing required key `on` (the events this workflow runs on)",
        )),
        Some(mapping) if mapping.is_empty() => {
            diagnostics.push(Diagnostic::error(
                file,
                at("on"),
                "`on` needs at least one event type",
            ));
        }
        Some(mapping) => {
            for (key, value) in mapping {
                let Some(key) = key.as_str().map(str::to_string) else {
                    diagnostics.push(Diagnostic::error(
                        file,
                        at_value("on"),
                        "`on` keys must be event types (strings)",
                    ));
                    continue;
                };
                let path = root.key("on").key(&key);
                match Trigger::compile(&key, value, &text, &path) {
                    Ok(trigger) => triggers.push(trigger),
                    Err(yaml_error) => {
                        for yaml_error in every_unknown_filter_key(yaml_error, &key, &text, &path) {
                            error(diagnostics, yaml_error);
                        }
                    }
                }
            }
        }
    }

    let condition = config.condition.as_deref().and_then(|source| {
        compile_condition(templates, source, &text, &root.key("if"))
            .map_err(|e| error(diagnostics, e))
            .ok()
    });

    let mut vars = Vec::new();
    for (key, value) in &config.vars {
        let Some(name) = key.as_str() else {
            diagnostics.push(Diagnostic::error(
                file,
                at_value("vars"),
                "`vars` keys must be strings",
            ));
            continue;
        };
        let path = root.key("vars").key(name);
        let json = match serde_json::to_value(value) {
            Ok(json) => json,
            Err(json_error) => {
                diagnostics.push(Diagnostic::error(
                    file,
                    yaml::locate(&text, &path, false),
                    format!("vars.{name}: {json_error}"),
                ));
                continue;
            }
        };
        match TemplateTree::compile(templates, &json, TreeMode::Native, &path) {
            Ok(tree) => vars.push((name.to_string(), tree)),
            Err(tree_failure) => error(diagnostics, tree_error(&text, tree_failure)),
        }
    }

    let env = compile_env(templates, &config.env, &text, &root.key("env"))
        .map_err(|e| error(diagnostics, e))
        .ok()
        .unwrap_or_default();

    let concurrency = config.concurrency.and_then(|concurrency| {
        let path = root.key("concurrency").key("group");
        match TemplateTree::compile_string(templates, &concurrency.group, TreeMode::Text, &path) {
            Ok(group) => Some(Concurrency {
                group,
                cancel_in_progress: concurrency.cancel_in_progress,
            }),
            Err(tree_failure) => {
                error(diagnostics, tree_error(&text, tree_failure));
                None
            }
        }
    });

    let timeout = config
        .timeout
        .as_deref()
        .and_then(|timeout| match parse_duration(timeout) {
            Ok(duration) => Some(duration),
            Err(message) => {
                diagnostics.push(Diagnostic::error(file, at_value("timeout"), message));
                None
            }
        });

    let jobs = match (config.steps, config.jobs) {
        (Some(_), Some(_)) => {
            diagnostics.push(Diagnostic::error(
                file,
                at("jobs"),
                "a workflow has `steps` or `jobs`, not both",
            ));
            Vec::new()
        }
        (None, None) => {
            diagnostics.push(Diagnostic::error(
                file,
                Some(yaml::Position { line: 1, column: 1 }),
                "missing required key `steps` (or `jobs`)",
            ));
            Vec::new()
        }
        (Some(steps), None) => {
            let steps = compile_steps(
                steps,
                templates,
                kinds,
                &text,
                &root.key("steps"),
                file,
                diagnostics,
            );
            vec![Job {
                id: "main".to_string(),
                needs: Vec::new(),
                condition: None,
                steps,
            }]
        }
        (None, Some(jobs)) => compile_jobs(jobs, templates, kinds, &text, file, diagnostics),
    };

    for (secret_use, position) in undeclared_secrets(&text, &config.secrets) {
        diagnostics.push(Diagnostic::warning(
            file,
            Some(position),
            format!(
                "template uses secret `{secret_use}`, which is not declared: add it to `secrets:`"
            ),
        ));
    }

    Some(Workflow {
        name,
        description: config.description,
        file: file.to_path_buf(),
        source: Arc::from(text),
        version,
        triggers,
        condition,
        secrets: config.secrets,
        vars,
        env,
        concurrency,
        timeout,
        gate,
        jobs,
    })
}

/// A trigger's unknown key, with the others of its filter: the filter is read again (on this
/// error path only) by [`yaml::from_value_all`], which finds them all in one round.
fn every_unknown_filter_key(
    first: YamlError,
    key: &str,
    text: &str,
    path: &YamlPath,
) -> Vec<YamlError> {
    if !first.message.contains("unknown key `") || matches!(key, "schedule" | "dispatch") {
        return vec![first];
    }
    let value = yaml::parse_value(text)
        .ok()
        .and_then(|document| document.get("on")?.get(key).cloned());
    match value.map(|value| yaml::from_value_all::<FilterConfig>(value, text, path)) {
        Some((_, errors)) if !errors.is_empty() => errors,
        _ => vec![first],
    }
}

/// `[a-z0-9][a-z0-9._-]*`
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(first) if first.is_ascii_lowercase() || first.is_ascii_digit())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

fn compile_steps(
    steps: Vec<serde_yaml::Value>,
    templates: &Templates,
    kinds: &Registry,
    text: &str,
    path: &YamlPath,
    file: &Path,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Step> {
    if steps.is_empty() {
        diagnostics.push(Diagnostic::error(
            file,
            yaml::locate(text, path, true),
            "`steps` needs at least one step",
        ));
    }
    let mut compiled: Vec<Step> = Vec::with_capacity(steps.len());
    let mut ids = HashSet::new();
    for (index, value) in steps.into_iter().enumerate() {
        let step_path = path.index(index);
        let result = Step::compile(
            value,
            &StepSite {
                templates,
                text,
                path: &step_path,
                index,
                kinds,
            },
        );
        match result {
            Ok(mut step) => {
                for warning in step.warnings.drain(..) {
                    diagnostics.push(Diagnostic::warning(file, warning.position, warning.message));
                }
                if !ids.insert(step.id.clone()) {
                    diagnostics.push(Diagnostic::error(
                        file,
                        yaml::locate(text, &step_path.key("id"), false),
                        format!("step id `{}` is used twice in this job", step.id),
                    ));
                }
                compiled.push(step);
            }
            Err(yaml_error) => diagnostics.push(Diagnostic::error(
                file,
                yaml_error.position,
                yaml_error.message,
            )),
        }
    }
    compiled
}

fn compile_jobs(
    jobs: serde_yaml::Mapping,
    templates: &Templates,
    kinds: &Registry,
    text: &str,
    file: &Path,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Job> {
    let root = YamlPath::default().key("jobs");
    let mut compiled = Vec::new();
    for (key, value) in jobs {
        let Some(id) = key.as_str().map(str::to_string) else {
            diagnostics.push(Diagnostic::error(
                file,
                yaml::locate(text, &root, true),
                "job ids must be strings",
            ));
            continue;
        };
        let path = root.key(&id);
        let config: JobConfig = match yaml::from_value(value, text, &path) {
            Ok(config) => config,
            Err(yaml_error) => {
                diagnostics.push(Diagnostic::error(
                    file,
                    yaml_error.position,
                    yaml_error.message,
                ));
                continue;
            }
        };
        let condition = config.condition.as_deref().and_then(|source| {
            compile_condition(templates, source, text, &path.key("if"))
                .map_err(|yaml_error| {
                    diagnostics.push(Diagnostic::error(
                        file,
                        yaml_error.position,
                        yaml_error.message,
                    ))
                })
                .ok()
        });
        let steps = compile_steps(
            config.steps,
            templates,
            kinds,
            text,
            &path.key("steps"),
            file,
            diagnostics,
        );
        compiled.push(Job {
            id,
            needs: config.needs.into_vec(),
            condition,
            steps,
        });
    }
    check_needs(&compiled, text, file, diagnostics);
    compiled
}

/// Unknown `needs` and cycles are load errors, with the position of the offending `needs`.
fn check_needs(jobs: &[Job], text: &str, file: &Path, diagnostics: &mut Vec<Diagnostic>) {
    let ids: HashSet<&str> = jobs.iter().map(|job| job.id.as_str()).collect();
    for job in jobs {
        for need in &job.needs {
            if !ids.contains(need.as_str()) {
                diagnostics.push(Diagnostic::error(
                    file,
                    yaml::locate(
                        text,
                        &YamlPath::default().key("jobs").key(&job.id).key("needs"),
                        false,
                    ),
                    format!(
                        "job `{}` needs `{need}`, which is not a job of this workflow",
                        job.id
                    ),
                ));
            }
        }
    }
    if let Err(cycle) = super::set::job_order(jobs) {
        diagnostics.push(Diagnostic::error(
            file,
            yaml::locate(
                text,
                &YamlPath::default().key("jobs").key(&cycle[0]).key("needs"),
                false,
            ),
            format!(
                "jobs depend on each other in a cycle: {}",
                cycle.join(" → ")
            ),
        ));
    }
}

/// `secrets.NAME` used in the text but not declared. A textual scan: templates reach secrets
/// only through the `secrets` variable, and the scan also sees uses inside `{% %}` blocks.
fn undeclared_secrets(text: &str, declared: &[String]) -> Vec<(String, yaml::Position)> {
    let mut found: Vec<(String, yaml::Position)> = Vec::new();
    let mut offset = 0;
    while let Some(index) = text[offset..].find("secrets.") {
        let start = offset + index;
        let before = text[..start].chars().next_back();
        offset = start + "secrets.".len();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            continue;
        }
        let name: String = text[offset..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty()
            && !declared.contains(&name)
            && !found.iter().any(|(seen, _)| *seen == name)
        {
            found.push((name, position_of_offset(text, start)));
        }
    }
    found
}

/// The line and column (in characters) of byte `offset` in `text`.
fn position_of_offset(text: &str, offset: usize) -> yaml::Position {
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    yaml::Position::new(
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_names_follow_the_pattern() {
        assert!(valid_name("deploy-api"));
        assert!(valid_name("1.x_y"));
        assert!(!valid_name("Deploy"));
        assert!(!valid_name("-x"));
        assert!(!valid_name(""));
    }

    #[test]
    fn undeclared_secrets_are_found_in_templates() {
        let text = "secrets: [A]\nsteps:\n  - run: echo {{ secrets.A }} {{ secrets.B }}\n    env: {X: '{{ secrets.B }}'}";
        // Reported once, where it is first used.
        assert_eq!(
            undeclared_secrets(text, &["A".to_string()]),
            vec![("B".to_string(), yaml::Position::new(3, 34))]
        );
    }

    #[test]
    fn test_files_are_not_workflows() {
        assert!(is_workflow_file("deploy.yaml"));
        assert!(is_workflow_file("deploy.yml"));
        assert!(!is_workflow_file("deploy.test.yaml"));
        assert!(!is_workflow_file("notes.md"));
    }
}
