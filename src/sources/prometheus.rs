//! Prometheus polling: an instant query (`GET <url>/api/v1/query`) every `every`, its result one
//! event per series (`series: each`), one for their sum (`sum`), or one for the only series
//! (`one`, more is an error). Events are `type: metric.<source>`, `source: prometheus`, `subject`
//! the series' labels (`{service="api"}`, empty for a sum), `data` `{value, labels, query}`.
//!
//! `emit: always` emits every poll; `changed` when a series' value differs from its last one (the
//! first poll emits: a metric's current value is news); `crossing` when the value crosses
//! `threshold` and stays across it for `for` — `action: above` when it rises over the threshold,
//! `below` when it falls back to `threshold − hysteresis` or lower (a value hovering at the
//! threshold does not flap). Before any crossing a series counts as below: one already above when
//! vane starts is reported, once it has held for `for`.
//!
//! An empty result is not a zero (KEDA's "empty is 0" scaled services to their minimum during a
//! Prometheus outage): by default it is an event of type `metric.<source>.error` with `data.error`
//! saying why — emitted each poll under `always`, once until a value comes back otherwise. With
//! `empty: zero` it is the value 0 (of the sum or the one series; `each` has no series to emit).
//!
//! The cursor holds each series' last value and crossing state, whether the last poll was an
//! error, and a count of events (part of the ids `prometheus:<source>:<count>`).

use super::Found;
use crate::config::{EmptyResult, HeaderValue, MetricEmit, PrometheusSource, SeriesMode};
use crate::event::Event;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Cursor {
    #[serde(default)]
    count: u64,
    #[serde(default)]
    series: BTreeMap<String, SeriesState>,
    #[serde(default)]
    error: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct SeriesState {
    value: f64,
    /// The side of the threshold last reported (`crossing`).
    #[serde(default)]
    above: bool,
    /// A crossing seen but not held for `for` yet: since when (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending_since: Option<i64>,
}

/// One series of the result.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Map<String, Value>,
    pub value: f64,
}

impl Sample {
    /// `{a="1",b="2"}`: the series' identity and the events' `subject`.
    fn key(&self) -> String {
        let pairs: Vec<String> = self
            .labels
            .iter()
            .map(|(name, value)| format!("{name}={}", Value::from(value.as_str().unwrap_or(""))))
            .collect();
        format!("{{{}}}", pairs.join(","))
    }
}

/// What is wrong with a `prometheus` source's settings, as (key, message), found at load time.
pub fn check(source: &PrometheusSource) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    if !source.url.starts_with("http://") && !source.url.starts_with("https://") {
        problems.push(("url", format!("`{}` is not an http(s) URL", source.url)));
    }
    if source.query.trim().is_empty() {
        problems.push(("query", "give a PromQL query".to_string()));
    }
    let crossing = source.emit == MetricEmit::Crossing;
    if crossing && source.threshold.is_none() {
        problems.push((
            "threshold",
            "`emit: crossing` needs a `threshold` to cross".to_string(),
        ));
    }
    if !crossing {
        for (key, given) in [
            ("threshold", source.threshold.is_some()),
            ("for", source.hold.is_some()),
            ("hysteresis", source.hysteresis.is_some()),
        ] {
            if given {
                problems.push((key, "only used with `emit: crossing`".to_string()));
            }
        }
    }
    if let Some(hold) = &source.hold
        && let Err(message) = crate::duration::parse_duration(hold)
    {
        problems.push(("for", message));
    }
    if source
        .hysteresis
        .is_some_and(|band| band.is_nan() || band < 0.0)
    {
        problems.push(("hysteresis", "must be zero or more".to_string()));
    }
    problems
}

/// The samples of a `/api/v1/query` answer, or Prometheus's error.
pub fn samples(document: &Value) -> Result<Vec<Sample>, String> {
    if document["status"] != "success" {
        return Err(format!(
            "Prometheus answered {}: {}",
            document["errorType"].as_str().unwrap_or("an error"),
            document["error"].as_str().unwrap_or("(no message)")
        ));
    }
    let data = &document["data"];
    let parse = |pair: &Value| -> Result<f64, String> {
        let text = pair[1]
            .as_str()
            .ok_or("a sample without a value in the answer")?;
        text.parse::<f64>()
            .map_err(|_| format!("`{text}` is not a number"))
    };
    match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .ok_or("the answer has no `result` list")?
            .iter()
            .map(|series| {
                Ok(Sample {
                    labels: series["metric"].as_object().cloned().unwrap_or_default(),
                    value: parse(&series["value"])?,
                })
            })
            .collect(),
        Some("scalar") => Ok(vec![Sample {
            labels: Map::new(),
            value: parse(&data["result"])?,
        }]),
        other => Err(format!(
            "the query's result is a {}; give an instant vector or a scalar",
            other.unwrap_or("(none)")
        )),
    }
}

/// The series to judge: each one, their sum, or the only one — or why there is none.
fn select(source: &PrometheusSource, samples: Vec<Sample>) -> Result<Vec<Sample>, String> {
    let zero = || Sample {
        labels: Map::new(),
        value: 0.0,
    };
    if samples.is_empty() {
        return match (source.empty, source.series) {
            (EmptyResult::Zero, SeriesMode::Sum | SeriesMode::One) => Ok(vec![zero()]),
            (EmptyResult::Zero, SeriesMode::Each) => Ok(Vec::new()),
            (EmptyResult::Error, _) => Err(format!(
                "the query `{}` returned no series (an empty result is not a zero; `empty: zero` \
                 reads it as 0)",
                source.query
            )),
        };
    }
    if let Some(bad) = samples.iter().find(|sample| !sample.value.is_finite()) {
        return Err(format!(
            "the series {} has the value {}",
            bad.key(),
            bad.value
        ));
    }
    match source.series {
        SeriesMode::Each => Ok(samples),
        SeriesMode::Sum => Ok(vec![Sample {
            labels: Map::new(),
            value: samples.iter().map(|sample| sample.value).sum(),
        }]),
        SeriesMode::One if samples.len() == 1 => Ok(samples),
        SeriesMode::One => Err(format!(
            "`series: one` but the query returned {} series ({}); aggregate it (`sum(…)`) or use \
             `series: each` or `sum`",
            samples.len(),
            samples
                .iter()
                .take(3)
                .map(Sample::key)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// What one answer emits, and the cursor after it: the decision, apart from the HTTP.
fn judge(
    name: &str,
    source: &PrometheusSource,
    previous: &Cursor,
    answer: Result<Vec<Sample>, String>,
    now: DateTime<Utc>,
) -> (Vec<Event>, Cursor) {
    let mut next = previous.clone();
    let mut events = Vec::new();
    let kind = format!("metric.{name}");
    let event = |next: &mut Cursor, kind: &str, data: Value| {
        next.count += 1;
        let mut event = Event::with_id(
            format!("prometheus:{name}:{}", next.count),
            "prometheus",
            kind,
            data,
        );
        event.time = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        event
    };
    let selected = answer.and_then(|samples| select(source, samples));
    let samples = match selected {
        Ok(samples) => samples,
        Err(message) => {
            if source.emit == MetricEmit::Always || !previous.error {
                let data = json!({ "error": message, "query": source.query });
                let mut error = event(&mut next, &format!("{kind}.error"), data);
                error.action = Some("error".to_string());
                events.push(error);
            }
            next.error = true;
            return (events, next);
        }
    };
    next.error = false;
    let now_ms = now.timestamp_millis();
    let hold = source
        .hold
        .as_deref()
        .and_then(|text| crate::duration::parse_duration(text).ok())
        .map_or(0, |hold| hold.as_millis() as i64);
    for sample in samples {
        let key = sample.key();
        let last = previous.series.get(&key);
        let mut state = last.cloned().unwrap_or_default();
        state.value = sample.value;
        let mut data = json!({
            "value": sample.value,
            "labels": sample.labels,
            "query": source.query,
        });
        let action = match source.emit {
            MetricEmit::Always => Some(None),
            MetricEmit::Changed => {
                (last.is_none_or(|last| last.value != sample.value)).then_some(None)
            }
            MetricEmit::Crossing => {
                let threshold = source.threshold.unwrap_or_default();
                let band = source.hysteresis.unwrap_or(0.0);
                let across = if state.above {
                    sample.value <= threshold - band
                } else {
                    sample.value > threshold
                };
                if !across {
                    state.pending_since = None;
                    None
                } else {
                    let since = *state.pending_since.get_or_insert(now_ms);
                    if now_ms - since >= hold {
                        state.above = !state.above;
                        state.pending_since = None;
                        data["threshold"] = json!(threshold);
                        data["crossed"] = json!(if state.above { "above" } else { "below" });
                        Some(Some(if state.above { "above" } else { "below" }))
                    } else {
                        None
                    }
                }
            }
        };
        if let Some(action) = action {
            let mut emitted = event(&mut next, &kind, data);
            emitted.subject = Some(key.clone());
            emitted.action = action.map(str::to_string);
            events.push(emitted);
        }
        next.series.insert(key, state);
    }
    (events, next)
}

/// A form value, percent-encoded (everything but the unreserved characters).
fn form_encode(value: &str) -> String {
    crate::percent::encode(value, crate::percent::UNRESERVED)
}

/// Polls `source` once.
pub fn poll(
    name: &str,
    source: &PrometheusSource,
    client: &reqwest::blocking::Client,
    cursor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Found, String> {
    let previous: Cursor = super::read_cursor(cursor)?;
    let shown = crate::steps::gitops::repo::scrub_url(&source.url);
    let endpoint = format!("{}/api/v1/query", source.url.trim_end_matches('/'));
    // POST with a form body, as Prometheus accepts: a long query does not hit a URL limit.
    let mut request = client
        .post(&endpoint)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("query={}", form_encode(&source.query)));
    for (header, value) in &source.headers {
        let value = match value {
            HeaderValue::Text(text) => text.clone(),
            HeaderValue::Secret(secret) => secret
                .resolve()
                .map_err(|message| format!("header `{header}`: {message}"))?,
        };
        request = request.header(header.as_str(), value);
    }
    let response = request
        .send()
        .map_err(|error| format!("POST `{shown}/api/v1/query`: {}", error.without_url()))?;
    let status = response.status();
    let body = response
        .bytes()
        .map_err(|error| format!("POST `{shown}/api/v1/query`: {}", error.without_url()))?;
    let document: Value = serde_json::from_slice(&body).map_err(|_| {
        format!("POST `{shown}/api/v1/query`: answered {status}, not a Prometheus query result")
    })?;
    // A bad query (400, 422) is the user's to fix: an error event, like an empty result. A
    // Prometheus that is down or broken (5xx) is a failed poll, retried next time.
    if status.is_server_error() {
        return Err(format!(
            "POST `{shown}/api/v1/query`: answered {status}: {}",
            document["error"].as_str().unwrap_or("(no message)")
        ));
    }
    let (events, next) = judge(name, source, &previous, samples(&document), now);
    Ok(Found {
        events,
        cursor: (next != previous)
            .then(|| serde_json::to_string(&next).ok())
            .flatten(),
        note: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(emit: MetricEmit, series: SeriesMode) -> PrometheusSource {
        PrometheusSource {
            url: "http://127.0.0.1:9090".to_string(),
            query: "load".to_string(),
            emit,
            threshold: None,
            hold: None,
            hysteresis: None,
            series,
            empty: EmptyResult::Error,
            headers: BTreeMap::new(),
            every: None,
        }
    }

    fn sample(service: &str, value: f64) -> Sample {
        let mut labels = Map::new();
        labels.insert("service".to_string(), json!(service));
        Sample { labels, value }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    /// Runs readings (seconds, value) through `judge`: the actions emitted, per reading.
    fn run(source: &PrometheusSource, readings: &[(i64, f64)]) -> Vec<Vec<String>> {
        let mut cursor = Cursor::default();
        let mut out = Vec::new();
        for (seconds, value) in readings {
            let (events, next) = judge(
                "cpu",
                source,
                &cursor,
                Ok(vec![sample("api", *value)]),
                at(*seconds),
            );
            out.push(
                events
                    .iter()
                    .map(|event| event.action.clone().unwrap_or_else(|| "value".to_string()))
                    .collect(),
            );
            cursor = next;
        }
        out
    }

    #[test]
    fn crossing_emits_once_per_crossing_after_for_with_hysteresis() {
        let mut crossing = source(MetricEmit::Crossing, SeriesMode::Each);
        crossing.threshold = Some(10.0);
        crossing.hysteresis = Some(2.0);
        crossing.hold = Some("60s".to_string());
        let emitted = run(
            &crossing,
            &[
                (0, 5.0),   // below: nothing
                (30, 12.0), // above, not held yet
                (60, 13.0), // held 30s
                (90, 14.0), // held 60s: above
                (120, 15.0),
                (150, 9.0),  // under the threshold but inside the band: still above
                (180, 7.0),  // below the band, not held yet
                (210, 11.0), // back up: the pending fall is forgotten
                (240, 7.5),
                (300, 8.0), // held 60s: below
            ],
        );
        let expected: Vec<Vec<&str>> = vec![
            vec![],
            vec![],
            vec![],
            vec!["above"],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec!["below"],
        ];
        assert_eq!(emitted, expected);
    }

    #[test]
    fn without_for_a_crossing_is_immediate_and_starting_above_is_reported() {
        let mut crossing = source(MetricEmit::Crossing, SeriesMode::Each);
        crossing.threshold = Some(10.0);
        let emitted = run(&crossing, &[(0, 50.0), (30, 50.0), (60, 10.0), (90, 10.0)]);
        let expected: Vec<Vec<&str>> = vec![vec!["above"], vec![], vec!["below"], vec![]];
        assert_eq!(emitted, expected);
    }

    #[test]
    fn changed_is_quiet_while_the_value_holds_and_always_is_not() {
        let changed = source(MetricEmit::Changed, SeriesMode::Each);
        let emitted = run(&changed, &[(0, 1.0), (30, 1.0), (60, 2.0), (90, 2.0)]);
        let expected: Vec<Vec<&str>> = vec![vec!["value"], vec![], vec!["value"], vec![]];
        assert_eq!(emitted, expected);
        let always = source(MetricEmit::Always, SeriesMode::Each);
        assert_eq!(run(&always, &[(0, 1.0), (30, 1.0)]).concat().len(), 2);
    }

    #[test]
    fn series_each_sum_and_one() {
        let both = vec![sample("api", 2.0), sample("web", 3.5)];
        let each = source(MetricEmit::Always, SeriesMode::Each);
        let (events, _) = judge("cpu", &each, &Cursor::default(), Ok(both.clone()), at(0));
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].kind, "metric.cpu");
        assert_eq!(events[0].subject.as_deref(), Some("{service=\"api\"}"));
        assert_eq!(events[1].data.value()["value"], 3.5);
        assert_eq!(events[1].data.value()["labels"]["service"], "web");
        let sum = source(MetricEmit::Always, SeriesMode::Sum);
        let (events, _) = judge("cpu", &sum, &Cursor::default(), Ok(both.clone()), at(0));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data.value()["value"], 5.5);
        let one = source(MetricEmit::Always, SeriesMode::One);
        let (events, _) = judge("cpu", &one, &Cursor::default(), Ok(both), at(0));
        assert_eq!(events[0].kind, "metric.cpu.error");
        assert!(
            events[0].data.value()["error"]
                .as_str()
                .unwrap()
                .contains("`series: one` but the query returned 2 series")
        );
    }

    #[test]
    fn an_empty_result_is_an_error_once_not_a_zero_unless_asked() {
        let changed = source(MetricEmit::Changed, SeriesMode::Sum);
        let (events, cursor) = judge("cpu", &changed, &Cursor::default(), Ok(vec![]), at(0));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, "metric.cpu.error");
        assert_eq!(events[0].action.as_deref(), Some("error"));
        assert!(
            events[0].data.value()["error"]
                .as_str()
                .unwrap()
                .contains("returned no series")
        );
        let (again, cursor) = judge("cpu", &changed, &cursor, Ok(vec![]), at(30));
        assert!(again.is_empty(), "the same error is not news: {again:?}");
        let (back, _) = judge(
            "cpu",
            &changed,
            &cursor,
            Ok(vec![sample("api", 1.0)]),
            at(60),
        );
        assert_eq!(back[0].kind, "metric.cpu");
        let mut zero = source(MetricEmit::Always, SeriesMode::Sum);
        zero.empty = EmptyResult::Zero;
        let (events, _) = judge("cpu", &zero, &Cursor::default(), Ok(vec![]), at(0));
        assert_eq!(events[0].kind, "metric.cpu");
        assert_eq!(events[0].data.value()["value"], 0.0);
    }

    #[test]
    fn answers_are_read_as_vectors_or_scalars() {
        let vector = json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"__name__": "up", "job": "x"}, "value": [1.7e9, "1"]}]}});
        let read = samples(&vector).unwrap();
        assert_eq!(read[0].value, 1.0);
        assert_eq!(read[0].key(), "{__name__=\"up\",job=\"x\"}");
        let scalar = json!({"status": "success", "data": {"resultType": "scalar",
            "result": [1.7e9, "0.25"]}});
        assert_eq!(samples(&scalar).unwrap()[0].value, 0.25);
        let error = json!({"status": "error", "errorType": "bad_data", "error": "parse error"});
        assert_eq!(
            samples(&error).unwrap_err(),
            "Prometheus answered bad_data: parse error"
        );
        let matrix = json!({"status": "success", "data": {"resultType": "matrix", "result": []}});
        assert!(samples(&matrix).unwrap_err().contains("matrix"));
    }

    #[test]
    fn queries_are_form_encoded() {
        assert_eq!(
            form_encode("sum(rate(x{a=\"b c\"}[5m])) > 0.5"),
            "sum%28rate%28x%7Ba%3D%22b%20c%22%7D%5B5m%5D%29%29%20%3E%200.5"
        );
    }

    #[test]
    fn settings_are_checked_at_load() {
        let mut crossing = source(MetricEmit::Crossing, SeriesMode::Each);
        assert_eq!(check(&crossing)[0].0, "threshold");
        crossing.threshold = Some(1.0);
        crossing.hold = Some("2 minutes".to_string());
        assert_eq!(check(&crossing)[0].0, "for");
        let mut changed = source(MetricEmit::Changed, SeriesMode::Each);
        changed.hysteresis = Some(1.0);
        assert_eq!(
            check(&changed),
            vec![("hysteresis", "only used with `emit: crossing`".to_string())]
        );
    }
}
