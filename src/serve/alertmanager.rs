//! Prometheus Alertmanager's webhook payload (version 4) as events.
//!
//! `split: alert` (the default) makes one event per alert: `type: alert`, `action` its status
//! (`firing` / `resolved`), `subject` its `alertname`, `data` the alert with the notification's
//! `groupLabels`, `commonLabels`, `commonAnnotations`, `externalURL`, `receiver` and `groupKey`.
//! Its id is `alertmanager:<fingerprint>:<status>:<startsAt>`: Alertmanager re-sends a whole group
//! every `repeat_interval` (and whenever one alert of it changes), and the alerts it re-sends are
//! the same ids, which the delivery memory already holds — they run nothing. `split: notification`
//! makes one event of the whole payload, its id derived from the group and its alerts' ids.

use crate::config::AlertSplit;
use crate::event::Event;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The events of one notification, or why it is not one (a 400).
pub fn events(body: &str, split: AlertSplit) -> Result<Vec<Event>, String> {
    let payload: Value =
        serde_json::from_str(body).map_err(|error| format!("the body is not JSON: {error}"))?;
    let Some(notification) = payload.as_object() else {
        return Err("the body is not an Alertmanager notification (a JSON object)".to_string());
    };
    match notification.get("version").and_then(Value::as_str) {
        Some("4") => {}
        Some(other) => {
            return Err(format!(
                "Alertmanager payload version `{other}` is not read; this vane reads version 4"
            ));
        }
        None => {
            return Err(
                "not an Alertmanager notification: no `version` (Alertmanager sends \"4\")"
                    .to_string(),
            );
        }
    }
    let alerts = notification
        .get("alerts")
        .and_then(Value::as_array)
        .ok_or("not an Alertmanager notification: no `alerts` list")?;
    let mut ids = Vec::new();
    let mut events = Vec::new();
    for (index, alert) in alerts.iter().enumerate() {
        let Some(alert) = alert.as_object() else {
            return Err(format!("alerts[{index}] is not an object"));
        };
        let text = |key: &str| {
            alert
                .get(key)
                .and_then(Value::as_str)
                .filter(|value| !value.is_empty())
                .ok_or_else(|| format!("alerts[{index}] has no `{key}`"))
        };
        let status = text("status")?;
        let id = format!(
            "alertmanager:{}:{status}:{}",
            text("fingerprint")?,
            text("startsAt")?
        );
        ids.push(id.clone());
        if split == AlertSplit::Notification {
            continue;
        }
        let mut data = alert.clone();
        for key in [
            "groupLabels",
            "commonLabels",
            "commonAnnotations",
            "externalURL",
            "receiver",
            "groupKey",
        ] {
            if let Some(value) = notification.get(key) {
                data.insert(key.to_string(), value.clone());
            }
        }
        let mut event = Event::with_id(id, "alertmanager", "alert", Value::Object(data));
        event.action = Some(status.to_string());
        event.subject = alertname(alert.get("labels"));
        events.push(event);
    }
    if split == AlertSplit::Alert {
        return Ok(events);
    }
    let status = notification
        .get("status")
        .and_then(Value::as_str)
        .ok_or("not an Alertmanager notification: no `status`")?;
    let group = notification
        .get("groupKey")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut digest = Sha256::new();
    digest.update(group.as_bytes());
    ids.sort();
    for id in &ids {
        digest.update(b"\n");
        digest.update(id.as_bytes());
    }
    let id = format!(
        "alertmanager:{}:{status}",
        hex::encode(&digest.finalize()[..16])
    );
    let mut event = Event::with_id(id, "alertmanager", "alert", payload.clone());
    event.action = Some(status.to_string());
    event.subject = alertname(notification.get("groupLabels"))
        .or_else(|| alertname(notification.get("commonLabels")));
    Ok(vec![event])
}

fn alertname(labels: Option<&Value>) -> Option<String> {
    labels
        .and_then(Value::as_object)
        .and_then(|labels: &Map<String, Value>| labels.get("alertname"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A notification as Alertmanager 0.25 sends it: one firing and one resolved alert.
    const NOTIFICATION: &str = r#"{
      "receiver": "vane", "status": "firing", "version": "4", "truncatedAlerts": 0,
      "groupKey": "{}:{alertname=\"HighErrorRate\"}",
      "groupLabels": {"alertname": "HighErrorRate"},
      "commonLabels": {"alertname": "HighErrorRate", "severity": "page"},
      "commonAnnotations": {}, "externalURL": "http://am.example:9093",
      "alerts": [
        {"status": "firing", "labels": {"alertname": "HighErrorRate", "severity": "page",
         "service": "api"}, "annotations": {"summary": "5% errors"},
         "startsAt": "2026-12-04T01:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "http://prom/graph", "fingerprint": "a1b2c3"},
        {"status": "resolved", "labels": {"alertname": "HighErrorRate", "severity": "page",
         "service": "web"}, "annotations": {},
         "startsAt": "2026-12-04T00:50:00Z", "endsAt": "2026-12-04T00:58:00Z",
         "generatorURL": "http://prom/graph", "fingerprint": "d4e5f6"}
      ]
    }"#;

    #[test]
    fn each_alert_is_an_event_with_its_status_and_the_groups_labels() {
        let events = events(NOTIFICATION, AlertSplit::Alert).unwrap();
        assert_eq!(events.len(), 2);
        let (firing, resolved) = (&events[0], &events[1]);
        assert_eq!(firing.kind, "alert");
        assert_eq!(firing.source, "alertmanager");
        assert_eq!(firing.action.as_deref(), Some("firing"));
        assert_eq!(firing.subject.as_deref(), Some("HighErrorRate"));
        assert_eq!(
            firing.id(),
            "alertmanager:a1b2c3:firing:2026-12-04T01:00:00Z"
        );
        let data = firing.data.value();
        assert_eq!(data["labels"]["service"], "api");
        assert_eq!(data["commonLabels"]["severity"], "page");
        assert_eq!(data["groupLabels"]["alertname"], "HighErrorRate");
        assert_eq!(data["externalURL"], "http://am.example:9093");
        assert_eq!(resolved.action.as_deref(), Some("resolved"));
        assert_eq!(
            resolved.id(),
            "alertmanager:d4e5f6:resolved:2026-12-04T00:50:00Z"
        );
    }

    #[test]
    fn a_resend_has_the_same_ids_and_a_notification_is_one_event() {
        let first = events(NOTIFICATION, AlertSplit::Notification).unwrap();
        let again = events(NOTIFICATION, AlertSplit::Notification).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].id(), again[0].id());
        assert_eq!(first[0].action.as_deref(), Some("firing"));
        assert_eq!(first[0].subject.as_deref(), Some("HighErrorRate"));
        assert_eq!(first[0].data.value()["alerts"][1]["fingerprint"], "d4e5f6");
        let resolved =
            NOTIFICATION.replacen("\"status\": \"firing\"", "\"status\": \"resolved\"", 1);
        let resolved = events(&resolved, AlertSplit::Notification).unwrap();
        assert_ne!(resolved[0].id(), first[0].id());
    }

    #[test]
    fn what_is_not_a_version_4_notification_is_refused_by_name() {
        assert!(
            events(r#"{"version":"3","alerts":[]}"#, AlertSplit::Alert)
                .unwrap_err()
                .contains("version `3`")
        );
        assert!(
            events("{}", AlertSplit::Alert)
                .unwrap_err()
                .contains("no `version`")
        );
        assert!(
            events(
                r#"{"version":"4","alerts":[{"status":"firing","startsAt":"x"}]}"#,
                AlertSplit::Alert
            )
            .unwrap_err()
            .contains("alerts[0] has no `fingerprint`")
        );
        assert!(
            events("[", AlertSplit::Alert)
                .unwrap_err()
                .contains("not JSON")
        );
    }
}
