//! The NATS JetStream queue, KV group locks and the NATS source, against the real nats-server on
//! 127.0.0.1:4222 (started by `.ci/run` where missing) and real `vane worker` processes. Every
//! test uses its own stream, subjects, consumer and buckets, and removes them at the end.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vane::broker::{JetStream, runtime};
use vane::queue::{Enqueued, JetStreamQueue, Queue, QueueItem};

pub const NATS_URL: &str = "nats://127.0.0.1:4222";

/// A name no other test (of this or another process) uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// A project folder whose vane.yaml queues on its own JetStream stream; its objects are
/// deleted when it is dropped.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub stream: String,
    pub subject: String,
    pub dead: String,
    buckets: Vec<String>,
}

impl Cluster {
    /// `jetstream` is extra settings (`ack-wait: 2s`), `extra` more top-level vane.yaml text.
    pub fn new(jetstream: &str, extra: &str, workflows: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let name = unique("T");
        let stream = format!("{name}_EVENTS");
        let subject = format!("{name}.events");
        let dead = format!("{name}.dead");
        let cursors = format!("{name}-cursors");
        let locks = format!("{name}-locks");
        let gates = format!("{name}-gates");
        std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
        for (file, text) in workflows {
            std::fs::write(dir.path().join("workflows").join(file), text).unwrap();
        }
        std::fs::write(
            dir.path().join("vane.yaml"),
            format!(
                "version: 1\nqueue: {NATS_URL}\njetstream:\n  stream: {stream}\n  subject: {subject}\n  \
                 consumer: workers\n  dead-letter: {dead}\n  cursors: {cursors}\n  locks: {locks}\n  gates: {gates}\n{}{extra}",
                jetstream
                    .lines()
                    .map(|line| format!("  {line}\n"))
                    .collect::<String>()
            ),
        )
        .unwrap();
        Cluster {
            dir,
            stream,
            subject,
            dead,
            buckets: vec![cursors, locks, gates],
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The queue as `vane serve` opens it, from this project's vane.yaml.
    pub fn queue(&self) -> JetStreamQueue {
        let config = vane::config::load(&self.path().join("vane.yaml")).unwrap();
        let vane::config::Queue::Nats(settings) = &config.queue else {
            panic!("not a NATS queue");
        };
        JetStreamQueue::open(
            settings,
            &vane::state::StateLocation::Memory,
            vane::secrets::Masker::new(),
        )
        .unwrap()
    }

    /// A `vane worker` with its own state store `state`, output in `<state>.log`.
    pub fn worker(&self, state: &str, parallel: u16, env: &[(&str, &str)]) -> Worker {
        spawn_worker(self.path(), state, parallel, env)
    }

    pub fn history(&self, state: &str) -> Vec<Value> {
        history(self.path(), state)
    }

    /// `vane <args>` in this project (with `--state a.db`): its stdout, once it succeeded.
    pub fn vane(&self, args: &[&str]) -> String {
        let output = Command::new(assert_cmd::cargo::cargo_bin("vane"))
            .current_dir(self.path())
            .args(["--state", "a.db"])
            .args(args)
            .env_remove("VANE_STATE")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "vane {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits until the worker logging to `<state>.log` has started.
    /// Two started workers, `a.db` and `b.db`, each with `parallel` runs at once.
    pub fn two_workers(&self, parallel: u16, env: &[(&str, &str)]) -> (Worker, Worker) {
        let workers = (
            self.worker("a.db", parallel, env),
            self.worker("b.db", parallel, env),
        );
        self.started("a.db");
        self.started("b.db");
        workers
    }

    pub fn started(&self, state: &str) {
        let log = self.path().join(format!("{state}.log"));
        wait_until(Duration::from_secs(30), "the worker's start", || {
            std::fs::read_to_string(&log).is_ok_and(|text| text.contains("worker started"))
        });
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let Ok(broker) = JetStream::connect(NATS_URL) else {
            return;
        };
        runtime().block_on(async {
            let _ = broker.context.delete_stream(&self.stream).await;
            let _ = broker
                .context
                .delete_stream(format!("{}_DEAD", self.stream))
                .await;
            for bucket in &self.buckets {
                let _ = broker.context.delete_key_value(bucket).await;
            }
        });
    }
}

/// A `vane worker` process, killed when dropped unless [`stop`] ended it: a failed assertion
/// must not leave workers running after the test.
pub struct Worker(Option<Child>);

impl Worker {
    /// SIGKILL, and the exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether it has exited (killed by its own step, say).
    pub fn exited(&mut self) -> bool {
        match &mut self.0 {
            Some(child) => child.try_wait().unwrap().is_some(),
            None => true,
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn spawn_worker(dir: &Path, state: &str, parallel: u16, env: &[(&str, &str)]) -> Worker {
    let log = std::fs::File::create(dir.join(format!("{state}.log"))).unwrap();
    let child = Command::new(assert_cmd::cargo::cargo_bin("vane"))
        .current_dir(dir)
        .args([
            "--state",
            state,
            "worker",
            "--parallel",
            &parallel.to_string(),
        ])
        .env_remove("VANE_STATE")
        .env_remove("VANE_WORKFLOWS")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Worker(Some(child))
}

/// Every run in one state store, `vane history --json`.
pub fn history(dir: &Path, state: &str) -> Vec<Value> {
    if !dir.join(state).exists() {
        return Vec::new();
    }
    let output = Command::new(assert_cmd::cargo::cargo_bin("vane"))
        .current_dir(dir)
        .args(["--state", state, "history", "--json", "--limit", "0"])
        .env_remove("VANE_STATE")
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// SIGTERM, then the exit (a worker finishes the runs in flight first).
pub fn stop(mut worker: Worker) {
    let Some(mut child) = worker.0.take() else {
        return;
    };
    // SAFETY: signalling a child process this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits until `done` holds, polling; panics with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Successful runs per event id, over several stores.
fn successes(runs: &[Vec<Value>]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for run in runs.iter().flatten() {
        if run["status"] == "success" {
            *counts
                .entry(run["event_id"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
    }
    counts
}

fn envelope(id: &str, kind: &str) -> QueueItem {
    QueueItem {
        delivery: id.to_string(),
        source: "test".to_string(),
        event: json!({"id": id, "type": kind, "source": "test", "data": {"n": id}}).to_string(),
    }
}

const TICK: &str = "version: 1\nname: tick\non:\n  tick: {}\nsteps:\n  - run: \"true\"\n";

#[test]
fn two_workers_run_two_thousand_events_once_each_and_replays_never() {
    let cluster = Cluster::new("", "", &[("tick.yaml", TICK)]);
    let queue = cluster.queue();
    let first = cluster.worker("a.db", 4, &[]);
    let second = cluster.worker("b.db", 4, &[]);
    let items: Vec<QueueItem> = (0..2000)
        .map(|index| envelope(&format!("ev-{index}"), "tick"))
        .collect();
    for chunk in items.chunks(250) {
        let outcomes = queue.push(chunk, None).unwrap();
        assert!(
            outcomes
                .iter()
                .all(|outcome| *outcome == Enqueued::Accepted)
        );
    }
    // A replay of delivery ids within the dedup window is dropped by JetStream.
    let replayed = queue.push(&items[..100], None).unwrap();
    assert!(
        replayed
            .iter()
            .all(|outcome| *outcome == Enqueued::Duplicate)
    );
    wait_until(Duration::from_secs(240), "2000 runs", || {
        let total: usize = successes(&[cluster.history("a.db"), cluster.history("b.db")])
            .values()
            .sum();
        total >= 2000
    });
    stop(first);
    stop(second);
    let (a, b) = (cluster.history("a.db"), cluster.history("b.db"));
    assert!(!a.is_empty() && !b.is_empty(), "both workers took a share");
    let counts = successes(&[a, b]);
    assert_eq!(counts.len(), 2000, "every event ran");
    let twice: Vec<_> = counts.iter().filter(|(_, count)| **count > 1).collect();
    assert!(twice.is_empty(), "events run twice: {twice:?}");
    assert_eq!(queue.depth(), Some(0));
}

#[test]
fn a_killed_workers_unfinished_events_are_run_by_the_other() {
    let marks = tempfile::tempdir().unwrap();
    let slow = "version: 1\nname: slow\non:\n  tick: {}\nsteps:\n  - run: |\n      echo \"{{ event.id }}\" >> \"$MARKS/$WORKER\"\n      sleep 0.5\n";
    let cluster = Cluster::new("ack-wait: 2s\n", "", &[("slow.yaml", slow)]);
    let queue = cluster.queue();
    let items: Vec<QueueItem> = (0..16)
        .map(|index| envelope(&format!("slow-{index}"), "tick"))
        .collect();
    queue.push(&items, None).unwrap();
    let marks_dir = marks.path().to_str().unwrap();
    let victim = cluster.worker("a.db", 1, &[("MARKS", marks_dir), ("WORKER", "a")]);
    let survivor = cluster.worker("b.db", 1, &[("MARKS", marks_dir), ("WORKER", "b")]);
    // Killed in the middle of its second run, with more taken and not started.
    let started = |worker: &str| {
        std::fs::read_to_string(marks.path().join(worker))
            .map(|text| text.lines().count())
            .unwrap_or(0)
    };
    wait_until(Duration::from_secs(60), "the victim's second run", || {
        started("a") >= 2
    });
    let mut victim = victim;
    victim.kill();
    let killed_at = Instant::now();
    wait_until(Duration::from_secs(90), "all 16 events run", || {
        successes(&[cluster.history("a.db"), cluster.history("b.db")]).len() >= 16
    });
    assert!(
        killed_at.elapsed() >= Duration::from_millis(500),
        "the survivor waited for ack-wait"
    );
    stop(survivor);
    let counts = successes(&[cluster.history("a.db"), cluster.history("b.db")]);
    assert_eq!(counts.len(), 16, "none lost: {counts:?}");
    assert!(
        counts.values().all(|count| *count == 1),
        "none twice: {counts:?}"
    );
}

#[test]
fn a_concurrency_group_never_overlaps_across_two_workers() {
    let grouped = "version: 1\nname: grouped\non:\n  tick: {}\nconcurrency:\n  group: one-at-a-time\nsteps:\n  - run: sleep 0.2\n";
    let cluster = Cluster::new("lock-lease: 3s\n", "", &[("grouped.yaml", grouped)]);
    let queue = cluster.queue();
    let first = cluster.worker("a.db", 4, &[]);
    let second = cluster.worker("b.db", 4, &[]);
    // Spaced out, so that both workers hold runs of the group at once. GitHub's semantics hold
    // within each worker: a newer pending run replaces an older one (that one is `cancelled`).
    for index in 0..12 {
        queue
            .push(&[envelope(&format!("g-{index}"), "tick")], None)
            .unwrap();
        std::thread::sleep(Duration::from_millis(120));
    }
    let finished = |runs: &[Value]| {
        runs.iter()
            .filter(|run| run["status"] == "success" || run["status"] == "cancelled")
            .count()
    };
    wait_until(Duration::from_secs(90), "12 grouped events", || {
        finished(&cluster.history("a.db")) + finished(&cluster.history("b.db")) >= 12
    });
    stop(first);
    stop(second);
    let (a, b) = (cluster.history("a.db"), cluster.history("b.db"));
    assert!(!a.is_empty() && !b.is_empty(), "both workers took some");
    let mut spans: Vec<(String, String)> = a
        .iter()
        .chain(&b)
        .filter(|run| run["status"] == "success")
        .map(|run| {
            (
                run["started"].as_str().unwrap().to_string(),
                run["finished"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    spans.sort();
    assert!(spans.len() >= 4, "only {} runs succeeded", spans.len());
    for pair in spans.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "runs of one group overlap: {pair:?}"
        );
    }
}

#[test]
fn an_event_no_worker_survives_is_dead_lettered_and_recorded_dead() {
    // The step kills its worker: the event can never be handled.
    let poison = "version: 1\nname: poison\non:\n  poison: {}\nsteps:\n  - run: kill -9 $PPID\n";
    let cluster = Cluster::new(
        "ack-wait: 1s\nmax-deliver: 2\n",
        "",
        &[("poison.yaml", poison)],
    );
    let queue = cluster.queue();
    let broker = JetStream::connect(NATS_URL).unwrap();
    let mut dead_letters = runtime()
        .block_on(broker.client.subscribe(cluster.dead.clone()))
        .unwrap();
    queue.push(&[envelope("poison-1", "poison")], None).unwrap();
    let mut buried = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut workers = 0;
    while buried.is_none() && Instant::now() < deadline {
        let mut worker = cluster.worker("w.db", 1, &[]);
        workers += 1;
        // Until the worker dies (killed by the step) or the message arrives dead.
        let until = Instant::now() + Duration::from_secs(8);
        while Instant::now() < until && buried.is_none() {
            if worker.exited() {
                break;
            }
            buried = runtime()
                .block_on(async {
                    tokio::time::timeout(Duration::from_millis(200), async {
                        use futures_util::StreamExt;
                        dead_letters.next().await
                    })
                    .await
                })
                .ok()
                .flatten();
        }
        stop(worker);
    }
    let message = buried.expect("the event reached the dead-letter subject");
    let body: Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(body["id"], "poison-1");
    assert_eq!(
        workers, 3,
        "two deliveries killed a worker, the third was buried"
    );
    let headers = message.headers.unwrap();
    assert_eq!(headers.get("Vane-Delivery").unwrap().as_str(), "poison-1");
    let dead: Vec<Value> = cluster
        .history("w.db")
        .into_iter()
        .filter(|run| run["status"] == "dead")
        .collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["event_id"], "poison-1");
    assert_eq!(queue.depth(), Some(0), "terminated: no longer queued");
    let listed = Command::new(assert_cmd::cargo::cargo_bin("vane"))
        .current_dir(cluster.path())
        .args(["--state", "w.db", "history", "--status", "dead"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("dead"));
}

#[test]
fn a_cloudevent_on_a_nats_subject_triggers_its_workflow() {
    let prefix = unique("t");
    let deploy = "version: 1\nname: deploy-from-bus\non:\n  deploy:\n    sources: [ci]\nsteps:\n  - run: echo \"deploying {{ event.data.version }} ({{ event.subject }})\"\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    std::fs::write(dir.path().join("workflows/deploy.yaml"), deploy).unwrap();
    std::fs::write(
        dir.path().join("vane.yaml"),
        format!(
            "version: 1\nsources:\n  - name: bus\n    nats: {{ url: \"{NATS_URL}\", subject: \"{prefix}.events.>\" }}\n"
        ),
    )
    .unwrap();
    let worker = spawn_worker(dir.path(), "s.db", 2, &[]);
    let broker = JetStream::connect(NATS_URL).unwrap();
    let cloudevent = json!({
        "specversion": "1.0", "id": "ce-deploy-1", "source": "ci", "type": "deploy",
        "datacontenttype": "application/json", "data": {"version": "1.4.2"}
    })
    .to_string();
    // Core NATS keeps nothing for a subscriber not yet there: published until it arrives (one
    // CloudEvents id, so one run however often).
    wait_until(Duration::from_secs(30), "the deploy run", || {
        runtime()
            .block_on(
                broker
                    .client
                    .publish(format!("{prefix}.events.deploy"), cloudevent.clone().into()),
            )
            .unwrap();
        runtime().block_on(broker.client.flush()).unwrap();
        history(dir.path(), "s.db")
            .iter()
            .any(|run| run["status"] == "success")
    });
    std::thread::sleep(Duration::from_millis(500));
    stop(worker);
    let runs = history(dir.path(), "s.db");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["workflow"], "deploy-from-bus");
    assert_eq!(runs[0]["event_id"], "ce-deploy-1");
    let shown = Command::new(assert_cmd::cargo::cargo_bin("vane"))
        .current_dir(dir.path())
        .args(["--state", "s.db", "show", runs[0]["id"].as_str().unwrap()])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains(&format!("deploying 1.4.2 ({prefix}.events.deploy)")),
        "{shown}"
    );
}

#[test]
fn an_envelope_published_to_the_stream_subject_runs_once_however_often_it_is_sent() {
    let cluster = Cluster::new("", "", &[("tick.yaml", TICK)]);
    // The stream exists once a vane process has opened the queue.
    let queue = cluster.queue();
    let worker = cluster.worker("a.db", 2, &[]);
    let broker = JetStream::connect(NATS_URL).unwrap();
    let body = json!({"id": "by-hand-1", "type": "tick", "data": {}}).to_string();
    for _ in 0..3 {
        // What `nats pub --header Nats-Msg-Id:by-hand-1` sends, acked by JetStream.
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", "by-hand-1");
        let ack = runtime()
            .block_on(async {
                broker
                    .context
                    .publish_with_headers(cluster.subject.clone(), headers, body.clone().into())
                    .await
                    .unwrap()
                    .await
            })
            .unwrap();
        assert_eq!(ack.stream, cluster.stream);
    }
    wait_until(Duration::from_secs(30), "the run", || {
        !cluster.history("a.db").is_empty()
    });
    std::thread::sleep(Duration::from_millis(700));
    stop(worker);
    let runs = cluster.history("a.db");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["event_id"], "by-hand-1");
    assert_eq!(queue.depth(), Some(0));
}

/// The fenced YAML blocks of a document that are (parts of) vane.yaml files: those starting
/// with `# vane.yaml` (whole files) or `sources:` (a source entry, completed into a file).
pub(crate) fn config_blocks(document: &str) -> Vec<String> {
    let text = std::fs::read_to_string(super::support::root().join(document)).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match &mut current {
            None if line.trim_start().starts_with("```yaml") => current = Some(String::new()),
            Some(block) if line.trim_start().starts_with("```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
        .into_iter()
        .filter_map(|block| {
            if block.starts_with("# vane.yaml") {
                Some(block)
            } else if block.starts_with("sources:") {
                Some(format!("version: 1\n{block}"))
            } else {
                None
            }
        })
        .collect()
}

/// A `vane.yaml` example of `document`, loaded; a problem fails the test, naming the document.
pub(crate) fn documented_config(document: &str, block: &str) -> vane::config::Config {
    vane::config::parse(Path::new(document), block).unwrap_or_else(|problems| {
        panic!(
            "{document}: a vane.yaml example does not load:\n{block}\n{}",
            problems
                .iter()
                .map(|problem| problem.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

#[test]
fn the_documented_vane_yaml_examples_load() {
    let mut checked = 0;
    for document in ["README.md", "docs/queue.md"] {
        for block in config_blocks(document) {
            documented_config(document, &block);
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} examples found");
}

#[test]
fn cursors_live_in_the_kv_bucket_shared_by_every_process() {
    let cluster = Cluster::new("", "", &[("tick.yaml", TICK)]);
    let (here, there) = (cluster.queue(), cluster.queue());
    assert_eq!(here.cursor("api-repo").unwrap(), None);
    let pushed = here
        .push(
            &[envelope("polled-1", "tick")],
            Some(("api-repo", "refs/heads/main=9f2c")),
        )
        .unwrap();
    assert_eq!(pushed, vec![Enqueued::Accepted]);
    assert_eq!(
        there.cursor("api-repo").unwrap().as_deref(),
        Some("refs/heads/main=9f2c")
    );
}

#[test]
fn a_nats_source_with_a_stream_reads_what_was_published_while_vane_was_down() {
    let prefix = unique("d");
    let stream = format!("{prefix}_IN");
    let broker = JetStream::connect(NATS_URL).unwrap();
    runtime()
        .block_on(
            broker
                .context
                .create_stream(async_nats::jetstream::stream::Config {
                    name: stream.clone(),
                    subjects: vec![format!("{prefix}.in.>")],
                    ..Default::default()
                }),
        )
        .unwrap();
    // Published and stored before any vane process exists.
    for index in 0..3 {
        runtime()
            .block_on(async {
                broker
                    .context
                    .publish(
                        format!("{prefix}.in.metric"),
                        format!("{}", 90 + index).into(),
                    )
                    .await
                    .unwrap()
                    .await
            })
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    std::fs::write(
        dir.path().join("workflows/hot.yaml"),
        "version: 1\nname: hot\non:\n  reading: {}\nif: event.data.value > 80\nsteps:\n  - run: \"true\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("vane.yaml"),
        format!(
            "version: 1\nsources:\n  - name: durable\n    nats: {{ url: \"{NATS_URL}\", subject: \"{prefix}.in.>\", stream: {stream}, type: reading }}\n"
        ),
    )
    .unwrap();
    let worker = spawn_worker(dir.path(), "s.db", 2, &[]);
    wait_until(Duration::from_secs(30), "three runs", || {
        history(dir.path(), "s.db").len() >= 3
    });
    stop(worker);
    let runs = history(dir.path(), "s.db");
    assert_eq!(runs.len(), 3, "{runs:?}");
    let mut ids: Vec<String> = runs
        .iter()
        .map(|run| run["event_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        (1..=3)
            .map(|sequence| format!("{stream}-{sequence}"))
            .collect::<Vec<_>>()
    );
    runtime().block_on(async {
        let _ = broker.context.delete_stream(&stream).await;
    });
}

/// A `vane serve` on an ephemeral port with its own state store; the process (killed when
/// dropped) and its base URL.
pub fn spawn_serve(dir: &Path, state: &str, env: &[(&str, &str)]) -> (Worker, String) {
    let (child, url) =
        crate::support::spawn_serve(dir, &["--state", state, "--parallel", "4"], env);
    (Worker(Some(child)), url)
}

#[test]
fn two_servers_and_two_workers_run_two_thousand_signed_deliveries_once_each() {
    const SECRET: &str = "cluster-secret";
    let cluster = Cluster::new(
        "",
        "serve:\n  webhooks:\n    github: { secret: { env: HOOK_SECRET } }\n",
        &[(
            "on-push.yaml",
            "version: 1\nname: on-push\non: { push: {} }\nsteps:\n  - run: \"true\"\n",
        )],
    );
    let env = [("HOOK_SECRET", SECRET)];
    let (first_server, first_url) = spawn_serve(cluster.path(), "s1.db", &env);
    let (second_server, second_url) = spawn_serve(cluster.path(), "s2.db", &env);
    let first_worker = cluster.worker("w1.db", 4, &[]);
    let second_worker = cluster.worker("w2.db", 4, &[]);
    let payload = std::fs::read(crate::support::fixture("github/push.branch.json")).unwrap();
    let signature = vane::serve::sign(SECRET.as_bytes(), &payload);
    // Four senders, alternating between the two servers; each delivery is then replayed to the
    // other server, which must answer 200 and queue nothing.
    let senders: Vec<_> = (0..4)
        .map(|sender| {
            let urls = [first_url.clone(), second_url.clone()];
            let (payload, signature) = (payload.clone(), signature.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                let post = |url: &str, delivery: &str| {
                    client
                        .post(format!("{url}/hooks/github"))
                        .header("X-GitHub-Event", "push")
                        .header("X-GitHub-Delivery", delivery)
                        .header("X-Hub-Signature-256", &signature)
                        .body(payload.clone())
                        .send()
                        .unwrap()
                        .status()
                        .as_u16()
                };
                for index in (sender..2000).step_by(4) {
                    let delivery = format!("delivery-{index}");
                    assert_eq!(post(&urls[index % 2], &delivery), 202);
                    if index % 10 == 0 {
                        assert_eq!(post(&urls[(index + 1) % 2], &delivery), 200);
                    }
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
    let stores = ["s1.db", "s2.db", "w1.db", "w2.db"];
    let all = || -> Vec<Vec<Value>> { stores.iter().map(|state| cluster.history(state)).collect() };
    wait_until(Duration::from_secs(300), "2000 runs", || {
        successes(&all()).values().sum::<usize>() >= 2000
    });
    for process in [first_server, second_server, first_worker, second_worker] {
        stop(process);
    }
    let runs = all();
    let counts = successes(&runs);
    assert_eq!(counts.len(), 2000, "every accepted delivery ran");
    let twice: Vec<_> = counts.iter().filter(|(_, count)| **count > 1).collect();
    assert!(twice.is_empty(), "deliveries run twice: {twice:?}");
    assert!(
        runs.iter().filter(|store| !store.is_empty()).count() >= 2,
        "the work was shared"
    );
}

/// Successful runs of `workflow` over several stores.
fn runs_of<'a>(runs: &'a [Vec<Value>], workflow: &str) -> Vec<&'a Value> {
    runs.iter()
        .flatten()
        .filter(|run| run["workflow"] == workflow && run["status"] == "success")
        .collect()
}

fn reading(id: &str, kind: &str, data: Value) -> QueueItem {
    QueueItem {
        delivery: id.to_string(),
        source: "test".to_string(),
        event: json!({"id": id, "type": kind, "source": "test", "data": data}).to_string(),
    }
}

/// Every event of the test also runs `seen`, so each worker's history shows which events it took.
const SEEN: &str =
    "version: 1\nname: seen\non:\n  reading: {}\n  alert: {}\nsteps:\n  - run: \"true\"\n";

#[test]
fn a_debounce_across_two_workers_runs_once_after_the_burst_goes_quiet() {
    let marks = tempfile::tempdir().unwrap();
    let settle = "version: 1\nname: settle\non:\n  reading: {}\ndebounce:\n  key: \"{{ event.data.device }}\"\n  quiet: 2s\nsteps:\n  - run: echo \"{{ gate.debounce.count }} {{ event.data.n }}\" >> \"$MARKS/settle\"\n";
    let cluster = Cluster::new("", "", &[("settle.yaml", settle), ("seen.yaml", SEEN)]);
    let queue = cluster.queue();
    let env = [("MARKS", marks.path().to_str().unwrap())];
    let (first, second) = cluster.two_workers(2, &env);
    // A burst of 12 readings of one device, a reading every 150 ms: never quiet for 2 s.
    for index in 0..12 {
        let item = reading(
            &format!("r-{index}"),
            "reading",
            json!({"device": "d1", "n": index}),
        );
        queue.push(&[item], None).unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }
    let last_pushed = chrono::Utc::now() - chrono::Duration::milliseconds(150);
    let settled = || std::fs::read_to_string(marks.path().join("settle")).unwrap_or_default();
    wait_until(Duration::from_secs(30), "the debounced run", || {
        !settled().is_empty()
    });
    // Long enough for a second fire (another worker's, or a decision's) to show.
    std::thread::sleep(Duration::from_secs(3));
    stop(first);
    stop(second);
    let all = [cluster.history("a.db"), cluster.history("b.db")];
    let seen = runs_of(&all, "seen");
    assert_eq!(seen.len(), 12, "every reading was taken");
    assert!(
        all.iter()
            .all(|store| store.iter().any(|run| run["workflow"] == "seen")),
        "both workers took readings"
    );
    let settles = runs_of(&all, "settle");
    assert_eq!(settles.len(), 1, "one run across both workers: {settles:?}");
    let run = settles[0];
    assert!(
        run["event_id"]
            .as_str()
            .unwrap()
            .starts_with("gate:settle:d1:"),
        "{run}"
    );
    // Held until the burst was quiet for 2 s: not before the last reading plus `quiet`.
    let started = chrono::DateTime::parse_from_rfc3339(run["started"].as_str().unwrap()).unwrap();
    assert!(
        started >= last_pushed + chrono::Duration::milliseconds(1900),
        "ran at {started}, the last reading was pushed at {last_pushed}"
    );
    // With the whole burst, as its last event sees it.
    assert_eq!(settled(), "12 11\n");
    // Fired: nothing left in the bucket.
    let listed: Value = serde_json::from_str(&cluster.vane(&["gates", "--json"])).unwrap();
    assert_eq!(listed["gates"], json!([]), "{listed}");
}

#[test]
fn a_throttle_storm_across_two_workers_runs_once() {
    let page = "version: 1\nname: page\non:\n  alert: {}\nthrottle:\n  key: \"{{ event.data.alert }}\"\n  once-within: 1h\nsteps:\n  - run: \"true\"\n";
    let cluster = Cluster::new("", "", &[("page.yaml", page), ("seen.yaml", SEEN)]);
    let queue = cluster.queue();
    let (first, second) = cluster.two_workers(4, &[]);
    // 60 alerts of one key at once, in a few pushes: both workers decide on the key together.
    let items: Vec<QueueItem> = (0..60)
        .map(|index| reading(&format!("a-{index}"), "alert", json!({"alert": "DiskFull"})))
        .collect();
    for chunk in items.chunks(15) {
        queue.push(chunk, None).unwrap();
    }
    wait_until(Duration::from_secs(60), "60 alerts taken", || {
        runs_of(&[cluster.history("a.db"), cluster.history("b.db")], "seen").len() >= 60
    });
    stop(first);
    stop(second);
    let all = [cluster.history("a.db"), cluster.history("b.db")];
    assert!(
        all.iter()
            .all(|store| store.iter().any(|run| run["workflow"] == "seen")),
        "both workers took alerts"
    );
    let pages = runs_of(&all, "page");
    assert_eq!(pages.len(), 1, "one page for the storm: {pages:?}");
    // The key's state is in the bucket, for every process: `vane gates` reads it from there.
    let listed: Value = serde_json::from_str(&cluster.vane(&["gates", "--json"])).unwrap();
    let gates = listed["gates"].as_array().unwrap();
    assert_eq!(gates.len(), 1, "{listed}");
    assert_eq!(gates[0]["workflow"], "page");
    assert_eq!(gates[0]["key"], "DiskFull");
    assert_eq!(gates[0]["suppressed"], 59);
    assert_eq!(
        gates[0]["state"]["run_id"].as_str(),
        pages[0]["id"].as_str()
    );
    assert_eq!(
        cluster.vane(&["gates", "clear", "page"]),
        "cleared 1 key(s) of page\n"
    );
    let listed: Value = serde_json::from_str(&cluster.vane(&["gates", "--json"])).unwrap();
    assert_eq!(listed["gates"], json!([]));
}

#[test]
fn max_keys_holds_across_two_workers() {
    let sensor = "version: 1\nname: sensor\non:\n  reading: {}\ndebounce:\n  key: \"{{ event.data.device }}\"\n  quiet: 10m\n  max-keys: 3\nsteps:\n  - run: \"true\"\n";
    let cluster = Cluster::new("", "", &[("sensor.yaml", sensor), ("seen.yaml", SEEN)]);
    let queue = cluster.queue();
    let (first, second) = cluster.two_workers(2, &[]);
    // Ten devices, one after the other: each worker counts the keys the other made (its watch of
    // the bucket), so the fourth and later are refused wherever they land.
    for index in 0..10 {
        let item = reading(
            &format!("k-{index}"),
            "reading",
            json!({"device": format!("d{index}")}),
        );
        queue.push(&[item], None).unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }
    wait_until(Duration::from_secs(60), "10 readings taken", || {
        runs_of(&[cluster.history("a.db"), cluster.history("b.db")], "seen").len() >= 10
    });
    stop(first);
    stop(second);
    let listed: Value = serde_json::from_str(&cluster.vane(&["gates", "--json"])).unwrap();
    let keys: Vec<&str> = listed["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|gate| gate["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["d0", "d1", "d2"], "{listed}");
    // Each worker records the refusals it made.
    let refused: u64 = ["a.db", "b.db"]
        .iter()
        .map(|state| {
            let output = Command::new(assert_cmd::cargo::cargo_bin("vane"))
                .current_dir(cluster.path())
                .args(["--state", state, "gates", "--json"])
                .env_remove("VANE_STATE")
                .output()
                .unwrap();
            let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
            listed["refused"]
                .as_array()
                .unwrap()
                .iter()
                .map(|refused| refused["count"].as_u64().unwrap())
                .sum::<u64>()
        })
        .sum();
    assert_eq!(refused, 7);
}

#[test]
fn a_debounce_survives_a_kill_9_of_both_workers_and_runs_once_after_their_restart() {
    let marks = tempfile::tempdir().unwrap();
    let settle = "version: 1\nname: settle\non:\n  reading: {}\ndebounce:\n  key: \"{{ event.data.device }}\"\n  quiet: 2s\nsteps:\n  - run: echo \"{{ gate.debounce.count }} {{ event.data.n }}\" >> \"$MARKS/settle\"\n";
    let cluster = Cluster::new(
        "ack-wait: 2s\n",
        "",
        &[("settle.yaml", settle), ("seen.yaml", SEEN)],
    );
    let queue = cluster.queue();
    let env = [("MARKS", marks.path().to_str().unwrap())];
    let mut first = cluster.worker("a.db", 2, &env);
    let mut second = cluster.worker("b.db", 2, &env);
    cluster.started("a.db");
    cluster.started("b.db");
    for index in 0..5 {
        let item = reading(
            &format!("r-{index}"),
            "reading",
            json!({"device": "d1", "n": index}),
        );
        queue.push(&[item], None).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every reading decided and acked (its `seen` run recorded), the burst not yet quiet: both
    // workers die.
    wait_until(Duration::from_secs(30), "5 readings taken", || {
        runs_of(&[cluster.history("a.db"), cluster.history("b.db")], "seen").len() >= 5
    });
    std::thread::sleep(Duration::from_millis(300));
    first.kill();
    second.kill();
    assert!(
        !marks.path().join("settle").exists(),
        "ran before the burst went quiet"
    );
    // The deadline passes with no worker; two new ones both find the key overdue.
    std::thread::sleep(Duration::from_secs(3));
    let third = cluster.worker("c.db", 2, &env);
    let fourth = cluster.worker("d.db", 2, &env);
    let settled = || std::fs::read_to_string(marks.path().join("settle")).unwrap_or_default();
    wait_until(Duration::from_secs(30), "the debounced run", || {
        !settled().is_empty()
    });
    std::thread::sleep(Duration::from_secs(2));
    stop(third);
    stop(fourth);
    let all: Vec<Vec<Value>> = ["a.db", "b.db", "c.db", "d.db"]
        .iter()
        .map(|state| cluster.history(state))
        .collect();
    let settles = runs_of(&all, "settle");
    assert_eq!(settles.len(), 1, "one run across every worker: {settles:?}");
    assert_eq!(settled(), "5 4\n");
}

/// `vane <args>` in `dir` with `stdin`: its stdout's last line.
fn vane_in(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: &str) -> String {
    let output = assert_cmd::Command::cargo_bin("vane")
        .unwrap()
        .current_dir(dir)
        .args(args)
        .env_remove("VANE_STATE")
        .env_remove("VANE_WORKFLOWS")
        .envs(env.iter().copied())
        .write_stdin(stdin.as_bytes().to_vec())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "vane {args:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn an_overdue_debounce_found_by_the_next_event_is_fired_into_the_queue_once() {
    let settle = "version: 1\nname: settle\non:\n  reading: {}\ndebounce:\n  key: \"{{ event.data.device }}\"\n  quiet: 30s\nsteps:\n  - run: echo \"settled {{ gate.debounce.count }} {{ event.data.n }}\"\n";
    let cluster = Cluster::new("", "", &[("settle.yaml", settle)]);
    let queue = cluster.queue();
    let readings = |from: usize, to: usize| -> String {
        (from..to)
            .map(|n| format!("{{\"type\":\"reading\",\"data\":{{\"device\":\"d1\",\"n\":{n}}}}}\n"))
            .collect()
    };
    let at = |now: &'static str| [("VANE_NOW", now)];
    let state = ["--state", "a.db"];
    // `vane run` decides in the bucket too: three readings held.
    let stdout = vane_in(
        cluster.path(),
        &[&state[..], &["run"]].concat(),
        &at("2026-12-04T10:00:00Z"),
        &readings(0, 3),
    );
    assert!(
        stdout.ends_with("3 events, 0 runs, 0 succeeded, 0 failed\n"),
        "{stdout}"
    );
    // A plan reads the bucket, and changes nothing there.
    for _ in 0..2 {
        let stdout = vane_in(
            cluster.path(),
            &[&state[..], &["plan", "--explain"]].concat(),
            &at("2026-12-04T10:00:10Z"),
            &readings(7, 8),
        );
        assert!(
            stdout.contains("debounce: key `d1` has 4 event(s) since 10:00:00Z"),
            "{stdout}"
        );
    }
    // No timer ran; the next reading, long after, finds the burst overdue: the owed run goes
    // to the queue as the timer's fire would (the same id), and the reading opens a new burst.
    for _ in 0..2 {
        let stdout = vane_in(
            cluster.path(),
            &[&state[..], &["run"]].concat(),
            &at("2026-12-04T10:05:00Z"),
            &readings(3, 4),
        );
        assert!(
            stdout.ends_with("1 event, 0 runs, 0 succeeded, 0 failed\n"),
            "{stdout}"
        );
    }
    assert_eq!(queue.depth(), Some(1), "one fire queued");
    let listed: Value = serde_json::from_str(&cluster.vane(&["gates", "--json"])).unwrap();
    assert_eq!(listed["gates"][0]["count"], 2, "{listed}");
    // The queued fire runs with the first burst; the second is not due yet.
    let stdout = vane_in(
        cluster.path(),
        &[&state[..], &["poll", "--once"]].concat(),
        &at("2026-12-04T10:05:10Z"),
        "",
    );
    assert!(stdout.contains("settled 3 2"), "{stdout}");
    assert!(
        stdout.ends_with("1 event, 1 run, 1 succeeded, 0 failed\n"),
        "{stdout}"
    );
    assert_eq!(queue.depth(), Some(0));
}

#[test]
fn a_throttled_run_whose_worker_is_killed_runs_again_on_the_other_once() {
    let marks = tempfile::tempdir().unwrap();
    let page = "version: 1\nname: page\non:\n  alert: {}\nthrottle:\n  key: \"{{ event.data.alert }}\"\n  once-within: 1h\nsteps:\n  - run: |\n      echo \"$WORKER\" >> \"$MARKS/page\"\n      sleep 3\n";
    let cluster = Cluster::new("ack-wait: 2s\n", "", &[("page.yaml", page)]);
    let queue = cluster.queue();
    let dir = marks.path().to_str().unwrap();
    let mut victim = cluster.worker("a.db", 1, &[("MARKS", dir), ("WORKER", "a")]);
    cluster.started("a.db");
    queue
        .push(
            &[reading("alert-1", "alert", json!({"alert": "DiskFull"}))],
            None,
        )
        .unwrap();
    let paged = || std::fs::read_to_string(marks.path().join("page")).unwrap_or_default();
    wait_until(Duration::from_secs(30), "the page's start", || {
        !paged().is_empty()
    });
    // Killed mid-run: the decision is in the bucket, the run in its store, the event not acked.
    victim.kill();
    let a = cluster.history("a.db");
    assert_eq!(a.len(), 1, "{a:?}");
    assert_ne!(a[0]["status"], "success");
    let survivor = cluster.worker("b.db", 1, &[("MARKS", dir), ("WORKER", "b")]);
    // The redelivery finds the event the throttle let through: it runs again, once.
    wait_until(Duration::from_secs(30), "the page's second attempt", || {
        runs_of(&[cluster.history("b.db")], "page").len() == 1
    });
    // A new alert of the key is suppressed: the key's state survived the kill.
    queue
        .push(
            &[reading("alert-2", "alert", json!({"alert": "DiskFull"}))],
            None,
        )
        .unwrap();
    wait_until(Duration::from_secs(30), "the second alert taken", || {
        queue.depth() == Some(0)
    });
    std::thread::sleep(Duration::from_millis(500));
    stop(survivor);
    assert_eq!(paged(), "a\nb\n");
    let all = [cluster.history("a.db"), cluster.history("b.db")];
    let pages = runs_of(&all, "page");
    assert_eq!(pages.len(), 1, "{pages:?}");
    assert_eq!(pages[0]["event_id"], "alert-1");
    let listed: Value = serde_json::from_str(&cluster.vane(&["gates", "--json"])).unwrap();
    assert_eq!(listed["gates"][0]["suppressed"], 1, "{listed}");
}

#[test]
fn a_correlation_whose_members_land_on_two_workers_at_once_runs_once_per_key() {
    let ship = "version: 1\nname: ship\non:\n  ci: {}\n  approved: {}\ncorrelate:\n  key: \"{{ event.data.sha }}\"\n  within: 1h\n  all-of:\n    ci: { on: ci }\n    approved: { on: approved }\nsteps:\n  - run: \"true\"\n";
    let cluster = Cluster::new("", "", &[("ship.yaml", ship)]);
    let queue = cluster.queue();
    let (first, second) = cluster.two_workers(4, &[]);
    // Both members of 20 commits, pushed together: the two events of a commit are decided at
    // once, often on different workers.
    let items: Vec<QueueItem> = (0..20)
        .flat_map(|sha| {
            ["ci", "approved"].map(|kind| {
                reading(
                    &format!("{kind}-{sha}"),
                    kind,
                    json!({"sha": format!("c{sha}")}),
                )
            })
        })
        .collect();
    queue.push(&items, None).unwrap();
    wait_until(Duration::from_secs(60), "every event taken", || {
        queue.depth() == Some(0)
    });
    std::thread::sleep(Duration::from_millis(500));
    stop(first);
    stop(second);
    let all = [cluster.history("a.db"), cluster.history("b.db")];
    let ships = runs_of(&all, "ship");
    assert_eq!(ships.len(), 20, "one run per commit: {ships:?}");
    assert!(
        all.iter().all(|store| !store.is_empty()),
        "both workers completed correlations"
    );
    let listed: Value = serde_json::from_str(&cluster.vane(&["gates", "--json"])).unwrap();
    assert_eq!(
        listed["gates"],
        json!([]),
        "every correlation closed: {listed}"
    );
}

#[test]
fn a_window_counts_every_event_decided_on_two_workers_at_once() {
    let marks = tempfile::tempdir().unwrap();
    let rate = "version: 1\nname: rate\non:\n  alert: {}\nwindow:\n  key: \"{{ event.data.alert }}\"\n  within: 1h\n  count: 40\nsteps:\n  - run: echo \"{{ gate.window.count }}\" >> \"$MARKS/rate\"\n";
    let cluster = Cluster::new("", "", &[("rate.yaml", rate), ("seen.yaml", SEEN)]);
    let queue = cluster.queue();
    let env = [("MARKS", marks.path().to_str().unwrap())];
    let (first, second) = cluster.two_workers(4, &env);
    // 40 events of one key at once: a count lost to two workers writing over each other would
    // never reach 40.
    let items: Vec<QueueItem> = (0..40)
        .map(|index| reading(&format!("e-{index}"), "alert", json!({"alert": "5xx"})))
        .collect();
    queue.push(&items, None).unwrap();
    wait_until(Duration::from_secs(60), "40 events taken", || {
        runs_of(&[cluster.history("a.db"), cluster.history("b.db")], "seen").len() >= 40
    });
    std::thread::sleep(Duration::from_millis(500));
    stop(first);
    stop(second);
    let all = [cluster.history("a.db"), cluster.history("b.db")];
    assert!(
        all.iter()
            .all(|store| store.iter().any(|run| run["workflow"] == "seen")),
        "both workers took events"
    );
    assert_eq!(runs_of(&all, "rate").len(), 1);
    assert_eq!(
        std::fs::read_to_string(marks.path().join("rate")).unwrap(),
        "40\n"
    );
}
