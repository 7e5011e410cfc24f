//! `on:` compiled: event-type keys (exact or glob) with their filters, schedules and dispatch.

use super::config::{DispatchConfig, FilterConfig, InputConfig, ScheduleConfig};
use super::dispatch::DispatchInput;
use crate::glob::{Glob, PatternList};
use crate::yaml::{self, YamlError, YamlPath};
use serde_json::Value as Json;

/// One key of `on:`.
#[derive(Debug)]
pub struct Trigger {
    /// The key as written: an event type or a glob over types (`deploy.*`).
    pub key: String,
    /// Compiled when the key is a glob.
    pub key_glob: Option<Glob>,
    pub kind: TriggerKind,
}

#[derive(Debug)]
pub enum TriggerKind {
    Event(Box<Filter>),
    Schedule(Vec<String>),
    Dispatch(Vec<DispatchInput>),
}

/// A filter on one event type; every set key must pass (SPEC §2.2).
#[derive(Debug, Default)]
pub struct Filter {
    pub types: Option<Vec<String>>,
    pub sources: Option<PatternList>,
    pub repos: Option<ListFilter>,
    pub branches: Option<ListFilter>,
    pub tags: Option<ListFilter>,
    pub paths: Option<ListFilter>,
    /// Label name → globs over its value.
    pub labels: Option<Vec<(String, PatternList)>>,
}

/// `X` or `X-ignore`: GitHub does not allow both for one event type.
#[derive(Debug)]
pub enum ListFilter {
    Include(PatternList),
    Ignore(PatternList),
}

impl ListFilter {
    pub fn patterns(&self) -> &PatternList {
        match self {
            ListFilter::Include(list) | ListFilter::Ignore(list) => list,
        }
    }
}

/// True where a key of `on:` is a pattern over event types rather than one type.
fn is_type_glob(key: &str) -> bool {
    key.contains(['*', '?', '[', '+'])
}

impl Trigger {
    /// Compiles `on.<key>: <value>`. Errors carry the path of the offending value.
    pub fn compile(
        key: &str,
        value: serde_yaml::Value,
        text: &str,
        path: &YamlPath,
    ) -> Result<Trigger, YamlError> {
        let key_glob = if is_type_glob(key) {
            Some(Glob::new(key).map_err(|error| located(text, path, true, error.message))?)
        } else {
            None
        };
        let kind = match key {
            "schedule" => {
                let schedules: Vec<ScheduleConfig> = yaml::from_value(value, text, path)?;
                if schedules.is_empty() {
                    return Err(located(
                        text,
                        path,
                        false,
                        "`schedule` needs at least one `cron`".to_string(),
                    ));
                }
                let mut crons = Vec::new();
                for (index, schedule) in schedules.into_iter().enumerate() {
                    check_cron(&schedule.cron).map_err(|message| {
                        located(text, &path.index(index).key("cron"), false, message)
                    })?;
                    crons.push(schedule.cron);
                }
                TriggerKind::Schedule(crons)
            }
            "dispatch" => {
                let config: DispatchConfig = if value.is_null() {
                    DispatchConfig::default()
                } else {
                    yaml::from_value(value, text, path)?
                };
                let mut inputs = Vec::new();
                for (name, input) in config.inputs {
                    let input_path = path.key("inputs").key(&name);
                    // `name:` alone is a string input with no default.
                    let input = if input.is_null() {
                        Json::Object(serde_json::Map::new())
                    } else {
                        input
                    };
                    let input: InputConfig = serde_json::from_value(input).map_err(|error| {
                        located(text, &input_path, false, rewrite_json_error(&error))
                    })?;
                    inputs.push(DispatchInput::compile(&name, input, text, &input_path)?);
                }
                TriggerKind::Dispatch(inputs)
            }
            _ => {
                let config: FilterConfig = if value.is_null() {
                    FilterConfig::default()
                } else {
                    yaml::from_value(value, text, path)?
                };
                TriggerKind::Event(Box::new(compile_filter(config, text, path)?))
            }
        };
        Ok(Trigger {
            key: key.to_string(),
            key_glob,
            kind,
        })
    }

    /// Whether this trigger listens to events of `kind` at all.
    pub fn listens_to(&self, kind: &str) -> bool {
        match &self.key_glob {
            Some(glob) => glob.is_match(kind),
            None => self.key == kind,
        }
    }
}

fn rewrite_json_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let text = text.split(" at line ").next().unwrap_or_default();
    text.replace("unknown field", "unknown key")
        .replace("missing field", "missing required key")
}

fn located(text: &str, path: &YamlPath, at_key: bool, message: String) -> YamlError {
    YamlError::new(message, yaml::locate(text, path, at_key))
}

fn compile_filter(config: FilterConfig, text: &str, path: &YamlPath) -> Result<Filter, YamlError> {
    let list = |name: &str, patterns: Vec<String>| -> Result<PatternList, YamlError> {
        PatternList::new(&patterns).map_err(|error| {
            let at = if patterns.is_empty() {
                path.key(name)
            } else {
                path.key(name).index(error.index)
            };
            located(text, &at, false, format!("{name}: {}", error.message))
        })
    };
    let pair = |name: &str,
                include: Option<Vec<String>>,
                ignore: Option<Vec<String>>|
     -> Result<Option<ListFilter>, YamlError> {
        match (include, ignore) {
            (Some(_), Some(_)) => Err(located(
                text,
                &path.key(format!("{name}-ignore")),
                true,
                format!("`{name}` and `{name}-ignore` cannot both be set for one event type"),
            )),
            (Some(include), None) => Ok(Some(ListFilter::Include(list(name, include)?))),
            (None, Some(ignore)) => Ok(Some(ListFilter::Ignore(list(
                &format!("{name}-ignore"),
                ignore,
            )?))),
            (None, None) => Ok(None),
        }
    };
    if let Some(types) = &config.types
        && types.is_empty()
    {
        return Err(located(
            text,
            &path.key("types"),
            false,
            "`types` needs at least one value".to_string(),
        ));
    }
    let labels = match config.labels {
        Some(labels) => {
            let mut compiled = Vec::new();
            for (label, patterns) in labels {
                let at = path.key("labels").key(label.as_str());
                let list = PatternList::new(&patterns).map_err(|error| {
                    let at = if patterns.is_empty() {
                        at.clone()
                    } else {
                        at.index(error.index)
                    };
                    located(
                        text,
                        &at,
                        false,
                        format!("labels.{label}: {}", error.message),
                    )
                })?;
                compiled.push((label, list));
            }
            Some(compiled)
        }
        None => None,
    };
    Ok(Filter {
        labels,
        types: config.types,
        sources: config
            .sources
            .map(|sources| list("sources", sources))
            .transpose()?,
        repos: pair("repos", config.repos, config.repos_ignore)?,
        branches: pair("branches", config.branches, config.branches_ignore)?,
        tags: pair("tags", config.tags, config.tags_ignore)?,
        paths: pair("paths", config.paths, config.paths_ignore)?,
    })
}

/// A 5-field cron expression (minute hour day-of-month month day-of-week), checked field by field
/// by the one cron parser ([`crate::cron`]).
fn check_cron(expression: &str) -> Result<(), String> {
    crate::cron::Cron::parse(expression).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::check_cron;

    #[test]
    fn cron_fields_are_checked() {
        for good in ["*/5 * * * *", "0 9 * * 1-5", "15,45 0-6/2 1 1,6 0"] {
            assert_eq!(check_cron(good), Ok(()), "{good}");
        }
        for (bad, needle) in [
            ("* * * *", "has 4 fields"),
            ("61 * * * *", "minute `61` is outside 0-59"),
            ("*/0 * * * *", "step `0`"),
            ("a * * * *", "not a number"),
        ] {
            assert!(check_cron(bad).unwrap_err().contains(needle), "{bad}");
        }
    }
}
