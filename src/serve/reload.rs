//! Reloading a daemon's workflows (`vane serve`, `vane worker`): on SIGHUP, `POST /-/reload`, or
//! (`--watch`) when the content of the workflows or templates folder changes.
//!
//! All or nothing: the new files are loaded beside the ones in use; when any has an error, every
//! problem is logged as `file:line:col`, nothing changes, and `vane_config_last_reload_successful`
//! drops to 0. Otherwise the new set replaces the old one in one swap of an [`Arc`]: events taken
//! from the queue from then on are matched and run against it, while the events already matched
//! finish on the definitions they were matched against (each run records its revision and the
//! digest of its file). Schedules are re-read at once: one whose workflow stays keeps its cursor
//! (no second fire, nothing skipped), a new one counts from the reload.

use crate::cancel::CancelToken;
use crate::diagnostic::Diagnostic;
use crate::pipeline::{Exit, Settings, Until, drain};
use crate::queue::Queue;
use crate::secrets::Masker;
use crate::workflow::{
    LoadOptions, WorkflowSet, WorkflowSource, load_workflows_from, read_revision,
};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Loads the workflows as the command line names them, with every problem found.
pub type Loader = dyn Fn() -> (WorkflowSet, Vec<Diagnostic>) + Send + Sync;

/// Called with each newly loaded set (the pollers take its schedules).
type Hook = Box<dyn Fn(&WorkflowSet) + Send + Sync>;

/// The workflows a daemon runs, replaceable while it runs.
pub struct Workflows {
    current: RwLock<Arc<WorkflowSet>>,
    generation: AtomicU64,
    loader: Box<Loader>,
    /// The folders `--watch` hashes (workflows, templates).
    watched: Vec<PathBuf>,
    /// The folders' content digest as last loaded (or tried).
    fingerprint: Mutex<String>,
    hooks: Mutex<Vec<Hook>>,
    /// One reload at a time.
    reloading: Mutex<()>,
    /// `--watch`: how often the folders' content is compared.
    pub watch: Option<Duration>,
    /// Cancelled by the next swap: the pipeline of the set in use stops taking events then.
    retire: Mutex<CancelToken>,
}

/// A successful reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    pub workflows: usize,
    pub revision: Option<String>,
}

impl Workflows {
    /// The daemon's first set (loaded without errors by the caller), and how to load the next.
    pub fn new(set: WorkflowSet, loader: Box<Loader>, watched: Vec<PathBuf>) -> Workflows {
        crate::metrics::config_loaded(true);
        let fingerprint = fingerprint(&watched);
        Workflows {
            current: RwLock::new(Arc::new(set)),
            generation: AtomicU64::new(0),
            loader,
            watched,
            fingerprint: Mutex::new(fingerprint),
            hooks: Mutex::new(Vec::new()),
            reloading: Mutex::new(()),
            watch: None,
            retire: Mutex::new(CancelToken::new()),
        }
    }

    /// These workflows, reloaded when the folders' content changes (checked every `watch`).
    pub fn watching(mut self, watch: Option<Duration>) -> Workflows {
        self.watch = watch;
        self
    }

    /// [`Workflows::new`] for the folders the flags name (`--workflows`, `--templates`), or
    /// their files at `--workflows-ref` (read again at each reload: a branch may have moved).
    pub fn from_folders(
        set: WorkflowSet,
        options: LoadOptions,
        workflows_ref: Option<String>,
    ) -> Workflows {
        let watched = vec![options.workflows_dir.clone(), options.templates_dir.clone()];
        let loader = move || match workflows_ref.as_deref() {
            None => load_workflows_from(&options, WorkflowSource::Disk, &[]),
            Some(rev) => match read_revision(&options.workflows_dir, &options.templates_dir, rev) {
                Ok(snapshot) => {
                    load_workflows_from(&options, WorkflowSource::Revision(snapshot), &[])
                }
                Err(error) => (
                    WorkflowSet::new(
                        Vec::new(),
                        crate::template::Templates::new(&options.templates_dir),
                    ),
                    vec![Diagnostic::error(
                        options.workflows_dir.clone(),
                        None,
                        error.to_string(),
                    )],
                ),
            },
        };
        Workflows::new(set, Box::new(loader), watched)
    }

    /// A daemon's workflows from its flags: `--workflows`, `--templates`, `--workflows-ref` (an
    /// empty one is none) and `--watch` (the folders looked at every 2 s).
    pub fn for_daemon(
        set: WorkflowSet,
        workflows_dir: &Path,
        templates_dir: &Path,
        workflows_ref: Option<&str>,
        watch: bool,
    ) -> Arc<Workflows> {
        let options = LoadOptions {
            workflows_dir: workflows_dir.to_path_buf(),
            templates_dir: templates_dir.to_path_buf(),
        };
        let rev = workflows_ref
            .filter(|rev| !rev.is_empty())
            .map(str::to_string);
        let watch = watch.then_some(Duration::from_secs(2));
        Arc::new(Workflows::from_folders(set, options, rev).watching(watch))
    }

    /// The set in use now.
    pub fn current(&self) -> Arc<WorkflowSet> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The set in use now, with `retire` cancelled at the moment it is replaced (before any event
    /// can be taken for the new set).
    pub fn subscribe(&self, retire: CancelToken) -> (u64, Arc<WorkflowSet>) {
        let mut held = self.retire.lock().unwrap_or_else(PoisonError::into_inner);
        *held = retire;
        (self.generation(), self.current())
    }

    /// How many times the set was replaced.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Calls `hook` with every set loaded from now on — and at once with the set in use if it is
    /// no longer `seen`, the set the caller started from: a reload (a SIGHUP sent as soon as the
    /// daemon said it listens) may come between the caller's look at the set and this call. A
    /// hook may so be called twice with one set; it must not mind.
    pub fn on_reload(&self, seen: &Arc<WorkflowSet>, hook: Hook) {
        let mut hooks = self.hooks.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.current();
        if !Arc::ptr_eq(&current, seen) {
            hook(&current);
        }
        hooks.push(hook);
    }

    /// Loads the workflows again (`trigger` says why, for the log). On any error nothing
    /// changes and the problems come back as `file:line:col: error: message`.
    pub fn reload(&self, trigger: &str) -> Result<Reloaded, Vec<String>> {
        let _one = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *self
            .fingerprint
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = fingerprint(&self.watched);
        let (set, diagnostics) = (self.loader)();
        let errors: Vec<&Diagnostic> = diagnostics
            .iter()
            .filter(|diagnostic| diagnostic.is_error())
            .collect();
        if !errors.is_empty() {
            for diagnostic in &errors {
                diagnostic.log();
            }
            tracing::error!(
                trigger,
                problems = errors.len(),
                "reload failed: {} problem(s) in the workflows; the workflows in use are unchanged",
                errors.len()
            );
            crate::metrics::config_loaded(false);
            return Err(errors.iter().map(ToString::to_string).collect());
        }
        for warning in &diagnostics {
            warning.log();
        }
        let reloaded = Reloaded {
            workflows: set.len(),
            revision: set.revision.clone(),
        };
        let set = Arc::new(set);
        {
            let retire = self.retire.lock().unwrap_or_else(PoisonError::into_inner);
            *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&set);
            self.generation.fetch_add(1, Ordering::SeqCst);
            retire.cancel();
        }
        for hook in self
            .hooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            hook(&set);
        }
        crate::metrics::config_loaded(true);
        tracing::info!(
            trigger,
            workflows = reloaded.workflows,
            revision = reloaded.revision.as_deref().unwrap_or(""),
            "reloaded: {} workflow(s)",
            reloaded.workflows
        );
        Ok(reloaded)
    }

    /// Whether the watched folders' content differs from what was last loaded.
    pub fn changed_on_disk(&self) -> bool {
        let now = fingerprint(&self.watched);
        *self
            .fingerprint
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            != now
    }
}

/// A digest of every file under `folders` (names and contents, in sorted order).
pub fn fingerprint(folders: &[PathBuf]) -> String {
    let mut files = Vec::new();
    for folder in folders {
        collect(folder, &mut files);
    }
    files.sort();
    let mut hasher = sha2::Sha256::new();
    for path in files {
        hasher.update(path.as_os_str().as_encoded_bytes());
        hasher.update([0]);
        match std::fs::read(&path) {
            Ok(bytes) => hasher.update(sha2::Sha256::digest(&bytes)),
            Err(_) => hasher.update(b"unreadable"),
        }
    }
    hex::encode(hasher.finalize())
}

fn collect(folder: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => collect(&path, files),
            Ok(_) => files.push(path),
            Err(_) => {}
        }
    }
}

/// Reloads on SIGHUP, and with `--watch` when the folders' content changed, until `stop`.
pub fn spawn_reloader(
    workflows: Arc<Workflows>,
    stop: CancelToken,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let watch = workflows.watch;
    let hangup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hangup))?;
    std::thread::Builder::new()
        .name("vane-reload".to_string())
        .spawn(move || {
            let mut looked = Instant::now();
            while !stop.is_cancelled() {
                if hangup.swap(false, Ordering::SeqCst) {
                    let _ = workflows.reload("SIGHUP");
                }
                if let Some(every) = watch
                    && looked.elapsed() >= every
                {
                    looked = Instant::now();
                    if workflows.changed_on_disk() {
                        let _ = workflows.reload("--watch");
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
}

/// [`drain`] over workflows that may be reloaded: each set has its own pipeline; on a reload the
/// old one takes no more events (those it took but had not matched go back to the queue) and
/// ends once its runs have finished, while a new one starts on the new set at once.
pub fn drain_reloading(
    settings: &Settings,
    workflows: &Workflows,
    masker: Masker,
    queue: Arc<dyn Queue>,
    stop: CancelToken,
) -> Exit {
    std::thread::scope(|threads| {
        let mut running = Vec::new();
        loop {
            let retire = stop.child();
            let (generation, set) = workflows.subscribe(retire.clone());
            let until = Until::Stopped(retire.clone());
            let (masker, queue) = (masker.clone(), Arc::clone(&queue));
            running.push(threads.spawn(move || drain(settings, &set, masker, queue, until)));
            while !stop.is_cancelled() && workflows.generation() == generation {
                std::thread::sleep(Duration::from_millis(50));
            }
            retire.cancel();
            if stop.is_cancelled() {
                break;
            }
        }
        running
            .into_iter()
            .fold(Exit::Success, |exit, handle| match handle.join() {
                Ok(ended) => exit.worst(ended),
                Err(panic) => std::panic::resume_unwind(panic),
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::{LoadOptions, load_workflows};

    fn loader(dir: &Path) -> Box<Loader> {
        let options = LoadOptions {
            workflows_dir: dir.join("workflows"),
            templates_dir: dir.join("templates"),
        };
        Box::new(move || load_workflows(&options, &[]))
    }

    const GOOD: &str = "version: 1\nname: a\non: { push: {} }\nsteps:\n  - run: echo a\n";

    /// A folder with the workflow `a`, loaded.
    fn one_workflow() -> (tempfile::TempDir, Workflows) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
        std::fs::write(dir.path().join("workflows/a.yaml"), GOOD).unwrap();
        let load = loader(dir.path());
        let (set, _) = load();
        let workflows = Workflows::new(set, load, vec![dir.path().join("workflows")]);
        (dir, workflows)
    }

    #[test]
    fn a_reload_with_an_error_changes_nothing_and_names_the_place() {
        let (dir, workflows) = one_workflow();
        assert!(!workflows.changed_on_disk());
        std::fs::write(
            dir.path().join("workflows/b.yaml"),
            GOOD.replace("name: a", "name: b"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("workflows/c.yaml"),
            "version: 1\nname: c\non: { push: {} }\nsteps:\n  - run: echo c\n    bogus: 1\n",
        )
        .unwrap();
        assert!(workflows.changed_on_disk());
        let problems = workflows.reload("test").unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("c.yaml:6:5: error:"), "{problems:?}");
        assert_eq!(workflows.generation(), 0);
        assert_eq!(workflows.current().len(), 1);
        // Tried: the same broken content is not tried again by `--watch`.
        assert!(!workflows.changed_on_disk());
        std::fs::remove_file(dir.path().join("workflows/c.yaml")).unwrap();
        assert!(workflows.changed_on_disk());
        let reloaded = workflows.reload("test").unwrap();
        assert_eq!(reloaded.workflows, 2);
        assert_eq!(workflows.generation(), 1);
        assert!(workflows.current().get("b").is_some());
    }

    #[test]
    fn a_hook_registered_after_a_reload_it_missed_gets_the_new_set_at_once() {
        let (dir, workflows) = one_workflow();
        let seen = workflows.current();
        std::fs::write(
            dir.path().join("workflows/b.yaml"),
            GOOD.replace("name: a", "name: b"),
        )
        .unwrap();
        workflows.reload("test").unwrap();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let record = |calls: &Arc<Mutex<Vec<usize>>>| {
            let calls = Arc::clone(calls);
            Box::new(move |set: &WorkflowSet| calls.lock().unwrap().push(set.len())) as Hook
        };
        workflows.on_reload(&seen, record(&calls));
        assert_eq!(*calls.lock().unwrap(), vec![2], "the missed reload");
        // A hook whose set is the one in use waits for the next reload.
        let later = Arc::new(Mutex::new(Vec::new()));
        workflows.on_reload(&workflows.current(), record(&later));
        assert!(later.lock().unwrap().is_empty());
        std::fs::remove_file(dir.path().join("workflows/b.yaml")).unwrap();
        workflows.reload("test").unwrap();
        assert_eq!(*calls.lock().unwrap(), vec![2, 1]);
        assert_eq!(*later.lock().unwrap(), vec![1]);
    }
}
