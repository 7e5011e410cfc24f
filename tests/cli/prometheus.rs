//! The `prometheus` source against a real Prometheus (Debian's `prometheus`) of the test's own,
//! scraping a tiny exporter the test serves every second: a value moved over its threshold is one
//! `crossing` event, an empty result is an error event (not a zero), `emit: changed` is quiet
//! while nothing changes.

use crate::alertmanager::{Process, wait_for};
use crate::poll::{Project, events};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// An exporter serving `vane_test_load{service="api"} <value>`, the value settable.
pub fn exporter() -> (
    String,
    Arc<AtomicU64>,
    std::sync::mpsc::Receiver<crate::support::Request>,
) {
    let value = Arc::new(AtomicU64::new(0f64.to_bits()));
    let shared = Arc::clone(&value);
    let (url, requests) = crate::support::http_server(move |_| {
        let value = f64::from_bits(shared.load(Ordering::SeqCst));
        (
            200,
            vec![("Content-Type", "text/plain; version=0.0.4".to_string())],
            format!("# TYPE vane_test_load gauge\nvane_test_load{{service=\"api\"}} {value}\n"),
        )
    });
    (url, value, requests)
}

/// A Prometheus on an ephemeral port scraping `target` (`127.0.0.1:PORT`) every second.
pub fn prometheus(dir: &Path, target: &str) -> (Process, String) {
    let port = crate::support::free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\nscrape_configs:\n  - \
             job_name: exporter\n    static_configs: [{{ targets: [\"{target}\"] }}]\n"
        ),
    )
    .unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus runs (apt-get install prometheus)");
    let process = Process(child);
    let url = format!("http://127.0.0.1:{port}");
    wait_for("Prometheus to be ready", Duration::from_secs(30), || {
        reqwest::blocking::get(format!("{url}/-/ready"))
            .is_ok_and(|response| response.status().is_success())
    });
    (process, url)
}

/// Waits until Prometheus's own answer to `query` is `value`.
pub fn wait_for_value(prometheus: &str, query: &str, value: f64) {
    wait_for(
        &format!("Prometheus to read {query} = {value}"),
        Duration::from_secs(30),
        || {
            let answer: Value = reqwest::blocking::Client::new()
                .post(format!("{prometheus}/api/v1/query"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(format!("query={query}"))
                .send()
                .and_then(|response| response.json())
                .unwrap_or_default();
            answer["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|text| text.parse::<f64>().ok())
                == Some(value)
        },
    );
}

/// (type, action, value) of each event a poll found.
fn found(project: &Project) -> Vec<(String, String, Value)> {
    let run = project.poll();
    assert_eq!(run.code(), 0, "{}", run.stderr());
    events(&run)
        .iter()
        .map(|event| {
            (
                event["type"].as_str().unwrap_or_default().to_string(),
                event["action"].as_str().unwrap_or_default().to_string(),
                event["data"]["value"].clone(),
            )
        })
        .collect()
}

#[test]
fn a_crossing_is_one_event_an_empty_result_an_error_and_changed_is_quiet() {
    let (exporter, value, _requests) = exporter();
    value.store(5f64.to_bits(), Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let (_prometheus, prom) = prometheus(dir.path(), exporter.trim_start_matches("http://"));
    wait_for_value(&prom, "vane_test_load", 5.0);
    let project = Project::new(&format!(
        "sources:\n  - name: load-high\n    prometheus: {{ url: \"{prom}\", query: \"sum(vane_test_load)\", \
         series: one, emit: crossing, threshold: 10, hysteresis: 2 }}\n  - name: load\n    \
         prometheus: {{ url: \"{prom}\", query: vane_test_load, emit: changed }}\n  - name: missing\n    \
         prometheus: {{ url: \"{prom}\", query: vane_test_missing, series: sum, emit: changed }}\n"
    ));
    project.workflow(
        "metrics.yaml",
        "version: 1\nname: metrics\non:\n  metric.load-high: {}\n  metric.load: {}\n  \
         metric.missing.error: {}\nsteps:\n  - run: echo {{ event.type }}\n",
    );
    let first = found(&project);
    assert_eq!(
        first,
        vec![
            // Below the threshold: no crossing.
            ("metric.load".to_string(), String::new(), Value::from(5.0)),
            (
                "metric.missing.error".to_string(),
                "error".to_string(),
                Value::Null
            ),
        ]
    );
    // Nothing changed: `changed` is quiet, the same error is not repeated.
    assert_eq!(found(&project), vec![]);

    value.store(20f64.to_bits(), Ordering::SeqCst);
    wait_for_value(&prom, "vane_test_load", 20.0);
    assert_eq!(
        found(&project),
        vec![
            (
                "metric.load-high".to_string(),
                "above".to_string(),
                Value::from(20.0)
            ),
            ("metric.load".to_string(), String::new(), Value::from(20.0)),
        ]
    );
    assert_eq!(found(&project), vec![]);

    // Inside the hysteresis band (above 10 − 2): still above, no event from the crossing.
    value.store(9f64.to_bits(), Ordering::SeqCst);
    wait_for_value(&prom, "vane_test_load", 9.0);
    assert_eq!(
        found(&project),
        vec![("metric.load".to_string(), String::new(), Value::from(9.0))]
    );
    value.store(3f64.to_bits(), Ordering::SeqCst);
    wait_for_value(&prom, "vane_test_load", 3.0);
    assert_eq!(
        found(&project),
        vec![
            (
                "metric.load-high".to_string(),
                "below".to_string(),
                Value::from(3.0)
            ),
            ("metric.load".to_string(), String::new(), Value::from(3.0)),
        ]
    );
}

/// The gallery's `scale-on-prometheus` end to end: a real Prometheus's total request rate →
/// `scale` (a total, 50 per replica) → `apply`, with a stand-in `kubectl` that reports 2 replicas
/// and records what it is asked.
#[test]
fn the_gallery_scales_on_a_prometheus_query() {
    let (exporter, value, _requests) = exporter();
    value.store(120f64.to_bits(), Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let (_prometheus, prom) = prometheus(dir.path(), exporter.trim_start_matches("http://"));
    wait_for_value(&prom, "vane_test_load", 120.0);
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.path().join("kubectl.log");
    let kubectl = bin.join("kubectl");
    std::fs::write(
        &kubectl,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\n[ \"$1\" = get ] && printf 2\nexit 0\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&kubectl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let project = Project::new(&format!(
        "sources:\n  - name: api-rps\n    prometheus: {{ url: \"{prom}\", query: \"sum(vane_test_load)\", \
         series: one }}\n"
    ));
    let gallery =
        std::fs::read_to_string(crate::support::root().join("workflows/scale-on-prometheus.yaml"))
            .unwrap();
    project.workflow("scale-on-prometheus.yaml", &gallery);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = project
        .vane(&["poll", "--once", "--json"])
        .env("PATH", &path)
        .run();
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout(), run.stderr());
    let lines = run.json_lines();
    let decide =
        &crate::support::workflow_entry(&lines[0], "scale-on-prometheus")["run"]["steps"][1];
    assert_eq!(
        decide["outputs"]["reason"], "ceil(120 / 50) = 3; within [0, 20]; scale up 2 → 3",
        "{decide}"
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "get deployment/api -o jsonpath={.spec.replicas}\nscale deployment/api --replicas=3\n"
    );
}
