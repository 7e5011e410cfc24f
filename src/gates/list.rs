//! `vane gates`: the live keys with their state and next deadline, the refusals over
//! `max-keys`; `vane gates clear WORKFLOW [KEY]` forgets keys. Text and `--json`. The keys are
//! the state store's, or with `queue: nats://…` the KV bucket's.

use super::time_text;
use crate::state::{Refusals, Store, StoredGate};
use serde_json::{Value as Json, json};

/// One key's state in a line: what it holds.
fn summary(gate: &StoredGate) -> String {
    let state = &gate.row.state;
    match gate.kind.as_str() {
        "throttle" => format!(
            "ran at {}{}, {} suppressed",
            time_text(state.last_ms),
            state
                .run_id
                .as_deref()
                .map(|id| format!(" (run {}…)", id.get(..8).unwrap_or(id)))
                .unwrap_or_default(),
            state.suppressed
        ),
        "window" => format!(
            "{} event(s){} since {}",
            state.count,
            if state.distinct.is_empty() {
                String::new()
            } else {
                format!(", {} distinct", state.distinct.len())
            },
            time_text(state.first_ms)
        ),
        "debounce" => format!(
            "{} event(s) since {}, last at {}",
            state.count,
            time_text(state.first_ms),
            time_text(state.last_ms)
        ),
        "correlate" => format!(
            "has [{}] since {}",
            state.members.keys().cloned().collect::<Vec<_>>().join(", "),
            time_text(state.first_ms)
        ),
        _ => String::new(),
    }
}

/// The listing as text: one line per key, then the refusals.
pub fn render_text(gates: &[StoredGate], refusals: &[Refusals]) -> String {
    let mut out = String::new();
    if gates.is_empty() {
        out.push_str("no live gate keys\n");
    }
    for gate in gates {
        let due = gate
            .row
            .due_ms
            .map(|due| format!("next {}", time_text(due)))
            .unwrap_or_else(|| "no deadline".to_string());
        out.push_str(&format!(
            "{}  {}  `{}`  {}  {}\n",
            gate.workflow,
            gate.kind,
            gate.key,
            summary(gate),
            due
        ));
    }
    for refused in refusals {
        out.push_str(&format!(
            "{}  refused {} new key(s) over max-keys (last `{}` at {})\n",
            refused.workflow,
            refused.count,
            refused.last_key,
            time_text(refused.last_ms)
        ));
    }
    out
}

/// The listing as JSON.
pub fn render_json(gates: &[StoredGate], refusals: &[Refusals]) -> Json {
    json!({
        "gates": gates.iter().map(|gate| json!({
            "workflow": gate.workflow,
            "gate": gate.kind,
            "key": gate.key,
            "due": gate.row.due_ms.map(time_text),
            "suppressed": gate.row.state.suppressed,
            "count": gate.row.state.count,
            "summary": summary(gate),
            "state": gate.row.state,
            "updated": time_text(gate.updated_ms),
        })).collect::<Vec<_>>(),
        "refused": refusals.iter().map(|refused| json!({
            "workflow": refused.workflow,
            "count": refused.count,
            "last_key": refused.last_key,
            "last": time_text(refused.last_ms),
        })).collect::<Vec<_>>(),
    })
}

/// The KV bucket of `queue`, where it is a NATS queue's: where the keys live then.
fn bucket(
    queue: &crate::config::Queue,
) -> Result<Option<std::sync::Arc<super::kv::KvGates>>, String> {
    match queue {
        crate::config::Queue::Nats(settings) => super::kv::KvGates::open(settings).map(Some),
        crate::config::Queue::Sqlite => Ok(None),
    }
}

/// `vane gates`: reads the store (nothing there yet is no key at all), or the KV bucket of a
/// NATS queue; the refusals are each process's, in its store.
pub fn list(
    store: Option<&Store>,
    queue: &crate::config::Queue,
    workflow: Option<&str>,
    as_json: bool,
) -> Result<String, String> {
    let (mut gates, mut refusals) = match store {
        Some(store) => (
            store.gates(workflow).map_err(|error| error.to_string())?,
            store.gate_refusals().map_err(|error| error.to_string())?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    if let Some(bucket) = bucket(queue)? {
        gates = bucket.stored(workflow)?;
    }
    if let Some(workflow) = workflow {
        refusals.retain(|refused| refused.workflow == workflow);
    }
    Ok(if as_json {
        let mut text = render_json(&gates, &refusals).to_string();
        text.push('\n');
        text
    } else {
        render_text(&gates, &refusals)
    })
}

/// `vane gates clear`: the line to print. Without a store (or bucket) there is nothing to clear.
pub fn clear(
    store: Option<Store>,
    queue: &crate::config::Queue,
    workflow: &str,
    key: Option<&str>,
    as_json: bool,
) -> Result<String, String> {
    let mut cleared = match store {
        Some(mut store) => store
            .gates_clear(workflow, key)
            .map_err(|error| error.to_string())?,
        None => 0,
    };
    if let Some(bucket) = bucket(queue)? {
        cleared += bucket.clear(workflow, key)?;
    }
    Ok(if as_json {
        format!(
            "{}\n",
            json!({"workflow": workflow, "key": key, "cleared": cleared})
        )
    } else {
        match key {
            Some(key) => format!("cleared {cleared} key(s) of {workflow}: `{key}`\n"),
            None => format!("cleared {cleared} key(s) of {workflow}\n"),
        }
    })
}
