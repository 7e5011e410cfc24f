//! `set:` edits: the bytes of one scalar replaced in the YAML text, nothing else touched, so that
//! comments, anchors, ordering and indentation stay byte for byte (SPEC §2.3).

use serde_json::Value as Json;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::{Yaml, YamlLoader};

/// Why a `set` edit could not be made. `path` is the dotted path as written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SetError {
    #[error("`{path}` is not a valid path (`a.b`, `a.list[0].b`)")]
    BadPath { path: String },
    #[error("the file is not valid YAML: {message}")]
    Syntax { message: String },
    #[error("`{path}` is not in the file")]
    Missing { path: String },
    #[error("`{path}` is a {kind}, not a scalar; `set` replaces scalars only")]
    NotScalar { path: String, kind: &'static str },
    #[error("`{path}` is a block scalar (`|` or `>`); `set` replaces one-line scalars only")]
    BlockScalar { path: String },
    #[error("`{path}` is an alias (`*{name}`); set the anchored value instead")]
    Alias { path: String, name: String },
    #[error("`{path}`: cannot find the scalar's text in the file")]
    Unlocated { path: String },
    #[error("`{path}`: the new value must be a string, number, boolean or null")]
    BadValue { path: String },
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// `image.tag`, `spec.containers[0].image`, `[2].name` into segments.
fn parse_path(path: &str) -> Result<Vec<Segment>, SetError> {
    let bad = || SetError::BadPath {
        path: path.to_string(),
    };
    let mut segments = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            segments.push(Segment::Key(key.to_string()));
        } else if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let close = rest.find(']').ok_or_else(bad)?;
            let index = rest[1..close].trim().parse().map_err(|_| bad())?;
            segments.push(Segment::Index(index));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(bad());
            }
        }
    }
    if segments.is_empty() {
        return Err(bad());
    }
    Ok(segments)
}

/// What the walk over parser events keeps per open collection.
enum Frame {
    Mapping {
        /// The key just read, waiting for its value; `None` between entries.
        key: Option<Option<String>>,
    },
    Sequence {
        next: usize,
    },
}

/// The scalar found at the path: its event data and where its text starts.
struct Found {
    style: TScalarStyle,
    value: String,
    start: Marker,
}

/// YAML allows no control character but tab, line feed and carriage return (its `c-printable`);
/// the parser underneath takes some (NUL) as text and the edit would land in the wrong place
/// (found by `fuzz/fuzz_targets/yaml_set.rs`), so such a file is refused as not YAML.
///
/// A carriage return alone (the line end of classic Mac OS) is YAML, but the editor's positions
/// count lines by line feeds, so it would edit the wrong place (found by the same target): such
/// a file is refused too, with what to do about it. CRLF is fine.
fn refuse_control_characters(text: &str) -> Result<(), SetError> {
    let not_printable = |c: char| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{85}');
    let line = |at: usize| text[..at].matches('\n').count() + 1;
    if let Some((at, c)) = text.char_indices().find(|(_, c)| not_printable(*c)) {
        return Err(SetError::Syntax {
            message: format!(
                "line {} holds the control character U+{:04X}, which YAML does not allow",
                line(at),
                u32::from(c)
            ),
        });
    }
    match memchr::memchr_iter(b'\r', text.as_bytes())
        .find(|at| text.as_bytes().get(at + 1) != Some(&b'\n'))
    {
        None => Ok(()),
        Some(at) => Err(SetError::Syntax {
            message: format!(
                "line {} ends with a carriage return alone (classic Mac OS line ends); convert the file to LF or CRLF line ends",
                line(at)
            ),
        }),
    }
}

enum Target {
    Scalar(Found),
    Collection(&'static str),
    Alias(usize),
}

/// Sets the scalar at `path` to `value`, changing only that scalar's bytes.
pub fn set(text: &str, path: &str, value: &Json) -> Result<String, SetError> {
    let segments = parse_path(path)?;
    refuse_control_characters(text)?;
    let new_text = match value {
        Json::String(text) => text.clone(),
        Json::Number(number) => number.to_string(),
        Json::Bool(flag) => flag.to_string(),
        Json::Null => "null".to_string(),
        _ => {
            return Err(SetError::BadValue {
                path: path.to_string(),
            });
        }
    };
    let found = match find(text, &segments)? {
        Some(Target::Scalar(found)) => found,
        Some(Target::Collection(kind)) => {
            return Err(SetError::NotScalar {
                path: path.to_string(),
                kind,
            });
        }
        Some(Target::Alias(id)) => {
            return Err(SetError::Alias {
                path: path.to_string(),
                name: anchor_name(text, id).unwrap_or_else(|| "…".to_string()),
            });
        }
        None => {
            return Err(SetError::Missing {
                path: path.to_string(),
            });
        }
    };
    if matches!(found.style, TScalarStyle::Literal | TScalarStyle::Folded) {
        return Err(SetError::BlockScalar {
            path: path.to_string(),
        });
    }
    let unlocated = || SetError::Unlocated {
        path: path.to_string(),
    };
    // An empty value (`key:`, or a tag with nothing after it) has no text of its own to
    // replace: its mark is wherever the next token is, and the read-back below cannot tell an
    // empty string written there from the empty value it was (the fuzz target's fourth find).
    if found.style == TScalarStyle::Plain && found.value.is_empty() {
        return Err(unlocated());
    }
    let start = byte_offset(text, &found.start).ok_or_else(unlocated)?;
    let end = scalar_end(text, start, &found).ok_or_else(unlocated)?;
    let replacement = format_scalar(&found, &new_text, matches!(value, Json::String(_)));
    let mut edited = String::with_capacity(text.len() + replacement.len());
    edited.push_str(&text[..start]);
    edited.push_str(&replacement);
    edited.push_str(&text[end..]);
    // Checked as a reader will see it: the file still parses and the path reads the new value.
    // A place the editor misjudged (the empty value of an explicit `? key`, found by
    // `fuzz/fuzz_targets/yaml_set.rs`) is refused, never written.
    let reads_back = matches!(
        find(&edited, &segments),
        Ok(Some(Target::Scalar(again))) if again.value == new_text
    );
    if !reads_back || YamlLoader::load_from_str(&edited).is_err() {
        return Err(unlocated());
    }
    Ok(edited)
}

/// Walks the first document's events to the node at `segments`.
fn find(text: &str, segments: &[Segment]) -> Result<Option<Target>, SetError> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    // The path of the node the next event is, where it can be named; `None` inside a
    // complex (collection) key, which no dotted path reaches.
    let mut path: Vec<Option<Segment>> = Vec::new();
    // Depth of collections inside a complex key being skipped.
    let mut skipping = 0usize;
    loop {
        let (event, marker) = parser.next_token().map_err(|error| SetError::Syntax {
            message: error.to_string(),
        })?;
        let is_node = matches!(
            event,
            Event::Scalar(..)
                | Event::Alias(_)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
        );
        if skipping > 0 {
            match event {
                Event::SequenceStart(..) | Event::MappingStart(..) => skipping += 1,
                Event::SequenceEnd | Event::MappingEnd => skipping -= 1,
                _ => {}
            }
            if skipping == 0 {
                // The complex key is done; its value comes next and no path names it.
                if let Some(Frame::Mapping { key }) = stack.last_mut() {
                    *key = Some(None);
                }
            }
            continue;
        }
        // Where this node sits: a key of the current mapping, or a value / element with a name.
        let mut naming: Option<Option<Segment>> = None;
        if is_node {
            match stack.last_mut() {
                None => naming = Some(None),
                Some(Frame::Mapping { key }) => match key.take() {
                    None => {
                        // This node is a key.
                        match &event {
                            Event::Scalar(name, ..) => *key = Some(Some(name.clone())),
                            Event::Alias(_) => *key = Some(None),
                            _ => {
                                skipping = 1;
                            }
                        }
                        continue;
                    }
                    Some(name) => naming = Some(name.map(Segment::Key)),
                },
                Some(Frame::Sequence { next }) => {
                    naming = Some(Some(Segment::Index(*next)));
                    *next += 1;
                }
            }
        }
        let at_root = stack.is_empty();
        let matches_target = |path: &[Option<Segment>], own: &Option<Segment>| {
            if at_root {
                return false;
            }
            path.len() + 1 == segments.len() + 1
                && own.as_ref() == segments.last()
                && path[1..]
                    .iter()
                    .zip(segments.iter())
                    .all(|(have, want)| have.as_ref() == Some(want))
        };
        match event {
            Event::Scalar(value, style, _, _) => {
                if let Some(own) = naming
                    && matches_target(&path, &own)
                {
                    return Ok(Some(Target::Scalar(Found {
                        style,
                        value,
                        start: marker,
                    })));
                }
            }
            Event::Alias(id) => {
                if let Some(own) = naming
                    && matches_target(&path, &own)
                {
                    return Ok(Some(Target::Alias(id)));
                }
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                let own = naming.flatten();
                let kind = if matches!(event, Event::SequenceStart(..)) {
                    "sequence"
                } else {
                    "mapping"
                };
                if !at_root && matches_target(&path, &own) {
                    return Ok(Some(Target::Collection(kind)));
                }
                path.push(own);
                stack.push(if kind == "sequence" {
                    Frame::Sequence { next: 0 }
                } else {
                    Frame::Mapping { key: None }
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
                path.pop();
            }
            Event::DocumentEnd | Event::StreamEnd => return Ok(None),
            Event::Nothing | Event::StreamStart | Event::DocumentStart => {}
        }
    }
}

/// The name of anchor `id` (anchors are numbered in order of appearance).
fn anchor_name(text: &str, id: usize) -> Option<String> {
    let mut parser = Parser::new_from_str(text);
    let mut anchors = Vec::new();
    while let Ok((event, marker)) = parser.next_token() {
        let anchor = match event {
            Event::Scalar(_, _, anchor, _)
            | Event::SequenceStart(anchor, _)
            | Event::MappingStart(anchor, _) => anchor,
            Event::StreamEnd => break,
            _ => 0,
        };
        if anchor == id {
            // The anchor is written before the node: find the last `&name` before the mark.
            let offset = byte_offset(text, &marker)?;
            let before = &text[..offset];
            let at = before.rfind('&')?;
            let name: String = before[at + 1..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            anchors.push(name);
            break;
        }
    }
    anchors.pop()
}

/// The byte offset of a marker: yaml-rust2 counts characters, and lines from 1.
fn byte_offset(text: &str, marker: &Marker) -> Option<usize> {
    let mut line_start = 0;
    for _ in 1..marker.line() {
        line_start += text[line_start..].find('\n')? + 1;
    }
    let line = &text[line_start..];
    let column = line
        .char_indices()
        .nth(marker.col())
        .map(|(at, _)| at)
        .unwrap_or(line.len());
    Some(line_start + column)
}

/// Where the scalar that starts at `start` ends: the closing quote for quoted scalars, and for
/// plain ones the value's own bytes, which a one-line plain scalar is exactly.
fn scalar_end(text: &str, start: usize, found: &Found) -> Option<usize> {
    let rest = &text[start..];
    match found.style {
        TScalarStyle::SingleQuoted => {
            let bytes = rest.as_bytes();
            let mut at = 1;
            while at < bytes.len() {
                if bytes[at] == b'\'' {
                    if bytes.get(at + 1) == Some(&b'\'') {
                        at += 2;
                        continue;
                    }
                    return Some(start + at + 1);
                }
                at += 1;
            }
            None
        }
        TScalarStyle::DoubleQuoted => {
            let bytes = rest.as_bytes();
            let mut at = 1;
            while at < bytes.len() {
                match bytes[at] {
                    b'\\' => at += 2,
                    b'"' => return Some(start + at + 1),
                    _ => at += 1,
                }
            }
            None
        }
        TScalarStyle::Plain => rest
            .starts_with(found.value.as_str())
            .then(|| start + found.value.len()),
        TScalarStyle::Literal | TScalarStyle::Folded => None,
    }
}

/// The new scalar's text, in the old one's style where that style can hold it.
fn format_scalar(found: &Found, value: &str, is_string: bool) -> String {
    match found.style {
        TScalarStyle::DoubleQuoted => double_quoted(value),
        TScalarStyle::SingleQuoted if is_single_quotable(value) => {
            format!("'{}'", value.replace('\'', "''"))
        }
        TScalarStyle::SingleQuoted => double_quoted(value),
        _ => {
            // A plain scalar stays plain where the new text reads back as itself, and as a string
            // where the old one was a string (a tag `v1` set to `1.10` must not become a number).
            let old_was_string = matches!(resolve(&found.value), Some(Yaml::String(_)));
            let plain_ok = match resolve(value) {
                Some(Yaml::String(read)) => read == value,
                Some(Yaml::Integer(_) | Yaml::Real(_) | Yaml::Boolean(_) | Yaml::Null) => {
                    !(old_was_string && is_string)
                }
                _ => false,
            };
            if plain_ok && is_plain_safe(value) {
                value.to_string()
            } else if is_single_quotable(value) {
                format!("'{}'", value.replace('\'', "''"))
            } else {
                double_quoted(value)
            }
        }
    }
}

/// How YAML reads `text` as a lone plain scalar.
fn resolve(text: &str) -> Option<Yaml> {
    let mut documents = YamlLoader::load_from_str(text).ok()?;
    if documents.len() != 1 {
        return None;
    }
    Some(documents.remove(0))
}

/// Characters that end or change a plain scalar in a flow collection or a line.
fn is_plain_safe(value: &str) -> bool {
    !value.is_empty()
        && value.trim() == value
        && !value.contains(['\n', '\r', '\t', ',', '[', ']', '{', '}', '#', '"', '\''])
        && !value.contains(": ")
        && !value.ends_with(':')
}

fn is_single_quotable(value: &str) -> bool {
    !value.chars().any(|c| c.is_control())
}

/// A JSON string is a valid YAML double-quoted scalar.
fn double_quoted(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("\"{value}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_a_control_character_is_refused_not_edited() {
        // The fuzzer's find: NUL bytes after `tag:` made the edit land elsewhere.
        let text = "image:\n  repo: app # c\n  tag:\0\0\n";
        assert_eq!(
            set(text, "image.tag", &Json::String("v2".into())),
            Err(SetError::Syntax {
                message: "line 3 holds the control character U+0000, which YAML does not allow"
                    .to_string()
            })
        );
        // The same fuzzer's next find: line ends of a carriage return alone.
        let text = "r:\r---\rimage: a\n";
        assert_eq!(
            set(text, "r", &Json::String("v2".into())),
            Err(SetError::Syntax {
                message: "line 1 ends with a carriage return alone (classic Mac OS line ends); \
                          convert the file to LF or CRLF line ends"
                    .to_string()
            })
        );
        // Its third: the empty value of an explicit key is nowhere to edit.
        assert_eq!(
            set(" \n? --\n? -. \n - !", "--", &Json::String("? -".into())),
            Err(SetError::Unlocated {
                path: "--".to_string()
            })
        );
        // Its fourth: an empty string set on an empty (tagged) value landed on the next key.
        assert_eq!(
            set(
                "pe: !n%0c:zcginXsc:zcg\n:",
                "pe",
                &Json::String(String::new())
            ),
            Err(SetError::Unlocated {
                path: "pe".to_string()
            })
        );
        // Tabs and CRLF line ends are YAML.
        let text = "image:\r\n  tag: v1\t# c\r\n";
        assert_eq!(
            set(text, "image.tag", &Json::String("v2".into())).unwrap(),
            "image:\r\n  tag: v2\t# c\r\n"
        );
    }
    use serde_json::json;

    const VALUES: &str = r#"# Default values for api.
# This is a YAML-formatted file.

replicaCount: 2   # scaled by the HPA in production

defaults: &defaults
  pullPolicy: IfNotPresent
  registry: "ghcr.io"

image:
  <<: *defaults
  repository: acme/api
  # Overrides the image tag whose default is the chart appVersion.
  tag: "v1.4.2"   # promoted by vane
  digest: 'sha256:abc'
  plainTag: v1.4.2

sidecar:
  image: *defaults
  version: &sidecar_version 1.2.3

podAnnotations: {team: platform, tier: "backend"}

containers:
  - name: api
    image: acme/api:1.0   # the main one
    args: [--port, "8080"]
  - name: proxy
    image: envoy:1.29

config: |
  server:
    port: 8080
  tag: ignored
"#;

    fn changed_lines(before: &str, after: &str) -> Vec<(String, String)> {
        let before: Vec<&str> = before.lines().collect();
        let after: Vec<&str> = after.lines().collect();
        assert_eq!(before.len(), after.len(), "line count changed:\n{after:?}");
        before
            .iter()
            .zip(after.iter())
            .filter(|(old, new)| old != new)
            .map(|(old, new)| (old.to_string(), new.to_string()))
            .collect()
    }

    fn one_line(path: &str, value: Json, expected: &str) {
        let edited = set(VALUES, path, &value).unwrap_or_else(|error| panic!("{path}: {error}"));
        let changes = changed_lines(VALUES, &edited);
        assert_eq!(changes.len(), 1, "{path}: {changes:?}");
        assert_eq!(changes[0].1, expected, "{path}");
        // And the edit is what YAML reads back.
        let documents = YamlLoader::load_from_str(&edited).expect("still YAML");
        let _ = documents;
    }

    #[test]
    fn double_quoted_stays_double_quoted() {
        one_line(
            "image.tag",
            json!("9f2c1a0b3d4e"),
            r#"  tag: "9f2c1a0b3d4e"   # promoted by vane"#,
        );
        one_line(
            "image.tag",
            json!("a\"b\\c"),
            r#"  tag: "a\"b\\c"   # promoted by vane"#,
        );
    }

    #[test]
    fn single_quoted_stays_single_quoted() {
        one_line(
            "image.digest",
            json!("sha256:it's"),
            "  digest: 'sha256:it''s'",
        );
    }

    #[test]
    fn plain_stays_plain_unless_it_would_change_meaning() {
        one_line("image.plainTag", json!("v1.5.0"), "  plainTag: v1.5.0");
        // `1.10` would read as a number: quoted, so that it stays a string.
        one_line("image.plainTag", json!("1.10"), "  plainTag: '1.10'");
        one_line("image.plainTag", json!("a: b"), "  plainTag: 'a: b'");
        one_line("image.plainTag", json!("# x"), "  plainTag: '# x'");
        one_line(
            "replicaCount",
            json!(5),
            "replicaCount: 5   # scaled by the HPA in production",
        );
        one_line(
            "replicaCount",
            json!("7"),
            "replicaCount: 7   # scaled by the HPA in production",
        );
    }

    #[test]
    fn sequences_flow_collections_and_anchors() {
        one_line(
            "containers[0].image",
            json!("acme/api:2.0"),
            "    image: acme/api:2.0   # the main one",
        );
        one_line(
            "containers[1].image",
            json!("envoy:1.30"),
            "    image: envoy:1.30",
        );
        one_line(
            "containers[0].args[1]",
            json!("9090"),
            r#"    args: [--port, "9090"]"#,
        );
        one_line(
            "podAnnotations.team",
            json!("infra"),
            r#"podAnnotations: {team: infra, tier: "backend"}"#,
        );
        one_line(
            "podAnnotations.team",
            json!("a,b"),
            r#"podAnnotations: {team: 'a,b', tier: "backend"}"#,
        );
        one_line(
            "sidecar.version",
            json!("1.2.4"),
            "  version: &sidecar_version 1.2.4",
        );
        one_line(
            "defaults.registry",
            json!("quay.io"),
            r#"  registry: "quay.io""#,
        );
    }

    #[test]
    fn refusals_name_the_path() {
        let error = set(VALUES, "image.nope", &json!("x")).unwrap_err();
        assert_eq!(error.to_string(), "`image.nope` is not in the file");
        let error = set(VALUES, "containers[5].image", &json!("x")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`containers[5].image` is not in the file"
        );
        let error = set(VALUES, "config", &json!("x")).unwrap_err();
        assert!(matches!(error, SetError::BlockScalar { .. }), "{error}");
        let error = set(VALUES, "image", &json!("x")).unwrap_err();
        assert!(matches!(error, SetError::NotScalar { .. }), "{error}");
        let error = set(VALUES, "sidecar.image", &json!("x")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`sidecar.image` is an alias (`*defaults`); set the anchored value instead"
        );
        // A key inside a block scalar is text, not a path.
        assert!(set(VALUES, "config.tag", &json!("x")).is_err());
        assert!(matches!(
            set(VALUES, "a..b", &json!("x")),
            Err(SetError::BadPath { .. })
        ));
    }

    #[test]
    fn unicode_before_the_target_is_counted_in_bytes() {
        let text = "name: \"héllo wörld\"  # ünïcode\ntag: v1\n";
        let edited = set(text, "tag", &json!("v2")).unwrap();
        assert_eq!(edited, "name: \"héllo wörld\"  # ünïcode\ntag: v2\n");
    }

    #[test]
    fn paths_parse() {
        assert_eq!(
            parse_path("spec.template.spec.containers[0].image").unwrap(),
            vec![
                Segment::Key("spec".into()),
                Segment::Key("template".into()),
                Segment::Key("spec".into()),
                Segment::Key("containers".into()),
                Segment::Index(0),
                Segment::Key("image".into()),
            ]
        );
        assert!(parse_path("a[x]").is_err());
        assert!(parse_path("").is_err());
    }
}
