//! Derived envelope fields for GitLab webhook payloads.

use super::Event;
use super::github::{changed_files, string_at};

/// Fills `repo`, `ref`, `branch`/`tag`, `sha`, `actor` and `files` from a GitLab payload
/// (push, tag push, merge request, pipeline hooks). Fields already set are kept.
pub fn derive(event: &mut Event) {
    let data = event.data.clone();
    let payload = data.value();
    if event.repo.is_none() {
        event.repo = string_at(payload, &["project", "path_with_namespace"]);
    }
    if event.actor.is_none() {
        event.actor = string_at(payload, &["user_username"])
            .or_else(|| string_at(payload, &["user", "username"]));
    }
    if event.action.is_none() {
        event.action = string_at(payload, &["object_attributes", "action"]);
    }
    if event.git_ref.is_none()
        && let Some(full_ref) = string_at(payload, &["ref"])
    {
        event.set_ref(&full_ref);
    }
    if event.branch.is_none() && event.tag.is_none() {
        event.branch = string_at(payload, &["object_attributes", "target_branch"])
            .or_else(|| string_at(payload, &["object_attributes", "ref"]));
    }
    if event.sha.is_none() {
        event.sha = string_at(payload, &["checkout_sha"])
            .or_else(|| string_at(payload, &["after"]))
            .or_else(|| string_at(payload, &["object_attributes", "last_commit", "id"]))
            .or_else(|| string_at(payload, &["object_attributes", "sha"]));
    }
    if event.files.is_none() && payload.get("commits").is_some() {
        event.files = Some(changed_files(payload));
    }
}
