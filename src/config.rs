//! `vane.yaml` (SPEC §6): where the workflows, templates and state are, the secrets the daemon
//! reads, the sources it polls or subscribes to, the webhooks it serves and the queue it uses.
//!
//! Loaded with the same diagnostics as workflows: every problem is `file:line:col: error: …`,
//! unknown keys get a did-you-mean. Relative paths are relative to the file's folder, so that
//! `vane --config /etc/vane/vane.yaml` means the same wherever it is started from.

use crate::diagnostic::Diagnostic;
use crate::workflow::schema;
use crate::yaml::{self, Position, YamlPath};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file `vane` reads when `--config` is not given, where it exists.
pub const DEFAULT_CONFIG: &str = "vane.yaml";

/// `vane.yaml`, checked.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The file it was read from.
    pub file: PathBuf,
    pub workflows: Option<PathBuf>,
    pub templates: Option<PathBuf>,
    pub state: Option<PathBuf>,
    /// Secret name → where its value comes from.
    pub secrets: BTreeMap<String, SecretRef>,
    pub sources: Vec<Source>,
    pub serve: Serve,
    pub queue: Queue,
    /// `max-emitted`: how many events one input may cause through `emit` steps, in all.
    pub max_emitted: Option<usize>,
}

/// Where a secret's value is read from, at the moment it is needed (never stored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(transform = schema::one_of_keys(&["env", "file"]))]
pub struct SecretRef {
    /// An environment variable.
    pub env: Option<String>,
    /// A file (a mounted Kubernetes secret, a Docker secret); a trailing newline is dropped.
    pub file: Option<PathBuf>,
}

impl SecretRef {
    /// The value, or why there is none. The message names the variable or file, never a value.
    pub fn resolve(&self) -> Result<String, String> {
        if let Some(name) = &self.env {
            return std::env::var(name)
                .ok()
                .filter(|value| !value.is_empty())
                .ok_or_else(|| format!("the environment variable `{name}` is not set"));
        }
        if let Some(path) = &self.file {
            return std::fs::read_to_string(path)
                .map(|text| text.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|error| format!("cannot read `{}`: {error}", path.display()));
        }
        Err("no `env` or `file` given".to_string())
    }
}

/// One source of events: what to poll or subscribe to, and how often.
#[derive(Debug, Clone)]
pub struct Source {
    /// Unique across the file; the source of the events it produces and the key of its cursor.
    pub name: String,
    /// How often a poller polls (`poll --every` and `serve`); `None` for subscriptions.
    pub every: Option<Duration>,
    pub kind: SourceKind,
    /// Where the source's entry starts, for errors found later (at poll time).
    pub position: Option<Position>,
}

#[derive(Debug, Clone)]
pub enum SourceKind {
    Git(GitSource),
    Http(HttpSource),
    Github(GithubSource),
    Mqtt(MqttSource),
    Nats(NatsSource),
    Registry(RegistrySource),
    Prometheus(PrometheusSource),
}

impl SourceKind {
    /// The key that chose this kind (`git`, `http`, …), for messages.
    pub fn key(&self) -> &'static str {
        match self {
            SourceKind::Git(_) => "git",
            SourceKind::Http(_) => "http",
            SourceKind::Github(_) => "github",
            SourceKind::Mqtt(_) => "mqtt",
            SourceKind::Nats(_) => "nats",
            SourceKind::Registry(_) => "registry",
            SourceKind::Prometheus(_) => "prometheus",
        }
    }
}

/// What a poller does the first time it sees a source (no cursor yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FirstPoll {
    /// Record where the source is and emit nothing: no storm of old events.
    #[default]
    Record,
    /// Emit what is there, as if everything were new.
    Emit,
}

/// A git remote whose refs are compared with the cursor: one `push` event per moved ref.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GitSource {
    /// `https://…`, `ssh://…`, `git://…`, `file://…` or a local path.
    pub url: String,
    /// Branch globs to watch (GitHub's filter syntax); none watches no branch.
    #[serde(default)]
    pub branches: Vec<String>,
    /// Tag globs to watch; none watches no tag.
    #[serde(default)]
    pub tags: Vec<String>,
    /// A token for `https://` remotes (sent as HTTP basic auth).
    pub token: Option<SecretRef>,
    /// The `repository` of the events (`acme/api`); default: derived from the url.
    pub repo: Option<String>,
    #[serde(default)]
    pub first: FirstPoll,
}

/// Whether an HTTP poll emits every time, or only when the response changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Emit {
    Always,
    #[default]
    Changed,
}

/// A JSON resource polled with GET; its response becomes `data` of an event of type `type`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpSource {
    pub url: String,
    /// The type of the events (`metric.latency`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Request headers; values may name a secret with `{ env: … }` / `{ file: … }`.
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderValue>,
    /// A JSON pointer (`/data/result/0`) picking the part of the response that is `data`.
    pub pointer: Option<String>,
    #[serde(default)]
    pub emit: Emit,
}

/// A header value: literal text, or a secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum HeaderValue {
    Text(String),
    Secret(SecretRef),
}

/// GitHub's REST API polled for `workflow_run` / `check_run` changes of one repository.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GithubSource {
    /// `owner/name`.
    pub repo: String,
    /// `workflow_run`, `check_run`.
    pub events: Vec<String>,
    /// For `check_run`: the branches whose head commit's check runs are polled.
    #[serde(default)]
    pub branches: Vec<String>,
    pub token: Option<SecretRef>,
    /// The API's base URL: GitHub Enterprise is `https://HOST/api/v3`.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    #[serde(default)]
    pub first: FirstPoll,
}

fn default_api_url() -> String {
    "https://api.github.com".to_string()
}

/// A container registry's image: its tags are listed, a policy picks one, and an
/// `image.updated` event says when the pick (or, with `digest`, its digest) changed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RegistrySource {
    /// Registry host and repository: `ghcr.io/acme/api`, `127.0.0.1:5000/acme/api`; without a
    /// host (`nginx`, `acme/api`) Docker Hub (`docker.io/library/nginx`).
    pub image: String,
    pub policy: ImagePolicyConfig,
    /// Which tags are candidates, and the part of each that is ordered.
    #[serde(default)]
    pub tags: TagFilterConfig,
    /// Resolve the winning tag's digest; a new digest under the same tag is then an event.
    #[serde(default)]
    pub digest: bool,
    /// Default: anonymous (public images; Bearer registries give anonymous tokens).
    pub credentials: Option<RegistryCredentials>,
    /// More tags than this is an error (not a silently partial list).
    #[serde(default = "max_tags")]
    pub max_tags: usize,
    /// Plain `http://` for a host that is not loopback (loopback hosts always use it).
    #[serde(default)]
    pub insecure: bool,
    #[serde(default)]
    pub first: FirstPoll,
    /// Misplaced (it belongs beside `registry:`): read only to say so.
    #[serde(default, deserialize_with = "optional_duration_text")]
    #[schemars(skip)]
    pub every: Option<String>,
}

fn max_tags() -> usize {
    10_000
}

/// `policy:` — exactly one of `semver`, `numerical`, `alphabetical`, `newest-build`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImagePolicyConfig {
    /// An npm-style range: `>=1.4.0 <2`, `^1.4`, `~1.4.2`, `1.x`, `>=2 || <1`.
    pub semver: Option<String>,
    /// With `semver`: whether prereleases are candidates (default: only when the range itself
    /// names a prerelease, `>=1.5.0-rc.1`).
    pub prereleases: Option<bool>,
    pub numerical: Option<Order>,
    pub alphabetical: Option<Order>,
    /// The tag whose image was built last (`created` in its config blob).
    pub newest_build: Option<bool>,
}

/// `asc`: the highest value wins; `desc`: the lowest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

/// `tags:` — regexes over tag names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TagFilterConfig {
    /// Only tags this matches are candidates.
    pub include: Option<String>,
    /// What of a tag is ordered: `include`'s groups, `$version`, `${ts}`, `$1`.
    pub extract: Option<String>,
    /// Tags any of these match are never candidates (signatures, attestations).
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// A registry login: sent to the token service (Bearer registries) or as Basic auth.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RegistryCredentials {
    pub username: HeaderValue,
    pub password: SecretRef,
}

/// A Prometheus instant query, polled: its value as `metric.<source>` events.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PrometheusSource {
    /// Prometheus's base URL (`http://prometheus:9090`); the query goes to `/api/v1/query`.
    pub url: String,
    /// PromQL, evaluated as an instant query.
    pub query: String,
    #[serde(default)]
    pub emit: MetricEmit,
    /// `emit: crossing`: the value crossed.
    pub threshold: Option<f64>,
    /// `emit: crossing`: how long the value stays across before the crossing is emitted.
    #[serde(rename = "for")]
    pub hold: Option<String>,
    /// `emit: crossing`: once above, the value must fall to `threshold − hysteresis` to be below.
    pub hysteresis: Option<f64>,
    #[serde(default)]
    pub series: SeriesMode,
    #[serde(default)]
    pub empty: EmptyResult,
    /// Request headers (an `Authorization` for a Prometheus behind a proxy); values may name a
    /// secret.
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderValue>,
    /// How often to query, here or beside `prometheus:`.
    #[serde(default, deserialize_with = "optional_duration_text")]
    #[schemars(with = "Option<schema::Duration>")]
    pub every: Option<String>,
}

/// When a metric is an event: every poll, when its value changed, or when it crosses a threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MetricEmit {
    #[default]
    Always,
    Changed,
    Crossing,
}

/// One event per series, one for their sum, or one for the only series (more is an error).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SeriesMode {
    #[default]
    Each,
    Sum,
    One,
}

/// What an empty result is: an error event (default), or the value 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EmptyResult {
    #[default]
    Error,
    Zero,
}

/// MQTT topic filters, each message one event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MqttSource {
    /// `mqtt://host:1883`.
    pub url: String,
    /// Topic filters (`sensors/+/temperature`).
    pub topics: Vec<String>,
    /// The type of the events; default `mqtt.message`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The MQTT client id of a persistent session; default `vane-<source>-<instance>`, where the
    /// instance is `$VANE_INSTANCE`, else the host name: stable across restarts (the broker keeps
    /// the session's messages while the process is away), distinct between processes.
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub password: Option<SecretRef>,
    /// For `mqtts://`: the CA certificate (PEM) the broker's certificate is checked against;
    /// default: the system's trusted roots.
    pub ca_file: Option<PathBuf>,
    /// The shared-subscription group (`$share/<group>/<filter>`): the vane processes subscribed
    /// with one group get each message once between them. `false` subscribes every process to
    /// every message.
    #[serde(default = "share_group", deserialize_with = "share_setting")]
    #[schemars(schema_with = "share_schema")]
    pub share: Option<String>,
}

fn share_group() -> Option<String> {
    Some("vane".to_string())
}

/// The schema of `share:`.
fn share_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "The shared-subscription group, or `false` to get every message.",
        "anyOf": [{ "type": "boolean" }, { "type": "string", "pattern": "^[^/+#]+$" }]
    })
}

/// `share: NAME` or `share: false`.
fn share_setting<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Share {
        Enabled(bool),
        Group(String),
    }
    match Share::deserialize(deserializer)? {
        Share::Enabled(false) => Ok(None),
        Share::Enabled(true) => Ok(share_group()),
        Share::Group(group) if group.is_empty() || group.contains(['/', '+', '#']) => Err(
            serde::de::Error::custom(format!("`{group}` is not a shared-subscription group name")),
        ),
        Share::Group(group) => Ok(Some(group)),
    }
}

/// NATS subjects, each message one event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NatsSource {
    /// `nats://host:4222`.
    pub url: String,
    /// A subject, wildcards allowed (`events.>`).
    pub subject: String,
    /// The type of raw (non-envelope, non-CloudEvents) messages; default `nats.message`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Consume through this JetStream stream (a durable consumer `vane-<source>`, shared by
    /// every vane process) instead of a core NATS subscription.
    pub stream: Option<String>,
    /// The queue group of a core NATS subscription: the vane processes in one group get each
    /// message once between them. Default `vane-<source>`.
    pub queue_group: Option<String>,
}

/// `serve:` — the webhook receiver.
#[derive(Debug, Clone)]
pub struct Serve {
    pub listen: String,
    pub webhooks: Webhooks,
    /// Runs at once; default: the number of cores.
    pub workers: Option<usize>,
    /// The largest body accepted, in bytes (413 above).
    pub max_body: usize,
    /// The bearer token `POST /-/reload` takes from any address (without one: loopback only).
    pub reload_token: Option<SecretRef>,
    /// How long accepted delivery ids are remembered (a replay within it gets 200, no run).
    pub dedup_window: Duration,
    /// How long a finished run keeps its event's payload (for `history --json`, `replay`).
    pub payload_retention: Duration,
    /// Connections served at once; beyond it a new one gets 503 (default: from the fd limit).
    pub max_connections: Option<usize>,
    /// How long a connection may take to send a request's headers, or sit idle between requests.
    pub header_timeout: Duration,
}

/// A request's headers must arrive within this by default (idle keep-alive connections too).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Delivery ids are remembered this long by default: GitHub lets users redeliver for 3 days.
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// Finished runs keep their event's payload this long by default.
pub const DEFAULT_PAYLOAD_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

impl Config {
    /// The configuration of a project without a vane.yaml: nothing configured, named as the
    /// file it would be (`vane poll` still fires the workflows' schedules).
    pub fn unnamed() -> std::sync::Arc<Config> {
        std::sync::Arc::new(Config {
            file: DEFAULT_CONFIG.into(),
            ..Config::default()
        })
    }
}

impl Default for Serve {
    fn default() -> Serve {
        Serve {
            listen: DEFAULT_LISTEN.to_string(),
            webhooks: Webhooks::default(),
            workers: None,
            max_body: crate::event::DEFAULT_MAX_EVENT_SIZE,
            reload_token: None,
            dedup_window: DEFAULT_DEDUP_WINDOW,
            payload_retention: DEFAULT_PAYLOAD_RETENTION,
            max_connections: None,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
        }
    }
}

/// Where `vane serve` listens when neither `--listen` nor `serve.listen` says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The webhook endpoints; each is served only where configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Webhooks {
    pub github: Option<GithubHook>,
    pub gitlab: Option<GitlabHook>,
    pub generic: Option<GenericHook>,
    pub cloudevents: Option<CloudEventsHook>,
    pub alertmanager: Option<AlertmanagerHook>,
}

/// GitHub webhooks, verified with `X-Hub-Signature-256`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GithubHook {
    #[serde(default = "github_path")]
    pub path: String,
    pub secret: SecretRef,
}

fn github_path() -> String {
    "/hooks/github".to_string()
}

/// GitLab webhooks, verified with `X-Gitlab-Token`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GitlabHook {
    #[serde(default = "gitlab_path")]
    pub path: String,
    pub token: SecretRef,
}

fn gitlab_path() -> String {
    "/hooks/gitlab".to_string()
}

/// Any JSON webhook signed with HMAC-SHA256 in a header of your choice.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GenericHook {
    #[serde(default = "generic_path")]
    pub path: String,
    pub hmac: HmacConfig,
    /// The type of the events: bodies are then raw payloads. Without it, each body must be an
    /// envelope (`{"type": …, "data": …}`) or a CloudEvent.
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

fn generic_path() -> String {
    "/hooks/generic".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HmacConfig {
    /// The header holding the hex signature, optionally prefixed `sha256=`.
    #[serde(default = "hmac_header")]
    pub header: String,
    pub secret: SecretRef,
}

fn hmac_header() -> String {
    "X-Signature-256".to_string()
}

/// CloudEvents over HTTP (structured and binary mode), with an optional HMAC like `generic`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CloudEventsHook {
    #[serde(default = "cloudevents_path")]
    pub path: String,
    pub hmac: Option<HmacConfig>,
}

fn cloudevents_path() -> String {
    "/hooks/cloudevents".to_string()
}

/// Prometheus Alertmanager's webhook receiver (payload version 4). Alertmanager cannot sign a
/// request: it sends a bearer token or basic credentials, compared in constant time.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AlertmanagerHook {
    #[serde(default = "alertmanager_path")]
    pub path: String,
    pub auth: AlertmanagerAuth,
    #[serde(default)]
    pub split: AlertSplit,
}

fn alertmanager_path() -> String {
    "/hooks/alertmanager".to_string()
}

/// `auth:` — exactly one of `bearer` (Alertmanager's `http_config.authorization.credentials`)
/// or `basic` (`http_config.basic_auth`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(transform = schema::one_of_keys(&["bearer", "basic"]))]
pub struct AlertmanagerAuth {
    pub bearer: Option<SecretRef>,
    pub basic: Option<BasicAuth>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BasicAuth {
    pub username: String,
    pub password: SecretRef,
}

/// One event per alert of a notification (`alert`), or one per notification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AlertSplit {
    #[default]
    Alert,
    Notification,
}

/// Where accepted events wait to be run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Queue {
    /// A table in the state store: one machine, no server.
    #[default]
    Sqlite,
    /// A NATS JetStream stream shared by several vane processes.
    Nats(Box<NatsQueue>),
}

/// `queue: nats://…` with the `jetstream:` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NatsQueue {
    #[serde(skip)]
    pub url: String,
    #[serde(default = "stream_name")]
    pub stream: String,
    #[serde(default = "stream_subject")]
    pub subject: String,
    #[serde(default = "consumer_name")]
    pub consumer: String,
    /// How long a message stays with a worker that neither acks nor reports progress.
    #[serde(default = "ack_wait", deserialize_with = "duration_text")]
    #[schemars(with = "schema::Duration")]
    pub ack_wait: Duration,
    /// Deliveries of one message before it is dead.
    #[serde(default = "max_deliver")]
    pub max_deliver: i64,
    /// Where dead messages are published.
    #[serde(default = "dead_letter")]
    pub dead_letter: String,
    /// How long the stream remembers a delivery id (`Nats-Msg-Id`): a replay within it is
    /// dropped by JetStream itself.
    #[serde(default = "dedup_window", deserialize_with = "duration_text")]
    #[schemars(with = "schema::Duration")]
    pub dedup_window: Duration,
    /// The KV bucket of the pollers' cursors.
    #[serde(default = "cursor_bucket")]
    pub cursors: String,
    /// The KV bucket of the concurrency-group locks.
    #[serde(default = "lock_bucket")]
    pub locks: String,
    /// The KV bucket of the gates' state: one entry per workflow and key.
    #[serde(default = "gate_bucket")]
    pub gates: String,
    /// How long a group lock lasts unless its holder renews it (every third of it).
    #[serde(default = "lock_lease", deserialize_with = "duration_text")]
    #[schemars(with = "schema::Duration")]
    pub lock_lease: Duration,
}

fn stream_name() -> String {
    "VANE_EVENTS".to_string()
}
fn stream_subject() -> String {
    "vane.events".to_string()
}
fn consumer_name() -> String {
    "vane-workers".to_string()
}
fn ack_wait() -> Duration {
    Duration::from_secs(30)
}
fn max_deliver() -> i64 {
    5
}
fn dead_letter() -> String {
    "vane.dead".to_string()
}
fn dedup_window() -> Duration {
    Duration::from_secs(3600)
}
fn cursor_bucket() -> String {
    "vane-cursors".to_string()
}
fn lock_bucket() -> String {
    "vane-locks".to_string()
}
fn gate_bucket() -> String {
    "vane-gates".to_string()
}
fn lock_lease() -> Duration {
    Duration::from_secs(30)
}

fn duration_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = crate::duration::DurationText::deserialize(deserializer)?.0;
    crate::duration::parse_duration(&text).map_err(serde::de::Error::custom)
}

/// An optional duration kept as text (checked where its position is known).
fn optional_duration_text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(Some(
        crate::duration::DurationText::deserialize(deserializer)?.0,
    ))
}

impl NatsQueue {
    fn new(url: String) -> NatsQueue {
        NatsQueue {
            url,
            stream: stream_name(),
            subject: stream_subject(),
            consumer: consumer_name(),
            ack_wait: ack_wait(),
            max_deliver: max_deliver(),
            dead_letter: dead_letter(),
            dedup_window: dedup_window(),
            cursors: cursor_bucket(),
            locks: lock_bucket(),
            gates: gate_bucket(),
            lock_lease: lock_lease(),
        }
    }
}

/// What JetStream would refuse, found at load time: (key, problem).
impl NatsQueue {
    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        // Stream names may not hold subject tokens or path separators; bucket names are stricter.
        if self.stream.is_empty()
            || self
                .stream
                .contains(|c: char| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
        {
            problems.push((
                "stream",
                format!(
                    "`{}` is not a stream name (no `.`, `*`, `>`, `/` or spaces)",
                    self.stream
                ),
            ));
        }
        for (key, subject) in [
            ("subject", &self.subject),
            ("dead-letter", &self.dead_letter),
        ] {
            if subject.is_empty() || subject.contains(char::is_whitespace) {
                problems.push((key, format!("`{subject}` is not a subject")));
            }
        }
        for (key, bucket) in [
            ("cursors", &self.cursors),
            ("locks", &self.locks),
            ("gates", &self.gates),
        ] {
            if bucket.is_empty()
                || !bucket
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                problems.push((
                    key,
                    format!("`{bucket}` is not a KV bucket name (letters, digits, `-`, `_`)"),
                ));
            }
        }
        for (key, duration) in [
            ("ack-wait", self.ack_wait),
            ("dedup-window", self.dedup_window),
            ("lock-lease", self.lock_lease),
        ] {
            if duration < Duration::from_millis(100) {
                problems.push((key, "must be at least 100ms".to_string()));
            }
        }
        if self.max_deliver < 1 {
            problems.push(("max-deliver", "must be at least 1".to_string()));
        }
        problems
    }
}

/// What a broker would refuse in a subscription source: (key, problem).
fn subscription_problem(kind: &SourceKind) -> Option<(&'static str, String)> {
    match kind {
        SourceKind::Mqtt(mqtt) => {
            if let Err(problem) = crate::broker::parse_mqtt_url(&mqtt.url) {
                return Some(("url", problem));
            }
            if mqtt.topics.is_empty() {
                return Some(("topics", "give at least one topic filter".to_string()));
            }
            None
        }
        SourceKind::Nats(nats) => {
            if !nats.url.starts_with("nats://") && !nats.url.starts_with("tls://") {
                return Some((
                    "url",
                    format!("`{}` is not a `nats://host:port` URL", nats.url),
                ));
            }
            if nats.subject.is_empty() || nats.subject.contains(char::is_whitespace) {
                return Some(("subject", format!("`{}` is not a subject", nats.subject)));
            }
            None
        }
        _ => None,
    }
}

/// The keys of a source that say what it is: exactly one of them.
const SOURCE_KINDS: &[&str] = &[
    "git",
    "http",
    "github",
    "registry",
    "prometheus",
    "mqtt",
    "nats",
];

/// The schema of `version:` in vane.yaml.
fn config_version(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "enum": [1] })
}

/// Where the schema of vane.yaml says it lives.
pub const SCHEMA_ID: &str = "https://vane.dev/schema/config-v1.json";

/// The JSON Schema of vane.yaml (`vane schema --for config`).
pub fn json_schema() -> serde_json::Value {
    schema::root_schema::<ConfigFile>(SCHEMA_ID)
}

/// The file as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "vane configuration (vane.yaml)")]
struct ConfigFile {
    #[schemars(required, schema_with = "config_version")]
    version: Option<serde_yaml::Value>,
    /// The workflow folder (default `workflows/`), relative to this file.
    workflows: Option<PathBuf>,
    /// The template folder (default `templates/`), relative to this file.
    templates: Option<PathBuf>,
    /// The state store (default `.vane/state.db`), or `:memory:`.
    state: Option<PathBuf>,
    /// Secret name → where its value is read from.
    #[serde(default)]
    secrets: BTreeMap<String, SecretRef>,
    /// What the daemon polls or subscribes to.
    #[serde(default)]
    sources: Vec<SourceFile>,
    /// `vane serve`: the listener and its webhooks.
    serve: Option<ServeFile>,
    /// Where accepted events wait: `sqlite` (the state store, default) or `nats://host:port`.
    queue: Option<String>,
    /// The JetStream settings of `queue: nats://…`.
    jetstream: Option<NatsQueue>,
    /// How many events one input may cause through `emit` steps, in all (default 1000).
    max_emitted: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(transform = schema::one_of_keys(SOURCE_KINDS))]
struct SourceFile {
    name: String,
    /// How often to poll; default 1m.
    #[serde(default, deserialize_with = "optional_duration_text")]
    #[schemars(with = "Option<schema::Duration>")]
    every: Option<String>,
    git: Option<GitSource>,
    http: Option<HttpSource>,
    github: Option<GithubSource>,
    mqtt: Option<MqttSource>,
    nats: Option<NatsSource>,
    registry: Option<RegistrySource>,
    prometheus: Option<PrometheusSource>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ServeFile {
    /// The address to listen on (default `127.0.0.1:8080`).
    listen: Option<String>,
    #[serde(default)]
    webhooks: Webhooks,
    /// Events run at once.
    workers: Option<usize>,
    /// The largest request body accepted, in bytes.
    max_body: Option<usize>,
    /// The bearer token `POST /-/reload` requires.
    reload_token: Option<SecretRef>,
    #[serde(default, deserialize_with = "optional_duration")]
    #[schemars(with = "Option<schema::Duration>")]
    dedup_window: Option<Duration>,
    #[serde(default, deserialize_with = "optional_duration")]
    #[schemars(with = "Option<schema::Duration>")]
    payload_retention: Option<Duration>,
    max_connections: Option<usize>,
    #[serde(default, deserialize_with = "optional_duration")]
    #[schemars(with = "Option<schema::Duration>")]
    header_timeout: Option<Duration>,
}

fn optional_duration<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    duration_text(deserializer).map(Some)
}

/// The config file to read: `--config`, else `./vane.yaml` where it exists, else none.
pub fn locate_file(flag: Option<&Path>) -> Option<PathBuf> {
    match flag {
        Some(path) => Some(path.to_path_buf()),
        None => {
            let default = PathBuf::from(DEFAULT_CONFIG);
            default.is_file().then_some(default)
        }
    }
}

/// Reads and checks a config file; every problem comes back as a diagnostic.
pub fn load(path: &Path) -> Result<Config, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        vec![Diagnostic::error(
            path,
            None,
            format!("cannot read the configuration: {error}"),
        )]
    })?;
    parse(path, &text)
}

/// Checks the text of a config file read from `path`; each problem shows its line.
pub fn parse(path: &Path, text: &str) -> Result<Config, Vec<Diagnostic>> {
    check(path, text).map_err(|mut problems| {
        crate::diagnostic::attach_source(&mut problems, text);
        problems
    })
}

fn check(path: &Path, text: &str) -> Result<Config, Vec<Diagnostic>> {
    let file: ConfigFile = yaml::from_str(text)
        .map_err(|error| vec![Diagnostic::error(path, error.position, error.message)])?;
    let mut problems = Vec::new();
    let root = YamlPath::root();
    let at = |path_in_file: &YamlPath, at_key: bool| yaml::locate(text, path_in_file, at_key);
    match &file.version {
        Some(serde_yaml::Value::Number(number)) if number.as_u64() == Some(1) => {}
        Some(other) => problems.push(Diagnostic::error(
            path,
            at(&root.key("version"), false),
            format!(
                "version: this vane reads version 1 of vane.yaml, not `{}`",
                yaml::to_string(other).unwrap_or_default().trim()
            ),
        )),
        None => problems.push(Diagnostic::error(
            path,
            Some(Position::new(1, 1)),
            "missing required key `version` (this vane reads version 1)",
        )),
    }
    let folder = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let relative = |value: Option<PathBuf>| {
        value.map(|value| {
            if value.is_absolute() || value.as_os_str() == ":memory:" {
                value
            } else {
                folder.join(value)
            }
        })
    };
    for (name, secret) in &file.secrets {
        if secret.env.is_some() == secret.file.is_some() {
            problems.push(Diagnostic::error(
                path,
                at(&root.key("secrets").key(name.as_str()), true),
                format!("secrets.{name}: give exactly one of `env` or `file`"),
            ));
        }
    }
    let mut file = file;
    // A secret file named relative to vane.yaml is found next to it, wherever vane started.
    let anchor = |secret: &mut SecretRef| {
        if let Some(path) = secret.file.as_mut()
            && path.is_relative()
        {
            *path = folder.join(&*path);
        }
    };
    file.secrets.values_mut().for_each(anchor);
    for source in &mut file.sources {
        let tokens = [
            source.git.as_mut().and_then(|git| git.token.as_mut()),
            source
                .github
                .as_mut()
                .and_then(|github| github.token.as_mut()),
            source.mqtt.as_mut().and_then(|mqtt| mqtt.password.as_mut()),
        ];
        tokens.into_iter().flatten().for_each(anchor);
        if let Some(ca_file) = source.mqtt.as_mut().and_then(|mqtt| mqtt.ca_file.as_mut())
            && ca_file.is_relative()
        {
            *ca_file = folder.join(&*ca_file);
        }
        if let Some(credentials) = source
            .registry
            .as_mut()
            .and_then(|registry| registry.credentials.as_mut())
        {
            anchor(&mut credentials.password);
            if let HeaderValue::Secret(secret) = &mut credentials.username {
                anchor(secret);
            }
        }
        if let Some(prometheus) = source.prometheus.as_mut() {
            for value in prometheus.headers.values_mut() {
                if let HeaderValue::Secret(secret) = value {
                    anchor(secret);
                }
            }
        }
        if let Some(http) = source.http.as_mut() {
            for value in http.headers.values_mut() {
                if let HeaderValue::Secret(secret) = value {
                    anchor(secret);
                }
            }
        }
    }
    if let Some(serve) = file.serve.as_mut() {
        let hooks = &mut serve.webhooks;
        let (alert_bearer, alert_basic) = match hooks.alertmanager.as_mut() {
            Some(hook) => (
                hook.auth.bearer.as_mut(),
                hook.auth.basic.as_mut().map(|basic| &mut basic.password),
            ),
            None => (None, None),
        };
        let secrets = [
            hooks.github.as_mut().map(|hook| &mut hook.secret),
            hooks.gitlab.as_mut().map(|hook| &mut hook.token),
            hooks.generic.as_mut().map(|hook| &mut hook.hmac.secret),
            hooks
                .cloudevents
                .as_mut()
                .and_then(|hook| hook.hmac.as_mut())
                .map(|hmac| &mut hmac.secret),
            alert_bearer,
            alert_basic,
        ];
        secrets.into_iter().flatten().for_each(anchor);
        if let Some(hook) = &hooks.alertmanager
            && hook.auth.bearer.is_some() == hook.auth.basic.is_some()
        {
            problems.push(Diagnostic::error(
                path,
                at(
                    &root
                        .key("serve")
                        .key("webhooks")
                        .key("alertmanager")
                        .key("auth"),
                    true,
                ),
                "serve.webhooks.alertmanager.auth: give exactly one of `bearer` or `basic`",
            ));
        }
    }
    let mut sources: Vec<Source> = Vec::new();
    for (index, source) in file.sources.into_iter().enumerate() {
        let here = root.key("sources").index(index);
        let position = at(&here, false);
        if let Some(first) = sources.iter().find(|seen| seen.name == source.name) {
            problems.push(Diagnostic::error(
                path,
                at(&here.key("name"), false),
                format!(
                    "sources[{index}].name: `{}` is already the name of the source at line {}",
                    source.name,
                    first.position.map_or(0, |position| position.line)
                ),
            ));
        }
        let every_text = source.every.clone().or_else(|| {
            source
                .prometheus
                .as_ref()
                .and_then(|prometheus| prometheus.every.clone())
        });
        let every = match &every_text {
            Some(text_value) => match crate::duration::parse_duration(text_value) {
                Ok(every) if every.is_zero() => {
                    problems.push(Diagnostic::error(
                        path,
                        at(&here.key("every"), false),
                        format!("sources[{index}].every: must be more than zero"),
                    ));
                    None
                }
                Ok(every) => Some(every),
                Err(message) => {
                    problems.push(Diagnostic::error(
                        path,
                        at(&here.key("every"), false),
                        format!("sources[{index}].every: {message}"),
                    ));
                    None
                }
            },
            None => None,
        };
        let mut kinds: Vec<SourceKind> = Vec::new();
        kinds.extend(source.git.map(SourceKind::Git));
        kinds.extend(source.http.map(SourceKind::Http));
        kinds.extend(source.github.map(SourceKind::Github));
        kinds.extend(source.mqtt.map(SourceKind::Mqtt));
        kinds.extend(source.nats.map(SourceKind::Nats));
        kinds.extend(source.registry.map(SourceKind::Registry));
        kinds.extend(source.prometheus.map(SourceKind::Prometheus));
        if kinds.len() != 1 {
            problems.push(Diagnostic::error(
                path,
                position,
                format!(
                    "sources[{index}] (`{}`): give exactly one of `git`, `http`, `github`, `registry`, `prometheus`, `mqtt`, `nats`{}",
                    source.name,
                    if kinds.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; found {}",
                            kinds.iter().map(SourceKind::key).collect::<Vec<_>>().join(", ")
                        )
                    }
                ),
            ));
            continue;
        }
        let kind = kinds.remove(0);
        let subscription = subscription_problem(&kind);
        for (key, message) in check_polled(&kind).into_iter().chain(subscription) {
            problems.push(Diagnostic::error(
                path,
                at(&here.key(kind.key()).key(key), false).or(position),
                format!("sources[{index}].{}.{key}: {message}", kind.key()),
            ));
        }
        let polled = matches!(
            kind,
            SourceKind::Git(_)
                | SourceKind::Http(_)
                | SourceKind::Github(_)
                | SourceKind::Registry(_)
                | SourceKind::Prometheus(_)
        );
        if !polled && every.is_some() {
            problems.push(Diagnostic::error(
                path,
                at(&here.key("every"), true),
                format!(
                    "sources[{index}].every: a `{}` source is a subscription; it is not polled",
                    kind.key()
                ),
            ));
        }
        sources.push(Source {
            name: source.name,
            every: every.or(polled.then_some(DEFAULT_EVERY)),
            kind,
            position,
        });
    }
    let serve = match file.serve {
        Some(serve) => Serve {
            listen: serve.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            webhooks: serve.webhooks,
            workers: serve.workers,
            max_body: serve
                .max_body
                .unwrap_or(crate::event::DEFAULT_MAX_EVENT_SIZE),
            reload_token: serve.reload_token,
            dedup_window: serve.dedup_window.unwrap_or(DEFAULT_DEDUP_WINDOW),
            payload_retention: serve.payload_retention.unwrap_or(DEFAULT_PAYLOAD_RETENTION),
            max_connections: serve.max_connections,
            header_timeout: serve
                .header_timeout
                .filter(|timeout| !timeout.is_zero())
                .unwrap_or(DEFAULT_HEADER_TIMEOUT),
        },
        None => Serve::default(),
    };
    if serve.max_connections == Some(0) {
        problems.push(Diagnostic::error(
            path,
            at(&root.key("serve").key("max-connections"), false),
            "serve.max-connections: must be at least 1",
        ));
    }
    if serve.workers == Some(0) {
        problems.push(Diagnostic::error(
            path,
            at(&root.key("serve").key("workers"), false),
            "serve.workers: must be at least 1",
        ));
    }
    let queue = match file.queue.as_deref() {
        None | Some("sqlite") => {
            if file.jetstream.is_some() {
                problems.push(Diagnostic::error(
                    path,
                    at(&root.key("jetstream"), true),
                    "jetstream: only used with `queue: nats://…`",
                ));
            }
            Queue::Sqlite
        }
        Some(url) if url.starts_with("nats://") => {
            let mut settings = file
                .jetstream
                .unwrap_or_else(|| NatsQueue::new(String::new()));
            settings.url = url.to_string();
            for (key, problem) in settings.problems() {
                problems.push(Diagnostic::error(
                    path,
                    at(&root.key("jetstream").key(key), false),
                    format!("jetstream.{key}: {problem}"),
                ));
            }
            Queue::Nats(Box::new(settings))
        }
        Some(other) => {
            problems.push(Diagnostic::error(
                path,
                at(&root.key("queue"), false),
                format!("queue: `{other}` is neither `sqlite` nor a `nats://host:port` URL"),
            ));
            Queue::Sqlite
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Config {
        file: path.to_path_buf(),
        workflows: relative(file.workflows),
        templates: relative(file.templates),
        state: relative(file.state),
        secrets: file.secrets,
        sources,
        serve,
        queue,
        max_emitted: file.max_emitted,
    })
}

/// What is wrong with a polled source's settings, as (key, message): globs and JSON pointers are
/// compiled here, so that a bad one is a load error with a line, not a failure at poll time.
fn check_polled(kind: &SourceKind) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    match kind {
        SourceKind::Git(git) => {
            for (key, patterns) in [("branches", &git.branches), ("tags", &git.tags)] {
                if !patterns.is_empty()
                    && let Err(error) = crate::glob::PatternList::new(patterns)
                {
                    problems.push((key, error.to_string()));
                }
            }
            if git.branches.is_empty() && git.tags.is_empty() {
                problems.push((
                    "branches",
                    "give `branches` or `tags` (or both): without them nothing is watched"
                        .to_string(),
                ));
            }
        }
        SourceKind::Http(http) => {
            if let Some(pointer) = &http.pointer
                && !pointer.is_empty()
                && !pointer.starts_with('/')
            {
                problems.push((
                    "pointer",
                    format!("`{pointer}` is not a JSON pointer (they start with `/`)"),
                ));
            }
            if !http.url.starts_with("http://") && !http.url.starts_with("https://") {
                problems.push(("url", format!("`{}` is not an http(s) URL", http.url)));
            }
        }
        SourceKind::Github(github) => {
            if github
                .repo
                .split('/')
                .filter(|part| !part.is_empty())
                .count()
                != 2
            {
                problems.push(("repo", format!("`{}` is not `owner/name`", github.repo)));
            }
            for event in &github.events {
                if !matches!(event.as_str(), "workflow_run" | "check_run") {
                    problems.push((
                        "events",
                        format!("`{event}` cannot be polled; the API polls `workflow_run` and `check_run`"),
                    ));
                }
            }
            if github.events.is_empty() {
                problems.push(("events", "name at least one: `[workflow_run]`".to_string()));
            }
            let checks = github.events.iter().any(|event| event == "check_run");
            if checks && github.branches.is_empty() {
                problems.push((
                    "branches",
                    "`check_run` polls the check runs of these branches' head commits; name at \
                     least one"
                        .to_string(),
                ));
            }
            if !checks && !github.branches.is_empty() {
                problems.push((
                    "branches",
                    "only used with `check_run` in `events`".to_string(),
                ));
            }
        }
        SourceKind::Registry(registry) => {
            problems.extend(crate::sources::registry::check(registry));
        }
        SourceKind::Prometheus(prometheus) => {
            problems.extend(crate::sources::prometheus::check(prometheus));
        }
        SourceKind::Mqtt(_) | SourceKind::Nats(_) => {}
    }
    problems
}

/// How often a poller polls when its source does not say.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(60);

impl Config {
    /// The value of a secret the config declares; `None` for a name it does not declare.
    pub fn secret(&self, name: &str) -> Option<Result<String, String>> {
        self.secrets.get(name).map(SecretRef::resolve)
    }

    /// The source called `name`.
    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|source| source.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Config, Vec<String>> {
        parse(Path::new("conf/vane.yaml"), text).map_err(|problems| {
            problems
                .iter()
                .map(|problem| {
                    format!(
                        "{}:{}: {}",
                        problem.line_col().0,
                        problem.line_col().1,
                        problem.message
                    )
                })
                .collect()
        })
    }

    #[test]
    fn the_spec_example_loads() {
        let config = parsed(
            r#"version: 1
workflows: workflows
templates: templates
state: .vane/state.db
secrets:
  SLACK_WEBHOOK: { env: SLACK_WEBHOOK }
sources:
  - name: api-repo
    git: { url: https://github.com/acme/api.git, branches: [main], tags: ["v*"] }
    every: 1m
  - name: api-latency
    http: { url: "http://127.0.0.1:9090/api/v1/query?query=up", type: metric, emit: changed }
    every: 30s
  - name: ci
    github: { repo: acme/api, events: [workflow_run], token: { env: GITHUB_TOKEN } }
    every: 2m
  - name: sensors
    mqtt: { url: mqtt://127.0.0.1:1883, topics: ["sensors/+/temperature"] }
  - name: bus
    nats: { url: nats://127.0.0.1:4222, subject: "events.>" }
serve:
  listen: 127.0.0.1:8080
  webhooks:
    github: { path: /hooks/github, secret: { env: GITHUB_WEBHOOK_SECRET } }
    gitlab: { path: /hooks/gitlab, token: { env: GITLAB_WEBHOOK_TOKEN } }
    generic: { path: /hooks/generic, hmac: { header: X-Signature-256, secret: { env: HOOK_SECRET } } }
  workers: 4
queue: sqlite
"#,
        )
        .unwrap();
        assert_eq!(config.workflows, Some(PathBuf::from("conf/workflows")));
        assert_eq!(config.state, Some(PathBuf::from("conf/.vane/state.db")));
        assert_eq!(config.sources.len(), 5);
        assert_eq!(config.sources[0].every, Some(Duration::from_secs(60)));
        assert_eq!(config.sources[1].every, Some(Duration::from_secs(30)));
        assert!(matches!(config.sources[3].kind, SourceKind::Mqtt(_)));
        assert_eq!(config.sources[3].every, None);
        assert_eq!(config.serve.workers, Some(4));
        assert_eq!(
            config.serve.webhooks.github.as_ref().unwrap().path,
            "/hooks/github"
        );
        assert_eq!(config.queue, Queue::Sqlite);
    }

    #[test]
    fn unknown_keys_are_placed_and_suggested() {
        let problems =
            parsed("version: 1\nsources:\n  - name: a\n    gti: { url: x }\n").unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("4:5: "), "{problems:?}");
        assert!(problems[0].contains("did you mean `git`"), "{problems:?}");
    }

    #[test]
    fn every_problem_is_reported_at_its_line() {
        let problems = parsed(
            "version: 2\nsources:\n  - name: a\n    every: soon\n    git: { url: x }\n  - name: a\n    http: { url: x, type: t }\n    git: { url: y }\n  - name: m\n    every: 1m\n    mqtt: { url: mqtt://h, topics: [t] }\nqueue: redis://x\n",
        )
        .unwrap_err();
        let joined = problems.join("\n");
        assert!(joined.contains("1:10: version"), "{joined}");
        assert!(joined.contains("4:12: sources[0].every"), "{joined}");
        assert!(joined.contains("6:11: sources[1].name"), "{joined}");
        assert!(
            joined.contains("sources[1] (`a`): give exactly one"),
            "{joined}"
        );
        assert!(
            joined.contains("found git, http") || joined.contains("found http, git"),
            "{joined}"
        );
        assert!(joined.contains("10:5: sources[2].every"), "{joined}");
        assert!(joined.contains("12:8: queue"), "{joined}");
    }

    #[test]
    fn polled_sources_are_checked_at_load() {
        let problems = parsed(
            "version: 1\nsources:\n  - name: repo\n    git: { url: x, branches: [\"!main\"] }\n  - name: none\n    git: { url: x }\n  - name: api\n    http: { url: ftp://x, type: t, pointer: data }\n  - name: ci\n    github: { repo: acme, events: [check_run, push] }\n",
        )
        .unwrap_err();
        let joined = problems.join("\n");
        assert!(joined.contains("4:30: sources[0].git.branches"), "{joined}");
        assert!(
            joined.contains("sources[1].git.branches: give `branches` or `tags`"),
            "{joined}"
        );
        assert!(
            joined.contains("sources[2].http.pointer: `data` is not a JSON pointer"),
            "{joined}"
        );
        assert!(joined.contains("sources[2].http.url"), "{joined}");
        assert!(
            joined.contains("sources[3].github.repo: `acme`"),
            "{joined}"
        );
        assert!(
            joined.contains("sources[3].github.branches: `check_run` polls"),
            "{joined}"
        );
        assert!(joined.contains("`push` cannot be polled"), "{joined}");
    }

    #[test]
    fn registry_sources_are_compiled_at_load() {
        let config = parsed(
            "version: 1\nsources:\n  - name: api-image\n    every: 5m\n    registry:\n      image: ghcr.io/acme/api\n      policy: { semver: \">=1.4.0 <2\" }\n      tags: { include: \"^v?(?P<version>[0-9.]+(-rc\\\\.[0-9]+)?)$\", extract: \"$version\", exclude: [\"\\\\.sig$\"] }\n      digest: true\n      credentials: { username: { env: REG_USER }, password: { file: token } }\n",
        )
        .unwrap();
        let SourceKind::Registry(registry) = &config.sources[0].kind else {
            panic!("not a registry source");
        };
        assert_eq!(config.sources[0].every, Some(Duration::from_secs(300)));
        assert!(registry.digest);
        assert_eq!(registry.max_tags, 10_000);
        assert_eq!(
            registry.credentials.as_ref().unwrap().password.file,
            Some(PathBuf::from("conf/token"))
        );
        let problems = parsed(
            "version: 1\nsources:\n  - name: a\n    registry:\n      image: ghcr.io/acme/api:1.0\n      policy: { semver: \">=one\" }\n      tags: { include: \"^(?P<v>.*)$\", extract: \"$version\" }\n      every: 5m\n",
        )
        .unwrap_err();
        let joined = problems.join("\n");
        assert!(
            joined.contains("5:14: sources[0].registry.image: `ghcr.io/acme/api:1.0`"),
            "{joined}"
        );
        assert!(
            joined.contains("6:15: sources[0].registry.policy: semver: `>=one`"),
            "{joined}"
        );
        assert!(
            joined.contains(
                "sources[0].registry.tags: extract: `$version` names the group `version`"
            ),
            "{joined}"
        );
        assert!(
            joined.contains("sources[0].registry.every: `every` goes beside `registry:`"),
            "{joined}"
        );
    }

    #[test]
    fn a_nats_queue_takes_its_jetstream_settings() {
        let config = parsed(
            "version: 1\nqueue: nats://127.0.0.1:4222\njetstream: { stream: S, ack-wait: 5s }\n",
        )
        .unwrap();
        let Queue::Nats(queue) = config.queue else {
            panic!("not nats");
        };
        assert_eq!(queue.url, "nats://127.0.0.1:4222");
        assert_eq!(queue.stream, "S");
        assert_eq!(queue.ack_wait, Duration::from_secs(5));
        assert_eq!(queue.consumer, "vane-workers");
    }

    #[test]
    fn jetstream_and_subscription_settings_are_checked_at_load() {
        let problems = parsed(
            "version: 1\nsources:\n  - name: s\n    mqtt: { url: ssl://h, topics: [t] }\n  - name: n\n    nats: { url: nats://h, subject: \"\" }\nqueue: nats://127.0.0.1:4222\njetstream: { stream: a.b, max-deliver: 0, locks: \"x y\", ack-wait: 0s }\n",
        )
        .unwrap_err();
        let joined = problems.join("\n");
        assert!(joined.contains("sources[0].mqtt.url"), "{joined}");
        assert!(joined.contains("sources[1].nats.subject"), "{joined}");
        assert!(joined.contains("jetstream.stream"), "{joined}");
        assert!(joined.contains("jetstream.max-deliver"), "{joined}");
        assert!(joined.contains("jetstream.locks"), "{joined}");
        assert!(joined.contains("jetstream.ack-wait"), "{joined}");
        let config = parsed(
            "version: 1\nsources:\n  - name: s\n    mqtt: { url: mqtt://h, topics: [t], share: false }\n  - name: t\n    mqtt: { url: mqtt://h:1884, topics: [t] }\n",
        )
        .unwrap();
        let shares: Vec<Option<String>> = config
            .sources
            .iter()
            .map(|source| match &source.kind {
                SourceKind::Mqtt(mqtt) => mqtt.share.clone(),
                _ => None,
            })
            .collect();
        assert_eq!(shares, vec![None, Some("vane".to_string())]);
    }

    #[test]
    fn secrets_come_from_the_environment_or_a_file_never_both() {
        let problems = parsed("version: 1\nsecrets:\n  A: { env: X, file: /y }\n").unwrap_err();
        assert!(problems[0].starts_with("3:3: secrets.A"), "{problems:?}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret\n").unwrap();
        let secret = SecretRef {
            env: None,
            file: Some(file),
        };
        assert_eq!(secret.resolve().unwrap(), "s3cret");
        let missing = SecretRef {
            env: Some("VANE_TEST_SURELY_UNSET".into()),
            file: None,
        };
        assert!(
            missing
                .resolve()
                .unwrap_err()
                .contains("VANE_TEST_SURELY_UNSET")
        );
    }
}
