//! The `notify:` step: turns a rendered step config into the exact HTTP request each target expects.
//!
//! This module is pure. It validates the config and builds an [`OutgoingRequest`] (method, URL,
//! headers, JSON body); sending it, retrying and logging belong to the caller. Every body is
//! built as a `serde_json::Value`, never by string concatenation, so quotes, newlines and
//! unicode in user text always come out as valid JSON.
//!
//! Each target gets its own documented payload shape:
//!
//! - `slack`: an incoming-webhook message with Block Kit `blocks` and one coloured attachment.
//! - `discord`: an execute-webhook message with one embed.
//! - `teams`: a Workflows / incoming-webhook `message` carrying one Adaptive Card.
//! - `webhook`: a plain JSON document `{"text", "title", "severity", "fields"}`.
//! - `github`: a commit status or an issue / pull-request comment through the REST API.
//!
//! Service limits are applied here (truncating with `…`), because an over-long field makes the
//! whole request fail with a 400 and the notification is lost.

use super::{
    Compiled, CompiledStep, Outputs, StepContext, StepError, StepKind, StepSite, StepSuccess,
};
use crate::template::{TemplateTree, TreeError, TreeMode};
use crate::yaml::YamlError;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// GitHub's public REST endpoint; GitHub Enterprise Server users set `api-url` instead.
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";

/// The `context` a commit status gets when the step does not name one.
pub const DEFAULT_STATUS_CONTEXT: &str = "vane";

/// The REST API version pinned in `X-GitHub-Api-Version`.
const GITHUB_API_VERSION: &str = "2022-11-28";

/// Every target key, in the order they are checked and reported.
const TARGET_KEYS: [&str; 5] = ["slack", "discord", "teams", "webhook", "github"];

/// The commit states GitHub accepts for `POST /repos/{repo}/statuses/{sha}`.
pub(crate) const GITHUB_STATES: [&str; 4] = ["error", "failure", "pending", "success"];

// Slack Block Kit limits (docs.slack.dev, "Header block" and "Section block"; chat.postMessage).
/// A header block's `plain_text` is at most 150 characters.
const SLACK_HEADER_MAX: usize = 150;
/// A section block's `text` is at most 3000 characters.
const SLACK_SECTION_TEXT_MAX: usize = 3000;
/// A section block holds at most 10 `fields`.
const SLACK_FIELDS_PER_SECTION: usize = 10;
/// Each section field's text is at most 2000 characters.
const SLACK_FIELD_TEXT_MAX: usize = 2000;
/// A message holds at most 50 blocks.
const SLACK_MAX_BLOCKS: usize = 50;
/// Slack truncates a message's top-level `text` after 40,000 characters.
const SLACK_TEXT_MAX: usize = 40_000;
/// How much of a field's 2000 characters the `*Key*` part may take.
const SLACK_FIELD_KEY_MAX: usize = 300;

// Discord embed limits (discord.com/developers/docs/resources/message#embed-object-embed-limits).
/// An embed title is at most 256 characters.
const DISCORD_TITLE_MAX: usize = 256;
/// An embed description is at most 4096 characters.
const DISCORD_DESCRIPTION_MAX: usize = 4096;
/// An embed has at most 25 fields.
const DISCORD_MAX_FIELDS: usize = 25;
/// A field name is at most 256 characters.
const DISCORD_FIELD_NAME_MAX: usize = 256;
/// A field value is at most 1024 characters.
const DISCORD_FIELD_VALUE_MAX: usize = 1024;
/// Title, description, field names and values together are at most 6000 characters.
const DISCORD_TOTAL_MAX: usize = 6000;

// GitHub limits (the REST API answers 422 beyond these).
/// A commit status `description` is at most 140 characters.
const GITHUB_DESCRIPTION_MAX: usize = 140;
/// An issue comment `body` is at most 65536 characters.
const GITHUB_COMMENT_MAX: usize = 65_536;

/// Room kept for the "… N more" marker field when fields have to be dropped.
const MORE_MARKER_RESERVE: usize = 40;

/// `notify:` as written in a workflow (after rendering).
///
/// The keys of a `notify` step besides the common ones.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyKeys {
    /// A message to one target: Slack, Discord, Teams, a webhook or GitHub.
    #[schemars(with = "Option<NotifyConfig>")]
    pub notify: Option<Value>,
}

/// The `notify` step kind.
pub struct NotifyKind;

impl StepKind for NotifyKind {
    fn key(&self) -> &'static str {
        "notify"
    }

    fn schema(&self, generator: &mut SchemaGenerator) -> Schema {
        NotifyKeys::json_schema(generator)
    }

    /// The shape, the one target and (where nothing is templated) the GitHub state are checked
    /// at load; what depends on rendered values waits for the run.
    fn compile(&self, keys: serde_yaml::Value, site: &StepSite) -> Result<Compiled, YamlError> {
        let keys: NotifyKeys = site.keys(keys)?;
        let value = keys.notify.unwrap_or(Value::Null);
        let path = site.key("notify");
        let notify: Option<NotifyConfig> = site.check_shape(&value, &path)?;
        match notify.map(|notify| notify.validate()).unwrap_or(Ok(())) {
            Err(error @ (NotifyError::TargetCount { .. } | NotifyError::GithubAction { .. })) => {
                return Err(site.at("notify", error.to_string()));
            }
            Err(error @ NotifyError::InvalidState(_))
                if !crate::template::is_template(&value.to_string()) =>
            {
                return Err(site.at("notify", error.to_string()));
            }
            _ => {}
        }
        Ok(Compiled::new(NotifyStep(site.tree(
            &value,
            TreeMode::Text,
            &path,
        )?)))
    }
}

/// A compiled `notify` step: the message and its target, every string a template.
#[derive(Debug)]
struct NotifyStep(TemplateTree);

impl NotifyStep {
    fn defaults<'a>(context: &StepContext<'a>) -> EventDefaults<'a> {
        EventDefaults {
            repo: context.event.repo.as_deref(),
            sha: context.event.sha.as_deref(),
        }
    }
}

impl CompiledStep for NotifyStep {
    fn render(&self, context: &minijinja::Value) -> Result<Value, TreeError> {
        Ok(super::keyed("notify", self.0.render(context)?))
    }

    /// A Slack, Discord or Teams webhook URL is the credential itself: it is masked like a secret.
    fn secrets(&self, rendered: &Value) -> Vec<String> {
        super::typed::<NotifyConfig>("notify", &rendered["notify"])
            .map(|config| config.secrets())
            .unwrap_or_default()
    }

    /// The request is built (which checks the target and the message) but not sent.
    fn plan(&self, rendered: &Value, context: &StepContext) -> Result<StepSuccess, StepError> {
        let config: NotifyConfig = super::typed("notify", &rendered["notify"])?;
        match config.build_request(&NotifyStep::defaults(context)) {
            // A secret the plan does not have renders as `***`, which is no URL or token; the
            // real value is checked when the step runs.
            Err(_) if rendered.to_string().contains(crate::secrets::MASK) => {}
            Err(error) => return Err(StepError::new(error.to_string())),
            Ok(_) => {}
        }
        Ok(StepSuccess::default())
    }

    fn execute(&self, rendered: &Value, context: &StepContext) -> Result<StepSuccess, StepError> {
        let config: NotifyConfig = super::typed("notify", &rendered["notify"])?;
        let outgoing = config
            .build_request(&NotifyStep::defaults(context))
            .map_err(|error| StepError::new(error.to_string()))?;
        let request = super::http::Request {
            method: outgoing.method,
            url: outgoing.url,
            headers: outgoing.headers,
            body: Some(super::http::RequestBody::Json(outgoing.body)),
            timeout: context.timeout.min(Duration::from_secs(30)),
        };
        let mut success = super::http::send(request, &[(200, 299)])?;
        // Services answer with their own bodies; `status` is the output SPEC promises.
        success.outputs.retain(|name, _| name == "status");
        Ok(success)
    }

    /// The response status.
    fn summary(&self, outputs: &Outputs) -> Option<String> {
        super::status_summary(outputs)
    }
}

/// Exactly one of `slack`, `discord`, `teams`, `webhook`, `github` must be set; see
/// [`NotifyConfig::validate`].
#[derive(Debug, Clone, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(
    description = "A message to exactly one target: `slack`, `discord`, `teams`, `webhook` or `github`.",
    transform = crate::workflow::schema::one_of_keys(&TARGET_KEYS)
)]
pub struct NotifyConfig {
    /// Post to a Slack incoming webhook.
    pub slack: Option<SlackTarget>,
    /// Post to a Discord channel webhook.
    pub discord: Option<DiscordTarget>,
    /// Post to a Microsoft Teams Workflows (or legacy incoming) webhook.
    pub teams: Option<TeamsTarget>,
    /// POST a plain JSON document to any URL.
    pub webhook: Option<WebhookTarget>,
    /// Set a commit status or add a comment through the GitHub REST API.
    pub github: Option<GithubTarget>,
    /// The message. Slack reads it as `mrkdwn`, Discord and Teams as their Markdown subset.
    pub text: String,
    /// An optional heading shown above the text.
    pub title: Option<String>,
    /// How the message is coloured; `info` when not set.
    #[serde(default)]
    #[schemars(with = "SeveritySchema")]
    pub severity: Severity,
    /// Key/value pairs shown as a table, in the order written. Non-string values are shown
    /// as their JSON text (`3`, `true`); `null` is shown as an empty value.
    #[serde(default)]
    pub fields: Map<String, Value>,
}

/// `notify.slack`: a Slack incoming webhook.
#[derive(Debug, Clone, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SlackTarget {
    /// The webhook URL (`https://hooks.slack.com/services/…`). The URL itself is the credential.
    pub webhook: String,
}

/// `notify.discord`: a Discord channel webhook.
#[derive(Debug, Clone, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DiscordTarget {
    /// The webhook URL (`https://discord.com/api/webhooks/…`). The URL itself is the credential.
    pub webhook: String,
}

/// `notify.teams`: a Microsoft Teams Workflows or incoming webhook.
#[derive(Debug, Clone, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TeamsTarget {
    /// The webhook URL. The URL itself is the credential.
    pub webhook: String,
}

/// `notify.webhook`: any HTTP endpoint that takes JSON.
#[derive(Debug, Clone, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WebhookTarget {
    /// Where the JSON document is POSTed.
    pub url: String,
    /// Extra request headers, in the order written. Non-string values are sent as their JSON
    /// text. A `Content-Type` here replaces the default `application/json`.
    #[serde(default)]
    pub headers: Map<String, Value>,
}

/// `notify.github`: the GitHub REST API (github.com or GitHub Enterprise Server).
#[derive(Debug, Clone, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(
    description = "The GitHub REST API (github.com or GitHub Enterprise Server): `status` or `comment`.",
    transform = crate::workflow::schema::one_of_keys(&["status", "comment"])
)]
pub struct GithubTarget {
    /// Set a commit status.
    pub status: Option<GithubStatus>,
    /// Comment on an issue or pull request.
    pub comment: Option<GithubComment>,
    /// Sent as `Authorization: Bearer <token>`; no `Authorization` header when unset or empty.
    pub token: Option<String>,
    /// The API root; [`DEFAULT_GITHUB_API_URL`] when unset. A trailing `/` is ignored.
    #[schemars(
        description = "The API root, `https://api.github.com` when unset; set it for GitHub Enterprise Server. A trailing `/` is ignored."
    )]
    pub api_url: Option<String>,
    /// `owner/name`; when unset, the repository of the triggering event.
    pub repo: Option<String>,
    /// The commit a status is set on; when unset, the commit of the triggering event.
    pub sha: Option<String>,
}

/// `notify.github.status`: the body of `POST /repos/{repo}/statuses/{sha}`.
#[derive(Debug, Clone, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(description = "Set a commit status (`POST /repos/{repo}/statuses/{sha}`).")]
pub struct GithubStatus {
    /// One of `error`, `failure`, `pending`, `success`.
    #[schemars(with = "CommitStateSchema")]
    pub state: String,
    /// The label the status appears under; [`DEFAULT_STATUS_CONTEXT`] when unset.
    #[schemars(description = "The label the status appears under; `vane` when unset.")]
    pub context: Option<String>,
    /// A short description (GitHub keeps 140 characters); the step's `text` when unset.
    pub description: Option<String>,
    /// The link the status's "Details" points to.
    pub target_url: Option<String>,
}

/// `notify.github.comment`: the body of `POST /repos/{repo}/issues/{issue}/comments`.
#[derive(Debug, Clone, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(
    description = "Comment on an issue or pull request (`POST /repos/{repo}/issues/{issue}/comments`)."
)]
pub struct GithubComment {
    /// The issue or pull-request number. A numeric string (as templates render) is accepted.
    #[serde(deserialize_with = "issue_number")]
    #[schemars(with = "IssueNumberSchema")]
    pub issue: u64,
    /// The comment (GitHub Markdown); the step's `text` when unset.
    pub body: Option<String>,
}

/// How serious a notification is; picks the colour on Slack, Discord and Teams.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Neutral news (blue).
    #[default]
    Info,
    /// Something worked (green).
    Success,
    /// Something needs a look (amber).
    Warning,
    /// Something failed (red).
    Error,
}

impl Severity {
    /// The name as written in YAML: `info`, `success`, `warning`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Success => "success",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// The colour as `#RRGGBB`, as Slack attachments take it.
    ///
    /// Success, warning and error are the hex values of Slack's own `good`, `warning` and
    /// `danger` attachment colours, so messages look native there; info is the blue of
    /// Slack's attachment examples.
    pub fn color_hex(self) -> &'static str {
        match self {
            Severity::Info => "#439FE0",
            Severity::Success => "#2EB886",
            Severity::Warning => "#DAA038",
            Severity::Error => "#A30200",
        }
    }

    /// The same colour as a `0xRRGGBB` integer, as Discord embeds take it.
    pub fn color_rgb(self) -> u32 {
        match self {
            Severity::Info => 0x43_9F_E0,
            Severity::Success => 0x2E_B8_86,
            Severity::Warning => 0xDA_A0_38,
            Severity::Error => 0xA3_02_00,
        }
    }

    /// The Adaptive Card `TextBlock` colour name: `default`, `good`, `warning`, `attention`.
    /// Teams themes these itself, so the card stays readable in light, dark and high contrast.
    pub fn teams_color(self) -> &'static str {
        match self {
            Severity::Info => "default",
            Severity::Success => "good",
            Severity::Warning => "warning",
            Severity::Error => "attention",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the event says, used where the target does not name repo/sha.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventDefaults<'a> {
    /// `owner/name` of the repository the event came from.
    pub repo: Option<&'a str>,
    /// The commit the event is about.
    pub sha: Option<&'a str>,
}

/// One request ready to send.
///
/// `headers` is complete (including `Content-Type`), and `body` is to be sent serialized as
/// JSON. Header values that carry credentials are recognised by
/// [`OutgoingRequest::is_sensitive_header`], so the sender can mask them in logs (or log
/// [`OutgoingRequest::redacted`]); [`NotifyConfig::secrets`] also lists webhook URLs, which
/// are credentials themselves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutgoingRequest {
    /// The HTTP method; always `POST` today.
    pub method: String,
    /// The full URL.
    pub url: String,
    /// Header names and values, in sending order.
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: Value,
}

impl OutgoingRequest {
    /// The value written in place of a credential by [`OutgoingRequest::redacted`].
    pub const MASK: &'static str = "***";

    /// Whether a header with this name carries a credential and must be masked in logs.
    ///
    /// Errs on the side of masking: any name mentioning auth, token, secret, key, password,
    /// signature, credential, session or cookie counts (`Authorization`, `X-Api-Key`, …).
    pub fn is_sensitive_header(name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        [
            "auth",
            "token",
            "secret",
            "key",
            "password",
            "passwd",
            "signature",
            "credential",
            "session",
            "cookie",
        ]
        .iter()
        .any(|word| name.contains(word))
    }

    /// The header values that are credentials, for a log masker.
    pub fn sensitive_values(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(name, value)| Self::is_sensitive_header(name) && !value.is_empty())
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// A copy safe to log: credential header values replaced by [`OutgoingRequest::MASK`].
    /// The URL is kept; mask it with [`NotifyConfig::secrets`] when it is a webhook URL.
    pub fn redacted(&self) -> OutgoingRequest {
        let mut copy = self.clone();
        for (name, value) in &mut copy.headers {
            if Self::is_sensitive_header(name) {
                *value = Self::MASK.to_string();
            }
        }
        copy
    }
}

/// Why a `notify:` step cannot be turned into a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// None, or more than one, of the target keys is set.
    #[error(
        "notify needs exactly one target (`slack`, `discord`, `teams`, `webhook`, `github`), found {}",
        found_list(.found)
    )]
    TargetCount {
        /// The target keys that were set.
        found: Vec<&'static str>,
    },
    /// `github` has neither, or both, of `status` and `comment`.
    #[error("notify `github` needs exactly one of `status`, `comment`, found {}", found_list(.found))]
    GithubAction {
        /// The keys that were set.
        found: Vec<&'static str>,
    },
    /// `github.status.state` is not one GitHub accepts.
    #[error(
        "github status `state` must be one of `error`, `failure`, `pending`, `success`, found `{0}`"
    )]
    InvalidState(String),
    /// `text` is empty or only whitespace; every service rejects an empty message.
    #[error("notify `text` is empty")]
    EmptyText,
    /// A URL is not `http://` or `https://`. The URL is not repeated: webhook URLs are secrets.
    #[error("notify `{key}` must be an `http://` or `https://` URL")]
    InvalidUrl {
        /// Where the URL was set, e.g. `slack.webhook`.
        key: &'static str,
    },
    /// A `webhook.headers` name is not a valid HTTP header name.
    #[error("notify `webhook.headers` has an invalid header name `{0}`")]
    InvalidHeaderName(String),
    /// A `webhook.headers` value holds a line break or control character. The value is not
    /// repeated: it may be a credential.
    #[error("notify `webhook.headers` value of `{0}` contains a line break or control character")]
    InvalidHeaderValue(String),
    /// No repository in the step nor in the event.
    #[error("github {action} needs a repository: set `repo` or use an event with one")]
    MissingRepo {
        /// `status` or `comment`.
        action: &'static str,
    },
    /// No commit in the step nor in the event.
    #[error("github status needs a commit: set `sha` or use an event with one")]
    MissingSha,
    /// The repository is not `owner/name`.
    #[error("github `repo` must look like `owner/name`, found `{0}`")]
    InvalidRepo(String),
    /// The commit is not a hexadecimal commit id.
    #[error("github `sha` must be a hexadecimal commit id, found `{0}`")]
    InvalidSha(String),
    /// `github.comment.issue` is 0.
    #[error("github comment `issue` must be a positive number, found `0`")]
    InvalidIssue,
}

/// "`a`, `b`" or "none", for error messages.
fn found_list(found: &[&str]) -> String {
    if found.is_empty() {
        "none".to_string()
    } else {
        found
            .iter()
            .map(|key| format!("`{key}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl NotifyConfig {
    /// The target's name: `slack`, `discord`, `teams`, `webhook`, `github-status` or
    /// `github-comment`.
    ///
    /// On a config that fails [`NotifyConfig::validate`] this names the first target set (and
    /// `github` when it has neither or both actions), or `none` when no target is set.
    pub fn target_name(&self) -> &'static str {
        match self.targets_set().first() {
            Some(&"github") => match self.github.as_ref().map(|g| (&g.status, &g.comment)) {
                Some((Some(_), None)) => "github-status",
                Some((None, Some(_))) => "github-comment",
                _ => "github",
            },
            Some(name) => name,
            None => "none",
        }
    }

    /// Checks what can be checked without the event: exactly one target; for `github`,
    /// exactly one of `status` / `comment`, a valid `state`, a positive `issue`, and the
    /// form of an explicit `repo` / `sha`; a non-empty `text`; URLs and header syntax.
    pub fn validate(&self) -> Result<(), NotifyError> {
        let found = self.targets_set();
        if found.len() != 1 {
            return Err(NotifyError::TargetCount { found });
        }
        if self.text.trim().is_empty() {
            return Err(NotifyError::EmptyText);
        }
        if let Some(slack) = &self.slack {
            check_url(&slack.webhook, "slack.webhook")?;
        }
        if let Some(discord) = &self.discord {
            check_url(&discord.webhook, "discord.webhook")?;
        }
        if let Some(teams) = &self.teams {
            check_url(&teams.webhook, "teams.webhook")?;
        }
        if let Some(webhook) = &self.webhook {
            check_url(&webhook.url, "webhook.url")?;
            for (name, value) in &webhook.headers {
                check_header(name, &value_text(value))?;
            }
        }
        if let Some(github) = &self.github {
            validate_github(github)?;
        }
        Ok(())
    }

    /// Validates, then builds the request for the one target, taking `repo` / `sha` from
    /// `defaults` where the `github` target does not set them.
    pub fn build_request(&self, defaults: &EventDefaults) -> Result<OutgoingRequest, NotifyError> {
        self.validate()?;
        if let Some(slack) = &self.slack {
            return Ok(json_post(&slack.webhook, Vec::new(), self.slack_body()));
        }
        if let Some(discord) = &self.discord {
            return Ok(json_post(&discord.webhook, Vec::new(), self.discord_body()));
        }
        if let Some(teams) = &self.teams {
            return Ok(json_post(&teams.webhook, Vec::new(), self.teams_body()));
        }
        if let Some(webhook) = &self.webhook {
            return Ok(self.webhook_request(webhook));
        }
        match &self.github {
            Some(github) => self.github_request(github, defaults),
            // validate() has just checked that exactly one target is set.
            None => Err(NotifyError::TargetCount { found: Vec::new() }),
        }
    }

    /// Values that must be masked wherever this step is logged: the Slack / Discord / Teams
    /// webhook URL (the URL is the credential), the GitHub token, and `webhook.headers`
    /// values whose names [`OutgoingRequest::is_sensitive_header`] flags.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = Vec::new();
        let urls = [
            self.slack.as_ref().map(|t| &t.webhook),
            self.discord.as_ref().map(|t| &t.webhook),
            self.teams.as_ref().map(|t| &t.webhook),
        ];
        secrets.extend(urls.into_iter().flatten().map(|url| url.trim().to_string()));
        if let Some(token) = self.github.as_ref().and_then(|g| non_empty(&g.token)) {
            secrets.push(token.to_string());
        }
        if let Some(webhook) = &self.webhook {
            for (name, value) in &webhook.headers {
                if OutgoingRequest::is_sensitive_header(name) {
                    secrets.push(value_text(value));
                }
            }
        }
        secrets.retain(|s| !s.is_empty());
        secrets
    }

    /// The target keys that are set, in [`TARGET_KEYS`] order.
    fn targets_set(&self) -> Vec<&'static str> {
        let set = [
            self.slack.is_some(),
            self.discord.is_some(),
            self.teams.is_some(),
            self.webhook.is_some(),
            self.github.is_some(),
        ];
        TARGET_KEYS
            .iter()
            .zip(set)
            .filter(|(_, is_set)| *is_set)
            .map(|(key, _)| *key)
            .collect()
    }

    /// The title, unless unset or blank (a template that rendered to nothing).
    fn title(&self) -> Option<&str> {
        non_empty(&self.title)
    }

    /// The fields as display strings, in order.
    fn field_pairs(&self) -> Vec<(String, String)> {
        self.fields
            .iter()
            .map(|(key, value)| (key.clone(), value_text(value)))
            .collect()
    }

    /// Slack incoming webhook: `text` as the notification fallback, Block Kit `blocks`
    /// (header, text section, field sections), and one attachment carrying the severity
    /// colour, because a coloured bar is only available on attachments.
    fn slack_body(&self) -> Value {
        let mut blocks = Vec::new();
        if let Some(title) = self.title() {
            blocks.push(json!({
                "type": "header",
                "text": {"type": "plain_text", "text": clip(title, SLACK_HEADER_MAX), "emoji": true},
            }));
        }
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": clip(&self.text, SLACK_SECTION_TEXT_MAX)},
        }));
        // Whatever the header and text left of the 50-block budget goes to field sections.
        let max_fields = (SLACK_MAX_BLOCKS - blocks.len()) * SLACK_FIELDS_PER_SECTION;
        let fields = cap_fields(self.field_pairs(), max_fields, usize::MAX, |_, _| 0);
        let texts: Vec<Value> = fields
            .iter()
            .map(|(key, value)| {
                // Field keys and values are data (branch names, image tags), so the three
                // characters Slack treats as markup are escaped, as its docs require.
                let key = clip_escaped(key, SLACK_FIELD_KEY_MAX);
                let budget = SLACK_FIELD_TEXT_MAX - key.chars().count() - 3;
                let text = format!("*{key}*\n{}", clip_escaped(value, budget));
                json!({"type": "mrkdwn", "text": text})
            })
            .collect();
        for chunk in texts.chunks(SLACK_FIELDS_PER_SECTION) {
            blocks.push(json!({"type": "section", "fields": chunk}));
        }
        json!({
            "text": clip(&self.text, SLACK_TEXT_MAX),
            "blocks": blocks,
            "attachments": [{
                "color": self.severity.color_hex(),
                "blocks": [{
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": format!("severity: *{}*", self.severity)}],
                }],
            }],
        })
    }

    /// Discord execute-webhook: one embed (title, description, colour, inline fields). No
    /// `content`: the embed carries the text, and embeds never ping `@everyone`.
    fn discord_body(&self) -> Value {
        let mut embed = Map::new();
        let mut used = 0;
        if let Some(title) = self.title() {
            let title = clip(title, DISCORD_TITLE_MAX);
            used += title.chars().count();
            embed.insert("title".into(), Value::String(title));
        }
        let description = clip(&self.text, DISCORD_DESCRIPTION_MAX);
        used += description.chars().count();
        embed.insert("description".into(), Value::String(description));
        embed.insert("color".into(), json!(self.severity.color_rgb()));
        let clipped = self
            .field_pairs()
            .into_iter()
            .map(|(name, value)| {
                // Discord rejects an empty field name or value; a zero-width space shows blank.
                (
                    or_blank(clip(&name, DISCORD_FIELD_NAME_MAX)),
                    or_blank(clip(&value, DISCORD_FIELD_VALUE_MAX)),
                )
            })
            .collect();
        let budget = DISCORD_TOTAL_MAX - used;
        let fields = cap_fields(clipped, DISCORD_MAX_FIELDS, budget, |name, value| {
            name.chars().count() + value.chars().count()
        });
        if !fields.is_empty() {
            let fields: Vec<Value> = fields
                .into_iter()
                .map(|(name, value)| json!({"name": name, "value": value, "inline": true}))
                .collect();
            embed.insert("fields".into(), Value::Array(fields));
        }
        json!({"embeds": [embed]})
    }

    /// Teams: a `message` with one Adaptive Card 1.4 attachment (title, text, fact set), the
    /// shape Microsoft documents for Workflows and incoming webhooks.
    fn teams_body(&self) -> Value {
        let mut body = Vec::new();
        if let Some(title) = self.title() {
            body.push(json!({
                "type": "TextBlock",
                "text": title,
                "weight": "bolder",
                "size": "medium",
                "color": self.severity.teams_color(),
                "wrap": true,
            }));
        }
        body.push(json!({"type": "TextBlock", "text": self.text, "wrap": true}));
        let facts: Vec<Value> = self
            .field_pairs()
            .into_iter()
            .map(|(title, value)| json!({"title": title, "value": value}))
            .collect();
        // An empty FactSet is invalid in the Adaptive Card schema, so it is left out.
        if !facts.is_empty() {
            body.push(json!({"type": "FactSet", "facts": facts}));
        }
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                },
            }],
        })
    }

    /// Generic webhook: `{"text", "title", "severity", "fields"}` with the user's headers.
    fn webhook_request(&self, webhook: &WebhookTarget) -> OutgoingRequest {
        let headers: Vec<(String, String)> = webhook
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value_text(value)))
            .collect();
        let fields: Map<String, Value> = self
            .field_pairs()
            .into_iter()
            .map(|(key, value)| (key, Value::String(value)))
            .collect();
        let body = json!({
            "text": self.text,
            "title": self.title(),
            "severity": self.severity.as_str(),
            "fields": fields,
        });
        json_post(&webhook.url, headers, body)
    }

    /// GitHub REST: a commit status or an issue comment.
    fn github_request(
        &self,
        github: &GithubTarget,
        defaults: &EventDefaults,
    ) -> Result<OutgoingRequest, NotifyError> {
        let api = github
            .api_url
            .as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .unwrap_or(DEFAULT_GITHUB_API_URL)
            .trim_end_matches('/');
        let action = if github.status.is_some() {
            "status"
        } else {
            "comment"
        };
        let repo = non_empty(&github.repo)
            .or(defaults.repo.map(str::trim).filter(|r| !r.is_empty()))
            .ok_or(NotifyError::MissingRepo { action })?;
        check_repo(repo)?;

        let headers = github_headers(non_empty(&github.token));

        let (url, body) = match (&github.status, &github.comment) {
            (Some(status), _) => {
                let sha = non_empty(&github.sha)
                    .or(defaults.sha.map(str::trim).filter(|s| !s.is_empty()))
                    .ok_or(NotifyError::MissingSha)?;
                check_sha(sha)?;
                let description = status.description.as_deref().unwrap_or(&self.text);
                let context = non_empty(&status.context).unwrap_or(DEFAULT_STATUS_CONTEXT);
                let mut body = json!({
                    "state": status.state,
                    "context": context,
                    "description": clip(description.trim(), GITHUB_DESCRIPTION_MAX),
                });
                if let Some(target_url) = non_empty(&status.target_url) {
                    body["target_url"] = Value::String(target_url.to_string());
                }
                (format!("{api}/repos/{repo}/statuses/{sha}"), body)
            }
            (None, Some(comment)) => {
                let text = non_empty(&comment.body).unwrap_or(&self.text);
                let body = json!({"body": clip(text, GITHUB_COMMENT_MAX)});
                let issue = comment.issue;
                (format!("{api}/repos/{repo}/issues/{issue}/comments"), body)
            }
            // validate() has just checked that exactly one of the two is set.
            (None, None) => return Err(NotifyError::GithubAction { found: Vec::new() }),
        };
        Ok(json_post(&url, headers, body))
    }
}

/// The headers of a GitHub REST request: JSON media type, the pinned API version, and the token
/// as a bearer when there is one (`gitops` pull requests send theirs here too).
pub(crate) fn github_headers(token: Option<&str>) -> Vec<(String, String)> {
    let mut headers = vec![(
        "Accept".to_string(),
        "application/vnd.github+json".to_string(),
    )];
    if let Some(token) = token {
        headers.push(("Authorization".to_string(), format!("Bearer {token}")));
    }
    headers.push((
        "X-GitHub-Api-Version".to_string(),
        GITHUB_API_VERSION.to_string(),
    ));
    headers.push(("User-Agent".to_string(), "vane".to_string()));
    headers
}

/// The `github` checks that need no event.
fn validate_github(github: &GithubTarget) -> Result<(), NotifyError> {
    let found: Vec<&'static str> = [
        ("status", github.status.is_some()),
        ("comment", github.comment.is_some()),
    ]
    .into_iter()
    .filter(|(_, is_set)| *is_set)
    .map(|(key, _)| key)
    .collect();
    if found.len() != 1 {
        return Err(NotifyError::GithubAction { found });
    }
    if let Some(status) = &github.status
        && !GITHUB_STATES.contains(&status.state.as_str())
    {
        return Err(NotifyError::InvalidState(status.state.clone()));
    }
    if let Some(comment) = &github.comment
        && comment.issue == 0
    {
        return Err(NotifyError::InvalidIssue);
    }
    if let Some(api_url) = non_empty(&github.api_url) {
        check_url(api_url, "github.api-url")?;
    }
    if let Some(repo) = non_empty(&github.repo) {
        check_repo(repo)?;
    }
    if let Some(sha) = non_empty(&github.sha) {
        check_sha(sha)?;
    }
    Ok(())
}

/// A `POST` with a JSON body; `Content-Type: application/json` goes first unless `headers`
/// already sets one (a user's explicit choice wins, and a duplicate would be ambiguous).
fn json_post(url: &str, headers: Vec<(String, String)>, body: Value) -> OutgoingRequest {
    let mut all = Vec::with_capacity(headers.len() + 1);
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        all.push(("Content-Type".to_string(), "application/json".to_string()));
    }
    all.extend(headers);
    OutgoingRequest {
        method: "POST".to_string(),
        url: url.trim().to_string(),
        headers: all,
        body,
    }
}

/// The trimmed value of an optional string, unless unset or blank.
pub(crate) fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A field or header value as text: strings as they are, `null` as empty, anything else as
/// its JSON text.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A zero-width space in place of an empty string, for services that reject empty text.
fn or_blank(text: String) -> String {
    if text.trim().is_empty() {
        "\u{200b}".to_string()
    } else {
        text
    }
}

/// At most `max` characters (Unicode scalar values, as the services count): longer text
/// keeps its first `max - 1` characters and ends with `…`.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some(_) => {
            let keep = max.saturating_sub(1);
            let end = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
            format!("{}…", &text[..end])
        }
    }
}

/// Like [`clip`] on the Slack-escaped text (`&` `<` `>` as `&amp;` `&lt;` `&gt;`), never
/// cutting an escape in half.
fn clip_escaped(text: &str, max: usize) -> String {
    let escaped_len = |c: char| match c {
        '&' => 5,
        '<' | '>' => 4,
        _ => 1,
    };
    let total: usize = text.chars().map(escaped_len).sum();
    let limit = if total <= max {
        max
    } else {
        max.saturating_sub(1)
    };
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let len = escaped_len(c);
        if used + len > limit {
            out.push('…');
            return out;
        }
        used += len;
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// The fields that fit in `max_count` entries and `budget` characters (as measured by
/// `cost`), in order. When some must go, the last entry becomes `…` / `N more not shown`, so
/// readers know the list is incomplete.
fn cap_fields(
    fields: Vec<(String, String)>,
    max_count: usize,
    budget: usize,
    cost: impl Fn(&str, &str) -> usize,
) -> Vec<(String, String)> {
    let total = fields.len();
    let mut kept = Vec::new();
    let mut used = 0usize;
    for (i, (name, value)) in fields.into_iter().enumerate() {
        let more_after = i + 1 < total;
        // Unless this is the last field, keep room for the marker in count and characters.
        let (slots, reserve) = if more_after {
            (2, MORE_MARKER_RESERVE)
        } else {
            (1, 0)
        };
        let field_cost = cost(&name, &value);
        if kept.len() + slots > max_count
            || used.saturating_add(field_cost).saturating_add(reserve) > budget
        {
            break;
        }
        used += field_cost;
        kept.push((name, value));
    }
    if kept.len() < total && kept.len() < max_count {
        let omitted = total - kept.len();
        kept.push(("…".to_string(), format!("{omitted} more not shown")));
    }
    kept
}

/// An `http://` or `https://` URL with a host and no whitespace.
fn check_url(url: &str, key: &'static str) -> Result<(), NotifyError> {
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty()
                && !rest.starts_with('/')
                && !rest.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(())
        }
        _ => Err(NotifyError::InvalidUrl { key }),
    }
}

/// A header name is an RFC 9110 token; a value has no line break or control character
/// (a newline would let a rendered value inject extra headers).
fn check_header(name: &str, value: &str) -> Result<(), NotifyError> {
    let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token_char) {
        return Err(NotifyError::InvalidHeaderName(name.to_string()));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(NotifyError::InvalidHeaderValue(name.to_string()));
    }
    Ok(())
}

/// `owner/name` in the characters GitHub allows, so the value cannot change the URL path.
fn check_repo(repo: &str) -> Result<(), NotifyError> {
    let part_ok = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match repo.split_once('/') {
        Some((owner, name)) if part_ok(owner) && part_ok(name) => Ok(()),
        _ => Err(NotifyError::InvalidRepo(repo.to_string())),
    }
}

/// A hexadecimal commit id (SHA-1 or SHA-256, full or abbreviated).
fn check_sha(sha: &str) -> Result<(), NotifyError> {
    if (4..=64).contains(&sha.len()) && sha.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(NotifyError::InvalidSha(sha.to_string()))
    }
}

/// Deserializes an issue number written as a number or as a numeric string (templates
/// render `${{ … }}` to strings).
fn issue_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    struct IssueVisitor;

    impl Visitor<'_> for IssueVisitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an issue number")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            let trimmed = v.trim().trim_start_matches('#');
            trimmed
                .parse()
                .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }

    deserializer.deserialize_any(IssueVisitor)
}

/// `notify.severity`: one of the levels, or a template that renders to one.
pub struct SeveritySchema;

impl JsonSchema for SeveritySchema {
    fn schema_name() -> Cow<'static, str> {
        "Severity".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let levels = Severity::json_schema(generator);
        json_schema!({
            "description": "How serious the message is (its colour): `info`, `success`, `warning` or `error`, or a template that renders to one.",
            "anyOf": [levels, crate::workflow::schema::template_string()]
        })
    }
}

/// `notify.github.comment.issue`: a number, or a template that renders to one.
pub struct IssueNumberSchema;

impl JsonSchema for IssueNumberSchema {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "IssueNumber".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "type": "integer", "minimum": 1 },
                { "type": "string", "pattern": r"^\s*#?[0-9]+\s*$" },
                crate::workflow::schema::template_string()
            ]
        })
    }
}

/// `notify.github.status.state`: one of GitHub's commit states, or a template that renders to one.
pub struct CommitStateSchema;

impl JsonSchema for CommitStateSchema {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "CommitState".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "enum": GITHUB_STATES },
                crate::workflow::schema::template_string()
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::compile::testing::{compile, render};
    use serde_json::json;

    #[test]
    fn a_notify_step_has_one_target_and_holds_its_webhook_as_a_secret() {
        let two = "notify: { slack: { webhook: 'https://a' }, discord: { webhook: 'https://b' }, text: t }";
        let error = compile(two, &[]).unwrap_err();
        assert!(error.starts_with("2:5: "), "{error}");
        assert!(error.contains("`slack`, `discord`"), "{error}");
        let step = compile("notify: { slack: { webhook: '{{ url }}' }, text: t }", &[]).unwrap();
        let rendered = render(
            &step,
            json!({"url": "https://hooks.slack.com/services/T/B/x"}),
        );
        assert_eq!(
            step.action.secrets(&rendered),
            ["https://hooks.slack.com/services/T/B/x"]
        );
    }

    const SLACK_URL: &str = "https://hooks.slack.com/services/T0/B0/XYZ";
    const DISCORD_URL: &str = "https://discord.com/api/webhooks/1/abc";
    const TEAMS_URL: &str = "https://acme.webhook.office.com/webhookb2/x";
    const SHA: &str = "9f2c0d1e2f3a4b5c6d7e8f90123456789abcdef0";

    fn config(value: Value) -> NotifyConfig {
        serde_json::from_value(value).expect("config deserializes")
    }

    fn build(value: Value) -> OutgoingRequest {
        config(value)
            .build_request(&EventDefaults::default())
            .expect("request builds")
    }

    fn build_err(value: Value, defaults: &EventDefaults) -> String {
        config(value)
            .build_request(defaults)
            .expect_err("request fails")
            .to_string()
    }

    fn json_headers() -> Vec<(String, String)> {
        vec![("Content-Type".into(), "application/json".into())]
    }

    fn github_headers(token: Option<&str>) -> Vec<(String, String)> {
        let mut headers = vec![
            ("Content-Type".into(), "application/json".into()),
            ("Accept".into(), "application/vnd.github+json".into()),
        ];
        if let Some(token) = token {
            headers.push(("Authorization".into(), format!("Bearer {token}")));
        }
        headers.push(("X-GitHub-Api-Version".into(), "2022-11-28".into()));
        headers.push(("User-Agent".into(), "vane".into()));
        headers
    }

    #[test]
    fn builds_each_target_exactly() {
        let cases: Vec<(&str, Value, OutgoingRequest)> = vec![
            (
                "slack with title and fields",
                json!({
                    "slack": {"webhook": SLACK_URL},
                    "text": "deploy-api: failure",
                    "title": "Deploy failed",
                    "severity": "error",
                    "fields": {"Repo": "acme/api", "Branch": "main"},
                }),
                OutgoingRequest {
                    method: "POST".into(),
                    url: SLACK_URL.into(),
                    headers: json_headers(),
                    body: json!({
                        "text": "deploy-api: failure",
                        "blocks": [
                            {"type": "header", "text": {"type": "plain_text", "text": "Deploy failed", "emoji": true}},
                            {"type": "section", "text": {"type": "mrkdwn", "text": "deploy-api: failure"}},
                            {"type": "section", "fields": [
                                {"type": "mrkdwn", "text": "*Repo*\nacme/api"},
                                {"type": "mrkdwn", "text": "*Branch*\nmain"},
                            ]},
                        ],
                        "attachments": [{
                            "color": "#A30200",
                            "blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "severity: *error*"}]}],
                        }],
                    }),
                },
            ),
            (
                "slack minimal",
                json!({"slack": {"webhook": SLACK_URL}, "text": "hi"}),
                OutgoingRequest {
                    method: "POST".into(),
                    url: SLACK_URL.into(),
                    headers: json_headers(),
                    body: json!({
                        "text": "hi",
                        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
                        "attachments": [{
                            "color": "#439FE0",
                            "blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "severity: *info*"}]}],
                        }],
                    }),
                },
            ),
            (
                "discord",
                json!({
                    "discord": {"webhook": DISCORD_URL},
                    "text": "all good",
                    "title": "Deployed",
                    "severity": "success",
                    "fields": {"Repo": "acme/api", "Attempt": 2, "Note": null},
                }),
                OutgoingRequest {
                    method: "POST".into(),
                    url: DISCORD_URL.into(),
                    headers: json_headers(),
                    body: json!({"embeds": [{
                        "title": "Deployed",
                        "description": "all good",
                        "color": 0x2EB886,
                        "fields": [
                            {"name": "Repo", "value": "acme/api", "inline": true},
                            {"name": "Attempt", "value": "2", "inline": true},
                            {"name": "Note", "value": "\u{200b}", "inline": true},
                        ],
                    }]}),
                },
            ),
            (
                "discord minimal",
                json!({"discord": {"webhook": DISCORD_URL}, "text": "hi", "severity": "warning"}),
                OutgoingRequest {
                    method: "POST".into(),
                    url: DISCORD_URL.into(),
                    headers: json_headers(),
                    body: json!({"embeds": [{"description": "hi", "color": 0xDAA038}]}),
                },
            ),
            (
                "teams",
                json!({
                    "teams": {"webhook": TEAMS_URL},
                    "text": "deploy failed",
                    "title": "Deploy",
                    "severity": "error",
                    "fields": {"Repo": "acme/api"},
                }),
                OutgoingRequest {
                    method: "POST".into(),
                    url: TEAMS_URL.into(),
                    headers: json_headers(),
                    body: json!({
                        "type": "message",
                        "attachments": [{
                            "contentType": "application/vnd.microsoft.card.adaptive",
                            "contentUrl": null,
                            "content": {
                                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                                "type": "AdaptiveCard",
                                "version": "1.4",
                                "body": [
                                    {"type": "TextBlock", "text": "Deploy", "weight": "bolder", "size": "medium", "color": "attention", "wrap": true},
                                    {"type": "TextBlock", "text": "deploy failed", "wrap": true},
                                    {"type": "FactSet", "facts": [{"title": "Repo", "value": "acme/api"}]},
                                ],
                            },
                        }],
                    }),
                },
            ),
            (
                "teams minimal",
                json!({"teams": {"webhook": TEAMS_URL}, "text": "hi"}),
                OutgoingRequest {
                    method: "POST".into(),
                    url: TEAMS_URL.into(),
                    headers: json_headers(),
                    body: json!({
                        "type": "message",
                        "attachments": [{
                            "contentType": "application/vnd.microsoft.card.adaptive",
                            "contentUrl": null,
                            "content": {
                                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                                "type": "AdaptiveCard",
                                "version": "1.4",
                                "body": [{"type": "TextBlock", "text": "hi", "wrap": true}],
                            },
                        }],
                    }),
                },
            ),
            (
                "generic webhook",
                json!({
                    "webhook": {"url": "https://example.com/hook", "headers": {"X-Token": "abc", "X-Retry": 3}},
                    "text": "hello",
                    "title": "T",
                    "severity": "warning",
                    "fields": {"Repo": "acme/api", "Ok": true},
                }),
                OutgoingRequest {
                    method: "POST".into(),
                    url: "https://example.com/hook".into(),
                    headers: vec![
                        ("Content-Type".into(), "application/json".into()),
                        ("X-Token".into(), "abc".into()),
                        ("X-Retry".into(), "3".into()),
                    ],
                    body: json!({
                        "text": "hello",
                        "title": "T",
                        "severity": "warning",
                        "fields": {"Repo": "acme/api", "Ok": "true"},
                    }),
                },
            ),
            (
                "generic webhook, own content type, no title",
                json!({
                    "webhook": {"url": "http://127.0.0.1:8080/x", "headers": {"content-type": "application/vnd.acme+json"}},
                    "text": "hello",
                }),
                OutgoingRequest {
                    method: "POST".into(),
                    url: "http://127.0.0.1:8080/x".into(),
                    headers: vec![("content-type".into(), "application/vnd.acme+json".into())],
                    body: json!({"text": "hello", "title": null, "severity": "info", "fields": {}}),
                },
            ),
            (
                "github status",
                json!({
                    "github": {
                        "status": {"state": "failure", "context": "vane/deploy", "description": "deploy failed", "target-url": "https://ci.example/run/1"},
                        "token": "ghp_secret",
                        "repo": "acme/api",
                        "sha": SHA,
                    },
                    "text": "ignored for status when description is set",
                }),
                OutgoingRequest {
                    method: "POST".into(),
                    url: format!("https://api.github.com/repos/acme/api/statuses/{SHA}"),
                    headers: github_headers(Some("ghp_secret")),
                    body: json!({
                        "state": "failure",
                        "context": "vane/deploy",
                        "description": "deploy failed",
                        "target_url": "https://ci.example/run/1",
                    }),
                },
            ),
            (
                "github status defaults",
                json!({
                    "github": {"status": {"state": "success"}, "repo": "acme/api", "sha": SHA},
                    "text": "deployed",
                }),
                OutgoingRequest {
                    method: "POST".into(),
                    url: format!("https://api.github.com/repos/acme/api/statuses/{SHA}"),
                    headers: github_headers(None),
                    body: json!({"state": "success", "context": "vane", "description": "deployed"}),
                },
            ),
            (
                "github comment with body",
                json!({
                    "github": {"comment": {"issue": 42, "body": "**done**"}, "token": "t", "repo": "acme/api"},
                    "text": "fallback",
                }),
                OutgoingRequest {
                    method: "POST".into(),
                    url: "https://api.github.com/repos/acme/api/issues/42/comments".into(),
                    headers: github_headers(Some("t")),
                    body: json!({"body": "**done**"}),
                },
            ),
            (
                "github comment from text, issue as string, enterprise api",
                json!({
                    "github": {"comment": {"issue": "7"}, "repo": "acme/api", "api-url": "https://ghe.acme.io/api/v3/"},
                    "text": "from text",
                }),
                OutgoingRequest {
                    method: "POST".into(),
                    url: "https://ghe.acme.io/api/v3/repos/acme/api/issues/7/comments".into(),
                    headers: github_headers(None),
                    body: json!({"body": "from text"}),
                },
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(build(input), want, "case {name}");
        }
    }

    #[test]
    fn target_names() {
        let cases = [
            (
                json!({"slack": {"webhook": SLACK_URL}, "text": "x"}),
                "slack",
            ),
            (
                json!({"discord": {"webhook": DISCORD_URL}, "text": "x"}),
                "discord",
            ),
            (
                json!({"teams": {"webhook": TEAMS_URL}, "text": "x"}),
                "teams",
            ),
            (
                json!({"webhook": {"url": "https://e.x"}, "text": "x"}),
                "webhook",
            ),
            (
                json!({"github": {"status": {"state": "pending"}}, "text": "x"}),
                "github-status",
            ),
            (
                json!({"github": {"comment": {"issue": 1}}, "text": "x"}),
                "github-comment",
            ),
            (json!({"github": {}, "text": "x"}), "github"),
            (json!({"text": "x"}), "none"),
        ];
        for (input, want) in cases {
            assert_eq!(config(input).target_name(), want);
        }
    }

    #[test]
    fn special_text_round_trips_in_every_body() {
        let text = "say \"hi\"\n\ttab \\ back — ünïcødé 🚀 </script>";
        let targets = [
            json!({"slack": {"webhook": SLACK_URL}}),
            json!({"discord": {"webhook": DISCORD_URL}}),
            json!({"teams": {"webhook": TEAMS_URL}}),
            json!({"webhook": {"url": "https://e.x/h"}}),
            json!({"github": {"comment": {"issue": 1}, "repo": "a/b"}}),
        ];
        for target in targets {
            let mut input = target.clone();
            input["text"] = json!(text);
            input["title"] = json!("q\"t\n");
            let request = build(input);
            let wire = serde_json::to_string(&request.body).expect("serializes");
            let back: Value = serde_json::from_str(&wire).expect("valid JSON");
            assert_eq!(back, request.body);
            let found = match target
                .as_object()
                .and_then(|o| o.keys().next())
                .map(String::as_str)
            {
                Some("slack") => &back["blocks"][1]["text"]["text"],
                Some("discord") => &back["embeds"][0]["description"],
                Some("teams") => &back["attachments"][0]["content"]["body"][1]["text"],
                Some("webhook") => &back["text"],
                _ => &back["body"],
            };
            assert_eq!(found, text, "target {target}");
        }
    }

    #[test]
    fn slack_limits() {
        let long = "x".repeat(5000);
        let fields: Map<String, Value> = (0..23).map(|i| (format!("k{i}"), json!("v"))).collect();
        let body = build(json!({
            "slack": {"webhook": SLACK_URL},
            "text": long,
            "title": "t".repeat(200),
            "fields": fields,
        }))
        .body;
        let header = body["blocks"][0]["text"]["text"].as_str().expect("header");
        assert_eq!(header.chars().count(), 150);
        assert!(header.ends_with('…'));
        let section = body["blocks"][1]["text"]["text"].as_str().expect("section");
        assert_eq!(section.chars().count(), 3000);
        assert!(section.ends_with('…'));
        assert_eq!(body["text"].as_str().map(str::len), Some(5000));
        // 23 fields split 10 + 10 + 3.
        let sizes: Vec<usize> = body["blocks"].as_array().expect("blocks")[2..]
            .iter()
            .map(|b| b["fields"].as_array().map_or(0, Vec::len))
            .collect();
        assert_eq!(sizes, [10, 10, 3]);
    }

    #[test]
    fn slack_fields_are_escaped_and_clipped() {
        let body = build(json!({
            "slack": {"webhook": SLACK_URL},
            "text": "<https://x|link>",
            "fields": {"a<b": "x & y", "long": "&".repeat(1000)},
        }))
        .body;
        // The text is mrkdwn written by the user, so links stay links.
        assert_eq!(body["blocks"][0]["text"]["text"], "<https://x|link>");
        let fields = &body["blocks"][1]["fields"];
        assert_eq!(fields[0]["text"], "*a&lt;b*\nx &amp; y");
        let long = fields[1]["text"].as_str().expect("field");
        assert!(long.chars().count() <= 2000);
        assert!(
            long.ends_with("&amp;…"),
            "escape not cut: {}",
            &long[long.len() - 12..]
        );
    }

    #[test]
    fn slack_block_budget() {
        let fields: Map<String, Value> = (0..600).map(|i| (format!("k{i}"), json!("v"))).collect();
        let body = build(
            json!({"slack": {"webhook": SLACK_URL}, "text": "x", "title": "t", "fields": fields}),
        )
        .body;
        let blocks = body["blocks"].as_array().expect("blocks");
        assert_eq!(blocks.len(), 50);
        let last = blocks[49]["fields"].as_array().expect("fields");
        assert_eq!(last.len(), 10);
        assert_eq!(last[9]["text"], "*…*\n121 more not shown");
    }

    #[test]
    fn discord_limits() {
        let fields: Map<String, Value> = (0..30)
            .map(|i| (format!("{i}{}", "n".repeat(300)), json!("v".repeat(2000))))
            .collect();
        let body = build(json!({
            "discord": {"webhook": DISCORD_URL},
            "text": "d".repeat(5000),
            "title": "t".repeat(300),
            "fields": fields,
        }))
        .body;
        let embed = &body["embeds"][0];
        let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
        assert_eq!(len(&embed["title"]), 256);
        assert_eq!(len(&embed["description"]), 4096);
        let fields = embed["fields"].as_array().expect("fields");
        assert!(fields.len() <= 25);
        for field in fields {
            assert!(len(&field["name"]) <= 256);
            assert!(len(&field["value"]) <= 1024);
        }
        let total = len(&embed["title"])
            + len(&embed["description"])
            + fields
                .iter()
                .map(|f| len(&f["name"]) + len(&f["value"]))
                .sum::<usize>();
        assert!(total <= 6000, "total {total}");
        let last = fields.last().expect("marker");
        assert_eq!(last["name"], "…");
        assert_eq!(
            last["value"],
            format!("{} more not shown", 30 - (fields.len() - 1))
        );
    }

    #[test]
    fn discord_field_count_limit() {
        let fields: Map<String, Value> = (0..30).map(|i| (format!("k{i}"), json!("v"))).collect();
        let body =
            build(json!({"discord": {"webhook": DISCORD_URL}, "text": "x", "fields": fields})).body;
        let fields = body["embeds"][0]["fields"].as_array().expect("fields");
        assert_eq!(fields.len(), 25);
        assert_eq!(fields[23]["name"], "k23");
        assert_eq!(fields[24]["value"], "6 more not shown");

        let exactly: Map<String, Value> = (0..25).map(|i| (format!("k{i}"), json!("v"))).collect();
        let body =
            build(json!({"discord": {"webhook": DISCORD_URL}, "text": "x", "fields": exactly}))
                .body;
        let fields = body["embeds"][0]["fields"].as_array().expect("fields");
        assert_eq!(fields.len(), 25);
        assert_eq!(fields[24]["name"], "k24");
    }

    #[test]
    fn github_description_is_clipped_to_140() {
        let body = build(json!({
            "github": {"status": {"state": "error"}, "repo": "a/b", "sha": SHA},
            "text": "é".repeat(200),
        }))
        .body;
        let description = body["description"].as_str().expect("description");
        assert_eq!(description.chars().count(), 140);
        assert!(description.ends_with('…'));
    }

    #[test]
    fn clip_counts_characters() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "ab…");
        assert_eq!(clip("🚀🚀🚀🚀", 2), "🚀…");
        assert_eq!(clip("", 5), "");
        assert_eq!(clip_escaped("a<b", 10), "a&lt;b");
        assert_eq!(clip_escaped("ab<cd", 6), "ab…");
    }

    #[test]
    fn github_defaults_from_event() {
        let defaults = EventDefaults {
            repo: Some("acme/web"),
            sha: Some("abc123"),
        };
        let status = json!({"github": {"status": {"state": "pending"}}, "text": "running"});
        let request = config(status.clone())
            .build_request(&defaults)
            .expect("builds");
        assert_eq!(
            request.url,
            "https://api.github.com/repos/acme/web/statuses/abc123"
        );

        // The step's own repo/sha win over the event's.
        let mut own = status.clone();
        own["github"]["repo"] = json!("acme/api");
        own["github"]["sha"] = json!("def456");
        let request = config(own).build_request(&defaults).expect("builds");
        assert_eq!(
            request.url,
            "https://api.github.com/repos/acme/api/statuses/def456"
        );

        let comment = json!({"github": {"comment": {"issue": 3}}, "text": "x"});
        let request = config(comment.clone())
            .build_request(&defaults)
            .expect("builds");
        assert_eq!(
            request.url,
            "https://api.github.com/repos/acme/web/issues/3/comments"
        );

        let none = EventDefaults::default();
        assert_eq!(
            build_err(status.clone(), &none),
            "github status needs a repository: set `repo` or use an event with one"
        );
        assert_eq!(
            build_err(comment, &none),
            "github comment needs a repository: set `repo` or use an event with one"
        );
        let repo_only = EventDefaults {
            repo: Some("acme/web"),
            sha: None,
        };
        assert_eq!(
            build_err(status.clone(), &repo_only),
            "github status needs a commit: set `sha` or use an event with one"
        );
        let blank = EventDefaults {
            repo: Some(" "),
            sha: Some(""),
        };
        assert_eq!(
            build_err(status.clone(), &blank),
            "github status needs a repository: set `repo` or use an event with one"
        );
        let bad = EventDefaults {
            repo: Some("acme/web/../x"),
            sha: Some("abc123"),
        };
        assert_eq!(
            build_err(status, &bad),
            "github `repo` must look like `owner/name`, found `acme/web/../x`"
        );
    }

    #[test]
    fn api_url_trailing_slash_and_default() {
        let cases = [
            (None, "https://api.github.com/repos/a/b/issues/1/comments"),
            (
                Some("https://api.github.com/"),
                "https://api.github.com/repos/a/b/issues/1/comments",
            ),
            (
                Some("https://ghe.io/api/v3"),
                "https://ghe.io/api/v3/repos/a/b/issues/1/comments",
            ),
            (
                Some("https://ghe.io/api/v3//"),
                "https://ghe.io/api/v3/repos/a/b/issues/1/comments",
            ),
            (
                Some(""),
                "https://api.github.com/repos/a/b/issues/1/comments",
            ),
        ];
        for (api, want) in cases {
            let mut input =
                json!({"github": {"comment": {"issue": 1}, "repo": "a/b"}, "text": "x"});
            if let Some(api) = api {
                input["github"]["api-url"] = json!(api);
            }
            assert_eq!(build(input).url, want, "api-url {api:?}");
        }
    }

    #[test]
    fn validation_errors() {
        let cases = [
            (
                json!({"text": "x"}),
                "notify needs exactly one target (`slack`, `discord`, `teams`, `webhook`, `github`), found none",
            ),
            (
                json!({"slack": {"webhook": SLACK_URL}, "discord": {"webhook": DISCORD_URL}, "text": "x"}),
                "notify needs exactly one target (`slack`, `discord`, `teams`, `webhook`, `github`), found `slack`, `discord`",
            ),
            (
                json!({"github": {"repo": "a/b"}, "text": "x"}),
                "notify `github` needs exactly one of `status`, `comment`, found none",
            ),
            (
                json!({"github": {"status": {"state": "success"}, "comment": {"issue": 1}}, "text": "x"}),
                "notify `github` needs exactly one of `status`, `comment`, found `status`, `comment`",
            ),
            (
                json!({"github": {"status": {"state": "cancelled"}}, "text": "x"}),
                "github status `state` must be one of `error`, `failure`, `pending`, `success`, found `cancelled`",
            ),
            (
                json!({"github": {"status": {"state": "Success"}}, "text": "x"}),
                "github status `state` must be one of `error`, `failure`, `pending`, `success`, found `Success`",
            ),
            (
                json!({"github": {"comment": {"issue": 0}}, "text": "x"}),
                "github comment `issue` must be a positive number, found `0`",
            ),
            (
                json!({"github": {"comment": {"issue": 1}, "repo": "acme"}, "text": "x"}),
                "github `repo` must look like `owner/name`, found `acme`",
            ),
            (
                json!({"github": {"status": {"state": "success"}, "sha": "main?x=1"}, "text": "x"}),
                "github `sha` must be a hexadecimal commit id, found `main?x=1`",
            ),
            (
                json!({"github": {"comment": {"issue": 1}, "api-url": "api.github.com"}, "text": "x"}),
                "notify `github.api-url` must be an `http://` or `https://` URL",
            ),
            (
                json!({"slack": {"webhook": SLACK_URL}, "text": "  \n"}),
                "notify `text` is empty",
            ),
            (
                json!({"slack": {"webhook": "hooks.slack.com/services/secret"}, "text": "x"}),
                "notify `slack.webhook` must be an `http://` or `https://` URL",
            ),
            (
                json!({"discord": {"webhook": ""}, "text": "x"}),
                "notify `discord.webhook` must be an `http://` or `https://` URL",
            ),
            (
                json!({"teams": {"webhook": "https://"}, "text": "x"}),
                "notify `teams.webhook` must be an `http://` or `https://` URL",
            ),
            (
                json!({"webhook": {"url": "ftp://x"}, "text": "x"}),
                "notify `webhook.url` must be an `http://` or `https://` URL",
            ),
            (
                json!({"webhook": {"url": "https://x", "headers": {"Bad Name": "v"}}, "text": "x"}),
                "notify `webhook.headers` has an invalid header name `Bad Name`",
            ),
            (
                json!({"webhook": {"url": "https://x", "headers": {"X-Token": "a\r\nX-Evil: 1"}}, "text": "x"}),
                "notify `webhook.headers` value of `X-Token` contains a line break or control character",
            ),
        ];
        for (input, want) in cases {
            let cfg = config(input.clone());
            let err = cfg.validate().expect_err("invalid");
            assert_eq!(err.to_string(), want, "input {input}");
            // build_request validates first, with the same error.
            let err = cfg
                .build_request(&EventDefaults::default())
                .expect_err("invalid");
            assert_eq!(err.to_string(), want, "input {input}");
        }
        // The secret URL is never echoed.
        let err =
            config(json!({"slack": {"webhook": "hooks.slack.com/services/secret"}, "text": "x"}))
                .validate()
                .expect_err("invalid");
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn error_variants_carry_data() {
        let err = config(
            json!({"slack": {"webhook": SLACK_URL}, "teams": {"webhook": TEAMS_URL}, "text": "x"}),
        )
        .validate()
        .expect_err("invalid");
        assert_eq!(
            err,
            NotifyError::TargetCount {
                found: vec!["slack", "teams"]
            }
        );
    }

    #[test]
    fn deserializes_every_form() {
        let yamlish = json!({
            "github": {
                "status": {"state": "failure", "context": "vane/deploy", "description": "d", "target-url": "https://t"},
                "token": "tok",
                "api-url": "https://api.github.com",
                "repo": "acme/api",
                "sha": "abc1",
            },
            "text": "deploy-api: failure",
            "title": "Deploy failed",
            "severity": "error",
            "fields": {"Repo": "acme/api", "Branch": "main"},
        });
        let cfg = config(yamlish);
        assert_eq!(
            cfg.github,
            Some(GithubTarget {
                status: Some(GithubStatus {
                    state: "failure".into(),
                    context: Some("vane/deploy".into()),
                    description: Some("d".into()),
                    target_url: Some("https://t".into()),
                }),
                comment: None,
                token: Some("tok".into()),
                api_url: Some("https://api.github.com".into()),
                repo: Some("acme/api".into()),
                sha: Some("abc1".into()),
            })
        );
        assert_eq!(cfg.severity, Severity::Error);
        assert_eq!(cfg.title.as_deref(), Some("Deploy failed"));
        // Field order is kept as written.
        assert_eq!(cfg.fields.keys().collect::<Vec<_>>(), ["Repo", "Branch"]);

        let slack = config(json!({"slack": {"webhook": SLACK_URL}, "text": "x"}));
        assert_eq!(
            slack.slack,
            Some(SlackTarget {
                webhook: SLACK_URL.into()
            })
        );
        assert_eq!(slack.severity, Severity::Info);
        assert!(slack.fields.is_empty());
        assert_eq!(slack.title, None);

        let discord = config(json!({"discord": {"webhook": DISCORD_URL}, "text": "x"}));
        assert_eq!(
            discord.discord,
            Some(DiscordTarget {
                webhook: DISCORD_URL.into()
            })
        );
        let teams = config(json!({"teams": {"webhook": TEAMS_URL}, "text": "x"}));
        assert_eq!(
            teams.teams,
            Some(TeamsTarget {
                webhook: TEAMS_URL.into()
            })
        );
        let hook = config(json!({"webhook": {"url": "https://e.x"}, "text": "x"}));
        assert_eq!(
            hook.webhook,
            Some(WebhookTarget {
                url: "https://e.x".into(),
                headers: Map::new()
            })
        );
        let comment =
            config(json!({"github": {"comment": {"issue": "#12", "body": "b"}}, "text": "x"}));
        assert_eq!(
            comment.github.and_then(|g| g.comment),
            Some(GithubComment {
                issue: 12,
                body: Some("b".into())
            })
        );
        for severity in ["info", "success", "warning", "error"] {
            let cfg =
                config(json!({"slack": {"webhook": SLACK_URL}, "text": "x", "severity": severity}));
            assert_eq!(cfg.severity.as_str(), severity);
        }
    }

    #[test]
    fn rejects_unknown_and_malformed_keys() {
        let cases = [
            json!({"slack": {"webhook": SLACK_URL}, "text": "x", "colour": "red"}),
            json!({"slack": {"webhook": SLACK_URL, "channel": "#ops"}, "text": "x"}),
            json!({"discord": {"webhook": DISCORD_URL, "username": "bot"}, "text": "x"}),
            json!({"teams": {"url": TEAMS_URL}, "text": "x"}),
            json!({"webhook": {"url": "https://e.x", "method": "PUT"}, "text": "x"}),
            json!({"github": {"status": {"state": "success", "target_url": "https://t"}}, "text": "x"}),
            json!({"github": {"comment": {"issue": 1, "title": "t"}}, "text": "x"}),
            json!({"github": {"comment": {"issue": 1}, "api_url": "https://x"}, "text": "x"}),
            json!({"github": {"comment": {"issue": -1}}, "text": "x"}),
            json!({"github": {"comment": {"issue": "forty-two"}}, "text": "x"}),
            json!({"slack": {"webhook": SLACK_URL}, "text": "x", "severity": "critical"}),
            json!({"slack": {"webhook": SLACK_URL}, "text": "x", "severity": "Error"}),
            json!({"slack": {"webhook": SLACK_URL}}),
        ];
        for input in cases {
            let result = serde_json::from_value::<NotifyConfig>(input.clone());
            assert!(result.is_err(), "accepted {input}");
        }
        let err = serde_json::from_value::<NotifyConfig>(
            json!({"slack": {"webhook": SLACK_URL}, "text": "x", "colour": "red"}),
        )
        .expect_err("unknown key");
        assert!(err.to_string().contains("unknown field `colour`"), "{err}");
    }

    #[test]
    fn credentials_are_marked() {
        let request = build(json!({
            "github": {"comment": {"issue": 1}, "repo": "a/b", "token": " ghp_x\n"},
            "text": "x",
        }));
        // A token read from a file keeps no trailing newline in the header.
        assert!(
            request
                .headers
                .contains(&("Authorization".into(), "Bearer ghp_x".into()))
        );
        assert_eq!(request.sensitive_values(), ["Bearer ghp_x"]);
        let redacted = request.redacted();
        assert!(
            redacted
                .headers
                .contains(&("Authorization".into(), "***".into()))
        );
        assert!(
            redacted
                .headers
                .contains(&("User-Agent".into(), "vane".into()))
        );

        for name in [
            "Authorization",
            "X-Api-Key",
            "X-Token",
            "Cookie",
            "X-Hub-Signature-256",
        ] {
            assert!(OutgoingRequest::is_sensitive_header(name), "{name}");
        }
        for name in [
            "Content-Type",
            "Accept",
            "User-Agent",
            "X-GitHub-Api-Version",
        ] {
            assert!(!OutgoingRequest::is_sensitive_header(name), "{name}");
        }

        let hook = config(json!({
            "webhook": {"url": "https://e.x", "headers": {"X-Token": "abc", "X-Env": "prod"}},
            "text": "x",
        }));
        assert_eq!(hook.secrets(), ["abc"]);
        let slack = config(json!({"slack": {"webhook": SLACK_URL}, "text": "x"}));
        assert_eq!(slack.secrets(), [SLACK_URL]);
        let github = config(json!({"github": {"comment": {"issue": 1}, "token": ""}, "text": "x"}));
        assert!(github.secrets().is_empty());
        let request = github
            .build_request(&EventDefaults {
                repo: Some("a/b"),
                sha: None,
            })
            .expect("builds");
        assert!(
            !request
                .headers
                .iter()
                .any(|(name, _)| name == "Authorization")
        );
    }

    #[test]
    fn request_serializes_for_the_sender() {
        let request = build(json!({"webhook": {"url": "https://e.x"}, "text": "x"}));
        assert_eq!(
            serde_json::to_value(&request).expect("serializes"),
            json!({
                "method": "POST",
                "url": "https://e.x",
                "headers": [["Content-Type", "application/json"]],
                "body": {"text": "x", "title": null, "severity": "info", "fields": {}},
            })
        );
    }

    #[test]
    fn severity_colours_agree() {
        for severity in [
            Severity::Info,
            Severity::Success,
            Severity::Warning,
            Severity::Error,
        ] {
            let hex = severity.color_hex().trim_start_matches('#');
            assert_eq!(u32::from_str_radix(hex, 16), Ok(severity.color_rgb()));
            assert_eq!(severity.to_string(), severity.as_str());
        }
    }
}
