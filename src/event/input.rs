//! The accepted input forms: envelope, CloudEvents, raw payload with `--type`, and the
//! GitHub Actions environment.

use super::reader::{describe_json_error, validate_document};
use super::{Event, Payload, cloudevents, github, gitlab};
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// What the command line says about the events it reads.
#[derive(Debug, Clone, Default)]
pub struct InputOptions {
    /// `--type`: the input is a raw payload of this event type.
    pub kind: Option<String>,
    /// `--source`: where a raw payload came from (default `cli`; `github` for a GitHub-shaped body).
    pub source: Option<String>,
    /// A delivery id from a transport (`X-GitHub-Delivery`), which wins over a content id.
    pub delivery_id: Option<String>,
}

/// An event that could not be read. `line` is set for NDJSON input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", line.map(|line| format!("line {line}: ")).unwrap_or_default())]
pub struct EventError {
    pub line: Option<usize>,
    pub message: String,
}

impl EventError {
    pub fn new(message: impl Into<String>) -> EventError {
        EventError {
            line: None,
            message: message.into(),
        }
    }

    pub fn at_line(mut self, line: usize) -> EventError {
        self.line = Some(line);
        self
    }
}

/// The keys an envelope may carry; anything else is a mistake worth reporting.
const ENVELOPE_KEYS: &[&str] = &[
    "id", "source", "type", "action", "subject", "time", "repo", "ref", "branch", "tag", "sha",
    "actor", "files", "parent", "data",
];

/// The top-level keys of an envelope or CloudEvent, their values still as text: only the small
/// attributes are parsed, the payload is kept raw.
pub struct Attributes<'a> {
    /// Borrowed from the document's text: only the payload is ever copied.
    entries: HashMap<String, &'a RawValue>,
}

impl<'a> Attributes<'a> {
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    pub fn take(&mut self, key: &str) -> Option<&'a RawValue> {
        self.entries.remove(key)
    }

    /// A string attribute; `null` or absent is `None`, another type an error.
    pub fn text(&mut self, key: &str) -> Result<Option<String>, EventError> {
        let Some(raw) = self.entries.remove(key) else {
            return Ok(None);
        };
        match serde_json::from_str::<Value>(raw.get()) {
            Ok(Value::Null) => Ok(None),
            Ok(Value::String(text)) => Ok(Some(text)),
            Ok(other) => Err(EventError::new(format!(
                "`{key}` must be a string, found {}",
                json_kind(&other)
            ))),
            Err(error) => Err(EventError::new(describe_json_error(&error))),
        }
    }

    fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.keys()
    }
}

/// SPEC §1.2: documents nested deeper than this are refused.
pub const MAX_DEPTH: usize = 128;

/// Refuses documents nested deeper than `MAX_DEPTH`. The payload is kept as text and skipped
/// over rather than parsed, and skipping has no depth limit of its own; a document with fewer
/// brackets than the limit cannot exceed it, which a vectorised count settles for nearly all.
fn check_depth(text: &str) -> Result<(), EventError> {
    let bytes = text.as_bytes();
    if memchr::memchr2_iter(b'[', b'{', bytes)
        .take(MAX_DEPTH + 1)
        .count()
        <= MAX_DEPTH
    {
        return Ok(());
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (index, &byte) in bytes.iter().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(EventError::new(format!(
                        "JSON nested deeper than {MAX_DEPTH} levels (byte {})",
                        index + 1
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// An envelope as it nearly always comes: known keys only and an object as `data`. It is read in
/// one pass, GitHub's derived fields included; anything else takes the general path, which also
/// words the errors. Measured: this halved the parsing cost of a 5 KB GitHub push envelope.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FastEnvelope<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    source: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    action: Option<Cow<'a, str>>,
    #[serde(borrow)]
    subject: Option<Cow<'a, str>>,
    #[serde(borrow)]
    time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    repo: Option<Cow<'a, str>>,
    #[serde(rename = "ref", borrow)]
    git_ref: Option<Cow<'a, str>>,
    #[serde(borrow)]
    branch: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tag: Option<Cow<'a, str>>,
    #[serde(borrow)]
    sha: Option<Cow<'a, str>>,
    #[serde(borrow)]
    actor: Option<Cow<'a, str>>,
    #[serde(borrow)]
    parent: Option<Cow<'a, str>>,
    files: Option<Vec<String>>,
    #[serde(borrow)]
    data: github::View<'a>,
}

fn fast_envelope(text: &str, options: &InputOptions) -> Option<Event> {
    let envelope: FastEnvelope = serde_json::from_str(text).ok()?;
    if envelope.kind.trim().is_empty() {
        return None;
    }
    let owned = |text: Option<Cow<str>>| text.map(Cow::into_owned);
    let source = envelope.source.as_deref().unwrap_or("cli").to_string();
    let mut event = Event::new(
        &source,
        &envelope.kind,
        Payload::from_envelope(Arc::from(text)),
    );
    if let Some(id) = envelope.id {
        event.set_id(id.into_owned());
    }
    event.action = owned(envelope.action);
    event.subject = owned(envelope.subject);
    if let Some(time) = envelope.time {
        event.time = time.into_owned();
    }
    event.repo = owned(envelope.repo);
    if let Some(full_ref) = envelope.git_ref {
        event.set_ref(&full_ref);
    }
    if let Some(branch) = envelope.branch {
        event.branch = Some(branch.into_owned());
    }
    if let Some(tag) = envelope.tag {
        event.tag = Some(tag.into_owned());
    }
    event.sha = owned(envelope.sha);
    event.actor = owned(envelope.actor);
    event.parent = owned(envelope.parent);
    event.files = envelope.files;
    if let Some(delivery) = &options.delivery_id {
        event.set_id(delivery.clone());
    }
    match event.source.as_str() {
        "github" => github::apply(&mut event, &envelope.data),
        _ => derive_fields(&mut event),
    }
    Some(event)
}

/// Turns one JSON document (its text) into an event, by its form.
pub fn from_text(text: &str, options: &InputOptions) -> Result<Event, EventError> {
    check_depth(text)?;
    if options.kind.is_none()
        && let Some(event) = fast_envelope(text, options)
    {
        return Ok(event);
    }
    let mut event = if let Some(kind) = &options.kind {
        let raw: Box<RawValue> = serde_json::from_str(text)
            .map_err(|error| EventError::new(describe_json_error(&error)))?;
        // A saved GitHub delivery is the common raw payload; without `--source` it would get
        // none of GitHub's derived fields (branch, sha, files) and match nothing.
        let source = match options.source.as_deref() {
            Some(source) => source,
            None if looks_like_github(text) => "github",
            None => "cli",
        };
        Event::new(source, kind, Payload::from_raw(raw))
    } else {
        let trimmed = text.trim_start();
        if !trimmed.starts_with('{') {
            let value: Value = serde_json::from_str(text)
                .map_err(|error| EventError::new(describe_json_error(&error)))?;
            return Err(EventError::new(format!(
                "an event must be a JSON object, found {}",
                json_kind(&value)
            )));
        }
        let entries: HashMap<String, &RawValue> = serde_json::from_str(text)
            .map_err(|error| EventError::new(describe_json_error(&error)))?;
        let attributes = Attributes { entries };
        if attributes.contains("specversion") {
            cloudevents::from_structured(attributes)?
        } else if attributes.contains("type") && attributes.contains("data") {
            envelope(attributes)?
        } else if attributes.contains("repository") && attributes.contains("sender") {
            return Err(EventError::new(
                "this looks like a GitHub webhook body: pass its event name (the `X-GitHub-Event` \
                 header) as `--type <X-GitHub-Event> --source github`, e.g. `--type push --source github`",
            ));
        } else if attributes.contains("type") {
            return Err(EventError::new(
                "an envelope needs `data` (the payload): `{\"type\": …, \"data\": {…}}`; \
                 for a raw payload pass `--type NAME`",
            ));
        } else {
            return Err(EventError::new(
                "cannot tell the event's type: pass `--type NAME` for a raw payload, or send an envelope \
                 (`{\"type\": …, \"data\": …}`) or a CloudEvent",
            ));
        }
    };
    if let Some(delivery) = &options.delivery_id {
        event.set_id(delivery.clone());
    }
    derive_fields(&mut event);
    Ok(event)
}

/// Whether a raw payload has the top-level keys every GitHub webhook body has.
fn looks_like_github(text: &str) -> bool {
    serde_json::from_str::<HashMap<String, &RawValue>>(text)
        .is_ok_and(|keys| keys.contains_key("repository") && keys.contains_key("sender"))
}

/// Turns an in-memory JSON value into an event (tests, and inputs that arrive parsed).
pub fn from_value(value: &Value, options: &InputOptions) -> Result<Event, EventError> {
    from_text(&value.to_string(), options)
}

fn envelope(mut attributes: Attributes<'_>) -> Result<Event, EventError> {
    if let Some(unknown) = attributes
        .keys()
        .find(|key| !ENVELOPE_KEYS.contains(&key.as_str()))
    {
        let suggestion = crate::yaml::did_you_mean(unknown, ENVELOPE_KEYS)
            .map(|known| format!(" (did you mean `{known}`?)"))
            .unwrap_or_default();
        return Err(EventError::new(format!(
            "unknown envelope key `{unknown}`{suggestion}"
        )));
    }
    let kind = attributes
        .text("type")?
        .filter(|kind| !kind.trim().is_empty())
        .ok_or_else(|| EventError::new("envelope key `type` is empty"))?;
    let source = attributes
        .text("source")?
        .unwrap_or_else(|| "cli".to_string());
    let data = match attributes.take("data") {
        Some(raw) => Payload::from_raw(raw.to_owned()),
        None => Payload::from_value(Value::Null),
    };
    let mut event = match attributes.text("id")? {
        Some(id) => Event::with_id(id, &source, &kind, data),
        None => Event::new(&source, &kind, data),
    };
    event.action = attributes.text("action")?;
    event.subject = attributes.text("subject")?;
    if let Some(time) = attributes.text("time")? {
        event.time = time;
    }
    event.repo = attributes.text("repo")?;
    if let Some(full_ref) = attributes.text("ref")? {
        event.set_ref(&full_ref);
    }
    if let Some(branch) = attributes.text("branch")? {
        event.branch = Some(branch);
    }
    if let Some(tag) = attributes.text("tag")? {
        event.tag = Some(tag);
    }
    event.sha = attributes.text("sha")?;
    event.actor = attributes.text("actor")?;
    event.parent = attributes.text("parent")?;
    event.files = match attributes.take("files") {
        None => None,
        Some(raw) => match serde_json::from_str::<Value>(raw.get()) {
            Ok(Value::Null) => None,
            Ok(Value::Array(items)) => Some(
                items
                    .into_iter()
                    .map(|item| match item {
                        Value::String(path) => Ok(path),
                        other => Err(EventError::new(format!(
                            "envelope key `files` must list strings, found {}",
                            json_kind(&other)
                        ))),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Ok(other) => {
                return Err(EventError::new(format!(
                    "envelope key `files` must be a list, found {}",
                    json_kind(&other)
                )));
            }
            Err(error) => return Err(EventError::new(describe_json_error(&error))),
        },
    };
    Ok(event)
}

fn derive_fields(event: &mut Event) {
    match event.source.as_str() {
        "github" => github::derive(event),
        "gitlab" => gitlab::derive(event),
        _ => {}
    }
}

/// The event of a GitHub Actions run (`GITHUB_EVENT_NAME` + the file at `GITHUB_EVENT_PATH`), with
/// `GITHUB_REPOSITORY`, `GITHUB_SHA` and `GITHUB_REF` filling what the payload lacks.
/// `None` when the environment is not a GitHub Actions run with an event.
pub fn actions_event(var: &dyn Fn(&str) -> Option<String>) -> Option<Result<Event, EventError>> {
    if var("GITHUB_ACTIONS").as_deref() != Some("true") {
        return None;
    }
    let name = var("GITHUB_EVENT_NAME").filter(|name| !name.is_empty())?;
    let path = var("GITHUB_EVENT_PATH").filter(|path| !path.is_empty())?;
    Some(read_actions_event(&name, Path::new(&path), var))
}

fn read_actions_event(
    name: &str,
    path: &Path,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Event, EventError> {
    let bytes = std::fs::read(path).map_err(|error| {
        EventError::new(format!(
            "cannot read `GITHUB_EVENT_PATH` `{}`: {error}",
            path.display()
        ))
    })?;
    let text = validate_document(bytes, super::DEFAULT_MAX_EVENT_SIZE)?;
    let options = InputOptions {
        kind: Some(name.to_string()),
        source: Some("github".to_string()),
        delivery_id: None,
    };
    let mut event = from_text(&text, &options)?;
    if event.repo.is_none() {
        event.repo = var("GITHUB_REPOSITORY");
    }
    if event.sha.is_none() {
        event.sha = var("GITHUB_SHA");
    }
    if event.git_ref.is_none()
        && let Some(full_ref) = var("GITHUB_REF").filter(|full_ref| !full_ref.is_empty())
    {
        let (branch, tag) = (event.branch.take(), event.tag.take());
        event.set_ref(&full_ref);
        // A pull request's base branch is what filters match on, not the merge ref's name.
        if branch.is_some() {
            event.branch = branch;
        }
        if tag.is_some() {
            event.tag = tag;
        }
    }
    Ok(event)
}

pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_fields_are_taken_as_given() {
        let event = from_value(
            &json!({"id": "e1", "type": "deploy.requested", "source": "ops", "subject": "api", "data": {"n": 1}}),
            &InputOptions::default(),
        )
        .unwrap();
        assert_eq!(
            (event.id(), event.kind.as_str(), event.source.as_str()),
            ("e1", "deploy.requested", "ops")
        );
        assert_eq!(event.subject.as_deref(), Some("api"));
    }

    #[test]
    fn envelope_with_github_source_gets_derived_fields() {
        let event = from_value(
            &json!({"type": "push", "source": "github", "data": {"ref": "refs/heads/main", "after": "abc"}}),
            &InputOptions::default(),
        )
        .unwrap();
        assert_eq!(event.branch.as_deref(), Some("main"));
        assert_eq!(event.sha.as_deref(), Some("abc"));
    }

    #[test]
    fn unknown_envelope_key_is_named_with_a_suggestion() {
        let error = from_value(
            &json!({"type": "x", "data": {}, "acton": "y"}),
            &InputOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            error.message,
            "unknown envelope key `acton` (did you mean `action`?)"
        );
    }

    #[test]
    fn deep_nesting_inside_a_kept_payload_is_refused() {
        let deep = format!(
            "{{\"type\": \"x\", \"data\": {}{}}}",
            "[".repeat(129),
            "]".repeat(129)
        );
        let error = from_text(&deep, &InputOptions::default()).unwrap_err();
        assert!(error.message.contains("deeper than 128"), "{error}");
        let fine = format!(
            "{{\"type\": \"x\", \"data\": {}{}}}",
            "[".repeat(120),
            "]".repeat(120)
        );
        assert!(from_text(&fine, &InputOptions::default()).is_ok());
        let brackets_in_strings = format!("{{\"type\": \"x\", \"data\": \"{}\"}}", "[".repeat(300));
        assert!(from_text(&brackets_in_strings, &InputOptions::default()).is_ok());
    }

    #[test]
    fn the_one_pass_envelope_derives_what_the_general_path_derives() {
        let text = r#"{"type": "push", "source": "github", "data": {"ref": "refs/heads/main", "after": "abc",
            "repository": {"full_name": "acme/api"}, "sender": {"login": "octocat"},
            "commits": [{"added": ["a"], "modified": [], "removed": ["b"]}], "extra": [1, {"x": null}]}}"#;
        let fast = fast_envelope(text, &InputOptions::default()).expect("the fast path takes it");
        let payload: Value = serde_json::from_str(text).unwrap();
        let mut general = Event::new("github", "push", payload["data"].clone());
        github::derive(&mut general);
        assert_eq!(
            (
                &fast.repo,
                &fast.branch,
                &fast.sha,
                &fast.actor,
                &fast.files
            ),
            (
                &general.repo,
                &general.branch,
                &general.sha,
                &general.actor,
                &general.files
            )
        );
        // The payload's own text is cut out of the envelope, byte for byte, when asked for.
        assert!(fast.data.raw().starts_with(r#"{"ref": "refs/heads/main""#));
        assert_eq!(*fast.data.value(), payload["data"]);
        assert_eq!(fast.id(), general.id());
    }

    #[test]
    fn unusual_envelopes_take_the_general_path() {
        for text in [
            r#"{"type": "x", "data": 5}"#,
            r#"{"type": "x", "data": {}, "specversion": "1.0"}"#,
            r#"{"type": "x", "data": {}, "acton": "y"}"#,
            r#"{"type": "", "data": {}}"#,
        ] {
            assert!(
                fast_envelope(text, &InputOptions::default()).is_none(),
                "{text}"
            );
        }
        let error =
            from_text(r#"{"type": " ", "data": {}}"#, &InputOptions::default()).unwrap_err();
        assert_eq!(error.message, "envelope key `type` is empty");
    }

    #[test]
    fn cloudevents_map_across() {
        let event = from_value(
            &json!({"specversion": "1.0", "id": "c1", "source": "/ci", "type": "com.acme.build", "subject": "x",
                   "time": "2026-01-01T00:00:00Z", "data": {"ok": true}}),
            &InputOptions::default(),
        )
        .unwrap();
        assert_eq!(
            (event.id(), event.source.as_str(), event.kind.as_str()),
            ("c1", "/ci", "com.acme.build")
        );
        assert_eq!(event.time, "2026-01-01T00:00:00Z");
        assert_eq!(*event.data.value(), json!({"ok": true}));
    }

    #[test]
    fn cloudevents_data_base64_is_decoded() {
        let event = from_value(
            &json!({"specversion": "1.0", "id": "c1", "source": "/ci", "type": "t", "data_base64": "eyJhIjoxfQ=="}),
            &InputOptions::default(),
        )
        .unwrap();
        assert_eq!(*event.data.value(), json!({"a": 1}));
    }

    #[test]
    fn raw_payload_mistakes_say_what_to_pass() {
        let github = r#"{"ref": "refs/heads/main", "repository": {"full_name": "acme/api"}, "sender": {"login": "x"}}"#;
        let error = from_text(github, &InputOptions::default()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`--type <X-GitHub-Event> --source github`"),
            "{error}"
        );
        let error = from_text(r#"{"type": "push"}"#, &InputOptions::default()).unwrap_err();
        assert!(
            error.to_string().starts_with("an envelope needs `data`"),
            "{error}"
        );
        // With `--type` and no `--source`, a GitHub-shaped body is read as GitHub's.
        let options = InputOptions {
            kind: Some("push".to_string()),
            ..InputOptions::default()
        };
        let event = from_text(github, &options).unwrap();
        assert_eq!(event.source, "github");
        assert_eq!(event.branch.as_deref(), Some("main"));
        let event = from_text(r#"{"ref": "refs/heads/main"}"#, &options).unwrap();
        assert_eq!(event.source, "cli");
    }

    #[test]
    fn raw_payload_needs_a_type_and_gets_a_content_id() {
        let payload = json!({"zen": "Keep it logically awesome."});
        assert!(from_value(&payload, &InputOptions::default()).is_err());
        let options = InputOptions {
            kind: Some("ping".into()),
            source: Some("github".into()),
            delivery_id: None,
        };
        let first = from_value(&payload, &options).unwrap();
        let second = from_value(&payload, &options).unwrap();
        assert_eq!(first.id(), second.id());
        assert_eq!(first.id().len(), 64);
    }

    #[test]
    fn actions_environment_fills_gaps() {
        let dir = std::env::temp_dir().join(format!("vane-actions-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("event.json");
        std::fs::write(&path, r#"{"action": "opened", "pull_request": {"base": {"ref": "main"}, "head": {"sha": "h"}}}"#)
            .unwrap();
        let path_text = path.display().to_string();
        let var = |name: &str| -> Option<String> {
            match name {
                "GITHUB_ACTIONS" => Some("true".into()),
                "GITHUB_EVENT_NAME" => Some("pull_request".into()),
                "GITHUB_EVENT_PATH" => Some(path_text.clone()),
                "GITHUB_REPOSITORY" => Some("acme/api".into()),
                "GITHUB_REF" => Some("refs/pull/1/merge".into()),
                _ => None,
            }
        };
        let event = actions_event(&var).unwrap().unwrap();
        assert_eq!(event.repo.as_deref(), Some("acme/api"));
        assert_eq!(event.branch.as_deref(), Some("main"));
        assert_eq!(event.git_ref.as_deref(), Some("refs/pull/1/merge"));
        assert_eq!(event.sha.as_deref(), Some("h"));
        assert!(actions_event(&|_| None).is_none());
    }
}
