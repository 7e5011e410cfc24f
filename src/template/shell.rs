//! Shell-context escaping of `run` scripts (SPEC §5.1): finds every `{{ … }}` in a script's
//! template source, works out which shell quoting context its value lands in, and rewrites it
//! so that the value passes through the escape filter for that context.
//!
//! # How it works
//!
//! [`escape_script`] is a pure source-to-source rewrite, done once when a workflow is loaded.
//! It splits the template source the way minijinja's lexer does (default delimiters, `-`/`+`
//! whitespace control, `{% raw %}`, strings inside tags), applies the whitespace control to the
//! literal text, and runs a small bash lexer over that text. Each `{{ expr }}` becomes
//! `{{ (expr) | FILTER }}`; the filters ([`FILTER_BARE`] …) are registered on the environment by
//! the template module and call the escape functions of this module. Rewriting never adds or
//! removes a line, so minijinja's line numbers still point into the workflow's own text.
//!
//! The text an expression produces is escaped to be inert, so it never changes the quoting
//! state; a `{{ expr | safe }}` is left as it is, and its value is trusted to leave the quoting
//! as it found it too. `{% … %}` tags are taken to render nothing: the state carries across them
//! unchanged, which holds as long as the body of an `{% if %}` or `{% for %}` leaves the shell's
//! quoting balanced (true of any sensible script). Text from `{% include %}` or macro calls is not
//! seen.
//!
//! The environment that compiles the rewritten source must have the six `sh_*` filters
//! registered and minijinja's built-in `replace` (the `builtins` feature); a value for a quoted
//! here-document is checked by a filter with arguments:
//!
//! ```text
//! env.add_filter(shell::FILTER_QUOTED_HEREDOC, |value: Value, delimiter: String, before: String, after: String| {
//!     shell::escape_quoted_heredoc(&text_of(&value), &delimiter, &before, &after)
//!         .map_err(|error| Error::new(ErrorKind::InvalidOperation, error.to_string()))
//! });
//! ```
//!
//! # Contexts
//!
//! | where the value lands                | context                         | escaping |
//! |--------------------------------------|---------------------------------|----------|
//! | a bare word (also inside `$(…)`)      | [`ShellContext::Bare`]          | `'…'`, each `'` as `'\''` |
//! | `"…"` or `$"…"`                       | [`ShellContext::DoubleQuoted`]  | `` \ " $ ` `` backslash-escaped |
//! | `'…'`                                 | [`ShellContext::SingleQuoted`]  | each `'` as `'\''` |
//! | `$'…'`                                | [`ShellContext::AnsiCQuoted`]   | `\` and `'` as `\\` and `\'` |
//! | a `<<WORD` here-document body         | [`ShellContext::HereDoc`]       | `` \ $ ` `` backslash-escaped, see [`escape_heredoc`] |
//! | a `<<'WORD'` / `<<"WORD"` body        | [`ShellContext::QuotedHereDoc`] | verbatim, refused if it could end the document, see [`escape_quoted_heredoc`] |
//! | a `#` comment                         | [`ShellContext::Comment`]       | bare quoting with line breaks made spaces |
//!
//! # Refused, with a load error
//!
//! Places where no escaping can make a value inert, or where this lexer cannot tell how bash
//! will read it: right after an unescaped `\` (it would escape the first escaped character) or
//! `$` (`${{ t }}` would expand `$'…'` or `$(…)` built by the value); inside backquotes (their
//! backslash processing undoes the escaping; use `$(…)`); inside `$((…))`, `((…))` and `$[…]`
//! (bash evaluates a string there as code, `a[$(cmd)]` included, quoted or not); inside `${…}`
//! (quoting rules there depend on the operator and the bash version); in a here-document's
//! delimiter word; inside a `$(…)` within a here-document body (bash cuts the body into lines
//! before it parses the `$(…)`, so a line of the value could end the document even inside quotes
//! there); and a here-document whose closing line also holds a `{% … %}` tag. These
//! refusals apply to `| safe` interpolations too: they are about where a value lands.
//!
//! # Arithmetic contexts
//!
//! bash evaluates some words as arithmetic, and arithmetic runs a `$(…)` it finds in a value,
//! quoted or not. Besides `$((…))`, `((…))` and `$[…]`, the lexer keeps the words of each simple
//! command and refuses an interpolation in: an operand of `-eq` … `-ge` or `-v` in `[[ … ]]`
//! (`(`, `)`, `&&`, `||` do not end the command there), the operand of `-v` in `[` / `test`,
//! the arguments of `let` and of `declare -i` (and `local`, `typeset`, `readonly`, `export`), an
//! assignment to a name declared `-i` earlier in the script, the elements of an integer array
//! assignment, and array subscripts (`a[…]=`, `( [ … ]=x )`, `name[…]` arguments of the
//! builtins in [`SUBSCRIPT_COMMANDS`] and the declaring ones). A value inside a `$(…)` counts as
//! part of the outer word too. An expression whose last filter is `int` is let in: it goes
//! through [`FILTER_NUMBER`] instead, which passes only an integer, verbatim.
//!
//! # What escaping does not cover
//!
//! A value still arrives as one literal string. A command that treats its arguments as code
//! (`eval`, `bash -c`, a variable holding the value later used in arithmetic) or a value put
//! where the command name goes is the script's own decision; `validate` is the place to warn.
//!
//! # Known approximations
//!
//! The lexer is bash's, simplified: `case … esac` is followed only inside `$(…)` and only at
//! command position; single quotes inside a double-quoted `${…}` are taken as quotes only when
//! the `${…}` itself is unquoted; a backslash-newline inside quotes within an unquoted
//! here-document is not joined as bash does; an extglob such as `@(a|b)#x` is taken to start a
//! comment at `#` (the comment escaping is still safe for a bare word, merely not verbatim).
//! Templates are assumed to use minijinja's default syntax with `trim_blocks`,
//! `lstrip_blocks` and line statements off, as vane's environment does.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;

/// Filter for a bare word: calls [`quote_bare`]. Also used, followed by minijinja's built-in
/// `replace`, for a value inside a comment.
pub const FILTER_BARE: &str = "sh_bare";
/// Filter for the inside of `"…"`: calls [`escape_double`].
pub const FILTER_DOUBLE: &str = "sh_double";
/// Filter for the inside of `'…'`: calls [`escape_single`].
pub const FILTER_SINGLE: &str = "sh_single";
/// Filter for the inside of `$'…'`: calls [`escape_ansi_c`].
pub const FILTER_ANSI_C: &str = "sh_ansi_c";
/// Filter for the body of an unquoted here-document: calls [`escape_heredoc`].
pub const FILTER_HEREDOC: &str = "sh_heredoc";
/// Filter for the body of an unquoted `<<-` here-document: calls [`escape_heredoc_tabs`].
pub const FILTER_HEREDOC_TABS: &str = "sh_heredoc_tabs";
/// Filter for the body of a quoted here-document, called as
/// `sh_quoted_heredoc(delimiter, before, after)`: calls [`escape_quoted_heredoc`] and fails the
/// render when that refuses the value.
pub const FILTER_QUOTED_HEREDOC: &str = "sh_quoted_heredoc";
/// Filter for a value made a number with `| int` where bash evaluates arithmetic: calls
/// [`check_integer`], so the value lands verbatim (`$(( '7' ))` would be a syntax error) and
/// only ever as an integer.
pub const FILTER_NUMBER: &str = "sh_number";

/// An expansion that is always empty, is POSIX (so `sh -ec` runs it too), forks nothing and is
/// allowed under `set -u`: `$-` is always set, and `${param+word}` with an empty `word` yields
/// the empty string. [`escape_heredoc`] puts it where a line of the value could otherwise read
/// as the document's closing delimiter: bash compares the raw line, before expansion.
const HEREDOC_MARKER: &str = "${-+}";

/// The shell context an interpolation lands in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellContext {
    /// An unquoted word, at the top level or inside `$(…)` or `<(…)`.
    Bare,
    /// Inside `"…"` or `$"…"`.
    DoubleQuoted,
    /// Inside `'…'`.
    SingleQuoted,
    /// Inside bash's `$'…'`.
    AnsiCQuoted,
    /// In the body of a here-document whose delimiter is unquoted (`<<EOF`), which the shell
    /// expands.
    HereDoc,
    /// In the body of a here-document whose delimiter is quoted (`<<'EOF'`), which is verbatim.
    QuotedHereDoc,
    /// In a `#` comment, where only a line break in the value would matter.
    Comment,
}

impl ShellContext {
    /// The name of the filter that escapes a value for this context.
    pub fn filter(self) -> &'static str {
        match self {
            ShellContext::Bare | ShellContext::Comment => FILTER_BARE,
            ShellContext::DoubleQuoted => FILTER_DOUBLE,
            ShellContext::SingleQuoted => FILTER_SINGLE,
            ShellContext::AnsiCQuoted => FILTER_ANSI_C,
            ShellContext::HereDoc => FILTER_HEREDOC,
            ShellContext::QuotedHereDoc => FILTER_QUOTED_HEREDOC,
        }
    }
}

/// One `{{ … }}` found in the script, where it was and what was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpolation {
    /// Byte offset of the `{{` in the source.
    pub offset: usize,
    /// The expression between the braces, trimmed.
    pub expression: String,
    /// Where the value lands.
    pub context: ShellContext,
    /// The expression ends in `| safe`: it was left unescaped on purpose, and `validate` may
    /// want to warn when it reads `event.*`.
    pub opted_out: bool,
}

/// A run script rewritten so that every interpolation is escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscapedScript {
    /// The rewritten template source, to compile with minijinja.
    pub source: String,
    /// Every `{{ … }}` of the original source, in order.
    pub interpolations: Vec<Interpolation>,
}

/// Why a run script could not be rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellScanError {
    /// Byte offset in the source of what is wrong (the `{{` of an interpolation, as a rule).
    pub offset: usize,
    /// What is wrong, for the user.
    pub message: String,
}

impl fmt::Display for ShellScanError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} (at byte {})", self.message, self.offset)
    }
}

impl std::error::Error for ShellScanError {}

/// A value refused for a quoted here-document: one of its lines would end the document early,
/// and what follows would run as commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotedHereDocError {
    /// The delimiter the value would have matched.
    pub delimiter: String,
}

impl fmt::Display for QuotedHereDocError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let delimiter = &self.delimiter;
        write!(
            formatter,
            "the value cannot go into the here-document `{delimiter}`: a line of it could read \
             `{delimiter}` and end the document early"
        )
    }
}

impl std::error::Error for QuotedHereDocError {}

/// Rewrites a run script so that every interpolation is escaped for its shell context:
/// `{{ expr }}` becomes `{{ (expr) | sh_bare }}` and the like (see the module documentation for
/// the filters it needs); `{{ expr | safe }}` is left alone and reported as opted out.
///
/// An unterminated shell quote is not an error here (bash reports it when the script runs);
/// an unclosed `{{`, `{%` or `{#`, an empty `{{ }}`, and the places listed under "Refused" in
/// the module documentation are.
pub fn escape_script(source: &str) -> Result<EscapedScript, ShellScanError> {
    let mut tags = Vec::new();
    let mut items = Vec::new();
    for piece in split_template(source)? {
        match piece {
            Piece::Text(range) => items.extend(source[range.clone()].char_indices().map(
                |(index, ch)| Item::Char {
                    ch,
                    offset: range.start + index,
                },
            )),
            Piece::Block(offset) => items.push(Item::Block { offset }),
            Piece::Expr(tag) => {
                if source[tag.inner.clone()].trim().is_empty() {
                    return Err(ShellScanError {
                        offset: tag.start,
                        message: "empty interpolation `{{ }}`".to_string(),
                    });
                }
                items.push(Item::Expr(tags.len()));
                tags.push(tag);
            }
        }
    }

    let placements = Scanner::new(source, &items, &tags).run()?;

    let mut rewritten = String::with_capacity(source.len() + tags.len() * 24);
    let mut interpolations = Vec::with_capacity(tags.len());
    let mut copied = 0;
    for (tag, placement) in tags.iter().zip(placements) {
        let expression = source[tag.inner.clone()].trim();
        let opted_out = ends_in_safe(expression);
        rewritten.push_str(&source[copied..tag.start]);
        if opted_out {
            rewritten.push_str(&source[tag.start..tag.end]);
        } else {
            rewritten.push_str("{{");
            rewritten.extend(tag.open_ws);
            rewritten.push_str(" (");
            rewritten.push_str(expression);
            rewritten.push_str(") | ");
            rewritten.push_str(&placement.filter_call());
            rewritten.push(' ');
            rewritten.extend(tag.close_ws);
            rewritten.push_str("}}");
        }
        copied = tag.end;
        interpolations.push(Interpolation {
            offset: tag.start,
            expression: expression.to_string(),
            context: placement.context,
            opted_out,
        });
    }
    rewritten.push_str(&source[copied..]);
    Ok(EscapedScript {
        source: rewritten,
        interpolations,
    })
}

/// Quotes a value as one bare shell word: `'…'`, each `'` as `'\''`; the empty value is `''`.
/// Line breaks stay literal inside the quotes, which POSIX `sh` needs.
pub fn quote_bare(value: &str) -> String {
    format!("'{}'", escape_single(value))
}

/// Escapes a value for the inside of `"…"`: `` \ " $ ` `` get a backslash, nothing else is
/// special there (`!` history expansion is off in a non-interactive shell).
pub fn escape_double(value: &str) -> String {
    backslash_escape(value, &['\\', '"', '$', '`'])
}

/// Escapes a value for the inside of `'…'`: each `'` closes the quote, adds an escaped `'` and
/// opens a new quote (`'\''`).
pub fn escape_single(value: &str) -> String {
    value.replace('\'', r"'\''")
}

/// Escapes a value for the inside of bash's `$'…'`: `\` and `'` become `\\` and `\'`, so no
/// other escape sequence can form.
pub fn escape_ansi_c(value: &str) -> String {
    backslash_escape(value, &['\\', '\''])
}

/// Escapes a value for the body of an unquoted here-document: `` \ $ ` `` get a backslash (a `"`
/// stays as it is, since `\"` would print the backslash there).
///
/// A value that is a line of its own and reads like the closing delimiter (`EOF`) would end the
/// document early and what follows would run as commands. An unquoted delimiter is one plain
/// word, so a line holding a space, a tab after text, a quote, a backslash or one of `;&|()<>`
/// can never match it; before every other line of the value (and before the empty value) the
/// empty expansion `${-+}` is put after any leading tabs. It prints nothing, but the raw line
/// bash compares no longer equals the delimiter, with `<<` or `<<-`.
pub fn escape_heredoc(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len() + HEREDOC_MARKER.len());
    for (index, line) in value.split('\n').enumerate() {
        if index > 0 {
            escaped.push('\n');
        }
        let line = backslash_escape(line, &['\\', '$', '`']);
        let text = line.trim_start_matches('\t');
        let cannot_be_delimiter = text.contains([
            ' ', '\t', ';', '&', '|', '(', ')', '<', '>', '\'', '"', '\\',
        ]);
        if !cannot_be_delimiter {
            escaped.push_str(&line[..line.len() - text.len()]);
            escaped.push_str(HEREDOC_MARKER);
            escaped.push_str(text);
        } else {
            escaped.push_str(&line);
        }
    }
    escaped
}

/// [`escape_heredoc`] for a `<<-` here-document, which strips the leading tabs of every body
/// line before it expands anything: a line of the value that starts with a tab gets the empty
/// expansion `${-+}` in front, so its tabs are not at the line's start and stay.
pub fn escape_heredoc_tabs(value: &str) -> String {
    let escaped = escape_heredoc(value);
    let mut kept = String::with_capacity(escaped.len() + HEREDOC_MARKER.len());
    for (index, line) in escaped.split('\n').enumerate() {
        if index > 0 {
            kept.push('\n');
        }
        if line.starts_with('\t') {
            kept.push_str(HEREDOC_MARKER);
        }
        kept.push_str(line);
    }
    kept
}

/// Checks a value for the body of a quoted here-document, where nothing is expanded and so
/// nothing can be escaped: the value is returned unchanged, or refused when a line of the
/// output could equal `delimiter` (with leading tabs or without, covering `<<-`), which would
/// end the document early.
///
/// `before` and `after` are the literal template text known to come right before and after the
/// value. `before` starts with the line break that begins the value's line when the whole line
/// start is known, and `after` ends with one when the whole line end is known; otherwise other
/// template output sits beyond them and any text there is assumed.
pub fn escape_quoted_heredoc(
    value: &str,
    delimiter: &str,
    before: &str,
    after: &str,
) -> Result<String, QuotedHereDocError> {
    let (start, start_known) = match before.rsplit_once('\n') {
        Some((_, start)) => (start, true),
        None => (before, false),
    };
    let (end, end_known) = match after.split_once('\n') {
        Some((end, _)) => (end, true),
        None => (after, false),
    };
    let lines: Vec<&str> = value.split('\n').collect();
    let last = lines.len() - 1;
    for (index, line) in lines.iter().enumerate() {
        let (prefix, prefix_known) = if index == 0 {
            (start, start_known)
        } else {
            ("", true)
        };
        let (suffix, suffix_known) = if index == last {
            (end, end_known)
        } else {
            ("", true)
        };
        let full = format!("{prefix}{line}{suffix}");
        let could_end = [full.as_str(), full.trim_start_matches('\t')]
            .into_iter()
            .any(|text| match (prefix_known, suffix_known) {
                (true, true) => text == delimiter,
                (true, false) => delimiter.starts_with(text),
                (false, true) => delimiter.ends_with(text),
                (false, false) => delimiter.contains(text),
            });
        if could_end {
            return Err(QuotedHereDocError {
                delimiter: delimiter.to_string(),
            });
        }
    }
    Ok(value.to_string())
}

fn backslash_escape(value: &str, special: &[char]) -> String {
    let mut escaped = String::with_capacity(value.len() + 2);
    for ch in value.chars() {
        if special.contains(&ch) {
            escaped.push('\\');
        }
        escaped.push(ch);
    }
    escaped
}

/// A Jinja string literal holding `text`, with no raw line break (so the rewrite keeps the
/// template's line numbers).
fn jinja_string(text: &str) -> String {
    let mut literal = String::with_capacity(text.len() + 2);
    literal.push('"');
    for ch in text.chars() {
        match ch {
            '"' => literal.push_str("\\\""),
            '\\' => literal.push_str("\\\\"),
            '\n' => literal.push_str("\\n"),
            '\r' => literal.push_str("\\r"),
            '\t' => literal.push_str("\\t"),
            // Control characters are all below U+00A0, so four hex digits hold them.
            ch if ch.is_control() => literal.push_str(&format!("\\u{:04x}", ch as u32)),
            ch => literal.push(ch),
        }
    }
    literal.push('"');
    literal
}

/// True when the last top-level filter of a Jinja expression is `safe`.
fn ends_in_safe(expression: &str) -> bool {
    last_filter_is(expression, "safe")
}

/// True when the last top-level filter of a Jinja expression is `int` (a number, always).
fn ends_in_int(expression: &str) -> bool {
    last_filter_is(expression, "int")
}

/// Checks that a value is an integer (`-12`, `7`), which is all [`FILTER_NUMBER`] lets into an
/// arithmetic context.
pub fn check_integer(value: &str) -> Result<String, String> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    if !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()) {
        Ok(value.to_string())
    } else {
        Err("a value in a bash arithmetic context must be an integer".to_string())
    }
}

/// True when the last top-level filter of a Jinja expression is `name`, with or without
/// arguments.
fn last_filter_is(expression: &str, name: &str) -> bool {
    let bytes = expression.as_bytes();
    let mut depth = 0i32;
    let mut last_pipe = None;
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            quote @ (b'\'' | b'"') => {
                index = skip_jinja_string(bytes, index, quote).unwrap_or(bytes.len())
            }
            byte => {
                match byte {
                    b'(' | b'[' | b'{' => depth += 1,
                    b')' | b']' | b'}' => depth -= 1,
                    b'|' if depth == 0 => last_pipe = Some(index),
                    _ => {}
                }
                index += 1;
            }
        }
    }
    let Some(pipe) = last_pipe else { return false };
    let filter = expression[pipe + 1..].trim();
    filter == name
        || filter.strip_prefix(name).is_some_and(|rest| {
            let rest = rest.trim_start();
            if name == "safe" {
                rest == "()"
            } else {
                rest.starts_with('(') && rest.ends_with(')')
            }
        })
}

/// The index just past the Jinja string literal that opens at `start`, or `None` when it does
/// not end. Mirrors minijinja's lexer: a backslash escapes the next byte.
fn skip_jinja_string(bytes: &[u8], start: usize, quote: u8) -> Option<usize> {
    let mut index = start + 1;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' => index += 2,
            byte if byte == quote => return Some(index + 1),
            _ => index += 1,
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Splitting the template the way minijinja's lexer does.

/// A `{{ … }}` tag.
struct ExprTag {
    /// Offset of `{{`.
    start: usize,
    /// Offset just past `}}`.
    end: usize,
    /// The whitespace-control character after `{{` (`-` or `+`), if any.
    open_ws: Option<char>,
    /// The whitespace-control character before `}}`, if any.
    close_ws: Option<char>,
    /// The expression between them.
    inner: Range<usize>,
}

enum Piece {
    /// Literal text that reaches the output, after whitespace control.
    Text(Range<usize>),
    /// A `{% … %}` tag other than `raw`, at this offset.
    Block(usize),
    Expr(ExprTag),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Marker {
    Variable,
    Block,
    Comment,
}

fn split_template(source: &str) -> Result<Vec<Piece>, ShellScanError> {
    let bytes = source.as_bytes();
    let mut pieces = Vec::new();
    let mut position = 0;
    // Set by a closing `-}}`, `-%}` or `-#}`: the text that follows loses its leading whitespace.
    let mut trim_leading = false;
    loop {
        let mut text_start = position;
        if trim_leading {
            text_start = source.len() - source[text_start..].trim_start().len();
        }
        let Some((start, marker, open_ws)) = find_start_marker(bytes, text_start) else {
            push_text(&mut pieces, text_start..source.len());
            return Ok(pieces);
        };
        let text_end = if open_ws == Some('-') {
            text_start + source[text_start..start].trim_end().len()
        } else {
            start
        };
        push_text(&mut pieces, text_start..text_end);
        let body = start + 2 + usize::from(open_ws.is_some());
        match marker {
            Marker::Comment => {
                let unclosed = || ShellScanError {
                    offset: start,
                    message: "unclosed comment `{#`".to_string(),
                };
                let end = find(bytes, body, b"#}").ok_or_else(unclosed)?;
                // minijinja reads the byte before `#}` (or the first one of an empty comment).
                trim_leading = bytes[end.saturating_sub(1).max(body)] == b'-';
                position = end + 2;
            }
            Marker::Block => {
                if let Some((raw_end, raw_ws)) = basic_tag(source, body, "raw", false) {
                    let (content, end, close_ws) =
                        raw_block(source, raw_end, raw_ws).ok_or_else(|| ShellScanError {
                            offset: start,
                            message: "unclosed `{% raw %}`".to_string(),
                        })?;
                    push_text(&mut pieces, content);
                    trim_leading = close_ws == Some('-');
                    position = end;
                } else {
                    let (_, close_ws, end) =
                        tag_end(source, body, b"%}").map_err(|message| ShellScanError {
                            offset: start,
                            message: format!("{message} `{{%`"),
                        })?;
                    pieces.push(Piece::Block(start));
                    trim_leading = close_ws == Some('-');
                    position = end;
                }
            }
            Marker::Variable => {
                let (inner_end, close_ws, end) =
                    tag_end(source, body, b"}}").map_err(|message| ShellScanError {
                        offset: start,
                        message: format!("{message} `{{{{`"),
                    })?;
                pieces.push(Piece::Expr(ExprTag {
                    start,
                    end,
                    open_ws,
                    close_ws,
                    inner: body..inner_end,
                }));
                trim_leading = close_ws == Some('-');
                position = end;
            }
        }
    }
}

fn push_text(pieces: &mut Vec<Piece>, range: Range<usize>) {
    if !range.is_empty() {
        pieces.push(Piece::Text(range));
    }
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|index| from + index)
}

fn whitespace_control(byte: Option<&u8>) -> Option<char> {
    match byte {
        Some(b'-') => Some('-'),
        Some(b'+') => Some('+'),
        _ => None,
    }
}

fn find_start_marker(bytes: &[u8], from: usize) -> Option<(usize, Marker, Option<char>)> {
    let mut index = from;
    loop {
        index += bytes.get(index..)?.iter().position(|&byte| byte == b'{')?;
        let marker = match bytes.get(index + 1) {
            Some(b'{') => Marker::Variable,
            Some(b'%') => Marker::Block,
            Some(b'#') => Marker::Comment,
            _ => {
                index += 1;
                continue;
            }
        };
        return Some((index, marker, whitespace_control(bytes.get(index + 2))));
    }
}

/// Finds the end of a `{{ … }}` or `{% … %}` tag whose body starts at `from`, as minijinja does:
/// the end marker counts only outside strings and with brackets balanced. Returns where the body
/// ends, the whitespace-control character and the offset past the end marker.
fn tag_end(
    source: &str,
    from: usize,
    end_marker: &[u8],
) -> Result<(usize, Option<char>, usize), &'static str> {
    let bytes = source.as_bytes();
    let mut index = from;
    let mut balance = 0i64;
    loop {
        while bytes.get(index).is_some_and(u8::is_ascii_whitespace) {
            index += 1;
        }
        let Some(&byte) = bytes.get(index) else {
            return Err("unclosed");
        };
        if balance == 0 {
            if matches!(byte, b'-' | b'+') && bytes[index + 1..].starts_with(end_marker) {
                return Ok((index, Some(byte as char), index + 1 + end_marker.len()));
            }
            if bytes[index..].starts_with(end_marker) {
                return Ok((index, None, index + end_marker.len()));
            }
        }
        match byte {
            b'\'' | b'"' => {
                index = skip_jinja_string(bytes, index, byte).ok_or("unterminated string in")?
            }
            b'(' | b'[' | b'{' => {
                balance += 1;
                index += 1;
            }
            b')' | b']' | b'}' => {
                balance -= 1;
                index += 1;
            }
            _ => index += source[index..].chars().next().map_or(1, char::len_utf8),
        }
    }
}

/// minijinja's `skip_basic_tag`: matches `[-+]? name [-+]? %}` at `from` (after `{%`). Returns
/// the offset past `%}` and the whitespace control before it.
fn basic_tag(
    source: &str,
    from: usize,
    name: &str,
    allow_leading_ws: bool,
) -> Option<(usize, Option<char>)> {
    let mut rest = &source[from..];
    if allow_leading_ws {
        rest = rest.strip_prefix(['-', '+']).unwrap_or(rest);
    }
    rest = rest
        .trim_start_matches(|ch: char| ch.is_ascii_whitespace())
        .strip_prefix(name)?;
    rest = rest.trim_start_matches(|ch: char| ch.is_ascii_whitespace());
    let ws = whitespace_control(rest.as_bytes().first());
    if ws.is_some() {
        rest = &rest[1..];
    }
    rest = rest.strip_prefix("%}")?;
    Some((source.len() - rest.len(), ws))
}

/// The content of a raw block opened by a tag ending at `from`: its text range after whitespace
/// control, the offset past `{% endraw %}` and that tag's closing whitespace control.
fn raw_block(
    source: &str,
    from: usize,
    open_ws: Option<char>,
) -> Option<(Range<usize>, usize, Option<char>)> {
    let bytes = source.as_bytes();
    let mut search = from;
    loop {
        let block = find(bytes, search, b"{%")?;
        search = block + 2;
        let Some((end, close_ws)) = basic_tag(source, block + 2, "endraw", true) else {
            continue;
        };
        let (mut start, mut stop) = (from, block);
        if open_ws == Some('-') {
            start = stop - source[start..stop].trim_start().len();
        }
        if bytes.get(block + 2) == Some(&b'-') {
            stop = start + source[start..stop].trim_end().len();
        }
        return Some((start..stop, end, close_ws));
    }
}

// ---------------------------------------------------------------------------------------------
// The shell lexer.

/// One unit of the script's literal text as minijinja will output it.
#[derive(Clone, Copy)]
enum Item {
    Char {
        ch: char,
        offset: usize,
    },
    /// The `{{ … }}` with this index.
    Expr(usize),
    /// A `{% … %}` tag: renders nothing as far as this lexer knows.
    Block {
        offset: usize,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Peek {
    Char(char),
    Expr(usize),
    End,
}

struct HereDocSpec {
    delimiter: String,
    quoted: bool,
    /// `<<-`: leading tabs are stripped from the body lines and the delimiter line.
    strip_tabs: bool,
}

impl HereDocSpec {
    fn ends_at(&self, line: &str) -> bool {
        let line = if self.strip_tabs {
            line.trim_start_matches('\t')
        } else {
            line
        };
        line == self.delimiter
    }
}

/// Commands: the script itself, or the inside of `$(…)`.
struct Commands {
    substitution: bool,
    /// Open `(` of subshells, `<(…)` and the like, so that their `)` does not end `$(…)`.
    parens: u32,
    /// Open `case … esac`: a `)` there ends a pattern, not `$(…)`.
    cases: u32,
    /// The next character starts a word (so `#` starts a comment).
    word_start: bool,
    /// The next word is in command position (so `case` is a keyword).
    command_start: bool,
    /// Here-documents whose operator was read on this line; their bodies start after it.
    pending: Vec<HereDocSpec>,
    /// The finished words of the current simple command, for the arithmetic contexts that
    /// bash's builtins make (`let`, `declare -i`, `[[ … -eq … ]]`, array subscripts).
    words: Vec<Word>,
    /// The word being read.
    word: Word,
    /// Inside the `(…)` of an array assignment (`a=(…)`): whether its elements are integers.
    compound: Option<bool>,
    /// The next word is the target of a `>&` with no descriptor before it, which bash expands
    /// a second time when it is not a number.
    expands_twice: bool,
}

/// One shell word as far as the arithmetic contexts care: its literal text (quotes included)
/// and the interpolations in it, each with whether it sits inside a `[…]` subscript.
#[derive(Default, Clone)]
struct Word {
    text: String,
    exprs: Vec<(usize, bool)>,
}

impl Word {
    /// A file descriptor before a redirection: `2` in `2>&1`, `{fd}` in `{fd}>&-`.
    fn is_descriptor(&self) -> bool {
        self.exprs.is_empty()
            && (!self.text.is_empty() && self.text.bytes().all(|byte| byte.is_ascii_digit())
                || self.text.starts_with('{') && self.text.ends_with('}') && self.text.len() > 2)
    }
}

struct HereDoc {
    spec: HereDocSpec,
    /// The here-documents of the same line, whose bodies follow this one.
    queue: Vec<HereDocSpec>,
}

enum Frame {
    Commands(Commands),
    Double,
    Single,
    AnsiC,
    Backquote,
    Parameter { depth: u32 },
    Arithmetic { open: char, close: char, depth: u32 },
    Comment,
    HereDoc(HereDoc),
}

/// What the lexer decided for one `{{ … }}`.
struct Placement {
    context: ShellContext,
    /// For a quoted here-document: the delimiter and the text around the value.
    quoted_heredoc: Option<(String, String, String)>,
    /// A `| int` value in an arithmetic context: it goes through [`FILTER_NUMBER`].
    number: bool,
    /// In an unquoted `<<-` here-document: [`FILTER_HEREDOC_TABS`].
    strip_tabs: bool,
}

impl Placement {
    /// The filter part of the rewritten tag, after `(expr) | `.
    fn filter_call(&self) -> String {
        if self.number {
            return FILTER_NUMBER.to_string();
        }
        if self.strip_tabs && self.context == ShellContext::HereDoc {
            return FILTER_HEREDOC_TABS.to_string();
        }
        match (&self.quoted_heredoc, self.context) {
            (Some((delimiter, before, after)), _) => format!(
                "{FILTER_QUOTED_HEREDOC}({}, {}, {})",
                jinja_string(delimiter),
                jinja_string(before),
                jinja_string(after)
            ),
            // A line break would end the comment and run the rest of the value.
            (None, ShellContext::Comment) => format!("{FILTER_BARE} | replace(\"\\n\", \" \")"),
            (None, context) => context.filter().to_string(),
        }
    }
}

struct Scanner<'a> {
    source: &'a str,
    items: &'a [Item],
    tags: &'a [ExprTag],
    position: usize,
    stack: Vec<Frame>,
    /// Literal text since the last line break or template tag, for quoted here-documents.
    line_tail: String,
    /// No template tag came between the last line break and `line_tail`.
    line_complete: bool,
    placements: Vec<Placement>,
    /// Per interpolation: its expression ends in `| int`, so its value is a number.
    numbers: Vec<bool>,
    /// Names declared integer (`declare -i n`): an assignment to them is arithmetic.
    integers: HashSet<String>,
}

type Scan<T = ()> = Result<T, ShellScanError>;

impl<'a> Scanner<'a> {
    fn new(source: &'a str, items: &'a [Item], tags: &'a [ExprTag]) -> Self {
        Scanner {
            source,
            items,
            tags,
            position: 0,
            stack: vec![Frame::Commands(Commands::new(false))],
            line_tail: String::new(),
            line_complete: true,
            placements: Vec::with_capacity(tags.len()),
            numbers: tags
                .iter()
                .map(|tag| ends_in_int(source[tag.inner.clone()].trim()))
                .collect(),
            integers: HashSet::new(),
        }
    }

    fn run(mut self) -> Scan<Vec<Placement>> {
        while let Some(&item) = self.items.get(self.position) {
            match item {
                Item::Block { .. } => {
                    self.tag_on_line();
                    self.position += 1;
                }
                Item::Expr(index) => self.interpolation(index)?,
                Item::Char { ch: '\\', .. }
                    if self.joins_lines() && self.peek_raw(1) == Peek::Char('\n') =>
                {
                    // A line continuation: bash removes it before it reads any token, so it
                    // splits nothing and is no line break.
                    self.bump_raw();
                    self.bump_raw();
                }
                Item::Char { ch, .. } => self.step(ch)?,
            }
        }
        // The script's last words end here, in every command list still open.
        while let Some(frame) = self.stack.last() {
            if matches!(frame, Frame::Commands(_)) {
                self.end_word(true)?;
            }
            self.stack.pop();
        }
        Ok(self.placements)
    }

    // --- reading -----------------------------------------------------------------------------

    /// bash removes backslash-newlines here before it reads a token (everywhere but inside
    /// `'…'`, `$'…'`, comments and quoted here-document bodies).
    fn joins_lines(&self) -> bool {
        match self.stack.last() {
            Some(Frame::HereDoc(heredoc)) => !heredoc.spec.quoted,
            Some(Frame::Single | Frame::AnsiC | Frame::Comment) | None => false,
            Some(_) => true,
        }
    }

    /// The `ahead`-th character from here, skipping `{% %}` tags and, where the current frame
    /// joins lines, line continuations; an interpolation on the way is returned as such, since
    /// it ends whatever token was being read.
    fn peek(&self, ahead: usize) -> Peek {
        self.peek_at(ahead, self.joins_lines())
    }

    /// [`Self::peek`] without joining lines: for the character after an escaping backslash.
    fn peek_raw(&self, ahead: usize) -> Peek {
        self.peek_at(ahead, false)
    }

    fn peek_at(&self, ahead: usize, join: bool) -> Peek {
        let mut seen = 0;
        let mut index = self.position;
        while let Some(&item) = self.items.get(index) {
            match item {
                Item::Block { .. } => {}
                Item::Expr(tag) => return Peek::Expr(tag),
                Item::Char { ch: '\\', .. }
                    if join
                        && matches!(
                            self.items.get(index + 1),
                            Some(Item::Char { ch: '\n', .. })
                        ) =>
                {
                    index += 1;
                }
                Item::Char { ch, .. } if seen == ahead => return Peek::Char(ch),
                Item::Char { .. } => seen += 1,
            }
            index += 1;
        }
        Peek::End
    }

    /// Consumes the next character (and any `{% %}` tags and, where [`Self::peek`] skips them,
    /// line continuations before it).
    fn bump(&mut self) {
        self.bump_at(self.joins_lines());
    }

    fn bump_raw(&mut self) {
        self.bump_at(false);
    }

    fn bump_at(&mut self, join: bool) {
        while let Some(&item) = self.items.get(self.position) {
            match item {
                Item::Block { .. } => {
                    self.tag_on_line();
                    self.position += 1;
                }
                Item::Char { ch: '\\', .. }
                    if join
                        && matches!(
                            self.items.get(self.position + 1),
                            Some(Item::Char { ch: '\n', .. })
                        ) =>
                {
                    self.position += 2;
                }
                Item::Char { ch, .. } => {
                    if ch != '\n' {
                        self.line_tail.push(ch);
                    }
                    if let Some(word) = self.innermost_word() {
                        word.text.push(ch);
                    }
                    self.position += 1;
                    return;
                }
                Item::Expr(_) => return,
            }
        }
    }

    fn bump_n(&mut self, count: usize) {
        for _ in 0..count {
            self.bump();
        }
    }

    fn offset(&self) -> usize {
        self.items[self.position..]
            .iter()
            .map(|item| match *item {
                Item::Char { offset, .. } | Item::Block { offset } => offset,
                Item::Expr(index) => self.tags[index].start,
            })
            .next()
            .unwrap_or(self.source.len())
    }

    fn tag_on_line(&mut self) {
        self.line_tail.clear();
        self.line_complete = false;
    }

    fn refuse(&self, index: usize, why: &str) -> ShellScanError {
        let tag = &self.tags[index];
        let expression = self.source[tag.inner.clone()].trim();
        ShellScanError {
            offset: tag.start,
            message: format!("`{{{{ {expression} }}}}` {why}"),
        }
    }

    // --- frames ------------------------------------------------------------------------------

    fn commands(&mut self) -> Option<&mut Commands> {
        match self.stack.last_mut() {
            Some(Frame::Commands(commands)) => Some(commands),
            _ => None,
        }
    }

    /// The word being read in the innermost command list, unless a comment or here-document
    /// body (which are no words of it) is what is being read.
    fn innermost_word(&mut self) -> Option<&mut Word> {
        for frame in self.stack.iter_mut().rev() {
            match frame {
                Frame::Commands(commands) => return Some(&mut commands.word),
                Frame::Comment | Frame::HereDoc(_) => return None,
                _ => {}
            }
        }
        None
    }

    /// The current simple command is `[[ … ]]`, not yet closed: `(`, `)`, `&&`, `||`, `<`
    /// and `>` are its operators there, not the end of the command.
    fn in_conditional(&self) -> bool {
        let Some(Frame::Commands(commands)) = self.stack.last() else {
            return false;
        };
        command_index(&commands.words).is_some_and(|index| commands.words[index].text == "[[")
            && !commands.words.iter().any(|word| word.text == "]]")
    }

    /// Ends the word being read (at a blank or an operator) and, with `ends_command`, the
    /// simple command; refuses the interpolations the finished word puts where bash evaluates
    /// arithmetic.
    fn end_word(&mut self, ends_command: bool) -> Scan {
        let Some(Frame::Commands(commands)) = self.stack.last_mut() else {
            return Ok(());
        };
        let word = std::mem::take(&mut commands.word);
        let mut uses = Vec::new();
        if commands.expands_twice && (!word.text.is_empty() || !word.exprs.is_empty()) {
            commands.expands_twice = false;
            if let Some(&(expr, _)) = word.exprs.first() {
                if self.numbers[expr] {
                    self.placements[expr].number = true;
                } else {
                    return Err(self.refuse_twice_expanded(expr));
                }
            }
        }
        let Some(Frame::Commands(commands)) = self.stack.last_mut() else {
            return Ok(());
        };
        if let Some(integer) = commands.compound {
            for &(expr, subscript) in &word.exprs {
                if integer {
                    uses.push((
                        expr,
                        "is an element of an integer array (`declare -i`)".to_string(),
                    ));
                } else if subscript {
                    uses.push((expr, "is in an array subscript".to_string()));
                }
            }
        } else if !word.text.is_empty() || !word.exprs.is_empty() {
            commands.words.push(word);
            let (found, integer) = arithmetic_uses(&commands.words, &self.integers);
            uses = found;
            self.integers.extend(integer);
        }
        if ends_command && let Some(Frame::Commands(commands)) = self.stack.last_mut() {
            commands.words.clear();
            commands.compound = None;
        }
        for (expr, why) in uses {
            if self.numbers[expr] {
                self.placements[expr].number = true;
            } else {
                return Err(self.refuse_arithmetic(expr, &why));
            }
        }
        Ok(())
    }

    fn refuse_twice_expanded(&self, index: usize) -> ShellScanError {
        let expression = self.source[self.tags[index].inner.clone()].trim();
        self.refuse(
            index,
            &format!(
                "is the target of `>&`, which bash expands a second time when it is not a \
                 number, running any `$(…)` in the value, quoted or not; make it a number with \
                 `{{{{ {expression} | int }}}}`, or write `&>` (or `>` and `2>&1`) to redirect to a file"
            ),
        )
    }

    fn refuse_arithmetic(&self, index: usize, why: &str) -> ShellScanError {
        let expression = self.source[self.tags[index].inner.clone()].trim();
        self.refuse(
            index,
            &format!(
                "{why}, where bash evaluates the value as arithmetic and runs any `$(…)` in it, \
                 quoted or not; make it a number with `{{{{ {expression} | int }}}}`, or pass it \
                 in an environment variable and check that it is one"
            ),
        )
    }

    /// What was just read is part of the current word, which continues.
    fn in_word(&mut self) {
        if let Some(commands) = self.commands() {
            commands.word_start = false;
            commands.command_start = false;
        }
    }

    fn open(&mut self, frame: Frame) {
        self.in_word();
        self.stack.push(frame);
    }

    /// Ends a quote or substitution: the word it was part of goes on.
    fn close(&mut self) {
        self.stack.pop();
        self.in_word();
    }

    /// The frame under the top one is a command list (so `'` and `$'` quote there).
    fn parent_is_commands(&self) -> bool {
        matches!(self.stack.iter().rev().nth(1), Some(Frame::Commands(_)))
    }

    // --- stepping ----------------------------------------------------------------------------

    fn step(&mut self, ch: char) -> Scan {
        let Some(top) = self.stack.last() else {
            return Ok(());
        };
        match top {
            Frame::Commands(_) => self.step_commands(ch),
            Frame::Double => match ch {
                '"' => {
                    self.bump();
                    self.close();
                    Ok(())
                }
                _ => self.step_expanding(ch, false),
            },
            Frame::Single => {
                self.bump();
                match ch {
                    '\'' => self.close(),
                    '\n' => self.line_break()?,
                    _ => {}
                }
                Ok(())
            }
            Frame::AnsiC => match ch {
                '\'' => {
                    self.bump();
                    self.close();
                    Ok(())
                }
                '\\' => self.backslash(),
                _ => self.plain(ch),
            },
            Frame::Backquote => match ch {
                '`' => {
                    self.bump();
                    self.close();
                    Ok(())
                }
                '\\' => self.backslash(),
                _ => self.plain(ch),
            },
            &Frame::Parameter { depth } => match ch {
                '}' => {
                    self.bump();
                    if depth == 1 {
                        self.close();
                    } else if let Some(Frame::Parameter { depth }) = self.stack.last_mut() {
                        *depth -= 1;
                    }
                    Ok(())
                }
                '{' => {
                    self.bump();
                    if let Some(Frame::Parameter { depth }) = self.stack.last_mut() {
                        *depth += 1;
                    }
                    Ok(())
                }
                '\'' if self.parent_is_commands() => {
                    self.bump();
                    self.stack.push(Frame::Single);
                    Ok(())
                }
                _ => {
                    let ansi_c = self.parent_is_commands();
                    self.step_expanding(ch, ansi_c)
                }
            },
            &Frame::Arithmetic { open, close, depth } => {
                if ch == open || ch == close {
                    self.bump();
                    let depth = if ch == open { depth + 1 } else { depth - 1 };
                    if depth == 0 {
                        self.close();
                    } else if let Some(Frame::Arithmetic { depth: current, .. }) =
                        self.stack.last_mut()
                    {
                        *current = depth;
                    }
                    Ok(())
                } else if ch == '\'' {
                    self.bump();
                    self.stack.push(Frame::Single);
                    Ok(())
                } else {
                    self.step_expanding(ch, false)
                }
            }
            Frame::Comment => {
                if ch == '\n' {
                    // The line break is also the end of the command line: the frame below reads it.
                    self.stack.pop();
                } else {
                    self.bump();
                }
                Ok(())
            }
            Frame::HereDoc(heredoc) => {
                if heredoc.spec.quoted {
                    self.plain(ch)
                } else {
                    self.step_expanding(ch, false)
                }
            }
        }
    }

    /// A character with no meaning in the current frame.
    fn plain(&mut self, ch: char) -> Scan {
        self.bump();
        if ch == '\n' {
            self.line_break()
        } else {
            Ok(())
        }
    }

    /// Inside double quotes, here-documents, `${…}` and arithmetic: only `\`, `$`, `` ` `` and
    /// (for double quotes) `"` mean anything.
    fn step_expanding(&mut self, ch: char, ansi_c: bool) -> Scan {
        match ch {
            '\\' => self.backslash(),
            '$' => self.dollar(ansi_c),
            '`' => {
                self.bump();
                self.open(Frame::Backquote);
                Ok(())
            }
            '"' if !matches!(self.stack.last(), Some(Frame::HereDoc(_))) => {
                self.bump();
                self.open(Frame::Double);
                Ok(())
            }
            _ => self.plain(ch),
        }
    }

    fn step_commands(&mut self, ch: char) -> Scan {
        let Some(commands) = self.commands() else {
            return Ok(());
        };
        let word_start = commands.word_start;
        let command_start = commands.command_start;
        match ch {
            '\n' => {
                self.end_word(true)?;
                self.bump();
                self.clear_word();
                let mut pending = Vec::new();
                if let Some(commands) = self.commands() {
                    commands.word_start = true;
                    commands.command_start = true;
                    pending = std::mem::take(&mut commands.pending);
                }
                if !pending.is_empty() {
                    let spec = pending.remove(0);
                    self.stack.push(Frame::HereDoc(HereDoc {
                        spec,
                        queue: pending,
                    }));
                }
                self.line_break()
            }
            ' ' | '\t' => {
                self.end_word(false)?;
                self.bump();
                self.clear_word();
                self.set_commands(true, command_start);
                Ok(())
            }
            ';' | '&' | '|' => {
                self.end_word(ch == ';' || !self.in_conditional())?;
                self.bump();
                self.clear_word();
                self.set_commands(true, true);
                Ok(())
            }
            '(' if word_start && self.peek(1) == Peek::Char('(') => {
                self.bump_n(2);
                self.open(Frame::Arithmetic {
                    open: '(',
                    close: ')',
                    depth: 2,
                });
                Ok(())
            }
            '(' => {
                // `a=(…)`: an array assignment, whose elements are words of the same command.
                let array = self.commands().and_then(|commands| {
                    let text = &commands.word.text;
                    (commands.compound.is_none()
                        && text.ends_with('=')
                        && assignment_name(text).is_some())
                    .then(|| assignment_name(text).unwrap_or_default().to_string())
                });
                let conditional = self.in_conditional();
                self.end_word(array.is_none() && !conditional)?;
                if let Some(name) = array {
                    let integer = self.integers.contains(&name);
                    if let Some(commands) = self.commands() {
                        let declared = command_index(&commands.words).is_some_and(|index| {
                            DECLARE_COMMANDS
                                .contains(&unquoted(&commands.words[index].text).as_str())
                                && commands.words[index + 1..]
                                    .iter()
                                    .any(|word| is_integer_flag(&word.text))
                        });
                        commands.compound = Some(integer || declared);
                    }
                }
                self.bump();
                self.clear_word();
                if let Some(commands) = self.commands() {
                    commands.parens += 1;
                }
                self.set_commands(true, true);
                Ok(())
            }
            ')' => {
                let closes = self.commands().is_some_and(|commands| {
                    commands.parens == 0 && commands.substitution && commands.cases == 0
                });
                let compound = self
                    .commands()
                    .is_some_and(|commands| commands.compound.is_some());
                let conditional = self.in_conditional();
                self.end_word(closes || !(compound || conditional))?;
                self.bump();
                self.clear_word();
                if let Some(commands) = self.commands() {
                    if commands.parens > 0 {
                        commands.parens -= 1;
                        commands.compound = None;
                    } else if closes {
                        self.close();
                        return Ok(());
                    }
                }
                // Also the end of a `case` pattern: commands follow.
                self.set_commands(true, true);
                Ok(())
            }
            '<' if self.peek(1) == Peek::Char('<') => {
                self.end_word(false)?;
                if self.peek(2) == Peek::Char('<') {
                    self.bump_n(3);
                    self.clear_word();
                    self.set_commands(true, false);
                    Ok(())
                } else {
                    self.bump_n(2);
                    self.heredoc_operator()?;
                    self.clear_word();
                    Ok(())
                }
            }
            '<' | '>' => {
                // `>&word` with no descriptor before it: where the word is not a number, bash
                // takes it as `&>word` and expands it a second time, running any `$(…)` the
                // value holds, quoted or not (found by `fuzz/fuzz_targets/shell_rewriter.rs`).
                // `N>&`, `<&`, `&>` and `>` expand their word once.
                let expands_twice = ch == '>'
                    && self.peek(1) == Peek::Char('&')
                    && !self
                        .commands()
                        .is_some_and(|commands| commands.word.is_descriptor());
                self.end_word(false)?;
                self.bump();
                // `>&` and `<&` are one operator: the `&` does not end the command.
                if self.peek(0) == Peek::Char('&') {
                    self.bump();
                }
                self.clear_word();
                self.set_commands(true, false);
                if let Some(commands) = self.commands() {
                    commands.expands_twice = expands_twice;
                }
                Ok(())
            }
            '\'' => {
                self.bump();
                self.open(Frame::Single);
                Ok(())
            }
            '"' => {
                self.bump();
                self.open(Frame::Double);
                Ok(())
            }
            '`' => {
                self.bump();
                self.open(Frame::Backquote);
                Ok(())
            }
            '\\' => self.backslash(),
            '$' => self.dollar(true),
            '#' if word_start => {
                self.bump();
                self.stack.push(Frame::Comment);
                Ok(())
            }
            _ => {
                if !(word_start && command_start && self.keyword()) {
                    self.bump();
                    self.in_word();
                }
                Ok(())
            }
        }
    }

    /// Forgets the text read into the current word (a blank or an operator that ended the last).
    fn clear_word(&mut self) {
        if let Some(commands) = self.commands() {
            commands.word = Word::default();
        }
    }

    fn set_commands(&mut self, word_start: bool, command_start: bool) {
        if let Some(commands) = self.commands() {
            commands.word_start = word_start;
            commands.command_start = command_start;
        }
    }

    /// At the start of a word in command position: reads a reserved word that matters here.
    fn keyword(&mut self) -> bool {
        let mut word = String::new();
        while let Peek::Char(ch) = self.peek(word.len()) {
            let fits = ch.is_ascii_lowercase() || (word.is_empty() && matches!(ch, '!' | '{'));
            if !fits || word.starts_with(['!', '{']) {
                break;
            }
            word.push(ch);
        }
        let delimited = matches!(
            self.peek(word.len()),
            Peek::End | Peek::Char(' ' | '\t' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>')
        );
        if word.is_empty() || !delimited {
            return false;
        }
        let Some(commands) = self.commands() else {
            return false;
        };
        match word.as_str() {
            "case" => {
                commands.cases += 1;
                commands.command_start = false;
            }
            "esac" => {
                commands.cases = commands.cases.saturating_sub(1);
                commands.command_start = false;
            }
            "if" | "then" | "elif" | "else" | "while" | "until" | "do" | "time" | "!" | "{" => {
                commands.command_start = true;
            }
            _ => return false,
        }
        commands.word_start = false;
        self.bump_n(word.len());
        true
    }

    /// `\` and the character it escapes (a line continuation never gets here where lines are
    /// joined; inside `$'…'` a backslash-newline is a pair like any other).
    fn backslash(&mut self) -> Scan {
        match self.peek_raw(1) {
            Peek::Expr(index) => Err(self.refuse(
                index,
                "follows a `\\`, which would escape the first character of the escaped value; remove the backslash",
            )),
            Peek::End => {
                self.bump_raw();
                Ok(())
            }
            Peek::Char(_) => {
                self.bump_raw();
                self.bump_raw();
                self.in_word();
                Ok(())
            }
        }
    }

    /// `$` and what it opens. `ansi_c`: `$'…'` and `$"…"` are quotes here.
    fn dollar(&mut self, ansi_c: bool) -> Scan {
        match (self.peek(1), self.peek(2)) {
            (Peek::Expr(index), _) => Err(self.refuse(
                index,
                "follows a `$`, so the shell would expand what the value spells; remove the `$`",
            )),
            (Peek::Char('('), Peek::Char('(')) => {
                self.bump_n(3);
                self.open(Frame::Arithmetic {
                    open: '(',
                    close: ')',
                    depth: 2,
                });
                Ok(())
            }
            (Peek::Char('('), _) => {
                self.bump_n(2);
                self.open(Frame::Commands(Commands::new(true)));
                Ok(())
            }
            (Peek::Char('{'), _) => {
                self.bump_n(2);
                self.open(Frame::Parameter { depth: 1 });
                Ok(())
            }
            (Peek::Char('['), _) => {
                self.bump_n(2);
                self.open(Frame::Arithmetic {
                    open: '[',
                    close: ']',
                    depth: 1,
                });
                Ok(())
            }
            // A special parameter: `$$'…'` is the process id and a plain quote, not `$'…'`.
            (Peek::Char('$' | '?' | '!' | '#' | '-' | '@' | '*' | '0'..='9'), _) => {
                self.bump_n(2);
                self.in_word();
                Ok(())
            }
            (Peek::Char('\''), _) if ansi_c => {
                self.bump_n(2);
                self.open(Frame::AnsiC);
                Ok(())
            }
            (Peek::Char('"'), _) if ansi_c => {
                self.bump_n(2);
                self.open(Frame::Double);
                Ok(())
            }
            _ => {
                self.bump();
                self.in_word();
                Ok(())
            }
        }
    }

    /// After `<<` or `<<-`: reads the delimiter word and queues the here-document, whose body
    /// starts after the end of the command line.
    fn heredoc_operator(&mut self) -> Scan {
        let strip_tabs = self.peek(0) == Peek::Char('-');
        if strip_tabs {
            self.bump();
        }
        while matches!(self.peek(0), Peek::Char(' ' | '\t')) {
            self.bump();
        }
        let mut delimiter = String::new();
        let mut quoted = false;
        loop {
            match self.peek(0) {
                Peek::End
                | Peek::Char(' ' | '\t' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>') => break,
                Peek::Expr(index) => {
                    return Err(self.refuse(
                        index,
                        "is in a here-document's delimiter, which must be literal text",
                    ));
                }
                Peek::Char(quote @ ('\'' | '"')) => {
                    quoted = true;
                    self.bump();
                    self.quoted_delimiter(&mut delimiter, quote)?;
                }
                Peek::Char('$') if matches!(self.peek(1), Peek::Char('\'' | '"')) => {
                    quoted = true;
                    let Peek::Char(quote) = self.peek(1) else {
                        break;
                    };
                    self.bump_n(2);
                    self.quoted_delimiter(&mut delimiter, quote)?;
                }
                // (A backslash-newline was skipped by `peek`: it does not quote.)
                Peek::Char('\\') => {
                    quoted = true;
                    self.bump_raw();
                    match self.peek_raw(0) {
                        Peek::Char(ch) => {
                            self.bump_raw();
                            delimiter.push(ch);
                        }
                        Peek::Expr(index) => {
                            return Err(self.refuse(
                                index,
                                "is in a here-document's delimiter, which must be literal text",
                            ));
                        }
                        Peek::End => break,
                    }
                }
                Peek::Char(ch) => {
                    self.bump();
                    delimiter.push(ch);
                }
            }
        }
        self.set_commands(true, false);
        // `<<` with no word is a syntax error bash reports; there is no body to follow.
        if (quoted || !delimiter.is_empty())
            && let Some(commands) = self.commands()
        {
            commands.pending.push(HereDocSpec {
                delimiter,
                quoted,
                strip_tabs,
            });
        }
        Ok(())
    }

    /// The rest of a quoted part of a here-document delimiter, after its opening quote.
    fn quoted_delimiter(&mut self, delimiter: &mut String, quote: char) -> Scan {
        loop {
            match self.peek_raw(0) {
                Peek::End => return Ok(()),
                Peek::Expr(index) => {
                    return Err(self.refuse(
                        index,
                        "is in a here-document's delimiter, which must be literal text",
                    ));
                }
                Peek::Char(ch) if ch == quote => {
                    self.bump_raw();
                    return Ok(());
                }
                Peek::Char('\\') if quote == '"' => {
                    self.bump_raw();
                    match self.peek_raw(0) {
                        Peek::Char(ch @ ('$' | '`' | '"' | '\\')) => {
                            self.bump_raw();
                            delimiter.push(ch);
                        }
                        Peek::Char('\n') => self.bump_raw(),
                        _ => delimiter.push('\\'),
                    }
                }
                Peek::Char(ch) => {
                    self.bump_raw();
                    delimiter.push(ch);
                }
            }
        }
    }

    /// After a line break: the next line may end one of the open here-documents, and the next
    /// body (of `cat <<A <<B`) may end on the line after.
    fn line_break(&mut self) -> Scan {
        self.line_tail.clear();
        self.line_complete = true;
        loop {
            let Some(innermost) = self.stack.iter().rev().find_map(|frame| match frame {
                Frame::HereDoc(heredoc) => Some(heredoc),
                _ => None,
            }) else {
                return Ok(());
            };
            // An unquoted body is read with backslash-newlines joined, and the delimiter is
            // compared with the joined line.
            let joins = !innermost.spec.quoted;
            let line_offset = self.offset();
            let mut line = String::new();
            let mut tag_on_line = false;
            let mut index = self.position;
            let mut end = self.items.len();
            while let Some(&item) = self.items.get(index) {
                match item {
                    // A line with a value never ends a here-document: the filters see to that.
                    Item::Expr(_) => return Ok(()),
                    Item::Block { .. } => tag_on_line = true,
                    Item::Char { ch: '\n', .. } => {
                        end = index + 1;
                        break;
                    }
                    Item::Char { ch: '\\', .. } if joins => {
                        if let Some(&Item::Char { ch: next, .. }) = self.items.get(index + 1) {
                            if next != '\n' {
                                line.push('\\');
                                line.push(next);
                            }
                            index += 1;
                        } else {
                            line.push('\\');
                        }
                    }
                    Item::Char { ch, .. } => line.push(ch),
                }
                index += 1;
            }
            // The outermost one wins: bash cuts its body out before it parses anything inside.
            let Some(ended) = self.stack.iter().position(
                |frame| matches!(frame, Frame::HereDoc(heredoc) if heredoc.spec.ends_at(&line)),
            ) else {
                return Ok(());
            };
            if tag_on_line {
                return Err(ShellScanError {
                    offset: line_offset,
                    message: format!(
                        "the line that ends the here-document `{line}` also holds a `{{% … %}}` tag; keep the delimiter line plain"
                    ),
                });
            }
            self.position = end;
            self.stack.truncate(ended + 1);
            if let Some(Frame::HereDoc(mut heredoc)) = self.stack.pop()
                && !heredoc.queue.is_empty()
            {
                // The next here-document of the same command line starts on the next line.
                let spec = heredoc.queue.remove(0);
                self.stack.push(Frame::HereDoc(HereDoc {
                    spec,
                    queue: heredoc.queue,
                }));
            }
            self.line_tail.clear();
            self.line_complete = true;
        }
    }

    fn interpolation(&mut self, index: usize) -> Scan {
        let below_top = &self.stack[..self.stack.len().saturating_sub(1)];
        if below_top
            .iter()
            .any(|frame| matches!(frame, Frame::HereDoc(_)))
        {
            // bash cuts a here-document's body into lines before it parses a `$(…)` in it, so a
            // line break in the value could end the document even inside quotes there.
            return Err(self.refuse(
                index,
                "is inside a command substitution within a here-document, where a line of the value could end the document; set a variable before the here-document and use that",
            ));
        }
        let mut number = false;
        for frame in &self.stack {
            let why = match frame {
                Frame::Backquote => {
                    "is inside backquotes, whose backslash processing would undo the escaping; use `$(…)` instead"
                }
                Frame::Arithmetic { .. } if self.numbers[index] => {
                    number = true;
                    continue;
                }
                Frame::Arithmetic { .. } => {
                    return Err(self.refuse_arithmetic(
                        index,
                        "is inside an arithmetic expression (`$((…))`, `((…))`, `$[…]`)",
                    ));
                }
                Frame::Parameter { .. } => {
                    "is inside a `${…}` parameter expansion, where quoting depends on the operator; assign the value to a variable first"
                }
                _ => continue,
            };
            return Err(self.refuse(index, why));
        }
        let placement = match self.stack.last() {
            Some(Frame::Double) => Placement {
                context: ShellContext::DoubleQuoted,
                quoted_heredoc: None,
                number: false,
                strip_tabs: false,
            },
            Some(Frame::Single) => Placement {
                context: ShellContext::SingleQuoted,
                quoted_heredoc: None,
                number: false,
                strip_tabs: false,
            },
            Some(Frame::AnsiC) => Placement {
                context: ShellContext::AnsiCQuoted,
                quoted_heredoc: None,
                number: false,
                strip_tabs: false,
            },
            Some(Frame::Comment) => Placement {
                context: ShellContext::Comment,
                quoted_heredoc: None,
                number: false,
                strip_tabs: false,
            },
            Some(Frame::HereDoc(heredoc)) if heredoc.spec.quoted => {
                let before = if self.line_complete {
                    format!("\n{}", self.line_tail)
                } else {
                    self.line_tail.clone()
                };
                Placement {
                    context: ShellContext::QuotedHereDoc,
                    quoted_heredoc: Some((
                        heredoc.spec.delimiter.clone(),
                        before,
                        self.text_after(),
                    )),
                    number: false,
                    strip_tabs: false,
                }
            }
            Some(Frame::HereDoc(heredoc)) => Placement {
                context: ShellContext::HereDoc,
                quoted_heredoc: None,
                number: false,
                strip_tabs: heredoc.spec.strip_tabs,
            },
            _ => Placement {
                context: ShellContext::Bare,
                quoted_heredoc: None,
                number: false,
                strip_tabs: false,
            },
        };
        self.placements.push(Placement {
            number,
            ..placement
        });
        // The value is part of the word of every command list it is inside (`$(echo {{ x }})`
        // is the output's word too).
        for frame in self.stack.iter_mut().rev() {
            match frame {
                Frame::Commands(commands) => {
                    let subscript = in_subscript(&commands.word.text);
                    commands.word.exprs.push((index, subscript));
                }
                Frame::Comment | Frame::HereDoc(_) => break,
                _ => {}
            }
        }
        self.position += 1;
        self.tag_on_line();
        self.in_word();
        Ok(())
    }

    /// The literal text after the interpolation at `position`, up to and including the line
    /// break when no other tag comes first (the end of the script counts as one).
    fn text_after(&self) -> String {
        let mut after = String::new();
        for item in &self.items[self.position + 1..] {
            match *item {
                Item::Char { ch, .. } => {
                    after.push(ch);
                    if ch == '\n' {
                        return after;
                    }
                }
                Item::Expr(_) | Item::Block { .. } => return after,
            }
        }
        after.push('\n');
        after
    }
}

impl Commands {
    fn new(substitution: bool) -> Self {
        Commands {
            substitution,
            parens: 0,
            cases: 0,
            word_start: true,
            command_start: true,
            pending: Vec::new(),
            words: Vec::new(),
            word: Word::default(),
            compound: None,
            expands_twice: false,
        }
    }
}

/// Words that come before a command's name without being it.
const PREFIX_WORDS: &[&str] = &[
    "if", "then", "elif", "else", "while", "until", "do", "time", "!", "{", "command", "builtin",
];

/// `[[ … ]]`'s arithmetic comparisons: bash evaluates both operands as arithmetic.
const ARITHMETIC_OPERATORS: &[&str] = &["-eq", "-ne", "-lt", "-le", "-gt", "-ge"];

/// Builtins whose `name[…]` arguments have their subscript evaluated as arithmetic.
const SUBSCRIPT_COMMANDS: &[&str] = &[
    "unset",
    "read",
    "printf",
    "mapfile",
    "readarray",
    "getopts",
    "wait",
];

/// Builtins that declare variables (`-i` makes them integers).
const DECLARE_COMMANDS: &[&str] = &["declare", "typeset", "local", "readonly", "export"];

/// A word's text with its quotes and backslashes removed, as bash compares a command's name.
fn unquoted(text: &str) -> String {
    text.chars()
        .filter(|ch| !matches!(ch, '"' | '\'' | '\\'))
        .collect()
}

/// The variable name a word starts with, after any opening quote.
fn leading_name(text: &str) -> Option<&str> {
    let rest = text.trim_start_matches(['"', '\'']);
    let length = rest
        .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
        .unwrap_or(rest.len());
    let name = &rest[..length];
    (!name.is_empty() && !name.starts_with(|ch: char| ch.is_ascii_digit())).then_some(name)
}

/// The variable an assignment word (`n=…`, `a[…]=…`, `n+=…`) assigns, if it is one.
fn assignment_name(text: &str) -> Option<&str> {
    if text.starts_with(['"', '\'']) {
        return None;
    }
    let name = leading_name(text)?;
    let mut rest = &text[name.len()..];
    if let Some(subscript) = rest.strip_prefix('[') {
        rest = &subscript[subscript.find(']')? + 1..];
    }
    let rest = rest.strip_prefix('+').unwrap_or(rest);
    rest.starts_with('=').then_some(name)
}

/// True when the text read so far of a word leaves it inside a `[…]` subscript: `a[` or, as an
/// element of an array assignment, `[`.
fn in_subscript(text: &str) -> bool {
    let rest = text.trim_start_matches(['"', '\'']);
    let name = leading_name(rest).map_or(0, str::len);
    let Some(after) = rest[name..].strip_prefix('[') else {
        return false;
    };
    let mut depth = 1;
    for ch in after.chars() {
        match ch {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    true
}

/// `-i`, `-ri`, `-ai`: an option word of `declare` that makes integers.
fn is_integer_flag(text: &str) -> bool {
    text.strip_prefix('-').is_some_and(|flags| {
        flags.contains('i') && flags.chars().all(|ch| ch.is_ascii_alphabetic())
    })
}

/// Where the command's name is among the words of a simple command.
fn command_index(words: &[Word]) -> Option<usize> {
    words.iter().position(|word| {
        !PREFIX_WORDS.contains(&unquoted(&word.text).as_str())
            && assignment_name(&word.text).is_none()
    })
}

/// The interpolations of the last of `words` (or the one before it) that land where bash
/// evaluates arithmetic, each with where that is; and the names the word declares integer.
fn arithmetic_uses(
    words: &[Word],
    integers: &HashSet<String>,
) -> (Vec<(usize, String)>, Vec<String>) {
    let mut uses = Vec::new();
    let mut declared = Vec::new();
    let Some(last) = words.len().checked_sub(1) else {
        return (uses, declared);
    };
    let word = &words[last];
    let all = |uses: &mut Vec<(usize, String)>, word: &Word, why: String| {
        uses.extend(word.exprs.iter().map(|&(expr, _)| (expr, why.clone())));
    };
    let subscripts = |uses: &mut Vec<(usize, String)>| {
        uses.extend(
            word.exprs
                .iter()
                .filter(|(_, subscript)| *subscript)
                .map(|&(expr, _)| (expr, "is in an array subscript".to_string())),
        );
    };
    match command_index(words) {
        None => {
            if let Some(name) = assignment_name(&word.text) {
                for &(expr, subscript) in &word.exprs {
                    if subscript {
                        uses.push((expr, format!("is in the array subscript of `{name}[…]=`")));
                    } else if integers.contains(name) {
                        uses.push((
                            expr,
                            format!("is assigned to `{name}`, an integer variable (`declare -i`)"),
                        ));
                    }
                }
            }
        }
        Some(index) if index == last => {}
        Some(index) => {
            let command = unquoted(&words[index].text);
            let previous = (last > index + 1).then(|| unquoted(&words[last - 1].text));
            match command.as_str() {
                "let" => all(&mut uses, word, "is an argument of `let`".to_string()),
                name if DECLARE_COMMANDS.contains(&name) => {
                    let integer = words[index + 1..last]
                        .iter()
                        .any(|word| is_integer_flag(&word.text));
                    if integer && !word.text.starts_with('-') {
                        all(&mut uses, word, format!("is in an argument of `{name} -i`"));
                        declared.extend(leading_name(&word.text).map(str::to_string));
                    } else {
                        subscripts(&mut uses);
                    }
                }
                name if SUBSCRIPT_COMMANDS.contains(&name) => subscripts(&mut uses),
                "[[" => {
                    let operator = unquoted(&word.text);
                    if ARITHMETIC_OPERATORS.contains(&operator.as_str()) && previous.is_some() {
                        all(
                            &mut uses,
                            &words[last - 1],
                            format!("is an operand of `{operator}` in `[[ … ]]`"),
                        );
                    }
                    match previous.as_deref() {
                        Some(operator) if ARITHMETIC_OPERATORS.contains(&operator) => all(
                            &mut uses,
                            word,
                            format!("is an operand of `{operator}` in `[[ … ]]`"),
                        ),
                        Some("-v") => all(
                            &mut uses,
                            word,
                            "is the operand of `-v` in `[[ … ]]`".to_string(),
                        ),
                        _ => {}
                    }
                }
                "test" | "[" if previous.as_deref() == Some("-v") => all(
                    &mut uses,
                    word,
                    format!("is the operand of `-v` in `{command}`"),
                ),
                _ => {}
            }
        }
    }
    (uses, declared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::syntax::SyntaxConfig;
    use minijinja::{Environment, Error, ErrorKind, Value};
    use std::path::PathBuf;
    use std::process::Command;

    use ShellContext::{
        AnsiCQuoted, Bare, Comment, DoubleQuoted, HereDoc, QuotedHereDoc, SingleQuoted,
    };

    fn text_of(value: &Value) -> String {
        match value.as_str() {
            Some(text) => text.to_string(),
            None => value.to_string(),
        }
    }

    /// The environment as vane's template module registers the filters.
    fn environment() -> Environment<'static> {
        let mut env = Environment::new();
        env.set_syntax(
            SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .unwrap(),
        );
        env.add_filter(FILTER_BARE, |value: Value| quote_bare(&text_of(&value)));
        env.add_filter(FILTER_DOUBLE, |value: Value| {
            escape_double(&text_of(&value))
        });
        env.add_filter(FILTER_SINGLE, |value: Value| {
            escape_single(&text_of(&value))
        });
        env.add_filter(FILTER_ANSI_C, |value: Value| {
            escape_ansi_c(&text_of(&value))
        });
        env.add_filter(FILTER_HEREDOC, |value: Value| {
            escape_heredoc(&text_of(&value))
        });
        env.add_filter(
            FILTER_QUOTED_HEREDOC,
            |value: Value, delimiter: String, before: String, after: String| {
                escape_quoted_heredoc(&text_of(&value), &delimiter, &before, &after)
                    .map_err(|error| Error::new(ErrorKind::InvalidOperation, error.to_string()))
            },
        );
        env.add_filter(FILTER_HEREDOC_TABS, |value: Value| {
            escape_heredoc_tabs(&text_of(&value))
        });
        env.add_filter(FILTER_NUMBER, |value: Value| {
            check_integer(&text_of(&value))
                .map_err(|error| Error::new(ErrorKind::InvalidOperation, error))
        });
        env
    }

    #[test]
    fn arithmetic_contexts_refuse_values_that_are_not_numbers() {
        let refused = [
            ("[[ 1 -eq {{ x }} ]]", "an operand of `-eq` in `[[ … ]]`"),
            ("[[ {{ x }} -lt 5 ]]", "an operand of `-lt` in `[[ … ]]`"),
            ("if [[ \"{{ x }}\" -ne 2 && 1 -gt 0 ]]; then :; fi", "`-ne`"),
            ("[[ ( {{ x }} -le 1 ) ]]", "`-le`"),
            ("[[ $(echo {{ x }}) -ge 1 ]]", "`-ge`"),
            ("[[ -v {{ x }} ]]", "the operand of `-v` in `[[ … ]]`"),
            ("test -v '{{ x }}'", "the operand of `-v` in `test`"),
            ("(( {{ x }} > 1 ))", "inside an arithmetic expression"),
            ("echo $(( '{{ x }}' ))", "inside an arithmetic expression"),
            ("let n={{ x }}", "an argument of `let`"),
            ("command let \"n = {{ x }}\"", "an argument of `let`"),
            ("declare -i n={{ x }}", "an argument of `declare -i`"),
            (
                "f() { local -ri n=\"{{ x }}\"; }",
                "an argument of `local -i`",
            ),
            (
                "typeset -i n\nn+={{ x }}",
                "assigned to `n`, an integer variable",
            ),
            ("a[{{ x }}]=1", "the array subscript of `a[…]=`"),
            (
                "FOO=1 a[\"{{ x }}\"]+=1 true",
                "the array subscript of `a[…]=`",
            ),
            ("b=( [{{ x }}]=1 )", "an array subscript"),
            (
                "declare -ai c=( 1 {{ x }} )",
                "an element of an integer array",
            ),
            ("unset 'a[{{ x }}]'", "an array subscript"),
            ("printf -v \"a[{{ x }}]\" %s y", "an array subscript"),
            ("read -r 'a[{{ x }}]' <<< y", "an array subscript"),
        ];
        for (script, context) in refused {
            let error = escape_script(script).expect_err(script);
            assert!(
                error.message.contains(context),
                "{script}: {}",
                error.message
            );
            assert!(
                error
                    .message
                    .contains("make it a number with `{{ x | int }}`"),
                "{}",
                error.message
            );
            assert_eq!(error.offset, script.find("{{").unwrap(), "{script}");
        }
        // Not arithmetic: plain words, string comparisons, values after a subscript.
        for script in [
            "echo {{ x }} -eq 1",
            "[[ {{ x }} == y ]]",
            "[ {{ x }} -eq 1 ]",
            "a[0]={{ x }}",
            "declare n={{ x }}",
            "echo a[{{ x }}]",
            "n={{ x }}; declare -i m",
            "# let {{ x }}",
        ] {
            assert!(escape_script(script).is_ok(), "{script}");
        }
        // `| int` makes the value a number: it lands verbatim, and only ever as an integer.
        let escaped = escape_script("echo $(( {{ x | int }} + 1 ))").unwrap();
        assert_eq!(
            escaped.source,
            "echo $(( {{ (x | int) | sh_number }} + 1 ))"
        );
        let escaped = escape_script("[[ {{ x|int }} -eq 1 ]] && let n='{{ x | int(0) }}'").unwrap();
        assert_eq!(
            escaped.source,
            "[[ {{ (x|int) | sh_number }} -eq 1 ]] && let n='{{ (x | int(0)) | sh_number }}'"
        );
        assert_eq!(check_integer("-12").as_deref(), Ok("-12"));
        for bad in ["", "-", "1.5", "a[$(id)]", "1 "] {
            assert!(check_integer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_target_of_a_bare_duplication_is_refused_unless_a_number() {
        // bash expands the word of `>&word` (no descriptor before it) a second time when it is
        // not a number: the fuzzer's find was `fi2>&1{{ x }}`.
        for script in [
            "echo hi >&{{ x }}",
            "echo hi >& '{{ x }}'",
            "fi2>&1{{ x }}",
            "echo>&\"{{ x }}\"",
        ] {
            let error = escape_script(script).expect_err(script);
            assert!(
                error.message.contains(
                    "is the target of `>&`, which bash expands a second time when it is not a number"
                ),
                "{script}: {}",
                error.message
            );
            assert!(
                error.message.contains("`{{ x | int }}`"),
                "{}",
                error.message
            );
            assert_eq!(error.offset, script.find("{{").unwrap(), "{script}");
        }
        // A descriptor before `>&`, `<&`, `&>` and `>` expand their word once; a value after the
        // target is an ordinary word.
        for script in [
            "echo hi 2>&{{ x }}",
            "exec {fd}>&{{ x }}",
            "cat <&{{ x }}",
            "echo hi &>{{ x }}",
            "echo hi >{{ x }}",
            "echo hi >&2 {{ x }}",
            "echo {{ x }} >&2",
        ] {
            assert!(escape_script(script).is_ok(), "{script}");
        }
        let escaped = escape_script("echo hi >&{{ x | int }}").unwrap();
        assert_eq!(escaped.source, "echo hi >&{{ (x | int) | sh_number }}");
    }

    fn render(template: &str, value: &str) -> Result<String, Error> {
        let env = environment();
        let escaped = escape_script(template).expect("the test scripts are valid");
        env.render_str(
            &escaped.source,
            minijinja::context! { t => value, u => value, v => value },
        )
    }

    fn contexts(source: &str) -> Vec<ShellContext> {
        escape_script(source)
            .unwrap()
            .interpolations
            .iter()
            .map(|interpolation| interpolation.context)
            .collect()
    }

    #[test]
    fn rewrites_each_interpolation_for_its_context() {
        let cases: &[(&str, &str, &[ShellContext])] = &[
            ("echo {{ t }}", "echo {{ (t) | sh_bare }}", &[Bare]),
            (
                r#"echo "Title: {{ t }}!""#,
                r#"echo "Title: {{ (t) | sh_double }}!""#,
                &[DoubleQuoted],
            ),
            (
                "echo '{{ t }}'",
                "echo '{{ (t) | sh_single }}'",
                &[SingleQuoted],
            ),
            (
                "echo $'{{ t }}'",
                "echo $'{{ (t) | sh_ansi_c }}'",
                &[AnsiCQuoted],
            ),
            (
                r#"echo $"{{ t }}""#,
                r#"echo $"{{ (t) | sh_double }}""#,
                &[DoubleQuoted],
            ),
            (
                r#"echo "$(printf %s {{ t }})""#,
                r#"echo "$(printf %s {{ (t) | sh_bare }})""#,
                &[Bare],
            ),
            (
                "cat <<EOF\n{{ t }}\nEOF\necho {{ u }}",
                "cat <<EOF\n{{ (t) | sh_heredoc }}\nEOF\necho {{ (u) | sh_bare }}",
                &[HereDoc, Bare],
            ),
            (
                "cat <<'EOF'\n- {{ t }}\nEOF",
                "cat <<'EOF'\n- {{ (t) | sh_quoted_heredoc(\"EOF\", \"\\n- \", \"\\n\") }}\nEOF",
                &[QuotedHereDoc],
            ),
            (
                "cat <<'EOF'\n{{ t }} and {{ u }}\nEOF",
                "cat <<'EOF'\n{{ (t) | sh_quoted_heredoc(\"EOF\", \"\\n\", \" and \") }} and \
                 {{ (u) | sh_quoted_heredoc(\"EOF\", \" and \", \"\\n\") }}\nEOF",
                &[QuotedHereDoc, QuotedHereDoc],
            ),
            (
                "echo hi # {{ t }}\necho {{ u }}",
                "echo hi # {{ (t) | sh_bare | replace(\"\\n\", \" \") }}\necho {{ (u) | sh_bare }}",
                &[Comment, Bare],
            ),
            ("echo {{- t -}}", "echo {{- (t) | sh_bare -}}", &[Bare]),
            ("echo {{+ t +}}", "echo {{+ (t) | sh_bare +}}", &[Bare]),
            (
                r#"echo {{ "}}" }}"#,
                r#"echo {{ ("}}") | sh_bare }}"#,
                &[Bare],
            ),
            (
                "echo {{ {'a': {'b': 1}} }}",
                "echo {{ ({'a': {'b': 1}}) | sh_bare }}",
                &[Bare],
            ),
            ("echo {{ t | safe }}", "echo {{ t | safe }}", &[Bare]),
            (
                "{% if a %}echo \"{{ t }}\"{% endif %}",
                "{% if a %}echo \"{{ (t) | sh_double }}\"{% endif %}",
                &[DoubleQuoted],
            ),
            (
                "{% set x = \"}}'\" %}echo {{ t }}",
                "{% set x = \"}}'\" %}echo {{ (t) | sh_bare }}",
                &[Bare],
            ),
            (
                "{# it's \" #}echo {{ t }}",
                "{# it's \" #}echo {{ (t) | sh_bare }}",
                &[Bare],
            ),
            (
                "{% raw %}echo \"{{ x }}{% endraw %}{{ t }}\"",
                "{% raw %}echo \"{{ x }}{% endraw %}{{ (t) | sh_double }}\"",
                &[DoubleQuoted],
            ),
        ];
        for (source, expected, expected_contexts) in cases {
            let escaped =
                escape_script(source).unwrap_or_else(|error| panic!("{source:?}: {error}"));
            assert_eq!(escaped.source, *expected, "{source:?}");
            let found: Vec<ShellContext> =
                escaped.interpolations.iter().map(|i| i.context).collect();
            assert_eq!(found, *expected_contexts, "{source:?}");
        }
    }

    #[test]
    fn tracks_the_quoting_state() {
        let cases: &[(&str, &[ShellContext])] = &[
            (r#"echo "a \" {{ t }}""#, &[DoubleQuoted]),
            (r"echo 'it'\''s {{ t }}'", &[SingleQuoted]),
            (r#"echo \"{{ t }}"#, &[Bare]),
            (r"echo \'{{ t }}", &[Bare]),
            ("echo $'a\\'{{ t }}'", &[AnsiCQuoted]),
            ("echo a#{{ t }}", &[Bare]),
            ("echo $#{{ t }}", &[Bare]),
            ("echo $$'{{ t }}'", &[SingleQuoted]),
            ("echo $${{ t }}", &[Bare]),
            ("echo \\$'{{ t }}'", &[SingleQuoted]),
            ("echo {{ t }}#{{ u }}", &[Bare, Bare]),
            ("echo 'a'#{{ t }}", &[Bare]),
            ("echo x;# {{ t }}", &[Comment]),
            ("# it's\necho \"{{ t }}\"", &[DoubleQuoted]),
            ("echo \"{{ t }}\" # it's {{ u }}", &[DoubleQuoted, Comment]),
            ("echo \"# {{ t }}\"", &[DoubleQuoted]),
            ("echo \"x\" \\\n  \"{{ t }}\"", &[DoubleQuoted]),
            ("echo \"$\\\n(echo {{ t }})\"", &[Bare]),
            ("echo \"a\\\\\n{{ t }}\"", &[DoubleQuoted]),
            ("echo a\\\\\n# {{ t }}", &[Comment]),
            ("echo $'a\\\n{{ t }}'", &[AnsiCQuoted]),
            (
                "ca\\\nse x in\n\"$(case y in a) echo {{ t }};; esac)\"",
                &[Bare],
            ),
            ("echo \"${x}\" {{ t }}", &[Bare]),
            ("echo \"${x:-\"a\"}\" {{ t }}", &[Bare]),
            ("echo $(( 1 + (2) )) \"{{ t }}\"", &[DoubleQuoted]),
            ("(( i++ )); echo {{ t }}", &[Bare]),
            ("echo $[1+2] \"{{ t }}\"", &[DoubleQuoted]),
            ("echo \"`date`\" {{ t }}", &[Bare]),
            ("echo \"$(echo \")\") {{ t }}\"", &[DoubleQuoted]),
            ("echo \"$(echo \")\" {{ t }}\"", &[Bare]),
            ("echo \"$(echo ')' {{ t }})\"", &[Bare]),
            ("echo \"$( (echo a) ; echo {{ t }})\"", &[Bare]),
            (
                "echo \"$(case $x in a) echo {{ t }};; esac) {{ u }}\"",
                &[Bare, DoubleQuoted],
            ),
            (
                "echo \"$(case $x in (a) echo {{ t }};; esac) {{ u }}\"",
                &[Bare, DoubleQuoted],
            ),
            ("echo \"$(echo case) {{ t }}\"", &[DoubleQuoted]),
            ("echo \"$(echo a # ) {{ t }}\n)\" {{ u }}", &[Comment, Bare]),
            (
                "diff <(echo {{ t }}) <(echo \"{{ u }}\")",
                &[Bare, DoubleQuoted],
            ),
            ("f() { echo \"{{ t }}\"; }", &[DoubleQuoted]),
            ("cat <<<{{ t }}", &[Bare]),
            ("x={{ t }} y=\"{{ u }}\"", &[Bare, DoubleQuoted]),
            ("echo '{{ t }}", &[SingleQuoted]),
        ];
        for (source, expected) in cases {
            let found = escape_script(source).unwrap_or_else(|error| panic!("{source:?}: {error}"));
            let found: Vec<ShellContext> = found.interpolations.iter().map(|i| i.context).collect();
            assert_eq!(found, *expected, "{source:?}");
        }
    }

    #[test]
    fn follows_here_documents() {
        let cases: &[(&str, &[ShellContext])] = &[
            (
                "cat <<EOF\n\"{{ t }}\" '{{ u }}'\nEOF\necho \"{{ v }}\"",
                &[HereDoc, HereDoc, DoubleQuoted],
            ),
            (
                "cat <<-EOF\n\t{{ t }}\n\tEOF\necho {{ u }}",
                &[HereDoc, Bare],
            ),
            ("cat <<EOF\n\tEOF\n{{ t }}\nEOF\n{{ u }}", &[HereDoc, Bare]),
            (
                "cat << \"END\"\n{{ t }}\nEND\n{{ u }}",
                &[QuotedHereDoc, Bare],
            ),
            ("cat <<\\EOF\n$(x) {{ t }}\nEOF", &[QuotedHereDoc]),
            ("cat <<E\"O\"F\n{{ t }}\nEOF", &[QuotedHereDoc]),
            ("cat <<EOF\n$(echo x) \"{{ u }}\"\nEOF", &[HereDoc]),
            ("cat <<EOF\n${x} {{ t }}\nEOF", &[HereDoc]),
            (
                "cat <<A <<'B'\n{{ t }}\nA\n{{ u }}\nB\necho {{ v }}",
                &[HereDoc, QuotedHereDoc, Bare],
            ),
            (
                "cat <<EOF; echo \"{{ t }}\nx\"\n{{ u }}\nEOF",
                &[DoubleQuoted, HereDoc],
            ),
            (
                "cat <<EOF # note {{ t }}\n{{ u }}\nEOF",
                &[Comment, HereDoc],
            ),
            (
                "x=$(cat <<EOF\n{{ t }}\nEOF\n)\necho \"$x {{ u }}\"",
                &[HereDoc, DoubleQuoted],
            ),
            (
                "echo \"$(cat <<'EOF'\n{{ t }}\nEOF\n)\" {{ u }}",
                &[QuotedHereDoc, Bare],
            ),
            ("cat <<EOF\nEOF{{ t }}\nEOF\n{{ u }}", &[HereDoc, Bare]),
            ("cat <<EOF\nE\\\nOF\n{{ t }}", &[Bare]),
            ("cat <<'EOF'\nE\\\nOF\n{{ t }}\nEOF", &[QuotedHereDoc]),
            (
                "cat <<EOF\n{%- if a %}\n{{ t }}\n{%- endif %}\nEOF\n{{ u }}",
                &[HereDoc, Bare],
            ),
            ("cat <<EOF\n{{ t }}", &[HereDoc]),
            ("echo $((1 << 2)) {{ t }}", &[Bare]),
            ("cat <<E\\\nOF\n{{ t }}\nEOF", &[HereDoc]),
            ("cat <\\\n<EOF\n{{ t }}\nEOF\n{{ u }}", &[HereDoc, Bare]),
            (
                "cat <<'E\\\nOF'\n{{ t }}\nEOF\n{{ u }}",
                &[QuotedHereDoc, QuotedHereDoc],
            ),
            ("cat <<EOF\nEOF\necho {{ t }}", &[Bare]),
        ];
        for (source, expected) in cases {
            assert_eq!(contexts(source), *expected, "{source:?}");
        }
        let escaped = escape_script("cat <<-'X Y'\n\tA {{ t }}").unwrap();
        assert!(
            escaped
                .source
                .contains(r#"sh_quoted_heredoc("X Y", "\n\tA ", "\n")"#),
            "{}",
            escaped.source
        );
    }

    #[test]
    fn reports_interpolations() {
        let escaped = escape_script("echo {{ event.title | safe }} \"{{- x.y|upper }}\"").unwrap();
        assert_eq!(
            escaped.interpolations,
            vec![
                Interpolation {
                    offset: 5,
                    expression: "event.title | safe".to_string(),
                    context: Bare,
                    opted_out: true
                },
                Interpolation {
                    offset: 31,
                    expression: "x.y|upper".to_string(),
                    context: DoubleQuoted,
                    opted_out: false
                },
            ]
        );
        for (expression, opted_out) in [
            ("x|safe", true),
            ("x | safe()", true),
            ("x | safe | upper", false),
            ("(x | safe)", false),
            ("x | join('|safe')", false),
            ("x | safe if y else z", false),
            ("safe", false),
        ] {
            assert_eq!(ends_in_safe(expression), opted_out, "{expression}");
        }
    }

    #[test]
    fn refuses_what_cannot_be_escaped() {
        let cases: &[(&str, usize, &str)] = &[
            ("echo {{ t", 5, "unclosed `{{`"),
            ("echo {{ \"}} }}", 5, "unterminated string in `{{`"),
            ("echo {% if x", 5, "unclosed `{%`"),
            ("echo {# x", 5, "unclosed comment"),
            ("{% raw %}{{ t }}", 0, "unclosed `{% raw %}`"),
            ("echo {{ }}", 5, "empty interpolation"),
            ("echo \\{{ t }}", 6, "follows a `\\`"),
            ("echo \"\\{{ t }}\"", 7, "follows a `\\`"),
            ("cat <<EOF\n\\{{ t }}\nEOF", 11, "follows a `\\`"),
            ("echo \\{% if a %}{{ t }}{% endif %}", 16, "follows a `\\`"),
            ("echo ${{ t }}", 6, "follows a `$`"),
            ("echo \"${{ t }}\"", 7, "follows a `$`"),
            ("echo `echo {{ t }}`", 11, "inside backquotes"),
            ("echo \"`echo {{ t }}`\"", 12, "inside backquotes"),
            ("echo $(( {{ n }} + 1 ))", 9, "arithmetic"),
            ("(( {{ n }} > 1 ))", 3, "arithmetic"),
            ("echo $[ {{ n }} ]", 8, "arithmetic"),
            ("echo $(( $(echo {{ n }}) ))", 16, "arithmetic"),
            ("echo \"${x:-{{ t }}}\"", 11, "parameter expansion"),
            ("echo ${x:-\"{{ t }}\"}", 11, "parameter expansion"),
            ("cat <<{{ t }}\nx", 6, "delimiter"),
            ("cat <<'{{ t }}'\nx", 7, "delimiter"),
            (
                "cat <<EOF\n{% if a %}EOF{% endif %}\n",
                10,
                "also holds a `{% … %}` tag",
            ),
            ("echo `{{ t | safe }}`", 6, "inside backquotes"),
            (
                "cat <<EOF\n$(echo {{ t }})\nEOF",
                17,
                "within a here-document",
            ),
            (
                "cat <<EOF\n\"$(echo \"{{ t }}\")\"\nEOF",
                19,
                "within a here-document",
            ),
            (
                "cat <<A\n$(cat <<'B'\n{{ t }}\nB\n)\nA",
                20,
                "within a here-document",
            ),
        ];
        for (source, offset, needle) in cases {
            let error = escape_script(source).expect_err(source);
            assert_eq!(error.offset, *offset, "{source:?}: {error}");
            assert!(error.message.contains(needle), "{source:?}: {error}");
        }
        let error = escape_script("echo ${{ t }}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "`{{ t }}` follows a `$`, so the shell would expand what the value spells; remove the `$` (at byte 6)"
        );
    }

    #[test]
    fn escape_functions() {
        type Escape = fn(&str) -> String;
        let cases: &[(Escape, &str, &str)] = &[
            (quote_bare, "", "''"),
            (quote_bare, "it's", r"'it'\''s'"),
            (quote_bare, "a\nb", "'a\nb'"),
            (escape_double, r#"\ " $ ` ! '"#, r#"\\ \" \$ \` ! '"#),
            (escape_single, "''", r"'\'''\''"),
            (escape_ansi_c, r"\n'", r"\\n\'"),
            (escape_heredoc, "", "${-+}"),
            (escape_heredoc, "EOF", "${-+}EOF"),
            (escape_heredoc, "\tEOF", "\t${-+}EOF"),
            (escape_heredoc, "a b\n$HOME \"x\"", "a b\n\\$HOME \"x\""),
            (escape_heredoc, "one two\n", "one two\n${-+}"),
            (escape_heredoc, "`x` \\", "\\`x\\` \\\\"),
        ];
        for (escape, value, expected) in cases {
            assert_eq!(escape(value), *expected, "{value:?}");
        }
    }

    #[test]
    fn quoted_heredoc_values_that_could_end_the_document_are_refused() {
        let whole_line = ("\n", "\n");
        let cases: &[(&str, (&str, &str), bool)] = &[
            ("EOF", whole_line, false),
            ("\tEOF", whole_line, false),
            ("a\nEOF\nb", whole_line, false),
            ("text\n", whole_line, true),
            ("para\n\npara", whole_line, true),
            ("EOF ", whole_line, true),
            ("OF", ("\nE", "\n"), false),
            ("E", ("\n", "OF\n"), false),
            ("x\nE", ("\n", "OF\n"), false),
            ("", ("\nEOF", "\n"), false),
            ("x", ("\nEOF", "\n"), true),
            // Another value may sit before or after: anything could be there.
            ("F", ("", "\n"), false),
            ("O", ("", "\n"), true),
            ("E", ("", "\n"), true),
            ("", (" ", "\n"), true),
            ("a", ("\n", " b"), true),
            ("E", ("\n", ""), false),
        ];
        for (value, (before, after), accepted) in cases {
            let result = escape_quoted_heredoc(value, "EOF", before, after);
            assert_eq!(
                result.is_ok(),
                *accepted,
                "{value:?} between {before:?} and {after:?}"
            );
            if let Ok(text) = result {
                assert_eq!(text, *value);
            }
        }
        let error = escape_quoted_heredoc("EOF", "EOF", "\n", "\n").unwrap_err();
        assert_eq!(error.delimiter, "EOF");
    }

    /// With every filter the identity, the rewritten template renders exactly what the original
    /// does: the splitter agrees with minijinja on where tags and whitespace control are.
    #[test]
    fn rewriting_changes_nothing_but_the_filters() {
        let mut env = Environment::new();
        env.set_syntax(
            SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .unwrap(),
        );
        for name in [
            FILTER_BARE,
            FILTER_DOUBLE,
            FILTER_SINGLE,
            FILTER_ANSI_C,
            FILTER_HEREDOC,
        ] {
            env.add_filter(name, |value: Value| value);
        }
        env.add_filter(
            FILTER_QUOTED_HEREDOC,
            |value: Value, _: String, _: String, _: String| value,
        );
        let sources = [
            "echo {{ t }}  \n  {{- t }}  {{ t -}}  \n x",
            "a {%- if true -%}  b  {%- endif %}\n c {#- comment -#}\n d",
            "{% raw -%}\n  {{ not }} \n  {%- endraw %} e {{ t }}",
            "{%- raw %} {{ x }} {% endraw -%}   {{ t }}",
            "{% for i in [1, 2] %}\"{{ i }}\" {% endfor %}{# {{ } #}",
            "{{ '}}' ~ \"{%\" ~ t }} {{+ t +}} {#-#} x",
            "cat <<'EOF'\n{{ t }} {{ t }}\nEOF\n",
            "{% set d = {'k': {'v': t}} %}{{ d['k']['v'] }}\n",
            "x {#- a -#} y {{- '\\'' -}} z",
        ];
        for source in sources {
            let context = minijinja::context! { t => "T" };
            let original = env.render_str(source, &context).unwrap();
            let escaped = escape_script(source).unwrap();
            let rewritten = env.render_str(&escaped.source, &context).unwrap();
            assert_eq!(rewritten, original, "{source:?} → {:?}", escaped.source);
            assert_eq!(
                escaped.source.lines().count(),
                source.lines().count(),
                "{source:?}"
            );
        }
    }

    struct Pwned(PathBuf);

    impl Pwned {
        fn new(case: &str) -> Pwned {
            let path = std::env::temp_dir()
                .join(format!("vane-shell-pwned-{}-{case}", std::process::id()));
            let _ = std::fs::remove_file(&path);
            Pwned(path)
        }

        fn assert_absent(&self, what: &str) {
            assert!(!self.0.exists(), "{what}: the value ran a command");
        }
    }

    impl Drop for Pwned {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn hostile_values(path: &str) -> Vec<String> {
        vec![
            format!("x'; touch {path}; echo '"),
            format!("$(touch {path})"),
            format!("`touch {path}`"),
            format!("\"; touch {path}; echo \""),
            format!("a\ntouch {path}"),
            "\"".to_string(),
            "\\".to_string(),
            "a\nb".to_string(),
            "'".to_string(),
            "''".to_string(),
            "$HOME".to_string(),
            "!!".to_string(),
            "héllo ✓".to_string(),
            String::new(),
            "EOF".to_string(),
            "\tEOF".to_string(),
            "a\nEOF\ntouch x".to_string(),
            "\\$x \\`y\\` \\\\".to_string(),
            "${-+}".to_string(),
        ]
    }

    /// Runs a script as vane does: `bash -eo pipefail -c`, or `sh -ec` where bash is missing.
    fn run(shell: &str, script: &str) -> (bool, String, String) {
        let flags: &[&str] = if shell == "bash" {
            &["-eo", "pipefail", "-c"]
        } else {
            &["-ec"]
        };
        let output = Command::new(shell)
            .args(flags)
            .arg(script)
            .output()
            .expect("the shell runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn shell_exists(shell: &str) -> bool {
        Command::new(shell)
            .args(["-c", "true"])
            .output()
            .is_ok_and(|output| output.status.success())
    }

    /// Each hostile value, through each script, run by a real bash (and by `sh`, vane's fallback,
    /// for the POSIX ones): printed verbatim, never run.
    #[test]
    fn values_are_printed_verbatim_and_never_run() {
        // (name, template, expected output for the value, POSIX)
        type Expect = fn(&str) -> String;
        let scripts: &[(&str, &str, Expect, bool)] = &[
            ("bare", "echo {{ t }}", |v| format!("{v}\n"), true),
            (
                "double",
                "echo \"Title: {{ t }}!\"",
                |v| format!("Title: {v}!\n"),
                true,
            ),
            ("single", "echo '{{ t }}'", |v| format!("{v}\n"), true),
            (
                "substitution",
                "echo \"$(printf %s {{ t }})\"",
                |v| format!("{v}\n"),
                true,
            ),
            (
                "heredoc",
                "cat <<EOF\n{{ t }}\nEOF",
                |v| format!("{v}\n"),
                true,
            ),
            (
                "heredoc-dash",
                "cat <<-EOF\n\tgot: {{ t }}\n\tEOF",
                |v| format!("got: {v}\n"),
                true,
            ),
            (
                "heredoc-two",
                "cat <<EOF\n{{ t }}{{ u }}\nEOF",
                |v| format!("{v}{v}\n"),
                true,
            ),
            (
                "ansi-c",
                "printf '%s\\n' $'{{ t }}'",
                |v| format!("{v}\n"),
                false,
            ),
            (
                "comment",
                "echo one # {{ t }}\necho two",
                |_| "one\ntwo\n".to_string(),
                true,
            ),
            (
                "heredoc-in-substitution",
                "x=\"$(cat <<EOF\n<{{ t }}>\nEOF\n)\"\nprintf '%s\\n' \"$x\"",
                |v| format!("<{v}>\n"),
                true,
            ),
        ];
        let has_sh = shell_exists("sh");
        for (name, template, expected, posix) in scripts {
            let pwned = Pwned::new(name);
            let path = pwned.0.display().to_string();
            for value in hostile_values(&path) {
                let script = render(template, &value)
                    .unwrap_or_else(|error| panic!("{name} {value:?}: {error}"));
                let what = format!("{name} with {value:?}, script {script:?}");
                let (ok, stdout, stderr) = run("bash", &script);
                assert!(ok, "{what}: {stderr}");
                assert_eq!(stdout, expected(&value), "{what}");
                pwned.assert_absent(&what);
                if *posix && has_sh {
                    // dash's `echo` reads backslash escapes; `printf %s` prints verbatim everywhere.
                    let template = template.replace("echo ", "printf '%s\\n' ");
                    let script = render(&template, &value)
                        .unwrap_or_else(|error| panic!("{name} {value:?}: {error}"));
                    let what = format!("{name} with {value:?}, script {script:?}");
                    let (ok, stdout, stderr) = run("sh", &script);
                    assert!(ok, "sh: {what}: {stderr}");
                    assert_eq!(stdout, expected(&value), "sh: {what}");
                    pwned.assert_absent(&what);
                }
            }
        }
    }

    #[test]
    fn quoted_heredocs_print_verbatim_or_refuse() {
        let pwned = Pwned::new("quoted");
        let path = pwned.0.display().to_string();
        let template = "cat <<'EOF'\n{{ t }}\nEOF";
        for value in hostile_values(&path) {
            let could_end = value
                .split('\n')
                .any(|line| line.trim_start_matches('\t') == "EOF");
            match render(template, &value) {
                Ok(script) => {
                    assert!(!could_end, "{value:?} should have been refused");
                    let (ok, stdout, stderr) = run("bash", &script);
                    assert!(ok, "{value:?}: {stderr}");
                    assert_eq!(stdout, format!("{value}\n"), "{value:?}");
                }
                Err(error) => {
                    assert!(could_end, "{value:?} refused: {error}");
                    assert!(
                        format!("{error:#}").contains("here-document `EOF`"),
                        "{error:#}"
                    );
                }
            }
            pwned.assert_absent(&value);
        }
    }

    #[test]
    fn the_explicit_opt_out_is_left_alone() {
        let script = render("echo {{ t | safe }}", "$((6 * 7))").unwrap();
        assert_eq!(script, "echo $((6 * 7))");
        assert_eq!(run("bash", &script).1, "42\n");
    }

    /// Scripts stitched at random from shell fragments: whatever the lexer accepts, no hostile
    /// value may run a command, whether the script is valid bash or not.
    #[test]
    fn random_scripts_never_run_a_value() {
        const FRAGMENTS: &[&str] = &[
            "echo ",
            " ",
            "\"",
            "'",
            "$(",
            ")",
            "(",
            "#",
            "\n",
            "\\",
            ";",
            "`",
            "$'",
            "${x}",
            "$((1))",
            "cat <<EOF\n",
            "EOF\n",
            "cat <<'Q'\n",
            "Q\n",
            "cat <<-EOF\n",
            "\tEOF\n",
            "case x in x) ",
            ";; esac",
            "{{ t }}",
            "{{ t }}",
            "{{ t }}",
            "{{ t }}",
            "{% if true %}",
            "{% endif %}",
            "a",
            "$x",
            "<<<",
            "|",
            "${x:-",
            "}",
            "$[",
            "]",
            "((",
            "))",
            "<(",
            "$\"",
            "{{- t -}}",
            "\t",
            "<<",
            "EOF",
            "Q",
            "case ",
            " in ",
            "esac",
            "{% raw %}",
            "{% endraw %}",
            "{# ' #}",
            "<<\"EOF\"\n",
            "$",
            "\\\n",
            "E\\\nOF\n",
            "x=",
        ];
        let pwned = Pwned::new("random");
        let path = pwned.0.display().to_string();
        let values = [
            format!("'\"`touch {path}`$(touch {path})\\'"),
            format!("\ntouch {path}\nEOF\ntouch {path}\nQ\ntouch {path}\n\tEOF\ntouch {path}\n"),
            format!("';touch {path};'\";touch {path};\")\ntouch {path}\n(#"),
            format!("\\\"'$'\\x27'\\\n;touch {path} #"),
        ];
        let env = environment();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            // xorshift64: deterministic, so a failure reproduces.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut accepted = 0;
        for _ in 0..400 {
            let length = 2 + (next() % 10) as usize;
            let template: String = (0..length)
                .map(|_| FRAGMENTS[(next() % FRAGMENTS.len() as u64) as usize])
                .collect();
            let Ok(escaped) = escape_script(&template) else {
                continue;
            };
            if escaped.interpolations.is_empty() {
                continue;
            }
            accepted += 1;
            for value in &values {
                let Ok(script) =
                    env.render_str(&escaped.source, minijinja::context! { t => value })
                else {
                    continue;
                };
                let status = Command::new("timeout")
                    .args(["5", "bash", "-eo", "pipefail", "-c", &script])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .expect("bash runs");
                assert_ne!(status.code(), Some(124), "timed out: {template:?}");
                pwned.assert_absent(&format!("template {template:?} rendered as {script:?}"));
            }
        }
        assert!(accepted > 100, "only {accepted} scripts were accepted");
    }
}
