//! `vane dispatch NAME`: the event that runs one workflow by hand (SPEC §2.2, §4.1).

use super::{Event, Payload};
use serde_json::{Map, Value as Json};

/// `source: dispatch`, `type: dispatch`, `subject: NAME`, `data: {inputs: {…}}`. Each dispatch is
/// its own delivery, with a fresh id: the same inputs dispatched twice are two runs, not one
/// event seen twice.
pub fn dispatch_event(workflow: &str, inputs: Map<String, Json>) -> Event {
    let data = serde_json::json!({ "inputs": inputs });
    let mut event = Event::with_id(
        uuid::Uuid::new_v4().to_string(),
        "dispatch",
        "dispatch",
        Payload::from_value(data),
    );
    event.subject = Some(workflow.to_string());
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dispatch_names_its_workflow_and_carries_the_inputs() {
        let mut inputs = Map::new();
        inputs.insert("env".to_string(), Json::from("prod"));
        let event = dispatch_event("deploy", inputs);
        let envelope = serde_json::to_value(&event).unwrap();
        assert_eq!(envelope["source"], "dispatch");
        assert_eq!(envelope["type"], "dispatch");
        assert_eq!(envelope["subject"], "deploy");
        assert_eq!(
            envelope["data"],
            serde_json::json!({"inputs": {"env": "prod"}})
        );
        assert_ne!(event.id(), dispatch_event("deploy", Map::new()).id());
    }
}
