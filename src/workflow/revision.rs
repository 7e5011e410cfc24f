//! Which commit the workflows are (SPEC §4.3): the HEAD of the workflows folder's repository,
//! `+dirty` when the workflows or templates differ from it; or, for `--workflows-ref`, the files
//! of a named revision read straight from git's objects, with nothing checked out.

use super::load::is_workflow_file;
use git2::{ErrorCode, ObjectType, Repository, StatusOptions, Tree};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

/// The workflow and template files of one commit, read from the object database.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The commit's full sha: the revision every run from these files records.
    pub commit: String,
    /// Workflow files as paths under the workflows folder the user named (so that they read as
    /// they would on disk: `workflows/deploy.yaml`), with their bytes, sorted like a folder walk.
    pub workflows: Vec<(PathBuf, Vec<u8>)>,
    /// Template files by name relative to the templates folder (`apps/deployment.yaml.j2`).
    pub templates: HashMap<String, Vec<u8>>,
    /// Entries that were left out, with why (symbolic links: a link's blob is its target's
    /// name, and following it could leave the revision).
    pub skipped: Vec<(PathBuf, String)>,
}

/// Why a revision's files could not be read. Every variant is a usage error (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    #[error("`--workflows-ref`: the workflows folder `{}` is not inside a git repository", path.display())]
    NotARepository { path: PathBuf },
    #[error("`--workflows-ref`: `{rev}` is not a commit of the repository at `{}`: {message}", repo.display())]
    UnknownRevision {
        rev: String,
        repo: PathBuf,
        message: String,
    },
    #[error("`--workflows-ref`: the workflows folder `{}` does not exist at `{rev}` ({commit})", folder.display())]
    MissingFolder {
        folder: PathBuf,
        rev: String,
        commit: String,
    },
    #[error("`--workflows-ref`: the templates folder `{}` is not in the repository at `{}`, so it cannot be read from `{rev}`", folder.display(), repo.display())]
    TemplatesOutside {
        folder: PathBuf,
        repo: PathBuf,
        rev: String,
    },
    #[error("`--workflows-ref {rev}`: {message}")]
    Git { rev: String, message: String },
}

/// The revision of the files on disk: the HEAD commit of the repository that holds the workflows
/// folder, with `+dirty` when a file under the workflows or templates folder differs from it
/// (modified, staged, deleted, or new and not ignored). `None` outside a repository, in a bare
/// one, or before the first commit.
pub fn worktree_revision(workflows_dir: &Path, templates_dir: &Path) -> Option<String> {
    // Measured: the first call into libgit2 loads the system's CA certificates (~20 ms) — most of
    // a cold start. Outside a repository there is nothing to ask it, so look for `.git` first.
    if !inside_a_repository(workflows_dir) {
        return None;
    }
    let repo = Repository::discover(workflows_dir).ok()?;
    let workdir = canonical(repo.workdir()?)?;
    let head = repo.head().ok()?.peel_to_commit().ok()?;
    let mut revision = head.id().to_string();
    // One status per folder rather than one with two pathspecs: libgit2 walks only the common
    // prefix of the pathspecs, and the common prefix of `workflows` and `templates` is the whole
    // working tree. Measured: with 1,000 workflows the status is about 1 ms.
    let dirty = [workflows_dir, templates_dir]
        .into_iter()
        .filter_map(|folder| relative_to(&workdir, folder))
        .any(|folder| is_dirty(&repo, &folder));
    if dirty {
        revision.push_str("+dirty");
    }
    Some(revision)
}

/// Whether anything under `folder` (relative to the working tree) differs from HEAD. A status
/// that cannot be taken counts as dirty: the revision must never claim more than it knows.
fn is_dirty(repo: &Repository, folder: &Path) -> bool {
    let mut options = StatusOptions::new();
    options
        .include_untracked(true)
        .include_ignored(false)
        // One untracked entry is enough to know; its contents need not be listed.
        .recurse_untracked_dirs(false)
        .exclude_submodules(true)
        .update_index(false);
    if !folder.as_os_str().is_empty() {
        options.pathspec(folder);
    }
    repo.statuses(Some(&mut options))
        .map_or(true, |statuses| !statuses.is_empty())
}

/// Reads the workflows (and templates) as they are at `rev` — a branch, tag, sha or anything
/// `git rev-parse` takes — in the repository that holds the workflows folder.
/// Whether `dir` or a folder above it holds `.git` (a folder, or a file for worktrees), or
/// `GIT_DIR` names one — what libgit2's discovery would find, without starting libgit2.
fn inside_a_repository(dir: &Path) -> bool {
    let start = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    start.ancestors().any(|folder| folder.join(".git").exists())
        || std::env::var_os("GIT_DIR").is_some()
}

pub fn read_revision(
    workflows_dir: &Path,
    templates_dir: &Path,
    rev: &str,
) -> Result<Snapshot, RevisionError> {
    let git_error = |error: git2::Error| RevisionError::Git {
        rev: rev.to_string(),
        message: error.message().to_string(),
    };
    let not_a_repository = || RevisionError::NotARepository {
        path: workflows_dir.to_path_buf(),
    };
    // The folder need not exist in the working tree: it may exist only at `rev`.
    let start = existing_ancestor(workflows_dir).ok_or_else(not_a_repository)?;
    let repo = Repository::discover(&start).map_err(|_| not_a_repository())?;
    let workdir = repo
        .workdir()
        .and_then(canonical)
        .ok_or_else(not_a_repository)?;
    let commit = repo
        .revparse_single(rev)
        .and_then(|object| object.peel_to_commit())
        .map_err(|error| RevisionError::UnknownRevision {
            rev: rev.to_string(),
            repo: workdir.clone(),
            message: error.message().to_string(),
        })?;
    let commit_id = commit.id().to_string();
    let root = commit.tree().map_err(git_error)?;

    let workflows_folder = relative_to(&workdir, workflows_dir).ok_or_else(not_a_repository)?;
    let missing = || RevisionError::MissingFolder {
        folder: workflows_folder.clone(),
        rev: rev.to_string(),
        commit: commit_id.clone(),
    };
    let workflows_tree = subtree(&repo, &root, &workflows_folder)
        .map_err(git_error)?
        .ok_or_else(missing)?;
    let mut snapshot = Snapshot {
        commit: commit_id.clone(),
        ..Snapshot::default()
    };
    let mut workflow_files = Vec::new();
    collect(
        &repo,
        &workflows_tree,
        workflows_dir,
        &|name| is_workflow_file(name),
        &mut workflow_files,
        &mut snapshot.skipped,
    )
    .map_err(git_error)?;
    workflow_files.sort();
    snapshot.workflows = workflow_files;

    match relative_to(&workdir, templates_dir) {
        Some(templates_folder) => {
            // No templates folder at `rev` is not an error: most workflows render no files.
            if let Some(tree) = subtree(&repo, &root, &templates_folder).map_err(git_error)? {
                let mut files = Vec::new();
                collect(
                    &repo,
                    &tree,
                    Path::new(""),
                    &|_| true,
                    &mut files,
                    &mut snapshot.skipped,
                )
                .map_err(git_error)?;
                snapshot.templates = files
                    .into_iter()
                    .map(|(path, bytes)| (template_name(&path), bytes))
                    .collect();
            }
        }
        // Reading templates from disk would mix two versions in one run; a folder that does
        // not exist anywhere (the default `templates`, unused) is simply empty.
        None if templates_dir.exists() => {
            return Err(RevisionError::TemplatesOutside {
                folder: templates_dir.to_path_buf(),
                repo: workdir,
                rev: rev.to_string(),
            });
        }
        None => {}
    }
    Ok(snapshot)
}

/// The tree at `folder` (relative to the root), `None` where there is none at that commit.
fn subtree<'r>(
    repo: &'r Repository,
    root: &Tree<'r>,
    folder: &Path,
) -> Result<Option<Tree<'r>>, git2::Error> {
    if folder.as_os_str().is_empty() {
        return Ok(Some(root.clone()));
    }
    let entry = match root.get_path(folder) {
        Ok(entry) => entry,
        Err(error) if error.code() == ErrorCode::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    if entry.kind() != Some(ObjectType::Tree) {
        return Ok(None);
    }
    repo.find_tree(entry.id()).map(Some)
}

/// Git's mode for a symbolic link.
const SYMLINK_MODE: i32 = 0o120000;

/// Every blob below `tree` whose name passes `wanted`, as `base/<path>`, skipping hidden
/// entries (as the folder walk does) and submodules.
fn collect(
    repo: &Repository,
    tree: &Tree,
    base: &Path,
    wanted: &dyn Fn(&str) -> bool,
    files: &mut Vec<(PathBuf, Vec<u8>)>,
    skipped: &mut Vec<(PathBuf, String)>,
) -> Result<(), git2::Error> {
    for entry in tree.iter() {
        let name = String::from_utf8_lossy(entry.name_bytes()).into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = base.join(&name);
        match entry.kind() {
            Some(ObjectType::Tree) => {
                let subtree = repo.find_tree(entry.id())?;
                collect(repo, &subtree, &path, wanted, files, skipped)?;
            }
            Some(ObjectType::Blob) if wanted(&name) => {
                if entry.filemode() == SYMLINK_MODE {
                    skipped.push((
                        path,
                        "a symbolic link is not followed when reading a git revision".to_string(),
                    ));
                    continue;
                }
                let blob = repo.find_blob(entry.id())?;
                files.push((path, blob.content().to_vec()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A template's name as `render:` and `{% include %}` give it: `/`-separated, relative.
fn template_name(path: &Path) -> String {
    path.components()
        .map(|component| component.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// `folder` relative to `workdir` (both made absolute, symbolic links resolved as far as the
/// folder exists), or `None` where it is outside.
fn relative_to(workdir: &Path, folder: &Path) -> Option<PathBuf> {
    let absolute = resolved(folder)?;
    absolute.strip_prefix(workdir).ok().map(Path::to_path_buf)
}

/// An absolute path for `path` whose existing part is canonical, with the missing rest appended
/// (`..` in the missing rest is applied lexically).
fn resolved(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    let existing = existing_ancestor(&absolute)?;
    let mut result = canonical(&existing)?;
    let rest = absolute.strip_prefix(&existing).ok()?;
    for component in rest.components() {
        match component {
            Component::ParentDir => {
                result.pop();
            }
            Component::Normal(part) => result.push(part),
            _ => {}
        }
    }
    Some(result)
}

/// The longest prefix of `path` that exists.
fn existing_ancestor(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    absolute
        .ancestors()
        .find(|ancestor| ancestor.exists())
        .map(Path::to_path_buf)
}

fn canonical(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::Signature;

    /// A repository with `workflows/a.yaml` committed twice; returns (dir, first, second).
    fn repository() -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let commit = |text: &str| {
            std::fs::create_dir_all(dir.path().join("workflows/.hidden")).unwrap();
            std::fs::create_dir_all(dir.path().join("templates/sub")).unwrap();
            std::fs::write(dir.path().join("workflows/a.yaml"), text).unwrap();
            std::fs::write(dir.path().join("workflows/a.test.yaml"), "tests").unwrap();
            std::fs::write(dir.path().join("workflows/.hidden/b.yaml"), "hidden").unwrap();
            std::fs::write(dir.path().join("templates/sub/t.j2"), text).unwrap();
            let mut index = repo.index().unwrap();
            index
                .add_all(["."], git2::IndexAddOption::DEFAULT, None)
                .unwrap();
            index.write().unwrap();
            let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
            let signature = Signature::now("t", "t@localhost").unwrap();
            let parents: Vec<git2::Commit> = repo
                .head()
                .ok()
                .and_then(|head| head.peel_to_commit().ok())
                .into_iter()
                .collect();
            let parents: Vec<&git2::Commit> = parents.iter().collect();
            repo.commit(Some("HEAD"), &signature, &signature, text, &tree, &parents)
                .unwrap()
                .to_string()
        };
        let first = commit("one");
        let second = commit("two");
        (dir, first, second)
    }

    #[test]
    fn a_revision_reads_the_files_of_that_commit() {
        let (dir, first, _) = repository();
        let workflows = dir.path().join("workflows");
        let snapshot = read_revision(&workflows, &dir.path().join("templates"), &first).unwrap();
        assert_eq!(snapshot.commit, first);
        assert_eq!(
            snapshot.workflows,
            vec![(workflows.join("a.yaml"), b"one".to_vec())]
        );
        assert_eq!(snapshot.templates["sub/t.j2"], b"one".to_vec());
    }

    #[test]
    fn the_worktree_revision_is_head_and_dirty_when_changed() {
        let (dir, _, second) = repository();
        let workflows = dir.path().join("workflows");
        let templates = dir.path().join("templates");
        assert_eq!(
            worktree_revision(&workflows, &templates),
            Some(second.clone())
        );
        std::fs::write(templates.join("new.j2"), "x").unwrap();
        assert_eq!(
            worktree_revision(&workflows, &templates),
            Some(format!("{second}+dirty"))
        );
        std::fs::remove_file(templates.join("new.j2")).unwrap();
        // A change outside both folders is not the workflows' business.
        std::fs::write(dir.path().join("README"), "x").unwrap();
        assert_eq!(worktree_revision(&workflows, &templates), Some(second));
    }

    #[test]
    fn bad_revisions_and_folders_are_named() {
        let (dir, first, _) = repository();
        let templates = dir.path().join("templates");
        let error = read_revision(&dir.path().join("workflows"), &templates, "nope").unwrap_err();
        assert!(
            matches!(error, RevisionError::UnknownRevision { .. }),
            "{error}"
        );
        let error = read_revision(&dir.path().join("elsewhere"), &templates, &first).unwrap_err();
        assert!(
            error.to_string().contains("`elsewhere` does not exist"),
            "{error}"
        );
        let outside = tempfile::tempdir().unwrap();
        let error = read_revision(outside.path(), &templates, &first).unwrap_err();
        assert!(
            matches!(error, RevisionError::NotARepository { .. }),
            "{error}"
        );
        assert_eq!(worktree_revision(outside.path(), &templates), None);
    }
}
