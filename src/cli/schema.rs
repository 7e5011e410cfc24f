//! `vane schema`: the JSON Schema of the workflow format, pretty-printed to stdout.

use super::{Exit, Outcome, invalid};
use std::io::Write;

pub fn schema() -> Outcome {
    let schema = crate::workflow::schema::json_schema();
    // Serializing a `serde_json::Value` cannot fail: every key is a string.
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    write_stdout(text.as_bytes())
}

/// Writes a command's output. A closed pipe (`vane schema | head`) is not an error.
pub(super) fn write_stdout(bytes: &[u8]) -> Outcome {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(Exit::Success),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(Exit::Success),
        Err(error) => Err(invalid(format!("cannot write to stdout: {error}"))),
    }
}
