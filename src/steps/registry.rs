//! The list of step kinds. The action keys, the "exactly one action" rule, the keys a step may
//! have beside the common ones, the step's JSON Schema and the loader's per-kind compile all come
//! from it; the engine calls the compiled steps it produced.

use super::{StepKind, StepSite, emit, gitops, http, notify, publish, render, run, scale};
use crate::yaml::YamlError;
use schemars::{Schema, SchemaGenerator};
use serde_json::{Map, Value as Json};
use serde_yaml::{Mapping, Value as Yaml};

/// The kinds this vane has, in the order messages and the schema list them.
pub static BUILTIN: &[&dyn StepKind] = &[
    &run::RunKind,
    &http::HttpKind,
    &notify::NotifyKind,
    &render::RenderKind,
    &gitops::GitopsKind,
    &scale::ScaleKind,
    &emit::EmitKind,
    &publish::PublishKind,
];

/// The step kinds a workflow set is loaded with.
#[derive(Clone)]
pub struct Registry {
    kinds: Vec<&'static dyn StepKind>,
}

impl Registry {
    /// The kinds of [`BUILTIN`].
    pub fn builtin() -> Registry {
        Registry {
            kinds: BUILTIN.to_vec(),
        }
    }

    /// This registry and one more kind. Its keys must be new: two kinds cannot own one key.
    pub fn with(mut self, kind: &'static dyn StepKind) -> Registry {
        let taken = |key: &str| self.owner(key).is_some();
        assert!(
            !taken(kind.key()) && !kind.sibling_keys().iter().any(|key| taken(key)),
            "step kind `{}` reuses a key of another kind",
            kind.key()
        );
        self.kinds.push(kind);
        self
    }

    pub fn kinds(&self) -> &[&'static dyn StepKind] {
        &self.kinds
    }

    /// The action keys, in order.
    pub fn action_keys(&self) -> Vec<&'static str> {
        self.kinds.iter().map(|kind| kind.key()).collect()
    }

    /// Every key a kind owns (action keys and sibling keys), in order.
    pub fn owned_keys(&self) -> Vec<&'static str> {
        self.kinds
            .iter()
            .flat_map(|kind| std::iter::once(kind.key()).chain(kind.sibling_keys().iter().copied()))
            .collect()
    }

    /// The kind that owns `key`, as its action key or a sibling key.
    pub fn owner(&self, key: &str) -> Option<&'static dyn StepKind> {
        self.kinds
            .iter()
            .find(|kind| kind.key() == key || kind.sibling_keys().contains(&key))
            .copied()
    }

    /// Splits a step's mapping into its common keys and the keys the kinds own; a key that is
    /// neither is an error (with a did-you-mean over both). A kind's key set to null counts as
    /// not set, as an optional key does.
    pub fn split(
        &self,
        step: Mapping,
        common_keys: &[&str],
        site: &StepSite,
    ) -> Result<(Mapping, Mapping), YamlError> {
        let mut common = Mapping::new();
        let mut owned = Mapping::new();
        for (key, value) in step {
            let Some(name) = key.as_str() else {
                // Not a key at all: the common keys' deserializer says so.
                common.insert(key, value);
                continue;
            };
            if common_keys.contains(&name) {
                common.insert(key, value);
            } else if self.owner(name).is_some() {
                if !value.is_null() {
                    owned.insert(key, value);
                }
            } else {
                let mut expected = common_keys.to_vec();
                expected.extend(self.owned_keys());
                return Err(crate::yaml::unknown_key(
                    site.text, site.path, name, &expected,
                ));
            }
        }
        Ok((common, owned))
    }

    /// The kind of a step (its one action key) and the mapping of that kind's keys. `owned` is
    /// what [`Registry::split`] gave.
    pub fn pick(
        &self,
        owned: Mapping,
        site: &StepSite,
    ) -> Result<(&'static dyn StepKind, Yaml), YamlError> {
        let present: Vec<&'static dyn StepKind> = self
            .kinds
            .iter()
            .filter(|kind| owned.contains_key(kind.key()))
            .copied()
            .collect();
        let [kind] = present[..] else {
            let found = if present.is_empty() {
                "none".to_string()
            } else {
                backticked(present.iter().map(|kind| kind.key()))
            };
            return Err(YamlError::new(
                format!(
                    "a step needs exactly one action ({}), found {found}",
                    backticked(self.action_keys().into_iter())
                ),
                crate::yaml::locate(site.text, site.path, false),
            ));
        };
        for other in &self.kinds {
            for key in other.sibling_keys() {
                if other.key() != kind.key() && owned.contains_key(*key) {
                    return Err(site.at(
                        key,
                        format!(
                            "`{key}` belongs to `{}` steps, not `{}`",
                            other.key(),
                            kind.key()
                        ),
                    ));
                }
            }
        }
        Ok((kind, Yaml::Mapping(owned)))
    }

    /// The step's schema: `common` (the common keys' schema) with every kind's keys added, one
    /// action required, and each sibling key requiring its action key.
    pub fn step_schema(&self, mut common: Schema, generator: &mut SchemaGenerator) -> Schema {
        // Removed and put back in order: properties, description, then the rules.
        let mut properties = match common.remove("properties") {
            Some(Json::Object(properties)) => properties,
            _ => Map::new(),
        };
        common.remove("description");
        let mut dependent = Map::new();
        for kind in &self.kinds {
            let mut schema = kind.schema(generator);
            if let Some(Json::Object(keys)) = schema.remove("properties") {
                properties.extend(keys);
            }
            if let Some(Json::Object(required)) = schema.remove("dependentRequired") {
                dependent.extend(required);
            }
            for key in kind.sibling_keys() {
                dependent.insert(key.to_string(), serde_json::json!([kind.key()]));
            }
        }
        common.insert("properties".to_string(), Json::Object(properties));
        common.insert(
            "description".to_string(),
            Json::String(format!(
                "One step: the common keys plus exactly one action ({}). Every string in a step is a template, rendered just before the step runs.",
                backticked(self.action_keys().into_iter())
            )),
        );
        let one_of: Vec<Json> = self
            .action_keys()
            .iter()
            .map(|key| serde_json::json!({ "required": [key] }))
            .collect();
        common.insert("oneOf".to_string(), Json::Array(one_of));
        common.insert("dependentRequired".to_string(), Json::Object(dependent));
        common
    }
}

/// `` `a`, `b` ``
fn backticked<'a>(keys: impl Iterator<Item = &'a str>) -> String {
    keys.map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::compile::testing::compile;

    #[test]
    fn a_step_has_exactly_one_action_and_only_known_keys() {
        let rule = "a step needs exactly one action (`run`, `http`, `notify`, `render`, `gitops`, `scale`, `emit`, `publish`)";
        assert_eq!(
            compile("id: a", &[]).unwrap_err(),
            format!("2:5: {rule}, found none")
        );
        assert_eq!(
            compile("run: echo\nemit: { type: t }", &[]).unwrap_err(),
            format!("2:5: {rule}, found `run`, `emit`")
        );
        // A null action is no action, as an unset optional key.
        assert_eq!(
            compile("run:\nid: a", &[]).unwrap_err(),
            format!("2:5: {rule}, found none")
        );
        assert_eq!(
            compile("rn: echo", &[]).unwrap_err(),
            "2:5: steps[0]: unknown key `rn` (did you mean `run`?)"
        );
    }

    use schemars::generate::SchemaSettings;

    /// A kind's `sibling_keys` are the keys its schema describes besides the action key, so the
    /// loader and the schema agree on what a step may hold.
    #[test]
    fn each_kind_describes_exactly_its_keys() {
        let mut generator = SchemaSettings::draft2020_12().into_generator();
        for kind in BUILTIN {
            let schema = kind.schema(&mut generator);
            let described: Vec<&str> = schema
                .get("properties")
                .and_then(Json::as_object)
                .map(|properties| properties.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let mut owned = vec![kind.key()];
            owned.extend(kind.sibling_keys());
            assert_eq!(described, owned, "{}", kind.key());
            for key in &described {
                assert!(
                    schema.as_value()["properties"][key]
                        .get("description")
                        .is_some(),
                    "`{key}` of `{}` has no description",
                    kind.key()
                );
            }
        }
    }

    #[test]
    fn no_two_kinds_own_a_key() {
        let owned = Registry::builtin().owned_keys();
        let mut unique = owned.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), owned.len(), "{owned:?}");
    }
}
