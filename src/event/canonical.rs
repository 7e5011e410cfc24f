//! Content-derived event ids: the hex SHA-256 of a payload's canonical JSON.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Write;

/// The id of a payload that came without a delivery id: the same payload fed twice has the same id.
///
/// Canonical form: object keys sorted by their UTF-8 bytes, no insignificant whitespace, strings and
/// numbers as serde_json writes them — so key order and formatting of the input do not change the id.
pub fn content_id(value: &Value) -> String {
    let mut hasher = HashWriter(Sha256::new());
    write_canonical(value, &mut hasher);
    hex::encode(hasher.0.finalize())
}

struct HashWriter(Sha256);

impl Write for HashWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn write_canonical(value: &Value, out: &mut HashWriter) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.0.update(b"{");
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.0.update(b",");
                }
                // Writing to a hasher cannot fail, and a String always serializes.
                let _ = serde_json::to_writer(&mut *out, key);
                out.0.update(b":");
                write_canonical(item, out);
            }
            out.0.update(b"}");
        }
        Value::Array(items) => {
            out.0.update(b"[");
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.0.update(b",");
                }
                write_canonical(item, out);
            }
            out.0.update(b"]");
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_and_whitespace_do_not_change_the_id() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": [1, 2], "x": "s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(content_id(&a), content_id(&b));
    }

    #[test]
    fn different_payloads_have_different_ids() {
        let a: Value = serde_json::from_str(r#"{"a": 1}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a": 2}"#).unwrap();
        assert_ne!(content_id(&a), content_id(&b));
        assert_eq!(content_id(&a).len(), 64);
    }
}
