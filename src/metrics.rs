//! What `vane serve` exposes on `/metrics` (Prometheus text format 0.0.4): webhook deliveries
//! received, accepted and rejected by reason, the queue's depth, runs by status and step
//! durations by kind. One registry per process, as Prometheus clients keep it: every part of vane
//! that sees something countable adds to it, and only the daemon prints it.

use crate::engine::{EventOutcome, StepStatus};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

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
    out
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
