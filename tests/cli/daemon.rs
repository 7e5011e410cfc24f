//! The daemon's guarantees under faults (`docs/daemon.md`): vane as PID 1 killed and restarted,
//! emit fan-out, a broker or a disk that fails, slow and idle clients, what is kept and pruned.

use crate::support::{fixture, spawn_serve_under};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

const SECRET: &str = "It's a Secret to Everybody";

/// A project serving GitHub webhooks into `workflow`, with `extra` appended to vane.yaml.
fn project(workflow: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    std::fs::write(dir.path().join("workflows/on-push.yaml"), workflow).unwrap();
    std::fs::write(
        dir.path().join("vane.yaml"),
        format!(
            "version: 1\nserve:\n  webhooks:\n    github: {{ secret: {{ env: HOOK_SECRET }} }}\n{extra}"
        ),
    )
    .unwrap();
    dir
}

/// A running daemon (under `wrapper`), killed when dropped.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start(dir: &Path, wrapper: &[&str], env: &[(&str, &str)]) -> Serve {
        let mut env = env.to_vec();
        env.push(("HOOK_SECRET", SECRET));
        let (child, url) = spawn_serve_under(wrapper, dir, &[], &env);
        Serve { child, url }
    }

    /// The vane process: the wrapper's only child, or the child itself.
    fn vane_pid(&self, wrapped: bool) -> u32 {
        if !wrapped {
            return self.child.id();
        }
        let pid = self.child.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
        children.split_whitespace().next().unwrap().parse().unwrap()
    }

    fn wait(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn post(url: &str, delivery: &str, payload: &[u8]) -> Result<u16, reqwest::Error> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    client
        .post(format!("{url}/hooks/github"))
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", delivery)
        .header(
            "X-Hub-Signature-256",
            vane::serve::sign(SECRET.as_bytes(), payload),
        )
        .header("Content-Type", "application/json")
        .body(payload.to_vec())
        .send()
        .map(|response| response.status().as_u16())
}

fn signal(pid: u32, name: &str) {
    std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
}

fn state(dir: &Path) -> PathBuf {
    dir.join(".vane/state.db")
}

/// One number from the store (0 where it does not exist yet).
fn count(dir: &Path, sql: &str) -> i64 {
    count_in(&state(dir), sql)
}

fn count_in(db: &Path, sql: &str) -> i64 {
    if !db.exists() {
        return 0;
    }
    let connection = rusqlite::Connection::open(db).unwrap();
    connection.query_row(sql, [], |row| row.get(0)).unwrap()
}

fn strings(dir: &Path, sql: &str) -> Vec<String> {
    strings_in(&state(dir), sql)
}

fn strings_in(db: &Path, sql: &str) -> Vec<String> {
    let connection = rusqlite::Connection::open(db).unwrap();
    let mut statement = connection.prepare(sql).unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const PID_1: &[&str] = &["unshare", "--pid", "--fork", "--mount-proc"];

#[test]
fn vane_as_pid_1_killed_under_load_and_restarted_runs_every_accepted_delivery() {
    let dir = project(
        "version: 1\nname: on-push\non: { push: {} }\nsteps:\n  - run: sleep 0.1; echo ran $$\n",
        "",
    );
    let payload = std::fs::read(fixture("github/push.branch.json")).unwrap();
    let daemon = Serve::start(dir.path(), PID_1, &[]);
    let pid = daemon.vane_pid(true);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let namespace_pid = status
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))
        .and_then(|ids| ids.split_whitespace().last())
        .unwrap()
        .to_string();
    assert_eq!(namespace_pid, "1", "vane runs as PID 1 in its namespace");
    // Four senders until the kill: whatever got 202 must run.
    let stop_at = Instant::now() + Duration::from_millis(1500);
    let senders: Vec<_> = (0..4)
        .map(|thread| {
            let (url, payload) = (daemon.url.clone(), payload.clone());
            std::thread::spawn(move || {
                let mut accepted = Vec::new();
                for index in 0.. {
                    let delivery = format!("pid1-{thread}-{index}");
                    match post(&url, &delivery, &payload) {
                        Ok(202) => accepted.push(delivery),
                        Ok(status) => panic!("unexpected {status}"),
                        Err(_) => break,
                    }
                    if Instant::now() > stop_at + Duration::from_secs(2) {
                        break;
                    }
                }
                accepted
            })
        })
        .collect();
    std::thread::sleep(stop_at.saturating_duration_since(Instant::now()));
    let mut daemon = daemon;
    signal(pid, "KILL");
    assert!(daemon.wait(Duration::from_secs(10)).is_some());
    let accepted: Vec<String> = senders
        .into_iter()
        .flat_map(|sender| sender.join().unwrap())
        .collect();
    let left = count(dir.path(), "SELECT count(*) FROM queue");
    let claimed = count(
        dir.path(),
        "SELECT count(*) FROM queue WHERE claimed_pid IS NOT NULL",
    );
    eprintln!(
        "killed: {} accepted, {left} queued ({claimed} claimed)",
        accepted.len()
    );
    assert!(claimed > 0, "the kill left claimed events behind");
    // The same way again: another PID 1.
    let mut daemon = Serve::start(dir.path(), PID_1, &[]);
    wait_for("the queue to drain", Duration::from_secs(60), || {
        count(dir.path(), "SELECT count(*) FROM queue") == 0
    });
    assert_eq!(
        count(
            dir.path(),
            "SELECT count(*) FROM runs WHERE status = 'running'"
        ),
        0,
        "no run stays `running`"
    );
    signal(daemon.vane_pid(true), "TERM");
    assert_eq!(daemon.wait(Duration::from_secs(20)), Some(0));
    let ran = strings(
        dir.path(),
        "SELECT event_id FROM runs WHERE status = 'success'",
    );
    for delivery in &accepted {
        assert!(ran.contains(delivery), "accepted {delivery} never ran");
    }
}

/// Six `emit` steps, each re-emitting the event they ran for: 6^8 events without a bound.
const FAN_OUT: &str = "version: 1
name: fan
on: { fan: {} }
steps:
  - emit: { type: fan, data: { n: 1 } }
  - emit: { type: fan, data: { n: 2 } }
  - emit: { type: fan, data: { n: 3 } }
  - emit: { type: fan, data: { n: 4 } }
  - emit: { type: fan, data: { n: 5 } }
  - emit: { type: fan, data: { n: 6 } }
";

#[test]
fn one_inputs_emitted_events_are_bounded_and_the_run_beyond_the_bound_fails() {
    let run = crate::support::Vane::new()
        .workflow("fan.yaml", FAN_OUT)
        .args(&["run", "--state", "state.db", "--max-emitted", "5"])
        .stdin(r#"{"type":"fan","source":"test","data":{}}"#)
        .run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let dir = run.dir.clone();
    let connection = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    let runs: i64 = connection
        .query_row("SELECT count(*) FROM runs", [], |row| row.get(0))
        .unwrap();
    // The input's run and the 5 events it emitted; the 6th emit failed the first run.
    assert_eq!(runs, 6);
    let error: String = connection
        .query_row(
            "SELECT error FROM steps WHERE error IS NOT NULL LIMIT 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(
        error.contains(
            "emit: the input event has already caused 5 emitted events (`--max-emitted`, \
             `max-emitted` in vane.yaml); `fan` is not emitted"
        ),
        "{error}"
    );
}

#[test]
fn a_fan_out_under_serve_is_bounded_by_default_and_sigterm_stops_it_within_seconds() {
    let dir = project(FAN_OUT, "");
    std::fs::write(
        dir.path().join("workflows/on-push.yaml"),
        "version: 1\nname: on-push\non: { push: {} }\nsteps:\n  - emit: { type: fan }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("workflows/fan.yaml"), FAN_OUT).unwrap();
    let payload = std::fs::read(fixture("github/push.branch.json")).unwrap();
    let mut daemon = Serve::start(dir.path(), &[], &[]);
    assert_eq!(post(&daemon.url, "fan-1", &payload).unwrap(), 202);
    // The push's run, the `fan` it emitted, and 999 more: 1,000 emitted in all, and no more.
    wait_for("the cascade to end", Duration::from_secs(120), || {
        count(
            dir.path(),
            "SELECT count(*) FROM runs WHERE status != 'running'",
        ) >= 1001
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(count(dir.path(), "SELECT count(*) FROM runs"), 1001);
    assert!(
        count(
            dir.path(),
            "SELECT count(*) FROM steps WHERE error LIKE '%has already caused 1000 emitted events%'"
        ) > 0
    );
    // A second cascade, stopped in the middle.
    assert_eq!(post(&daemon.url, "fan-2", &payload).unwrap(), 202);
    wait_for(
        "the second cascade to start",
        Duration::from_secs(60),
        || count(dir.path(), "SELECT count(*) FROM runs") > 1050,
    );
    let stopping = Instant::now();
    signal(daemon.child.id(), "TERM");
    assert_eq!(daemon.wait(Duration::from_secs(30)), Some(0));
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(10), "SIGTERM took {took:?}");
    assert!(count(dir.path(), "SELECT count(*) FROM runs") <= 2002);
}

#[test]
fn delivery_ids_and_run_payloads_are_forgotten_after_their_windows() {
    let dir = project(
        "version: 1\nname: on-push\non: { push: {} }\nsteps:\n  - run: echo ran\n",
        "  dedup-window: 2s\n  payload-retention: 2s\n",
    );
    let payload = std::fs::read(fixture("github/push.branch.json")).unwrap();
    let daemon = Serve::start(dir.path(), &[], &[]);
    assert_eq!(post(&daemon.url, "old-1", &payload).unwrap(), 202);
    assert_eq!(post(&daemon.url, "old-1", &payload).unwrap(), 200);
    wait_for("the run", Duration::from_secs(30), || {
        count(
            dir.path(),
            "SELECT count(*) FROM runs WHERE status = 'success'",
        ) == 1
    });
    assert_eq!(count(dir.path(), "SELECT count(*) FROM deliveries"), 1);
    assert_eq!(
        count(
            dir.path(),
            "SELECT count(*) FROM runs WHERE json_extract(event, '$.data') IS NOT NULL"
        ),
        1
    );
    wait_for("the pruning", Duration::from_secs(15), || {
        count(dir.path(), "SELECT count(*) FROM deliveries") == 0
            && count(
                dir.path(),
                "SELECT count(*) FROM runs WHERE json_extract(event, '$.data') IS NULL \
                 AND json_extract(event, '$.payload_pruned') = 1",
            ) == 1
    });
    // Past the window the id is new again.
    assert_eq!(post(&daemon.url, "old-1", &payload).unwrap(), 202);
    drop(daemon);
    let run = strings(
        dir.path(),
        "SELECT id FROM runs WHERE json_extract(event, '$.payload_pruned') = 1",
    );
    let replay = crate::support::Vane::new()
        .args(&[
            "replay",
            &run[0],
            "--state",
            state(dir.path()).to_str().unwrap(),
        ])
        .run();
    assert_eq!(replay.code(), 2, "{}", replay.stderr());
    assert!(
        replay
            .stderr()
            .contains("its event's payload was removed after `serve.payload-retention`"),
        "{}",
        replay.stderr()
    );
}

const ECHO: &str = "version: 1\nname: on-push\non: { push: {} }\nsteps:\n  - run: echo ran\n";

/// Whether the server closed `stream` (read end of file, or a reset) within its read timeout.
fn closed_by_server(stream: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    let mut buffer = [0u8; 256];
    match stream.read(&mut buffer) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => !matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn idle_connections_are_capped_and_timed_out_and_the_webhook_stays_reachable() {
    use std::io::{Read, Write};
    let dir = project(ECHO, "  max-connections: 8\n  header-timeout: 1s\n");
    let daemon = Serve::start(dir.path(), &[], &[]);
    let address = daemon.url.trim_start_matches("http://").to_string();
    // Eight connections that never send a byte take every slot.
    let mut idle: Vec<std::net::TcpStream> = (0..8)
        .map(|_| std::net::TcpStream::connect(&address).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // The ninth is answered 503 at once, not left waiting.
    let started = Instant::now();
    let mut ninth = std::net::TcpStream::connect(&address).unwrap();
    ninth
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    ninth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: vane\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = ninth.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer:?}");
    assert!(
        answer.contains("too many connections; retry later"),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // The idle ones are closed after the header timeout (1 s), which frees their slots.
    for stream in &mut idle {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert!(closed_by_server(stream), "an idle connection stayed open");
    }
    let payload = std::fs::read(fixture("github/push.branch.json")).unwrap();
    assert_eq!(post(&daemon.url, "reachable-1", &payload).unwrap(), 202);
    // A request whose headers stop half-way is cut off too.
    let mut slow = std::net::TcpStream::connect(&address).unwrap();
    slow.write_all(b"POST /hooks/github HTTP/1.1\r\nHost: vane\r\nX-GitHub-")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let cut = Instant::now();
    assert!(closed_by_server(&mut slow));
    assert!(cut.elapsed() < Duration::from_secs(4));
    let metrics = reqwest::blocking::get(format!("{}/metrics", daemon.url))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("vane_connections_refused_total 1"),
        "{metrics}"
    );
}

/// A NATS server with JetStream of the test's own (the shared one must stay up), on `port`,
/// storing in `store`; killed when dropped.
struct Nats {
    child: Child,
}

impl Nats {
    fn start(port: u16, store: &Path) -> Nats {
        let child = std::process::Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server runs");
        wait_for("nats-server to listen", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Nats { child }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many messages the queue's stream on the broker at `port` holds (waiting or running).
fn stream_messages(port: u16) -> Option<u64> {
    let broker = vane::broker::JetStream::connect(&format!("nats://127.0.0.1:{port}")).ok()?;
    vane::broker::runtime().block_on(async {
        let mut stream = broker.context.get_stream("VANE_EVENTS").await.ok()?;
        stream.info().await.ok().map(|info| info.state.messages)
    })
}

/// `/healthz`: its status, its body, and how long it took.
fn health(url: &str) -> (u16, serde_json::Value, Duration) {
    let started = Instant::now();
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .get(format!("{url}/healthz"))
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let body = response.json().unwrap();
    (status, body, started.elapsed())
}

#[test]
fn with_the_broker_down_healthz_says_degraded_at_once_and_a_retried_503_runs_once() {
    let port = crate::support::free_port();
    let broker_store = tempfile::tempdir().unwrap();
    let broker = Nats::start(port, broker_store.path());
    let dir = project(ECHO, &format!("queue: nats://127.0.0.1:{port}\n"));
    let daemon = Serve::start(dir.path(), &[], &[]);
    let (status, body, _) = health(&daemon.url);
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let payload = std::fs::read(fixture("github/push.branch.json")).unwrap();
    assert_eq!(post(&daemon.url, "up-1", &payload).unwrap(), 202);
    wait_for("the run", Duration::from_secs(30), || {
        count(
            dir.path(),
            "SELECT count(*) FROM runs WHERE status = 'success'",
        ) == 1
    });
    drop(broker);
    // Degraded, said at once, with the reason.
    let mut last = (0, serde_json::Value::Null);
    wait_for("healthz to say degraded", Duration::from_secs(15), || {
        let (status, body, took) = health(&daemon.url);
        assert!(took < Duration::from_secs(3), "healthz took {took:?}");
        last = (status, body);
        last.0 == 503
    });
    assert_eq!(last.1["status"], "degraded");
    let reason = last.1["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!(
            "the NATS server nats://127.0.0.1:{port} is not connected"
        )),
        "{reason}"
    );
    // A delivery now is answered 503 (the queue cannot confirm it).
    assert_eq!(post(&daemon.url, "down-1", &payload).unwrap(), 503);
    // The broker is back: the sender's retry of that delivery runs it once.
    let _broker = Nats::start(port, broker_store.path());
    wait_for("healthz to say ok", Duration::from_secs(30), || {
        health(&daemon.url).0 == 200
    });
    let retried = post(&daemon.url, "down-1", &payload).unwrap();
    assert!(retried == 202 || retried == 200, "{retried}");
    wait_for("the retried run", Duration::from_secs(30), || {
        count(
            dir.path(),
            "SELECT count(*) FROM runs WHERE event_id = 'down-1' AND status = 'success'",
        ) >= 1
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        count(
            dir.path(),
            "SELECT count(*) FROM runs WHERE event_id = 'down-1'"
        ),
        1
    );
}

/// A broker killed and restarted while a worker runs events: when it is back it hands out again
/// the events it had handed out — while the worker still runs them, or after their runs are
/// recorded, its acks lost. None of them runs twice.
#[test]
fn a_broker_killed_and_restarted_under_load_makes_no_event_run_twice() {
    let port = crate::support::free_port();
    let broker_store = tempfile::tempdir().unwrap();
    let broker = Nats::start(port, broker_store.path());
    let slow = "version: 1\nname: on-push\non: { push: {} }\nsteps:\n  - run: sleep 4\n";
    let dir = project(
        slow,
        &format!("queue: nats://127.0.0.1:{port}\njetstream:\n  ack-wait: 2s\n"),
    );
    let daemon = Serve::start(dir.path(), &[], &[("VANE_PARALLEL", "8")]);
    let payload = std::fs::read(fixture("github/push.branch.json")).unwrap();
    const EVENTS: i64 = 24;
    for n in 0..EVENTS {
        assert_eq!(post(&daemon.url, &format!("d-{n}"), &payload).unwrap(), 202);
    }
    wait_for("eight runs at once", Duration::from_secs(60), || {
        count(
            dir.path(),
            "SELECT count(*) FROM runs WHERE status = 'running'",
        ) >= 8
    });
    // JetStream confirms a publish before its write reaches the file (the broker's own
    // durability, not vane's): a kill -9 right after the last publish can lose it. Give the
    // broker the time to write what it confirmed.
    std::thread::sleep(Duration::from_secs(1));
    drop(broker);
    // Down for longer than `ack-wait`, while the runs go on.
    std::thread::sleep(Duration::from_secs(3));
    let _broker = Nats::start(port, broker_store.path());
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(
        dir.path(),
        "SELECT count(DISTINCT event_id) FROM runs WHERE status = 'success'",
    ) < EVENTS
    {
        assert!(
            Instant::now() < deadline,
            "not every event ran: {:?}; messages in the stream: {:?}",
            strings(
                dir.path(),
                "SELECT event_id || ' ' || status FROM runs ORDER BY event_id"
            ),
            stream_messages(port)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Redeliveries of the last ones have time to arrive and run.
    std::thread::sleep(Duration::from_secs(8));
    let twice = strings(
        dir.path(),
        "SELECT event_id || ' ' || count(*) FROM runs GROUP BY event_id HAVING count(*) > 1",
    );
    assert_eq!(twice, Vec::<String>::new(), "events run more than once");
    assert_eq!(count(dir.path(), "SELECT count(*) FROM runs"), EVENTS);
}

/// A small tmpfs mounted on a fresh folder (as root), unmounted when dropped: a disk that fills.
struct SmallDisk {
    path: PathBuf,
    _folder: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs needs root");
        SmallDisk {
            path,
            _folder: folder,
        }
    }

    /// Writes a filler file until the disk is full.
    fn fill(&self) {
        use std::io::Write;
        let mut filler = std::fs::File::create(self.path.join("filler")).unwrap();
        let chunk = vec![b'x'; 16 * 1024];
        while filler.write_all(&chunk).is_ok() {}
        let _ = filler.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.path.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_worker_whose_store_is_full_takes_no_work_until_it_can_record_and_runs_nothing_twice() {
    let disk = SmallDisk::mount("4m");
    let outside = tempfile::tempdir().unwrap();
    let ran = outside.path().join("ran.log");
    // Each run writes 200 kB of output (its 64 KiB tail is recorded), then says it ran.
    let dir = project(
        &format!(
            "version: 1\nname: on-push\non: {{ push: {{}} }}\nsteps:\n  - run: sleep 1; head -c 200000 /dev/zero | tr '\\0' v; echo {{{{ event.id }}}} >> {}\n",
            ran.display()
        ),
        &format!("state: {}\n", disk.path.join("state.db").display()),
    );
    let db = disk.path.join("state.db");
    let payload = std::fs::read(fixture("github/push.branch.json")).unwrap();
    let (child, url) =
        crate::support::spawn_serve(dir.path(), &["--parallel", "1"], &[("HOOK_SECRET", SECRET)]);
    let mut daemon = Serve { child, url };
    let deliveries: Vec<String> = (0..4).map(|index| format!("full-{index}")).collect();
    for delivery in &deliveries {
        assert_eq!(post(&daemon.url, delivery, &payload).unwrap(), 202);
    }
    disk.fill();
    // The first run cannot be recorded: the daemon says so and takes nothing more.
    let mut reason = String::new();
    wait_for("healthz to say degraded", Duration::from_secs(20), || {
        let (status, body, _) = health(&daemon.url);
        reason = body["reason"].as_str().unwrap_or_default().to_string();
        status == 503
    });
    assert!(
        reason.starts_with("the state store cannot be written ("),
        "{reason}"
    );
    let metrics = reqwest::blocking::get(format!("{}/metrics", daemon.url))
        .unwrap()
        .text()
        .unwrap();
    assert!(metrics.contains("vane_intake_paused 1"), "{metrics}");
    let before = lines(&ran);
    std::thread::sleep(Duration::from_secs(3));
    let during = lines(&ran);
    assert_eq!(before, during, "events ran while nothing could be recorded");
    assert!(during.len() < deliveries.len(), "{during:?}");
    // Room again: the worker records what it ran and takes the rest.
    disk.free();
    wait_for("every delivery to run", Duration::from_secs(60), || {
        lines(&ran).len() >= deliveries.len()
    });
    wait_for("the queue to empty", Duration::from_secs(30), || {
        count_in(&db, "SELECT count(*) FROM queue") == 0
    });
    wait_for("healthz to say ok", Duration::from_secs(10), || {
        health(&daemon.url).0 == 200
    });
    signal(daemon.child.id(), "TERM");
    assert_eq!(daemon.wait(Duration::from_secs(20)), Some(0));
    let mut all = lines(&ran);
    all.sort();
    assert_eq!(all, deliveries, "each delivery ran once");
    let recorded = strings_in(
        &db,
        "SELECT event_id FROM runs WHERE status = 'success' ORDER BY event_id",
    );
    assert_eq!(recorded, deliveries);
}
