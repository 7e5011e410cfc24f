//! What `vane serve` exposes on `/metrics` (Prometheus text format 0.0.4): webhook deliveries
//! received, accepted and rejected by reason, the queue's depth, runs by status and step
//! durations by kind, the build (`vane_build_info`) and the standard `process_*` metrics. One registry per process, as Prometheus clients keep it: every part of vane
//! that sees something countable adds to it, and only the daemon prints it.

use crate::engine::{EventOutcome, StepStatus};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// The `Content-Type` of `/metrics`, as Prometheus's exposition format 0.0.4 names it.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the step-duration histogram's buckets.
const BUCKETS: [f64; 8] = [0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0];

#[derive(Default)]
struct Registry {
    /// (endpoint) → count.
    received: BTreeMap<String, u64>,
    accepted: BTreeMap<String, u64>,
    duplicates: BTreeMap<String, u64>,
    /// (endpoint, reason) → count.
    rejected: BTreeMap<(String, String), u64>,
    /// status → count.
    runs: BTreeMap<String, u64>,
    /// step kind → histogram.
    steps: BTreeMap<String, Histogram>,
    /// Connections answered 503 because `serve.max-connections` were open.
    connections_refused: u64,
    /// Whether this process takes no events now (its state store cannot be written).
    intake_paused: bool,
    /// (workflow, gate) → events a gate dropped or refused.
    gate_suppressed: BTreeMap<(String, String), u64>,
}

#[derive(Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn with_registry(update: impl FnOnce(&mut Registry)) {
    if let Ok(mut registry) = REGISTRY.lock() {
        update(registry.get_or_insert_with(Registry::default));
    }
}

/// What became of one webhook delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery<'a> {
    Accepted,
    Duplicate,
    Rejected(&'a str),
}

/// Counts a delivery to `endpoint` (`github`, `gitlab`, `generic`, `cloudevents`).
pub fn delivery(endpoint: &str, outcome: Delivery) {
    with_registry(|registry| {
        *registry.received.entry(endpoint.to_string()).or_default() += 1;
        match outcome {
            Delivery::Accepted => *registry.accepted.entry(endpoint.to_string()).or_default() += 1,
            Delivery::Duplicate => {
                *registry.duplicates.entry(endpoint.to_string()).or_default() += 1;
            }
            Delivery::Rejected(reason) => {
                *registry
                    .rejected
                    .entry((endpoint.to_string(), reason.to_string()))
                    .or_default() += 1;
            }
        }
    });
}

/// Whether this process has stopped taking events (its state store cannot be written).
pub fn intake_paused(paused: bool) {
    with_registry(|registry| registry.intake_paused = paused);
}

/// Counts a connection refused over `serve.max-connections`.
pub fn connection_refused() {
    with_registry(|registry| registry.connections_refused += 1);
}

/// Counts an event's finished runs and their steps.
pub fn outcome(outcome: &EventOutcome) {
    if outcome.runs.is_empty() {
        return;
    }
    with_registry(|registry| {
        for (_, run) in &outcome.runs {
            *registry
                .runs
                .entry(run.status.as_str().to_string())
                .or_default() += 1;
            for step in &run.steps {
                if matches!(step.status, StepStatus::Skipped | StepStatus::Planned) {
                    continue;
                }
                let seconds = step.duration_ms as f64 / 1000.0;
                let histogram = registry.steps.entry(step.kind.to_string()).or_default();
                for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS) {
                    if seconds <= bound {
                        *bucket += 1;
                    }
                }
                histogram.count += 1;
                histogram.sum += seconds;
            }
        }
    });
}

/// Counts an event a gate of `workflow` dropped or refused.
pub fn gate_suppressed(workflow: &str, gate: &str) {
    with_registry(|registry| {
        *registry
            .gate_suppressed
            .entry((workflow.to_string(), gate.to_string()))
            .or_default() += 1;
    });
}

/// The registry as Prometheus text; `queue_depth` is read by the caller at scrape time.
pub fn render(queue_depth: Option<u64>) -> String {
    let registry = REGISTRY
        .lock()
        .ok()
        .and_then(|registry| {
            registry.as_ref().map(|registry| Registry {
                received: registry.received.clone(),
                accepted: registry.accepted.clone(),
                duplicates: registry.duplicates.clone(),
                rejected: registry.rejected.clone(),
                runs: registry.runs.clone(),
                steps: registry.steps.clone(),
                connections_refused: registry.connections_refused,
                intake_paused: registry.intake_paused,
                gate_suppressed: registry.gate_suppressed.clone(),
            })
        })
        .unwrap_or_default();
    let mut out = String::new();
    counter(
        &mut out,
        "vane_webhook_deliveries_total",
        "Webhook deliveries received, by endpoint.",
        registry
            .received
            .iter()
            .map(|(endpoint, count)| (format!("endpoint=\"{endpoint}\""), *count)),
    );
    counter(
        &mut out,
        "vane_webhook_accepted_total",
        "Deliveries queued (answered 202), by endpoint.",
        registry
            .accepted
            .iter()
            .map(|(endpoint, count)| (format!("endpoint=\"{endpoint}\""), *count)),
    );
    counter(
        &mut out,
        "vane_webhook_duplicates_total",
        "Deliveries whose id was accepted before (answered 200, not run again), by endpoint.",
        registry
            .duplicates
            .iter()
            .map(|(endpoint, count)| (format!("endpoint=\"{endpoint}\""), *count)),
    );
    counter(
        &mut out,
        "vane_webhook_rejected_total",
        "Deliveries refused, by endpoint and reason.",
        registry.rejected.iter().map(|((endpoint, reason), count)| {
            (
                format!("endpoint=\"{endpoint}\",reason=\"{reason}\""),
                *count,
            )
        }),
    );
    let _ = writeln!(
        out,
        "# HELP vane_connections_refused_total Connections answered 503 over serve.max-connections.\n\
         # TYPE vane_connections_refused_total counter\nvane_connections_refused_total {}",
        registry.connections_refused
    );
    let _ = writeln!(
        out,
        "# HELP vane_intake_paused 1 while the workers take no events (the state store cannot be written).\n\
         # TYPE vane_intake_paused gauge\nvane_intake_paused {}",
        u8::from(registry.intake_paused)
    );
    if let Some(depth) = queue_depth {
        let _ = writeln!(
            out,
            "# HELP vane_queue_depth Events waiting or running.\n# TYPE vane_queue_depth gauge\nvane_queue_depth {depth}"
        );
    }
    counter(
        &mut out,
        "vane_runs_total",
        "Workflow runs finished by this process, by status.",
        registry
            .runs
            .iter()
            .map(|(status, count)| (format!("status=\"{status}\""), *count)),
    );
    counter(
        &mut out,
        "vane_gate_suppressed_total",
        "Events a gate dropped (or refused over max-keys), by workflow and gate.",
        registry
            .gate_suppressed
            .iter()
            .map(|((workflow, gate), count)| {
                (format!("workflow=\"{workflow}\",gate=\"{gate}\""), *count)
            }),
    );
    let _ = writeln!(
        out,
        "# HELP vane_step_duration_seconds Step durations, by step kind.\n# TYPE vane_step_duration_seconds histogram"
    );
    for (kind, histogram) in &registry.steps {
        for (bound, count) in BUCKETS.iter().zip(histogram.buckets) {
            let _ = writeln!(
                out,
                "vane_step_duration_seconds_bucket{{kind=\"{kind}\",le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "vane_step_duration_seconds_bucket{{kind=\"{kind}\",le=\"+Inf\"}} {}\nvane_step_duration_seconds_sum{{kind=\"{kind}\"}} {}\nvane_step_duration_seconds_count{{kind=\"{kind}\"}} {}",
            histogram.count, histogram.sum, histogram.count
        );
    }
    let _ = writeln!(
        out,
        "# HELP vane_build_info The vane that serves these metrics; always 1.\n# TYPE vane_build_info gauge\nvane_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    process_metrics(&mut out);
    if let Ok(config) = CONFIG.lock()
        && let Some((successful, at)) = *config
    {
        let _ = writeln!(
            out,
            "# HELP vane_config_last_reload_successful Whether the last load of the workflows succeeded (1) or failed and changed nothing (0).\n\
             # TYPE vane_config_last_reload_successful gauge\nvane_config_last_reload_successful {}\n\
             # HELP vane_config_last_reload_success_timestamp_seconds When the workflows in use were loaded (Unix seconds).\n\
             # TYPE vane_config_last_reload_success_timestamp_seconds gauge\nvane_config_last_reload_success_timestamp_seconds {at}",
            u8::from(successful)
        );
    }
    out
}

/// The standard `process_*` metrics Prometheus clients export, read from `/proc/self` (Linux;
/// elsewhere they are left out rather than made up).
fn process_metrics(out: &mut String) {
    // Clock ticks per second: 100 on every Linux vane is built for (USER_HZ).
    const TICKS: f64 = 100.0;
    const PAGE: u64 = 4096;
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |number: usize| -> Option<f64> { fields.get(number - 3)?.parse().ok() };
    if let (Some(user), Some(system)) = (field(14), field(15)) {
        let _ = writeln!(
            out,
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}",
            (user + system) / TICKS
        );
    }
    if let Some(rss) = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
    {
        let _ = writeln!(
            out,
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}",
            rss * PAGE
        );
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        let _ = writeln!(
            out,
            "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds {}",
            entries.count()
        );
    }
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|text| {
        text.lines()
            .find_map(|line| line.strip_prefix("btime ")?.trim().parse::<f64>().ok())
    });
    if let (Some(boot), Some(start)) = (boot, field(22)) {
        let _ = writeln!(
            out,
            "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {}",
            boot + start / TICKS
        );
    }
}

/// The last load of the workflows: (successful, Unix seconds of the last successful one).
static CONFIG: Mutex<Option<(bool, f64)>> = Mutex::new(None);

/// A load (at startup) or reload of the workflows succeeded, or failed and changed nothing.
pub fn config_loaded(successful: bool) {
    if let Ok(mut config) = CONFIG.lock() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        let at = match (*config, successful) {
            (_, true) => now,
            (Some((_, at)), false) => at,
            (None, false) => 0.0,
        };
        *config = Some((successful, at));
    }
}

fn counter(out: &mut String, name: &str, help: &str, samples: impl Iterator<Item = (String, u64)>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_are_counted_by_endpoint_and_reason() {
        delivery("metrics-test", Delivery::Accepted);
        delivery("metrics-test", Delivery::Rejected("bad_signature"));
        delivery("metrics-test", Delivery::Duplicate);
        let text = render(Some(3));
        assert!(text.contains("vane_webhook_deliveries_total{endpoint=\"metrics-test\"} 3"));
        assert!(text.contains("vane_webhook_accepted_total{endpoint=\"metrics-test\"} 1"));
        assert!(text.contains(
            "vane_webhook_rejected_total{endpoint=\"metrics-test\",reason=\"bad_signature\"} 1"
        ));
        assert!(text.contains("vane_queue_depth 3"));
        assert!(text.contains("# TYPE vane_step_duration_seconds histogram"));
        assert!(text.contains(&format!(
            "vane_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn process_metrics_are_read_from_proc() {
        let text = render(None);
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_start_time_seconds ",
        ] {
            let value: f64 = text
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {text}"))
                .parse()
                .unwrap();
            assert!(
                value > 0.0 || name.starts_with("process_cpu"),
                "{name}{value}"
            );
        }
        let started: f64 = text
            .lines()
            .find_map(|line| line.strip_prefix("process_start_time_seconds "))
            .unwrap()
            .parse()
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            started <= now + 1.0 && started > now - 86_400.0,
            "{started} {now}"
        );
    }

    #[test]
    fn gate_drops_are_counted_by_workflow_and_gate() {
        gate_suppressed("metrics-gate-test", "throttle");
        gate_suppressed("metrics-gate-test", "throttle");
        let text = render(None);
        assert!(text.contains(
            "vane_gate_suppressed_total{workflow=\"metrics-gate-test\",gate=\"throttle\"} 2"
        ));
    }
}
