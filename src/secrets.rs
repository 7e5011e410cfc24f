//! Secret values (SPEC §5.3) and the masker that replaces them with `***` in everything vane writes.

use serde_json::Value as Json;
use std::sync::{Arc, RwLock};

/// What a secret renders as where its value is unknown (a dry run without it) or hidden.
pub const MASK: &str = "***";

/// Where `vane.yaml` says secrets come from, set once at startup.
static CONFIGURED: std::sync::OnceLock<
    std::collections::BTreeMap<String, crate::config::SecretRef>,
> = std::sync::OnceLock::new();

/// Installs the `secrets:` of `vane.yaml`; a later call is ignored (one configuration per process).
pub fn configure(sources: std::collections::BTreeMap<String, crate::config::SecretRef>) {
    let _ = CONFIGURED.set(sources);
}

/// Resolves a secret by name: where `vane.yaml` says (an environment variable or a file), else
/// the environment variable of the same name.
pub fn resolve(name: &str) -> Option<String> {
    if let Some(source) = CONFIGURED.get().and_then(|configured| configured.get(name)) {
        return source.resolve().ok();
    }
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// Why secret `name` has no value, in words that say where it was looked for.
pub fn why_missing(name: &str) -> String {
    match CONFIGURED.get().and_then(|configured| configured.get(name)) {
        Some(source) => match source.resolve() {
            Err(reason) => format!("secret `{name}` (from vane.yaml) cannot be read: {reason}"),
            Ok(_) => format!("secret `{name}` (from vane.yaml) is empty"),
        },
        None => {
            format!("secret `{name}` is not set: export it as the environment variable `{name}`")
        }
    }
}

/// The forms a value takes once encoded for a URL or as base64, which is how it shows in a
/// malformed URL, a `Basic` header or a `b64encode`d body: percent-encoded (by the usual sets of
/// characters left alone, upper- and lowercase hex, and with `+` for spaces), and base64 (standard and URL-safe). Base64 inside a longer
/// encoded text depends on where the value starts, so each of the three alignments contributes
/// the part of its encoding that only the value's bytes decide.
fn encoded_forms(value: &str) -> Vec<String> {
    use base64::Engine;
    let mut forms = Vec::new();
    // What encoders leave as it is: RFC 3986's unreserved characters; those and `/` (a path,
    // minijinja's `urlencode`); JavaScript's `encodeURI` set.
    for kept in [&b"-._~"[..], b"-._~/", b"-._~;,/?:@&=+$!*'()#"] {
        let upper = crate::percent::encode(value, kept);
        let lower = percent_lowercase(&upper);
        let form = upper.replace("%20", "+");
        forms.extend([upper, lower, form]);
    }
    for shift in 0..3usize {
        let mut bytes = vec![0u8; shift];
        bytes.extend_from_slice(value.as_bytes());
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes);
        // The characters that also hold bits of the bytes before the value (the zeros here)…
        let skip = [0, 2, 3][shift];
        // … and the last one, when it also holds bits of what follows the value.
        let keep = if bytes.len() % 3 == 0 {
            encoded.len()
        } else {
            encoded.len() - 1
        };
        if keep < skip + 4 {
            continue;
        }
        let core = &encoded[skip..keep];
        forms.push(core.to_string());
        forms.push(core.replace('+', "-").replace('/', "_"));
        if shift == 0 {
            let padded = base64::engine::general_purpose::STANDARD.encode(value);
            forms.push(padded.replace('+', "-").replace('/', "_"));
            forms.push(padded);
            forms.push(encoded.replace('+', "-").replace('/', "_"));
            forms.push(encoded.clone());
        }
    }
    forms.retain(|form| form != value);
    forms
}

/// A JSON-escaped value (`| tojson`) inside a rendered shell script: escaped again for the
/// shell context it landed in.
fn json_in_shell_forms(value: &str) -> Vec<String> {
    let json = serde_json::to_string(value).unwrap_or_default();
    let inner = json.trim_matches('"');
    vec![
        crate::template::shell::escape_double(inner),
        crate::template::shell::escape_single(inner),
        crate::template::shell::quote_bare(&json),
    ]
}

/// `%2F` → `%2f`: the lowercase-hex spelling of a percent-encoded text.
fn percent_lowercase(encoded: &str) -> String {
    let mut lower = String::with_capacity(encoded.len());
    let mut hex_left = 0;
    for ch in encoded.chars() {
        if ch == '%' {
            hex_left = 2;
            lower.push(ch);
        } else if hex_left > 0 {
            hex_left -= 1;
            lower.push(ch.to_ascii_lowercase());
        } else {
            lower.push(ch);
        }
    }
    lower
}

/// Replaces every known secret value with `***`. Shared by every writer of output; values are
/// added as workflows resolve their secrets.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    values: Arc<RwLock<Vec<String>>>,
}

impl Masker {
    pub fn new() -> Masker {
        Masker::default()
    }

    /// Adds a value and the forms it takes once escaped for a shell or JSON, which is how it
    /// appears inside rendered scripts and bodies.
    pub fn add(&self, value: &str) {
        // One- and two-character values would mask ordinary text everywhere; GitHub skips them too.
        if value.trim().chars().count() < 3 {
            return;
        }
        let mut forms = vec![value.to_string()];
        for form in [
            crate::template::shell::quote_bare(value),
            crate::template::shell::escape_double(value),
            crate::template::shell::escape_single(value),
            serde_json::to_string(value)
                .unwrap_or_default()
                .trim_matches('"')
                .to_string(),
        ]
        .into_iter()
        .chain(encoded_forms(value))
        .chain(json_in_shell_forms(value))
        {
            if !forms.contains(&form) {
                forms.push(form);
            }
        }
        let Ok(mut values) = self.values.write() else {
            return;
        };
        for form in forms {
            if !values.contains(&form) {
                values.push(form);
            }
        }
        // Longest first, so that a value containing another is masked whole.
        values.sort_by_key(|value| std::cmp::Reverse(value.len()));
    }

    /// The values to announce (`::add-mask::` in GitHub Actions): the raw forms.
    pub fn values(&self) -> Vec<String> {
        self.values
            .read()
            .map(|values| values.clone())
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.values
            .read()
            .map(|values| values.is_empty())
            .unwrap_or(true)
    }

    pub fn mask(&self, text: &str) -> String {
        let Ok(values) = self.values.read() else {
            return text.to_string();
        };
        let mut masked = text.to_string();
        for value in values.iter() {
            if masked.contains(value.as_str()) {
                masked = masked.replace(value.as_str(), MASK);
            }
        }
        masked
    }

    /// Masks every string inside a JSON value (keys included), so the result is still valid JSON.
    pub fn mask_json(&self, value: &mut Json) {
        if self.is_empty() {
            return;
        }
        match value {
            Json::String(text) => {
                let masked = self.mask(text);
                if masked != *text {
                    *text = masked;
                }
            }
            Json::Array(items) => items.iter_mut().for_each(|item| self.mask_json(item)),
            Json::Object(map) => {
                let needs_key_mask = map.keys().any(|key| self.mask(key) != *key);
                if needs_key_mask {
                    let entries: Vec<(String, Json)> = std::mem::take(map).into_iter().collect();
                    for (key, mut item) in entries {
                        self.mask_json(&mut item);
                        map.insert(self.mask(&key), item);
                    }
                } else {
                    map.values_mut().for_each(|item| self.mask_json(item));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_their_escaped_forms_are_masked() {
        let masker = Masker::new();
        masker.add("s3cr'et\"x");
        assert_eq!(masker.mask("token=s3cr'et\"x;"), "token=***;");
        assert_eq!(masker.mask(r#"echo 's3cr'\''et"x'"#), "echo ***");
        let mut json = serde_json::json!({"a": ["s3cr'et\"x here"], "s3cr'et\"x": 1});
        masker.mask_json(&mut json);
        assert_eq!(json, serde_json::json!({"a": ["*** here"], "***": 1}));
    }

    #[test]
    fn url_encoded_and_base64_forms_are_masked() {
        use base64::Engine;
        let secret = "p@ss w/rd+1:é";
        let masker = Masker::new();
        masker.add(secret);
        assert_eq!(
            masker.mask("https://x:p%40ss%20w%2Frd%2B1%3A%C3%A9@host/"),
            "https://x:***@host/"
        );
        assert_eq!(masker.mask("u=p%40ss%20w%2frd%2b1%3a%c3%a9&"), "u=***&");
        assert_eq!(masker.mask("u=p%40ss+w%2Frd%2B1%3A%C3%A9&"), "u=***&");
        let engine = base64::engine::general_purpose::STANDARD;
        for prefix in ["", "u:", "us:", "use:", "user:"] {
            let encoded = engine.encode(format!("{prefix}{secret}"));
            let masked = masker.mask(&format!("Authorization: Basic {encoded}"));
            assert!(masked.contains("***"), "{prefix}: {masked}");
            // What is left of the encoding decodes to no more than a byte or two of the value.
            let rest = masked.trim_start_matches("Authorization: Basic ");
            assert!(
                rest.replace("***", "").len() <= prefix.len() * 4 / 3 + 6,
                "{masked}"
            );
        }
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        assert_eq!(masker.mask(&url_safe), "***");
    }

    #[test]
    fn very_short_values_are_not_masked() {
        let masker = Masker::new();
        masker.add("ab");
        assert_eq!(masker.mask("about"), "about");
    }
}
