//! Git polling: the remote's branches and tags that match the source's globs are fetched into
//! the bare cache under the state folder (the one `gitops` steps keep, in a ref namespace of its
//! own, `refs/vane/poll/…`), compared with the cursor (ref → commit), and every moved ref is one
//! `push` event shaped like GitHub's push webhook, so that `on: push: branches: [main]` serves
//! webhooks, Actions and polling alike.
//!
//! The event: `source: git`, `subject` the source's name, `repo` the repository, `ref`, `branch`
//! or `tag`, `sha` the new commit, `files` the diff between `before` and `sha`; `data` holds
//! `ref`, `before`, `after`, `created`, `deleted`, `forced`, `commits` (oldest first, at most
//! [`MAX_COMMITS`], each with `id`, `message`, `timestamp`, `author`, `committer` and its
//! `added`/`removed`/`modified`), `head_commit` and `repository`. A created ref has `before` of
//! zeros, a deleted one `after` of zeros. An annotated tag is reported as the commit it tags.
//! The id is `git:<source>:<ref>:<before>..<after>`.

use super::Found;
use crate::config::{FirstPoll, GitSource};
use crate::event::Event;
use crate::glob::PatternList;
use crate::steps::gitops::repo::{self, CacheLock, Remote};
use chrono::{FixedOffset, TimeZone};
use git2::{AutotagOption, Delta, FetchOptions, FetchPrune, Oid, Repository};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What GitHub sends for "no commit": the `before` of a created ref, the `after` of a deleted one.
pub const ZEROS: &str = "0000000000000000000000000000000000000000";

/// Commits listed in one event at most (the newest ones); `files` still covers the whole diff.
pub const MAX_COMMITS: usize = 100;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    /// Full ref name → commit.
    refs: BTreeMap<String, String>,
}

/// One ref that moved: `None` on one side is a ref created or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefChange {
    pub name: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// The refs whose commit differs between `previous` and `current`, in ref order.
pub fn diff_refs(
    previous: &BTreeMap<String, String>,
    current: &BTreeMap<String, String>,
) -> Vec<RefChange> {
    let names: BTreeSet<&String> = previous.keys().chain(current.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let before = previous.get(name);
            let after = current.get(name);
            (before != after).then(|| RefChange {
                name: name.clone(),
                before: before.cloned(),
                after: after.cloned(),
            })
        })
        .collect()
}

/// `acme/api` from `https://github.com/acme/api.git`, `git@github.com:acme/api.git` or a path:
/// the last two segments, without `.git`.
pub fn repository_name(url: &str) -> String {
    let path = match url.find("://") {
        Some(scheme_end) => {
            let rest = &url[scheme_end + 3..];
            rest.find('/').map_or("", |slash| &rest[slash..])
        }
        None => url.rsplit_once(':').map_or(url, |(_, path)| path),
    };
    let segments: Vec<&str> = path
        .trim_end_matches('/')
        .trim_end_matches(".git")
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    segments[segments.len().saturating_sub(2)..].join("/")
}

/// The compiled `branches` / `tags` globs; a list left out watches nothing of its kind.
struct Watched {
    branches: Option<PatternList>,
    tags: Option<PatternList>,
}

impl Watched {
    fn new(source: &GitSource) -> Result<Watched, String> {
        let compile = |key: &str, patterns: &[String]| {
            (!patterns.is_empty())
                .then(|| PatternList::new(patterns).map_err(|error| format!("{key}: {error}")))
                .transpose()
        };
        Ok(Watched {
            branches: compile("branches", &source.branches)?,
            tags: compile("tags", &source.tags)?,
        })
    }

    fn watches(&self, full_ref: &str) -> bool {
        if let Some(branch) = full_ref.strip_prefix("refs/heads/") {
            return self
                .branches
                .as_ref()
                .is_some_and(|list| list.matches(branch));
        }
        if let Some(tag) = full_ref.strip_prefix("refs/tags/") {
            return self.tags.as_ref().is_some_and(|list| list.matches(tag));
        }
        false
    }
}

/// Polls `source` once, with its git cache under `state_folder`.
pub fn poll(
    name: &str,
    source: &GitSource,
    state_folder: &Path,
    cursor: Option<&str>,
) -> Result<Found, String> {
    let watched = Watched::new(source)?;
    let token = super::token(source.token.as_ref())?;
    let remote = Remote {
        url: &source.url,
        token: token.as_deref(),
    };
    let cache = repo::cache_path(state_folder, &source.url);
    let _lock = CacheLock::acquire(&cache)?;
    let repository = repo::open_cache(&cache)?;
    let current = fetch(&repository, &remote, &watched)?;
    let current_cursor = Cursor {
        refs: current
            .iter()
            .map(|(name, oid)| (name.clone(), oid.to_string()))
            .collect(),
    };
    let record = serde_json::to_string(&current_cursor)
        .map_err(|error| format!("cannot write the cursor: {error}"))?;
    if cursor.is_none() && source.first == FirstPoll::Record {
        return Ok(Found {
            events: Vec::new(),
            cursor: Some(record),
            note: None,
        });
    }
    let previous: Cursor = super::read_cursor(cursor)?;
    let changes = diff_refs(&previous.refs, &current_cursor.refs);
    if changes.is_empty() {
        return Ok(Found::default());
    }
    let repository_json = json!({
        "name": repository_name(&source.url).rsplit('/').next().unwrap_or_default(),
        "full_name": source.repo.clone().unwrap_or_else(|| repository_name(&source.url)),
        "url": repo::scrub_url(&source.url),
    });
    // What the remote had before: a new branch lists only the commits none of these reach.
    let known: Vec<Oid> = previous
        .refs
        .values()
        .filter_map(|sha| Oid::from_str(sha).ok())
        .filter(|oid| repository.find_commit(*oid).is_ok())
        .collect();
    let events = changes
        .iter()
        .map(|change| push_event(&repository, name, &repository_json, change, &known))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Found {
        events,
        cursor: Some(record),
        note: None,
    })
}

/// Fetches the watched refs into `refs/vane/poll/…` and returns them (ref → commit) as the remote
/// advertised them.
fn fetch(
    repository: &Repository,
    remote: &Remote,
    watched: &Watched,
) -> Result<BTreeMap<String, Oid>, String> {
    let asked = Cell::new(0);
    let mut refspecs = Vec::new();
    if watched.branches.is_some() {
        refspecs.push("+refs/heads/*:refs/vane/poll/heads/*");
    }
    if watched.tags.is_some() {
        refspecs.push("+refs/tags/*:refs/vane/poll/tags/*");
    }
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(repo::callbacks(remote.token, &asked))
        .download_tags(AutotagOption::None)
        .prune(FetchPrune::On);
    let mut handle = repository
        .remote_anonymous(remote.url)
        .map_err(|error| repo::transport_error("cannot fetch from", remote, &asked, &error))?;
    handle
        .fetch(&refspecs, Some(&mut options), None)
        .map_err(|error| repo::transport_error("cannot fetch from", remote, &asked, &error))?;
    let advertised = handle
        .list()
        .map_err(|error| repo::transport_error("cannot list", remote, &asked, &error))?;
    let mut refs = BTreeMap::new();
    for head in advertised {
        let name = head.name();
        if name.ends_with("^{}") || !watched.watches(name) {
            continue;
        }
        // An annotated tag is reported as the commit it tags.
        let commit = repository
            .find_object(head.oid(), None)
            .and_then(|object| object.peel_to_commit())
            .map_err(|error| format!("`{name}`: {}", error.message()))?;
        refs.insert(name.to_string(), commit.id());
    }
    Ok(refs)
}

fn push_event(
    repository: &Repository,
    source: &str,
    repository_json: &Value,
    change: &RefChange,
    known: &[Oid],
) -> Result<Event, String> {
    let failed = |error: git2::Error| format!("`{}`: {}", change.name, error.message());
    let parse = |sha: &Option<String>| -> Result<Option<Oid>, String> {
        sha.as_deref()
            .map(Oid::from_str)
            .transpose()
            .map_err(failed)
    };
    let before = parse(&change.before)?;
    let after = parse(&change.after)?;
    let is_tag = change.name.starts_with("refs/tags/");
    let listed: Vec<Oid> = match after {
        None => Vec::new(),
        // GitHub lists no commits for a new tag: they were pushed with their branch.
        Some(_) if is_tag && before.is_none() => Vec::new(),
        Some(after) => {
            let hide: Vec<Oid> = match before {
                Some(before) => vec![before],
                None => known.to_vec(),
            };
            new_commits(repository, after, &hide).map_err(failed)?
        }
    };
    let mut commits = Vec::with_capacity(listed.len());
    let mut files_of_commits: Vec<String> = Vec::new();
    for oid in &listed {
        let (commit_json, files) = commit_json(repository, *oid).map_err(failed)?;
        for file in files {
            if !files_of_commits.contains(&file) {
                files_of_commits.push(file);
            }
        }
        commits.push(commit_json);
    }
    let files = match (before, after) {
        (Some(before), Some(after)) => {
            let old = repository
                .find_commit(before)
                .and_then(|commit| commit.tree());
            let new = repository
                .find_commit(after)
                .and_then(|commit| commit.tree())
                .map_err(failed)?;
            match old {
                Ok(old) => {
                    let (added, removed, modified) =
                        tree_diff(repository, Some(&old), &new).map_err(failed)?;
                    added.into_iter().chain(removed).chain(modified).collect()
                }
                // The old commit is gone from the remote (a force-push and a gc): the commits'.
                Err(_) => files_of_commits,
            }
        }
        _ => files_of_commits,
    };
    let forced = match (before, after) {
        // An old commit the cache no longer has cannot be an ancestor: the push was forced.
        (Some(before), Some(after)) => !repository
            .graph_descendant_of(after, before)
            .unwrap_or(false),
        _ => false,
    };
    let head_commit = match (commits.last(), after) {
        (Some(last), _) => last.clone(),
        (None, Some(after)) => commit_json(repository, after).map_err(failed)?.0,
        (None, None) => Value::Null,
    };
    let before_text = change.before.clone().unwrap_or_else(|| ZEROS.to_string());
    let after_text = change.after.clone().unwrap_or_else(|| ZEROS.to_string());
    let data = json!({
        "ref": change.name,
        "before": before_text,
        "after": after_text,
        "created": before.is_none(),
        "deleted": after.is_none(),
        "forced": forced,
        "base_ref": null,
        "commits": commits,
        "head_commit": head_commit,
        "repository": repository_json,
    });
    let mut event = Event::with_id(
        format!("git:{source}:{}:{before_text}..{after_text}", change.name),
        "git",
        "push",
        data,
    );
    event.subject = Some(source.to_string());
    event.repo = repository_json["full_name"].as_str().map(str::to_string);
    event.set_ref(&change.name);
    event.sha = Some(after_text);
    event.files = Some(files);
    Ok(event)
}

/// The commits `after` reaches and none of `hide` does, oldest first, the newest
/// [`MAX_COMMITS`] at most.
fn new_commits(repository: &Repository, after: Oid, hide: &[Oid]) -> Result<Vec<Oid>, git2::Error> {
    let mut walk = repository.revwalk()?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)?;
    walk.push(after)?;
    for oid in hide {
        // A hidden commit the cache no longer has hides nothing.
        let _ = walk.hide(*oid);
    }
    let mut listed = walk.take(MAX_COMMITS).collect::<Result<Vec<Oid>, _>>()?;
    listed.reverse();
    Ok(listed)
}

/// A commit as GitHub's push payload lists it, and the files it changed.
fn commit_json(repository: &Repository, oid: Oid) -> Result<(Value, Vec<String>), git2::Error> {
    let commit = repository.find_commit(oid)?;
    let tree = commit.tree()?;
    let parent_tree = match commit.parent(0) {
        Ok(parent) => Some(parent.tree()?),
        Err(_) => None,
    };
    let (added, removed, modified) = tree_diff(repository, parent_tree.as_ref(), &tree)?;
    let person = |signature: git2::Signature| {
        json!({
            "name": String::from_utf8_lossy(signature.name_bytes()),
            "email": String::from_utf8_lossy(signature.email_bytes()),
        })
    };
    let when = commit.author().when();
    let timestamp = FixedOffset::east_opt(when.offset_minutes() * 60)
        .and_then(|offset| offset.timestamp_opt(when.seconds(), 0).single())
        .map(|time| time.to_rfc3339())
        .unwrap_or_default();
    let files: Vec<String> = added
        .iter()
        .chain(&removed)
        .chain(&modified)
        .cloned()
        .collect();
    let value = json!({
        "id": oid.to_string(),
        "tree_id": tree.id().to_string(),
        "distinct": true,
        "message": String::from_utf8_lossy(commit.message_bytes()),
        "timestamp": timestamp,
        "author": person(commit.author()),
        "committer": person(commit.committer()),
        "added": added,
        "removed": removed,
        "modified": modified,
    });
    Ok((value, files))
}

/// Paths added, removed and modified, as GitHub's commits list them.
type ChangedPaths = (Vec<String>, Vec<String>, Vec<String>);

/// Paths added, removed and modified from `old` (none: the empty tree) to `new`.
fn tree_diff(
    repository: &Repository,
    old: Option<&git2::Tree>,
    new: &git2::Tree,
) -> Result<ChangedPaths, git2::Error> {
    let diff = repository.diff_tree_to_tree(old, Some(new), None)?;
    let (mut added, mut removed, mut modified) = (Vec::new(), Vec::new(), Vec::new());
    for delta in diff.deltas() {
        let path = |file: git2::DiffFile| {
            file.path()
                .map(|path| path.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        match delta.status() {
            Delta::Added => added.push(path(delta.new_file())),
            Delta::Deleted => removed.push(path(delta.old_file())),
            _ => modified.push(path(delta.new_file())),
        }
    }
    Ok((added, removed, modified))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(name, sha)| (name.to_string(), sha.to_string()))
            .collect()
    }

    #[test]
    fn moved_created_and_deleted_refs_are_changes() {
        let previous = refs(&[
            ("refs/heads/main", "a1"),
            ("refs/heads/old", "b1"),
            ("refs/tags/v1", "c1"),
        ]);
        let current = refs(&[
            ("refs/heads/main", "a2"),
            ("refs/tags/v1", "c1"),
            ("refs/tags/v2", "d1"),
        ]);
        let change = |name: &str, before: Option<&str>, after: Option<&str>| RefChange {
            name: name.into(),
            before: before.map(Into::into),
            after: after.map(Into::into),
        };
        assert_eq!(
            diff_refs(&previous, &current),
            vec![
                change("refs/heads/main", Some("a1"), Some("a2")),
                change("refs/heads/old", Some("b1"), None),
                change("refs/tags/v2", None, Some("d1")),
            ]
        );
        assert!(diff_refs(&current, &current).is_empty());
    }

    #[test]
    fn repository_names_come_from_urls() {
        for (url, name) in [
            ("https://github.com/acme/api.git", "acme/api"),
            ("https://github.com/acme/api", "acme/api"),
            ("git@github.com:acme/api.git", "acme/api"),
            ("git://127.0.0.1:9418/remote.git", "remote"),
            ("/srv/git/deploy.git", "git/deploy"),
            ("file:///srv/git/deploy.git/", "git/deploy"),
        ] {
            assert_eq!(repository_name(url), name, "{url}");
        }
    }

    #[test]
    fn globs_choose_the_watched_refs() {
        let source = GitSource {
            url: "x".into(),
            branches: vec!["main".into(), "release/**".into()],
            tags: vec!["v*".into()],
            token: None,
            repo: None,
            first: FirstPoll::Record,
        };
        let watched = Watched::new(&source).unwrap();
        assert!(watched.watches("refs/heads/main"));
        assert!(watched.watches("refs/heads/release/1.2"));
        assert!(!watched.watches("refs/heads/feature"));
        assert!(watched.watches("refs/tags/v1.2.0"));
        assert!(!watched.watches("refs/tags/nightly"));
        assert!(!watched.watches("HEAD"));
        let branches_only = GitSource {
            tags: Vec::new(),
            ..source
        };
        assert!(
            !Watched::new(&branches_only)
                .unwrap()
                .watches("refs/tags/v1")
        );
    }
}
