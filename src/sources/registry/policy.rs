//! Which tag of an image wins, and why every other one did not: the tag filter (`include`,
//! `extract`, `exclude`), the policies (`semver`, `numerical`, `alphabetical`, `newest-build`),
//! npm-style semver ranges, and the per-tag dispositions `vane poll --explain` prints.
//!
//! Pure: the tags (and, for `newest-build`, their build times) come in, a [`Decision`] goes out.

use crate::config::{Order, RegistrySource};
use chrono::{DateTime, Utc};
use regex::Regex;
use std::cmp::Ordering;
use std::fmt;

/// A tag filter and a policy, compiled from a `registry` source.
#[derive(Debug, Clone)]
pub struct Policy {
    include: Option<Regex>,
    extract: Option<String>,
    exclude: Vec<(String, Regex)>,
    pub kind: PolicyKind,
}

#[derive(Debug, Clone)]
pub enum PolicyKind {
    Semver { range: Range, prereleases: bool },
    Numerical(Order),
    Alphabetical(Order),
    NewestBuild,
}

/// What a setting of the source gets wrong: the key under `registry:` and the message.
pub type Problem = (&'static str, String);

impl Policy {
    /// Compiles the source's `tags` and `policy`; every problem is reported, keyed.
    pub fn new(source: &RegistrySource) -> Result<Policy, Vec<Problem>> {
        let mut problems = Vec::new();
        let include = match source.tags.include.as_deref().map(Regex::new).transpose() {
            Ok(include) => include,
            Err(error) => {
                problems.push(("tags", format!("include: {}", one_line(&error))));
                None
            }
        };
        let mut exclude = Vec::new();
        for pattern in &source.tags.exclude {
            match Regex::new(pattern) {
                Ok(regex) => exclude.push((pattern.clone(), regex)),
                Err(error) => problems.push(("tags", format!("exclude: {}", one_line(&error)))),
            }
        }
        if let Some(extract) = &source.tags.extract {
            match (&include, source.tags.include.is_some()) {
                (Some(include), _) => {
                    for group in references(extract) {
                        let known = match group.parse::<usize>() {
                            Ok(index) => index < include.captures_len(),
                            Err(_) => include.capture_names().flatten().any(|name| name == group),
                        };
                        if !known {
                            problems.push((
                                "tags",
                                format!(
                                    "extract: `{extract}` names the group `{group}`, which `include` does not have (its groups: {})",
                                    groups(include)
                                ),
                            ));
                        }
                    }
                }
                (None, false) => problems.push((
                    "tags",
                    "extract: needs `include`, whose groups it names".to_string(),
                )),
                (None, true) => {}
            }
        }
        let policy = &source.policy;
        let given = [
            policy.semver.is_some(),
            policy.numerical.is_some(),
            policy.alphabetical.is_some(),
            policy.newest_build == Some(true),
        ];
        if given.iter().filter(|given| **given).count() != 1 {
            problems.push((
                "policy",
                "give exactly one of `semver`, `numerical`, `alphabetical`, `newest-build: true`"
                    .to_string(),
            ));
        }
        if policy.prereleases.is_some() && policy.semver.is_none() {
            problems.push(("policy", "prereleases: only used with `semver`".to_string()));
        }
        let kind = if let Some(text) = &policy.semver {
            match Range::parse(text) {
                Ok(range) => {
                    let prereleases = policy.prereleases.unwrap_or(range.names_prerelease);
                    Some(PolicyKind::Semver { range, prereleases })
                }
                Err(message) => {
                    problems.push(("policy", format!("semver: `{text}`: {message}")));
                    None
                }
            }
        } else if let Some(order) = policy.numerical {
            Some(PolicyKind::Numerical(order))
        } else if let Some(order) = policy.alphabetical {
            Some(PolicyKind::Alphabetical(order))
        } else if policy.newest_build == Some(true) {
            Some(PolicyKind::NewestBuild)
        } else {
            None
        };
        match kind {
            Some(kind) if problems.is_empty() => Ok(Policy {
                include,
                extract: source.tags.extract.clone(),
                exclude,
                kind,
            }),
            _ => Err(problems),
        }
    }

    /// The policy as the table's heading says it.
    pub fn describe(&self) -> String {
        match &self.kind {
            PolicyKind::Semver { range, prereleases } => format!(
                "semver `{}`{}",
                range.text,
                if *prereleases {
                    ", prereleases included"
                } else {
                    ""
                }
            ),
            PolicyKind::Numerical(order) => format!("numerical {}", order_word(*order)),
            PolicyKind::Alphabetical(order) => format!("alphabetical {}", order_word(*order)),
            PolicyKind::NewestBuild => "newest-build".to_string(),
        }
    }

    /// The value a tag is ordered by (after `include`, `extract` and `exclude`), or why it has none.
    pub fn value(&self, tag: &str) -> Result<String, Disposition> {
        if let Some((pattern, _)) = self.exclude.iter().find(|(_, regex)| regex.is_match(tag)) {
            return Err(Disposition::Excluded(pattern.clone()));
        }
        let Some(include) = &self.include else {
            return Ok(tag.to_string());
        };
        let Some(captures) = include.captures(tag) else {
            return Err(Disposition::NotIncluded);
        };
        let Some(extract) = &self.extract else {
            return Ok(tag.to_string());
        };
        let mut value = String::new();
        captures.expand(extract, &mut value);
        if value.is_empty() {
            return Err(Disposition::EmptyExtract);
        }
        Ok(value)
    }

    /// A tag's place in the order, or why it is not a candidate. `newest-build` tags are placed by
    /// their build time, which the caller reads from the registry: `built`.
    pub fn key(&self, value: &str, built: Option<DateTime<Utc>>) -> Result<Key, Disposition> {
        match &self.kind {
            PolicyKind::Semver { range, prereleases } => {
                let version = Version::parse(value).map_err(|_| Disposition::NotSemver)?;
                if !range.contains(&version) {
                    return Err(Disposition::OutOfRange);
                }
                if version.is_prerelease() && !prereleases {
                    return Err(Disposition::Prerelease);
                }
                Ok(Key::Version(version))
            }
            PolicyKind::Numerical(_) => Decimal::parse(value)
                .map(Key::Number)
                .ok_or(Disposition::NotNumber),
            PolicyKind::Alphabetical(_) => Ok(Key::Text(value.to_string())),
            PolicyKind::NewestBuild => built.map(Key::Built).ok_or(Disposition::NoBuildTime),
        }
    }

    /// Whether `a` comes after `b` in the policy's order: the last one wins.
    pub fn compare(&self, a: &Key, b: &Key) -> Ordering {
        let natural = a.cmp(b);
        match &self.kind {
            PolicyKind::Numerical(Order::Desc) | PolicyKind::Alphabetical(Order::Desc) => {
                natural.reverse()
            }
            _ => natural,
        }
    }

    /// How `to` differs from `from`: for semver the first of major, minor, patch that changed,
    /// else `prerelease`; for the other policies `tag`.
    pub fn change(&self, from: &Key, to: &Key) -> &'static str {
        match (from, to) {
            (Key::Version(from), Key::Version(to)) => {
                if from.major != to.major {
                    "major"
                } else if from.minor != to.minor {
                    "minor"
                } else if from.patch != to.patch {
                    "patch"
                } else {
                    "prerelease"
                }
            }
            _ => "tag",
        }
    }

    /// Why the winner won, in words.
    pub fn why(&self) -> String {
        match &self.kind {
            PolicyKind::Semver { range, .. } => format!("the highest version in `{}`", range.text),
            PolicyKind::Numerical(Order::Asc) => "the highest number".to_string(),
            PolicyKind::Numerical(Order::Desc) => "the lowest number".to_string(),
            PolicyKind::Alphabetical(Order::Asc) => "the last in text order".to_string(),
            PolicyKind::Alphabetical(Order::Desc) => "the first in text order".to_string(),
            PolicyKind::NewestBuild => "the newest build (`created` of its image)".to_string(),
        }
    }
}

fn order_word(order: Order) -> &'static str {
    match order {
        Order::Asc => "asc (the highest wins)",
        Order::Desc => "desc (the lowest wins)",
    }
}

/// The capture groups an `extract` template names: `$name`, `${name}`, `$1` (`$$` is a `$`).
fn references(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            rest = after;
            continue;
        }
        let (name, after) = if let Some(braced) = rest.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], &braced[end + 1..]),
                None => (braced, ""),
            }
        } else {
            // The regex crate reads the longest run of name characters, as here.
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        if !name.is_empty() {
            names.push(name.to_string());
        }
        rest = after;
    }
    names
}

fn groups(include: &Regex) -> String {
    let named: Vec<String> = include
        .capture_names()
        .flatten()
        .map(|name| format!("`{name}`"))
        .collect();
    let numbered = include.captures_len() - 1;
    match (named.is_empty(), numbered) {
        (_, 0) => "none".to_string(),
        (true, count) => format!("`1`…`{count}`"),
        (false, count) => format!("{}, or `1`…`{count}`", named.join(", ")),
    }
}

fn one_line(error: &regex::Error) -> String {
    error
        .to_string()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a tag is not a candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Matched this `exclude` pattern.
    Excluded(String),
    NotIncluded,
    EmptyExtract,
    NotSemver,
    OutOfRange,
    Prerelease,
    NotNumber,
    NoBuildTime,
}

/// Where a candidate stands in its policy's order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    Version(Version),
    Number(Decimal),
    Text(String),
    Built(DateTime<Utc>),
}

/// One tag's fate, for the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    Winner,
    /// The cursor's tag, still listed, and not the winner.
    Current,
    /// A candidate placed below the cursor's tag.
    BelowCurrent,
    /// A candidate above the current one that lost to the winner.
    Kept,
    Dropped(Disposition),
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub tag: String,
    /// The value ordered by (after `extract`), where there is one.
    pub value: Option<String>,
    pub key: Option<Key>,
    pub fate: Fate,
}

/// A tag judged: its value and key, or (its value where it has one and) why it is left out.
pub type Judged = Result<(String, Key), (Option<String>, Disposition)>;

/// Every tag's fate, and which one won.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Candidates best first, then the others in text order.
    pub rows: Vec<Row>,
    /// Index into `rows` of the best candidate; `None` when no tag is a candidate.
    pub winner: Option<usize>,
    /// `true` when the best candidate is placed below the current tag (the current one was
    /// deleted or no longer passes the filter): vane does not move an image back.
    pub behind_current: bool,
}

impl Policy {
    /// Decides among `tags` (each with its value or disposition and key), against `current` (the
    /// cursor's tag and key).
    pub fn decide(
        &self,
        tags: Vec<(String, Judged)>,
        current: Option<(&str, Option<&Key>)>,
    ) -> Decision {
        let mut candidates: Vec<Row> = Vec::new();
        let mut others: Vec<Row> = Vec::new();
        for (tag, judged) in tags {
            match judged {
                Ok((value, key)) => candidates.push(Row {
                    tag,
                    value: Some(value),
                    key: Some(key),
                    fate: Fate::Kept,
                }),
                Err((value, disposition)) => others.push(Row {
                    tag,
                    value,
                    key: None,
                    fate: Fate::Dropped(disposition),
                }),
            }
        }
        // Best first; ties (`v1.4.0` and `1.4.0`, build metadata) go to the tag last in text order.
        candidates.sort_by(|a, b| match (&a.key, &b.key) {
            (Some(ka), Some(kb)) => self.compare(kb, ka).then_with(|| b.tag.cmp(&a.tag)),
            _ => Ordering::Equal,
        });
        others.sort_by(|a, b| a.tag.cmp(&b.tag));
        let mut behind_current = false;
        if !candidates.is_empty() {
            let current_key = current.and_then(|(tag, key)| {
                key.cloned().or_else(|| {
                    candidates
                        .iter()
                        .find(|row| row.tag == tag)
                        .and_then(|row| row.key.clone())
                })
            });
            let best = candidates[0].key.clone();
            if let (Some(current_key), Some(best)) = (&current_key, &best) {
                behind_current = self.compare(best, current_key) == Ordering::Less;
            }
            for (index, row) in candidates.iter_mut().enumerate() {
                let is_current = current.is_some_and(|(tag, _)| tag == row.tag);
                row.fate = if index == 0 && !behind_current {
                    Fate::Winner
                } else if is_current {
                    Fate::Current
                } else {
                    match (&current_key, &row.key) {
                        (Some(current_key), Some(key))
                            if self.compare(key, current_key) != Ordering::Greater =>
                        {
                            Fate::BelowCurrent
                        }
                        _ => Fate::Kept,
                    }
                };
            }
        }
        let winner = (!candidates.is_empty() && !behind_current).then_some(0);
        let mut rows = candidates;
        rows.extend(others);
        Decision {
            rows,
            winner,
            behind_current,
        }
    }
}

impl Decision {
    /// For `semver` and `numerical`: when the candidate last in text order is not the winner
    /// (`rc9` after `rc10`, `1.9.0` after `1.10.0`), the tags it beat in text order.
    pub fn text_order_disagrees(&self, policy: &Policy) -> Option<(String, String)> {
        if !matches!(
            policy.kind,
            PolicyKind::Semver { .. } | PolicyKind::Numerical(Order::Asc)
        ) {
            return None;
        }
        let winner = &self.rows[self.winner?];
        let last_as_text = self
            .rows
            .iter()
            .filter(|row| row.key.is_some())
            .max_by(|a, b| a.tag.cmp(&b.tag))?;
        (last_as_text.tag != winner.tag).then(|| (last_as_text.tag.clone(), winner.tag.clone()))
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disposition::Excluded(pattern) => write!(out, "excluded by `{pattern}`"),
            Disposition::NotIncluded => write!(out, "not matched by `include`"),
            Disposition::EmptyExtract => write!(out, "`extract` gave an empty value"),
            Disposition::NotSemver => write!(out, "not semver (MAJOR.MINOR.PATCH)"),
            Disposition::OutOfRange => write!(out, "outside the range"),
            Disposition::Prerelease => write!(
                out,
                "a prerelease; the range allows none (`prereleases: true` takes them)"
            ),
            Disposition::NotNumber => write!(out, "not a number"),
            Disposition::NoBuildTime => write!(out, "its image has no `created` time"),
        }
    }
}

/// A semantic version (SemVer 2.0.0, with an optional leading `v`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: Vec<Identifier>,
    /// Build metadata: kept, never ordered by.
    pub build: String,
}

/// One dot-separated part of a prerelease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifier {
    Numeric(u64),
    Alphanumeric(String),
}

impl Version {
    pub fn parse(text: &str) -> Result<Version, String> {
        let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let (text, build) = match text.split_once('+') {
            Some((text, build)) => (text, build),
            None => (text, ""),
        };
        if build.split('.').any(|part| !identifier_chars(part)) && !build.is_empty() {
            return Err(format!("`{build}` is not build metadata"));
        }
        let (core, pre) = match text.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (text, None),
        };
        let numbers: Vec<&str> = core.split('.').collect();
        if numbers.len() != 3 {
            return Err("needs MAJOR.MINOR.PATCH".to_string());
        }
        let number =
            |part: &str| numeric(part).ok_or_else(|| format!("`{part}` is not a version number"));
        let pre = match pre {
            None => Vec::new(),
            Some(pre) => pre
                .split('.')
                .map(|part| {
                    if !identifier_chars(part) {
                        Err(format!("`{pre}` is not a prerelease"))
                    } else if let Some(number) = numeric(part) {
                        Ok(Identifier::Numeric(number))
                    } else if part.bytes().all(|byte| byte.is_ascii_digit()) {
                        Err(format!("`{part}` has a leading zero"))
                    } else {
                        Ok(Identifier::Alphanumeric(part.to_string()))
                    }
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Version {
            major: number(numbers[0])?,
            minor: number(numbers[1])?,
            patch: number(numbers[2])?,
            pre,
            build: build.to_string(),
        })
    }

    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }

    fn triple(major: u64, minor: u64, patch: u64) -> Version {
        Version {
            major,
            minor,
            patch,
            pre: Vec::new(),
            build: String::new(),
        }
    }

    /// The lowest version of a release: `X.Y.Z-0`.
    fn lowest(major: u64, minor: u64, patch: u64) -> Version {
        Version {
            pre: vec![Identifier::Numeric(0)],
            ..Version::triple(major, minor, patch)
        }
    }
}

/// A number without a leading zero (`0` itself is fine).
fn numeric(part: &str) -> Option<u64> {
    let digits = !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    (digits && (part == "0" || !part.starts_with('0')))
        .then(|| part.parse().ok())
        .flatten()
}

fn identifier_chars(part: &str) -> bool {
    !part.is_empty()
        && part
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                // A release is above its prereleases.
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.pre.cmp(&other.pre),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Identifier {
    fn cmp(&self, other: &Identifier) -> Ordering {
        match (self, other) {
            (Identifier::Numeric(a), Identifier::Numeric(b)) => a.cmp(b),
            (Identifier::Numeric(_), Identifier::Alphanumeric(_)) => Ordering::Less,
            (Identifier::Alphanumeric(_), Identifier::Numeric(_)) => Ordering::Greater,
            (Identifier::Alphanumeric(a), Identifier::Alphanumeric(b)) => natural(a, b),
        }
    }
}

impl PartialOrd for Identifier {
    fn partial_cmp(&self, other: &Identifier) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Text with its digit runs compared as numbers: `rc10` is after `rc9`. SemVer itself compares
/// `rc10` and `rc9` as ASCII (`rc10` first); nobody who tags `rc10` means that.
fn natural(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        let digits_a = a.starts_with(|c: char| c.is_ascii_digit());
        let digits_b = b.starts_with(|c: char| c.is_ascii_digit());
        let (run_a, rest_a) = split_run(a, digits_a);
        let (run_b, rest_b) = split_run(b, digits_b);
        let order = if digits_a && digits_b {
            let (trim_a, trim_b) = (run_a.trim_start_matches('0'), run_b.trim_start_matches('0'));
            trim_a
                .len()
                .cmp(&trim_b.len())
                .then_with(|| trim_a.cmp(trim_b))
        } else {
            run_a.cmp(run_b)
        };
        if order != Ordering::Equal {
            return order;
        }
        (a, b) = (rest_a, rest_b);
    }
}

/// The leading run of digits (or of non-digits) of `text`, and the rest.
fn split_run(text: &str, digits: bool) -> (&str, &str) {
    let end = text
        .find(|c: char| c.is_ascii_digit() != digits)
        .unwrap_or(text.len());
    text.split_at(end)
}

/// A non-negative decimal number, compared exactly (a 14-digit timestamp does not round).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    /// Digits before the point, without leading zeros.
    integer: String,
    /// Digits after the point, without trailing zeros.
    fraction: String,
}

impl Decimal {
    pub fn parse(text: &str) -> Option<Decimal> {
        let (integer, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        if integer.is_empty() || !digits(integer) || !digits(fraction) {
            return None;
        }
        if text.ends_with('.') {
            return None;
        }
        Some(Decimal {
            integer: integer.trim_start_matches('0').to_string(),
            fraction: fraction.trim_end_matches('0').to_string(),
        })
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        self.integer
            .len()
            .cmp(&other.integer.len())
            .then_with(|| self.integer.cmp(&other.integer))
            .then_with(|| self.fraction.cmp(&other.fraction))
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// An npm/Flux-style range: comparators separated by spaces (or commas) must all hold;
/// `||` separates alternatives. `>=1.4.0 <2`, `^1.4`, `~1.4.2`, `1.x`, `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub text: String,
    alternatives: Vec<Vec<(Op, Version)>>,
    /// Whether a comparator is written with a prerelease (`>=1.5.0-rc.1`): then prereleases
    /// are candidates unless `prereleases: false`.
    pub names_prerelease: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
}

/// A version as a range writes it: parts may be missing or `x`/`*`.
struct Partial {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
    pre: Vec<Identifier>,
}

impl Range {
    pub fn parse(text: &str) -> Result<Range, String> {
        let mut alternatives = Vec::new();
        let mut names_prerelease = false;
        for alternative in text.split("||") {
            let mut tokens: Vec<String> = Vec::new();
            for token in alternative
                .split([' ', ',', '\t'])
                .filter(|t| !t.is_empty())
            {
                // `>= 1.4.0`: an operator on its own goes with the next token.
                match tokens.last_mut() {
                    Some(last) if last.chars().all(|c| "<>=~^".contains(c)) => last.push_str(token),
                    _ => tokens.push(token.to_string()),
                }
            }
            if tokens.iter().any(|token| token == "-") {
                return Err(
                    "hyphen ranges (`1.2 - 1.4`) are not read; write `>=1.2.0 <=1.4.0`".to_string(),
                );
            }
            let mut comparators = Vec::new();
            for token in &tokens {
                let (op, rest) = split_operator(token);
                let partial =
                    Partial::parse(rest).map_err(|message| format!("`{token}`: {message}"))?;
                names_prerelease |= !partial.pre.is_empty();
                comparators.extend(
                    desugar(op, partial).map_err(|message| format!("`{token}`: {message}"))?,
                );
            }
            alternatives.push(comparators);
        }
        if text.trim().is_empty() {
            return Err("the range is empty (`*` takes every version)".to_string());
        }
        Ok(Range {
            text: text.trim().to_string(),
            alternatives,
            names_prerelease,
        })
    }

    pub fn contains(&self, version: &Version) -> bool {
        self.alternatives.iter().any(|comparators| {
            comparators.iter().all(|(op, bound)| {
                let order = version.cmp(bound);
                match op {
                    Op::Ge => order != Ordering::Less,
                    Op::Gt => order == Ordering::Greater,
                    Op::Le => order != Ordering::Greater,
                    Op::Lt => order == Ordering::Less,
                    Op::Eq => order == Ordering::Equal,
                }
            })
        })
    }
}

fn split_operator(token: &str) -> (&str, &str) {
    for op in [">=", "<=", ">", "<", "=", "~>", "~", "^"] {
        if let Some(rest) = token.strip_prefix(op) {
            return (op, rest);
        }
    }
    ("", token)
}

impl Partial {
    fn parse(text: &str) -> Result<Partial, String> {
        let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let text = text.split_once('+').map_or(text, |(text, _)| text);
        let (core, pre) = match text.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (text, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() > 3 || core.is_empty() {
            return Err("not a version".to_string());
        }
        let mut numbers = [None; 3];
        let mut wild = false;
        for (index, part) in parts.iter().enumerate() {
            if matches!(*part, "x" | "X" | "*") {
                wild = true;
                continue;
            }
            if wild {
                return Err("a number after a wildcard".to_string());
            }
            numbers[index] =
                Some(numeric(part).ok_or_else(|| format!("`{part}` is not a version number"))?);
        }
        let pre = match pre {
            Some(pre) => {
                if numbers.iter().any(Option::is_none) {
                    return Err("a prerelease needs MAJOR.MINOR.PATCH".to_string());
                }
                Version::parse(&format!("0.0.0-{pre}"))?.pre
            }
            None => Vec::new(),
        };
        Ok(Partial {
            major: numbers[0],
            minor: numbers[1],
            patch: numbers[2],
            pre,
        })
    }

    fn version(&self) -> Version {
        Version {
            pre: self.pre.clone(),
            ..Version::triple(
                self.major.unwrap_or(0),
                self.minor.unwrap_or(0),
                self.patch.unwrap_or(0),
            )
        }
    }
}

/// One written comparator as primitive ones. An upper bound without a prerelease excludes the
/// bound's prereleases (`<2` is `<2.0.0-0`): "below 2" does not mean `2.0.0-rc.1`.
fn desugar(op: &str, partial: Partial) -> Result<Vec<(Op, Version)>, String> {
    let (major, minor, patch) = (partial.major, partial.minor, partial.patch);
    let Some(major) = major else {
        // `*`, `x`: every version (`<*` and `>*` mean nothing sensible).
        return match op {
            "" | "=" | ">=" | "<=" | "^" | "~" | "~>" => Ok(Vec::new()),
            _ => Err("compares with a wildcard".to_string()),
        };
    };
    let next_major = || Version::lowest(major + 1, 0, 0);
    let next_minor = |minor: u64| Version::lowest(major, minor + 1, 0);
    let exact = partial.version();
    let bounds = match (op, minor, patch) {
        ("" | "=", Some(_), Some(_)) => vec![(Op::Eq, exact)],
        ("" | "=", None, _) => vec![(Op::Ge, exact), (Op::Lt, next_major())],
        ("" | "=", Some(minor), None) => vec![(Op::Ge, exact), (Op::Lt, next_minor(minor))],
        (">=", _, _) => vec![(Op::Ge, exact)],
        (">", Some(_), Some(_)) => vec![(Op::Gt, exact)],
        (">", None, _) => vec![(Op::Ge, Version::triple(major + 1, 0, 0))],
        (">", Some(minor), None) => vec![(Op::Ge, Version::triple(major, minor + 1, 0))],
        ("<", _, _) if partial.pre.is_empty() => vec![(
            Op::Lt,
            Version::lowest(major, minor.unwrap_or(0), patch.unwrap_or(0)),
        )],
        ("<", _, _) => vec![(Op::Lt, exact)],
        ("<=", Some(_), Some(_)) => vec![(Op::Le, exact)],
        ("<=", None, _) => vec![(Op::Lt, next_major())],
        ("<=", Some(minor), None) => vec![(Op::Lt, next_minor(minor))],
        ("~" | "~>", None, _) => vec![(Op::Ge, exact), (Op::Lt, next_major())],
        ("~" | "~>", Some(minor), _) => vec![(Op::Ge, exact), (Op::Lt, next_minor(minor))],
        ("^", _, _) => {
            let upper = if major > 0 || minor.is_none() {
                next_major()
            } else if minor != Some(0) || patch.is_none() {
                next_minor(minor.unwrap_or(0))
            } else {
                Version::lowest(0, 0, patch.unwrap_or(0) + 1)
            };
            vec![(Op::Ge, exact), (Op::Lt, upper)]
        }
        _ => return Err(format!("unknown operator `{op}`")),
    };
    Ok(bounds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ImagePolicyConfig, TagFilterConfig};

    fn source(policy: ImagePolicyConfig, tags: TagFilterConfig) -> RegistrySource {
        RegistrySource {
            image: "ghcr.io/acme/api".to_string(),
            policy,
            tags,
            digest: false,
            credentials: None,
            max_tags: 10_000,
            insecure: false,
            first: Default::default(),
            every: None,
        }
    }

    fn semver(range: &str) -> ImagePolicyConfig {
        ImagePolicyConfig {
            semver: Some(range.to_string()),
            ..ImagePolicyConfig::default()
        }
    }

    fn filter(include: Option<&str>, extract: Option<&str>, exclude: &[&str]) -> TagFilterConfig {
        TagFilterConfig {
            include: include.map(str::to_string),
            extract: extract.map(str::to_string),
            exclude: exclude.iter().map(|text| text.to_string()).collect(),
        }
    }

    /// The winner of `tags` under `policy`, and the table's fates.
    fn decide(policy: &Policy, tags: &[&str], current: Option<&str>) -> Decision {
        let judged = tags
            .iter()
            .map(|tag| {
                let judged = policy
                    .value(tag)
                    .map_err(|why| (None, why))
                    .and_then(|value| {
                        policy
                            .key(&value, None)
                            .map(|key| (value.clone(), key))
                            .map_err(|why| (Some(value), why))
                    });
                (tag.to_string(), judged)
            })
            .collect();
        policy.decide(judged, current.map(|tag| (tag, None)))
    }

    fn winner(policy: &Policy, tags: &[&str]) -> Option<String> {
        let decision = decide(policy, tags, None);
        decision
            .winner
            .map(|index| decision.rows[index].tag.clone())
    }

    #[test]
    fn winners_by_policy() {
        let no_filter = TagFilterConfig::default;
        let cases: Vec<(ImagePolicyConfig, TagFilterConfig, Vec<&str>, Option<&str>)> = vec![
            // Numeric prerelease identifiers, and `rc10` after `rc9` (natural order).
            (
                semver(">=1.0.0-0"),
                no_filter(),
                vec!["1.0.0-rc9", "1.0.0-rc10", "1.0.0-rc2"],
                Some("1.0.0-rc10"),
            ),
            (
                semver(">=1.0.0-0"),
                no_filter(),
                vec!["1.0.0-rc.9", "1.0.0-rc.10"],
                Some("1.0.0-rc.10"),
            ),
            // The release is above its prereleases.
            (
                semver(">=1.0.0-0"),
                no_filter(),
                vec!["1.0.0-rc.10", "1.0.0"],
                Some("1.0.0"),
            ),
            // Prereleases are left out unless the range names one or `prereleases: true`.
            (
                semver(">=1.4.0 <2"),
                no_filter(),
                vec!["1.4.0", "1.5.0-rc.1", "1.4.1"],
                Some("1.4.1"),
            ),
            (
                ImagePolicyConfig {
                    prereleases: Some(true),
                    ..semver(">=1.4.0 <2")
                },
                no_filter(),
                vec!["1.4.0", "1.5.0-rc.1", "1.4.1", "2.0.0-rc.1"],
                Some("1.5.0-rc.1"),
            ),
            // `1.10.0` is after `1.9.0`; `v` prefixes are read.
            (
                semver("^1.2"),
                no_filter(),
                vec!["v1.9.0", "v1.10.0", "v2.0.0", "latest"],
                Some("v1.10.0"),
            ),
            (
                semver("~1.4"),
                no_filter(),
                vec!["1.4.9", "1.5.0"],
                Some("1.4.9"),
            ),
            (
                semver("1.x"),
                no_filter(),
                vec!["1.99.0", "2.0.0"],
                Some("1.99.0"),
            ),
            (
                semver(">=2 || <1"),
                no_filter(),
                vec!["0.9.0", "1.5.0"],
                Some("0.9.0"),
            ),
            (
                semver("^0.2.3"),
                no_filter(),
                vec!["0.2.9", "0.3.0"],
                Some("0.2.9"),
            ),
            (semver(">=3"), no_filter(), vec!["1.0.0", "2.0.0"], None),
            // `extract` picks the version out of a longer tag.
            (
                semver(">=1.0.0"),
                filter(
                    Some(r"^api-(?P<version>[0-9]+\.[0-9]+\.[0-9]+)-(amd64|arm64)$"),
                    Some("$version"),
                    &[],
                ),
                vec!["api-1.2.0-amd64", "api-1.3.0-arm64", "web-9.0.0-amd64"],
                Some("api-1.3.0-arm64"),
            ),
            // Numerical timestamps, exactly (no float rounding), and `desc`.
            (
                ImagePolicyConfig {
                    numerical: Some(Order::Asc),
                    ..ImagePolicyConfig::default()
                },
                filter(Some(r"^main-[0-9a-f]+-(?P<ts>[0-9]+)$"), Some("$ts"), &[]),
                vec![
                    "main-abc123-20261203120000001",
                    "main-def456-20261203120000002",
                    "main-0aa111-9",
                ],
                Some("main-def456-20261203120000002"),
            ),
            (
                ImagePolicyConfig {
                    numerical: Some(Order::Desc),
                    ..ImagePolicyConfig::default()
                },
                no_filter(),
                vec!["10", "9", "9.5", "x"],
                Some("9"),
            ),
            (
                ImagePolicyConfig {
                    alphabetical: Some(Order::Asc),
                    ..ImagePolicyConfig::default()
                },
                filter(None, None, &[r"\.sig$"]),
                vec!["2026-11-30", "2026-12-01", "2026-12-02.sig"],
                Some("2026-12-01"),
            ),
            (
                ImagePolicyConfig {
                    alphabetical: Some(Order::Desc),
                    ..ImagePolicyConfig::default()
                },
                no_filter(),
                vec!["b", "a", "c"],
                Some("a"),
            ),
        ];
        for (policy, tags, list, expected) in cases {
            let compiled = Policy::new(&source(policy.clone(), tags)).unwrap();
            assert_eq!(
                winner(&compiled, &list).as_deref(),
                expected,
                "{policy:?} {list:?}"
            );
        }
    }

    #[test]
    fn every_tag_gets_a_disposition() {
        let policy = Policy::new(&source(
            semver(">=1.4.0 <2"),
            filter(
                Some(r"^v?(?P<version>[0-9.]+(-rc\.[0-9]+)?)$"),
                Some("$version"),
                &[r"\.sig$", "^sha256-"],
            ),
        ))
        .unwrap();
        let decision = decide(
            &policy,
            &[
                "1.4.0",
                "1.4.1",
                "1.3.9",
                "1.5.0-rc.1",
                "2.0.0",
                "latest",
                "sha256-abc.sig",
                "1.4",
            ],
            Some("1.4.0"),
        );
        let fates: Vec<(&str, Fate)> = decision
            .rows
            .iter()
            .map(|row| (row.tag.as_str(), row.fate.clone()))
            .collect();
        assert_eq!(
            fates,
            vec![
                ("1.4.1", Fate::Winner),
                ("1.4.0", Fate::Current),
                ("1.3.9", Fate::Dropped(Disposition::OutOfRange)),
                ("1.4", Fate::Dropped(Disposition::NotSemver)),
                ("1.5.0-rc.1", Fate::Dropped(Disposition::Prerelease)),
                ("2.0.0", Fate::Dropped(Disposition::OutOfRange)),
                ("latest", Fate::Dropped(Disposition::NotIncluded)),
                (
                    "sha256-abc.sig",
                    Fate::Dropped(Disposition::Excluded(r"\.sig$".to_string()))
                ),
            ]
        );
        // The current tag deleted and only a lower one left: no move back.
        let current_key = Key::Version(Version::parse("1.4.2").unwrap());
        let judged = vec![(
            "1.4.1".to_string(),
            Ok(("1.4.1".to_string(), policy.key("1.4.1", None).unwrap())),
        )];
        let decision = policy.decide(judged, Some(("1.4.2", Some(&current_key))));
        assert_eq!(decision.winner, None);
        assert!(decision.behind_current);
        assert_eq!(decision.rows[0].fate, Fate::BelowCurrent);
    }

    #[test]
    fn text_order_disagreeing_is_noticed() {
        let policy = Policy::new(&source(semver(">=1.0.0-0"), TagFilterConfig::default())).unwrap();
        let decision = decide(&policy, &["1.0.0-rc9", "1.0.0-rc10"], None);
        assert_eq!(
            decision.text_order_disagrees(&policy),
            Some(("1.0.0-rc9".to_string(), "1.0.0-rc10".to_string()))
        );
        let decision = decide(&policy, &["1.0.0", "1.1.0"], None);
        assert_eq!(decision.text_order_disagrees(&policy), None);
    }

    #[test]
    fn ranges_read_npm_syntax() {
        let cases = [
            (">=1.4.0 <2", "1.9.9", true),
            (">=1.4.0 <2", "2.0.0", false),
            (">=1.4.0, <2", "1.4.0", true),
            (">= 1.4.0 < 2", "1.3.0", false),
            ("<2", "2.0.0-rc.1", false),
            ("<2.0.0-rc.2", "2.0.0-rc.1", true),
            ("1.4", "1.4.7", true),
            ("1.4", "1.5.0", false),
            ("=1.4.2", "1.4.2", true),
            ("1.4.2", "1.4.3", false),
            (">1.4", "1.4.9", false),
            (">1.4", "1.5.0", true),
            ("<=1.4", "1.4.9", true),
            ("<=1.4", "1.5.0", false),
            ("^0.0.3", "0.0.4", false),
            ("~1.4.2", "1.4.9", true),
            ("~1.4.2", "1.5.0", false),
            ("*", "9.9.9", true),
        ];
        for (range, version, expected) in cases {
            let parsed = Range::parse(range).unwrap();
            assert_eq!(
                parsed.contains(&Version::parse(version).unwrap()),
                expected,
                "{range} ∋ {version}"
            );
        }
        assert!(Range::parse(">=1.5.0-rc.1").unwrap().names_prerelease);
        assert!(!Range::parse(">=1.5.0").unwrap().names_prerelease);
        for bad in ["", ">=1.x.2", "1.2 - 1.4", ">=one", "<*", "!1.2.3"] {
            assert!(Range::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_are_strict_semver() {
        assert!(Version::parse("1.4").is_err());
        assert!(Version::parse("01.4.0").is_err());
        assert!(Version::parse("1.4.0-01").is_err());
        assert!(Version::parse("1.4.0-").is_err());
        let version = Version::parse("v1.4.0-rc.1+build.5").unwrap();
        assert_eq!((version.major, version.minor, version.patch), (1, 4, 0));
        assert_eq!(version.build, "build.5");
        assert!(natural("rc10", "rc9") == Ordering::Greater);
        assert!(natural("beta", "alpha") == Ordering::Greater);
        assert!(Decimal::parse("20261203120000002") > Decimal::parse("20261203120000001"));
        assert!(Decimal::parse("9.5") > Decimal::parse("9.25"));
        assert_eq!(Decimal::parse("1."), None);
    }

    #[test]
    fn extract_names_only_groups_include_has() {
        let problems = Policy::new(&source(
            semver(">=1.0.0"),
            filter(Some(r"^v(?P<version>.*)$"), Some("$versoin"), &[]),
        ))
        .unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].1.contains("names the group `versoin`"),
            "{problems:?}"
        );
        // `$version-x` reads the group `version-x`? No: `-` ends a name, as in the regex crate.
        assert_eq!(
            references("$version-x ${a}b $$c $1"),
            vec!["version", "a", "1"]
        );
        let problems =
            Policy::new(&source(semver(">=1.0.0"), filter(None, Some("$1"), &[]))).unwrap_err();
        assert!(problems[0].1.contains("needs `include`"), "{problems:?}");
        let problems = Policy::new(&source(
            ImagePolicyConfig {
                numerical: Some(Order::Asc),
                prereleases: Some(true),
                ..semver(">=1")
            },
            filter(Some("("), None, &[]),
        ))
        .unwrap_err();
        let joined = format!("{problems:?}");
        assert!(joined.contains("exactly one of"), "{joined}");
        assert!(joined.contains("include:"), "{joined}");
    }

    #[test]
    fn changes_are_classified() {
        let policy = Policy::new(&source(semver("*"), TagFilterConfig::default())).unwrap();
        let key = |text: &str| Key::Version(Version::parse(text).unwrap());
        assert_eq!(policy.change(&key("1.4.0"), &key("1.4.1")), "patch");
        assert_eq!(policy.change(&key("1.4.0"), &key("1.5.0-rc.1")), "minor");
        assert_eq!(policy.change(&key("1.4.0"), &key("2.0.0")), "major");
        assert_eq!(
            policy.change(&key("1.5.0-rc.1"), &key("1.5.0")),
            "prerelease"
        );
    }
}
