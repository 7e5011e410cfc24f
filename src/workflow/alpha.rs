//! An alpha index over `if` conditions (issue 15): a condition that starts with
//! `event.FIELD == "literal" and …` (EDA's rule shape, the only way to match custom events) is
//! false for every event whose envelope FIELD is not that literal, so such a workflow is a
//! candidate only for events that have it, found by one hash lookup per indexed field instead of
//! evaluating every workflow's expression for every event.
//!
//! Why ruling a workflow out this way changes no verdict: Jinja's `and` evaluates its right side
//! only when its left side is true, so when the first conjunct is false the whole condition is
//! false and nothing after it runs (it cannot break). The index takes only the *first* conjunct,
//! and only when nothing at the top level of the expression (`or`, `if … else`) could make the
//! result anything but that conjunction. Envelope fields are plain strings or none (`none ==
//! "x"` is false, not an error), and an equal field leaves the workflow a candidate, evaluated in
//! full. Whatever is not recognised exactly is not indexed: it is evaluated as before.

/// An envelope field a condition may be indexed on: strings (or none) on the event itself, never
/// the payload (`data`), nor `id` (a content id costs a hash of the payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Source,
    Type,
    Action,
    Subject,
    Time,
    Repo,
    Ref,
    Branch,
    Tag,
    Sha,
    Actor,
    Parent,
}

impl Field {
    fn from_name(name: &str) -> Option<Field> {
        Some(match name {
            "source" => Field::Source,
            "type" => Field::Type,
            "action" => Field::Action,
            "subject" => Field::Subject,
            "time" => Field::Time,
            "repo" => Field::Repo,
            "ref" => Field::Ref,
            "branch" => Field::Branch,
            "tag" => Field::Tag,
            "sha" => Field::Sha,
            "actor" => Field::Actor,
            "parent" => Field::Parent,
            _ => return None,
        })
    }

    /// The event's value of the field, as `event.FIELD` reads it (none where `None`).
    pub fn of(self, event: &crate::event::Event) -> Option<&str> {
        match self {
            Field::Source => Some(&event.source),
            Field::Type => Some(&event.kind),
            Field::Action => event.action.as_deref(),
            Field::Subject => event.subject.as_deref(),
            Field::Time => Some(&event.time),
            Field::Repo => event.repo.as_deref(),
            Field::Ref => event.git_ref.as_deref(),
            Field::Branch => event.branch.as_deref(),
            Field::Tag => event.tag.as_deref(),
            Field::Sha => event.sha.as_deref(),
            Field::Actor => event.actor.as_deref(),
            Field::Parent => event.parent.as_deref(),
        }
    }
}

/// The test a condition can be indexed on: `event.FIELD == "literal"` as its first conjunct.
pub fn key(condition: &str) -> Option<(Field, String)> {
    let tokens = tokens(condition)?;
    let [
        Token::Word("event"),
        Token::Dot,
        Token::Word(name),
        Token::Eq,
        Token::Str(literal),
        rest @ ..,
    ] = tokens.as_slice()
    else {
        return None;
    };
    let field = Field::from_name(name)?;
    // After the test: the end, or `and` and an operand that holds no top-level `or` / `if`
    // (which bind looser than `and` and would take the test out of a plain conjunction).
    match rest {
        [] => {}
        [Token::Word("and"), more @ ..] if !more.is_empty() => {
            let mut depth = 0usize;
            for token in more {
                match token {
                    Token::Open => depth += 1,
                    Token::Close => depth = depth.checked_sub(1)?,
                    Token::Word("or" | "if" | "else") if depth == 0 => return None,
                    _ => {}
                }
            }
            if depth != 0 {
                return None;
            }
        }
        _ => return None,
    }
    Some((field, literal.to_string()))
}

#[derive(Debug, PartialEq)]
enum Token<'a> {
    Word(&'a str),
    Str(&'a str),
    Dot,
    Eq,
    Open,
    Close,
    Other,
}

/// Just enough of Jinja's expression tokens to recognise the shape; `None` for anything it is
/// not sure of (a string with escapes or not closed, characters outside plain ASCII syntax).
fn tokens(text: &str) -> Option<Vec<Token<'_>>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' => at += 1,
            b'"' | b'\'' => {
                let end = at + 1 + text[at + 1..].find(byte as char)?;
                let inner = &text[at + 1..end];
                if inner.contains('\\') {
                    return None;
                }
                out.push(Token::Str(inner));
                at = end + 1;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let start = at;
                while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
                    at += 1;
                }
                out.push(Token::Word(&text[start..at]));
            }
            b'.' => {
                out.push(Token::Dot);
                at += 1;
            }
            b'=' if bytes.get(at + 1) == Some(&b'=') => {
                out.push(Token::Eq);
                at += 2;
            }
            b'(' | b'[' | b'{' => {
                out.push(Token::Open);
                at += 1;
            }
            b')' | b']' | b'}' => {
                out.push(Token::Close);
                at += 1;
            }
            _ if byte.is_ascii() => {
                out.push(Token::Other);
                at += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eda_rule_shape_is_indexed_on_its_first_test() {
        assert_eq!(
            key(r#"event.repo == "acme/repo-7" and event.ref == "refs/heads/main""#),
            Some((Field::Repo, "acme/repo-7".to_string()))
        );
        assert_eq!(
            key("event.type == 'metric.cpu'"),
            Some((Field::Type, "metric.cpu".to_string()))
        );
        assert_eq!(
            key("event.actor == 'x' and (event.repo == 'a' or event.repo == 'b')"),
            Some((Field::Actor, "x".to_string()))
        );
    }

    #[test]
    fn anything_that_is_not_a_plain_conjunction_is_left_to_evaluation() {
        for condition in [
            // `or` / `if` at the top level bind looser than `and`.
            r#"event.repo == "a" and event.ref == "b" or event.actor == "c""#,
            r#"event.repo == "a" or event.actor == "c""#,
            r#"event.repo == "a" and true if event.x else false"#,
            // Not the first conjunct, not a literal, not an envelope field, not `==`.
            r#"event.ref == event.repo"#,
            r#"now > "2000" and event.repo == "a""#,
            r#"event.data.repo == "a""#,
            r#"event.id == "a""#,
            r#"event.repo != "a""#,
            r#"event.repo == "a" | upper"#,
            r#"event.repo == "a" == true"#,
            r#"event.repo == "a" and"#,
            r#"event.repo == "a\"b""#,
            r#"event.repo == "unclosed"#,
            r#"event.repo == "a" and (b"#,
            r#"event.repo == "a" and b)"#,
        ] {
            assert_eq!(key(condition), None, "{condition}");
        }
    }

    #[test]
    fn an_or_inside_brackets_keeps_the_conjunction() {
        assert!(key(r#"event.repo == "a" and (x or y) and [1, 2] | length > 1"#).is_some());
        assert!(key(r#"event.repo == "a" and x in ("or", "if")"#).is_some());
    }
}
