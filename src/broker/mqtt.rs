//! The MQTT source: topic filters subscribed at QoS 1 in a persistent session (clean session
//! off, a stable client id), each message one event with `subject` = the topic and `data` = the
//! JSON payload (`{"value": N}` for a bare number). A message is acknowledged (PUBACK) only once
//! it is queued, so a crash in between has the broker deliver it again. With `share` (the
//! default) the filters are shared subscriptions, `$share/<group>/<filter>`: the vane processes
//! of a cluster get each message once between them. The client reconnects with backoff.

use super::subscriptions::{Backoff, push_until_stopped};
use crate::cancel::CancelToken;
use crate::config::{MqttSource, Source};
use crate::event::Event;
use crate::queue::Queue;
use rumqttc::{Client, Event as MqttEvent, MqttOptions, Packet, QoS, RecvTimeoutError};
use std::time::Duration;

/// The type of the events when the source does not say.
pub const DEFAULT_MQTT_TYPE: &str = "mqtt.message";

/// How long one wait for a packet lasts before the stop flag is looked at again.
const POLL: Duration = Duration::from_millis(200);

/// `mqtt://host[:port]` (1883 by default) or `mqtts://host[:port]` (TLS, 8883 by default) →
/// host and port.
pub fn parse_mqtt_url(url: &str) -> Result<(String, u16), String> {
    let (rest, default_port) = match (url.strip_prefix("mqtt://"), url.strip_prefix("mqtts://")) {
        (Some(rest), _) => (rest, 1883),
        (None, Some(rest)) => (rest, 8883),
        (None, None) => {
            return Err(format!(
                "`{url}` is not an `mqtt://host:port` or `mqtts://host:port` URL"
            ));
        }
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("`{url}`: no host"));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => {
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("`{url}`: `{port}` is not a port"))?;
            Ok((host.to_string(), port))
        }
        Some(_) => Err(format!("`{url}`: no host")),
        None => Ok((authority.to_string(), default_port)),
    }
}

/// For an `mqtts://` URL, TLS on `options`: verified against the CA certificate (PEM) in
/// `ca_file`, else the system's trusted roots. `mqtt://` is left as it is.
pub fn apply_tls(
    options: &mut MqttOptions,
    url: &str,
    ca_file: Option<&std::path::Path>,
) -> Result<(), String> {
    if !url.starts_with("mqtts://") {
        return Ok(());
    }
    let config = match ca_file {
        Some(path) => rumqttc::TlsConfiguration::SimpleNative {
            ca: std::fs::read(path)
                .map_err(|error| format!("ca-file `{}`: {error}", path.display()))?,
            client_auth: None,
        },
        None => rumqttc::TlsConfiguration::Native,
    };
    options.set_transport(rumqttc::Transport::tls_with_config(config));
    Ok(())
}

/// The event one message carries. MQTT messages have no id of their own, and the same reading
/// published twice is two readings: each message gets a fresh id.
pub fn mqtt_event(kind: Option<&str>, topic: &str, payload: &[u8]) -> Result<Event, String> {
    let mut event = super::nats::broker_event("mqtt", kind.unwrap_or(DEFAULT_MQTT_TYPE), payload)?;
    if event.subject.is_none() {
        event.subject = Some(topic.to_string());
    }
    if !event.has_id() {
        event.set_id(uuid::Uuid::new_v4().to_string());
    }
    Ok(event)
}

/// The client id: configured, else `vane-<source>-<instance>` (`$VANE_INSTANCE`, else the host
/// name) — stable across restarts, so the broker keeps the session while the process is away.
fn client_id(source: &Source, settings: &MqttSource) -> String {
    if let Some(id) = &settings.client_id {
        return id.clone();
    }
    let instance = std::env::var("VANE_INSTANCE")
        .ok()
        .filter(|instance| !instance.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|name| name.trim().to_string())
        })
        .filter(|instance| !instance.is_empty())
        .unwrap_or_else(|| "local".to_string());
    format!("vane-{}-{instance}", source.name)
}

/// What is subscribed for `filter`.
fn subscription(settings: &MqttSource, filter: &str) -> String {
    match &settings.share {
        Some(group) => format!("$share/{group}/{filter}"),
        None => filter.to_string(),
    }
}

/// Runs one MQTT source until `stop`.
pub(super) fn run(source: &Source, settings: &MqttSource, queue: &dyn Queue, stop: &CancelToken) {
    let (host, port) = match parse_mqtt_url(&settings.url) {
        Ok(address) => address,
        Err(message) => {
            tracing::error!("source `{}`: {message}", source.name);
            return;
        }
    };
    let mut options = MqttOptions::new(client_id(source, settings), host, port);
    if let Err(message) = apply_tls(&mut options, &settings.url, settings.ca_file.as_deref()) {
        tracing::error!(source = %source.name, "source `{}`: {message}", source.name);
        return;
    }
    options
        .set_clean_session(false)
        .set_keep_alive(Duration::from_secs(15))
        .set_manual_acks(true);
    if let Some(username) = &settings.username {
        let password = match settings.password.as_ref().map(|secret| secret.resolve()) {
            Some(Ok(password)) => password,
            Some(Err(message)) => {
                tracing::error!("source `{}`: password: {message}", source.name);
                return;
            }
            None => String::new(),
        };
        options.set_credentials(username.clone(), password);
    }
    let (client, mut connection) = Client::new(options, 64);
    let mut backoff = Backoff::default();
    let mut down = false;
    while !stop.is_cancelled() {
        match connection.recv_timeout(POLL) {
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
            Ok(Ok(MqttEvent::Incoming(Packet::ConnAck(_)))) => {
                if down {
                    tracing::info!("source `{}`: reconnected to {}", source.name, settings.url);
                }
                down = false;
                backoff.reset();
                // Every time: a broker that lost the session (restarted without persistence)
                // must learn the subscriptions again; for one that kept it, this is a no-op.
                let filters = settings.topics.iter().map(|filter| {
                    rumqttc::SubscribeFilter::new(subscription(settings, filter), QoS::AtLeastOnce)
                });
                if let Err(error) = client.try_subscribe_many(filters) {
                    tracing::error!("source `{}`: cannot subscribe: {error}", source.name);
                }
            }
            Ok(Ok(MqttEvent::Incoming(Packet::Publish(publish)))) => {
                match mqtt_event(settings.kind.as_deref(), &publish.topic, &publish.payload) {
                    Ok(event) => {
                        if !push_until_stopped(queue, &source.name, &event, stop) {
                            return;
                        }
                    }
                    Err(problem) => tracing::error!(
                        "source `{}`: a message on `{}` is not an event: {problem}",
                        source.name,
                        publish.topic
                    ),
                }
                let _ = client.try_ack(&publish);
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                if !down {
                    tracing::warn!(
                        "source `{}`: {}: {error}; reconnecting",
                        source.name,
                        settings.url
                    );
                }
                down = true;
                backoff.sleep(stop);
            }
        }
    }
    let _ = client.try_disconnect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_host_and_a_port() {
        assert_eq!(
            parse_mqtt_url("mqtt://127.0.0.1:1884").unwrap(),
            ("127.0.0.1".to_string(), 1884)
        );
        assert_eq!(
            parse_mqtt_url("mqtt://broker").unwrap(),
            ("broker".to_string(), 1883)
        );
        assert_eq!(
            parse_mqtt_url("mqtts://broker").unwrap(),
            ("broker".to_string(), 8883)
        );
        assert!(parse_mqtt_url("ssl://broker").is_err());
        assert!(parse_mqtt_url("mqtt://").is_err());
    }

    #[test]
    fn a_bare_reading_is_a_value_on_its_topic() {
        let event = mqtt_event(None, "sensors/kitchen/temperature", b"91").unwrap();
        assert_eq!(event.kind, DEFAULT_MQTT_TYPE);
        assert_eq!(event.source, "mqtt");
        assert_eq!(
            event.subject.as_deref(),
            Some("sensors/kitchen/temperature")
        );
        assert_eq!(event.data.value(), &serde_json::json!({"value": 91}));
        let again = mqtt_event(None, "sensors/kitchen/temperature", b"91").unwrap();
        assert_ne!(event.id(), again.id(), "two readings, two events");
        let json = mqtt_event(Some("reading"), "t", br#"{"value": 91}"#).unwrap();
        assert_eq!(json.kind, "reading");
        assert_eq!(json.data.value(), &serde_json::json!({"value": 91}));
    }
}
