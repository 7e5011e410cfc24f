//! Container-registry polling: an image's tags are listed ([`oci`]), a policy picks one
//! ([`policy`]), and a pick that moved up — or, with `digest: true`, a new digest under the same
//! tag — is one `image.updated` event (`source: registry`, `subject` the image), with the
//! previous tag and digest, the kind of change and the reason in words.
//!
//! The cursor holds the current tag and digest (and, for `newest-build`, its build time); the
//! first poll records them and emits nothing unless `first: emit`. vane never moves an image
//! back: a best tag below the current one (the current one was deleted) emits nothing. Event
//! ids are `registry:<source>:<tag>@<digest>`, so two pollers finding one change queue it once.

pub mod oci;
pub mod policy;

use super::Found;
use super::rate_limit;
use crate::config::{FirstPoll, HeaderValue, RegistrySource};
use crate::event::Event;
use chrono::{DateTime, Utc};
use oci::{Failure, Image, Registry};
use policy::{Decision, Fate, Key, Policy, PolicyKind};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::fmt::Write as _;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    /// For `newest-build`: the current tag's build time, which its tag does not tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    built: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_before: Option<i64>,
    /// Whether a poll has listed the tags: until then the winner is recorded, not emitted
    /// (a cursor holding only a rate-limit wait is not a first poll done).
    #[serde(default)]
    listed: bool,
}

/// What is wrong with a `registry` source's settings, as (key, message), found at load time.
pub fn check(source: &RegistrySource) -> Vec<policy::Problem> {
    let mut problems = match Policy::new(source) {
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    };
    if let Err(message) = Image::parse(&source.image, source.insecure) {
        problems.push(("image", message));
    }
    if source.max_tags == 0 {
        problems.push(("max-tags", "must be at least 1".to_string()));
    }
    if source.every.is_some() {
        problems.push((
            "every",
            "`every` goes beside `registry:`, on the source itself (as for every polled source)"
                .to_string(),
        ));
    }
    problems
}

/// What one poll decided: the table `vane poll --explain` prints.
#[derive(Debug, Default)]
pub struct Explanation(pub String);

/// Polls `source` once.
pub fn poll(
    name: &str,
    source: &RegistrySource,
    client: &reqwest::blocking::Client,
    cursor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(Found, Explanation), String> {
    let previous: Cursor = super::read_cursor(cursor)?;
    let first = !previous.listed;
    // A skipped poll has no table; the poller prints its note either way.
    if let Some(skipped) = rate_limit::skipped(previous.not_before, now) {
        return Ok((skipped, Explanation::default()));
    }
    let policy = Policy::new(source).map_err(|problems| {
        problems
            .into_iter()
            .map(|(key, message)| format!("{key}: {message}"))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let image = Image::parse(&source.image, source.insecure)?;
    let credentials = match &source.credentials {
        Some(credentials) => {
            let username = match &credentials.username {
                HeaderValue::Text(text) => text.clone(),
                HeaderValue::Secret(secret) => secret
                    .resolve()
                    .map_err(|message| format!("credentials.username: {message}"))?,
            };
            let password = credentials
                .password
                .resolve()
                .map_err(|message| format!("credentials.password: {message}"))?;
            Some((username, password))
        }
        None => None,
    };
    let mut registry = Registry::new(client, image, credentials, now.timestamp());
    let waiting = |until: i64, previous: &Cursor| {
        let note = rate_limit::skip(Some(until), now);
        let cursor = Cursor {
            not_before: Some(until),
            ..previous.clone()
        };
        Ok((
            Found {
                events: Vec::new(),
                cursor: serde_json::to_string(&cursor).ok(),
                note,
            },
            Explanation::default(),
        ))
    };
    let outcome = decide(&policy, &mut registry, source, &previous);
    let (decision, builds) = match outcome {
        Ok(decided) => decided,
        Err(Failure::Limited(until)) => return waiting(until, &previous),
        Err(Failure::Error(message)) => return Err(message),
    };
    let winner = decision.winner.map(|index| &decision.rows[index]);
    let mut digest = None;
    if let Some(winner) = winner {
        digest = match builds.iter().find(|(tag, _, _)| *tag == winner.tag) {
            Some((_, found, _)) => Some(found.clone()),
            None if source.digest => match registry.digest(&winner.tag) {
                Ok(found) => Some(found),
                Err(Failure::Limited(until)) => return waiting(until, &previous),
                Err(Failure::Error(message)) => return Err(message),
            },
            None => None,
        };
        if !source.digest {
            digest = None;
        }
    }
    let mut table = table(name, source, &policy, &decision, previous.tag.as_deref());
    let mut events = Vec::new();
    let mut next = Cursor {
        not_before: registry.not_before,
        listed: true,
        ..previous.clone()
    };
    if let Some(winner) = winner {
        let built = builds
            .iter()
            .find(|(tag, _, _)| *tag == winner.tag)
            .and_then(|(_, _, built)| *built);
        let moved = previous.tag.as_deref() != Some(winner.tag.as_str());
        let redigested = !moved
            && source.digest
            && previous.digest.is_some()
            && digest.is_some()
            && previous.digest != digest;
        let change = if moved {
            match (previous.tag.as_deref(), &winner.key) {
                (Some(tag), Some(to)) => match current_key(&policy, tag, previous.built) {
                    Some(from) => policy.change(&from, to),
                    None => "tag",
                },
                _ => "initial",
            }
        } else {
            "digest"
        };
        let reason = if redigested {
            format!(
                "`{}` was pushed again: digest {} → {}",
                winner.tag,
                short(previous.digest.as_deref()),
                short(digest.as_deref())
            )
        } else {
            format!(
                "`{}` is {} of {}{}",
                winner.tag,
                policy.why(),
                tags(decision.rows.len()),
                match previous.tag.as_deref() {
                    Some(tag) => format!("; it was `{tag}`"),
                    None => String::new(),
                }
            )
        };
        let emits = (moved || redigested) && (!first || source.first == FirstPoll::Emit);
        if emits {
            let data = json!({
                "image": source.image,
                "tag": winner.tag,
                "digest": digest,
                "previous": previous.tag.as_ref().map(|tag| json!({"tag": tag, "digest": previous.digest})),
                "change": change,
                "reason": reason,
            });
            let mut event = Event::with_id(
                match &digest {
                    Some(digest) => format!("registry:{name}:{}@{digest}", winner.tag),
                    None => format!("registry:{name}:{}", winner.tag),
                },
                "registry",
                "image.updated",
                data,
            );
            event.subject = Some(source.image.clone());
            events.push(event);
            let _ = writeln!(table, "event: image.updated, change {change}: {reason}");
        } else if moved || redigested {
            let _ = writeln!(
                table,
                "first poll: `{}` recorded as the current tag, no event (`first: emit` emits one)",
                winner.tag
            );
        } else {
            let _ = writeln!(table, "no change: `{}` is still the winner", winner.tag);
        }
        next.tag = Some(winner.tag.clone());
        next.digest = digest.clone();
        next.built = built;
    }
    let note = decision
        .behind_current
        .then(|| {
            format!(
                "the best tag is below the current `{}` (deleted or filtered out?); vane does not move an image back",
                previous.tag.as_deref().unwrap_or_default()
            )
        })
        .or_else(|| {
            decision.winner.is_none().then(|| {
                format!(
                    "no tag of {} is a candidate ({} listed)",
                    source.image,
                    decision.rows.len()
                )
            })
        });
    if let Some(note) = &note {
        let _ = writeln!(table, "{note}");
    }
    Ok((
        Found {
            events,
            cursor: (next != previous)
                .then(|| serde_json::to_string(&next).ok())
                .flatten(),
            note,
        },
        Explanation(table),
    ))
}

/// The tag → (digest, build time) a `newest-build` policy read; empty for the other policies.
type Builds = Vec<(String, String, Option<DateTime<Utc>>)>;

/// Lists the tags and decides among them.
fn decide(
    policy: &Policy,
    registry: &mut Registry,
    source: &RegistrySource,
    previous: &Cursor,
) -> Result<(Decision, Builds), Failure> {
    let tags = registry.tags(source.max_tags)?;
    let mut builds = Builds::new();
    let mut judged = Vec::with_capacity(tags.len());
    for tag in tags {
        let value = match policy.value(&tag) {
            Ok(value) => value,
            Err(why) => {
                judged.push((tag, Err((None, why))));
                continue;
            }
        };
        let built = if matches!(policy.kind, PolicyKind::NewestBuild) {
            // One manifest and one config per candidate: `tags.include` keeps this small.
            let (digest, built) = registry.build(&tag)?;
            builds.push((tag.clone(), digest, built));
            built
        } else {
            None
        };
        let key = policy.key(&value, built);
        judged.push((
            tag,
            key.map(|key| (value.clone(), key))
                .map_err(|why| (Some(value), why)),
        ));
    }
    let current = previous
        .tag
        .as_deref()
        .map(|tag| (tag, current_key(policy, tag, previous.built)));
    let decision = policy.decide(
        judged,
        current.as_ref().map(|(tag, key)| (*tag, key.as_ref())),
    );
    Ok((decision, builds))
}

/// Where the cursor's tag stands (`None` when the policy cannot place it any more).
fn current_key(policy: &Policy, tag: &str, built: Option<DateTime<Utc>>) -> Option<Key> {
    let value = policy.value(tag).ok()?;
    policy.key(&value, built).ok()
}

/// `1 tag`, `3 tags`.
fn tags(count: usize) -> String {
    format!("{count} tag{}", if count == 1 { "" } else { "s" })
}

/// `sha256:0123456789ab…`
fn short(digest: Option<&str>) -> String {
    match digest {
        Some(digest) if digest.len() > 19 => format!("{}…", &digest[..19]),
        Some(digest) => digest.to_string(),
        None => "none".to_string(),
    }
}

/// The per-tag disposition table.
fn table(
    name: &str,
    source: &RegistrySource,
    policy: &Policy,
    decision: &Decision,
    current: Option<&str>,
) -> String {
    let mut out = format!(
        "source `{name}` ({}): {}, policy {}\n",
        source.image,
        tags(decision.rows.len()),
        policy.describe()
    );
    let rows: Vec<(String, String, String)> = decision
        .rows
        .iter()
        .map(|row| {
            let fate = match &row.fate {
                Fate::Winner => format!(
                    "winner: {}{}",
                    policy.why(),
                    match current {
                        Some(current) if current != row.tag => format!(" (was `{current}`)"),
                        Some(_) => " (the current tag)".to_string(),
                        None => String::new(),
                    }
                ),
                Fate::Current => "current".to_string(),
                Fate::BelowCurrent => "below the current".to_string(),
                Fate::Kept => "kept (lower than the winner)".to_string(),
                Fate::Dropped(why) => why.to_string(),
            };
            let value = match (&row.value, &row.key) {
                (Some(value), Some(Key::Built(built))) => {
                    format!("{value} built {}", built.format("%Y-%m-%dT%H:%M:%SZ"))
                }
                (Some(value), _) => value.clone(),
                (None, _) => "-".to_string(),
            };
            (row.tag.clone(), value, fate)
        })
        .collect();
    let tag_width = rows
        .iter()
        .map(|row| row.0.chars().count())
        .max()
        .unwrap_or(0)
        .max(3);
    let value_width = rows
        .iter()
        .map(|row| row.1.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let _ = writeln!(
        out,
        "  {:tag_width$}  {:value_width$}  DISPOSITION",
        "TAG", "VALUE"
    );
    for (tag, value, fate) in rows {
        let _ = writeln!(out, "  {tag:tag_width$}  {value:value_width$}  {fate}");
    }
    if let Some((as_text, by_policy)) = decision.text_order_disagrees(policy) {
        let _ = writeln!(
            out,
            "note: text order and version order disagree: as text `{as_text}` sorts last; by the policy `{by_policy}` wins"
        );
    }
    out
}
