//! The event reader: NDJSON / one JSON document on stdin (`EventReader` + `from_text`), and a
//! webhook request as the daemon reads it (CloudEvents binary and structured mode, envelopes).
//! Input: the first byte picks the mode; for a request, lines `name: value` up to an empty line
//! are headers and the rest is the body. Nothing may panic; every accepted event has a type.
#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use vane::event::{EventReader, InputOptions, from_text};
use vane::serve::{Endpoint, request_event};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            for item in EventReader::new(std::io::Cursor::new(rest), 64 * 1024) {
                if let Ok((_, text)) = item {
                    if let Ok(event) = from_text(&text, &InputOptions::default()) {
                        assert!(!event.kind.is_empty(), "an event without a type: {text}");
                    }
                }
            }
        }
        1 => {
            let options = InputOptions {
                kind: Some("push".to_string()),
                source: Some("github".to_string()),
                delivery_id: None,
            };
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = from_text(text, &options);
            }
        }
        _ => {
            let (head, body) = match rest.windows(2).position(|pair| pair == b"\n\n") {
                Some(at) => (&rest[..at], &rest[at + 2..]),
                None => (rest, &[][..]),
            };
            let mut headers = HeaderMap::new();
            for line in head.split(|&byte| byte == b'\n') {
                let Some(colon) = line.iter().position(|&byte| byte == b':') else {
                    continue;
                };
                let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(&line[..colon]),
                    HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
                ) else {
                    continue;
                };
                headers.append(name, value);
            }
            let endpoint = Endpoint::CloudEvents { hmac: None };
            if let Ok(event) = request_event(&endpoint, &headers, body) {
                assert!(!event.kind.is_empty());
            }
        }
    }
});
