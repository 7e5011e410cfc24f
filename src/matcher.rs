//! Pure matching: a workflow's triggers × an event → matched, or the one-line reason it did not.
//! The rules are GitHub Actions' own (SPEC §2.2).

use crate::event::Event;
use crate::glob::PatternList;
use crate::workflow::{Filter, ListFilter, Trigger, TriggerKind, Workflow};

/// Whether the workflow's `on:` accepts the event. The workflow's `if` is evaluated separately
/// (it needs the template engine).
pub fn match_triggers(workflow: &Workflow, event: &Event) -> Result<(), String> {
    let mut first_reason: Option<String> = None;
    for trigger in workflow
        .triggers
        .iter()
        .filter(|trigger| trigger.listens_to(&event.kind))
    {
        match match_trigger(trigger, event, &workflow.name) {
            Ok(()) => return Ok(()),
            Err(reason) => {
                first_reason.get_or_insert(reason);
            }
        }
    }
    Err(first_reason.unwrap_or_else(|| {
        let keys: Vec<&str> = workflow
            .triggers
            .iter()
            .map(|trigger| trigger.key.as_str())
            .collect();
        format!("on: `{}` is not one of [{}]", event.kind, keys.join(", "))
    }))
}

fn match_trigger(trigger: &Trigger, event: &Event, workflow_name: &str) -> Result<(), String> {
    match &trigger.kind {
        TriggerKind::Event(filter) => match_filter(filter, event),
        // Schedule events name the workflow they fire for: one tick belongs to one workflow.
        TriggerKind::Schedule(_) | TriggerKind::Dispatch(_) => match event.subject.as_deref() {
            Some(subject) if subject == workflow_name => Ok(()),
            Some(subject) => Err(format!(
                "{}: the event is for workflow `{subject}`",
                trigger.key
            )),
            None => Err(format!(
                "{}: the event names no workflow (`subject`)",
                trigger.key
            )),
        },
    }
}

/// Every key of the filter must pass.
pub fn match_filter(filter: &Filter, event: &Event) -> Result<(), String> {
    if let Some(types) = &filter.types {
        match &event.action {
            Some(action) if types.iter().any(|wanted| wanted == action) => {}
            Some(action) => {
                return Err(format!(
                    "types: `{action}` is not one of [{}]",
                    types.join(", ")
                ));
            }
            None => {
                return Err(format!(
                    "types: the event has no action (wanted [{}])",
                    types.join(", ")
                ));
            }
        }
    }
    if let Some(sources) = &filter.sources
        && !sources.matches(&event.source)
    {
        return Err(format!(
            "sources: `{}` {}",
            event.source,
            no_match_phrase(sources)
        ));
    }
    if let Some(repos) = &filter.repos {
        check_value(
            "repos",
            repos,
            event.repo.as_deref(),
            "the event has no repository",
        )?;
    }
    match_refs(filter, event)?;
    if let Some(paths) = &filter.paths {
        match_paths(paths, event)?;
    }
    if let Some(labels) = &filter.labels {
        match_labels(labels, event)?;
    }
    Ok(())
}

/// `labels:` — each named label of the event's `labels` (an alert's own), else of its
/// `commonLabels` (a whole notification), must match one of its globs.
fn match_labels(labels: &[(String, PatternList)], event: &Event) -> Result<(), String> {
    let data = event.data.value();
    let set = data
        .get("labels")
        .filter(|labels| labels.is_object())
        .or_else(|| data.get("commonLabels"));
    for (label, patterns) in labels {
        match set
            .and_then(|set| set.get(label))
            .and_then(|value| value.as_str())
        {
            Some(value) if patterns.matches(value) => {}
            Some(value) => {
                return Err(format!(
                    "labels.{label}: `{value}` {}",
                    no_match_phrase(patterns)
                ));
            }
            None => return Err(format!("labels.{label}: the event has no label `{label}`")),
        }
    }
    Ok(())
}

/// GitHub's branch/tag rules: with only branch filters, tag events do not match; with only tag
/// filters, branch events do not match; with both, each event is held to its own kind's filter.
fn match_refs(filter: &Filter, event: &Event) -> Result<(), String> {
    let (branches, tags) = (&filter.branches, &filter.tags);
    if branches.is_none() && tags.is_none() {
        return Ok(());
    }
    if let Some(tag) = &event.tag {
        return match tags {
            Some(tags) => check_value("tags", tags, Some(tag), ""),
            None => Err(format!(
                "branches: `{tag}` is a tag, and only branches are filtered"
            )),
        };
    }
    if let Some(branch) = &event.branch {
        return match branches {
            Some(branches) => check_value("branches", branches, Some(branch), ""),
            None => Err(format!(
                "tags: `{branch}` is a branch, and only tags are filtered"
            )),
        };
    }
    let name = if branches.is_some() {
        "branches"
    } else {
        "tags"
    };
    Err(format!("{name}: the event has no branch or tag"))
}

fn check_value(
    name: &str,
    filter: &ListFilter,
    value: Option<&str>,
    missing: &str,
) -> Result<(), String> {
    match (filter, value) {
        (ListFilter::Include(list), Some(value)) if list.matches(value) => Ok(()),
        (ListFilter::Include(list), Some(value)) => {
            Err(format!("{name}: `{value}` {}", no_match_phrase(list)))
        }
        (ListFilter::Include(_), None) => Err(format!("{name}: {missing}")),
        (ListFilter::Ignore(list), Some(value)) if list.matches(value) => Err(format!(
            "{name}-ignore: `{value}` matches [{}]",
            list.sources().join(", ")
        )),
        (ListFilter::Ignore(_), _) => Ok(()),
    }
}

fn no_match_phrase(list: &PatternList) -> String {
    let patterns = list.sources().join(", ");
    if list
        .sources()
        .iter()
        .any(|pattern| pattern.starts_with('!'))
    {
        format!("is not selected by [{patterns}]")
    } else {
        format!("matches none of [{patterns}]")
    }
}

/// `paths` matches when at least one changed file matches; `paths-ignore` rejects only when every
/// changed file matches. Not evaluated for tag pushes.
fn match_paths(paths: &ListFilter, event: &Event) -> Result<(), String> {
    if event.tag.is_some() {
        return Ok(());
    }
    let Some(files) = &event.files else {
        let name = match paths {
            ListFilter::Include(_) => "paths",
            ListFilter::Ignore(_) => return Ok(()),
        };
        return Err(format!(
            "{name}: the event carries no list of changed files"
        ));
    };
    match paths {
        ListFilter::Include(list) => {
            if files.iter().any(|file| list.matches(file)) {
                Ok(())
            } else if files.is_empty() {
                Err("paths: the event changed no files".to_string())
            } else {
                Err(format!(
                    "paths: no changed file matches [{}]",
                    list.sources().join(", ")
                ))
            }
        }
        ListFilter::Ignore(list) => {
            if !files.is_empty() && files.iter().all(|file| list.matches(file)) {
                Err(format!(
                    "paths-ignore: every changed file matches [{}]",
                    list.sources().join(", ")
                ))
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A push event for `full_ref` changing `files`.
    fn push(full_ref: &str, files: &[&str]) -> Event {
        let mut event = Event::new("github", "push", json!({}));
        event.set_ref(full_ref);
        event.files = Some(files.iter().map(|file| file.to_string()).collect());
        event
    }

    fn list(patterns: &[&str]) -> PatternList {
        PatternList::new(patterns).unwrap()
    }

    fn branches(patterns: &[&str]) -> Filter {
        Filter {
            branches: Some(ListFilter::Include(list(patterns))),
            ..Filter::default()
        }
    }

    fn branches_ignore(patterns: &[&str]) -> Filter {
        Filter {
            branches: Some(ListFilter::Ignore(list(patterns))),
            ..Filter::default()
        }
    }

    fn tags(patterns: &[&str]) -> Filter {
        Filter {
            tags: Some(ListFilter::Include(list(patterns))),
            ..Filter::default()
        }
    }

    fn paths(patterns: &[&str]) -> Filter {
        Filter {
            paths: Some(ListFilter::Include(list(patterns))),
            ..Filter::default()
        }
    }

    fn paths_ignore(patterns: &[&str]) -> Filter {
        Filter {
            paths: Some(ListFilter::Ignore(list(patterns))),
            ..Filter::default()
        }
    }

    /// The examples of GitHub's workflow-syntax documentation for `on.push` / `on.pull_request`,
    /// each with the outcome the documentation states.
    #[test]
    fn github_documentation_examples() {
        let cases: Vec<(&str, Filter, Event, bool)> = vec![
            // "Including branches and tags": branches main, mona/octocat, releases/**; tags v2, v1.*
            (
                "branches main",
                both(&["main", "mona/octocat", "releases/**"], &["v2", "v1.*"]),
                push("refs/heads/main", &[]),
                true,
            ),
            (
                "branches mona/octocat",
                both(&["main", "mona/octocat", "releases/**"], &["v2", "v1.*"]),
                push("refs/heads/mona/octocat", &[]),
                true,
            ),
            (
                "branches releases/10",
                both(&["main", "mona/octocat", "releases/**"], &["v2", "v1.*"]),
                push("refs/heads/releases/10", &[]),
                true,
            ),
            (
                "tag v2",
                both(&["main", "mona/octocat", "releases/**"], &["v2", "v1.*"]),
                push("refs/tags/v2", &[]),
                true,
            ),
            (
                "tag v1.9.1",
                both(&["main", "mona/octocat", "releases/**"], &["v2", "v1.*"]),
                push("refs/tags/v1.9.1", &[]),
                true,
            ),
            (
                "branch dev",
                both(&["main", "mona/octocat", "releases/**"], &["v2", "v1.*"]),
                push("refs/heads/dev", &[]),
                false,
            ),
            (
                "tag v3",
                both(&["main", "mona/octocat", "releases/**"], &["v2", "v1.*"]),
                push("refs/tags/v3", &[]),
                false,
            ),
            // "Excluding branches and tags": branches-ignore mona/octocat, releases/**-alpha
            (
                "ignore mona/octocat",
                branches_ignore(&["mona/octocat", "releases/**-alpha"]),
                push("refs/heads/mona/octocat", &[]),
                false,
            ),
            (
                "ignore releases/beta/3-alpha",
                branches_ignore(&["mona/octocat", "releases/**-alpha"]),
                push("refs/heads/releases/beta/3-alpha", &[]),
                false,
            ),
            (
                "ignore keeps main",
                branches_ignore(&["mona/octocat", "releases/**-alpha"]),
                push("refs/heads/main", &[]),
                true,
            ),
            // "Including and excluding branches": releases/**, !releases/**-alpha
            (
                "negation keeps releases/10",
                branches(&["releases/**", "!releases/**-alpha"]),
                push("refs/heads/releases/10", &[]),
                true,
            ),
            (
                "negation keeps releases/beta/mona",
                branches(&["releases/**", "!releases/**-alpha"]),
                push("refs/heads/releases/beta/mona", &[]),
                true,
            ),
            (
                "negation drops releases/10-alpha",
                branches(&["releases/**", "!releases/**-alpha"]),
                push("refs/heads/releases/10-alpha", &[]),
                false,
            ),
            (
                "negation drops releases/beta/3-alpha",
                branches(&["releases/**", "!releases/**-alpha"]),
                push("refs/heads/releases/beta/3-alpha", &[]),
                false,
            ),
            // Order matters: a later positive pattern includes again.
            (
                "order: re-included",
                branches(&["releases/**", "!releases/**-alpha", "releases/1-alpha"]),
                push("refs/heads/releases/1-alpha", &[]),
                true,
            ),
            // With only branches, tag pushes do not run; with only tags, branch pushes do not run.
            (
                "only branches: tag push",
                branches(&["**"]),
                push("refs/tags/v1", &[]),
                false,
            ),
            (
                "only tags: branch push",
                tags(&["**"]),
                push("refs/heads/main", &[]),
                false,
            ),
            (
                "only tags: v1.2.0",
                tags(&["v*"]),
                push("refs/tags/v1.2.0", &[]),
                true,
            ),
            // "Including paths": **.js
            (
                "paths **.js root",
                paths(&["**.js"]),
                push("refs/heads/main", &["app.js"]),
                true,
            ),
            (
                "paths **.js nested",
                paths(&["**.js"]),
                push("refs/heads/main", &["src/lib/x.js"]),
                true,
            ),
            (
                "paths **.js none",
                paths(&["**.js"]),
                push("refs/heads/main", &["README.md"]),
                false,
            ),
            // "Excluding paths": paths-ignore docs/** — runs unless every file is ignored.
            (
                "paths-ignore all docs",
                paths_ignore(&["docs/**"]),
                push("refs/heads/main", &["docs/a.md", "docs/b/c.md"]),
                false,
            ),
            (
                "paths-ignore one outside",
                paths_ignore(&["docs/**"]),
                push("refs/heads/main", &["docs/a.md", "src/x.rs"]),
                true,
            ),
            // "Including and excluding paths": sub-project/**, !sub-project/docs/**
            (
                "paths negation: code",
                paths(&["sub-project/**", "!sub-project/docs/**"]),
                push("refs/heads/main", &["sub-project/src/a"]),
                true,
            ),
            (
                "paths negation: docs only",
                paths(&["sub-project/**", "!sub-project/docs/**"]),
                push("refs/heads/main", &["sub-project/docs/a.md"]),
                false,
            ),
            (
                "paths negation: docs and code",
                paths(&["sub-project/**", "!sub-project/docs/**"]),
                push(
                    "refs/heads/main",
                    &["sub-project/docs/a.md", "sub-project/b"],
                ),
                true,
            ),
            // `paths` is not evaluated for tag pushes.
            (
                "paths skipped for tags",
                paths(&["docs/**"]),
                push("refs/tags/v1", &[]),
                true,
            ),
            // "Example: Including paths" with dir wildcard '**/README.md'
            (
                "paths **/README.md",
                paths(&["**/README.md"]),
                push("refs/heads/main", &["README.md"]),
                true,
            ),
            (
                "paths docs/** nested",
                paths(&["docs/**"]),
                push("refs/heads/main", &["docs/dir/file.md"]),
                true,
            ),
            (
                "paths docs/* shallow",
                paths(&["docs/*"]),
                push("refs/heads/main", &["docs/dir/file.md"]),
                false,
            ),
        ];
        for (name, filter, event, expected) in cases {
            assert_eq!(
                match_filter(&filter, &event).is_ok(),
                expected,
                "{name}: {:?}",
                match_filter(&filter, &event)
            );
        }
    }

    fn both(branch_patterns: &[&str], tag_patterns: &[&str]) -> Filter {
        Filter {
            branches: Some(ListFilter::Include(list(branch_patterns))),
            tags: Some(ListFilter::Include(list(tag_patterns))),
            ..Filter::default()
        }
    }

    #[test]
    fn pull_request_types_and_base_branch() {
        let mut event = Event::new("github", "pull_request", json!({}));
        event.action = Some("closed".into());
        event.branch = Some("main".into());
        let filter = Filter {
            types: Some(vec!["opened".into(), "synchronize".into()]),
            ..branches(&["main"])
        };
        assert_eq!(
            match_filter(&filter, &event),
            Err("types: `closed` is not one of [opened, synchronize]".to_string())
        );
        event.action = Some("opened".into());
        assert_eq!(match_filter(&filter, &event), Ok(()));
    }

    #[test]
    fn reasons_name_the_value_and_the_patterns() {
        let event = push("refs/heads/dev", &["src/a.rs"]);
        assert_eq!(
            match_filter(&branches(&["main", "release/**"]), &event),
            Err("branches: `dev` matches none of [main, release/**]".to_string())
        );
        assert_eq!(
            match_filter(&paths(&["docs/**"]), &event),
            Err("paths: no changed file matches [docs/**]".to_string())
        );
        assert_eq!(
            match_filter(&branches_ignore(&["dev"]), &event),
            Err("branches-ignore: `dev` matches [dev]".to_string())
        );
        let repos = Filter {
            repos: Some(ListFilter::Include(list(&["acme/*"]))),
            ..Filter::default()
        };
        assert_eq!(
            match_filter(&repos, &event),
            Err("repos: the event has no repository".to_string())
        );
    }

    #[test]
    fn sources_are_globs() {
        let event = Event::new("nats", "metric.cpu", json!({}));
        let filter = Filter {
            sources: Some(list(&["mqtt", "nats"])),
            ..Filter::default()
        };
        assert_eq!(match_filter(&filter, &event), Ok(()));
        let filter = Filter {
            sources: Some(list(&["github"])),
            ..Filter::default()
        };
        assert!(match_filter(&filter, &event).is_err());
    }

    #[test]
    fn labels_match_the_alerts_labels_else_the_common_ones() {
        let filter = Filter {
            labels: Some(vec![
                ("severity".to_string(), list(&["critical", "page"])),
                ("service".to_string(), list(&["api*"])),
            ]),
            ..Filter::default()
        };
        let alert = |labels: serde_json::Value| {
            Event::new("alertmanager", "alert", json!({ "labels": labels }))
        };
        let page = alert(json!({"severity": "page", "service": "api-eu"}));
        assert_eq!(match_filter(&filter, &page), Ok(()));
        let warning = alert(json!({"severity": "warning", "service": "api"}));
        assert_eq!(
            match_filter(&filter, &warning),
            Err("labels.severity: `warning` matches none of [critical, page]".to_string())
        );
        let unnamed = alert(json!({"severity": "page"}));
        assert_eq!(
            match_filter(&filter, &unnamed),
            Err("labels.service: the event has no label `service`".to_string())
        );
        let notification = Event::new(
            "alertmanager",
            "alert",
            json!({"commonLabels": {"severity": "critical", "service": "api"}}),
        );
        assert_eq!(match_filter(&filter, &notification), Ok(()));
    }
}
