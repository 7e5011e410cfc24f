//! `vane init`: a starter project — one small workflow per step kind, the template the `render`
//! example uses, a `vane.yaml`, a passing test file, an example event and a `.gitignore` for what
//! vane writes (`.vane/`, `out/`). The files live in
//! `src/init/starter/` as ordinary files (so they are read, edited and reviewed as what they are)
//! and are compiled into the binary.
//!
//! Nothing is ever overwritten: when any target exists, nothing at all is written.

use std::path::{Path, PathBuf};

/// One file `vane init` writes: its path in the project, and its contents.
pub struct StarterFile {
    pub path: &'static str,
    pub contents: &'static str,
}

macro_rules! starter {
    ($($path:literal $(from $stored:literal)?),* $(,)?) => {
        &[$(StarterFile { path: $path, contents: starter!(@contents $path $($stored)?) }),*]
    };
    (@contents $path:literal) => { include_str!(concat!("starter/", $path)) };
    (@contents $path:literal $stored:literal) => { include_str!(concat!("starter/", $stored)) };
}

/// Everything `vane init` writes, in the order it is written.
pub const STARTER_FILES: &[StarterFile] = starter![
    "vane.yaml",
    "workflows/build.yaml",
    "workflows/manifest.yaml",
    "workflows/release.yaml",
    "workflows/deployed.yaml",
    "workflows/announce.yaml",
    "workflows/promote.yaml",
    "workflows/autoscale.yaml",
    "workflows/starter.test.yaml",
    "templates/deployment.yaml.j2",
    "events/push.json",
    // Stored without its dot: a `.gitignore` in the source tree would apply to the tree itself.
    ".gitignore" from "gitignore",
];

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Files that are already there; nothing was written.
    #[error("{} already exist{}; `vane init` writes nothing over existing files", list(.paths), if .paths.len() == 1 { "s" } else { "" })]
    Exists { paths: Vec<PathBuf> },
    #[error("cannot write `{}`: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|path| format!("`{}`", path.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes the starter project under `dir`; returns the files written.
pub fn init(dir: &Path) -> Result<Vec<PathBuf>, InitError> {
    // `vane init` in the current folder names its files `workflows/build.yaml`, not `./…`.
    let targets: Vec<PathBuf> = STARTER_FILES
        .iter()
        .map(|file| {
            if dir == Path::new(".") {
                PathBuf::from(file.path)
            } else {
                dir.join(file.path)
            }
        })
        .collect();
    // `symlink_metadata`: a dangling link is still something that would be written through.
    let existing: Vec<PathBuf> = targets
        .iter()
        .filter(|path| path.symlink_metadata().is_ok())
        .cloned()
        .collect();
    if !existing.is_empty() {
        return Err(InitError::Exists { paths: existing });
    }
    let mut written = Vec::with_capacity(targets.len());
    for (file, path) in STARTER_FILES.iter().zip(targets) {
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            // `create_new`: a file that appeared since the check above is still not overwritten.
            use std::io::Write;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?
                .write_all(file.contents.as_bytes())
        };
        write().map_err(|source| InitError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_everything_once_and_then_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let written = init(dir.path()).unwrap();
        assert_eq!(written.len(), STARTER_FILES.len());
        assert!(dir.path().join("workflows/starter.test.yaml").is_file());
        match init(dir.path()) {
            Err(InitError::Exists { paths }) => assert_eq!(paths.len(), STARTER_FILES.len()),
            other => panic!("expected Exists, got {other:?}"),
        }
    }

    #[test]
    fn one_existing_file_stops_everything() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
        std::fs::write(dir.path().join("workflows/build.yaml"), "mine").unwrap();
        let error = init(dir.path()).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "`{}` already exists; `vane init` writes nothing over existing files",
                dir.path().join("workflows/build.yaml").display()
            )
        );
        assert!(!dir.path().join("vane.yaml").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("workflows/build.yaml")).unwrap(),
            "mine"
        );
    }
}
