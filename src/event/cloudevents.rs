//! CloudEvents 1.0 structured JSON → `Event`.

use super::{Event, EventError};
use base64::Engine;
use serde_json::Value;

/// Maps `id`, `source`, `type`, `subject`, `time` across; `data` (or `data_base64`, decoded and
/// parsed as JSON where it is JSON, else kept as a string) becomes `data`.
pub fn from_structured(mut document: serde_json::Map<String, Value>) -> Result<Event, EventError> {
    let spec_version = document
        .get("specversion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !spec_version.starts_with('1') {
        return Err(EventError::new(format!(
            "unsupported CloudEvents `specversion` `{spec_version}` (vane reads 1.0)"
        )));
    }
    let required =
        |document: &serde_json::Map<String, Value>, key: &str| -> Result<String, EventError> {
            match document.get(key) {
                Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
                _ => Err(EventError::new(format!(
                    "CloudEvents attribute `{key}` is missing or not a string"
                ))),
            }
        };
    let id = required(&document, "id")?;
    let source = required(&document, "source")?;
    let kind = required(&document, "type")?;
    let data = match (document.remove("data"), document.remove("data_base64")) {
        (Some(data), None) => data,
        (None, Some(Value::String(encoded))) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.as_bytes())
                .map_err(|error| {
                    EventError::new(format!("CloudEvents `data_base64` is not base64: {error}"))
                })?;
            match serde_json::from_slice(&bytes) {
                Ok(json) => json,
                Err(_) => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
            }
        }
        (None, None) => Value::Null,
        _ => {
            return Err(EventError::new(
                "CloudEvents event has both `data` and `data_base64`",
            ));
        }
    };
    let mut event = Event::with_id(id, &source, &kind, data);
    event.subject = document
        .get("subject")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(time) = document.get("time").and_then(Value::as_str) {
        event.time = time.to_string();
    }
    Ok(event)
}
