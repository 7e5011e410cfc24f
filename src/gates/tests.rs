use super::*;
use serde_json::json;

fn gate(kind: GateKind) -> Gate {
    Gate {
        kind,
        key: TemplateTree::Literal(json!("k")),
        max_keys: 2,
    }
}

fn arrival<'a>(envelope: &'a Json, now_ms: i64, value: Option<&str>) -> Arrival<'a> {
    Arrival {
        key: "k",
        event_id: envelope["id"].as_str().unwrap_or("e"),
        explicit_id: false,
        seen: false,
        envelope,
        value: value.map(str::to_string),
        members: Vec::new(),
        now_ms,
        run_id: "run-1",
        live_keys: 0,
    }
}

/// Feeds events at the given times, keeping the row as a store would; the verdicts' words.
fn feed(gate: &Gate, times: &[(i64, Option<&str>)]) -> (Vec<&'static str>, Option<GateRow>) {
    let envelope = json!({"id": "e", "data": {}});
    let mut row: Option<GateRow> = None;
    let mut words = Vec::new();
    for (now, value) in times {
        let decision = decide(gate, row.as_ref(), &arrival(&envelope, *now, *value));
        words.push(decision.verdict.word());
        row = decision.row;
    }
    (words, row)
}

#[test]
fn throttle_once_within_drops_repeats_until_the_time_passes_or_the_value_changes() {
    let gate = gate(GateKind::Throttle {
        once_within: Some(Duration::from_secs(60)),
        limit: None,
        unless_changed: Some(TemplateTree::Literal(json!("x"))),
    });
    let (words, row) = feed(
        &gate,
        &[
            (0, Some("firing")),
            (1_000, Some("firing")),
            (2_000, Some("firing")),
            (3_000, Some("resolved")),
            (4_000, Some("resolved")),
            (63_000, Some("resolved")),
        ],
    );
    assert_eq!(
        words,
        ["run", "suppress", "suppress", "run", "suppress", "run"]
    );
    assert_eq!(row.unwrap().state.suppressed, 0);
}

#[test]
fn throttle_limit_per_is_a_sliding_log() {
    let gate = gate(GateKind::Throttle {
        once_within: None,
        limit: Some((2, Duration::from_secs(10))),
        unless_changed: None,
    });
    let (words, _) = feed(
        &gate,
        &[(0, None), (9_000, None), (9_500, None), (10_001, None)],
    );
    assert_eq!(words, ["run", "run", "suppress", "run"]);
}

#[test]
fn a_throttle_reason_says_when_it_ran_and_until_when_it_suppresses() {
    let gate = gate(GateKind::Throttle {
        once_within: Some(Duration::from_secs(1800)),
        limit: None,
        unless_changed: None,
    });
    let envelope = json!({"id": "e"});
    let first = decide(&gate, None, &arrival(&envelope, 43_203_000, None));
    let second = decide(
        &gate,
        first.row.as_ref(),
        &arrival(&envelope, 43_204_000, None),
    );
    assert_eq!(
        second.reason,
        "throttle: key `k` ran at 12:00:03Z (run run-1…); suppressed until 12:30:03Z (once-within 30m; 1 suppressed so far)"
    );
}

#[test]
fn a_window_runs_on_the_count_with_every_event() {
    let gate = gate(GateKind::Window {
        within: Duration::from_secs(60),
        count: 3,
        distinct: None,
        flush_end: false,
    });
    let envelope = json!({"id": "e"});
    let mut row = None;
    let mut last = None;
    for now in [0, 10_000, 20_000] {
        let decision = decide(&gate, row.as_ref(), &arrival(&envelope, now, None));
        row = decision.row.clone();
        last = Some(decision);
    }
    let last = last.unwrap();
    let Verdict::Run { context } = last.verdict else {
        panic!("the third event runs: {last:?}");
    };
    assert_eq!(context["window"]["events"].as_array().unwrap().len(), 3);
    assert_eq!(context["window"]["count"], 3);
    assert!(last.row.is_none(), "the window closes");
    // An expired window starts over: two late events do not run.
    let (words, _) = feed(&gate, &[(0, None), (10_000, None), (70_000, None)]);
    assert_eq!(words, ["hold", "hold", "hold"]);
}

#[test]
fn a_distinct_window_counts_values() {
    let gate = gate(GateKind::Window {
        within: Duration::from_secs(60),
        count: 2,
        distinct: Some(TemplateTree::Literal(json!("x"))),
        flush_end: false,
    });
    let (words, _) = feed(&gate, &[(0, Some("a")), (1, Some("a")), (2, Some("b"))]);
    assert_eq!(words, ["hold", "hold", "run"]);
}

#[test]
fn a_flush_end_window_fires_at_its_end_only_when_the_count_was_reached() {
    let gate = gate(GateKind::Window {
        within: Duration::from_secs(60),
        count: 2,
        distinct: None,
        flush_end: true,
    });
    let (words, row) = feed(&gate, &[(0, None), (1_000, None), (2_000, None)]);
    assert_eq!(words, ["hold", "hold", "hold"]);
    let row = row.unwrap();
    assert_eq!(row.due_ms, Some(60_000));
    let (context, _) = fire(&gate, "k", &row).unwrap();
    assert_eq!(context["window"]["count"], 3);
    let (_, short) = feed(&gate, &[(0, None)]);
    assert!(fire(&gate, "k", &short.unwrap()).is_none());
}

#[test]
fn a_debounce_waits_for_quiet_and_never_past_max_wait() {
    let gate = gate(GateKind::Debounce {
        quiet: Duration::from_secs(30),
        max_wait: Some(Duration::from_secs(60)),
        keep_first: false,
    });
    let times: Vec<(i64, Option<&str>)> = (0..20).map(|i| (i * 1_000, None)).collect();
    let (words, row) = feed(&gate, &times);
    assert!(words.iter().all(|word| *word == "hold"));
    let row = row.unwrap();
    assert_eq!(row.due_ms, Some(19_000 + 30_000));
    let (context, _) = fire(&gate, "k", &row).unwrap();
    assert_eq!(context["debounce"]["count"], 20);
    // Never quiet: an event every 10 s; the deadline stops at 60 s from the first.
    let times: Vec<(i64, Option<&str>)> = (0..10).map(|i| (i * 10_000, None)).collect();
    let (_, row) = feed(&gate, &times[..6]);
    assert_eq!(row.unwrap().due_ms, Some(60_000));
}

#[test]
fn a_correlation_runs_when_every_member_arrived_for_the_key() {
    let gate = gate(GateKind::Correlate {
        within: Duration::from_secs(3600),
        members: ["ci", "approved"]
            .into_iter()
            .map(|name| Member {
                name: name.to_string(),
                on: name.to_string(),
                on_glob: None,
                condition: None,
            })
            .collect(),
        run_on_timeout: true,
    });
    let envelope = json!({"id": "e"});
    let mut ci = arrival(&envelope, 0, None);
    ci.members = vec!["ci".to_string()];
    let first = decide(&gate, None, &ci);
    assert_eq!(first.verdict, Verdict::Hold);
    assert!(
        first.reason.contains("waiting for [approved]"),
        "{}",
        first.reason
    );
    let (context, _) = fire(&gate, "k", first.row.as_ref().unwrap()).unwrap();
    assert_eq!(context["correlation"]["missing"], json!(["approved"]));
    let mut approved = arrival(&envelope, 10, None);
    approved.members = vec!["approved".to_string()];
    let second = decide(&gate, first.row.as_ref(), &approved);
    let Verdict::Run { context } = second.verdict else {
        panic!("both arrived: {second:?}");
    };
    assert_eq!(context["correlation"]["missing"], json!([]));
    let none = decide(&gate, None, &arrival(&envelope, 0, None));
    assert_eq!(none.verdict, Verdict::Suppress);
}

#[test]
fn a_new_key_over_max_keys_is_refused() {
    let gate = gate(GateKind::Debounce {
        quiet: Duration::from_secs(30),
        max_wait: None,
        keep_first: false,
    });
    let envelope = json!({"id": "e"});
    let mut full = arrival(&envelope, 0, None);
    full.live_keys = 2;
    let decision = decide(&gate, None, &full);
    assert_eq!(decision.verdict, Verdict::Refused);
    assert_eq!(
        decision.reason,
        "debounce: key `k` refused: the workflow has 2 live keys (max-keys 2)"
    );
    assert!(decision.row.is_none());
}

#[test]
fn fire_ids_are_deterministic() {
    assert_eq!(fire_id("w", "k", 5), "gate:w:k:5");
}
