//! The four gate keys checked at load: durations, counts, choices and templates, every problem
//! at its position. Keys are templates rendered per event; everything else is static.

use super::{DEFAULT_MAX_KEYS, Gate, GateKind, Member};
use crate::duration::parse_duration;
use crate::glob::Glob;
use crate::template::{TemplateTree, Templates, TreeMode};
use crate::workflow::config::{CorrelateConfig, CorrelateMember, DebounceConfig, ThrottleConfig};
use crate::workflow::config::{WindowConfig, WorkflowConfig};
use crate::workflow::step::{compile_condition, tree_error};
use crate::yaml::{self, YamlError, YamlPath};
use std::time::Duration;

struct Site<'a> {
    templates: &'a Templates,
    text: &'a str,
    root: YamlPath,
    errors: Vec<YamlError>,
}

impl Site<'_> {
    fn error(&mut self, key: &str, at_key: bool, message: String) {
        let path = if key.is_empty() {
            self.root.clone()
        } else {
            self.root.key(key)
        };
        self.errors.push(YamlError::new(
            message,
            yaml::locate(self.text, &path, at_key),
        ));
    }

    fn name(&self) -> String {
        self.root.to_string()
    }

    fn duration(&mut self, key: &str, text: &str) -> Option<Duration> {
        match parse_duration(text) {
            Ok(duration) if duration.is_zero() => {
                let message = format!("{}.{key}: must be longer than 0", self.name());
                self.error(key, false, message);
                None
            }
            Ok(duration) => Some(duration),
            Err(message) => {
                let message = format!("{}.{key}: {message}", self.name());
                self.error(key, false, message);
                None
            }
        }
    }

    fn template(&mut self, key: &str, source: &str) -> Option<TemplateTree> {
        let path = self.root.key(key);
        match TemplateTree::compile_string(self.templates, source, TreeMode::Text, &path) {
            Ok(tree) => Some(tree),
            Err(failure) => {
                self.errors.push(tree_error(self.text, failure));
                None
            }
        }
    }

    fn positive(&mut self, key: &str, value: u64) -> Option<u64> {
        if value == 0 {
            let message = format!("{}.{key}: must be at least 1", self.name());
            self.error(key, false, message);
            return None;
        }
        Some(value)
    }

    fn max_keys(&mut self, value: Option<u64>) -> u64 {
        match value {
            Some(value) => self.positive("max-keys", value).unwrap_or(DEFAULT_MAX_KEYS),
            None => DEFAULT_MAX_KEYS,
        }
    }

    fn choice(&mut self, key: &str, value: Option<&str>, choices: [&str; 2]) -> bool {
        match value {
            None => false,
            Some(value) if value == choices[0] => false,
            Some(value) if value == choices[1] => true,
            Some(other) => {
                let message = format!(
                    "{}.{key}: `{other}` is not one of `{}`, `{}`",
                    self.name(),
                    choices[0],
                    choices[1]
                );
                self.error(key, false, message);
                false
            }
        }
    }
}

/// The workflow's gate (`None` without one), or every problem found in its keys.
pub fn compile_gate(
    config: &mut WorkflowConfig,
    templates: &Templates,
    text: &str,
) -> Result<Option<Gate>, Vec<YamlError>> {
    let set: Vec<&str> = [
        ("correlate", config.correlate.is_some()),
        ("window", config.window.is_some()),
        ("debounce", config.debounce.is_some()),
        ("throttle", config.throttle.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(name, _)| name)
    .collect();
    if set.len() > 1 {
        return Err(vec![YamlError::new(
            format!(
                "one gate per workflow: `{}` and `{}` are both set",
                set[0], set[1]
            ),
            yaml::locate(text, &YamlPath::default().key(set[1]), true),
        )]);
    }
    let Some(name) = set.first().copied() else {
        return Ok(None);
    };
    let mut site = Site {
        templates,
        text,
        root: YamlPath::default().key(name),
        errors: Vec::new(),
    };
    let gate = if let Some(throttle) = config.throttle.take() {
        throttle_gate(&mut site, throttle)
    } else if let Some(window) = config.window.take() {
        window_gate(&mut site, window)
    } else if let Some(debounce) = config.debounce.take() {
        debounce_gate(&mut site, debounce)
    } else if let Some(correlate) = config.correlate.take() {
        correlate_gate(&mut site, correlate)
    } else {
        None
    };
    match gate {
        Some(gate) if site.errors.is_empty() => Ok(Some(gate)),
        _ => Err(site.errors),
    }
}

fn throttle_gate(site: &mut Site, config: ThrottleConfig) -> Option<Gate> {
    let key = site.template("key", &config.key);
    let once_within = config
        .once_within
        .as_deref()
        .and_then(|text| site.duration("once-within", text));
    let limit = match (config.limit, config.per.as_deref()) {
        (Some(limit), Some(per)) => {
            let limit = site.positive("limit", limit);
            let per = site.duration("per", per);
            limit.zip(per)
        }
        (Some(_), None) => {
            site.error(
                "limit",
                true,
                "throttle.limit: needs `per` (a duration: `limit: 3` + `per: 1h`)".into(),
            );
            None
        }
        (None, Some(_)) => {
            site.error(
                "per",
                true,
                "throttle.per: needs `limit` (how many runs per period)".into(),
            );
            None
        }
        (None, None) => None,
    };
    match (config.once_within.is_some(), config.limit.is_some()) {
        (true, true) => site.error(
            "limit",
            true,
            "throttle: set `once-within` or `limit` + `per`, not both".into(),
        ),
        (false, false) if config.per.is_none() => site.error(
            "",
            true,
            "throttle: needs `once-within` (a duration) or `limit` + `per`".into(),
        ),
        _ => {}
    }
    let unless_changed = config
        .unless_changed
        .as_deref()
        .and_then(|source| site.template("unless-changed", source));
    let max_keys = site.max_keys(config.max_keys);
    Some(Gate {
        kind: GateKind::Throttle {
            once_within,
            limit,
            unless_changed,
        },
        key: key?,
        max_keys,
    })
}

fn window_gate(site: &mut Site, config: WindowConfig) -> Option<Gate> {
    let key = site.template("key", &config.key);
    let within = site.duration("within", &config.within);
    let count = site.positive("count", config.count);
    let distinct = config
        .distinct
        .as_deref()
        .and_then(|source| site.template("distinct", source));
    let flush_end = site.choice("flush", config.flush.as_deref(), ["count", "end"]);
    let max_keys = site.max_keys(config.max_keys);
    Some(Gate {
        kind: GateKind::Window {
            within: within?,
            count: count?,
            distinct,
            flush_end,
        },
        key: key?,
        max_keys,
    })
}

fn debounce_gate(site: &mut Site, config: DebounceConfig) -> Option<Gate> {
    let key = site.template("key", &config.key);
    let quiet = site.duration("quiet", &config.quiet);
    let max_wait = config
        .max_wait
        .as_deref()
        .and_then(|text| site.duration("max-wait", text));
    if let (Some(quiet), Some(max_wait)) = (quiet, max_wait)
        && max_wait < quiet
    {
        site.error(
            "max-wait",
            false,
            "debounce.max-wait: must be at least `quiet`".into(),
        );
    }
    let keep_first = site.choice("keep", config.keep.as_deref(), ["last", "first"]);
    let max_keys = site.max_keys(config.max_keys);
    Some(Gate {
        kind: GateKind::Debounce {
            quiet: quiet?,
            max_wait,
            keep_first,
        },
        key: key?,
        max_keys,
    })
}

fn correlate_gate(site: &mut Site, config: CorrelateConfig) -> Option<Gate> {
    let key = site.template("key", &config.key);
    let within = site.duration("within", &config.within);
    let run_on_timeout = site.choice("on-timeout", config.on_timeout.as_deref(), ["drop", "run"]);
    let mut members = Vec::new();
    let all_of = site.root.key("all-of");
    if config.all_of.len() < 2 {
        site.error(
            "all-of",
            true,
            "correlate.all-of: needs at least two members (name → {on, if})".into(),
        );
    }
    for (name, value) in config.all_of {
        let Some(name) = name.as_str().map(str::to_string) else {
            site.error(
                "all-of",
                true,
                "correlate.all-of: member names must be strings".into(),
            );
            continue;
        };
        let path = all_of.key(&name);
        let member: CorrelateMember = match yaml::from_value(value, site.text, &path) {
            Ok(member) => member,
            Err(error) => {
                site.errors.push(error);
                continue;
            }
        };
        let on_glob = if member.on.contains(['*', '?', '[', '+']) {
            match Glob::new(&member.on) {
                Ok(glob) => Some(glob),
                Err(error) => {
                    site.errors.push(YamlError::new(
                        format!("{path}.on: {}", error.message),
                        yaml::locate(site.text, &path.key("on"), false),
                    ));
                    continue;
                }
            }
        } else {
            None
        };
        let condition = match member.condition.as_deref() {
            Some(source) => {
                match compile_condition(site.templates, source, site.text, &path.key("if")) {
                    Ok(condition) => Some(condition),
                    Err(error) => {
                        site.errors.push(error);
                        continue;
                    }
                }
            }
            None => None,
        };
        members.push(Member {
            name,
            on: member.on,
            on_glob,
            condition,
        });
    }
    let max_keys = site.max_keys(config.max_keys);
    Some(Gate {
        kind: GateKind::Correlate {
            within: within?,
            members,
            run_on_timeout,
        },
        key: key?,
        max_keys,
    })
}
