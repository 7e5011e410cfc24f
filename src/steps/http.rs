//! `http`: one request with a JSON or text body; the response status is checked against `expect`.
//! `notify` sends through here too.

use super::{
    Compiled, CompiledStep, Outputs, StepContext, StepError, StepKind, StepSite, StepSuccess,
};
use crate::template::{TemplateTree, TreeError};
use crate::yaml::YamlError;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::Duration;

/// SPEC §2.3 caps a step's captured output at 1 MiB; a response body is held to the same.
pub const MAX_BODY: usize = 1024 * 1024;

/// `http:` as written (after rendering): one request with a JSON or text body.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    description = "One HTTP request with a JSON or text body (not both); the response status is checked against `expect`.",
    extend("not" = { "required": ["json", "body"] })
)]
pub struct HttpConfig {
    /// The request method; default POST when there is a body, else GET.
    pub method: Option<String>,
    /// Where the request goes.
    pub url: String,
    /// Request headers, in the order written; non-string values are sent as their JSON text.
    #[serde(default)]
    pub headers: Map<String, Json>,
    /// A JSON body, built as a value (never by string concatenation); values keep their types.
    pub json: Option<Json>,
    /// A text body (instead of `json`).
    pub body: Option<String>,
    /// The accepted response statuses: codes and ranges (`200`, `"200-299"`); default 200-299.
    #[schemars(with = "Option<ExpectSchema>")]
    pub expect: Option<Vec<Json>>,
    /// The request's own limit (`10s`); the step's `timeout` still applies.
    #[schemars(with = "Option<crate::workflow::schema::Duration>")]
    pub timeout: Option<String>,
}

/// The keys of an `http` step besides the common ones.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpKeys {
    /// An HTTP request; `json` keeps the types of its values.
    #[schemars(with = "Option<HttpConfig>")]
    pub http: Option<Json>,
}

/// The `http` step kind.
pub struct HttpKind;

impl StepKind for HttpKind {
    fn key(&self) -> &'static str {
        "http"
    }

    fn schema(&self, generator: &mut SchemaGenerator) -> Schema {
        HttpKeys::json_schema(generator)
    }

    fn compile(&self, keys: serde_yaml::Value, site: &StepSite) -> Result<Compiled, YamlError> {
        let keys: HttpKeys = site.keys(keys)?;
        let value = keys.http.unwrap_or(Json::Null);
        let path = site.key("http");
        site.check_shape::<HttpConfig>(&value, &path)?;
        // `json:` in native mode, so that a body keeps the types of its values.
        let tree = site.tree_with_native_key(&value, "json", &path)?;
        Ok(Compiled::new(HttpStep(tree)))
    }
}

/// A compiled `http` step: the request, every string a template.
#[derive(Debug)]
struct HttpStep(TemplateTree);

impl CompiledStep for HttpStep {
    fn render(&self, context: &minijinja::Value) -> Result<Json, TreeError> {
        Ok(super::keyed("http", self.0.render(context)?))
    }

    /// The request is built (method, URL, headers, `expect`) but not sent.
    fn plan(&self, rendered: &Json, context: &StepContext) -> Result<StepSuccess, StepError> {
        let config: HttpConfig = super::typed("http", &rendered["http"])?;
        config.into_request(context.timeout)?;
        Ok(StepSuccess::default())
    }

    fn execute(&self, rendered: &Json, context: &StepContext) -> Result<StepSuccess, StepError> {
        let config: HttpConfig = super::typed("http", &rendered["http"])?;
        let (request, expect) = config.into_request(context.timeout)?;
        send(request, &expect)
    }

    /// The response status.
    fn summary(&self, outputs: &Outputs) -> Option<String> {
        super::status_summary(outputs)
    }
}

/// What to send.
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<RequestBody>,
    pub timeout: Duration,
}

pub enum RequestBody {
    Json(Json),
    Text(String),
}

impl HttpConfig {
    pub fn into_request(
        self,
        step_timeout: Duration,
    ) -> Result<(Request, Vec<(u16, u16)>), StepError> {
        if self.json.is_some() && self.body.is_some() {
            return Err(StepError::new("http: set `json` or `body`, not both"));
        }
        let body = match (self.json, self.body) {
            (Some(json), _) => Some(RequestBody::Json(json)),
            (None, Some(text)) => Some(RequestBody::Text(text)),
            (None, None) => None,
        };
        let method = self
            .method
            .map(|method| method.to_ascii_uppercase())
            .unwrap_or_else(|| {
                if body.is_some() {
                    "POST".to_string()
                } else {
                    "GET".to_string()
                }
            });
        let headers = self
            .headers
            .into_iter()
            .map(|(name, value)| {
                let value = match value {
                    Json::String(text) => text,
                    other => other.to_string(),
                };
                (name, value)
            })
            .collect();
        let timeout = match self.timeout {
            Some(text) => crate::duration::parse_duration(&text)
                .map_err(|message| StepError::new(format!("http `timeout`: {message}")))?
                .min(step_timeout),
            None => step_timeout,
        };
        let expect = match self.expect {
            Some(list) => parse_expect(&list)?,
            None => vec![(200, 299)],
        };
        Ok((
            Request {
                method,
                url: self.url,
                headers,
                body,
                timeout,
            },
            expect,
        ))
    }
}

/// `[200, "200-299", "404"]` → inclusive ranges.
fn parse_expect(list: &[Json]) -> Result<Vec<(u16, u16)>, StepError> {
    let bad = |item: &Json| {
        StepError::new(format!(
            "http `expect`: `{item}` is not a status code or range like `200-299`"
        ))
    };
    list.iter()
        .map(|item| match item {
            Json::Number(number) => {
                let code = number
                    .as_u64()
                    .and_then(|code| u16::try_from(code).ok())
                    .ok_or_else(|| bad(item))?;
                Ok((code, code))
            }
            Json::String(text) => match text.split_once('-') {
                Some((low, high)) => Ok((
                    low.trim().parse().map_err(|_| bad(item))?,
                    high.trim().parse().map_err(|_| bad(item))?,
                )),
                None => {
                    let code = text.trim().parse().map_err(|_| bad(item))?;
                    Ok((code, code))
                }
            },
            _ => Err(bad(item)),
        })
        .collect()
}

fn client() -> Result<&'static reqwest::blocking::Client, StepError> {
    static CLIENT: OnceLock<Result<reqwest::blocking::Client, String>> = OnceLock::new();
    // Built on first use: a TLS client costs milliseconds that `plan` should not pay.
    CLIENT
        .get_or_init(|| {
            reqwest::blocking::Client::builder()
                .user_agent(concat!("vane/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|error| error.to_string())
        })
        .as_ref()
        .map_err(|error| StepError::new(format!("cannot build the HTTP client: {error}")))
}

/// Sends the request. Outputs `status`, `headers`, `body` and `json` (where the body parses).
pub fn send(request: Request, expect: &[(u16, u16)]) -> Result<StepSuccess, StepError> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| StepError::new(format!("http: `{}` is not an HTTP method", request.method)))?;
    let mut builder = client()?
        .request(method, &request.url)
        .timeout(request.timeout);
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder = match request.body {
        Some(RequestBody::Json(json)) => builder.json(&json),
        Some(RequestBody::Text(text)) => builder.body(text),
        None => builder,
    };
    let response = builder
        .send()
        .map_err(|error| StepError::new(describe_request_error(error)))?;
    let status = response.status().as_u16();
    let mut headers = Map::new();
    for (name, value) in response.headers() {
        headers.insert(
            name.as_str().to_string(),
            Json::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        );
    }
    let mut bytes = Vec::new();
    let _ = std::io::Read::read_to_end(
        &mut std::io::Read::take(response, MAX_BODY as u64),
        &mut bytes,
    );
    let body = String::from_utf8_lossy(&bytes).into_owned();
    let mut outputs = Outputs::new();
    outputs.insert("status".to_string(), Json::from(status));
    outputs.insert("headers".to_string(), Json::Object(headers));
    if let Ok(json) = serde_json::from_str::<Json>(&body) {
        outputs.insert("json".to_string(), json);
    }
    outputs.insert("body".to_string(), Json::String(body));
    if expect
        .iter()
        .any(|(low, high)| (*low..=*high).contains(&status))
    {
        Ok(StepSuccess {
            outputs,
            log: None,
            ..StepSuccess::default()
        })
    } else {
        let wanted: Vec<String> = expect
            .iter()
            .map(|(low, high)| {
                if low == high {
                    low.to_string()
                } else {
                    format!("{low}-{high}")
                }
            })
            .collect();
        Err(StepError::new(format!(
            "HTTP status {status}, expected [{}]",
            wanted.join(", ")
        ))
        .with_outputs(outputs))
    }
}

/// A request error without the URL's path, query or credentials: webhook URLs are often the
/// credential itself. Where it went is named by its origin (`scheme://host:port`) alone, which
/// is what a wrong port or host needs.
fn describe_request_error(error: reqwest::Error) -> String {
    let at = error
        .url()
        .map(|url| format!(" to {}", origin(url)))
        .unwrap_or_default();
    let error = error.without_url();
    if error.is_timeout() {
        format!("request{at} timed out")
    } else if error.is_connect() {
        format!("cannot connect{at}: {}", source_chain(&error))
    } else {
        format!("request{at} failed: {}", source_chain(&error))
    }
}

/// `scheme://host:port` of a URL, the port spelled out even where it is the scheme's default.
fn origin(url: &reqwest::Url) -> String {
    // IPv6 hosts come in brackets, as a URL writes them.
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    text
}

/// `http.expect`: status codes and ranges.
pub struct ExpectSchema;

impl JsonSchema for ExpectSchema {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Expect".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "array",
            "items": {
                "anyOf": [
                    { "type": "integer", "minimum": 100, "maximum": 599 },
                    { "type": "string", "pattern": r"^\s*[0-9]{3}\s*(-\s*[0-9]{3}\s*)?$" },
                    crate::workflow::schema::template_string()
                ]
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_origin_is_scheme_host_and_port_and_nothing_else() {
        for (url, origin_text) in [
            (
                "https://user:secret@hooks.example.com/services/T0/B0/XXXX?token=1",
                "https://hooks.example.com:443",
            ),
            ("http://127.0.0.1:9/alerts", "http://127.0.0.1:9"),
            ("http://[::1]:8080/x", "http://[::1]:8080"),
        ] {
            assert_eq!(origin(&reqwest::Url::parse(url).unwrap()), origin_text);
        }
    }

    #[test]
    fn a_connection_error_names_the_origin_only() {
        // A port nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let error = reqwest::blocking::get(format!("http://127.0.0.1:{port}/hook/SECRET?token=t"))
            .unwrap_err();
        let message = describe_request_error(error);
        assert!(
            message.starts_with(&format!("cannot connect to http://127.0.0.1:{port}: ")),
            "{message}"
        );
        assert!(
            !message.contains("SECRET") && !message.contains("token"),
            "{message}"
        );
    }

    use super::*;
    use crate::steps::compile::testing::{compile, render};
    use serde_json::json;

    #[test]
    fn an_http_step_is_checked_at_load_and_its_json_keeps_types() {
        assert_eq!(
            compile("http: { url: 'https://x', jsn: {} }", &[]).unwrap_err(),
            "2:11: steps[0].http: unknown key `jsn` (did you mean `json`?)"
        );
        let step = compile(
            "http:\n  url: 'https://x/{{ n }}'\n  json: { n: '{{ n }}' }",
            &[],
        )
        .unwrap();
        assert_eq!(
            render(&step, json!({"n": 3})),
            json!({"http": {"url": "https://x/3", "json": {"n": 3}}})
        );
        let outputs = Outputs::from_iter([("status".to_string(), json!(201))]);
        assert_eq!(step.action.summary(&outputs).as_deref(), Some("201"));
    }

    #[test]
    fn expect_accepts_codes_and_ranges() {
        assert_eq!(
            parse_expect(&[json!(200), json!("300-399"), json!("404")]).unwrap(),
            vec![(200, 200), (300, 399), (404, 404)]
        );
        assert!(parse_expect(&[json!("ok")]).is_err());
    }

    #[test]
    fn method_defaults_follow_the_body() {
        let config: HttpConfig =
            serde_json::from_value(json!({"url": "http://x", "json": {"a": 1}})).unwrap();
        let (request, _) = config.into_request(Duration::from_secs(5)).unwrap();
        assert_eq!(request.method, "POST");
        let config: HttpConfig = serde_json::from_value(json!({"url": "http://x"})).unwrap();
        assert_eq!(
            config
                .into_request(Duration::from_secs(5))
                .unwrap()
                .0
                .method,
            "GET"
        );
    }
}
