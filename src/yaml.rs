//! Owns all YAML parsing and serializing in vane: one swappable backend, and
//! errors that say where (line, column) and suggest the key that was meant.
//!
//! The backend (`serde_yaml`, archived upstream) is only ever named through the
//! `backend` alias below; switching to a maintained drop-in such as `serde_norway`
//! means changing that one `use`. Positions of nodes that the backend cannot
//! report (values deserialized from an already-parsed [`Value`]) come from
//! yaml-rust2's marked event parser, which is only run on the error path.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_yaml as backend;
use yaml_rust2::Event;
use yaml_rust2::parser::Parser;
use yaml_rust2::scanner::TScalarStyle;

/// A position in a YAML source, 1-based.
///
/// Displays as `line:column`, so a caller can print `file:line:column`; orders
/// by line, then column (document order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    /// Line number, starting at 1.
    pub line: usize,
    /// Column number in characters, starting at 1.
    pub column: usize,
}

impl Position {
    /// A position from 1-based line and column.
    pub fn new(line: usize, column: usize) -> Self {
        Position { line, column }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One step of a path into a YAML document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// The value of this key in a mapping.
    Key(String),
    /// The element at this 0-based index in a sequence.
    Index(usize),
}

impl fmt::Display for PathSegment {
    /// A key is shown bare unless it would be ambiguous in a path (dots,
    /// spaces, brackets, quotes, or empty), then double-quoted; an index as `[n]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSegment::Index(index) => write!(f, "[{index}]"),
            PathSegment::Key(key) => {
                let needs_quotes = key.is_empty()
                    || key.chars().any(|c| {
                        c.is_whitespace() || matches!(c, '.' | '[' | ']' | '"' | '\'' | '\\')
                    });
                if !needs_quotes {
                    return f.write_str(key);
                }
                f.write_str("\"")?;
                for c in key.chars() {
                    if matches!(c, '"' | '\\') {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str("\"")
            }
        }
    }
}

/// A path like `on.push.branches[1]`; Display renders it that way.
///
/// The empty path is the whole document and displays as `(document)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct YamlPath(pub Vec<PathSegment>);

impl YamlPath {
    /// The empty path: the document's root node.
    pub fn root() -> Self {
        YamlPath(Vec::new())
    }

    /// A new path with `key` appended (builder style: `path.key("on").index(1)`).
    #[must_use]
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut path = self.clone();
        path.push_key(key);
        path
    }

    /// A new path with `index` appended (builder style).
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        let mut path = self.clone();
        path.push_index(index);
        path
    }

    /// Appends a mapping key in place.
    pub fn push_key(&mut self, key: impl Into<String>) {
        self.0.push(PathSegment::Key(key.into()));
    }

    /// Appends a sequence index in place.
    pub fn push_index(&mut self, index: usize) {
        self.0.push(PathSegment::Index(index));
    }

    /// A new path with all of `other`'s segments appended.
    #[must_use]
    pub fn join(&self, other: &YamlPath) -> Self {
        let mut path = self.clone();
        path.0.extend(other.0.iter().cloned());
        path
    }

    /// The path without its last segment; `None` for the root.
    pub fn parent(&self) -> Option<YamlPath> {
        let (_, head) = self.0.split_last()?;
        Some(YamlPath(head.to_vec()))
    }

    /// The segments, outermost first.
    pub fn segments(&self) -> &[PathSegment] {
        &self.0
    }

    /// Whether this is the root path.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl From<Vec<PathSegment>> for YamlPath {
    fn from(segments: Vec<PathSegment>) -> Self {
        YamlPath(segments)
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            if i > 0 && matches!(segment, PathSegment::Key(_)) {
                f.write_str(".")?;
            }
            write!(f, "{segment}")?;
        }
        Ok(())
    }
}

/// The dynamic YAML value (re-export of the backend's Value).
pub type Value = backend::Value;
/// A YAML mapping (re-export of the backend's Mapping); keeps insertion order.
pub type Mapping = backend::Mapping;
/// A YAML sequence (re-export of the backend's Sequence).
pub type Sequence = backend::Sequence;

/// A parse or shape error, with where it is.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    /// Where in the source the problem is, when known.
    pub position: Option<Position>,
    /// What is wrong, in user terms; never repeats the position.
    pub message: String,
}

impl YamlError {
    /// An error with a message and an optional position.
    pub fn new(message: impl Into<String>, position: Option<Position>) -> Self {
        YamlError {
            position,
            message: message.into(),
        }
    }

    /// The same error, placed at `position`.
    #[must_use]
    pub fn at(mut self, position: Position) -> Self {
        self.position = Some(position);
        self
    }

    /// The error as a user should see it for a file: `file:line:column: message`
    /// (or `file: message` when the position is unknown).
    pub fn render(&self, file: &str) -> String {
        match self.position {
            Some(position) => format!("{file}:{position}: {}", self.message),
            None => format!("{file}: {}", self.message),
        }
    }
}

/// Deserializes a whole document into `T`.
///
/// The error carries the backend's position, and its message is rewritten
/// for users: unknown keys get a did-you-mean suggestion, `missing field`
/// becomes `missing required key`, and so on. The backend's path to the
/// failing node (e.g. `on.push: `) is kept as a prefix.
pub fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    backend::from_str(text)
        .map_err(|error| explain(confine_to_line(backend_error(error), text), text))
}

/// [`from_str`], reporting every unknown key rather than the first: each one found is taken out
/// of the document and the conversion tried again, so all unknown keys of a mapping and those
/// below it come out in one round. An unknown key with a close match that the mapping lacks
/// (`step:` for `steps:`) is read as that key, so that the problems inside it are found too.
/// Stops at the first problem of another kind. The problems come in document order, with the
/// value the document converts to once its unknown keys are out (`None` after another kind of
/// problem), so that a loader can go on to find the problems below.
pub fn from_str_all<T: serde::de::DeserializeOwned>(text: &str) -> (Option<T>, Vec<YamlError>) {
    let first = match from_str::<T>(text) {
        Ok(result) => return (Some(result), Vec::new()),
        Err(error) => error,
    };
    if !first.message.contains("unknown key `") {
        return (None, vec![first]);
    }
    let Ok(value) = parse_value(text) else {
        return (None, vec![first]);
    };
    match from_value_all::<T>(value, text, &YamlPath::root()) {
        (result, errors) if errors.is_empty() => (result, vec![first]),
        found => found,
    }
}

/// [`from_value`], reporting every unknown key as [`from_str_all`] does. `path` is where `value`
/// sits in `text`.
pub fn from_value_all<T: serde::de::DeserializeOwned>(
    mut value: Value,
    text: &str,
    path: &YamlPath,
) -> (Option<T>, Vec<YamlError>) {
    let mut converted = None;
    let mut errors = Vec::new();
    // Keys read under another name: (the path as deserialized, the path as written).
    let mut renames: Vec<(Vec<PathSegment>, Vec<PathSegment>)> = Vec::new();
    // Bounded: each round removes one key, and a document has finitely many.
    for _ in 0..200 {
        let sink = Sink::default();
        let tracked = Track {
            value: &value,
            chain: Chain::Root,
            sink: &sink,
        };
        let error = match T::deserialize(tracked) {
            Ok(result) => {
                converted = Some(result);
                break;
            }
            Err(error) => error,
        };
        let raw = backend_message(&error);
        let Some(failure) = sink.into_inner().filter(|failure| failure.message == raw) else {
            break;
        };
        let written = path.join(&YamlPath(as_written(&failure.path, &renames)));
        let context = if failure.at_key {
            written.parent().unwrap_or_default()
        } else {
            written.clone()
        };
        let body = rewrite_serde_message(&raw);
        let message = if context.is_empty() {
            body.clone()
        } else {
            format!("{context}: {body}")
        };
        errors.push(YamlError::new(
            message,
            locate_nearest(text, &written, failure.at_key),
        ));
        let Some((PathSegment::Key(key), parent)) = failure.path.split_last() else {
            break;
        };
        if !(failure.at_key && raw.starts_with("unknown field `")) {
            break;
        }
        let Some(Value::Mapping(mapping)) = value_at_mut(&mut value, parent) else {
            break;
        };
        let Some(removed) = mapping.remove(key.as_str()) else {
            break;
        };
        let suggestion = body
            .split_once("(did you mean `")
            .and_then(|(_, rest)| rest.split_once('`'))
            .map(|(name, _)| name.to_string());
        // Only a mapping or list can hide more problems; a misspelt scalar is just left out.
        let container = matches!(untagged(&removed), Value::Mapping(_) | Value::Sequence(_));
        if let Some(name) = suggestion
            && container
            && !mapping.contains_key(name.as_str())
        {
            mapping.insert(Value::String(name.clone()), removed);
            let mut read = parent.to_vec();
            read.push(PathSegment::Key(name));
            let mut original = parent.to_vec();
            original.push(PathSegment::Key(key.clone()));
            renames.push((read, original));
        }
    }
    // Renamed keys are read after the others; the file's order is the one to show.
    errors.sort_by_key(|error| error.position);
    (converted, errors)
}

/// `path` as the file spells it, undoing the renames [`from_str_all`] made.
fn as_written(
    path: &[PathSegment],
    renames: &[(Vec<PathSegment>, Vec<PathSegment>)],
) -> Vec<PathSegment> {
    let mut path = path.to_vec();
    for (read, original) in renames.iter().rev() {
        if path.starts_with(read) {
            path.splice(..read.len(), original.iter().cloned());
        }
    }
    path
}

/// The node at `path` below `value`, for changing it.
fn value_at_mut<'v>(value: &'v mut Value, path: &[PathSegment]) -> Option<&'v mut Value> {
    let mut cursor = value;
    for segment in path {
        while let Value::Tagged(tagged) = cursor {
            cursor = &mut tagged.value;
        }
        cursor = match (segment, cursor) {
            (PathSegment::Key(key), Value::Mapping(mapping)) => mapping.get_mut(key.as_str())?,
            (PathSegment::Index(index), Value::Sequence(items)) => items.get_mut(*index)?,
            _ => return None,
        };
    }
    Some(cursor)
}

/// Keeps an error from showing more of the file than the line it points at: a string value the
/// message quotes (`string `…``) that is not text of that line (a plain scalar folded over
/// several lines, a file that is one long string) is left out. A workflow file can be a
/// link or a mistake, and its content is not always the user's to print.
fn confine_to_line(mut error: YamlError, text: &str) -> YamlError {
    let line = error
        .position
        .and_then(|position| text.lines().nth(position.line.saturating_sub(1)))
        .unwrap_or_default();
    let mut rest = error.message.as_str();
    let mut confined = String::with_capacity(rest.len());
    while let Some(start) = rest.find("string `") {
        let value_start = start + "string `".len();
        let Some(length) = rest[value_start..].find('`') else {
            break;
        };
        let value = &rest[value_start..value_start + length];
        confined.push_str(&rest[..start]);
        if !value.is_empty() && line.contains(value) {
            confined.push_str(&rest[start..value_start + length + 1]);
        } else {
            confined.push_str("a string");
        }
        rest = &rest[value_start + length + 1..];
    }
    confined.push_str(rest);
    error.message = confined;
    error
}

/// Converts an already-parsed [`Value`] (e.g. one value of a map whose keys are
/// dynamic) into `T`.
///
/// `path` is where `value` sits in `text`. The backend reports no position
/// for values, so the conversion tracks the path of the node that failed, and
/// its position is then found with [`locate`]. The message is rewritten as in
/// [`from_str`] and prefixed with the path of the failing node (for an
/// unknown key, the path of the mapping holding it).
pub fn from_value<T: serde::de::DeserializeOwned>(
    value: Value,
    text: &str,
    path: &YamlPath,
) -> Result<T, YamlError> {
    let sink = Sink::default();
    let tracked = Track {
        value: &value,
        chain: Chain::Root,
        sink: &sink,
    };
    let error = match T::deserialize(tracked) {
        Ok(result) => return Ok(result),
        Err(error) => error,
    };
    let raw = backend_message(&error);
    // A failure recorded for an error that was later recovered from (e.g. one
    // arm of an untagged enum) must not be blamed: only trust a matching one.
    let (inner, at_key) = match sink.into_inner() {
        Some(failure) if failure.message == raw => (failure.path, failure.at_key),
        _ => (Vec::new(), false),
    };
    let full = path.join(&YamlPath(inner));
    let context = if at_key {
        full.parent().unwrap_or_default()
    } else {
        full.clone()
    };
    let body = rewrite_serde_message(&raw);
    let message = if context.is_empty() {
        body
    } else {
        format!("{context}: {body}")
    };
    Err(YamlError::new(message, locate_nearest(text, &full, at_key)))
}

/// Parses `text` to a [`Value`]. An empty document is `Value::Null`.
pub fn parse_value(text: &str) -> Result<Value, YamlError> {
    backend::from_str(text)
        .map_err(|error| explain(confine_to_line(backend_error(error), text), text))
}

/// Serializes `value` to YAML text (used by the `toyaml` template filter).
pub fn to_string<T: serde::Serialize>(value: &T) -> Result<String, YamlError> {
    backend::to_string(value).map_err(backend_error)
}

/// Where the node at `path` starts in `text`.
///
/// For a path ending in a `Key` segment, `at_key` picks the position of the key
/// itself instead of its value. A block mapping starts at its first key, a
/// block scalar at its `|`/`>` indicator, an alias at its `*`, and an omitted
/// value (`key:`) at its key. Paths through aliases and `<<` merge keys are
/// followed to the anchored node. Returns `None` if the path does not exist or
/// `text` is not YAML up to that node. Re-parses `text`: meant for error paths.
pub fn locate(text: &str, path: &YamlPath, at_key: bool) -> Option<Position> {
    position_in(&index_nodes(text), &path.0, at_key)
}

/// The closest candidate to `unknown` if it is close enough to be a plausible typo.
///
/// Comparison ignores case; a candidate counts as close when its edit distance
/// (with transpositions) is at most a third of the longer name, or its
/// Jaro-Winkler similarity is at least 0.9. The most similar one wins.
pub fn did_you_mean<'a>(unknown: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let unknown = unknown.to_lowercase();
    let mut best: Option<(&'a str, f64, usize)> = None;
    for &candidate in candidates {
        let lower = candidate.to_lowercase();
        let distance = strsim::osa_distance(&unknown, &lower);
        let similarity = strsim::jaro_winkler(&unknown, &lower);
        let longest = unknown.chars().count().max(lower.chars().count());
        if distance * 3 > longest && similarity < 0.9 {
            continue;
        }
        let better = match best {
            None => true,
            Some((_, best_similarity, best_distance)) => {
                similarity > best_similarity
                    || (similarity == best_similarity && distance < best_distance)
            }
        };
        if better {
            best = Some((candidate, similarity, distance));
        }
    }
    best.map(|(candidate, _, _)| candidate)
}

// ---------------------------------------------------------------------------
// Backend errors and message rewriting

/// Converts a backend error into ours, keeping the backend's position.
fn backend_error(error: backend::Error) -> YamlError {
    let position = error
        .location()
        .map(|location| Position::new(location.line(), location.column()));
    YamlError::new(rewrite_serde_message(&backend_message(&error)), position)
}

/// A backend error made clearer with what only the text shows: a duplicate key placed at its
/// second occurrence, a hint to quote a value holding `: `.
fn explain(error: YamlError, text: &str) -> YamlError {
    colon_hint(duplicate_at_second(error, text), text)
}

/// The backend reports a duplicate key where its mapping starts (`1:1` for the document); the
/// problem is the second occurrence, which this finds among the block mapping's keys (those at
/// the column of the reported position). Flow mappings keep the reported position.
fn duplicate_at_second(mut error: YamlError, text: &str) -> YamlError {
    let (Some(position), Some(key)) = (
        error.position,
        error
            .message
            .split_once("duplicate key `")
            .and_then(|(_, rest)| rest.split_once('`'))
            .map(|(key, _)| key.to_string()),
    ) else {
        return error;
    };
    let column = position.column.saturating_sub(1);
    let is_key = |rest: &str| {
        [key.clone(), format!("\"{key}\""), format!("'{key}'")]
            .iter()
            .any(|spelled| {
                rest.strip_prefix(spelled.as_str())
                    .is_some_and(|after| after.trim_start().starts_with(':'))
            })
    };
    let mut seen = 0;
    for (index, line) in text
        .lines()
        .enumerate()
        .skip(position.line.saturating_sub(1))
    {
        let indent = line.chars().take_while(|c| *c == ' ').count();
        let content = line.trim();
        let first = index + 1 == position.line;
        if !first && !content.is_empty() && !content.starts_with('#') && indent < column {
            break;
        }
        let rest: String = line.chars().skip(column).collect();
        if (first || indent == column) && is_key(&rest) {
            seen += 1;
            if seen == 2 {
                error.position = Some(Position::new(index + 1, column + 1));
                break;
            }
        }
    }
    error
}

/// `run: echo a: b` reads as a mapping inside a plain scalar; the fix is quoting, which the
/// parser's wording does not say. Only where the line has a `key: ` before the failing `:` (an
/// indentation slip fails the same way and needs no quotes).
fn colon_hint(mut error: YamlError, text: &str) -> YamlError {
    let Some(position) = error.position else {
        return error;
    };
    let line = text
        .lines()
        .nth(position.line.saturating_sub(1))
        .unwrap_or("");
    let before: String = line
        .chars()
        .take(position.column.saturating_sub(1))
        .collect();
    let value_has_colon = before
        .trim_start()
        .trim_start_matches("- ")
        .split_once(": ")
        .is_some_and(|(_, value)| !value.trim().is_empty());
    if error.message.starts_with("mapping values are not allowed") && value_has_colon {
        error
            .message
            .push_str(" (a value holding `: ` must be quoted: `key: \"a: b\"`)");
    }
    error
}

/// The backend's message without the position it appends to its Display
/// (the position is carried separately). A second, different position (a
/// parser's "while parsing ... at line N column M" context) is kept.
fn backend_message(error: &backend::Error) -> String {
    let message = error.to_string();
    let Some(location) = error.location() else {
        return message;
    };
    let at = format!(" at line {} column {}", location.line(), location.column());
    if let Some(stripped) = message.strip_suffix(&at) {
        return stripped.to_string();
    }
    if let Some(start) = message.find(&format!("{at}, ")) {
        return format!("{}{}", &message[..start], &message[start + at.len()..]);
    }
    // The backend writes the byte offset instead when the mark is at 1:1.
    let offset = format!(" at position {}", location.index());
    if let Some(stripped) = message.strip_suffix(&offset) {
        return stripped.to_string();
    }
    message
}

/// How serde and the backend start the messages that [`rewrite_body`] knows;
/// used to tell a `path: ` prefix from the message proper.
const KNOWN_STARTS: &[&str] = &[
    "unknown field `",
    "unknown variant `",
    "missing field `",
    "duplicate field `",
    "duplicate entry ",
    "invalid type: ",
    "invalid value: ",
    "invalid length ",
];

/// Rewrites a serde error message (from the YAML backend or any other serde
/// format, e.g. serde_json, once its position is cut off) into vane's wording:
/// `unknown field` becomes `unknown key` with a did-you-mean suggestion,
/// `missing field` becomes `missing required key`, Rust type names become YAML
/// ones. A `path: ` prefix in front of a known message is kept; messages of
/// unknown shape are returned unchanged.
pub fn rewrite_serde_message(raw: &str) -> String {
    let starts_known = |s: &str| KNOWN_STARTS.iter().any(|start| s.starts_with(start));
    if starts_known(raw) {
        return rewrite_body(raw);
    }
    for (at, _) in raw.match_indices(": ") {
        let rest = &raw[at + 2..];
        if starts_known(rest) {
            return format!("{}: {}", &raw[..at], rewrite_body(rest));
        }
    }
    raw.to_string()
}

/// Rewrites one message without a path prefix; unknown shapes pass through.
fn rewrite_body(body: &str) -> String {
    if let Some(rest) = body.strip_prefix("unknown field `")
        && let Some(text) = rewrite_unknown("key", rest)
    {
        return text;
    }
    if let Some(rest) = body.strip_prefix("unknown variant `")
        && let Some(text) = rewrite_unknown("value", rest)
    {
        return text;
    }
    if let Some(rest) = body.strip_prefix("missing field ") {
        return format!("missing required key {rest}");
    }
    if let Some(rest) = body.strip_prefix("duplicate field ") {
        return format!("duplicate key {rest}");
    }
    if let Some(rest) = body.strip_prefix("duplicate entry with key ") {
        return format!("duplicate key {}", backticked(rest));
    }
    for kind in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = body.strip_prefix(kind) {
            // The expected part comes from a visitor and never holds this
            // separator; the unexpected part may (inside a string), so split last.
            if let Some(split) = rest.rfind(", expected ") {
                let unexpected = describe_unexpected(&rest[..split]);
                let expected = describe_expected(&rest[split + ", expected ".len()..]);
                return format!("{kind}{unexpected}, expected {expected}");
            }
        }
    }
    body.to_string()
}

/// `rest` follows "unknown field `" / "unknown variant `": `name`, then serde's
/// list of what was expected. Returns None if it is not in that shape.
fn rewrite_unknown(what: &str, rest: &str) -> Option<String> {
    let (name, expected) = [
        "`, expected ",
        "`, there are no fields",
        "`, there are no variants",
    ]
    .iter()
    .find_map(|separator| {
        let at = rest.find(separator)?;
        Some((&rest[..at], &rest[at + 1..]))
    })?;
    // serde lists names as `a`, `a` or `b`, or one of `a`, `b`, `c`:
    // every other backtick-delimited piece is a name.
    let names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    Some(describe_unknown(what, name, &names))
}

/// The error for a key of the mapping at `path` that is none of `expected`, worded and placed
/// as [`from_value`] words and places the ones serde finds. For mappings whose keys are only
/// known at run time (a step's keys come from the registry of step kinds).
pub fn unknown_key(text: &str, path: &YamlPath, key: &str, expected: &[&str]) -> YamlError {
    let body = describe_unknown("key", key, expected);
    let message = if path.is_empty() {
        body
    } else {
        format!("{path}: {body}")
    };
    YamlError::new(message, locate_nearest(text, &path.key(key), true))
}

/// `unknown key `x` (did you mean `y`?)`, or the names expected when none is close.
fn describe_unknown(what: &str, name: &str, names: &[&str]) -> String {
    if let Some(suggestion) = did_you_mean(name, names) {
        format!("unknown {what} `{name}` (did you mean `{suggestion}`?)")
    } else {
        match names {
            [] => format!("unknown {what} `{name}` (none are allowed here)"),
            [only] => format!("unknown {what} `{name}`, expected `{only}`"),
            _ => format!(
                "unknown {what} `{name}`, expected one of {}",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// `"text"` (Rust debug quoting, as serde prints strings) to `` `text` `` when
/// nothing in it was escaped; anything else is returned unchanged.
fn backticked(quoted: &str) -> String {
    match quoted.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) if !inner.contains(['\\', '`']) => format!("`{inner}`"),
        _ => quoted.to_string(),
    }
}

/// serde's description of what was found, in YAML terms.
fn describe_unexpected(found: &str) -> String {
    if let Some(quoted) = found.strip_prefix("string ") {
        return format!("string {}", backticked(quoted));
    }
    match found {
        "map" => "mapping".to_string(),
        "unit value" => "null".to_string(),
        _ => found.to_string(),
    }
}

/// A visitor's description of what it expected, in YAML terms rather than
/// Rust type names.
fn describe_expected(expected: &str) -> String {
    let is_ident = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_');
    if expected.strip_prefix("struct ").is_some_and(is_ident) {
        return "a mapping".to_string();
    }
    match expected {
        "a map" | "map" => "a mapping",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
        "f32" | "f64" => "a number",
        "a borrowed string" => "a string",
        other => other,
    }
    .to_string()
}

/// Aliases and merge keys can chain; a handful of hops covers real files and
/// bounds the work on pathological ones.
const MAX_HOPS: usize = 8;

/// Where the node at `path` is among `nodes` (see [`locate`]).
fn position_in(nodes: &[Node], path: &[PathSegment], at_key: bool) -> Option<Position> {
    let node = resolve(nodes, path, MAX_HOPS)?;
    Some(match node.key {
        Some(key) if at_key => key,
        _ => node.value,
    })
}

/// The position of `path`, or failing that of its nearest ancestor that exists
/// (a value that came through something `locate` cannot follow still gets a
/// useful position).
fn locate_nearest(text: &str, path: &YamlPath, at_key: bool) -> Option<Position> {
    let nodes = index_nodes(text);
    position_in(&nodes, &path.0, at_key).or_else(|| {
        (0..path.0.len())
            .rev()
            .find_map(|len| position_in(&nodes, &path.0[..len], false))
    })
}

// ---------------------------------------------------------------------------
// Path tracking while deserializing a Value

/// The innermost failure seen while deserializing a Value.
struct Failure {
    /// Path relative to the value being converted.
    path: Vec<PathSegment>,
    /// The failure is about the key at `path` (e.g. an unknown key), not its value.
    at_key: bool,
    /// The error's message, to check it is the error that was finally returned.
    message: String,
}

type Sink = RefCell<Option<Failure>>;

/// Where a tracked deserializer is, as a chain of borrowed parents (cheap:
/// built on the stack, turned into a path only when something fails).
#[derive(Clone, Copy)]
enum Chain<'a> {
    Root,
    Key(&'a Chain<'a>, &'a Value),
    Index(&'a Chain<'a>, usize),
}

impl Chain<'_> {
    fn segments(&self) -> Vec<PathSegment> {
        let mut segments = Vec::new();
        let mut cursor = self;
        loop {
            match cursor {
                Chain::Root => break,
                Chain::Key(parent, key) => {
                    segments.push(key_segment(key));
                    cursor = parent;
                }
                Chain::Index(parent, index) => {
                    segments.push(PathSegment::Index(*index));
                    cursor = parent;
                }
            }
        }
        segments.reverse();
        segments
    }
}

/// A mapping key as a path segment, spelled as YAML would show a scalar key.
fn key_segment(key: &Value) -> PathSegment {
    PathSegment::Key(match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        Value::Tagged(tagged) => return key_segment(&tagged.value),
        // Complex keys cannot be named in a path; locate will not find this.
        Value::Sequence(_) | Value::Mapping(_) => "?".to_string(),
    })
}

/// Records the first (innermost) failure; errors propagate outwards, so later
/// calls for the same error come from enclosing nodes and are ignored.
fn record<T>(
    result: Result<T, backend::Error>,
    sink: &Sink,
    chain: &Chain<'_>,
    at_key: bool,
) -> Result<T, backend::Error> {
    if let Err(error) = &result {
        let mut slot = sink.borrow_mut();
        if slot.is_none() {
            *slot = Some(Failure {
                path: chain.segments(),
                at_key,
                message: backend_message(error),
            });
        }
    }
    result
}

/// The value under any tags, as the backend sees it for sequences and maps.
fn untagged(mut value: &Value) -> &Value {
    while let Value::Tagged(tagged) = value {
        value = &tagged.value;
    }
    value
}

/// A deserializer over a borrowed Value that behaves like the backend's own
/// (it delegates every leaf to it) but remembers where a failure happened.
struct Track<'de, 'a> {
    value: &'de Value,
    chain: Chain<'a>,
    sink: &'a Sink,
}

/// Delegates a leaf `deserialize_*` method to the backend and records failure.
macro_rules! delegate {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Self::Error> {
                let result = de::Deserializer::$method(self.value, $($arg,)* visitor);
                record(result, self.sink, &self.chain, false)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for Track<'de, '_> {
    type Error = backend::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let result = match self.value {
            Value::Mapping(mapping) => visit_mapping(mapping, &self.chain, self.sink, visitor),
            Value::Sequence(sequence) => visit_sequence(sequence, &self.chain, self.sink, visitor),
            value => de::Deserializer::deserialize_any(value, visitor),
        };
        record(result, self.sink, &self.chain, false)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let (sink, chain) = (self.sink, self.chain);
        let result = match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        };
        record(result, sink, &chain, false)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let (sink, chain) = (self.sink, self.chain);
        let result = visitor.visit_newtype_struct(self);
        record(result, sink, &chain, false)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let result = match untagged(self.value) {
            Value::Sequence(sequence) => visit_sequence(sequence, &self.chain, self.sink, visitor),
            // Null (an empty sequence) and wrong types: the backend decides.
            _ => de::Deserializer::deserialize_seq(self.value, visitor),
        };
        record(result, self.sink, &self.chain, false)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let result = match untagged(self.value) {
            Value::Mapping(mapping) => visit_mapping(mapping, &self.chain, self.sink, visitor),
            // Null (an empty mapping) and wrong types: the backend decides.
            _ => de::Deserializer::deserialize_map(self.value, visitor),
        };
        record(result, self.sink, &self.chain, false)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_map(visitor)
    }

    delegate! {
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }
}

/// Visits a mapping with path tracking; like the backend, it is an error for
/// the visitor to leave entries unread.
fn visit_mapping<'de, V: Visitor<'de>>(
    mapping: &'de Mapping,
    chain: &Chain<'_>,
    sink: &Sink,
    visitor: V,
) -> Result<V::Value, backend::Error> {
    let mut access = TrackMap {
        iter: mapping.iter(),
        pending: None,
        chain,
        sink,
    };
    let value = visitor.visit_map(&mut access)?;
    if access.iter.len() == 0 {
        Ok(value)
    } else {
        Err(de::Error::invalid_length(
            mapping.len(),
            &"fewer elements in map",
        ))
    }
}

/// Visits a sequence with path tracking; like the backend, it is an error for
/// the visitor to leave elements unread.
fn visit_sequence<'de, V: Visitor<'de>>(
    sequence: &'de Sequence,
    chain: &Chain<'_>,
    sink: &Sink,
    visitor: V,
) -> Result<V::Value, backend::Error> {
    let mut access = TrackSeq {
        iter: sequence.iter(),
        next: 0,
        chain,
        sink,
    };
    let value = visitor.visit_seq(&mut access)?;
    if access.iter.len() == 0 {
        Ok(value)
    } else {
        Err(de::Error::invalid_length(
            sequence.len(),
            &"fewer elements in sequence",
        ))
    }
}

struct TrackMap<'de, 'a> {
    iter: backend::mapping::Iter<'de>,
    /// The entry whose key was just handed out and whose value is next.
    pending: Option<(&'de Value, &'de Value)>,
    chain: &'a Chain<'a>,
    sink: &'a Sink,
}

impl<'de> MapAccess<'de> for TrackMap<'de, '_> {
    type Error = backend::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.iter.next() else {
            return Ok(None);
        };
        self.pending = Some((key, value));
        // A key that the target rejects (unknown field) is blamed on the key.
        let result = seed.deserialize(key);
        record(result, self.sink, &Chain::Key(self.chain, key), true).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, Self::Error> {
        let Some((key, value)) = self.pending.take() else {
            return Err(de::Error::custom("value is missing"));
        };
        let chain = Chain::Key(self.chain, key);
        let result = seed.deserialize(Track {
            value,
            chain,
            sink: self.sink,
        });
        // Also recorded here: a seed may fail after the deserializer returned
        // (e.g. an untagged enum matching buffered content).
        record(result, self.sink, &chain, false)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct TrackSeq<'de, 'a> {
    iter: std::slice::Iter<'de, Value>,
    next: usize,
    chain: &'a Chain<'a>,
    sink: &'a Sink,
}

impl<'de> SeqAccess<'de> for TrackSeq<'de, '_> {
    type Error = backend::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Self::Error> {
        let Some(value) = self.iter.next() else {
            return Ok(None);
        };
        let chain = Chain::Index(self.chain, self.next);
        self.next += 1;
        let result = seed.deserialize(Track {
            value,
            chain,
            sink: self.sink,
        });
        record(result, self.sink, &chain, false).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

// ---------------------------------------------------------------------------
// Positions of nodes, from yaml-rust2's marked events

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    Scalar,
    /// An alias to the node with this anchor id.
    Alias(usize),
    Sequence,
    Mapping,
}

/// A node of the first document that can be named by a path.
#[derive(Debug)]
struct Node {
    path: YamlPath,
    /// Where its key starts, for a mapping value.
    key: Option<Position>,
    /// Where the node itself starts.
    value: Position,
    /// Its anchor id, 0 if none (yaml-rust2 numbers anchors from 1).
    anchor: usize,
    kind: NodeKind,
}

/// A collection being walked.
enum Frame {
    Mapping {
        /// Index into the nodes; None when the mapping has no path (it sits
        /// under a complex key).
        node: Option<usize>,
        /// The key read and waiting for its value: its text (None for a
        /// collection used as a key) and position.
        key: Option<(Option<String>, Position)>,
    },
    Sequence {
        node: Option<usize>,
        next: usize,
    },
    /// Inside a collection used as a mapping key: nothing here has a path.
    ComplexKey {
        depth: usize,
    },
}

/// What a node event is, given the collection it is in.
enum Role {
    Root,
    Key {
        parent: Option<usize>,
    },
    Value {
        parent: Option<usize>,
        name: Option<String>,
        key_position: Position,
    },
    Element {
        parent: Option<usize>,
        index: usize,
    },
}

/// yaml-rust2 markers: lines are 1-based, columns 0-based (checked by tests).
fn position_of(marker: &yaml_rust2::scanner::Marker) -> Position {
    Position::new(marker.line(), marker.col() + 1)
}

/// All nodes of the first document with their paths and positions, in
/// document order. On a syntax error, the nodes before it.
fn index_nodes(source: &str) -> Vec<Node> {
    let lines: Vec<&str> = source.lines().collect();
    let mut walker = Walker::default();
    let mut parser = Parser::new_from_str(source);
    while let Ok((event, marker)) = parser.next_token() {
        let position = position_of(&marker);
        match event {
            Event::Scalar(text, style, anchor, _) => {
                let position = match style {
                    TScalarStyle::Literal | TScalarStyle::Folded => {
                        block_indicator(&lines, position).unwrap_or(position)
                    }
                    _ => position,
                };
                // An empty plain scalar is an omitted value (`key:`); its
                // marker is wherever the next token is, so use the key instead.
                let empty = style == TScalarStyle::Plain && text.is_empty();
                if anchor != 0 {
                    walker.anchored_scalars.push((anchor, text.clone()));
                }
                walker.node(NodeKind::Scalar, position, anchor, Some(text), empty);
            }
            Event::Alias(id) => {
                let text = walker
                    .anchored_scalars
                    .iter()
                    .find(|(anchor, _)| *anchor == id)
                    .map(|(_, text)| text.clone());
                walker.node(NodeKind::Alias(id), position, 0, text, false);
            }
            Event::SequenceStart(anchor, _) => {
                walker.node(NodeKind::Sequence, position, anchor, None, false);
            }
            Event::MappingStart(anchor, _) => {
                walker.node(NodeKind::Mapping, position, anchor, None, false);
            }
            Event::SequenceEnd | Event::MappingEnd => walker.end(),
            Event::DocumentEnd | Event::StreamEnd => break,
            Event::Nothing | Event::StreamStart | Event::DocumentStart => {}
        }
    }
    walker.nodes
}

/// Where the block scalar whose event is marked at `marker` starts: at its
/// `|` or `>` indicator. yaml-rust2 marks it where its content starts, which
/// is after the header line and any blank lines (a block scalar cannot hold
/// comments, so the header is on the last non-blank line before).
fn block_indicator(lines: &[&str], marker: Position) -> Option<Position> {
    let marked_line = lines.get(marker.line.checked_sub(1)?)?;
    if matches!(marked_line.chars().nth(marker.column - 1), Some('|' | '>')) {
        return Some(marker);
    }
    // On the marked line only what is before the mark can be the header.
    let mut candidate: Vec<char> = marked_line.chars().take(marker.column - 1).collect();
    let mut line = marker.line;
    while candidate.iter().all(|c| c.is_whitespace()) {
        line -= 1;
        candidate = lines.get(line.checked_sub(1)?)?.chars().collect();
    }
    // The indicator is the first `|` or `>` followed only by indentation or
    // chomping digits/signs and an optional comment: one inside a quoted key
    // or a comment is followed by something else.
    let is_header_rest = |rest: &[char]| {
        let flags = rest
            .iter()
            .take_while(|c| c.is_ascii_digit() || matches!(c, '+' | '-'))
            .count();
        let tail = &rest[flags..];
        match tail.iter().position(|c| !c.is_whitespace()) {
            None => true,
            Some(at) => at > 0 && tail[at] == '#',
        }
    };
    (0..candidate.len())
        .find(|&at| matches!(candidate[at], '|' | '>') && is_header_rest(&candidate[at + 1..]))
        .map(|at| Position::new(line, at + 1))
}

/// State of the walk over parser events.
#[derive(Default)]
struct Walker {
    nodes: Vec<Node>,
    stack: Vec<Frame>,
    /// Scalar text by anchor id, so an aliased scalar key can be named.
    anchored_scalars: Vec<(usize, String)>,
}

impl Walker {
    /// Handles a node event: records it (if it can be named by a path) as
    /// the root, a mapping value or a sequence element, or takes it as a key.
    fn node(
        &mut self,
        kind: NodeKind,
        position: Position,
        anchor: usize,
        text: Option<String>,
        empty: bool,
    ) {
        let is_collection = matches!(kind, NodeKind::Sequence | NodeKind::Mapping);
        let role = match self.stack.last_mut() {
            None if self.nodes.is_empty() => Role::Root,
            // A second root cannot happen within one document.
            None => return,
            Some(Frame::ComplexKey { depth }) => {
                if is_collection {
                    *depth += 1;
                }
                return;
            }
            Some(Frame::Mapping { node, key }) => match key.take() {
                None => {
                    let name = if is_collection { None } else { text };
                    *key = Some((name, position));
                    Role::Key { parent: *node }
                }
                Some((name, key_position)) => Role::Value {
                    parent: *node,
                    name,
                    key_position,
                },
            },
            Some(Frame::Sequence { node, next }) => {
                let index = *next;
                *next += 1;
                Role::Element {
                    parent: *node,
                    index,
                }
            }
        };
        // Node indexes in frames always point into `self.nodes`, so indexing
        // below cannot fail.
        let (path, key_position) = match role {
            Role::Root => (Some(YamlPath::root()), None),
            Role::Key { parent } => {
                self.widen_start(parent, position);
                if is_collection {
                    self.stack.push(Frame::ComplexKey { depth: 1 });
                }
                return;
            }
            Role::Value {
                parent,
                name,
                key_position,
            } => (
                parent
                    .zip(name)
                    .map(|(parent, name)| self.nodes[parent].path.key(name)),
                Some(key_position),
            ),
            Role::Element { parent, index } => {
                self.widen_start(parent, position);
                (
                    parent.map(|parent| self.nodes[parent].path.index(index)),
                    None,
                )
            }
        };
        let node = path.map(|path| {
            let value = match key_position {
                Some(key) if empty => key,
                _ => position,
            };
            self.nodes.push(Node {
                path,
                key: key_position,
                value,
                anchor,
                kind,
            });
            self.nodes.len() - 1
        });
        match kind {
            NodeKind::Sequence => self.stack.push(Frame::Sequence { node, next: 0 }),
            NodeKind::Mapping => self.stack.push(Frame::Mapping { node, key: None }),
            NodeKind::Scalar | NodeKind::Alias(_) => {}
        }
    }

    /// Handles the end of a collection.
    fn end(&mut self) {
        if let Some(Frame::ComplexKey { depth }) = self.stack.last_mut() {
            *depth -= 1;
            if *depth > 0 {
                return;
            }
        }
        self.stack.pop();
    }

    /// A collection starts at its first child if that comes before its own
    /// marker: yaml-rust2 marks a block mapping at its first `:`, not its
    /// first key.
    fn widen_start(&mut self, node: Option<usize>, position: Position) {
        if let Some(node) = node.and_then(|i| self.nodes.get_mut(i))
            && position < node.value
        {
            node.value = position;
        }
    }
}

/// Finds the node at `path`, following aliases and `<<` merge keys when the
/// path goes through them, at most `hops` times.
fn resolve<'n>(nodes: &'n [Node], path: &[PathSegment], hops: usize) -> Option<&'n Node> {
    let find = |path: &[PathSegment]| nodes.iter().find(|node| node.path.0 == path);
    if let Some(node) = find(path) {
        return Some(node);
    }
    if hops == 0 {
        return None;
    }
    // The longest prefix that exists decides how the rest can be reached.
    let (split, node) = (0..path.len())
        .rev()
        .find_map(|split| Some((split, find(&path[..split])?)))?;
    let rest = &path[split..];
    let through = |anchor_id: usize| {
        let anchored = nodes.iter().find(|node| node.anchor == anchor_id)?;
        let mut target = anchored.path.0.clone();
        target.extend(rest.iter().cloned());
        resolve(nodes, &target, hops - 1)
    };
    match node.kind {
        NodeKind::Alias(id) => through(id),
        NodeKind::Mapping => {
            // Keys merged in with `<<: *base` or `<<: [*a, *b]`; explicit keys
            // were already tried, and earlier merge sources win, as in YAML.
            let mut merge = path[..split].to_vec();
            merge.push(PathSegment::Key("<<".to_string()));
            let merge_node = find(&merge)?;
            match merge_node.kind {
                NodeKind::Alias(id) => through(id),
                NodeKind::Mapping => {
                    let mut target = merge.clone();
                    target.extend(rest.iter().cloned());
                    resolve(nodes, &target, hops - 1)
                }
                NodeKind::Sequence => nodes
                    .iter()
                    .filter(|node| {
                        node.path.0.len() == merge.len() + 1 && node.path.0.starts_with(&merge)
                    })
                    .find_map(|node| match node.kind {
                        NodeKind::Alias(id) => through(id),
                        _ => None,
                    }),
                _ => None,
            }
        }
        NodeKind::Scalar | NodeKind::Sequence => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Push {
        branches: Vec<String>,
        tags: Option<Vec<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct On {
        push: Option<Push>,
        timeout: Option<u32>,
        shell: Option<Shell>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Workflow {
        on: On,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Shell {
        Bash,
        Sh,
        Pwsh,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Step {
        name: Option<String>,
        run: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    #[allow(dead_code)]
    struct Job {
        runs_on: String,
        steps: Vec<Step>,
    }

    fn pos(line: usize, column: usize) -> Option<Position> {
        Some(Position::new(line, column))
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: Option<String>,
        steps: Option<Vec<Inner>>,
        on: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        run: Option<String>,
        branches: Option<Vec<String>>,
    }

    #[test]
    fn every_unknown_key_is_reported_also_below_a_misspelt_one() {
        let text =
            "name: a\nstep:\n  - rn: x\n    branch: y\non:\n  bogus: 1\n  branch: [m]\nfoo: 1\n";
        let (converted, errors) = from_str_all::<Outer>(text);
        // With the unknown keys out (and `step` read as `steps`), the rest converts.
        assert!(converted.is_some_and(|outer| outer.steps.is_some_and(|steps| steps.len() == 1)));
        let found: Vec<(String, Option<Position>)> = errors
            .into_iter()
            .map(|error| (error.message, error.position))
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    "unknown key `step` (did you mean `steps`?)".to_string(),
                    pos(2, 1)
                ),
                (
                    "step[0]: unknown key `rn` (did you mean `run`?)".to_string(),
                    pos(3, 5)
                ),
                // A scalar is not read under its close match: `branch: y` is not a list.
                (
                    "step[0]: unknown key `branch` (did you mean `branches`?)".to_string(),
                    pos(4, 5)
                ),
                (
                    "on: unknown key `bogus`, expected one of `run`, `branches`".to_string(),
                    pos(6, 3)
                ),
                (
                    "on: unknown key `branch` (did you mean `branches`?)".to_string(),
                    pos(7, 3)
                ),
                (
                    "unknown key `foo`, expected one of `name`, `steps`, `on`".to_string(),
                    pos(8, 1)
                ),
            ]
        );
        let (converted, errors) = from_str_all::<Outer>("name: a\n");
        assert!(converted.is_some() && errors.is_empty());
        let (converted, errors) = from_str_all::<Outer>("name: [a]\nfoo: 1\n");
        assert!(converted.is_none() && errors.len() == 1, "{errors:?}");
    }

    #[test]
    fn a_duplicate_key_is_reported_at_its_second_occurrence() {
        let error = parse_value("version: 1\nname: a\non: {}\nname: b\n").unwrap_err();
        assert_eq!(
            (error.message.as_str(), error.position),
            ("duplicate key `name`", pos(4, 1))
        );
        let error = parse_value("steps:\n  - run: a\n    # c\n    x:\n      run: 1\n    run: b\n")
            .unwrap_err();
        assert_eq!(error.position, pos(6, 5), "{error:?}");
    }

    #[test]
    fn an_unquoted_colon_in_a_value_gets_a_hint_to_quote_it() {
        let error = parse_value("steps:\n  - run: echo a: b\n").unwrap_err();
        assert!(
            error.message.starts_with("mapping values are not allowed")
                && error
                    .message
                    .ends_with("(a value holding `: ` must be quoted: `key: \"a: b\"`)"),
            "{error:?}"
        );
        assert_eq!(error.position, pos(2, 16));
        // An indentation slip fails the same way, and quoting would not help.
        let error = parse_value("on:\n a: 1\n  b: 2\n").unwrap_err();
        assert_eq!(
            error.message,
            "mapping values are not allowed in this context"
        );
    }

    #[test]
    fn from_str_errors() {
        // (name, text, expected message, expected position)
        let cases: &[(&str, &str, &str, Option<Position>)] = &[
            (
                "unknown key with suggestion",
                "# triggers\n\nbranch: [main]\n",
                "unknown key `branch` (did you mean `branches`?)",
                pos(3, 1),
            ),
            (
                "unknown key with no close candidate",
                "branches: [main]\nzzz: 1\n",
                "unknown key `zzz`, expected one of `branches`, `tags`",
                pos(2, 1),
            ),
            (
                "wrong type",
                "branches: main\n",
                "branches: invalid type: string `main`, expected a sequence",
                pos(1, 11),
            ),
            (
                "wrong element type",
                "branches:\n  - main\n  - {x: 1}\n",
                "branches[1]: invalid type: mapping, expected a string",
                pos(3, 5),
            ),
            (
                "missing required key",
                "tags: [v1]\n",
                "missing required key `branches`",
                pos(1, 1),
            ),
            (
                "null where a sequence is needed",
                "branches: ~\n",
                "branches: invalid type: null, expected a sequence",
                pos(1, 11),
            ),
            (
                "duplicate key",
                "branches: [a]\nbranches: [b]\n",
                "duplicate key `branches`",
                // the backend places this at the mapping; `explain` moves it to the second key
                pos(2, 1),
            ),
        ];
        for (name, text, message, position) in cases {
            let error = from_str::<Push>(text).expect_err(name);
            assert_eq!(error.message, *message, "{name}");
            assert_eq!(error.position, *position, "{name}");
        }
    }

    #[test]
    fn from_str_nested_errors_keep_the_backend_path() {
        let cases: &[(&str, &str, &str, Option<Position>)] = &[
            (
                "nested unknown key",
                "on:\n  push:\n    branch: [main]\n",
                "on.push: unknown key `branch` (did you mean `branches`?)",
                pos(3, 5),
            ),
            (
                "unknown variant with suggestion",
                "on:\n  shell: bsh\n",
                "on.shell: unknown value `bsh` (did you mean `bash`?)",
                pos(2, 10),
            ),
            (
                "unknown variant without suggestion",
                "on:\n  shell: fish\n",
                "on.shell: unknown value `fish`, expected one of `bash`, `sh`, `pwsh`",
                pos(2, 10),
            ),
            (
                "negative number for an unsigned field",
                "on:\n  timeout: -1\n",
                "on.timeout: invalid type: integer `-1`, expected a non-negative integer",
                pos(2, 12),
            ),
            (
                "struct expected",
                "on: [push]\n",
                "on: invalid type: sequence, expected a mapping",
                pos(1, 5),
            ),
        ];
        for (name, text, message, position) in cases {
            let error = from_str::<Workflow>(text).expect_err(name);
            assert_eq!(error.message, *message, "{name}");
            assert_eq!(error.position, *position, "{name}");
        }
    }

    #[test]
    fn syntax_errors_have_a_position_and_no_repeat_of_it() {
        let error = parse_value("on:\n a: 1\n  b: 2\n").unwrap_err();
        assert_eq!(error.position, pos(3, 4));
        assert_eq!(
            error.message,
            "mapping values are not allowed in this context"
        );
        assert!(!error.message.contains(" at line "), "{}", error.message);

        let error = parse_value("on: [push\n").unwrap_err();
        assert!(error.position.is_some());
        let position = error.position.unwrap();
        let at = format!("at line {} column {}", position.line, position.column);
        assert!(!error.message.contains(&at), "{}", error.message);
    }

    #[test]
    fn parse_and_serialize() {
        let value = parse_value("a: 1\nb: [x, y]\n").unwrap();
        assert_eq!(value["b"][1], Value::String("y".into()));
        assert_eq!(parse_value("").unwrap(), Value::Null);
        let text = to_string(&value).unwrap();
        assert_eq!(text, "a: 1\nb:\n- x\n- y\n");
        assert_eq!(parse_value(&text).unwrap(), value);
    }

    const DOC: &str = r#"# A workflow
name: build
on:
  push:
    branches: [main, "release/*"]
    tags:
      - v1
      - v2
  "deploy.*": {when: always, retries: 3}
script: |
  echo one
  echo two

after_block: true
base: &base
  runs-on: linux
  env: {A: 1}
jobs:
  build:
    <<: *base
    steps:
      - name: checkout
        uses: actions/checkout
      - run: make
  again: *base
  'single quoted': x
  empty:
  "été": 1
"#;

    #[test]
    fn locate_finds_nodes() {
        let root = YamlPath::root();
        // (path, at_key, expected)
        let cases: Vec<(YamlPath, bool, Option<Position>)> = vec![
            (root.clone(), false, pos(2, 1)),
            (root.key("name"), true, pos(2, 1)),
            (root.key("name"), false, pos(2, 7)),
            (root.key("on"), true, pos(3, 1)),
            // a block mapping starts at its first key
            (root.key("on"), false, pos(4, 3)),
            (root.key("on").key("push"), false, pos(5, 5)),
            (root.key("on").key("push").key("branches"), true, pos(5, 5)),
            (
                root.key("on").key("push").key("branches"),
                false,
                pos(5, 15),
            ),
            // flow sequence elements, plain and quoted
            (
                root.key("on").key("push").key("branches").index(0),
                false,
                pos(5, 16),
            ),
            (
                root.key("on").key("push").key("branches").index(1),
                false,
                pos(5, 22),
            ),
            // block sequence elements
            (root.key("on").key("push").key("tags"), false, pos(7, 7)),
            (
                root.key("on").key("push").key("tags").index(1),
                false,
                pos(8, 9),
            ),
            (
                root.key("on").key("push").key("tags").index(1),
                true,
                pos(8, 9),
            ),
            // quoted key with a dot; flow mapping
            (root.key("on").key("deploy.*"), true, pos(9, 3)),
            (root.key("on").key("deploy.*"), false, pos(9, 15)),
            (
                root.key("on").key("deploy.*").key("retries"),
                true,
                pos(9, 30),
            ),
            (
                root.key("on").key("deploy.*").key("retries"),
                false,
                pos(9, 39),
            ),
            // multi-line block scalar and the key after it
            // a block scalar starts at its indicator
            (root.key("script"), false, pos(10, 9)),
            (root.key("script"), true, pos(10, 1)),
            (root.key("after_block"), true, pos(14, 1)),
            (root.key("after_block"), false, pos(14, 14)),
            // anchors, merge keys and aliases
            (root.key("base"), false, pos(16, 3)),
            (root.key("jobs").key("build").key("<<"), false, pos(20, 9)),
            (
                root.key("jobs").key("build").key("runs-on"),
                true,
                pos(16, 3),
            ),
            (
                root.key("jobs").key("build").key("env").key("A"),
                false,
                pos(17, 12),
            ),
            (root.key("jobs").key("again"), false, pos(25, 10)),
            (
                root.key("jobs").key("again").key("runs-on"),
                false,
                pos(16, 12),
            ),
            // sequences of mappings
            (
                root.key("jobs").key("build").key("steps").index(0),
                false,
                pos(22, 9),
            ),
            (
                root.key("jobs")
                    .key("build")
                    .key("steps")
                    .index(0)
                    .key("uses"),
                true,
                pos(23, 9),
            ),
            (
                root.key("jobs")
                    .key("build")
                    .key("steps")
                    .index(1)
                    .key("run"),
                false,
                pos(24, 14),
            ),
            (root.key("jobs").key("single quoted"), true, pos(26, 3)),
            // an omitted value is placed at its key
            (root.key("jobs").key("empty"), false, pos(27, 3)),
            // columns count characters, not bytes
            (root.key("jobs").key("été"), false, pos(28, 10)),
            // paths that do not exist
            (root.key("nope"), false, None),
            (root.key("name").key("deeper"), false, None),
            (root.key("on").key("push").key("tags").index(9), false, None),
            (root.key("jobs").key("again").key("nope"), false, None),
        ];
        for (path, at_key, expected) in cases {
            assert_eq!(
                locate(DOC, &path, at_key),
                expected,
                "{path} at_key={at_key}"
            );
        }
    }

    #[test]
    fn locate_finds_block_scalar_indicators() {
        let text = "\
a: |
  one
\"b|c\": >-   # folded | with > in a comment

  two
list:
  - |2
      indented
  - x
d: &d |+

  three
e: |
f: 1
";
        let root = YamlPath::root();
        let cases: Vec<(YamlPath, Option<Position>)> = vec![
            (root.key("a"), pos(1, 4)),
            (root.key("b|c"), pos(3, 8)),
            (root.key("list").index(0), pos(7, 5)),
            (root.key("list").index(1), pos(9, 5)),
            (root.key("d"), pos(10, 7)),
            (root.key("e"), pos(13, 4)),
            (root.key("f"), pos(14, 4)),
        ];
        for (path, expected) in cases {
            assert_eq!(locate(text, &path, false), expected, "{path}");
        }
    }

    #[test]
    fn locate_handles_complex_keys_documents_and_bad_text() {
        let text = "? [a, b]\n: {x: 1}\nc: 2\n---\nd: 3\n";
        assert_eq!(locate(text, &YamlPath::root().key("c"), false), pos(3, 4));
        assert_eq!(locate(text, &YamlPath::root().key("x"), false), None);
        // only the first document counts
        assert_eq!(locate(text, &YamlPath::root().key("d"), false), None);
        // nodes before a syntax error are still found
        let broken = "a: 1\nb: [2\n";
        assert_eq!(locate(broken, &YamlPath::root().key("a"), false), pos(1, 4));
        assert_eq!(locate("", &YamlPath::root(), false), None);
        // a merge of an inline mapping, and a merged alias list
        let merged = "a:\n  <<: {x: 1}\n  y: 2\nb: &b {z: 3}\nc:\n  <<: [*b]\n";
        assert_eq!(
            locate(merged, &YamlPath::root().key("a").key("x"), false),
            pos(2, 11)
        );
        assert_eq!(
            locate(merged, &YamlPath::root().key("c").key("z"), true),
            pos(4, 8)
        );
    }

    #[test]
    fn from_value_finds_nested_positions() {
        let text = "\
jobs:
  build:
    runs-on: linux
    steps:
      - name: checkout
        rn: make
  test:
    runs-on: [linux]
    steps: []
  lint:
    steps:
      - run: make lint
  fmt:
    runs-on: linux
    steps:
      - run: 3
";
        let document = parse_value(text).unwrap();
        let jobs = YamlPath::root().key("jobs");
        // (job, expected message, expected position)
        let cases: &[(&str, &str, Option<Position>)] = &[
            (
                "build",
                "jobs.build.steps[0]: unknown key `rn` (did you mean `run`?)",
                pos(6, 9),
            ),
            (
                "test",
                "jobs.test.runs-on: invalid type: sequence, expected a string",
                pos(8, 14),
            ),
            (
                "lint",
                "jobs.lint: missing required key `runs-on`",
                pos(11, 5),
            ),
            (
                "fmt",
                "jobs.fmt.steps[0].run: invalid type: integer `3`, expected a string",
                pos(16, 14),
            ),
        ];
        for (job, message, position) in cases {
            let value = document["jobs"][job].clone();
            let error = from_value::<Job>(value, text, &jobs.key(*job)).expect_err(job);
            assert_eq!(error.message, *message, "{job}");
            assert_eq!(error.position, *position, "{job}");
        }
    }

    #[test]
    fn from_value_follows_aliases() {
        let text = "\
jobs:
  base: &base
    runs-on: linux
    stesp: []
  copy: *base
";
        let document = parse_value(text).unwrap();
        let path = YamlPath::root().key("jobs").key("copy");
        let error = from_value::<Job>(document["jobs"]["copy"].clone(), text, &path).unwrap_err();
        // The key is only written in the anchored mapping, so that is where it is.
        assert_eq!(
            error.message,
            "jobs.copy: unknown key `stesp` (did you mean `steps`?)"
        );
        assert_eq!(error.position, pos(4, 5));
    }

    #[test]
    fn locate_agrees_with_the_backend() {
        // The backend's (libyaml's) columns and ours both count characters.
        let text = "é:\n  - ü\n  - {x: [1, 2]}\n";
        let error = from_str::<std::collections::BTreeMap<String, Vec<String>>>(text).unwrap_err();
        let path = YamlPath::root().key("é").index(1);
        assert_eq!(
            error.message,
            "é[1]: invalid type: mapping, expected a string"
        );
        assert_eq!(error.position, locate(text, &path, false));
        assert_eq!(error.position, pos(3, 5));
    }

    #[test]
    fn from_value_success_and_root_errors() {
        let text = "runs-on: linux\nsteps:\n  - run: make\n";
        let job: Job = from_value(parse_value(text).unwrap(), text, &YamlPath::root()).unwrap();
        assert_eq!(job.steps[0].run, "make");

        // An error about the value itself has no path prefix.
        let error =
            from_value::<Job>(Value::String("x".into()), "", &YamlPath::root()).unwrap_err();
        assert_eq!(
            error.message,
            "invalid type: string `x`, expected a mapping"
        );
        assert_eq!(error.position, None);

        // Options, maps with dynamic keys and tuples keep their paths too.
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Env {
            vars: Option<std::collections::BTreeMap<String, (u8, bool)>>,
        }
        let text = "vars:\n  A: [1, true]\n  B: [2, maybe]\n";
        let error =
            from_value::<Env>(parse_value(text).unwrap(), text, &YamlPath::root()).unwrap_err();
        assert_eq!(
            error.message,
            "vars.B[1]: invalid type: string `maybe`, expected a boolean"
        );
        assert_eq!(error.position, pos(3, 10));
    }

    #[test]
    fn from_value_ignores_recovered_failures() {
        #[derive(Debug, Deserialize)]
        #[serde(untagged)]
        #[allow(dead_code)]
        enum StringOrList {
            One(String),
            Many(Vec<String>),
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Filter {
            branches: StringOrList,
        }
        let text = "branches: {a: 1}\n";
        let error =
            from_value::<Filter>(parse_value(text).unwrap(), text, &YamlPath::root()).unwrap_err();
        assert_eq!(
            error.message,
            "branches: data did not match any variant of untagged enum StringOrList"
        );
        assert_eq!(error.position, pos(1, 11));
    }

    #[test]
    fn yaml_path_display() {
        let root = YamlPath::root();
        let cases: Vec<(YamlPath, &str)> = vec![
            (root.clone(), "(document)"),
            (root.key("on"), "on"),
            (
                root.key("on").key("push").key("branches").index(1),
                "on.push.branches[1]",
            ),
            (root.key("on").key("deploy.*"), "on.\"deploy.*\""),
            (
                root.key("jobs").key("my job").key("runs-on"),
                "jobs.\"my job\".runs-on",
            ),
            (root.index(0).key("a"), "[0].a"),
            (root.key("m").index(0).index(2), "m[0][2]"),
            (root.key(""), "\"\""),
            (root.key("say \"hi\""), "\"say \\\"hi\\\"\""),
        ];
        for (path, expected) in cases {
            assert_eq!(path.to_string(), expected);
        }
        let mut path = YamlPath::root();
        path.push_key("a");
        path.push_index(3);
        assert_eq!(path, root.key("a").index(3));
        assert_eq!(path.parent(), Some(root.key("a")));
        assert_eq!(root.parent(), None);
        assert_eq!(root.key("a").join(&root.key("b")).to_string(), "a.b");
    }

    #[test]
    fn did_you_mean_cases() {
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("branch", &["types", "branches", "tags"], Some("branches")),
            ("tag", &["types", "branches", "tags"], Some("tags")),
            ("runs_on", &["runs-on", "steps"], Some("runs-on")),
            ("stpes", &["runs-on", "steps"], Some("steps")),
            ("Steps", &["runs-on", "steps"], Some("steps")),
            ("enviroment", &["env", "environment"], Some("environment")),
            ("zzz", &["a", "b"], None),
            ("x", &["y"], None),
            ("if", &["id"], None),
            ("timeout", &["branches", "tags"], None),
            ("anything", &[], None),
        ];
        for (unknown, candidates, expected) in cases {
            assert_eq!(did_you_mean(unknown, candidates), *expected, "{unknown}");
        }
    }

    #[test]
    fn rewrites_messages() {
        let cases: &[(&str, &str)] = &[
            (
                "unknown field `branch`, expected one of `types`, `branches`, `tags`",
                "unknown key `branch` (did you mean `branches`?)",
            ),
            (
                "unknown field `zzz`, expected `a` or `b`",
                "unknown key `zzz`, expected one of `a`, `b`",
            ),
            (
                "unknown field `zzz`, expected `a`",
                "unknown key `zzz`, expected `a`",
            ),
            (
                "unknown field `zzz`, there are no fields",
                "unknown key `zzz` (none are allowed here)",
            ),
            (
                "a.b: unknown variant `shh`, expected `sh` or `bash`",
                "a.b: unknown value `shh` (did you mean `sh`?)",
            ),
            ("missing field `run`", "missing required key `run`"),
            ("duplicate field `run`", "duplicate key `run`"),
            ("duplicate entry with key \"on\"", "duplicate key `on`"),
            (
                "x: invalid type: string \"a, expected b\", expected u64",
                "x: invalid type: string `a, expected b`, expected a non-negative integer",
            ),
            (
                "invalid type: string \"say \\\"hi\\\"\", expected a boolean",
                "invalid type: string \"say \\\"hi\\\"\", expected a boolean",
            ),
            (
                "invalid value: integer `300`, expected u8",
                "invalid value: integer `300`, expected a non-negative integer",
            ),
            (
                "invalid type: map, expected struct Job",
                "invalid type: mapping, expected a mapping",
            ),
            (
                "invalid type: boolean `true`, expected f64",
                "invalid type: boolean `true`, expected a number",
            ),
            (
                "invalid length 3, expected fewer elements in map",
                "invalid length 3, expected fewer elements in map",
            ),
            (
                "some custom message: with colon",
                "some custom message: with colon",
            ),
        ];
        for (raw, expected) in cases {
            assert_eq!(rewrite_serde_message(raw), *expected, "{raw}");
        }
    }

    #[test]
    fn error_helpers() {
        let error = YamlError::new("boom", None);
        assert_eq!(error.to_string(), "boom");
        assert_eq!(error.render("ci.yml"), "ci.yml: boom");
        let error = error.at(Position::new(3, 5));
        assert_eq!(error.position, pos(3, 5));
        assert_eq!(error.render("ci.yml"), "ci.yml:3:5: boom");
    }
}
