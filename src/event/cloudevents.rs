//! CloudEvents 1.0 structured JSON → `Event`.

use super::input::Attributes;
use super::{Event, EventError, Payload};
use base64::Engine;
use serde_json::Value;

/// Maps `id`, `source`, `type`, `subject`, `time` across; `data` (or `data_base64`, decoded and
/// parsed as JSON where it is JSON, else kept as a string; bytes that are not UTF-8 stay the
/// base64 text) becomes `data`.
pub fn from_structured(mut attributes: Attributes<'_>) -> Result<Event, EventError> {
    let spec_version = attributes.text("specversion")?.unwrap_or_default();
    if !spec_version.starts_with('1') {
        return Err(EventError::new(format!(
            "unsupported CloudEvents `specversion` `{spec_version}` (vane reads 1.0)"
        )));
    }
    let mut required = |key: &str| -> Result<String, EventError> {
        match attributes.text(key)? {
            Some(text) if !text.is_empty() => Ok(text),
            _ => Err(EventError::new(format!(
                "CloudEvents attribute `{key}` is missing or empty"
            ))),
        }
    };
    let id = required("id")?;
    let source = required("source")?;
    let kind = required("type")?;
    let data = match (attributes.take("data"), attributes.take("data_base64")) {
        (Some(data), None) => Payload::from_raw(data.to_owned()),
        (None, Some(encoded)) => {
            let Ok(Value::String(encoded)) = serde_json::from_str::<Value>(encoded.get()) else {
                return Err(EventError::new(
                    "CloudEvents `data_base64` must be a string",
                ));
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.as_bytes())
                .map_err(|error| {
                    EventError::new(format!("CloudEvents `data_base64` is not base64: {error}"))
                })?;
            Payload::from_value(match serde_json::from_slice(&bytes) {
                Ok(json) => json,
                // Bytes that are not text stay base64: `data` is JSON, which cannot hold them.
                Err(_) => Value::String(String::from_utf8(bytes).unwrap_or(encoded)),
            })
        }
        (None, None) => Payload::from_value(Value::Null),
        _ => {
            return Err(EventError::new(
                "CloudEvents event has both `data` and `data_base64`",
            ));
        }
    };
    let mut event = Event::with_id(id, &source, &kind, data);
    event.subject = attributes.text("subject")?;
    if let Some(time) = attributes.text("time")? {
        event.time = time;
    }
    Ok(event)
}
