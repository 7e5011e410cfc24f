//! One workflow run: secrets, vars, env, then jobs in `needs` order and their steps in order.

use super::observe::{RunEvent, StepRef, Stream};
use super::record::{RunRecord, RunStatus, StepRecord, StepStatus};
use super::{Engine, Overrides};
use crate::event::Event;
use crate::plan::workflow_value;
use crate::secrets::{self, MASK};
use crate::steps::{StepContext, StepError, StepSuccess};
use crate::template::{StepView, StepsObject, TemplateTree, Templates};
use crate::workflow::{Job, Step, Workflow};
use minijinja::Value;
use serde_json::{Map, Value as Json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What every template of one run shares.
struct RunScope {
    event: Value,
    /// A dispatch's inputs, also at the top as GitHub Actions has them (`inputs.NAME`).
    inputs: Value,
    vars: Value,
    secrets: Value,
    workflow: Value,
    run: Value,
    now: String,
    env: Vec<(String, String)>,
    /// What a gate kept for the run (null without one).
    gate: Value,
}

/// What a finished job leaves for the jobs after it.
struct JobResult {
    status: &'static str,
    outputs: Map<String, Json>,
    steps: Map<String, Json>,
}

pub fn run_workflow(
    engine: &Engine,
    index: usize,
    event: &Event,
    event_value: &Value,
    depth: usize,
    overrides: &Overrides,
) -> (RunRecord, Vec<Event>) {
    let workflow = &engine.set.workflows[index];
    let started = Instant::now();
    let deadline = workflow.timeout.map(|timeout| started + timeout);
    let dry_run = engine.options.dry_run;
    let run_id = overrides
        .run_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let sequence = overrides.sequence;
    engine.observer.observe(&RunEvent::RunStarted {
        sequence,
        workflow: index,
        run_id: &run_id,
    });
    let mut record = RunRecord {
        id: run_id.clone(),
        started: chrono::Utc::now(),
        status: if dry_run {
            RunStatus::Planned
        } else {
            RunStatus::Success
        },
        duration_ms: 0,
        error: None,
        steps: Vec::new(),
    };
    let finish = |mut record: RunRecord, emitted: Vec<Event>| {
        record.duration_ms = started.elapsed().as_millis() as u64;
        engine.observer.observe(&RunEvent::RunFinished {
            sequence,
            workflow: index,
            record: &record,
        });
        (record, emitted)
    };

    let mut secret_values = Map::new();
    for name in &workflow.secrets {
        let value = match &overrides.secrets {
            Some(given) => given.get(name).cloned(),
            None => secrets::resolve(name),
        };
        match value {
            Some(value) => {
                engine.masker.add(&value);
                secret_values.insert(name.clone(), Json::String(value));
            }
            // A plan on a laptop has no production secrets: it shows where they go.
            None if dry_run => {
                secret_values.insert(name.clone(), Json::String(MASK.to_string()));
            }
            None => {
                record.status = RunStatus::Failure;
                record.error = Some(secrets::why_missing(name));
                return finish(record, Vec::new());
            }
        }
    }

    let mut scope = RunScope {
        event: event_value.clone(),
        inputs: crate::plan::inputs_value(event, event_value),
        vars: Value::from(()),
        secrets: crate::template::to_value(&secret_values),
        workflow: workflow_value(workflow, engine.set.revision.as_deref()),
        run: minijinja::context! { id => run_id.as_str(), attempt => 1, status => "running", dry_run => dry_run },
        now: crate::event::now_rfc3339(),
        env: Vec::new(),
        gate: overrides
            .gate
            .as_ref()
            .map_or(Value::from(()), crate::template::to_value),
    };
    match render_vars(workflow, &scope) {
        Ok(vars) => scope.vars = vars,
        Err(message) => {
            record.status = RunStatus::Failure;
            record.error = Some(message);
            return finish(record, Vec::new());
        }
    }
    match render_env(workflow, &workflow.env, &scope, &[], &Value::from(())) {
        Ok(mut env) => {
            for (name, value) in &overrides.env {
                env.retain(|(key, _)| key != name);
                env.push((name.clone(), value.clone()));
            }
            scope.env = env;
        }
        Err(message) => {
            record.status = RunStatus::Failure;
            record.error = Some(message);
            return finish(record, Vec::new());
        }
    }

    // A cycle is a load error, so the order always exists for a loaded workflow.
    let order = crate::workflow::job_order(&workflow.jobs)
        .unwrap_or_else(|_| (0..workflow.jobs.len()).collect());
    let mut results: HashMap<String, JobResult> = HashMap::new();
    let mut job_records: Vec<Vec<StepRecord>> = workflow.jobs.iter().map(|_| Vec::new()).collect();
    let mut emitted = Vec::new();
    let mut failed = false;
    let mut cancelled = false;
    let mut started = vec![false; workflow.jobs.len()];
    let index_of_workflow = index;
    let run_id_ref = run_id.as_str();
    // Jobs run in parallel as far as `needs` allows: each ready job gets a thread, and a finished
    // job may make others ready. Records keep the jobs' order in the file.
    std::thread::scope(|threads| {
        let (sender, receiver) = std::sync::mpsc::channel::<(usize, JobRun)>();
        let mut running = 0usize;
        loop {
            let mut progressed = true;
            while progressed {
                progressed = false;
                for &index in &order {
                    let job = &workflow.jobs[index];
                    if started[index] || !job.needs.iter().all(|need| results.contains_key(need)) {
                        continue;
                    }
                    started[index] = true;
                    progressed = true;
                    let needs_status = job_needs_status(job, workflow, &results);
                    let jobs_value = jobs_value(&results);
                    let run_it = match &job.condition {
                        Some(condition) => {
                            let context = minijinja::context! {
                                event => scope.event.clone(), inputs => scope.inputs.clone(), vars => scope.vars.clone(), secrets => scope.secrets.clone(),
                                workflow => scope.workflow.clone(), run => scope.run.clone(), now => scope.now.as_str(), gate => scope.gate.clone(),
                                jobs => jobs_value.clone(), needs => jobs_value.clone(), env => env_value(&scope.env),
                                __vane_status => needs_status,
                            };
                            match Templates::eval(&condition.expression, &context) {
                                Ok(value) => value.is_true(),
                                Err(error) => {
                                    failed = true;
                                    record.error = Some(format!(
                                        "{}: {}",
                                        workflow.place(&condition.path),
                                        error.message
                                    ));
                                    false
                                }
                            }
                        }
                        None => needs_status == "success",
                    };
                    if !run_it || engine.cancel.is_cancelled() {
                        let was_cancelled = engine.cancel.is_cancelled();
                        cancelled |= was_cancelled;
                        job_records[index] = job
                            .steps
                            .iter()
                            .map(|step| {
                                let mut record = skipped_step(step, job, workflow);
                                if was_cancelled {
                                    record.status = StepStatus::Cancelled;
                                }
                                let step_ref = StepRef {
                                    sequence,
                                    workflow: index_of_workflow,
                                    run_id: run_id_ref,
                                    job: record.job.as_deref(),
                                    step,
                                };
                                engine.observer.observe(&RunEvent::StepFinished {
                                    step: step_ref,
                                    record: &record,
                                });
                                record
                            })
                            .collect();
                        let status = if was_cancelled {
                            "cancelled"
                        } else {
                            "skipped"
                        };
                        results.insert(
                            job.id.clone(),
                            JobResult {
                                status,
                                outputs: Map::new(),
                                steps: Map::new(),
                            },
                        );
                        continue;
                    }
                    let sender = sender.clone();
                    let scope = &scope;
                    running += 1;
                    let work = move || {
                        let job_run = run_job(
                            engine,
                            JobSite {
                                sequence,
                                workflow: index_of_workflow,
                                run_id: run_id_ref,
                            },
                            job,
                            scope,
                            &jobs_value,
                            event,
                            depth,
                            deadline,
                        );
                        // The receiver lives until every job is done.
                        let _ = sender.send((index, job_run));
                    };
                    // The `steps:` shorthand is one job: no thread for it.
                    if workflow.jobs.len() == 1 {
                        work();
                    } else {
                        threads.spawn(work);
                    }
                }
            }
            if running == 0 {
                break;
            }
            let Ok((index, job_run)) = receiver.recv() else {
                break;
            };
            running -= 1;
            let job = &workflow.jobs[index];
            failed |= job_run.status == "failure";
            cancelled |= job_run.status == "cancelled";
            job_records[index] = job_run.records;
            emitted.extend(job_run.emitted);
            results.insert(
                job.id.clone(),
                JobResult {
                    status: job_run.status,
                    outputs: job_run.outputs,
                    steps: job_run.step_outputs,
                },
            );
        }
    });
    for index in &order {
        record.steps.append(&mut job_records[*index]);
    }
    if !dry_run {
        record.status = if cancelled {
            RunStatus::Cancelled
        } else if failed {
            RunStatus::Failure
        } else {
            RunStatus::Success
        };
    } else if failed {
        record.status = RunStatus::Failure;
    }
    finish(record, emitted)
}

/// What the status functions see in a job: `failure` when any ancestor job failed (GitHub's
/// meaning of `failure()` across a chain of jobs), `cancelled` likewise, `skipped` when a direct
/// need was skipped (so the default `success()` skips this job too), else `success`.
fn job_needs_status(
    job: &Job,
    workflow: &Workflow,
    results: &HashMap<String, JobResult>,
) -> &'static str {
    let mut ancestors: Vec<&str> = job.needs.iter().map(String::as_str).collect();
    let mut seen: Vec<&str> = Vec::new();
    let mut cancelled = false;
    while let Some(id) = ancestors.pop() {
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        match results.get(id).map(|result| result.status) {
            Some("failure") => return "failure",
            Some("cancelled") => cancelled = true,
            _ => {}
        }
        if let Some(ancestor) = workflow.jobs.iter().find(|candidate| candidate.id == id) {
            ancestors.extend(ancestor.needs.iter().map(String::as_str));
        }
    }
    if cancelled {
        return "cancelled";
    }
    if job.needs.iter().any(|need| {
        results
            .get(need)
            .is_some_and(|result| result.status == "skipped")
    }) {
        return "skipped";
    }
    "success"
}

fn jobs_value(results: &HashMap<String, JobResult>) -> Value {
    let mut map = Map::new();
    for (id, result) in results {
        map.insert(
            id.clone(),
            serde_json::json!({"result": result.status, "outputs": result.outputs, "steps": result.steps}),
        );
    }
    crate::template::to_value(&map)
}

fn env_value(env: &[(String, String)]) -> Value {
    // A map: `Value::from_iter` over pairs builds a list of pairs, where `env.NAME` is undefined.
    let map: Map<String, Json> = env
        .iter()
        .map(|(key, value)| (key.clone(), Json::String(value.clone())))
        .collect();
    crate::template::to_value(&map)
}

fn render_vars(workflow: &Workflow, scope: &RunScope) -> Result<Value, String> {
    let mut vars = Map::new();
    for (name, tree) in &workflow.vars {
        let context = minijinja::context! {
            event => scope.event.clone(), inputs => scope.inputs.clone(), vars => crate::template::to_value(&vars), secrets => scope.secrets.clone(),
            workflow => scope.workflow.clone(), run => scope.run.clone(), now => scope.now.as_str(), gate => scope.gate.clone(),
        };
        let value = tree.render(&context).map_err(|error| {
            let path = crate::yaml::YamlPath::default().key("vars").key(name);
            let error = error.within(&path);
            format!(
                "{}: {}: {}",
                workflow.place_template(&error.path, error.error.line),
                error.path,
                error.error.message
            )
        })?;
        vars.insert(name.clone(), value);
    }
    Ok(crate::template::to_value(&vars))
}

/// Renders an `env` map (the workflow's, or a step's on top of it).
fn render_env(
    workflow: &Workflow,
    entries: &[(String, TemplateTree)],
    scope: &RunScope,
    base: &[(String, String)],
    steps: &Value,
) -> Result<Vec<(String, String)>, String> {
    let mut env: Vec<(String, String)> = base.to_vec();
    if entries.is_empty() {
        return Ok(env);
    }
    let context = minijinja::context! {
        event => scope.event.clone(), inputs => scope.inputs.clone(), vars => scope.vars.clone(), secrets => scope.secrets.clone(),
        workflow => scope.workflow.clone(), run => scope.run.clone(), now => scope.now.as_str(), gate => scope.gate.clone(),
        env => env_value(base), steps => steps.clone(),
    };
    for (name, tree) in entries {
        let value = tree.render(&context).map_err(|error| {
            format!(
                "{}: env.{name}: {}",
                workflow.file.display(),
                error.error.message
            )
        })?;
        let text = match value {
            Json::String(text) => text,
            other => other.to_string(),
        };
        env.retain(|(key, _)| key != name);
        env.push((name.clone(), text));
    }
    Ok(env)
}

struct JobRun {
    status: &'static str,
    records: Vec<StepRecord>,
    emitted: Vec<Event>,
    outputs: Map<String, Json>,
    step_outputs: Map<String, Json>,
}

/// Where a job runs: what names its steps in the run-event stream.
#[derive(Clone, Copy)]
struct JobSite<'a> {
    sequence: u64,
    workflow: usize,
    run_id: &'a str,
}

impl<'a> JobSite<'a> {
    fn step(self, job: Option<&'a str>, step: &'a Step) -> StepRef<'a> {
        StepRef {
            sequence: self.sequence,
            workflow: self.workflow,
            run_id: self.run_id,
            job,
            step,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_job(
    engine: &Engine,
    site: JobSite,
    job: &Job,
    scope: &RunScope,
    jobs_value: &Value,
    event: &Event,
    depth: usize,
    deadline: Option<Instant>,
) -> JobRun {
    let workflow = &engine.set.workflows[site.workflow];
    let dry_run = engine.options.dry_run;
    let job_label = (workflow.jobs.len() > 1 || job.id != "main").then(|| job.id.clone());
    // Every record that leaves this job was announced as finished first.
    let finished = |run: &mut JobRun, step: &Step, record: StepRecord| {
        engine.observer.observe(&RunEvent::StepFinished {
            step: site.step(job_label.as_deref(), step),
            record: &record,
        });
        run.records.push(record);
    };
    let mut status: &'static str = "success";
    let mut views: Vec<StepView> = Vec::new();
    let mut run = JobRun {
        status: "success",
        records: Vec::new(),
        emitted: Vec::new(),
        outputs: Map::new(),
        step_outputs: Map::new(),
    };
    for step in &job.steps {
        if engine.cancel.is_cancelled() {
            status = "cancelled";
        }
        let steps_value = Value::from_object(StepsObject {
            steps: views.clone(),
        });
        let started = Instant::now();
        let mut step_record = StepRecord {
            id: step.id.clone(),
            name: step.name.clone(),
            job: job_label.clone(),
            kind: step.kind,
            status: StepStatus::Skipped,
            rendered: Json::Null,
            outputs: None,
            attempts: 0,
            duration_ms: 0,
            error: None,
            diff: None,
            log: None,
            summary: None,
        };
        let env = match render_env(workflow, &step.env, scope, &scope.env, &steps_value) {
            Ok(env) => env,
            Err(message) => {
                fail_step(&mut step_record, &mut views, step, message);
                status = "failure";
                finished(&mut run, step, step_record);
                continue;
            }
        };
        // `run.status` is the job's status so far, as `steps.<id>.outcome` are the steps'.
        let run_value = minijinja::context! { status => status, ..scope.run.clone() };
        let context = minijinja::context! {
            event => scope.event.clone(), inputs => scope.inputs.clone(), vars => scope.vars.clone(), secrets => scope.secrets.clone(),
            workflow => scope.workflow.clone(), run => run_value, now => scope.now.as_str(), gate => scope.gate.clone(),
            env => env_value(&env), steps => steps_value, jobs => jobs_value.clone(), needs => jobs_value.clone(),
            __vane_status => status,
        };
        let should_run = match &step.condition {
            Some(condition) => match Templates::eval(&condition.expression, &context) {
                Ok(value) => value.is_true(),
                Err(error) => {
                    fail_step(
                        &mut step_record,
                        &mut views,
                        step,
                        format!("{}: if: {}", workflow.place(&condition.path), error.message),
                    );
                    status = "failure";
                    finished(&mut run, step, step_record);
                    continue;
                }
            },
            None => status == "success",
        };
        if !should_run {
            views.push(StepView {
                id: step.id.clone(),
                outputs: Some(Map::new()),
                outcome: "skipped".to_string(),
            });
            finished(&mut run, step, step_record);
            continue;
        }
        let rendered = match step.action.render(&context) {
            Ok(rendered) => rendered,
            Err(error) => {
                let error = error.within(&step.path.key(step.kind));
                let place = workflow.place_template(&error.path, error.error.line);
                let message = format!("{place}: {}: {}", error.path, error.error.message);
                fail_step(&mut step_record, &mut views, step, message);
                status = "failure";
                finished(&mut run, step, step_record);
                continue;
            }
        };
        step_record.rendered = rendered.clone();
        // Masked before anything can fail, so that no message can show them.
        for secret in step.action.secrets(&rendered) {
            engine.masker.add(&secret);
        }
        let timeout = match deadline {
            Some(deadline) => step
                .timeout
                .min(deadline.saturating_duration_since(Instant::now())),
            None => step.timeout,
        };
        // Each line the step writes goes out masked, as it arrives (not in a plan: nothing runs).
        let masker = &engine.masker;
        let output = |stream: Stream, line: &[u8]| {
            let text = masker.mask(&String::from_utf8_lossy(line));
            engine.observer.observe(&RunEvent::StepOutput {
                step: site.step(job_label.as_deref(), step),
                stream,
                line: &text,
            });
        };
        if !dry_run {
            engine.observer.observe(&RunEvent::StepStarted(
                site.step(job_label.as_deref(), step),
            ));
        }
        let step_context = StepContext {
            event,
            depth,
            max_emitted: engine.options.max_emitted,
            values: &context,
            workspace: &engine.options.workspace,
            env: &env,
            timeout,
            cancel: &engine.cancel,
            templates: engine.set.templates,
            masker: &engine.masker,
            output: &output,
            state_folder: engine.options.state_folder.as_deref(),
            recommendations: &engine.recommendations,
        };
        let outcome = if dry_run {
            step_record.attempts = 0;
            step.action.plan(&rendered, &step_context)
        } else {
            execute_with_retry(step, &rendered, &step_context, &mut step_record.attempts)
        };
        step_record.duration_ms = started.elapsed().as_millis() as u64;
        let outputs = match &outcome {
            Ok(success) => &success.outputs,
            Err(error) => &error.outputs,
        };
        step.action
            .complete_rendered(&mut step_record.rendered, outputs, &step_context);
        match outcome {
            Ok(success) => {
                run.emitted.extend(success.emitted);
                step_record.status = if dry_run {
                    StepStatus::Planned
                } else {
                    StepStatus::Success
                };
                step_record.diff = success.diff;
                step_record.log = success.log;
                let known = if dry_run && success.outputs.is_empty() {
                    None
                } else {
                    Some(success.outputs.clone())
                };
                if !dry_run {
                    step_record.outputs = Some(success.outputs.clone());
                    record_outputs(&mut run, &step.id, &success.outputs);
                } else if step.action.planned_outputs_are_real() {
                    step_record.outputs = Some(success.outputs.clone());
                }
                views.push(StepView {
                    id: step.id.clone(),
                    outputs: known,
                    outcome: "success".to_string(),
                });
            }
            Err(error) => {
                step_record.status = if error.cancelled {
                    StepStatus::Cancelled
                } else {
                    StepStatus::Failure
                };
                step_record.error = Some(error.message.clone());
                step_record.outputs = Some(error.outputs.clone());
                step_record.log = error.log.map(String::from);
                views.push(StepView {
                    id: step.id.clone(),
                    outputs: Some(error.outputs),
                    outcome: if error.cancelled {
                        "cancelled"
                    } else {
                        "failure"
                    }
                    .to_string(),
                });
                if error.cancelled {
                    status = "cancelled";
                } else if !step.continue_on_error {
                    status = "failure";
                }
            }
        }
        step_record.summary = step_record
            .outputs
            .as_ref()
            .and_then(|outputs| step.action.summary(outputs));
        finished(&mut run, step, step_record);
    }
    run.status = status;
    run
}

fn record_outputs(run: &mut JobRun, step_id: &str, outputs: &Map<String, Json>) {
    for (name, value) in outputs {
        run.outputs.insert(name.clone(), value.clone());
    }
    run.step_outputs.insert(
        step_id.to_string(),
        serde_json::json!({ "outputs": outputs }),
    );
}

fn fail_step(record: &mut StepRecord, views: &mut Vec<StepView>, step: &Step, message: String) {
    record.status = StepStatus::Failure;
    record.error = Some(message);
    views.push(StepView {
        id: step.id.clone(),
        outputs: Some(Map::new()),
        outcome: "failure".to_string(),
    });
}

fn skipped_step(step: &Step, job: &Job, workflow: &Workflow) -> StepRecord {
    StepRecord {
        id: step.id.clone(),
        name: step.name.clone(),
        job: (workflow.jobs.len() > 1 || job.id != "main").then(|| job.id.clone()),
        kind: step.kind,
        status: StepStatus::Skipped,
        rendered: Json::Null,
        outputs: None,
        attempts: 0,
        duration_ms: 0,
        error: None,
        diff: None,
        log: None,
        summary: None,
    }
}

/// Tries up to `retry.attempts` times, waiting the backoff between tries (cut short by a cancel).
fn execute_with_retry(
    step: &Step,
    rendered: &Json,
    step_context: &StepContext,
    attempts: &mut u32,
) -> Result<StepSuccess, StepError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        *attempts = attempt;
        let outcome = step.action.execute(rendered, step_context);
        match outcome {
            Err(error) if !error.cancelled && attempt < step.retry.attempts => {
                let delay = step.retry.delay_after(attempt);
                let until = Instant::now() + delay;
                while Instant::now() < until {
                    if step_context.cancel.is_cancelled() {
                        return Err(error);
                    }
                    std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
                }
            }
            other => return other,
        }
    }
}
