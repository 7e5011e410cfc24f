//! `publish` steps end to end: MQTT QoS 1 to a mosquitto and JetStream to a nats-server, each of
//! the test's own (so that it can be restarted mid-run), with a subscriber started by the test;
//! request-reply and no responders against the shared NATS on 127.0.0.1:4222.

use crate::alertmanager::{Process, wait_for};
use crate::support::{Vane, free_port, workflow_entry};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn mosquitto(dir: &Path, port: u16) -> Process {
    // Started as root, mosquitto runs as its own user: it must be able to save its sessions here.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let config = dir.join("mosquitto.conf");
    std::fs::write(
        &config,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n",
            dir.display()
        ),
    )
    .unwrap();
    let child = Command::new("/usr/sbin/mosquitto")
        .args(["-c", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto runs");
    wait_for("mosquitto to listen", Duration::from_secs(10), || {
        listening(port)
    });
    Process(child)
}

fn nats_server(dir: &Path, port: u16) -> Process {
    let child = Command::new("/usr/sbin/nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server runs");
    wait_for("nats-server to listen", Duration::from_secs(10), || {
        listening(port)
    });
    Process(child)
}

/// The steps of the only run of workflow `publish`.
fn steps(stdout: &str) -> Vec<Value> {
    let line: Value = serde_json::from_str(stdout.lines().next().unwrap_or("{}")).unwrap();
    workflow_entry(&line, "publish")["run"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A `vane run --json` of one `ping` event, started now in the background.
fn run_in_background(vane: &Vane) -> std::thread::JoinHandle<std::process::Output> {
    let mut command = vane.command();
    command
        .args(["run", "--json"])
        .write_stdin(json!({"type": "ping", "data": {"id": "th-1"}}).to_string());
    std::thread::spawn(move || command.output().expect("vane runs"))
}

#[test]
fn mqtt_qos1_retried_across_a_broker_restart_is_received_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut broker = Some(mosquitto(dir.path(), port));
    let topic = format!("devices/th-{}/commands", uuid::Uuid::new_v4().simple());
    // A persistent subscriber (clean session off): the broker keeps its subscription and its
    // messages across the restart, and mosquitto_sub reconnects by itself.
    let mut subscriber = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-c"])
        .args(["-i", &format!("sub-{}", &topic[12..20]), "-t", &topic])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto_sub runs");
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let received = Arc::clone(&received);
        let stdout = subscriber.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                received.lock().unwrap().push(line);
            }
        });
    }
    let _subscriber = Process(subscriber);
    std::thread::sleep(Duration::from_millis(500));
    // The broker goes away before the step runs (stopped as a service is: SIGTERM, its sessions
    // saved), and comes back while the step retries.
    if let Some(mut stopping) = broker.take() {
        Command::new("kill")
            .args(["-TERM", &stopping.0.id().to_string()])
            .status()
            .unwrap();
        let _ = stopping.0.wait();
    }
    let vane = Vane::new().workflow(
        "publish.yaml",
        &format!(
            "version: 1\nname: publish\non: {{ ping: {{}} }}\nsteps:\n  - id: command\n    \
             retry: {{ attempts: 10, backoff: 500ms, factor: 1 }}\n    publish:\n      mqtt:\n        \
             url: mqtt://127.0.0.1:{port}\n        topic: {topic}\n        qos: 1\n        \
             payload: {{ command: reboot, device: \"{{{{ event.data.id }}}}\" }}\n"
        ),
    );
    let started = Instant::now();
    let run = run_in_background(&vane);
    std::thread::sleep(Duration::from_millis(1500));
    broker = Some(mosquitto(dir.path(), port));
    let output = run.join().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let step = &steps(&stdout)[0];
    assert_eq!(step["outputs"]["published"], true, "{step}");
    assert!(started.elapsed() > Duration::from_secs(1));
    wait_for(
        "the subscriber to get the command",
        Duration::from_secs(20),
        || !received.lock().unwrap().is_empty(),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        *received.lock().unwrap(),
        vec![r#"{"command":"reboot","device":"th-1"}"#.to_string()]
    );
    drop(broker);
}

fn nats_client(url: &str) -> async_nats::Client {
    vane::broker::runtime()
        .block_on(async_nats::connect(url))
        .expect("NATS connects")
}

#[test]
fn jetstream_publish_retried_across_a_server_restart_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let mut server = Some(nats_server(dir.path(), port));
    let stream = format!("PUB{}", uuid::Uuid::new_v4().simple());
    let subject = format!("commands.{}", stream.to_lowercase());
    let runtime = vane::broker::runtime();
    let _inside = runtime.enter();
    {
        let client = nats_client(&url);
        let context = async_nats::jetstream::new(client);
        runtime
            .block_on(
                context.create_stream(async_nats::jetstream::stream::Config {
                    name: stream.clone(),
                    subjects: vec![format!("{subject}.>")],
                    duplicate_window: Duration::from_secs(120),
                    ..Default::default()
                }),
            )
            .expect("the stream is created");
    }
    drop(server.take());
    let vane = Vane::new().workflow(
        "publish.yaml",
        &format!(
            "version: 1\nname: publish\non: {{ ping: {{}} }}\nsteps:\n  - id: command\n    \
             retry: {{ attempts: 10, backoff: 500ms, factor: 1 }}\n    publish:\n      nats:\n        \
             url: {url}\n        subject: {subject}.th-1\n        jetstream: true\n        \
             headers: {{ Device: \"{{{{ event.data.id }}}}\" }}\n        payload: reboot\n"
        ),
    );
    let run = run_in_background(&vane);
    std::thread::sleep(Duration::from_millis(1500));
    server = Some(nats_server(dir.path(), port));
    let output = run.join().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let step = &steps(&stdout)[0];
    let outputs = &step["outputs"];
    assert_eq!(outputs["published"], true, "{step}");
    assert_eq!(outputs["stream"], stream.as_str());
    assert_eq!(outputs["duplicate"], false);
    let message_id = outputs["message_id"].as_str().unwrap().to_string();
    assert!(message_id.ends_with("-steps[0]"), "{message_id}");

    // The same run and step publishing again (a retry whose PubAck was lost) is a duplicate the
    // stream drops.
    let client = nats_client(&url);
    let context = async_nats::jetstream::new(client);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", message_id.as_str());
    let ack = runtime
        .block_on(async {
            context
                .publish_with_headers(format!("{subject}.th-1"), headers, "reboot".into())
                .await
                .unwrap()
                .await
        })
        .unwrap();
    assert!(ack.duplicate);
    let info = runtime
        .block_on(async {
            let mut handle = context.get_stream(&stream).await.unwrap();
            handle.info().await.map(|info| info.state.messages)
        })
        .unwrap();
    assert_eq!(info, 1, "exactly one message in the stream");
    let stored = runtime
        .block_on(async {
            let handle = context.get_stream(&stream).await.unwrap();
            handle.get_raw_message(1).await
        })
        .unwrap();
    assert_eq!(&stored.payload[..], b"reboot");
    assert_eq!(
        stored.headers.get("Device").map(|value| value.as_str()),
        Some("th-1")
    );
    drop(server);
}

#[test]
fn request_reply_gets_the_responders_answer_and_no_responders_fails_fast() {
    let subject = format!("devices.{}.commands", uuid::Uuid::new_v4().simple());
    let runtime = vane::broker::runtime();
    let client = nats_client("nats://127.0.0.1:4222");
    let mut requests = runtime.block_on(client.subscribe(subject.clone())).unwrap();
    let responder = client.clone();
    runtime.spawn(async move {
        use futures_util::StreamExt;
        while let Some(message) = requests.next().await {
            if let Some(reply) = message.reply {
                let answer = format!("ok {}", String::from_utf8_lossy(&message.payload));
                let _ = responder.publish(reply, answer.into()).await;
                let _ = responder.flush().await;
            }
        }
    });
    runtime.block_on(client.flush()).unwrap();
    let workflow = |subject: &str| {
        format!(
            "version: 1\nname: publish\non: {{ ping: {{}} }}\nsteps:\n  - id: command\n    \
             publish:\n      nats: {{ url: \"nats://127.0.0.1:4222\", subject: \"{subject}\", \
             payload: \"reboot {{{{ event.data.id }}}}\" }}\n      request: {{ timeout: 5s }}\n  \
             - run: echo \"device said {{{{ steps.command.outputs.reply }}}}\"\n"
        )
    };
    let vane = Vane::new().workflow("publish.yaml", &workflow(&subject));
    let output = run_in_background(&vane).join().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let replied = steps(&stdout);
    assert_eq!(replied[0]["outputs"]["reply"], "ok reboot th-1");
    assert_eq!(
        replied[1]["outputs"]["stdout"],
        "device said ok reboot th-1"
    );

    // Nothing subscribed: NATS says "no responders" at once, well before the 5s timeout.
    let nobody = format!("devices.{}.commands", uuid::Uuid::new_v4().simple());
    let vane = Vane::new().workflow("publish.yaml", &workflow(&nobody));
    let started = Instant::now();
    let output = run_in_background(&vane).join().unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let error = steps(&stdout)[0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("no responders on"), "{stdout}");
    // The whole `vane run` (process start included) is far from the 5s reply timeout.
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[test]
fn validate_warns_on_a_retained_command() {
    let run = Vane::new()
        .workflow(
            "publish.yaml",
            "version: 1\nname: publish\non: { ping: {} }\nsteps:\n  - publish:\n      mqtt:\n        \
             url: mqtt://127.0.0.1:1883\n        topic: devices/th-1/commands\n        retain: true\n        \
             payload: reboot\n",
        )
        .args(&["validate"])
        .run();
    let output = format!("{}{}", run.stdout(), run.stderr());
    assert!(
        output.contains(
            "publish.yaml:9:17: warning: `retain: true` on `devices/th-1/commands`, a command topic"
        ),
        "{output}"
    );
}
