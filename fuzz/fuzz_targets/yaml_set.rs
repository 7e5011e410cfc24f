//! The YAML `set` editor of gitops steps: when it edits a file, the result parses, the scalar at
//! the path reads the new value, and nothing else in the document changed.
//! Input: `path\nvalue\nyaml…` (the value is a plain string).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value as Json;
use vane::steps::gitops::yaml_set::set;
use yaml_rust2::{Yaml, YamlLoader};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = input.splitn(3, '\n');
    let (Some(path), Some(value), Some(text)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let Ok(before) = YamlLoader::load_from_str(text) else {
        return;
    };
    let Ok(edited) = set(text, path, &Json::String(value.to_string())) else {
        return;
    };
    let after = YamlLoader::load_from_str(&edited)
        .unwrap_or_else(|error| panic!("the edited file does not parse: {error}\n{edited}"));
    assert_eq!(before.len(), after.len(), "the number of documents changed");
    let Some(segments) = segments(path) else {
        panic!("set accepted a path this target cannot read: {path:?}");
    };
    let mut expected = before[0].clone();
    // (A key this target cannot name as a string, such as `1` read as a number, is skipped.)
    let Some(target) = node(&mut expected, &segments) else {
        return;
    };
    let Some(found) = node_ref(&after[0], &segments) else {
        panic!("the path is gone after the edit:\n{edited}");
    };
    // The new scalar reads back as the string, or (when written plain) as what YAML makes of it.
    match found {
        Yaml::String(text) => assert_eq!(text, value, "the set scalar reads differently:\n{edited}"),
        other => {
            let plain = YamlLoader::load_from_str(&format!("k: {value}"))
                .ok()
                .and_then(|docs| docs.first().map(|doc| doc["k"].clone()));
            assert_eq!(Some(other.clone()), plain, "the set scalar reads differently:\n{edited}");
        }
    }
    *target = found.clone();
    assert_eq!(expected, after[0], "more than the set scalar changed:\n{text}\n---\n{edited}");
    assert_eq!(&before[1..], &after[1..], "another document changed");
});

enum Segment {
    Key(String),
    Index(usize),
}

fn segments(path: &str) -> Option<Vec<Segment>> {
    let mut segments = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            segments.push(Segment::Key(key.to_string()));
        }
        while !rest.is_empty() {
            let close = rest.find(']')?;
            segments.push(Segment::Index(rest[1..close].trim().parse().ok()?));
            rest = &rest[close + 1..];
        }
    }
    Some(segments)
}

fn node<'a>(mut yaml: &'a mut Yaml, segments: &[Segment]) -> Option<&'a mut Yaml> {
    for segment in segments {
        yaml = match (segment, yaml) {
            (Segment::Key(key), Yaml::Hash(hash)) => hash.get_mut(&Yaml::String(key.clone()))?,
            (Segment::Index(index), Yaml::Array(items)) => items.get_mut(*index)?,
            _ => return None,
        };
    }
    Some(yaml)
}

fn node_ref<'a>(mut yaml: &'a Yaml, segments: &[Segment]) -> Option<&'a Yaml> {
    for segment in segments {
        yaml = match (segment, yaml) {
            (Segment::Key(key), Yaml::Hash(hash)) => hash.get(&Yaml::String(key.clone()))?,
            (Segment::Index(index), Yaml::Array(items)) => items.get(*index)?,
            _ => return None,
        };
    }
    Some(yaml)
}
