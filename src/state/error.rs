//! What can go wrong with the state store, each error naming the file it concerns.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "cannot create the state folder `{}`: {source} (`--state PATH` puts the store elsewhere, \
         `--state :memory:` keeps no record)",
        path.display()
    )]
    CreateFolder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot open the state store `{}`: {source} (`--state PATH` puts the store elsewhere, \
         `--state :memory:` keeps no record)",
        path.display()
    )]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// Written by a newer vane: reading it could misread it, migrating it would break that vane.
    #[error(
        "the state store `{}` has schema version {found}, but this vane knows versions up to {known}: \
         upgrade vane, or point `--state` at another file (the store was not changed)",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    /// An empty file where the store should be: SQLite would take it as a new store and the
    /// history it once held would be silently gone.
    #[error(
        "the state store `{}` is an empty file, not a store: it may have been truncated; \
         restore it from a backup, or remove it to start a new store",
        path.display()
    )]
    Empty { path: PathBuf },
    #[error("state store `{}`: {action}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        action: &'static str,
        source: rusqlite::Error,
    },
    #[error("no recorded run has an id starting with `{prefix}`")]
    RunNotFound { prefix: String },
    #[error("the run id prefix `{prefix}` is ambiguous: it starts {}", candidates.join(", "))]
    AmbiguousRun {
        prefix: String,
        candidates: Vec<String>,
    },
    #[error("run `{id}`: the stored {what} is not valid JSON: {source}")]
    CorruptJson {
        id: String,
        what: &'static str,
        source: serde_json::Error,
    },
    /// A thread the store needs could not start, or died.
    #[error("state store: {0}")]
    Thread(String),
}
