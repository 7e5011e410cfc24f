//! The connection to the state store: where it lives, how it is opened, and how writes survive
//! other processes writing to the same file.

use super::StateError;
use super::schema::{self, Migration, SCHEMA_VERSION};
use crate::secrets::Masker;
use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long SQLite itself waits for another process's lock before reporting busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long vane keeps retrying a busy write after that, with backoff, before giving up.
const RETRY_FOR: Duration = Duration::from_secs(60);

/// Where the store is: a file (`--state PATH`), or nowhere (`--state :memory:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    File(PathBuf),
    Memory,
}

impl StateLocation {
    /// `:memory:` keeps nothing; anything else is a file path.
    pub fn from_flag(path: &Path) -> StateLocation {
        if path.as_os_str() == ":memory:" {
            StateLocation::Memory
        } else {
            StateLocation::File(path.to_path_buf())
        }
    }

    fn display_path(&self) -> PathBuf {
        match self {
            StateLocation::File(path) => path.clone(),
            StateLocation::Memory => PathBuf::from(":memory:"),
        }
    }
}

/// An open, migrated store. Everything written through it is masked with its [`Masker`].
pub struct Store {
    pub(super) connection: Connection,
    pub(super) path: PathBuf,
    pub(super) masker: Masker,
}

/// A file of zero bytes that no vane is creating right now. SQLite creates a new store's file
/// empty and writes its first page within milliseconds, with its `-wal` file beside it; an empty
/// file with no `-wal` that has not changed for 2 s was emptied by something else.
fn is_abandoned_empty_file(file: &std::path::Path) -> bool {
    let Ok(metadata) = std::fs::metadata(file) else {
        return false;
    };
    let mut wal = file.as_os_str().to_owned();
    wal.push("-wal");
    let settled = metadata
        .modified()
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|age| age >= std::time::Duration::from_secs(2));
    metadata.is_file() && metadata.len() == 0 && !std::path::Path::new(&wal).exists() && settled
}

impl Store {
    /// Opens the store, creating the file (and its folder) and the schema where missing.
    ///
    /// A store written by a newer vane (a higher schema version) is refused before anything is
    /// written to it, not even the journal mode.
    pub fn open(location: &StateLocation, masker: Masker) -> Result<Store, StateError> {
        let path = location.display_path();
        let connection = match location {
            StateLocation::Memory => Connection::open_in_memory(),
            StateLocation::File(file) => {
                if let Some(folder) = file
                    .parent()
                    .filter(|folder| !folder.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(folder).map_err(|source| StateError::CreateFolder {
                        path: folder.to_path_buf(),
                        source,
                    })?;
                }
                if is_abandoned_empty_file(file) {
                    return Err(StateError::Empty { path });
                }
                Connection::open(file)
            }
        }
        .map_err(|source| StateError::Open {
            path: path.clone(),
            source,
        })?;
        Store::prepare(connection, path, masker, location == &StateLocation::Memory)
    }

    /// Opens an existing store for reading commands (`history`, `show`, `replay`): `None` where
    /// the file does not exist, so that looking at history never creates a store.
    pub fn open_existing(
        location: &StateLocation,
        masker: Masker,
    ) -> Result<Option<Store>, StateError> {
        match location {
            StateLocation::File(file) if !file.exists() => Ok(None),
            _ => Store::open(location, masker).map(Some),
        }
    }

    fn prepare(
        mut connection: Connection,
        path: PathBuf,
        masker: Masker,
        in_memory: bool,
    ) -> Result<Store, StateError> {
        let open_error = |source| StateError::Open {
            path: path.clone(),
            source,
        };
        connection
            .busy_handler(Some(wait_briefly))
            .map_err(open_error)?;
        // Read-only check first: a newer store must not even get its journal mode changed.
        let found = retry_busy(|| schema::user_version(&connection)).map_err(open_error)?;
        if found > SCHEMA_VERSION {
            return Err(StateError::TooNew {
                path,
                found,
                known: SCHEMA_VERSION,
            });
        }
        if !in_memory {
            // WAL: readers never block the writer, and a commit is an append. `synchronous =
            // NORMAL` (safe with WAL) skips the fsync per commit: a crash of vane loses nothing,
            // a power cut may lose the last runs' records. Measured on 10,000 runs of a step that
            // forks nothing: FULL (an fsync per commit) took 3–20 s, NORMAL under 1 s.
            retry_busy(|| {
                connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| {
                    row.get::<_, String>(0)
                })
            })
            .map_err(open_error)?;
            connection
                .pragma_update(None, "synchronous", "NORMAL")
                .map_err(open_error)?;
            // Measured (bench/state.sh with a step that forks nothing): checkpointing every 1,000
            // pages, SQLite's default, spent half of a 10,000-run stream waiting on the fsyncs of
            // ~100 checkpoints, each rewriting the same index pages. 10,000 pages (~40 MiB of WAL,
            // folded back when the last connection closes) halved the wall time.
            connection
                .pragma_update(None, "wal_autocheckpoint", 10_000)
                .map_err(open_error)?;
        }
        connection
            .pragma_update(None, "foreign_keys", true)
            .map_err(open_error)?;
        match retry_busy(|| schema::migrate(&mut connection)).map_err(open_error)? {
            Migration::Current => {}
            Migration::TooNew(found) => {
                return Err(StateError::TooNew {
                    path,
                    found,
                    known: SCHEMA_VERSION,
                });
            }
        }
        Ok(Store {
            connection,
            path,
            masker,
        })
    }

    /// Leaves folding the WAL back into the database (checkpoints, an fsync of up to ~40 MiB) to
    /// the process's other connections: the connection that answers webhooks must not stall on one.
    pub fn leave_checkpoints_to_others(&self) -> Result<(), StateError> {
        self.connection
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|source| self.sqlite_error("turn off checkpoints", source))
    }

    /// The file the store lives in (`:memory:` for none).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` in one write transaction, retrying the whole transaction while another process
    /// holds the lock. `IMMEDIATE` takes the write lock up front: a deferred transaction that
    /// upgrades from read to write can fail busy without SQLite's busy handler waiting at all.
    pub(super) fn write<T>(
        &mut self,
        action: &'static str,
        mut work: impl FnMut(&Transaction) -> rusqlite::Result<T>,
    ) -> Result<T, StateError> {
        let connection = &mut self.connection;
        retry_busy(|| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = work(&transaction)?;
            transaction.commit()?;
            Ok(value)
        })
        .map_err(|source| StateError::Sqlite {
            path: self.path.clone(),
            action,
            source,
        })
    }

    pub(super) fn sqlite_error(&self, action: &'static str, source: rusqlite::Error) -> StateError {
        StateError::Sqlite {
            path: self.path.clone(),
            action,
            source,
        }
    }
}

/// SQLite's busy handler: called while another connection holds the write lock, `attempt` counting
/// from 0; `false` gives up (the statement fails busy). SQLite's own (`busy_timeout`) sleeps 1, 2,
/// 5, 10 … up to 100 ms between tries, so a writer that lost a race by a millisecond could wait
/// 100 ms: measured as the webhook intake's p99 while workers record runs. Trying every
/// millisecond keeps the hand-over between the queue's writer and the workers short.
fn wait_briefly(attempt: i32) -> bool {
    if u128::try_from(attempt).unwrap_or(0) >= BUSY_TIMEOUT.as_millis() {
        return false;
    }
    std::thread::sleep(Duration::from_millis(1));
    true
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Retries `attempt` while the database is busy, with jittered exponential backoff, for at most
/// [`RETRY_FOR`]. SQLite's busy timeout covers most waits; this covers the cases it does not
/// (a busy `COMMIT` while a reader checkpoints, a busy schema change at open).
fn retry_busy<T>(mut attempt: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = Instant::now() + RETRY_FOR;
    let mut delay = Duration::from_millis(2);
    loop {
        match attempt() {
            Err(error) if is_busy(&error) && Instant::now() < deadline => {
                // Jitter from the clock, so that two processes that collided do not retry in step.
                let nanos = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|since| since.subsec_nanos())
                    .unwrap_or_default();
                std::thread::sleep(delay + delay.mul_f64(f64::from(nanos % 1000) / 1000.0));
                delay = (delay * 2).min(Duration::from_millis(200));
            }
            result => return result,
        }
    }
}
