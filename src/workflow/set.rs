//! The loaded workflows, indexed by the event types (and literal repositories) they listen to, so
//! that an event is checked only against the workflows that could match it.

use super::{Job, ListFilter, TriggerKind, Workflow};
use crate::event::Event;
use crate::template::Templates;
use std::collections::HashMap;

/// Every loaded workflow, in file order, with an index over their triggers.
pub struct WorkflowSet {
    pub workflows: Vec<Workflow>,
    pub templates: Templates,
    /// The revision of the workflows (their repository's commit, `+dirty` when changed), if known.
    pub revision: Option<String>,
    /// (event type, repository) → workflows whose trigger for that type names the repository literally.
    by_type_and_repo: HashMap<(String, String), Vec<usize>>,
    /// event type → workflows with a trigger for that type that is not bound to literal repositories.
    by_type: HashMap<String, Vec<usize>>,
    /// Workflows with a glob over event types (`deploy.*`): checked for every event.
    type_globs: Vec<usize>,
    /// Workflows whose `if` starts with `event.FIELD == "literal" and …`, by field and literal:
    /// candidates only for events whose field is that literal (see `alpha`). They are in none of
    /// the trigger indexes above: their condition is the narrower test.
    by_condition: Vec<(super::alpha::Field, HashMap<String, Vec<usize>>)>,
}

impl WorkflowSet {
    pub fn new(workflows: Vec<Workflow>, templates: Templates) -> WorkflowSet {
        let mut set = WorkflowSet {
            workflows,
            templates,
            revision: None,
            by_type_and_repo: HashMap::new(),
            by_type: HashMap::new(),
            type_globs: Vec::new(),
            by_condition: Vec::new(),
        };
        for (index, workflow) in set.workflows.iter().enumerate() {
            if let Some((field, literal)) = workflow
                .condition
                .as_ref()
                .and_then(|condition| super::alpha::key(&condition.source))
            {
                let at = match set.by_condition.iter().position(|(f, _)| *f == field) {
                    Some(at) => at,
                    None => {
                        set.by_condition.push((field, HashMap::new()));
                        set.by_condition.len() - 1
                    }
                };
                set.by_condition[at]
                    .1
                    .entry(literal)
                    .or_default()
                    .push(index);
                continue;
            }
            for trigger in &workflow.triggers {
                if trigger.key_glob.is_some() {
                    set.type_globs.push(index);
                    continue;
                }
                let literal_repos = match &trigger.kind {
                    TriggerKind::Event(filter) => match &filter.repos {
                        Some(ListFilter::Include(list))
                            if list.sources().iter().all(|p| is_literal(p)) =>
                        {
                            Some(list.sources())
                        }
                        _ => None,
                    },
                    _ => None,
                };
                match literal_repos {
                    Some(repos) => {
                        for repo in repos {
                            set.by_type_and_repo
                                .entry((trigger.key.clone(), repo.clone()))
                                .or_default()
                                .push(index);
                        }
                    }
                    None => set
                        .by_type
                        .entry(trigger.key.clone())
                        .or_default()
                        .push(index),
                }
            }
        }
        set
    }

    /// The workflows that could match `event`, in file order, each once. The rest cannot match
    /// (their triggers name other types or other repositories, or their `if` starts with an
    /// `event.FIELD == "literal"` the event's field is not).
    pub fn candidates(&self, event: &Event) -> Vec<usize> {
        let mut found: Vec<usize> = Vec::new();
        if let Some(list) = self.by_type.get(&event.kind) {
            found.extend(list);
        }
        if let Some(repo) = &event.repo {
            // A borrowed key cannot look up a tuple of Strings; the tuple is cheap next to matching.
            if let Some(list) = self
                .by_type_and_repo
                .get(&(event.kind.clone(), repo.clone()))
            {
                found.extend(list);
            }
        }
        found.extend(&self.type_globs);
        for (field, by_literal) in &self.by_condition {
            if let Some(list) = field.of(event).and_then(|value| by_literal.get(value)) {
                found.extend(list);
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }

    pub fn get(&self, name: &str) -> Option<&Workflow> {
        self.workflows.iter().find(|workflow| workflow.name == name)
    }

    pub fn len(&self) -> usize {
        self.workflows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.workflows.is_empty()
    }

    /// The inputs of workflow `name`'s `dispatch` trigger, or why it cannot be dispatched (with
    /// the closest name when there is no such workflow).
    pub fn dispatch_inputs(&self, name: &str) -> Result<&[super::DispatchInput], String> {
        let Some(workflow) = self.get(name) else {
            let closest = self
                .workflows
                .iter()
                .map(|workflow| (strsim::jaro_winkler(name, &workflow.name), &workflow.name))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            return Err(match closest {
                Some((_, suggestion)) => {
                    format!("no workflow is named `{name}` (did you mean `{suggestion}`?)")
                }
                None => format!("no workflow is named `{name}`"),
            });
        };
        workflow
            .triggers
            .iter()
            .find_map(|trigger| match &trigger.kind {
                super::TriggerKind::Dispatch(inputs) => Some(inputs.as_slice()),
                _ => None,
            })
            .ok_or_else(|| {
                format!(
                    "workflow `{name}` ({}) has no `dispatch` trigger, so it cannot be run by \
                     hand: add `dispatch:` under its `on:`",
                    workflow.file.display()
                )
            })
    }
}

fn is_literal(pattern: &str) -> bool {
    !pattern.contains(['*', '?', '[', '+', '!', '\\'])
}

/// The order jobs may run in (each after its `needs`), or the ids of a cycle.
pub fn job_order(jobs: &[Job]) -> Result<Vec<usize>, Vec<String>> {
    let position: HashMap<&str, usize> = jobs
        .iter()
        .enumerate()
        .map(|(index, job)| (job.id.as_str(), index))
        .collect();
    let mut remaining: Vec<usize> = jobs
        .iter()
        .map(|job| {
            job.needs
                .iter()
                .filter(|need| position.contains_key(need.as_str()))
                .count()
        })
        .collect();
    let mut order = Vec::with_capacity(jobs.len());
    let mut ready: Vec<usize> = (0..jobs.len())
        .filter(|&index| remaining[index] == 0)
        .collect();
    ready.reverse();
    while let Some(index) = ready.pop() {
        order.push(index);
        for (other, job) in jobs.iter().enumerate() {
            if job.needs.iter().any(|need| need == &jobs[index].id) {
                remaining[other] -= 1;
                if remaining[other] == 0 {
                    ready.insert(0, other);
                }
            }
        }
    }
    if order.len() == jobs.len() {
        return Ok(order);
    }
    // Walk `needs` from any job left over until a job repeats: that is the cycle.
    let mut walk: Vec<usize> = vec![
        (0..jobs.len())
            .find(|&index| remaining[index] > 0)
            .unwrap_or(0),
    ];
    loop {
        let current = *walk.last().unwrap_or(&0);
        let next = jobs[current]
            .needs
            .iter()
            .filter_map(|need| position.get(need.as_str()).copied())
            .find(|&index| remaining[index] > 0)
            .unwrap_or(current);
        if let Some(start) = walk.iter().position(|&seen| seen == next) {
            let mut cycle: Vec<String> = walk[start..]
                .iter()
                .map(|&index| jobs[index].id.clone())
                .collect();
            cycle.push(jobs[next].id.clone());
            return Err(cycle);
        }
        walk.push(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, needs: &[&str]) -> Job {
        Job {
            id: id.into(),
            needs: needs.iter().map(|need| need.to_string()).collect(),
            condition: None,
            steps: vec![],
        }
    }

    #[test]
    fn jobs_run_after_their_needs() {
        let jobs = vec![
            job("d", &["b", "c"]),
            job("b", &["a"]),
            job("a", &[]),
            job("c", &["a"]),
        ];
        let order: Vec<&str> = job_order(&jobs)
            .unwrap()
            .into_iter()
            .map(|index| jobs[index].id.as_str())
            .collect();
        assert_eq!(order, vec!["a", "b", "c", "d"]);
    }

    #[test]
    fn a_condition_on_an_envelope_field_is_looked_up_not_evaluated() {
        let dir = tempfile::tempdir().unwrap();
        let workflows = dir.path().join("workflows");
        std::fs::create_dir_all(&workflows).unwrap();
        for (file, condition) in [
            (
                "a.yaml",
                r#"event.repo == "acme/a" and event.ref == "refs/heads/main""#,
            ),
            ("b.yaml", r#"event.repo == "acme/b""#),
            ("c.yaml", r#"event.repo == "acme/a" or event.actor == "x""#),
        ] {
            std::fs::write(
                workflows.join(file),
                format!(
                    "version: 1\nname: {file}\non: {{ push: {{}} }}\nif: '{condition}'\nsteps:\n  - run: 'true'\n"
                ),
            )
            .unwrap();
        }
        let options = crate::workflow::LoadOptions {
            workflows_dir: workflows,
            templates_dir: dir.path().join("templates"),
        };
        let (set, diagnostics) = crate::workflow::load_workflows(&options, &[]);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let mut event = Event::new("test", "push", serde_json::json!({}));
        event.repo = Some("acme/a".into());
        // a by its repository, c because an `or` is evaluated; b is ruled out by the index.
        assert_eq!(set.candidates(&event), vec![0, 2]);
        event.repo = None;
        assert_eq!(set.candidates(&event), vec![2]);
    }

    #[test]
    fn cycles_are_named() {
        let jobs = vec![job("a", &["c"]), job("b", &["a"]), job("c", &["b"])];
        let cycle = job_order(&jobs).unwrap_err();
        assert_eq!(cycle.first(), cycle.last());
        assert_eq!(cycle.len(), 4);
    }
}
