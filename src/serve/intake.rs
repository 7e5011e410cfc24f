//! A webhook request turned into an event: which headers name its type and delivery id for each
//! sender, and CloudEvents' binary mode (attributes in `ce-*` headers, the body as `data`).

use crate::event::{Event, InputOptions, from_text};
use axum::http::HeaderMap;
use base64::Engine;
use serde_json::{Map, Value};

/// How one endpoint reads its requests; secrets are resolved at startup.
#[derive(Debug, Clone)]
pub enum Endpoint {
    Github {
        secret: String,
    },
    Gitlab {
        token: String,
    },
    Generic {
        header: String,
        secret: String,
        kind: Option<String>,
    },
    CloudEvents {
        hmac: Option<(String, String)>,
    },
    Alertmanager {
        auth: AlertAuth,
        split: crate::config::AlertSplit,
    },
}

/// How Alertmanager authenticates (it cannot sign): the expected bearer token, or basic
/// credentials.
#[derive(Debug, Clone)]
pub enum AlertAuth {
    Bearer(String),
    Basic { username: String, password: String },
}

impl Endpoint {
    /// The label of its metrics and the `source` of the queue entries.
    pub fn name(&self) -> &'static str {
        match self {
            Endpoint::Github { .. } => "github",
            Endpoint::Gitlab { .. } => "gitlab",
            Endpoint::Generic { .. } => "generic",
            Endpoint::CloudEvents { .. } => "cloudevents",
            Endpoint::Alertmanager { .. } => "alertmanager",
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// The events a verified request carries (one, except an Alertmanager notification split per
/// alert), or what is wrong with it (a 400).
pub fn events(endpoint: &Endpoint, headers: &HeaderMap, body: &[u8]) -> Result<Vec<Event>, String> {
    if let Endpoint::Alertmanager { split, .. } = endpoint {
        let text =
            std::str::from_utf8(body).map_err(|_| "the body is not UTF-8 text".to_string())?;
        return super::alertmanager::events(text, *split);
    }
    event(endpoint, headers, body).map(|event| vec![event])
}

/// The event a verified request carries, or what is wrong with it (a 400).
pub fn event(endpoint: &Endpoint, headers: &HeaderMap, body: &[u8]) -> Result<Event, String> {
    if let Endpoint::CloudEvents { .. } = endpoint {
        return cloudevent(headers, body);
    }
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8 text".to_string())?;
    let parse = |options: InputOptions| from_text(text, &options).map_err(|error| error.message);
    match endpoint {
        Endpoint::Github { .. } => {
            let kind = header(headers, "x-github-event")
                .ok_or("missing `X-GitHub-Event` header: which event is this?")?;
            parse(InputOptions {
                kind: Some(kind.to_string()),
                source: Some("github".to_string()),
                delivery_id: header(headers, "x-github-delivery").map(str::to_string),
            })
        }
        Endpoint::Gitlab { .. } => {
            let hook = header(headers, "x-gitlab-event")
                .ok_or("missing `X-Gitlab-Event` header: which event is this?")?;
            parse(InputOptions {
                kind: Some(gitlab_kind(hook)),
                source: Some("gitlab".to_string()),
                delivery_id: header(headers, "x-gitlab-event-uuid")
                    .or_else(|| header(headers, "idempotency-key"))
                    .map(str::to_string),
            })
        }
        Endpoint::Generic { kind, .. } => parse(InputOptions {
            kind: kind.clone(),
            source: kind.as_ref().map(|_| "webhook".to_string()),
            delivery_id: delivery_header(headers),
        }),
        Endpoint::Alertmanager { split, .. } => {
            let mut events = super::alertmanager::events(text, *split)?;
            if events.len() == 1 {
                Ok(events.remove(0))
            } else {
                Err("the notification holds more than one alert".to_string())
            }
        }
        Endpoint::CloudEvents { .. } => unreachable!("read above"),
    }
}

/// A CloudEvent in structured mode (`Content-Type: application/cloudevents+json`, in any case)
/// or binary mode. Its id in vane is [`cloudevent_id`]: CloudEvents makes `source` and `id`
/// together unique, so two events that share an `id` from different sources are both kept.
fn cloudevent(headers: &HeaderMap, body: &[u8]) -> Result<Event, String> {
    let media_type = header(headers, "content-type").map(media_type);
    let mut event = if media_type
        .as_deref()
        .is_some_and(|media| media.starts_with("application/cloudevents"))
    {
        let text =
            std::str::from_utf8(body).map_err(|_| "the body is not UTF-8 text".to_string())?;
        from_text(text, &InputOptions::default()).map_err(|error| error.message)?
    } else {
        let document = binary_cloudevent(headers, body)?;
        from_text(&document, &InputOptions::default()).map_err(|error| error.message)?
    };
    let id = cloudevent_id(&event.source, event.id());
    event.set_id(id);
    Ok(event)
}

/// The id vane gives a CloudEvent received by `vane serve`: its `source`, a space and its `id`
/// (`/ci ce-1`), the source's own `%` and spaces percent-encoded so that no two pairs meet.
pub fn cloudevent_id(source: &str, id: &str) -> String {
    let source = source.replace('%', "%25").replace(' ', "%20");
    format!("{source} {id}")
}

/// The media type of a `Content-Type` value, lowercased, without parameters.
fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// A `ce-*` header value with its percent-encoding undone, as the CloudEvents HTTP binding
/// requires: `%` must start two hex digits, and the decoded bytes must be UTF-8.
fn percent_decode(name: &str, value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes
                .get(index + 1..index + 3)
                .and_then(|pair| std::str::from_utf8(pair).ok())
                .filter(|pair| pair.bytes().all(|byte| byte.is_ascii_hexdigit()))
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| {
                    format!("header `{name}` has a `%` that does not start two hex digits")
                })?;
            decoded.push(hex);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded)
        .map_err(|_| format!("header `{name}` is not UTF-8 once percent-decoded"))
}

/// An explicit delivery id: `X-Delivery-Id`, else `Idempotency-Key`.
fn delivery_header(headers: &HeaderMap) -> Option<String> {
    header(headers, "x-delivery-id")
        .or_else(|| header(headers, "idempotency-key"))
        .map(str::to_string)
}

/// GitLab's `X-Gitlab-Event` (`Push Hook`, `Merge Request Hook`) as the payload's `object_kind`
/// spells it (`push`, `merge_request`): the type workflows name.
fn gitlab_kind(hook: &str) -> String {
    let name = hook.strip_suffix(" Hook").unwrap_or(hook);
    name.to_lowercase().replace(' ', "_")
}

/// A binary-mode CloudEvent (attributes in `ce-*` headers, percent-decoded) as the structured
/// document vane reads. A JSON body (`application/json`, `…+json`) is the data; any other body
/// is the data as a string when it is UTF-8, else `data_base64`.
fn binary_cloudevent(headers: &HeaderMap, body: &[u8]) -> Result<String, String> {
    let mut document = Map::new();
    for (name, value) in headers {
        let Some(attribute) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        let value = value
            .to_str()
            .map_err(|_| format!("header `{name}` is not text"))?;
        document.insert(
            attribute.to_string(),
            Value::String(percent_decode(name.as_str(), value)?),
        );
    }
    if !document.contains_key("specversion") {
        return Err(
            "not a CloudEvent: no `ce-specversion` header and the content type is not \
             `application/cloudevents+json`"
                .to_string(),
        );
    }
    let content_type = header(headers, "content-type").unwrap_or("application/json");
    let media = media_type(content_type);
    if media == "application/json" || media.ends_with("+json") {
        let text =
            std::str::from_utf8(body).map_err(|_| "the body is not UTF-8 text".to_string())?;
        let data =
            serde_json::from_str(text).map_err(|error| format!("the body is not JSON: {error}"))?;
        document.insert("data".to_string(), data);
    } else {
        match std::str::from_utf8(body) {
            Ok(text) => document.insert("data".to_string(), Value::String(text.to_string())),
            Err(_) => document.insert(
                "data_base64".to_string(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(body)),
            ),
        };
    }
    document.insert(
        "datacontenttype".to_string(),
        Value::String(content_type.to_string()),
    );
    Ok(Value::Object(document).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn github_headers_name_the_type_and_the_delivery() {
        let endpoint = Endpoint::Github {
            secret: String::new(),
        };
        let event = super::event(
            &endpoint,
            &headers(&[("x-github-event", "ping"), ("x-github-delivery", "d-1")]),
            br#"{"zen":"Keep it logically awesome."}"#,
        )
        .unwrap();
        assert_eq!(event.kind, "ping");
        assert_eq!(event.source, "github");
        assert_eq!(event.id(), "d-1");
        assert!(super::event(&endpoint, &headers(&[]), b"{}").is_err());
    }

    #[test]
    fn gitlab_hook_names_become_object_kinds() {
        assert_eq!(gitlab_kind("Push Hook"), "push");
        assert_eq!(gitlab_kind("Merge Request Hook"), "merge_request");
        assert_eq!(gitlab_kind("Tag Push Hook"), "tag_push");
    }

    #[test]
    fn binary_cloudevents_take_their_attributes_from_headers() {
        let endpoint = Endpoint::CloudEvents { hmac: None };
        let event = super::event(
            &endpoint,
            &headers(&[
                ("ce-specversion", "1.0"),
                ("ce-type", "deploy.requested"),
                ("ce-source", "/ci"),
                ("ce-id", "ce-42"),
                ("content-type", "application/json"),
            ]),
            br#"{"service":"api"}"#,
        )
        .unwrap();
        assert_eq!(event.kind, "deploy.requested");
        assert_eq!(event.id(), "/ci ce-42");
        assert_eq!(event.data.value()["service"], "api");
        let not_one = super::event(&endpoint, &headers(&[]), b"{}");
        assert!(not_one.unwrap_err().contains("not a CloudEvent"));
    }

    #[test]
    fn cloudevents_headers_are_percent_decoded_and_media_types_read_in_any_case() {
        let endpoint = Endpoint::CloudEvents { hmac: None };
        let binary = |subject: &'static str, content_type: &'static str, body: &[u8]| {
            super::event(
                &endpoint,
                &headers(&[
                    ("ce-specversion", "1.0"),
                    ("ce-type", "deploy.requested"),
                    ("ce-source", "/ci"),
                    ("ce-id", "1"),
                    ("ce-subject", subject),
                    ("content-type", content_type),
                ]),
                body,
            )
        };
        let event = binary("caf%C3%A9 %25 %22x%22", "Application/JSON", b"{}").unwrap();
        assert_eq!(event.subject.as_deref(), Some("caf\u{e9} % \"x\""));
        for bad in ["%C0%A0", "%G1", "100%", "%4"] {
            let error = binary(bad, "application/json", b"{}").unwrap_err();
            assert!(error.contains("`ce-subject`"), "{bad}: {error}");
        }
        let bytes = binary("s", "application/octet-stream", &[0xff, 0x00, 0x80]).unwrap();
        assert_eq!(bytes.data.value(), &serde_json::json!("/wCA"));
        let text = binary("s", "text/plain", b"hello").unwrap();
        assert_eq!(text.data.value(), &serde_json::json!("hello"));

        let structured = super::event(
            &endpoint,
            &headers(&[(
                "content-type",
                "Application/CloudEvents+JSON; charset=UTF-8",
            )]),
            br#"{"specversion":"1.0","type":"t","source":"a b%","id":"x"}"#,
        )
        .unwrap();
        assert_eq!(structured.id(), "a%20b%25 x");
        assert_ne!(cloudevent_id("a b", "c"), cloudevent_id("a", "b c"));
    }

    #[test]
    fn malformed_json_is_a_clear_error() {
        let endpoint = Endpoint::Github {
            secret: String::new(),
        };
        let error = event(
            &endpoint,
            &headers(&[("x-github-event", "push")]),
            b"{\"ref\": ",
        )
        .unwrap_err();
        assert!(!error.is_empty());
    }
}
