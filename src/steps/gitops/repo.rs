//! The config repository as `gitops` sees it: a bare cache under the state folder, fetched (not
//! cloned again) on every run; commits are built from git objects without a working tree, so a
//! promotion into a repository of 10,000 files reads and writes only the files it edits.

use git2::{
    AutotagOption, Cred, CredentialType, ErrorCode, FetchOptions, FetchPrune, FileMode, Oid,
    PushOptions, RemoteCallbacks, Repository, Signature,
};
use sha2::{Digest, Sha256};
use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};

/// A rejected push (the remote moved) is answered by a fetch and a new commit at most this often.
pub const MAX_PUSH_ATTEMPTS: u32 = 5;

/// The remote and how to reach it. `token` is never written anywhere: it goes to libgit2 through
/// the credentials callback only.
pub struct Remote<'a> {
    pub url: &'a str,
    pub token: Option<&'a str>,
}

/// Where and how one promotion lands.
pub struct Promotion<'a> {
    pub remote: Remote<'a>,
    /// The branch the commit goes on and is pushed to.
    pub branch: &'a str,
    /// Where `branch` starts when the remote does not have it yet (a pull request's base); `None`:
    /// `branch` must exist.
    pub start: Option<&'a str>,
    pub message: &'a str,
    pub author: Author<'a>,
    /// `false`: commit in the cache only.
    pub push: bool,
    /// Compute the changes; commit nothing.
    pub dry_run: bool,
}

pub struct Author<'a> {
    pub name: &'a str,
    pub email: &'a str,
}

/// One file as a promotion leaves it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub path: String,
    /// `None`: the file is new.
    pub old: Option<String>,
    pub new: String,
}

#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Every file already holds what the edits produce; `head` is the branch's commit (or the
    /// start's, when `on_remote` is false: the branch is not on the remote).
    Unchanged { head: String, on_remote: bool },
    /// A dry run: what would change; nothing committed.
    Planned { changes: Vec<Change> },
    Committed {
        commit: String,
        changes: Vec<Change>,
        pushed: bool,
    },
}

/// What the edits read: the files of the branch's head commit.
pub struct Snapshot<'r> {
    repo: &'r Repository,
    tree: git2::Tree<'r>,
}

impl Snapshot<'_> {
    /// The file's text, `None` when there is no such file.
    pub fn read(&self, path: &str) -> Result<Option<String>, String> {
        let entry = match self.tree.get_path(Path::new(path)) {
            Ok(entry) => entry,
            Err(error) if error.code() == ErrorCode::NotFound => return Ok(None),
            Err(error) => return Err(format!("cannot read `{path}`: {}", error.message())),
        };
        let blob = entry
            .to_object(self.repo)
            .and_then(|object| object.peel_to_blob())
            .map_err(|_| format!("`{path}` is not a file"))?;
        String::from_utf8(blob.content().to_vec())
            .map(Some)
            .map_err(|_| format!("`{path}` is not UTF-8 text"))
    }
}

/// Errors name the remote by its scrubbed URL and never hold the token.
pub type RepoResult<T> = Result<T, String>;

/// The cache folder of `url` under `state_folder`: `gitops/<hash of the URL>`.
pub fn cache_path(state_folder: &Path, url: &str) -> PathBuf {
    let digest = hex::encode(Sha256::digest(url.as_bytes()));
    state_folder.join("gitops").join(&digest[..16])
}

/// The URL as it may be shown: user info (`user:password@`) replaced by `***@`.
pub fn scrub_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***@{}", &url[..scheme_end + 3], &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// A remote on this machine's file system (a path or `file://`), where libgit2's own push would
/// not check that the branch is still where it was: see [`push_local`].
fn is_local(url: &str) -> bool {
    !url.contains("://") || url.starts_with("file://")
}

/// Fetches `branch`, applies `edits` to its head, commits and pushes, starting over on a fresh
/// fetch when the push is rejected because the remote moved. The cache is locked for the whole
/// promotion, so that two runs on this machine take turns instead of fighting over its refs.
pub fn promote<F>(cache: &Path, promotion: &Promotion, mut edits: F) -> RepoResult<Outcome>
where
    F: FnMut(&Snapshot) -> RepoResult<Vec<Change>>,
{
    let Promotion {
        remote,
        branch,
        start,
        message,
        author,
        push,
        dry_run,
    } = promotion;
    let (branch, start, push, dry_run) = (*branch, *start, *push, *dry_run);
    let shown = scrub_url(remote.url);
    let _lock = CacheLock::acquire(cache)?;
    // Before the cache is opened: libgit2 reads the alternates when it loads the object database.
    if is_local(remote.url) {
        borrow_objects(cache, remote.url)?;
    }
    let repo = open_cache(cache)?;
    let tracking = format!("refs/remotes/origin/{branch}");
    let mut last_rejection: Option<(Option<Oid>, String)> = None;
    for _ in 0..MAX_PUSH_ATTEMPTS {
        let tips = fetch(&repo, remote, branch, start)?;
        let base = match (tips.branch, tips.start) {
            (Some(tip), _) | (None, Some(tip)) => tip,
            (None, None) => {
                let wanted = match start {
                    Some(start) => format!("neither `{branch}` nor `{start}` is"),
                    None => format!("branch `{branch}` is not"),
                };
                return Err(format!("{wanted} on `{shown}`"));
            }
        };
        if let Some((rejected_tip, reason)) = &last_rejection
            && *rejected_tip == tips.branch
        {
            // The branch is where it was: the remote refused the push for another reason.
            return Err(format!("push to `{shown}` was rejected: {reason}"));
        }
        let base_commit = repo
            .find_commit(base)
            .map_err(|error| format!("`{branch}` of `{shown}`: {}", error.message()))?;
        let base_tree = base_commit
            .tree()
            .map_err(|error| format!("`{branch}` of `{shown}`: {}", error.message()))?;
        let changes = edits(&Snapshot {
            repo: &repo,
            tree: base_tree.clone(),
        })?;
        if changes.is_empty() {
            return Ok(Outcome::Unchanged {
                head: base.to_string(),
                on_remote: tips.branch.is_some(),
            });
        }
        if dry_run {
            return Ok(Outcome::Planned { changes });
        }
        let commit = make_commit(&repo, &base_commit, &base_tree, &changes, message, author)?;
        let local_branch = format!("refs/heads/{branch}");
        repo.reference(&local_branch, commit, true, "vane gitops")
            .map_err(|error| format!("cannot update the cache: {}", error.message()))?;
        if !push {
            return Ok(Outcome::Committed {
                commit: commit.to_string(),
                changes,
                pushed: false,
            });
        }
        let pushed = if is_local(remote.url) {
            push_local(&repo, remote, branch, commit, tips.branch)?
        } else {
            push_remote(&repo, remote, branch)?
        };
        match pushed {
            PushResult::Done => {
                // The cache now knows the pushed commit as the remote's, so the next fetch is empty.
                let _ = repo.reference(&tracking, commit, true, "vane gitops: pushed");
                return Ok(Outcome::Committed {
                    commit: commit.to_string(),
                    changes,
                    pushed: true,
                });
            }
            PushResult::Moved(reason) => last_rejection = Some((tips.branch, reason)),
        }
    }
    Err(format!(
        "push to `{shown}` `{branch}` was rejected {MAX_PUSH_ATTEMPTS} times: the branch kept moving \
         (other pushes landed first); try again"
    ))
}

/// For a remote on this machine the cache reads the remote's objects in place (git's
/// `objects/info/alternates`, as `git clone --shared` does). libgit2's local transport fetches by
/// packing every wanted object anew, without reusing the remote's deltas: a first fetch of 10,000
/// files and 5,000 commits took ~50 s. With the remote's objects at hand every advertised tip
/// exists locally, so a fetch only moves refs. The cache stays a cache: a lost one is refetched.
fn borrow_objects(cache: &Path, url: &str) -> RepoResult<()> {
    let path = url.strip_prefix("file://").unwrap_or(url);
    let Ok(remote) = Repository::open(path) else {
        // The fetch says what is wrong with it.
        return Ok(());
    };
    let objects = remote.path().join("objects");
    let objects = objects.canonicalize().unwrap_or(objects);
    let alternates = cache.join("objects/info/alternates");
    let line = format!("{}\n", objects.display());
    if std::fs::read_to_string(&alternates).ok().as_deref() == Some(line.as_str()) {
        return Ok(());
    }
    std::fs::create_dir_all(cache.join("objects/info"))
        .and_then(|()| std::fs::write(&alternates, line))
        .map_err(|error| {
            format!(
                "cannot write the gitops cache `{}`: {error}",
                alternates.display()
            )
        })
}

/// The cache is a bare repository: no working tree to check out or keep clean. Shared with the
/// git poller (`sources::git`), which fetches into its own ref namespace of the same cache.
pub fn open_cache(cache: &Path) -> RepoResult<Repository> {
    let failed = |error: git2::Error| {
        format!(
            "cannot open the gitops cache `{}`: {}",
            cache.display(),
            error.message()
        )
    };
    match Repository::open_bare(cache) {
        Ok(repo) => Ok(repo),
        Err(_) => {
            std::fs::create_dir_all(cache).map_err(|error| {
                format!(
                    "cannot create the gitops cache `{}`: {error}",
                    cache.display()
                )
            })?;
            Repository::init_bare(cache).map_err(failed)
        }
    }
}

/// Callbacks that answer an authentication request with the token, once: a second request
/// means the token was refused, and asking again would loop.
pub fn callbacks<'a>(token: Option<&'a str>, asked: &'a Cell<u32>) -> RemoteCallbacks<'a> {
    let mut callbacks = RemoteCallbacks::new();
    callbacks.credentials(move |_url, _username, allowed| {
        asked.set(asked.get() + 1);
        if asked.get() > 1 {
            return Err(git2::Error::from_str("the credentials were refused"));
        }
        match token {
            Some(token) if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) => {
                Cred::userpass_plaintext("x-access-token", token)
            }
            _ => Err(git2::Error::from_str(
                "the remote asks for credentials: set `token`",
            )),
        }
    });
    callbacks
}

/// What a transport error becomes: the scrubbed URL, and a plain word when it was the token.
pub fn transport_error(
    action: &str,
    remote: &Remote,
    asked: &Cell<u32>,
    error: &git2::Error,
) -> String {
    let shown = scrub_url(remote.url);
    if asked.get() > 1 || error.code() == ErrorCode::Auth {
        return format!("{action} `{shown}`: authentication failed (the token was refused)");
    }
    if asked.get() == 1 && remote.token.is_none() {
        return format!("{action} `{shown}`: the remote asks for credentials; set `token`");
    }
    let mut message = error.message().replace(remote.url, &shown);
    if let Some(token) = remote.token
        && !token.is_empty()
    {
        message = message.replace(token, crate::secrets::MASK);
    }
    format!("{action} `{shown}`: {message}")
}

/// Where the branches are on the remote, after a fetch.
struct Tips {
    /// `None`: the remote has no such branch.
    branch: Option<Oid>,
    start: Option<Oid>,
}

/// Fetches the branch (and the start, where there is one) into remote-tracking refs.
fn fetch(
    repo: &Repository,
    remote: &Remote,
    branch: &str,
    start: Option<&str>,
) -> RepoResult<Tips> {
    let asked = Cell::new(0);
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(callbacks(remote.token, &asked))
        .download_tags(AutotagOption::None)
        .prune(FetchPrune::On);
    let mut handle = repo
        .remote_anonymous(remote.url)
        .map_err(|error| transport_error("cannot fetch from", remote, &asked, &error))?;
    let names: Vec<&str> = std::iter::once(branch).chain(start).collect();
    let refspecs: Vec<String> = names
        .iter()
        .map(|name| format!("+refs/heads/{name}:refs/remotes/origin/{name}"))
        .collect();
    // On a repository of this machine, another vane's push in flight has a ref of its own there
    // (`push_local`) that it deletes when done; libgit2's local transport fails a fetch that
    // listed such a ref and then cannot find it. That is the push's business, not this fetch's:
    // the fetch is made again.
    let mut attempts = 0;
    loop {
        match handle.fetch(&refspecs, Some(&mut options), None) {
            Err(error) if attempts < 5 && error.message().contains("'refs/vane/incoming/") => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            result => {
                result.map_err(|error| {
                    transport_error("cannot fetch from", remote, &asked, &error)
                })?;
                break;
            }
        }
    }
    // Where the remote has no such branch, the fetch leaves no ref, but a stale one may remain.
    // (Where the list is not to be had, the fetched refs are trusted.)
    let advertised: Option<Vec<String>> = handle
        .list()
        .ok()
        .map(|heads| heads.iter().map(|head| head.name().to_string()).collect());
    let tip = |name: &str| {
        let wanted = format!("refs/heads/{name}");
        if advertised
            .as_ref()
            .is_some_and(|names| !names.contains(&wanted))
        {
            return None;
        }
        repo.refname_to_id(&format!("refs/remotes/origin/{name}"))
            .ok()
    };
    Ok(Tips {
        branch: tip(branch),
        start: start.and_then(tip),
    })
}

fn make_commit(
    repo: &Repository,
    parent: &git2::Commit,
    base_tree: &git2::Tree,
    changes: &[Change],
    message: &str,
    author: &Author,
) -> RepoResult<Oid> {
    let failed = |error: git2::Error| format!("cannot commit: {}", error.message());
    let mut update = git2::build::TreeUpdateBuilder::new();
    for change in changes {
        let blob = repo.blob(change.new.as_bytes()).map_err(failed)?;
        // An executable file stays executable.
        let mode = match base_tree.get_path(Path::new(&change.path)) {
            Ok(entry) if entry.filemode() == i32::from(FileMode::BlobExecutable) => {
                FileMode::BlobExecutable
            }
            _ => FileMode::Blob,
        };
        update.upsert(change.path.as_str(), blob, mode);
    }
    let tree_id = update.create_updated(repo, base_tree).map_err(failed)?;
    let tree = repo.find_tree(tree_id).map_err(failed)?;
    let signature = Signature::now(author.name, author.email).map_err(|error| {
        format!(
            "author `{} <{}>`: {}",
            author.name,
            author.email,
            error.message()
        )
    })?;
    repo.commit(None, &signature, &signature, message, &tree, &[parent])
        .map_err(failed)
}

enum PushResult {
    Done,
    /// Rejected; the reason as the remote gave it.
    Moved(String),
}

/// A push over the network: the server's receive-pack updates the branch only if it is still at
/// the commit it advertised, so a concurrent push is a rejection here, never a lost commit.
fn push_remote(repo: &Repository, remote: &Remote, branch: &str) -> RepoResult<PushResult> {
    let asked = Cell::new(0);
    let rejection: RefCell<Option<String>> = RefCell::new(None);
    let result = {
        let mut callbacks = callbacks(remote.token, &asked);
        callbacks.push_update_reference(|_refname, status| {
            if let Some(status) = status {
                *rejection.borrow_mut() = Some(status.to_string());
            }
            Ok(())
        });
        let mut options = PushOptions::new();
        options.remote_callbacks(callbacks);
        let mut handle = repo
            .remote_anonymous(remote.url)
            .map_err(|error| transport_error("cannot push to", remote, &asked, &error))?;
        let refspec = format!("refs/heads/{branch}:refs/heads/{branch}");
        handle.push(&[refspec.as_str()], Some(&mut options))
    };
    match result {
        // libgit2 refuses a push that would not fast-forward what the remote advertised.
        Err(error) if error.code() == ErrorCode::NotFastForward => {
            Ok(PushResult::Moved(error.message().to_string()))
        }
        Err(error) => Err(transport_error("cannot push to", remote, &asked, &error)),
        Ok(()) => match rejection.into_inner() {
            Some(reason) => Ok(PushResult::Moved(reason)),
            None => Ok(PushResult::Done),
        },
    }
}

/// A push to a repository on this machine. libgit2's local transport would overwrite the branch
/// whatever it points at by then, so the objects go to a ref of their own, and the branch moves
/// with a compare-and-swap on the remote (`git` and libgit2 both lock refs the same way).
fn push_local(
    repo: &Repository,
    remote: &Remote,
    branch: &str,
    commit: Oid,
    expected: Option<Oid>,
) -> RepoResult<PushResult> {
    let shown = scrub_url(remote.url);
    let incoming = format!("refs/vane/incoming/{}", uuid::Uuid::new_v4());
    let asked = Cell::new(0);
    let mut options = PushOptions::new();
    options.remote_callbacks(callbacks(remote.token, &asked));
    let mut handle = repo
        .remote_anonymous(remote.url)
        .map_err(|error| transport_error("cannot push to", remote, &asked, &error))?;
    handle
        .push(
            &[format!("refs/heads/{branch}:{incoming}").as_str()],
            Some(&mut options),
        )
        .map_err(|error| transport_error("cannot push to", remote, &asked, &error))?;
    let path = remote.url.strip_prefix("file://").unwrap_or(remote.url);
    let target = Repository::open(path)
        .map_err(|error| format!("cannot open `{shown}`: {}", error.message()))?;
    let name = format!("refs/heads/{branch}");
    let swapped = match expected {
        Some(base) => target.reference_matching(&name, commit, true, base, "vane gitops: push"),
        // A new branch: created only if nobody created it meanwhile.
        None => target.reference(&name, commit, false, "vane gitops: push"),
    };
    if let Ok(mut reference) = target.find_reference(&incoming) {
        let _ = reference.delete();
    }
    match swapped {
        Ok(_) => Ok(PushResult::Done),
        Err(error)
            if matches!(
                error.code(),
                ErrorCode::Modified | ErrorCode::Locked | ErrorCode::Exists
            ) =>
        {
            Ok(PushResult::Moved(error.message().to_string()))
        }
        Err(error) => Err(format!("cannot push to `{shown}`: {}", error.message())),
    }
}

/// An exclusive `flock` on `<cache>.lock`, released when dropped (or when the process dies).
pub struct CacheLock {
    _file: std::fs::File,
}

impl CacheLock {
    pub fn acquire(cache: &Path) -> RepoResult<CacheLock> {
        use std::os::fd::AsRawFd;
        let path = cache.with_extension("lock");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| {
                format!(
                    "cannot create the gitops cache `{}`: {error}",
                    parent.display()
                )
            })?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|error| format!("cannot lock `{}`: {error}", path.display()))?;
        // SAFETY: `file` owns a valid descriptor for the duration of the call.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if locked != 0 {
            return Err(format!(
                "cannot lock `{}`: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(CacheLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_scrubbed() {
        assert_eq!(
            scrub_url("https://user:secret@github.com/acme/deploy.git"),
            "https://***@github.com/acme/deploy.git"
        );
        assert_eq!(
            scrub_url("https://github.com/acme/deploy.git"),
            "https://github.com/acme/deploy.git"
        );
        assert_eq!(scrub_url("/srv/git/deploy.git"), "/srv/git/deploy.git");
    }

    #[test]
    fn caches_are_per_url() {
        let root = Path::new("/state");
        assert_ne!(cache_path(root, "a"), cache_path(root, "b"));
        assert!(cache_path(root, "a").starts_with("/state/gitops"));
    }
}
