//! GitHub Actions filter patterns (`branches`, `tags`, `paths` and their `-ignore` forms): compiling and matching them.
//!
//! The language is the one in the "Filter pattern cheat sheet" of GitHub's workflow syntax
//! reference, which is not a shell glob:
//!
//! - `*` matches zero or more characters other than `/`;
//! - `**` matches zero or more of any character; `**/` at the start of a pattern or right
//!   after a `/` also matches zero directories, so `**/README.md` matches `README.md`;
//! - `?` and `+` repeat the preceding character (or `[...]`) zero-or-one and one-or-more
//!   times, as in a regex: `*.jsx?` matches `page.js` and `page.jsx`;
//! - `[...]` matches one letter or digit listed in it or in a range (`[0-9a-z]`, `[CB]`);
//! - `\` makes the next character literal (`\*`, `\+`, `\!`);
//! - `!` at the start of a pattern in a [`PatternList`] negates it; anywhere else it is literal;
//! - everything else is literal, and a pattern must match the whole candidate.
//!
//! Each pattern is translated to a [`regex::Regex`] once, when the workflow is loaded, so
//! matching is a single regex match.

use std::error::Error;
use std::fmt;

use regex::Regex;

/// One compiled GitHub Actions filter pattern.
///
/// A `Glob` is never negated: negation belongs to the position of a pattern in a
/// [`PatternList`], so [`Glob::new`] rejects a leading `!` (write `\!` to match a literal one).
#[derive(Debug, Clone)]
pub struct Glob {
    source: String,
    matcher: Matcher,
}

/// How a pattern is matched. Most filters are plain names (`main`, `acme/api`) or a folder with
/// everything under it (`docs/**`): those are compared directly. The rest use a regex, compiled
/// on first use — measured: compiling thousands of regexes at load time was most of a cold
/// start with 1,000 workflows, and the translation to regex is checked when parsing anyway.
#[derive(Debug, Clone)]
enum Matcher {
    Literal(String),
    /// `prefix/**`: anything that starts with `prefix/`.
    Prefix(String),
    /// `**`
    Anything,
    Regex {
        source: String,
        compiled: std::sync::OnceLock<Regex>,
    },
}

impl Glob {
    /// Compiles `pattern`, reporting malformed syntax as a [`GlobError`] with `index` 0.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        if pattern.starts_with('!') {
            return Err(GlobError::invalid(
                0,
                pattern,
                "a leading `!` negates a pattern only inside a pattern list \
                 (write `\\!` to match a literal `!`)",
            ));
        }
        Glob::compile(pattern).map_err(|reason| GlobError::invalid(0, pattern, &reason))
    }

    /// Whether the whole of `candidate` matches the pattern.
    pub fn is_match(&self, candidate: &str) -> bool {
        match &self.matcher {
            Matcher::Literal(literal) => candidate == literal,
            Matcher::Prefix(prefix) => candidate.starts_with(prefix.as_str()),
            Matcher::Anything => true,
            Matcher::Regex { source, compiled } => compiled
                // The regex source is built by `to_regex` from a parsed pattern; the unit tests
                // compile every shape it produces, so a failure here is a bug, matched as false.
                .get_or_init(|| {
                    Regex::new(source).unwrap_or_else(|_| Regex::new("$^").expect("a valid regex"))
                })
                .is_match(candidate),
        }
    }

    /// The pattern text this glob was compiled from (without a list's leading `!`).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Compiles a pattern body, in which a leading `!` has no special meaning.
    fn compile(body: &str) -> Result<Glob, String> {
        let pieces = parse(body)?;
        let literal = |pieces: &[Piece]| -> Option<String> {
            pieces
                .iter()
                .map(|piece| match (&piece.atom, piece.repeat) {
                    (Atom::Literal(c), Repeat::Once) => Some(*c),
                    (Atom::Slash, Repeat::Once) => Some('/'),
                    _ => None,
                })
                .collect()
        };
        let matcher = if let Some(text) = literal(&pieces) {
            Matcher::Literal(text)
        } else if pieces.len() == 1
            && pieces[0].atom == Atom::Globstar
            && pieces[0].repeat == Repeat::Once
        {
            Matcher::Anything
        } else if let [head @ .., last] = pieces.as_slice()
            && last.atom == Atom::Globstar
            && last.repeat == Repeat::Once
            && head.last().is_some_and(|piece| piece.atom == Atom::Slash)
            && let Some(prefix) = literal(head)
        {
            Matcher::Prefix(prefix)
        } else {
            Matcher::Regex {
                source: to_regex(&pieces),
                compiled: std::sync::OnceLock::new(),
            }
        };
        Ok(Glob {
            source: body.to_owned(),
            matcher,
        })
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// An ordered list of patterns, some of them negated with a leading `!`.
///
/// GitHub evaluates the list in order: a later `!pattern` excludes what an earlier pattern
/// included, and a later positive pattern includes it again. So the last pattern that matches
/// a candidate decides.
#[derive(Debug, Clone)]
pub struct PatternList {
    entries: Vec<Entry>,
    sources: Vec<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    negated: bool,
    glob: Glob,
}

impl PatternList {
    /// Compiles every pattern of a filter list.
    ///
    /// Fails on the first malformed pattern (its position is the error's `index`), on an empty
    /// list, and on a list whose patterns are all negated, which GitHub rejects because it
    /// could never match anything (`branches-ignore` and friends exist for that).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<PatternList, GlobError> {
        if patterns.is_empty() {
            return Err(GlobError {
                index: 0,
                pattern: String::new(),
                message: "a pattern list needs at least one pattern".to_owned(),
            });
        }
        let mut entries = Vec::with_capacity(patterns.len());
        let mut sources = Vec::with_capacity(patterns.len());
        for (index, pattern) in patterns.iter().enumerate() {
            let pattern = pattern.as_ref();
            // Only the first `!` negates: GitHub gives `!` no meaning past the first character.
            let (negated, body) = match pattern.strip_prefix('!') {
                Some(body) => (true, body),
                None => (false, pattern),
            };
            if negated && body.is_empty() {
                return Err(GlobError::invalid(
                    index,
                    pattern,
                    "nothing follows the `!`",
                ));
            }
            let glob = Glob::compile(body)
                .map_err(|reason| GlobError::invalid(index, pattern, &reason))?;
            entries.push(Entry { negated, glob });
            sources.push(pattern.to_owned());
        }
        if entries.iter().all(|entry| entry.negated) {
            return Err(GlobError {
                index: 0,
                pattern: sources[0].clone(),
                message: "a list with `!` patterns needs at least one positive pattern".to_owned(),
            });
        }
        Ok(PatternList { entries, sources })
    }

    /// GitHub's rule: the last pattern that matches decides; no match → false.
    pub fn matches(&self, candidate: &str) -> bool {
        self.entries
            .iter()
            .rev()
            .find(|entry| entry.glob.is_match(candidate))
            .is_some_and(|entry| !entry.negated)
    }

    /// The patterns as written, for messages like "matches none of [main, release/**]".
    pub fn sources(&self) -> &[String] {
        &self.sources
    }
}

/// A pattern that does not compile, or a pattern list GitHub would reject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobError {
    /// Position of the offending pattern in its list; 0 for [`Glob::new`] and for errors about
    /// the list as a whole.
    pub index: usize,
    /// The offending pattern as written (the list's first pattern for whole-list errors, empty
    /// for an empty list).
    pub pattern: String,
    /// The complete human-readable message; [`Display`](fmt::Display) prints exactly this.
    pub message: String,
}

impl GlobError {
    fn invalid(index: usize, pattern: &str, reason: &str) -> GlobError {
        let message = if pattern.is_empty() {
            format!("invalid pattern: {reason}")
        } else {
            format!("invalid pattern `{pattern}`: {reason}")
        };
        GlobError {
            index,
            pattern: pattern.to_owned(),
            message,
        }
    }
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for GlobError {}

/// One element of a parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    /// A character matched as itself, including an escaped special character.
    Literal(char),
    /// An unescaped `/`, kept apart because it decides whether `**/` may match zero directories.
    Slash,
    /// The body of a validated `[...]`, safe to paste between regex brackets.
    Class(String),
    /// `*`
    Star,
    /// `**`
    Globstar,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    Once,
    /// `?`
    Optional,
    /// `+`
    OneOrMore,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    atom: Atom,
    repeat: Repeat,
}

/// Splits a pattern body into pieces, or explains (without the pattern) why it is malformed.
fn parse(body: &str) -> Result<Vec<Piece>, String> {
    if body.is_empty() {
        return Err("a pattern cannot be empty".to_owned());
    }
    let chars: Vec<char> = body.chars().collect();
    let mut pieces: Vec<Piece> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        let atom = match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                Atom::Globstar
            }
            '*' => Atom::Star,
            '/' => Atom::Slash,
            '\\' => {
                let Some(&escaped) = chars.get(i) else {
                    return Err("a trailing `\\` escapes nothing".to_owned());
                };
                i += 1;
                Atom::Literal(escaped)
            }
            '[' => {
                let Some(len) = chars[i..].iter().position(|&ch| ch == ']') else {
                    return Err("unclosed `[`".to_owned());
                };
                let class = parse_class(&chars[i..i + len])?;
                i += len + 1;
                Atom::Class(class)
            }
            '?' | '+' => {
                let repeat = if c == '?' {
                    Repeat::Optional
                } else {
                    Repeat::OneOrMore
                };
                apply_repeat(pieces.last_mut(), c, repeat)?;
                continue;
            }
            other => Atom::Literal(other),
        };
        pieces.push(Piece {
            atom,
            repeat: Repeat::Once,
        });
    }
    Ok(pieces)
}

/// Attaches `?` or `+` to the piece before it, which must be a single character or class.
fn apply_repeat(previous: Option<&mut Piece>, op: char, repeat: Repeat) -> Result<(), String> {
    let hint = format!("(write `\\{op}` to match a literal `{op}`)");
    let Some(previous) = previous else {
        return Err(format!(
            "`{op}` has no preceding character to repeat {hint}"
        ));
    };
    let target = match (&previous.atom, previous.repeat) {
        (_, Repeat::Optional) => "`?`",
        (_, Repeat::OneOrMore) => "`+`",
        (Atom::Star, Repeat::Once) => "`*`",
        (Atom::Globstar, Repeat::Once) => "`**`",
        (Atom::Literal(_) | Atom::Slash | Atom::Class(_), Repeat::Once) => {
            previous.repeat = repeat;
            return Ok(());
        }
    };
    Err(format!("`{op}` cannot repeat {target} {hint}"))
}

/// Validates the inside of `[...]` against GitHub's rule that it lists only letters and digits,
/// and ranges within one of `a-z`, `A-Z`, `0-9`.
fn parse_class(inner: &[char]) -> Result<String, String> {
    match inner.first() {
        None => return Err("`[]` lists no characters".to_owned()),
        Some(&first @ ('!' | '^')) => {
            return Err(format!(
                "`[{first}...]` (a negated class) is not part of GitHub's filter syntax"
            ));
        }
        Some(_) => {}
    }
    let mut class = String::new();
    let mut i = 0;
    while i < inner.len() {
        let c = inner[i];
        if c == '-' {
            return Err(
                "a range in `[...]` needs a letter or digit on both sides of `-`".to_owned(),
            );
        }
        if !c.is_ascii_alphanumeric() {
            return Err(format!(
                "`[...]` may list only letters and digits, not `{c}`"
            ));
        }
        if inner.get(i + 1) == Some(&'-') {
            let Some(&end) = inner.get(i + 2) else {
                return Err(
                    "a range in `[...]` needs a letter or digit on both sides of `-`".to_owned(),
                );
            };
            if !end.is_ascii_alphanumeric() {
                return Err(format!(
                    "`[...]` may list only letters and digits, not `{end}`"
                ));
            }
            if char_kind(c) != char_kind(end) {
                return Err(format!(
                    "range `{c}-{end}` must stay within one of `a-z`, `A-Z` or `0-9`"
                ));
            }
            if c > end {
                return Err(format!("range `{c}-{end}` is reversed"));
            }
            class.extend([c, '-', end]);
            i += 3;
        } else {
            class.push(c);
            i += 1;
        }
    }
    Ok(class)
}

/// Which of GitHub's three range alphabets an ASCII letter or digit belongs to.
fn char_kind(c: char) -> u8 {
    if c.is_ascii_digit() {
        0
    } else if c.is_ascii_lowercase() {
        1
    } else {
        2
    }
}

/// Renders parsed pieces as an anchored regex.
fn to_regex(pieces: &[Piece]) -> String {
    // `(?s)`: `**` must also cross newlines, which may appear in file names.
    let mut re = String::from("(?s)^");
    let mut i = 0;
    while i < pieces.len() {
        let piece = &pieces[i];
        match &piece.atom {
            Atom::Literal(c) => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
            Atom::Slash => re.push('/'),
            Atom::Class(class) => {
                re.push('[');
                re.push_str(class);
                re.push(']');
            }
            Atom::Star => re.push_str("[^/]*"),
            Atom::Globstar => {
                // A whole-segment `**/` may stand for no directory at all: that is how the
                // cheat sheet's `**/README.md` matches `README.md` and `docs/**/*.md` matches
                // `docs/README.md`. Mid-segment (`a**/b`) it stays plain `.*/`.
                let starts_segment = i == 0
                    || pieces[i - 1]
                        == Piece {
                            atom: Atom::Slash,
                            repeat: Repeat::Once,
                        };
                let slash_follows = pieces.get(i + 1)
                    == Some(&Piece {
                        atom: Atom::Slash,
                        repeat: Repeat::Once,
                    });
                if starts_segment && slash_follows {
                    re.push_str("(?:.*/)?");
                    i += 1;
                } else {
                    re.push_str(".*");
                }
            }
        }
        match piece.repeat {
            Repeat::Once => {}
            Repeat::Optional => re.push('?'),
            Repeat::OneOrMore => re.push('+'),
        }
        i += 1;
    }
    re.push('$');
    re
}

#[cfg(test)]
mod tests {
    use super::*;

    type Row = (&'static [&'static str], &'static str, bool);

    fn check(table: &[Row]) {
        let mut failures = Vec::new();
        for &(patterns, candidate, expected) in table {
            let list = PatternList::new(patterns)
                .unwrap_or_else(|err| panic!("{patterns:?} should compile: {err}"));
            if list.matches(candidate) != expected {
                failures.push(format!(
                    "{patterns:?} on {candidate:?}: expected {expected}"
                ));
            }
            // A lone positive pattern must behave the same on its own as in a list.
            if let [single] = patterns
                && !single.starts_with('!')
            {
                let glob = Glob::new(single)
                    .unwrap_or_else(|err| panic!("{single:?} should compile: {err}"));
                // The regex is compiled lazily; every shape the translation produces must compile.
                if let Matcher::Regex { source, .. } = &glob.matcher {
                    assert!(
                        Regex::new(source).is_ok(),
                        "{single:?} → {source:?} is not a valid regex"
                    );
                }
                if glob.is_match(candidate) != expected {
                    failures.push(format!(
                        "Glob {single:?} on {candidate:?}: expected {expected}"
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    }

    #[test]
    fn cheat_sheet_branches_and_tags() {
        check(&[
            (&["feature/*"], "feature/my-branch", true),
            (&["feature/*"], "feature/your-branch", true),
            // `*` stops at `/`.
            (&["feature/*"], "feature/beta-a/my-branch", false),
            (&["feature/**"], "feature/beta-a/my-branch", true),
            (&["feature/**"], "feature/your-branch", true),
            (&["feature/**"], "feature/mona/the/octocat", true),
            // The `/` before `**` is literal, so the bare prefix is outside the pattern.
            (&["feature/**"], "feature", false),
            (&["main", "releases/mona-the-octocat"], "main", true),
            (
                &["main", "releases/mona-the-octocat"],
                "releases/mona-the-octocat",
                true,
            ),
            // Patterns are anchored at both ends.
            (&["main", "releases/mona-the-octocat"], "main2", false),
            (&["main", "releases/mona-the-octocat"], "not-main", false),
            (&["*"], "main", true),
            (&["*"], "releases", true),
            (&["*"], "releases/10", false),
            (&["**"], "all/the/branches", true),
            (&["**"], "every/tag", true),
            (&["*feature"], "mona-feature", true),
            // `*` may match nothing.
            (&["*feature"], "feature", true),
            (&["*feature"], "ver-10-feature", true),
            (&["*feature"], "feature-x", false),
            (&["*feature"], "mona/feature", false),
            (&["v2*"], "v2", true),
            (&["v2*"], "v2.0", true),
            (&["v2*"], "v2.9", true),
            (&["v2*"], "v1.2", false),
            (&["v2*"], "v2/hotfix", false),
            (&["v[12].[0-9]+.[0-9]+"], "v1.10.1", true),
            (&["v[12].[0-9]+.[0-9]+"], "v2.0.0", true),
            (&["v[12].[0-9]+.[0-9]+"], "v3.0.0", false),
            // `+` needs at least one digit.
            (&["v[12].[0-9]+.[0-9]+"], "v1..1", false),
            // `.` is a literal dot, not a regex wildcard.
            (&["v[12].[0-9]+.[0-9]+"], "v1x0y0", false),
        ]);
    }

    #[test]
    fn cheat_sheet_file_paths() {
        check(&[
            (&["*"], "README.md", true),
            (&["*"], "server.rb", true),
            (&["*"], "docs/README.md", false),
            (&["*.jsx?"], "page.js", true),
            (&["*.jsx?"], "page.jsx", true),
            // `?` makes only the `x` optional, not the whole extension.
            (&["*.jsx?"], "page.j", false),
            (&["*.jsx?"], "page.jsxx", false),
            (&["**"], "all/the/files.md", true),
            (&["*.js"], "app.js", true),
            (&["*.js"], "index.js", true),
            (&["*.js"], "src/app.js", false),
            (&["**.js"], "index.js", true),
            (&["**.js"], "js/index.js", true),
            (&["**.js"], "src/js/app.js", true),
            (&["**.js"], "src/js/app.jsx", false),
            (&["docs/*"], "docs/README.md", true),
            (&["docs/*"], "docs/file.txt", true),
            (&["docs/*"], "docs/mona/octocat.txt", false),
            (&["docs/**"], "docs/README.md", true),
            (&["docs/**"], "docs/mona/octocat.txt", true),
            // Only the `docs` directory at the root.
            (&["docs/**"], "src/docs/file.txt", false),
            // `**/` may stand for zero directories.
            (&["docs/**/*.md"], "docs/README.md", true),
            (&["docs/**/*.md"], "docs/mona/hello-world.md", true),
            (&["docs/**/*.md"], "docs/a/markdown/file.md", true),
            (&["docs/**/*.md"], "docs/a/file.txt", false),
            (&["docs/**/*.md"], "README.md", false),
            (&["**/docs/**"], "docs/hello.md", true),
            (&["**/docs/**"], "dir/docs/my-file.txt", true),
            (&["**/docs/**"], "space/docs/plan/space.doc", true),
            // The zero-directory form still needs `docs` to be a whole directory name.
            (&["**/docs/**"], "mydocs/file.txt", false),
            (&["**/README.md"], "README.md", true),
            (&["**/README.md"], "js/README.md", true),
            (&["**/README.md"], "js/NOT-README.md", false),
            (&["**/README.md"], "xREADME.md", false),
            (&["**/*src/**"], "a/src/app.js", true),
            (&["**/*src/**"], "my-src/code/js/app.js", true),
            (&["**/*src/**"], "a/src-old/app.js", false),
            (&["**/*-post.md"], "my-post.md", true),
            (&["**/*-post.md"], "path/their-post.md", true),
            (&["**/*-post.md"], "post.md", false),
            (&["**/migrate-*.sql"], "migrate-10909.sql", true),
            (&["**/migrate-*.sql"], "db/migrate-v1.0.sql", true),
            (&["**/migrate-*.sql"], "db/sept/migrate-v1.sql", true),
            (&["**/migrate-*.sql"], "db/migrate-v1.sql.bak", false),
            (&["**/migrate-*.sql"], "db/migrations/v1.sql", false),
            (&["*.md", "!README.md"], "hello.md", true),
            (&["*.md", "!README.md"], "README.md", false),
            // Never included: `*` does not reach into `docs/`.
            (&["*.md", "!README.md"], "docs/hello.md", false),
            (&["*.md", "!README.md", "README*"], "hello.md", true),
            (&["*.md", "!README.md", "README*"], "README.md", true),
            (&["*.md", "!README.md", "README*"], "README.doc", true),
        ]);
    }

    #[test]
    fn documented_branch_and_tag_filters() {
        check(&[
            (&["main", "mona/octocat", "releases/**"], "main", true),
            (
                &["main", "mona/octocat", "releases/**"],
                "mona/octocat",
                true,
            ),
            (
                &["main", "mona/octocat", "releases/**"],
                "releases/10",
                true,
            ),
            (
                &["main", "mona/octocat", "releases/**"],
                "mona/hubot",
                false,
            ),
            (&["v2", "v1.*"], "v2", true),
            (&["v2", "v1.*"], "v1.9.1", true),
            (&["v2", "v1.*"], "v1.9", true),
            (&["v2", "v1.*"], "v2.0", false),
            (&["v2", "v1.*"], "v10.1", false),
            // The `branches-ignore` example: a match here means the run is skipped.
            (&["mona/octocat", "releases/**-alpha"], "mona/octocat", true),
            (
                &["mona/octocat", "releases/**-alpha"],
                "releases/beta/3-alpha",
                true,
            ),
            (&["mona/octocat", "releases/**-alpha"], "releases/10", false),
            (&["releases/**", "!releases/**-alpha"], "releases/10", true),
            (
                &["releases/**", "!releases/**-alpha"],
                "releases/beta/mona",
                true,
            ),
            (
                &["releases/**", "!releases/**-alpha"],
                "releases/10-alpha",
                false,
            ),
            (
                &["releases/**", "!releases/**-alpha"],
                "releases/beta/3-alpha",
                false,
            ),
            // From the flow-sequence quoting example.
            (&["main", "release/v[0-9].[0-9]"], "release/v1.2", true),
            (&["main", "release/v[0-9].[0-9]"], "release/v1.20", false),
        ]);
    }

    #[test]
    fn documented_path_filters() {
        check(&[
            (&["**.js"], "app.js", true),
            (&["**.js"], "lib/deep/app.js", true),
            (&["**.js"], "app.ts", false),
            // The `paths-ignore` example: a match here means the file is ignored.
            (&["docs/**"], "docs/guide/intro.md", true),
            (&["docs/**"], "src/main.rs", false),
            (
                &["sub-project/**", "!sub-project/docs/**"],
                "sub-project/index.js",
                true,
            ),
            (
                &["sub-project/**", "!sub-project/docs/**"],
                "sub-project/src/index.js",
                true,
            ),
            (
                &["sub-project/**", "!sub-project/docs/**"],
                "sub-project/docs/readme.md",
                false,
            ),
            (
                &["sub-project/**", "!sub-project/docs/**"],
                "other/index.js",
                false,
            ),
        ]);
    }

    #[test]
    fn special_characters() {
        check(&[
            (&["Octo*"], "Octocat", true),
            (&["[CB]at"], "Cat", true),
            (&["[CB]at"], "Bat", true),
            (&["[CB]at"], "Rat", false),
            // Matching is case-sensitive.
            (&["[CB]at"], "cat", false),
            (&["[1-2]00"], "100", true),
            (&["[1-2]00"], "200", true),
            (&["[1-2]00"], "300", false),
            (&["[0-9a-z]"], "q", true),
            (&["[0-9a-z]"], "7", true),
            (&["[0-9a-z]"], "Q", false),
            // A class matches exactly one character.
            (&["[0-9a-z]"], "q7", false),
            (&["[0-9]*"], "1", true),
            (&["[0-9]*"], "10-hotfix", true),
            (&["[0-9]*"], "v1", false),
            (&["[0-9]*"], "1/hotfix", false),
            (&["[0-9]+.x"], "12.x", true),
            (&["[0-9]+.x"], ".x", false),
            (&["colou?r"], "color", true),
            (&["colou?r"], "colour", true),
            (&["colou?r"], "colouur", false),
            (&["fo+"], "fo", true),
            (&["fo+"], "fooo", true),
            (&["fo+"], "f", false),
            // `?`/`+` may repeat a slash too; `**/` then no longer means "any directories".
            (&["a/+b"], "a//b", true),
            (&["**/?x"], "abc/x", true),
            (&["**/?x"], "abcx", true),
            // Past the first character `!` is an ordinary character.
            (&["a!b"], "a!b", true),
            (&["a!b"], "ab", false),
            // Mid-segment `**` is plain "anything"; it does not make `/` optional.
            (&["a**/b"], "ab", false),
            (&["a**/b"], "ax/y/b", true),
            // `**` also crosses newlines, which git allows in file names.
            (&["**"], "a\nb", true),
            (&["**"], "", true),
            (&["*"], "", true),
            (&["docs/ünï*.md"], "docs/ünïcode.md", true),
        ]);
    }

    #[test]
    fn escapes_and_regex_metacharacters_are_literal() {
        check(&[
            (&["release\\*"], "release*", true),
            (&["release\\*"], "release1", false),
            (&["c\\+\\+/**"], "c++/main.cpp", true),
            (&["c\\+\\+/**"], "c/main.cpp", false),
            (&["why\\?"], "why?", true),
            (&["why\\?"], "why", false),
            (&["\\[x]"], "[x]", true),
            (&["escape\\\\backslash"], "escape\\backslash", true),
            (&["\\!file"], "!file", true),
            (&["a.b"], "a.b", true),
            (&["a.b"], "axb", false),
            (&["(x)|y"], "(x)|y", true),
            (&["(x)|y"], "y", false),
            (&["$HOME^{1}"], "$HOME^{1}", true),
            (&["a]b"], "a]b", true),
        ]);
    }

    #[test]
    fn ordering_decides() {
        check(&[
            (&["*", "!main"], "main", false),
            (&["*", "!main"], "dev", true),
            // A negation before any positive pattern has nothing to exclude yet.
            (&["!main", "*"], "main", true),
            (
                &["releases/**", "!releases/**-alpha", "releases/keep-alpha"],
                "releases/keep-alpha",
                true,
            ),
            (
                &["releases/**", "!releases/**-alpha", "releases/keep-alpha"],
                "releases/drop-alpha",
                false,
            ),
            // Only the first `!` negates; the second is part of the name.
            (&["**", "!!main"], "!main", false),
            (&["**", "!!main"], "main", true),
        ]);
    }

    #[test]
    fn sources_and_as_str_keep_the_text_as_written() {
        let list = PatternList::new(&["main", "!release/**"]).expect("valid patterns");
        assert_eq!(list.sources(), ["main", "!release/**"]);
        let owned = vec![String::from("v[12].*")];
        let list = PatternList::new(&owned).expect("valid patterns");
        assert_eq!(list.sources(), ["v[12].*"]);
        let glob = Glob::new("docs/**").expect("valid pattern");
        assert_eq!(glob.as_str(), "docs/**");
        assert_eq!(glob.to_string(), "docs/**");
    }

    fn glob_error(pattern: &str) -> GlobError {
        match Glob::new(pattern) {
            Ok(glob) => panic!(
                "{pattern:?} should be rejected, compiled to {:?}",
                glob.matcher
            ),
            Err(err) => err,
        }
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        let cases: &[(&str, &str)] = &[
            ("[a-", "invalid pattern `[a-`: unclosed `[`"),
            ("v[0-9", "invalid pattern `v[0-9`: unclosed `[`"),
            ("", "invalid pattern: a pattern cannot be empty"),
            (
                "+a",
                "invalid pattern `+a`: `+` has no preceding character to repeat \
                 (write `\\+` to match a literal `+`)",
            ),
            (
                "?a",
                "invalid pattern `?a`: `?` has no preceding character to repeat \
                 (write `\\?` to match a literal `?`)",
            ),
            (
                "abc\\",
                "invalid pattern `abc\\`: a trailing `\\` escapes nothing",
            ),
            ("a[]", "invalid pattern `a[]`: `[]` lists no characters"),
            (
                "[!a]",
                "invalid pattern `[!a]`: `[!...]` (a negated class) is not part of GitHub's \
                 filter syntax",
            ),
            (
                "[^a]",
                "invalid pattern `[^a]`: `[^...]` (a negated class) is not part of GitHub's \
                 filter syntax",
            ),
            (
                "[a_]",
                "invalid pattern `[a_]`: `[...]` may list only letters and digits, not `_`",
            ),
            (
                "[a-_]",
                "invalid pattern `[a-_]`: `[...]` may list only letters and digits, not `_`",
            ),
            (
                "[\\*]",
                "invalid pattern `[\\*]`: `[...]` may list only letters and digits, not `\\`",
            ),
            (
                "[a-]",
                "invalid pattern `[a-]`: a range in `[...]` needs a letter or digit on both \
                 sides of `-`",
            ),
            (
                "[-a]",
                "invalid pattern `[-a]`: a range in `[...]` needs a letter or digit on both \
                 sides of `-`",
            ),
            ("[z-a]", "invalid pattern `[z-a]`: range `z-a` is reversed"),
            (
                "[a-Z]",
                "invalid pattern `[a-Z]`: range `a-Z` must stay within one of `a-z`, `A-Z` or \
                 `0-9`",
            ),
            (
                "a*+",
                "invalid pattern `a*+`: `+` cannot repeat `*` (write `\\+` to match a literal `+`)",
            ),
            (
                "**?",
                "invalid pattern `**?`: `?` cannot repeat `**` (write `\\?` to match a literal `?`)",
            ),
            (
                "c++",
                "invalid pattern `c++`: `+` cannot repeat `+` (write `\\+` to match a literal `+`)",
            ),
            (
                "a?+",
                "invalid pattern `a?+`: `+` cannot repeat `?` (write `\\+` to match a literal `+`)",
            ),
            (
                "!main",
                "invalid pattern `!main`: a leading `!` negates a pattern only inside a pattern \
                 list (write `\\!` to match a literal `!`)",
            ),
        ];
        for &(pattern, message) in cases {
            let err = glob_error(pattern);
            assert_eq!(
                err,
                GlobError {
                    index: 0,
                    pattern: pattern.to_owned(),
                    message: message.to_owned(),
                },
                "for {pattern:?}"
            );
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn list_errors_point_at_the_offending_pattern() {
        let err = PatternList::new(&["main", "release/**", "[x"]).expect_err("unclosed class");
        assert_eq!(err.index, 2);
        assert_eq!(err.pattern, "[x");
        assert_eq!(err.message, "invalid pattern `[x`: unclosed `[`");

        // The `!` stays in the reported text because that is what the user wrote.
        let err = PatternList::new(&["main", "!+x"]).expect_err("nothing to repeat");
        assert_eq!(err.index, 1);
        assert_eq!(err.pattern, "!+x");
        assert!(
            err.message
                .starts_with("invalid pattern `!+x`: `+` has no preceding")
        );

        let err = PatternList::new(&["main", "!"]).expect_err("bare negation");
        assert_eq!(err.index, 1);
        assert_eq!(err.message, "invalid pattern `!`: nothing follows the `!`");

        let err = PatternList::new(&["main", ""]).expect_err("empty pattern");
        assert_eq!(err.index, 1);
        assert_eq!(err.message, "invalid pattern: a pattern cannot be empty");
    }

    #[test]
    fn empty_list_is_rejected() {
        let err = PatternList::new::<&str>(&[]).expect_err("empty list");
        assert_eq!(
            err,
            GlobError {
                index: 0,
                pattern: String::new(),
                message: "a pattern list needs at least one pattern".to_owned(),
            }
        );
    }

    #[test]
    fn only_negated_patterns_are_rejected() {
        let err = PatternList::new(&["!main", "!release/**"]).expect_err("no positive pattern");
        assert_eq!(
            err,
            GlobError {
                index: 0,
                pattern: "!main".to_owned(),
                message: "a list with `!` patterns needs at least one positive pattern".to_owned(),
            }
        );
        let boxed: Box<dyn Error> = Box::new(err);
        assert_eq!(
            boxed.to_string(),
            "a list with `!` patterns needs at least one positive pattern"
        );
    }
}
