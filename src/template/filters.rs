//! The filters vane adds to minijinja's built-ins (SPEC §3), and the shell-context filters that
//! `run` scripts are rewritten to use.

use super::shell;
use base64::Engine;
use minijinja::{Environment, Error, ErrorKind, State, Value};
use sha2::{Digest, Sha256};
use std::cmp::Ordering;

pub fn register(env: &mut Environment<'static>) {
    // Shell filters see every interpolation of a `run` script: an undefined value must fail
    // there as it would anywhere else (strict), not become an empty, quoted string.
    env.add_filter("sh", |value: Value| {
        strict(&value).map(|text| shell::quote_bare(&text))
    });
    env.add_filter(shell::FILTER_BARE, |value: Value| {
        strict(&value).map(|text| shell::quote_bare(&text))
    });
    env.add_filter(shell::FILTER_DOUBLE, |value: Value| {
        strict(&value).map(|text| shell::escape_double(&text))
    });
    env.add_filter(shell::FILTER_SINGLE, |value: Value| {
        strict(&value).map(|text| shell::escape_single(&text))
    });
    env.add_filter(shell::FILTER_ANSI_C, |value: Value| {
        strict(&value).map(|text| shell::escape_ansi_c(&text))
    });
    env.add_filter(shell::FILTER_HEREDOC_TABS, |value: Value| {
        strict(&value).map(|text| shell::escape_heredoc_tabs(&text))
    });
    env.add_filter(shell::FILTER_HEREDOC, |value: Value| {
        strict(&value).map(|text| shell::escape_heredoc(&text))
    });
    env.add_filter(
        shell::FILTER_NUMBER,
        |value: Value| -> Result<String, Error> {
            shell::check_integer(&strict(&value)?).map_err(invalid)
        },
    );
    env.add_filter(
        shell::FILTER_QUOTED_HEREDOC,
        |value: Value, delimiter: String, before: String, after: String| -> Result<String, Error> {
            shell::escape_quoted_heredoc(&strict(&value)?, &delimiter, &before, &after)
                .map_err(|error| invalid(error.to_string()))
        },
    );
    env.add_filter("toyaml", toyaml);
    env.add_filter("fromjson", fromjson);
    env.add_filter("b64encode", |value: Value| {
        base64::engine::general_purpose::STANDARD.encode(text_of(&value))
    });
    env.add_filter("b64decode", b64decode);
    env.add_filter("sha256", |value: Value| {
        hex::encode(Sha256::digest(text_of(&value).as_bytes()))
    });
    env.add_filter("regex_match", regex_match);
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("glob_match", glob_match);
    env.add_filter("basename", |value: Value| {
        let text = text_of(&value);
        text.trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    });
    env.add_filter("dirname", |value: Value| {
        let text = text_of(&value);
        match text.trim_end_matches('/').rfind('/') {
            Some(0) => "/".to_string(),
            Some(index) => text[..index].to_string(),
            None => String::new(),
        }
    });
    env.add_filter("semver_compare", semver_compare);
}

/// A value as the text a template would print for it.
fn text_of(value: &Value) -> String {
    match value.as_str() {
        Some(text) => text.to_string(),
        None => value.to_string(),
    }
}

/// A value's text, refusing an undefined one.
fn strict(value: &Value) -> Result<String, Error> {
    if value.is_undefined() {
        return Err(Error::new(ErrorKind::UndefinedError, "undefined value"));
    }
    Ok(text_of(value))
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

fn toyaml(value: Value) -> Result<String, Error> {
    crate::yaml::to_string(&value).map_err(|error| invalid(format!("toyaml: {error}")))
}

fn fromjson(value: Value) -> Result<Value, Error> {
    let parsed: serde_json::Value = serde_json::from_str(&text_of(&value))
        .map_err(|error| invalid(format!("fromjson: {error}")))?;
    Ok(crate::template::to_value(&parsed))
}

fn b64decode(value: Value) -> Result<String, Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text_of(&value).trim())
        .map_err(|error| invalid(format!("b64decode: {error}")))?;
    String::from_utf8(bytes)
        .map_err(|_| invalid("b64decode: the decoded bytes are not UTF-8".to_string()))
}

fn compile_regex(pattern: &str) -> Result<regex::Regex, Error> {
    regex::Regex::new(pattern)
        .map_err(|error| invalid(format!("invalid regex `{pattern}`: {error}")))
}

fn regex_match(value: Value, pattern: String) -> Result<bool, Error> {
    Ok(compile_regex(&pattern)?.is_match(&text_of(&value)))
}

fn regex_replace(value: Value, pattern: String, replacement: String) -> Result<String, Error> {
    Ok(compile_regex(&pattern)?
        .replace_all(&text_of(&value), replacement.as_str())
        .into_owned())
}

fn glob_match(value: Value, pattern: String) -> Result<bool, Error> {
    let glob = crate::glob::Glob::new(&pattern).map_err(|error| invalid(error.message))?;
    Ok(glob.is_match(&text_of(&value)))
}

/// `-1`, `0` or `1` as `value` is older than, equal to or newer than `other` (SemVer 2.0 precedence;
/// a leading `v` is allowed, build metadata ignored).
fn semver_compare(_state: &State, value: Value, other: Value) -> Result<i64, Error> {
    let left = parse_semver(&text_of(&value))?;
    let right = parse_semver(&text_of(&other))?;
    Ok(match compare_semver(&left, &right) {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    })
}

struct SemVer {
    core: [u64; 3],
    pre: Vec<String>,
}

fn parse_semver(text: &str) -> Result<SemVer, Error> {
    let bad = || {
        invalid(format!(
            "semver_compare: `{text}` is not a semantic version"
        ))
    };
    let trimmed = text.trim().trim_start_matches('v');
    let without_build = trimmed.split('+').next().unwrap_or_default();
    let (core, pre) = match without_build.split_once('-') {
        Some((core, pre)) => (core, pre.split('.').map(str::to_string).collect()),
        None => (without_build, Vec::new()),
    };
    let mut numbers = [0u64; 3];
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return Err(bad());
    }
    for (index, part) in parts.iter().enumerate() {
        numbers[index] = part.parse().map_err(|_| bad())?;
    }
    Ok(SemVer { core: numbers, pre })
}

fn compare_semver(left: &SemVer, right: &SemVer) -> Ordering {
    left.core
        .cmp(&right.core)
        .then_with(|| match (left.pre.is_empty(), right.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            // A pre-release sorts before its release.
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                for (a, b) in left.pre.iter().zip(&right.pre) {
                    let order = match (a.parse::<u64>(), b.parse::<u64>()) {
                        (Ok(x), Ok(y)) => x.cmp(&y),
                        (Ok(_), Err(_)) => Ordering::Less,
                        (Err(_), Ok(_)) => Ordering::Greater,
                        (Err(_), Err(_)) => a.cmp(b),
                    };
                    if order != Ordering::Equal {
                        return order;
                    }
                }
                left.pre.len().cmp(&right.pre.len())
            }
        })
}

#[cfg(test)]
mod tests {
    use crate::template::Templates;
    use minijinja::context;
    use std::path::Path;

    fn render(source: &str) -> String {
        let templates = Templates::new(Path::new("templates"));
        let template = templates.compile(source).unwrap();
        Templates::render(
            &template,
            &context! { s => "a b/c.txt", n => 3, secret => "it's" },
        )
        .unwrap()
    }

    #[test]
    fn each_filter_does_what_its_name_says() {
        let cases = [
            ("{{ secret | sh }}", r"'it'\''s'"),
            ("{{ {'a': [1, 2]} | toyaml }}", "a:\n- 1\n- 2\n"),
            ("{{ ('{\"k\": 5}' | fromjson).k }}", "5"),
            ("{{ 'hi' | b64encode }}", "aGk="),
            ("{{ 'aGk=' | b64decode }}", "hi"),
            (
                "{{ 'abc' | sha256 }}",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            // Jinja prints booleans as Python does.
            ("{{ 'v1.2.3' | regex_match('^v[0-9]+') }}", "True"),
            ("{{ 'a-b-c' | regex_replace('-', '_') }}", "a_b_c"),
            ("{{ 'release/1.0' | glob_match('release/**') }}", "True"),
            ("{{ 'release/1.0' | glob_match('release') }}", "False"),
            ("{{ s | basename }}", "c.txt"),
            ("{{ s | dirname }}", "a b"),
            ("{{ 'v1.10.0' | semver_compare('1.9.9') }}", "1"),
            ("{{ '1.0.0-alpha' | semver_compare('1.0.0') }}", "-1"),
            (
                "{{ '1.0.0-alpha.1' | semver_compare('1.0.0-alpha.beta') }}",
                "-1",
            ),
            ("{{ '2.0.0+build' | semver_compare('2.0.0') }}", "0"),
            ("{{ {'a': 'x'} | tojson }}", r#"{"a": "x"}"#),
        ];
        for (source, expected) in cases {
            assert_eq!(render(source), expected, "{source}");
        }
    }

    #[test]
    fn bad_input_to_a_filter_is_an_error_naming_it() {
        let templates = Templates::new(Path::new("templates"));
        for (source, needle) in [
            ("{{ 'x' | regex_match('(') }}", "invalid regex `(`"),
            ("{{ '%%' | b64decode }}", "b64decode"),
            (
                "{{ 'x' | semver_compare('1.0') }}",
                "not a semantic version",
            ),
            ("{{ 'nope' | fromjson }}", "fromjson"),
        ] {
            let template = templates.compile(source).unwrap();
            let error = Templates::render(&template, &context! {}).unwrap_err();
            assert!(
                error.message.contains(needle),
                "{source}: {}",
                error.message
            );
        }
    }
}
