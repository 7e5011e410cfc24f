//! The MQTT source, against a mosquitto of the test's own (an ephemeral port and data folder:
//! the broker is restarted mid-test, which the shared one on 1883 must never be), feeding the
//! gallery's `sensor-alert` workflow through two `vane serve` processes (a `vane worker` runs the
//! same subscriptions).

use super::nats::{history, spawn_serve, stop, wait_until};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A mosquitto on its own port, with persistence in its own folder.
struct Broker {
    port: u16,
    dir: tempfile::TempDir,
    process: Option<Child>,
}

impl Broker {
    fn start() -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let mut broker = Broker {
            port,
            dir,
            process: None,
        };
        broker.restart();
        broker
    }

    fn restart(&mut self) {
        self.kill();
        let config = self.dir.path().join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n",
                self.port,
                self.dir.path().display()
            ),
        )
        .unwrap();
        let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .unwrap_or("mosquitto");
        self.process = Some(
            Command::new(binary)
                .args(["-c", config.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("mosquitto runs (apt-get install mosquitto)"),
        );
        wait_until(Duration::from_secs(10), "mosquitto to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
    }

    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Publishes one QoS 1 message and waits for the broker's PUBACK.
    fn publish(&self, topic: &str, payload: &str) {
        let options = rumqttc::MqttOptions::new(
            format!("vane-test-{}", uuid::Uuid::new_v4()),
            "127.0.0.1",
            self.port,
        );
        let (client, mut connection) = rumqttc::Client::new(options, 10);
        client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.as_bytes())
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)))) =
                connection.recv_timeout(Duration::from_millis(200))
            {
                let _ = client.disconnect();
                return;
            }
        }
        panic!("no PUBACK for {topic}");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The successful sensor-alert runs of both workers.
fn alerts(dir: &Path) -> Vec<Value> {
    ["a.db", "b.db"]
        .iter()
        .flat_map(|state| history(dir, state))
        .filter(|run| run["workflow"] == "sensor-alert" && run["status"] == "success")
        .collect()
}

#[test]
fn a_hot_reading_alerts_once_across_two_servers_and_survives_a_broker_restart() {
    let mut broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    std::fs::copy(
        super::support::root().join("workflows/sensor-alert.yaml"),
        dir.path().join("workflows/sensor-alert.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("vane.yaml"),
        format!(
            "version: 1\nsources:\n  - name: sensors\n    mqtt: {{ url: \"mqtt://127.0.0.1:{}\", topics: [\"sensors/+/temperature\"] }}\n",
            broker.port
        ),
    )
    .unwrap();
    // Two `vane serve` processes, two sessions (their instance names), one shared subscription.
    let (first, _) = spawn_serve(dir.path(), "a.db", &[("VANE_INSTANCE", "a")]);
    let (second, _) = spawn_serve(dir.path(), "b.db", &[("VANE_INSTANCE", "b")]);
    std::thread::sleep(Duration::from_millis(1500));

    let published = chrono::Utc::now();
    broker.publish("sensors/kitchen/temperature", r#"{"value": 91}"#);
    wait_until(Duration::from_secs(10), "the alert", || {
        !alerts(dir.path()).is_empty()
    });
    // Time for a second delivery, were there one.
    std::thread::sleep(Duration::from_millis(1000));
    let runs = alerts(dir.path());
    assert_eq!(runs.len(), 1, "exactly once: {runs:?}");
    let started = chrono::DateTime::parse_from_rfc3339(runs[0]["started"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert!(
        started - published < chrono::Duration::milliseconds(1000),
        "the run started {} after the publish",
        started - published
    );

    broker.restart();
    // The servers reconnect with backoff (a few seconds at most); the next reading triggers.
    let restarted = Instant::now();
    let mut triggered = false;
    while !triggered && restarted.elapsed() < Duration::from_secs(30) {
        broker.publish("sensors/garage/temperature", "95");
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && !triggered {
            triggered = alerts(dir.path()).len() >= 2;
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert!(triggered, "no alert after the broker restart");
    stop(first);
    stop(second);
}
