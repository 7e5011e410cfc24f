//! An event's payload: the JSON text exactly as received, parsed into a tree only when something
//! reads inside it (a template, the content id, `--json` masking).
//!
//! Measured: with 5 KB GitHub payloads, building the full JSON tree of every event was the largest
//! cost of matching; most workflows only look at envelope fields (`repo`, `branch`, `sha`), which
//! come from a cheap typed pass over the text.

use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// Cheap to clone: every workflow's context shares one payload.
#[derive(Clone)]
pub struct Payload {
    inner: Arc<Inner>,
}

struct Inner {
    /// The whole envelope this payload is the `data` of, when it came in one: the payload's own
    /// text is cut out of it only when something asks (a plan that matches on envelope fields
    /// never does).
    envelope: Option<Arc<str>>,
    raw: OnceLock<Box<RawValue>>,
    value: OnceLock<Value>,
}

impl Payload {
    /// A payload from validated JSON text (the reader's and `from_text`'s job).
    pub fn from_raw(raw: Box<RawValue>) -> Payload {
        Payload {
            inner: Arc::new(Inner {
                envelope: None,
                raw: OnceLock::from(raw),
                value: OnceLock::new(),
            }),
        }
    }

    /// The `data` of an envelope whose whole text was validated (it is cut out on first use).
    pub fn from_envelope(envelope: Arc<str>) -> Payload {
        Payload {
            inner: Arc::new(Inner {
                envelope: Some(envelope),
                raw: OnceLock::new(),
                value: OnceLock::new(),
            }),
        }
    }

    /// A payload built in memory (an `emit` step, a decoded CloudEvents `data_base64`).
    pub fn from_value(value: Value) -> Payload {
        // Serializing a Value cannot fail: its map keys are strings.
        let text = serde_json::to_string(&value).unwrap_or_else(|_| "null".to_string());
        let raw = RawValue::from_string(text).unwrap_or_else(|_| null_raw());
        let cell = OnceLock::new();
        let _ = cell.set(value);
        Payload {
            inner: Arc::new(Inner {
                envelope: None,
                raw: OnceLock::from(raw),
                value: cell,
            }),
        }
    }

    /// The JSON text as received.
    pub fn raw(&self) -> &str {
        self.raw_value().get()
    }

    fn raw_value(&self) -> &RawValue {
        self.inner.raw.get_or_init(|| {
            #[derive(serde::Deserialize)]
            struct DataOnly<'a> {
                #[serde(borrow)]
                data: &'a RawValue,
            }
            // The envelope was parsed whole when it arrived, `data` included.
            let envelope = self.inner.envelope.as_deref().unwrap_or("{\"data\": null}");
            serde_json::from_str::<DataOnly>(envelope)
                .map(|only| only.data.to_owned())
                .unwrap_or_else(|_| null_raw())
        })
    }

    /// The parsed tree, built on first use.
    pub fn value(&self) -> &Value {
        self.inner.value.get_or_init(|| {
            // The text was validated when the payload was made, so this parse succeeds.
            serde_json::from_str(self.raw()).unwrap_or(Value::Null)
        })
    }
}

fn null_raw() -> Box<RawValue> {
    // "null" is valid JSON.
    RawValue::from_string("null".to_string()).expect("`null` is JSON")
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw_value().serialize(serializer)
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.raw() == other.raw() || self.value() == other.value()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.raw())
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Payload {
        Payload::from_value(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_text_is_kept_and_parsed_on_demand() {
        let raw = RawValue::from_string(r#"{"b": 1, "a": [true]}"#.to_string()).unwrap();
        let payload = Payload::from_raw(raw);
        assert_eq!(payload.raw(), r#"{"b": 1, "a": [true]}"#);
        assert_eq!(payload.value()["a"][0], Value::Bool(true));
        assert_eq!(
            serde_json::to_string(&payload).unwrap(),
            r#"{"b": 1, "a": [true]}"#
        );
    }

    #[test]
    fn values_round_trip() {
        let payload = Payload::from_value(serde_json::json!({"n": 5}));
        assert_eq!(payload.raw(), r#"{"n":5}"#);
        assert_eq!(payload, Payload::from_value(serde_json::json!({"n": 5})));
    }
}
