//! `publish`: one message to an MQTT broker or a NATS server — a command back to a device, a
//! reading forwarded — and with NATS optionally the reply to it.
//!
//! Each attempt opens its own connection and succeeds only once the server has the message:
//! MQTT QoS 1 after the broker's PUBACK, a JetStream publish after its PubAck, core NATS after a
//! flush (the server answered a PING sent behind the message). Nothing is kept in memory across a
//! failure — a broker that is down fails the attempt, and the step's `retry` decides what
//! follows. A JetStream message carries `Nats-Msg-Id: vane-<run id>-<step>`, the same on every
//! attempt of the step in one run, so a retry after a lost PubAck is dropped by the stream's
//! duplicate window rather than stored twice.

use super::{
    Compiled, CompiledStep, Outputs, StepContext, StepError, StepKind, StepSite, StepSuccess,
};
use crate::template::{TemplateTree, TreeError};
use crate::yaml::{YamlError, YamlPath};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long an attempt waits for the broker to accept a publish, when the step's timeout is
/// longer.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// The keys of a `publish` step besides the common ones.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishKeys {
    /// One message to MQTT or NATS (with NATS, optionally waiting for the reply).
    #[schemars(with = "Option<PublishConfig>")]
    pub publish: Option<Json>,
}

/// `publish:` as written (after rendering).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(
    description = "One message to an MQTT broker (`mqtt:`) or a NATS server (`nats:`); `request:` waits for a NATS reply. Outputs `published`, `reply`."
)]
pub struct PublishConfig {
    /// Publish to an MQTT broker.
    pub mqtt: Option<MqttPublish>,
    /// Publish to a NATS server (or its JetStream).
    pub nats: Option<NatsPublish>,
    /// NATS request-reply: wait this long for one reply (`outputs.reply`); no responders fails
    /// at once.
    pub request: Option<RequestConfig>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MqttPublish {
    /// `mqtt://host:1883`.
    pub url: String,
    /// The topic (no wildcards): `devices/{{ vars.device }}/commands`.
    pub topic: String,
    /// 0 (at most once) or 1 (at least once: success after the broker's PUBACK); default 1.
    pub qos: Option<u8>,
    /// Whether the broker keeps the message for later subscribers; default false.
    #[serde(default)]
    pub retain: bool,
    /// Text, or any value (sent as JSON).
    #[serde(default)]
    pub payload: Json,
    /// The broker login's user name.
    pub username: Option<String>,
    /// `{{ secrets.MQTT_PASSWORD }}`.
    pub password: Option<String>,
    /// Default `vane-publish-<random>`.
    pub client_id: Option<String>,
    /// For `mqtts://`: the CA certificate (PEM) the broker's certificate is checked against
    /// (relative to the workspace); default: the system's trusted roots.
    pub ca_file: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NatsPublish {
    /// `nats://host:4222`.
    pub url: String,
    /// The subject (no wildcards): `devices.{{ vars.device }}.commands`.
    pub subject: String,
    /// Message headers (name → text).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Text, or any value (sent as JSON).
    #[serde(default)]
    pub payload: Json,
    /// Publish to the JetStream stream that holds the subject, and succeed on its PubAck.
    #[serde(default)]
    pub jetstream: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RequestConfig {
    /// How long to wait for the reply (`5s`, the default).
    #[schemars(with = "Option<crate::workflow::schema::Duration>")]
    pub timeout: Option<String>,
}

/// The `publish` step kind.
pub struct PublishKind;

impl StepKind for PublishKind {
    fn key(&self) -> &'static str {
        "publish"
    }

    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        PublishKeys::json_schema(generator)
    }

    fn compile(&self, keys: serde_yaml::Value, site: &StepSite) -> Result<Compiled, YamlError> {
        let keys: PublishKeys = site.keys(keys)?;
        let value = keys.publish.unwrap_or(Json::Null);
        let path = site.key("publish");
        let config: Option<PublishConfig> = site.check_shape(&value, &path)?;
        let mut warnings = Vec::new();
        if let Some(config) = &config {
            check(config, site, &path)?;
            if let Some(mqtt) = &config.mqtt
                && mqtt.retain
                && is_command_topic(&mqtt.topic)
            {
                warnings.push(site.at_value(
                    &path.key("mqtt").key("retain"),
                    format!(
                        "`retain: true` on `{}`, a command topic: the broker keeps the command and \
                         hands it to every device that subscribes later — a restarted device \
                         runs it again",
                        mqtt.topic
                    ),
                ));
            }
        }
        let tree = site.tree_with_native_key(&value, "payload", &path)?;
        let step = PublishStep {
            tree,
            step: site.path.to_string(),
        };
        Ok(Compiled::new(step).with_warnings(warnings))
    }
}

/// What can be known before rendering: one target, request only with NATS, a literal timeout.
fn check(config: &PublishConfig, site: &StepSite, path: &YamlPath) -> Result<(), YamlError> {
    if config.mqtt.is_some() == config.nats.is_some() {
        return Err(site.at_value(path, "`publish`: give exactly one of `mqtt` or `nats`"));
    }
    if config.mqtt.is_some() && config.request.is_some() {
        return Err(site.at_value(
            &path.key("request"),
            "`publish.request` is NATS request-reply; MQTT 3.1.1 has no replies",
        ));
    }
    if let Some(mqtt) = &config.mqtt
        && let Some(qos) = mqtt.qos
        && qos > 1
    {
        return Err(site.at_value(
            &path.key("mqtt").key("qos"),
            "`qos` is 0 or 1 (QoS 2 is not supported)",
        ));
    }
    if let Some(timeout) = config
        .request
        .as_ref()
        .and_then(|request| request.timeout.as_deref())
        && !crate::template::is_template(timeout)
        && let Err(message) = crate::duration::parse_duration(timeout)
    {
        let at = path.key("request").key("timeout");
        return Err(site.at_value(&at, format!("{at}: {message}")));
    }
    Ok(())
}

/// A topic that carries commands: a level named `command(s)`, `cmd`, `set` or `control`.
pub fn is_command_topic(topic: &str) -> bool {
    topic.split('/').any(|level| {
        matches!(
            level.to_ascii_lowercase().as_str(),
            "command" | "commands" | "cmd" | "cmnd" | "set" | "control"
        )
    })
}

#[derive(Debug)]
struct PublishStep {
    tree: TemplateTree,
    /// Where the step is in its file: with the run id, the message id of a JetStream publish.
    step: String,
}

impl CompiledStep for PublishStep {
    fn render(&self, context: &minijinja::Value) -> Result<Json, TreeError> {
        Ok(super::keyed("publish", self.tree.render(context)?))
    }

    fn execute(&self, rendered: &Json, context: &StepContext) -> Result<StepSuccess, StepError> {
        let config: PublishConfig = super::typed("publish", &rendered["publish"])?;
        let wait = context.timeout.min(ACK_TIMEOUT);
        let outputs = match (&config.mqtt, &config.nats) {
            (Some(mqtt), None) => publish_mqtt(mqtt, wait, context)?,
            (None, Some(nats)) => {
                let run_id = context
                    .values
                    .get_attr("run")
                    .and_then(|run| run.get_attr("id"))
                    .map(|id| id.to_string())
                    .unwrap_or_default();
                let message_id = format!("vane-{run_id}-{}", self.step);
                publish_nats(nats, config.request.as_ref(), &message_id, wait)?
            }
            _ => {
                return Err(StepError::new(
                    "publish: give exactly one of `mqtt` or `nats`",
                ));
            }
        };
        Ok(StepSuccess {
            outputs,
            ..StepSuccess::default()
        })
    }

    fn summary(&self, outputs: &Outputs) -> Option<String> {
        outputs
            .get("to")
            .and_then(Json::as_str)
            .map(|to| format!("published to {to}"))
    }
}

/// A payload as bytes: text as it is, anything else as JSON.
fn payload_bytes(payload: &Json) -> Vec<u8> {
    match payload {
        Json::String(text) => text.clone().into_bytes(),
        Json::Null => Vec::new(),
        other => other.to_string().into_bytes(),
    }
}

fn publish_mqtt(
    settings: &MqttPublish,
    wait: Duration,
    context: &StepContext,
) -> Result<Outputs, StepError> {
    use rumqttc::{Client, Event, MqttOptions, Outgoing, Packet, QoS, RecvTimeoutError};
    let (host, port) = crate::broker::parse_mqtt_url(&settings.url)
        .map_err(|message| StepError::new(format!("publish: {message}")))?;
    if settings.topic.is_empty() || settings.topic.contains(['+', '#']) {
        return Err(StepError::new(format!(
            "publish: `{}` is not a topic to publish to (no wildcards)",
            settings.topic
        )));
    }
    let qos = match settings.qos.unwrap_or(1) {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        other => {
            return Err(StepError::new(format!(
                "publish: `qos` is 0 or 1, not {other}"
            )));
        }
    };
    let client_id = settings
        .client_id
        .clone()
        .unwrap_or_else(|| format!("vane-publish-{}", uuid::Uuid::new_v4().simple()));
    let mut options = MqttOptions::new(client_id, host, port);
    let ca_file = settings
        .ca_file
        .as_ref()
        .map(|file| context.workspace.join(file));
    crate::broker::apply_tls(&mut options, &settings.url, ca_file.as_deref())
        .map_err(|message| StepError::new(format!("publish: {message}")))?;
    options
        .set_clean_session(true)
        .set_keep_alive(Duration::from_secs(10));
    if let Some(username) = &settings.username {
        let password = settings.password.clone().unwrap_or_default();
        context.masker.add(&password);
        options.set_credentials(username.clone(), password);
    }
    let (client, mut connection) = Client::new(options, 4);
    let failed = |message: String| StepError::new(format!("publish: {}: {message}", settings.url));
    client
        .publish(
            settings.topic.clone(),
            qos,
            settings.retain,
            payload_bytes(&settings.payload),
        )
        .map_err(|error| failed(error.to_string()))?;
    let deadline = Instant::now() + wait;
    let outcome = loop {
        if context.cancel.is_cancelled() {
            let mut error = StepError::new("publish: cancelled");
            error.cancelled = true;
            break Err(error);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err(failed(format!(
                "the broker did not acknowledge the message within {}",
                crate::duration::format_duration(wait)
            )));
        }
        match connection.recv_timeout(left.min(Duration::from_millis(200))) {
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break Err(failed("disconnected".to_string())),
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) if qos == QoS::AtLeastOnce => break Ok(()),
            Ok(Ok(Event::Outgoing(Outgoing::Publish(_)))) if qos == QoS::AtMostOnce => {
                break Ok(());
            }
            Ok(Ok(Event::Incoming(Packet::ConnAck(ack))))
                if ack.code != rumqttc::ConnectReturnCode::Success =>
            {
                break Err(failed(format!(
                    "the broker refused the connection: {:?}",
                    ack.code
                )));
            }
            Ok(Ok(_)) => {}
            // No reconnect: the message is not kept for a later connection.
            Ok(Err(error)) => break Err(failed(error.to_string())),
        }
    };
    let _ = client.try_disconnect();
    // Let the DISCONNECT go out (a QoS 0 message with it); the connection is dropped after.
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        match connection.recv_timeout(Duration::from_millis(50)) {
            Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(_)) => {}
        }
    }
    outcome?;
    let mut outputs = Outputs::new();
    outputs.insert("published".to_string(), Json::Bool(true));
    outputs.insert(
        "to".to_string(),
        Json::String(format!("mqtt {}", settings.topic)),
    );
    Ok(outputs)
}

fn publish_nats(
    settings: &NatsPublish,
    request: Option<&RequestConfig>,
    message_id: &str,
    wait: Duration,
) -> Result<Outputs, StepError> {
    if !settings.url.starts_with("nats://") && !settings.url.starts_with("tls://") {
        return Err(StepError::new(format!(
            "publish: `{}` is not a `nats://host:port` URL",
            settings.url
        )));
    }
    if settings.subject.is_empty()
        || settings.subject.contains(char::is_whitespace)
        || settings.subject.contains(['*', '>'])
    {
        return Err(StepError::new(format!(
            "publish: `{}` is not a subject to publish to (no wildcards or spaces)",
            settings.subject
        )));
    }
    let reply_timeout = match request.and_then(|request| request.timeout.as_deref()) {
        Some(text) => crate::duration::parse_duration(text)
            .map_err(|message| StepError::new(format!("publish: `request.timeout`: {message}")))?,
        None => Duration::from_secs(5),
    };
    if request.is_some() && settings.jetstream {
        return Err(StepError::new(
            "publish: `request` waits for a reply from a responder; with `jetstream: true` the \
             stream answers (its PubAck) — give one or the other",
        ));
    }
    let mut headers = async_nats::HeaderMap::new();
    for (name, value) in &settings.headers {
        headers.insert(name.as_str(), value.as_str());
    }
    if settings.jetstream {
        headers.insert("Nats-Msg-Id", message_id);
    }
    let payload = payload_bytes(&settings.payload);
    let url = settings.url.clone();
    let subject = settings.subject.clone();
    let jetstream = settings.jetstream;
    let requesting = request.is_some();
    let message_id = message_id.to_string();
    let shown = settings.url.clone();
    let failed = |message: String| StepError::new(format!("publish: {shown}: {message}"));
    let work = async move {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(wait.min(Duration::from_secs(10)))
            .name("vane-publish")
            .connect(url.as_str())
            .await
            .map_err(|error| format!("cannot connect: {error}"))?;
        let mut outputs = Outputs::new();
        if jetstream {
            let context = async_nats::jetstream::new(client.clone());
            let ack = context
                .publish_with_headers(subject.clone(), headers, payload.into())
                .await
                .map_err(|error| format!("JetStream publish: {error}"))?;
            let ack = tokio::time::timeout(wait, ack)
                .await
                .map_err(|_| "no PubAck from JetStream in time".to_string())?
                .map_err(|error| format!("JetStream: {error}"))?;
            outputs.insert("stream".to_string(), Json::String(ack.stream.clone()));
            outputs.insert("sequence".to_string(), Json::from(ack.sequence));
            outputs.insert("duplicate".to_string(), Json::Bool(ack.duplicate));
            outputs.insert("message_id".to_string(), Json::String(message_id));
        } else if requesting {
            let reply = tokio::time::timeout(
                reply_timeout,
                client.request_with_headers(subject.clone(), headers, payload.into()),
            )
            .await
            .map_err(|_| {
                format!(
                    "no reply on `{subject}` within {}",
                    crate::duration::format_duration(reply_timeout)
                )
            })?
            .map_err(|error| match error.kind() {
                async_nats::RequestErrorKind::NoResponders => {
                    format!("no responders on `{subject}`: nothing is subscribed to answer")
                }
                async_nats::RequestErrorKind::TimedOut => format!(
                    "no reply on `{subject}` within {}",
                    crate::duration::format_duration(reply_timeout)
                ),
                _ => format!("request: {error}"),
            })?;
            let text = String::from_utf8_lossy(&reply.payload).into_owned();
            outputs.insert("reply".to_string(), Json::String(text));
        } else {
            client
                .publish_with_headers(subject.clone(), headers, payload.into())
                .await
                .map_err(|error| format!("publish: {error}"))?;
            tokio::time::timeout(wait, client.flush())
                .await
                .map_err(|_| "the server did not confirm the message in time".to_string())?
                .map_err(|error| format!("flush: {error}"))?;
        }
        let _ = client.drain().await;
        Ok::<Outputs, String>(outputs)
    };
    let mut outputs = crate::broker::runtime().block_on(work).map_err(failed)?;
    outputs.insert("published".to_string(), Json::Bool(true));
    outputs.insert(
        "to".to_string(),
        Json::String(format!("nats {}", settings.subject)),
    );
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::compile::testing::compile;

    #[test]
    fn command_topics_are_recognised() {
        assert!(is_command_topic("devices/th-1/commands"));
        assert!(is_command_topic("zigbee2mqtt/lamp/set"));
        assert!(is_command_topic("cmnd/tasmota/POWER"));
        assert!(!is_command_topic("devices/th-1/state"));
        assert!(!is_command_topic("sensors/commandant"));
    }

    #[test]
    fn a_publish_step_is_checked_at_load() {
        assert!(
            compile("publish: { mqtt: { url: 'mqtt://x', topic: t }, nats: { url: 'nats://x', subject: s } }", &[])
                .unwrap_err()
                .contains("give exactly one of `mqtt` or `nats`")
        );
        assert!(
            compile(
                "publish: { mqtt: { url: 'mqtt://x', topic: t }, request: {} }",
                &[]
            )
            .unwrap_err()
            .contains("MQTT 3.1.1 has no replies")
        );
        assert!(
            compile(
                "publish: { mqtt: { url: 'mqtt://x', topic: t, qos: 2 } }",
                &[]
            )
            .unwrap_err()
            .contains("`qos` is 0 or 1")
        );
        assert!(
            compile(
                "publish: { nats: { url: 'nats://x', subject: s }, request: { timeout: soon } }",
                &[]
            )
            .unwrap_err()
            .contains("publish.request.timeout")
        );
        compile(
            "publish: { nats: { url: 'nats://x', subject: 'a.{{ n }}', payload: { n: 1 } } }",
            &[],
        )
        .unwrap();
    }
}
