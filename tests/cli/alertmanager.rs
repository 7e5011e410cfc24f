//! `vane serve`'s Alertmanager receiver against a real Alertmanager (Debian's
//! `prometheus-alertmanager`) of the test's own: an alert posted to its v2 API is grouped,
//! notified to `vane serve` by its webhook receiver (bearer token), re-sent every
//! `repeat_interval`, then resolved.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "am-t0ken";

/// A process started by the test, killed when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An Alertmanager on an ephemeral port of 127.0.0.1 whose only receiver is `webhook`.
fn alertmanager(dir: &Path, webhook: &str) -> (Process, String) {
    let port = crate::support::free_port();
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: vane\n  group_by: [alertname]\n  group_wait: 1s\n  \
             group_interval: 1s\n  repeat_interval: 2s\nreceivers:\n  - name: vane\n    \
             webhook_configs:\n      - url: {webhook}\n        send_resolved: true\n        \
             http_config:\n          authorization: {{ credentials: {TOKEN} }}\n"
        ),
    )
    .unwrap();
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-alertmanager runs (apt-get install prometheus-alertmanager)");
    let process = Process(child);
    let url = format!("http://127.0.0.1:{port}");
    wait_for("Alertmanager to be ready", Duration::from_secs(20), || {
        reqwest::blocking::get(format!("{url}/-/ready"))
            .is_ok_and(|response| response.status().is_success())
    });
    (process, url)
}

fn post_alert(url: &str, labels: serde_json::Value, ends_at: Option<&str>) {
    let mut alert = serde_json::json!({
        "labels": labels,
        "annotations": {"summary": "errors above 5%"},
        "generatorURL": "http://prometheus.example/graph",
    });
    if let Some(ends_at) = ends_at {
        alert["endsAt"] = ends_at.into();
    }
    let response = reqwest::blocking::Client::new()
        .post(format!("{url}/api/v2/alerts"))
        .json(&serde_json::json!([alert]))
        .send()
        .unwrap();
    assert!(response.status().is_success(), "{:?}", response.text());
}

/// The `run` steps' output lines recorded in `log`.
fn lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn metric(serve: &str, name: &str) -> f64 {
    let text = reqwest::blocking::get(format!("{serve}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find(|line| line.starts_with(&format!("{name}{{endpoint=\"alertmanager\"}}")))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_real_alertmanager_fires_then_resolves_and_its_resends_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("alerts.log");
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    std::fs::write(
        dir.path().join("workflows/page.yaml"),
        format!(
            "version: 1\nname: page\non:\n  alert:\n    types: [firing, resolved]\n    \
             labels: {{ severity: [page, critical] }}\nsteps:\n  - run: echo \"{{{{ event.action }}}} \
             {{{{ event.subject }}}} {{{{ event.data.labels.service }}}} \
             {{{{ event.data.commonLabels.severity }}}}\" >> {}\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("vane.yaml"),
        "version: 1\nserve:\n  webhooks:\n    alertmanager:\n      auth: { bearer: { env: AM_TOKEN } }\n",
    )
    .unwrap();
    let (serve, url) = crate::support::spawn_serve(dir.path(), &[], &[("AM_TOKEN", TOKEN)]);
    let _serve = Process(serve);
    let webhook = format!("{url}/hooks/alertmanager");

    // Without the token, or with another, Alertmanager's receiver is refused.
    let client = reqwest::blocking::Client::new();
    let wrong = client
        .post(&webhook)
        .bearer_auth("not-the-token")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let none = client.post(&webhook).body("{}").send().unwrap();
    assert_eq!(none.status().as_u16(), 401);

    let (_alertmanager, am) = alertmanager(dir.path(), &webhook);
    post_alert(
        &am,
        serde_json::json!({"alertname": "HighErrorRate", "severity": "page", "service": "api"}),
        None,
    );
    // Another group whose severity the filter does not take: delivered, run by nothing.
    post_alert(
        &am,
        serde_json::json!({"alertname": "DiskFilling", "severity": "info", "service": "db"}),
        None,
    );
    wait_for("the firing alert to run", Duration::from_secs(30), || {
        !lines(&log).is_empty()
    });
    // Alertmanager re-sends the firing group every repeat_interval (2s): each re-send is a
    // duplicate delivery and runs nothing.
    wait_for("two re-sends of the group", Duration::from_secs(30), || {
        metric(&url, "vane_webhook_duplicates_total") >= 2.0
    });
    assert_eq!(
        lines(&log),
        vec!["firing HighErrorRate api page".to_string()]
    );

    // The alert ends: Alertmanager sends it resolved.
    let ended = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
    post_alert(
        &am,
        serde_json::json!({"alertname": "HighErrorRate", "severity": "page", "service": "api"}),
        Some(&ended),
    );
    wait_for("the resolved alert to run", Duration::from_secs(30), || {
        lines(&log).len() >= 2
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        lines(&log),
        vec![
            "firing HighErrorRate api page".to_string(),
            "resolved HighErrorRate api page".to_string(),
        ]
    );
    assert!(metric(&url, "vane_webhook_accepted_total") >= 2.0);
}
