//! Derived envelope fields for GitHub webhook payloads (SPEC §1.1), as GitHub Actions fills them.
//!
//! The fields are read with one typed pass over the payload's text that skips everything else,
//! so deriving never builds the payload's full JSON tree.

use super::Event;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

type Text<'a> = Option<Cow<'a, str>>;

/// The parts of a GitHub payload that envelope fields come from.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct View<'a> {
    #[serde(borrow)]
    action: Text<'a>,
    #[serde(rename = "ref", borrow)]
    git_ref: Text<'a>,
    #[serde(borrow)]
    ref_type: Text<'a>,
    #[serde(borrow)]
    after: Text<'a>,
    #[serde(borrow)]
    sha: Text<'a>,
    #[serde(borrow)]
    repository: Option<Repository<'a>>,
    #[serde(borrow)]
    sender: Option<Sender<'a>>,
    #[serde(borrow)]
    pull_request: Option<PullRequest<'a>>,
    #[serde(borrow)]
    workflow_run: Option<Head<'a>>,
    #[serde(borrow)]
    workflow_job: Option<Head<'a>>,
    #[serde(borrow)]
    check_suite: Option<Head<'a>>,
    #[serde(borrow)]
    check_run: Option<CheckRun<'a>>,
    #[serde(borrow)]
    release: Option<Release<'a>>,
    #[serde(borrow)]
    deployment: Option<Deployment<'a>>,
    #[serde(borrow)]
    commits: Option<Vec<Commit<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Repository<'a> {
    #[serde(borrow)]
    full_name: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Sender<'a> {
    #[serde(borrow)]
    login: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PullRequest<'a> {
    #[serde(borrow)]
    base: Option<Branch<'a>>,
    #[serde(borrow)]
    head: Option<Branch<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Branch<'a> {
    #[serde(rename = "ref", borrow)]
    name: Text<'a>,
    #[serde(borrow)]
    sha: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Head<'a> {
    #[serde(borrow)]
    head_sha: Text<'a>,
    #[serde(borrow)]
    head_branch: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CheckRun<'a> {
    #[serde(borrow)]
    head_sha: Text<'a>,
    #[serde(borrow)]
    check_suite: Option<Head<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Release<'a> {
    #[serde(borrow)]
    tag_name: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Deployment<'a> {
    #[serde(borrow)]
    sha: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Commit<'a> {
    #[serde(borrow)]
    added: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    modified: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    removed: Vec<Cow<'a, str>>,
}

fn owned(text: &Text) -> Option<String> {
    text.as_ref().map(|text| text.to_string())
}

/// Fills `action`, `repo`, `ref`, `branch`, `tag`, `sha`, `actor` and `files` from a GitHub payload.
/// Fields already set (an envelope that names them) are kept.
pub fn derive(event: &mut Event) {
    let payload = event.data.clone();
    // A payload whose fields have other types than GitHub's (a hand-written test event) derives
    // nothing rather than failing: the envelope fields stay as given.
    let view: View = serde_json::from_str(payload.raw()).unwrap_or_default();
    apply(event, &view);
}

/// Fills the fields from a view already read (the envelope's one pass over its text).
pub(super) fn apply(event: &mut Event, view: &View) {
    if event.action.is_none() {
        event.action = owned(&view.action);
    }
    if event.repo.is_none() {
        event.repo = view
            .repository
            .as_ref()
            .and_then(|repository| owned(&repository.full_name));
    }
    if event.actor.is_none() {
        event.actor = view.sender.as_ref().and_then(|sender| owned(&sender.login));
    }
    if event.git_ref.is_none()
        && let Some(full_ref) = derived_ref(&event.kind, view)
    {
        event.set_ref(&full_ref);
    }
    if event.branch.is_none() && event.tag.is_none() {
        derive_branch_without_ref(event, view);
    }
    if event.sha.is_none() {
        event.sha = derived_sha(&event.kind, view);
    }
    if event.files.is_none() && event.kind == "push" {
        event.files = Some(changed_files_of(
            view.commits.as_deref().unwrap_or_default(),
        ));
    }
}

/// `ref` for push, create and delete. Create and delete send a short name with `ref_type`; it is
/// made a full ref so that one `branches`/`tags` filter serves every event type.
fn derived_ref(kind: &str, view: &View) -> Option<String> {
    let raw = view.git_ref.as_deref()?;
    match kind {
        "push" => Some(raw.to_string()),
        "create" | "delete" => match view.ref_type.as_deref() {
            Some("tag") => Some(format!("refs/tags/{raw}")),
            Some("branch") => Some(format!("refs/heads/{raw}")),
            _ => Some(raw.to_string()),
        },
        // workflow_dispatch and a few others carry a full ref too.
        _ if raw.starts_with("refs/") => Some(raw.to_string()),
        _ => None,
    }
}

/// The branch GitHub Actions filters on where the payload has no `ref`: the base branch of a pull
/// request, the head branch of a workflow run or check, the tag of a release.
fn derive_branch_without_ref(event: &mut Event, view: &View) {
    let head_branch = |head: &Option<Head>| head.as_ref().and_then(|head| owned(&head.head_branch));
    let kind = event.kind.as_str();
    if kind.starts_with("pull_request") {
        event.branch = view
            .pull_request
            .as_ref()
            .and_then(|pr| pr.base.as_ref())
            .and_then(|base| owned(&base.name));
    } else if kind == "workflow_run" {
        event.branch = head_branch(&view.workflow_run);
    } else if kind == "workflow_job" {
        event.branch = head_branch(&view.workflow_job);
    } else if kind == "check_run" {
        event.branch = view
            .check_run
            .as_ref()
            .and_then(|run| head_branch(&run.check_suite));
    } else if kind == "check_suite" {
        event.branch = head_branch(&view.check_suite);
    } else if kind == "release" {
        event.tag = view
            .release
            .as_ref()
            .and_then(|release| owned(&release.tag_name));
    }
}

fn derived_sha(kind: &str, view: &View) -> Option<String> {
    let head_sha = |head: &Option<Head>| head.as_ref().and_then(|head| owned(&head.head_sha));
    match kind {
        "push" => owned(&view.after),
        "workflow_run" => head_sha(&view.workflow_run),
        "workflow_job" => head_sha(&view.workflow_job),
        "check_run" => view.check_run.as_ref().and_then(|run| owned(&run.head_sha)),
        "check_suite" => head_sha(&view.check_suite),
        "status" => owned(&view.sha),
        "deployment" | "deployment_status" => view
            .deployment
            .as_ref()
            .and_then(|deployment| owned(&deployment.sha)),
        _ if kind.starts_with("pull_request") => view
            .pull_request
            .as_ref()
            .and_then(|pr| pr.head.as_ref())
            .and_then(|head| owned(&head.sha)),
        _ => None,
    }
}

/// The union of `commits[].added/modified/removed`, in first-seen order, without duplicates.
fn changed_files_of(commits: &[Commit]) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for commit in commits {
        for path in commit
            .added
            .iter()
            .chain(&commit.modified)
            .chain(&commit.removed)
        {
            if seen.insert(path.as_ref()) {
                files.push(path.to_string());
            }
        }
    }
    files
}

/// The same union from a parsed payload (GitLab's commits have the same three lists).
pub(super) fn changed_files(payload: &Value) -> Vec<String> {
    let commits: Vec<Commit> = payload
        .get("commits")
        .and_then(|commits| Vec::<Commit>::deserialize(commits).ok())
        .unwrap_or_default();
    changed_files_of(&commits)
}

pub(super) fn string_at(value: &Value, path: &[&str]) -> Option<String> {
    let mut current = value;
    for key in path {
        current = current.get(key)?;
    }
    current.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn derived(kind: &str, payload: Value) -> Event {
        let mut event = Event::new("github", kind, payload);
        derive(&mut event);
        event
    }

    #[test]
    fn push_to_a_branch() {
        let event = derived(
            "push",
            json!({"ref": "refs/heads/main", "after": "abc", "repository": {"full_name": "acme/api"},
                   "sender": {"login": "octocat"},
                   "commits": [{"added": ["a"], "modified": ["b"], "removed": []},
                               {"added": [], "modified": ["b", "c"], "removed": ["d"]}]}),
        );
        assert_eq!(event.repo.as_deref(), Some("acme/api"));
        assert_eq!(event.branch.as_deref(), Some("main"));
        assert_eq!(event.tag, None);
        assert_eq!(event.sha.as_deref(), Some("abc"));
        assert_eq!(event.actor.as_deref(), Some("octocat"));
        assert_eq!(
            event.files,
            Some(vec!["a".into(), "b".into(), "c".into(), "d".into()])
        );
    }

    #[test]
    fn tag_push_has_a_tag_and_no_branch() {
        let event = derived(
            "push",
            json!({"ref": "refs/tags/v1.2.0", "after": "abc", "commits": []}),
        );
        assert_eq!(event.tag.as_deref(), Some("v1.2.0"));
        assert_eq!(event.branch, None);
    }

    #[test]
    fn pull_request_filters_on_the_base_branch_and_runs_the_head_sha() {
        let event = derived(
            "pull_request",
            json!({"action": "opened", "pull_request": {"base": {"ref": "main"}, "head": {"ref": "feature", "sha": "f00"}}}),
        );
        assert_eq!(event.action.as_deref(), Some("opened"));
        assert_eq!(event.branch.as_deref(), Some("main"));
        assert_eq!(event.sha.as_deref(), Some("f00"));
        assert_eq!(event.git_ref, None);
        assert_eq!(event.files, None);
    }

    #[test]
    fn create_and_delete_get_full_refs() {
        let event = derived("delete", json!({"ref": "simple-tag", "ref_type": "tag"}));
        assert_eq!(event.git_ref.as_deref(), Some("refs/tags/simple-tag"));
        assert_eq!(event.tag.as_deref(), Some("simple-tag"));
        let event = derived("create", json!({"ref": "feature", "ref_type": "branch"}));
        assert_eq!(event.branch.as_deref(), Some("feature"));
    }

    #[test]
    fn workflow_run_and_release() {
        let event = derived(
            "workflow_run",
            json!({"action": "completed", "workflow_run": {"head_sha": "s", "head_branch": "main"}}),
        );
        assert_eq!(
            (event.sha.as_deref(), event.branch.as_deref()),
            (Some("s"), Some("main"))
        );
        let event = derived(
            "release",
            json!({"action": "published", "release": {"tag_name": "v2"}}),
        );
        assert_eq!(event.tag.as_deref(), Some("v2"));
    }
}
