//! Derived envelope fields for GitHub webhook payloads (SPEC §1.1), as GitHub Actions fills them.

use super::Event;
use serde_json::Value;

/// Fills `action`, `repo`, `ref`, `branch`, `tag`, `sha`, `actor` and `files` from a GitHub payload.
/// Fields already set (an envelope that names them) are kept.
pub fn derive(event: &mut Event) {
    let data = event.data.clone();
    let payload = data.as_ref();
    if event.action.is_none() {
        event.action = string_at(payload, &["action"]);
    }
    if event.repo.is_none() {
        event.repo = string_at(payload, &["repository", "full_name"]);
    }
    if event.actor.is_none() {
        event.actor = string_at(payload, &["sender", "login"]);
    }
    if event.git_ref.is_none()
        && let Some(full_ref) = derived_ref(&event.kind, payload)
    {
        event.set_ref(&full_ref);
    }
    if event.branch.is_none() && event.tag.is_none() {
        derive_branch_without_ref(event, payload);
    }
    if event.sha.is_none() {
        event.sha = derived_sha(&event.kind, payload);
    }
    if event.files.is_none() && event.kind == "push" {
        event.files = Some(changed_files(payload));
    }
}

/// `ref` for push, create and delete. Create and delete send a short name with `ref_type`; it is
/// made a full ref so that one `branches`/`tags` filter serves every event type.
fn derived_ref(kind: &str, payload: &Value) -> Option<String> {
    let raw = payload.get("ref")?.as_str()?;
    match kind {
        "push" => Some(raw.to_string()),
        "create" | "delete" => match payload.get("ref_type").and_then(Value::as_str) {
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
fn derive_branch_without_ref(event: &mut Event, payload: &Value) {
    let kind = event.kind.as_str();
    if kind.starts_with("pull_request") {
        event.branch = string_at(payload, &["pull_request", "base", "ref"]);
    } else if kind == "workflow_run" {
        event.branch = string_at(payload, &["workflow_run", "head_branch"]);
    } else if kind == "workflow_job" {
        event.branch = string_at(payload, &["workflow_job", "head_branch"]);
    } else if kind == "check_run" {
        event.branch = string_at(payload, &["check_run", "check_suite", "head_branch"]);
    } else if kind == "check_suite" {
        event.branch = string_at(payload, &["check_suite", "head_branch"]);
    } else if kind == "release" {
        event.tag = string_at(payload, &["release", "tag_name"]);
    }
}

fn derived_sha(kind: &str, payload: &Value) -> Option<String> {
    let candidates: &[&[&str]] = match kind {
        "push" => &[&["after"]],
        "workflow_run" => &[&["workflow_run", "head_sha"]],
        "workflow_job" => &[&["workflow_job", "head_sha"]],
        "check_run" => &[&["check_run", "head_sha"]],
        "check_suite" => &[&["check_suite", "head_sha"]],
        "status" => &[&["sha"]],
        "deployment" | "deployment_status" => &[&["deployment", "sha"]],
        _ if kind.starts_with("pull_request") => &[&["pull_request", "head", "sha"]],
        _ => &[],
    };
    candidates.iter().find_map(|path| string_at(payload, path))
}

/// The union of `commits[].added/modified/removed`, in first-seen order, without duplicates.
pub(super) fn changed_files(payload: &Value) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let commits = payload.get("commits").and_then(Value::as_array);
    for commit in commits.into_iter().flatten() {
        for list in ["added", "modified", "removed"] {
            for file in commit
                .get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(path) = file.as_str()
                    && seen.insert(path.to_string())
                {
                    files.push(path.to_string());
                }
            }
        }
    }
    files
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
