//! `render`: a template file rendered to a path inside the workspace. A dry run renders too and
//! shows the diff against the file that is there, writing nothing.

use super::{
    Compiled, CompiledStep, Outputs, StepContext, StepError, StepKind, StepSite, StepSuccess,
};
use crate::template::{Template, TemplateTree, Templates, TreeError, TreeMode};
use crate::yaml::YamlError;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};
use std::path::{Component, Path, PathBuf};

/// The keys of a `render` step besides the common ones.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderKeys {
    /// A template file (under the templates folder) to render to `to`.
    pub render: Option<String>,
    /// Where a `render` step writes, inside the workspace.
    pub to: Option<String>,
    /// Extra variables for a `render` step's template (`{{ vars.NAME }}`).
    #[schemars(with = "Option<serde_json::Map<String, Json>>")]
    pub vars: Option<Json>,
}

/// The `render` step kind.
pub struct RenderKind;

impl StepKind for RenderKind {
    fn key(&self) -> &'static str {
        "render"
    }

    fn sibling_keys(&self) -> &'static [&'static str] {
        &["to", "vars"]
    }

    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut schema = RenderKeys::json_schema(generator);
        // `to` is required by `render` (and, as a sibling key, meaningless without it).
        schema.insert(
            "dependentRequired".to_string(),
            serde_json::json!({ "render": ["to"] }),
        );
        schema
    }

    fn compile(&self, keys: serde_yaml::Value, site: &StepSite) -> Result<Compiled, YamlError> {
        let keys: RenderKeys = site.keys(keys)?;
        let to = keys
            .to
            .ok_or_else(|| site.at("render", "`render` needs `to:` (the file to write)"))?;
        // A template named literally is loaded and compiled now, so that a missing file or a
        // syntax error in it is a load error, not a run-time one.
        let name = keys.render.unwrap_or_default();
        if !crate::template::is_template(&name)
            && let Err(error) = site.templates.file(&name)
        {
            let line = error
                .line
                .map(|line| format!(" (line {line})"))
                .unwrap_or_default();
            // A missing file's message names the template already; say it once.
            let message = if error.message.starts_with(&format!("template `{name}`")) {
                format!("render: {}", error.message)
            } else {
                format!("render: template `{name}`{line}: {}", error.message)
            };
            return Err(site.at_value(&site.key("render"), message));
        }
        let vars = keys.vars.unwrap_or(Json::Object(Default::default()));
        Ok(Compiled::new(RenderStep {
            template: site.text(&name, TreeMode::Text, &site.key("render"))?,
            to: site.text(&to, TreeMode::Text, &site.key("to"))?,
            vars: site.tree(&vars, TreeMode::Native, &site.key("vars"))?,
        }))
    }
}

/// A compiled `render` step: the template's name, where it goes, and its own vars.
#[derive(Debug)]
struct RenderStep {
    template: TemplateTree,
    to: TemplateTree,
    vars: TemplateTree,
}

impl RenderStep {
    fn run(
        &self,
        rendered: &Json,
        context: &StepContext,
        dry_run: bool,
    ) -> Result<StepSuccess, StepError> {
        let name = super::text_at(rendered, "render").unwrap_or_default();
        let to = super::text_at(rendered, "to").unwrap_or_default();
        // The template file is compiled on first use and kept by the environment.
        let template = context
            .templates
            .file(name)
            .map_err(|error| StepError::new(format!("render: {}", error.message)))?;
        // A render step's own `vars` add to (and override) the workflow's.
        let values = match rendered.get("vars") {
            Some(Json::Object(step_vars)) => {
                let mut merged: Map<String, Json> = context
                    .values
                    .get_attr("vars")
                    .ok()
                    .and_then(|vars| serde_json::to_value(&vars).ok())
                    .and_then(|vars| match vars {
                        Json::Object(map) => Some(map),
                        _ => None,
                    })
                    .unwrap_or_default();
                merged.extend(
                    step_vars
                        .iter()
                        .map(|(key, value)| (key.clone(), value.clone())),
                );
                minijinja::context! { vars => crate::template::to_value(&merged), ..context.values.clone() }
            }
            _ => context.values.clone(),
        };
        execute(name, &template, to, &values, context.workspace, dry_run)
    }
}

impl CompiledStep for RenderStep {
    fn render(&self, context: &minijinja::Value) -> Result<Json, TreeError> {
        let mut rendered = Map::new();
        rendered.insert("render".to_string(), self.template.render(context)?);
        rendered.insert("to".to_string(), self.to.render(context)?);
        let vars = self.vars.render(context)?;
        if vars.as_object().is_some_and(|map| !map.is_empty()) {
            rendered.insert("vars".to_string(), vars);
        }
        Ok(Json::Object(rendered))
    }

    /// Renders too, and shows the diff against the file that is there, writing nothing.
    fn plan(&self, rendered: &Json, context: &StepContext) -> Result<StepSuccess, StepError> {
        self.run(rendered, context, true)
    }

    fn execute(&self, rendered: &Json, context: &StepContext) -> Result<StepSuccess, StepError> {
        self.run(rendered, context, false)
    }
}

/// Renders `template` with `context` to `to` under `workspace`.
pub fn execute(
    name: &str,
    template: &Template,
    to: &str,
    context: &minijinja::Value,
    workspace: &Path,
    dry_run: bool,
) -> Result<StepSuccess, StepError> {
    let relative = confine(to)?;
    let target = workspace.join(&relative);
    check_no_symlink_escape(workspace, &relative)?;
    let content = Templates::render(template, context).map_err(|error| {
        let line = error
            .line
            .map(|line| format!(" (line {line})"))
            .unwrap_or_default();
        StepError::new(format!("template `{}`{line}: {}", name, error.message))
    })?;
    let existing = std::fs::read_to_string(&target).ok();
    let changed = existing.as_deref() != Some(content.as_str());
    let mut outputs = Outputs::new();
    outputs.insert(
        "path".to_string(),
        Json::String(relative.display().to_string()),
    );
    outputs.insert(
        "sha256".to_string(),
        Json::String(hex::encode(Sha256::digest(content.as_bytes()))),
    );
    outputs.insert("changed".to_string(), Json::Bool(changed));
    if dry_run {
        let diff =
            changed.then(|| unified_diff(existing.as_deref().unwrap_or(""), &content, &relative));
        return Ok(StepSuccess {
            outputs,
            log: None,
            diff,
            emitted: Vec::new(),
        });
    }
    if changed {
        write_atomically(&target, &content).map_err(|error| {
            StepError::new(format!("cannot write `{}`: {error}", relative.display()))
        })?;
    }
    Ok(StepSuccess {
        outputs,
        log: None,
        ..StepSuccess::default()
    })
}

/// `to` as a clean relative path that stays inside the workspace: no absolute paths, no `..`
/// that climbs out (SPEC §2.3, §5.1).
pub fn confine(to: &str) -> Result<PathBuf, StepError> {
    let path = Path::new(to);
    if to.trim().is_empty() {
        return Err(StepError::new("render: `to` is empty"));
    }
    if path.is_absolute() {
        return Err(StepError::new(format!(
            "render: `to` `{to}` is an absolute path; it must be relative to the workspace"
        )));
    }
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !clean.pop() {
                    return Err(StepError::new(format!(
                        "render: `to` `{to}` leaves the workspace"
                    )));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(StepError::new(format!(
                    "render: `to` `{to}` is an absolute path"
                )));
            }
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(StepError::new(format!(
            "render: `to` `{to}` names the workspace itself, not a file"
        )));
    }
    Ok(clean)
}

/// A symlink inside the workspace must not carry a write outside it.
fn check_no_symlink_escape(workspace: &Path, relative: &Path) -> Result<(), StepError> {
    let Ok(root) = workspace.canonicalize() else {
        return Ok(());
    };
    let mut existing = workspace.join(relative);
    while !existing.exists() {
        match existing.parent() {
            Some(parent) => existing = parent.to_path_buf(),
            None => return Ok(()),
        }
    }
    match existing.canonicalize() {
        Ok(resolved) if !resolved.starts_with(&root) => Err(StepError::new(format!(
            "render: `{}` leads outside the workspace through a symbolic link",
            relative.display()
        ))),
        _ => Ok(()),
    }
}

/// Write to a temporary file beside the target, then rename: a reader never sees half a file.
fn write_atomically(target: &Path, content: &str) -> std::io::Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file_name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = target.with_file_name(format!(".{file_name}.vane-{}", std::process::id()));
    std::fs::write(&temporary, content)?;
    std::fs::rename(&temporary, target).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

pub fn unified_diff(old: &str, new: &str, path: &Path) -> String {
    let name = path.display().to_string();
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::compile::testing::{compile, render};
    use serde_json::json;

    #[test]
    fn a_render_step_needs_to_and_a_template_that_compiles() {
        assert_eq!(
            compile("render: a.j2", &[("a.j2", "x")]).unwrap_err(),
            "2:5: `render` needs `to:` (the file to write)"
        );
        let error = compile("render: b.j2\nto: out", &[("b.j2", "{{ x ")]).unwrap_err();
        assert!(
            error.starts_with("2:13: render: template `b.j2` (line 1): "),
            "{error}"
        );
        assert_eq!(
            compile("run: echo\nto: out", &[]).unwrap_err(),
            "3:5: `to` belongs to `render` steps, not `run`"
        );
        let step = compile("render: a.j2\nto: 'out/{{ name }}'", &[("a.j2", "x")]).unwrap();
        // No `vars` of its own: none in the record.
        assert_eq!(
            render(&step, json!({"name": "web"})),
            json!({"render": "a.j2", "to": "out/web"})
        );
    }

    #[test]
    fn paths_stay_inside_the_workspace() {
        assert_eq!(confine("out/a.yaml").unwrap(), PathBuf::from("out/a.yaml"));
        assert_eq!(confine("./out/../b.yaml").unwrap(), PathBuf::from("b.yaml"));
        for bad in ["../outside", "/etc/passwd", "a/../../b", "", "."] {
            assert!(confine(bad).is_err(), "{bad} should be refused");
        }
    }
}
