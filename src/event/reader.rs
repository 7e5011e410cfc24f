//! Reading events from a byte stream: one JSON document, or NDJSON where every line is an event.
//!
//! Lines are read with a cap, so an oversized or endless line costs at most `max_size` of memory,
//! and a bad line is reported with its number while the lines after it still run.

use super::EventError;
use serde_json::value::RawValue;
use std::collections::VecDeque;
use std::io::BufRead;

/// One thing read from the stream: a document's text with the line it started on, or a bad line.
/// The text is checked for size and UTF-8 here; its JSON is parsed by `from_text`.
pub type ReadItem = Result<(usize, String), EventError>;

/// Checks one document's size and encoding, the errors a JSON parser would report badly.
pub fn validate_document(bytes: Vec<u8>, max_size: usize) -> Result<String, EventError> {
    if bytes.len() > max_size {
        return Err(EventError::new(format!(
            "event is {} bytes, over the limit of {max_size} bytes (`--max-event-size`)",
            bytes.len()
        )));
    }
    String::from_utf8(bytes).map_err(|error| {
        EventError::new(format!(
            "invalid UTF-8 at byte {}",
            error.utf8_error().valid_up_to()
        ))
    })
}

/// A JSON error users can act on: depth, truncation, or where the syntax broke.
pub fn describe_json_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    if text.starts_with("recursion limit exceeded") {
        // serde_json's own limit is 128 levels, which is the limit SPEC §1.2 sets.
        return format!(
            "JSON nested deeper than 128 levels (column {})",
            error.column()
        );
    }
    match error.classify() {
        serde_json::error::Category::Eof => format!("truncated JSON document: {text}"),
        _ => format!("invalid JSON: {text}"),
    }
}

/// Iterates over the events of a stream. NDJSON when the first document fits on its first line;
/// otherwise the whole input is a sequence of (pretty-printed) documents.
pub struct EventReader<R: BufRead> {
    input: R,
    max_size: usize,
    line_number: usize,
    mode: Mode,
    pending: VecDeque<ReadItem>,
    /// Input left in the buffer after the last line read.
    buffered: bool,
}

#[derive(PartialEq, Eq)]
enum Mode {
    Undecided,
    Lines,
    Done,
}

enum Line {
    Text(Vec<u8>),
    TooLong,
    End,
}

impl<R: BufRead> EventReader<R> {
    pub fn new(input: R, max_size: usize) -> EventReader<R> {
        EventReader {
            input,
            max_size,
            line_number: 0,
            mode: Mode::Undecided,
            pending: VecDeque::new(),
            buffered: false,
        }
    }

    /// Whether more input is already buffered, so that the next item comes without waiting on
    /// the source. A consumer batching items hands a batch over when this is false, so a slow
    /// producer's event is never held back waiting for the next one.
    pub fn has_buffered_input(&self) -> bool {
        self.buffered || !self.pending.is_empty()
    }

    /// Reads up to the next newline, keeping at most `max_size` bytes of it.
    fn read_line(&mut self) -> std::io::Result<Line> {
        let mut line = Vec::new();
        let mut too_long = false;
        loop {
            let available = match self.input.fill_buf() {
                Ok(buffer) => buffer,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            if available.is_empty() {
                if line.is_empty() && !too_long {
                    return Ok(Line::End);
                }
                break;
            }
            let (chunk, found_newline) = match memchr::memchr(b'\n', available) {
                Some(index) => (&available[..index], true),
                None => (available, false),
            };
            if !too_long {
                if line.len() + chunk.len() > self.max_size {
                    too_long = true;
                    line = Vec::new();
                } else {
                    line.extend_from_slice(chunk);
                }
            }
            let consumed = chunk.len() + usize::from(found_newline);
            self.buffered = available.len() > consumed;
            self.input.consume(consumed);
            if found_newline {
                break;
            }
        }
        self.line_number += 1;
        if too_long {
            Ok(Line::TooLong)
        } else {
            Ok(Line::Text(line))
        }
    }

    fn next_line_item(&mut self) -> Option<ReadItem> {
        loop {
            let line = match self.read_line() {
                Ok(line) => line,
                Err(error) => {
                    self.mode = Mode::Done;
                    return Some(Err(EventError::new(format!("cannot read input: {error}"))));
                }
            };
            let number = self.line_number;
            match line {
                Line::End => {
                    self.mode = Mode::Done;
                    return None;
                }
                Line::TooLong => {
                    return Some(Err(EventError::new(format!(
                        "event is over the limit of {} bytes (`--max-event-size`)",
                        self.max_size
                    ))
                    .at_line(number)));
                }
                Line::Text(bytes) => {
                    if bytes.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    if self.mode == Mode::Undecided {
                        return Some(self.decide(bytes, number));
                    }
                    return Some(
                        validate_document(bytes, self.max_size)
                            .map(|text| (number, text))
                            .map_err(|error| error.at_line(number)),
                    );
                }
            }
        }
    }

    /// The first non-empty line decides the mode: a complete document means NDJSON; a document
    /// that is cut off at the end of the line means a multi-line document, read whole.
    fn decide(&mut self, first: Vec<u8>, number: usize) -> ReadItem {
        match serde_json::from_slice::<serde::de::IgnoredAny>(&first) {
            Err(error) if error.classify() == serde_json::error::Category::Eof => {
                self.mode = Mode::Done;
                self.read_documents(first, number);
                self.pending
                    .pop_front()
                    .unwrap_or_else(|| Err(EventError::new("empty input")))
            }
            // Complete (or broken) on its own line: NDJSON; a broken line is reported by the parser.
            _ => {
                self.mode = Mode::Lines;
                validate_document(first, self.max_size)
                    .map(|text| (number, text))
                    .map_err(|error| error.at_line(number))
            }
        }
    }

    fn read_documents(&mut self, mut buffer: Vec<u8>, first_line: usize) {
        buffer.push(b'\n');
        let mut rest = Vec::new();
        let limit = self.max_size.saturating_sub(buffer.len()) as u64 + 1;
        let mut limited = std::io::Read::take(&mut self.input, limit);
        if let Err(error) = std::io::Read::read_to_end(&mut limited, &mut rest) {
            self.pending
                .push_back(Err(EventError::new(format!("cannot read input: {error}"))));
            return;
        }
        buffer.extend_from_slice(&rest);
        if buffer.len() > self.max_size {
            self.pending.push_back(Err(EventError::new(format!(
                "event is over the limit of {} bytes (`--max-event-size`)",
                self.max_size
            ))
            .at_line(first_line)));
            return;
        }
        let text = match String::from_utf8(buffer) {
            Ok(text) => text,
            Err(error) => {
                self.pending.push_back(Err(EventError::new(format!(
                    "invalid UTF-8 at byte {}",
                    error.utf8_error().valid_up_to()
                ))));
                return;
            }
        };
        let mut stream = serde_json::Deserializer::from_str(&text).into_iter::<&RawValue>();
        loop {
            let start_offset = stream.byte_offset();
            match stream.next() {
                None => break,
                Some(Ok(raw)) => {
                    let skipped = text[start_offset..]
                        .bytes()
                        .take_while(u8::is_ascii_whitespace);
                    let newlines_before = text[..start_offset]
                        .bytes()
                        .filter(|&byte| byte == b'\n')
                        .count()
                        + skipped.filter(|&byte| byte == b'\n').count();
                    self.pending
                        .push_back(Ok((first_line + newlines_before, raw.get().to_string())));
                }
                Some(Err(error)) => {
                    let line = first_line + error.line().saturating_sub(1);
                    self.pending.push_back(Err(
                        EventError::new(describe_json_error(&error)).at_line(line)
                    ));
                    break;
                }
            }
        }
    }
}

impl<R: BufRead> Iterator for EventReader<R> {
    type Item = ReadItem;

    fn next(&mut self) -> Option<ReadItem> {
        if let Some(item) = self.pending.pop_front() {
            return Some(item);
        }
        if self.mode == Mode::Done {
            return None;
        }
        self.next_line_item()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads every item and parses its text, as the event layer would.
    fn read_all(input: &str, max: usize) -> Vec<Result<(usize, serde_json::Value), String>> {
        EventReader::new(input.as_bytes(), max)
            .map(|item| {
                item.and_then(|(line, text)| {
                    serde_json::from_str(&text)
                        .map(|value| (line, value))
                        .map_err(|error| EventError::new(describe_json_error(&error)).at_line(line))
                })
                .map_err(|error| error.to_string())
            })
            .collect()
    }

    #[test]
    fn ndjson_with_a_bad_line_in_the_middle_keeps_going() {
        let items = read_all("{\"a\":1}\n\n{\"b\":\n{\"c\":3}\n", 1024);
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].as_ref().unwrap().0, 1);
        assert!(
            items[1].as_ref().unwrap_err().starts_with("line 3: "),
            "{:?}",
            items[1]
        );
        assert_eq!(items[2].as_ref().unwrap().0, 4);
    }

    #[test]
    fn a_pretty_printed_document_is_one_event() {
        let items = read_all("{\n  \"a\": [1,\n 2]\n}\n", 1024);
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0].as_ref().unwrap().1,
            serde_json::json!({"a": [1, 2]})
        );
    }

    #[test]
    fn several_pretty_documents_follow_each_other() {
        let items = read_all("{\n\"a\": 1}\n{\n\"b\": 2\n}", 1024);
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].as_ref().unwrap().0, 3);
    }

    #[test]
    fn truncated_document_is_an_error_not_a_panic() {
        let items = read_all("{\n  \"a\": [1,\n", 1024);
        assert!(
            items[0].as_ref().unwrap_err().contains("truncated"),
            "{:?}",
            items[0]
        );
    }

    #[test]
    fn oversized_line_is_reported_and_skipped() {
        let long = format!("{{\"a\":\"{}\"}}", "x".repeat(100));
        let items = read_all(&format!("{long}\n{{\"b\":1}}\n"), 50);
        assert!(items[0].as_ref().unwrap_err().contains("over the limit"));
        assert_eq!(items[1].as_ref().unwrap().0, 2);
    }

    #[test]
    fn deep_nesting_and_bad_utf8_are_clear_errors() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let items = read_all(&deep, 1 << 20);
        assert!(
            items[0].as_ref().unwrap_err().contains("deeper than 128"),
            "{:?}",
            items[0]
        );
        let error = validate_document(b"{\"a\":\"\xff\"}".to_vec(), 1 << 20).unwrap_err();
        assert_eq!(error.message, "invalid UTF-8 at byte 6");
    }
}
