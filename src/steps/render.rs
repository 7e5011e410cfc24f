//! `render`: a template file rendered to a path inside the workspace. A dry run renders too and
//! shows the diff against the file that is there, writing nothing.

use super::{Outputs, StepError, StepSuccess};
use crate::template::{Template, Templates};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use std::path::{Component, Path, PathBuf};

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
        diff: None,
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

    #[test]
    fn paths_stay_inside_the_workspace() {
        assert_eq!(confine("out/a.yaml").unwrap(), PathBuf::from("out/a.yaml"));
        assert_eq!(confine("./out/../b.yaml").unwrap(), PathBuf::from("b.yaml"));
        for bad in ["../outside", "/etc/passwd", "a/../../b", "", "."] {
            assert!(confine(bad).is_err(), "{bad} should be refused");
        }
    }
}
