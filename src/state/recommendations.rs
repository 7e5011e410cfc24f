//! Scale recommendations (SPEC §2.3, §4.5): what each `scale` decision recommended, per `key`,
//! with its time, so that the stabilization windows can look back across runs and processes.
//! Kept in the state store where a run has one, in memory for the process otherwise (a dry run).

use super::{StateError, Store};
use rusqlite::params;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One recommendation: how many replicas a decision at `at_ms` (Unix milliseconds) asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recommendation {
    pub at_ms: i64,
    pub replicas: u32,
}

/// Where recommendations are kept. Cheap to clone: clones share the same place.
#[derive(Clone)]
pub struct Recommendations {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    /// A plan has no store: a plan of several events still sees its own earlier decisions.
    Memory(Arc<Mutex<HashMap<String, Vec<Recommendation>>>>),
    /// The process's open store (shared with the recorder): other processes see these too.
    Store(Arc<Mutex<Store>>),
}

impl Default for Recommendations {
    fn default() -> Recommendations {
        Recommendations::in_memory()
    }
}

impl std::fmt::Debug for Recommendations {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self.backend {
            Backend::Memory(_) => "Recommendations(memory)",
            Backend::Store(_) => "Recommendations(store)",
        })
    }
}

impl Recommendations {
    /// Recommendations that live as long as the process.
    pub fn in_memory() -> Recommendations {
        Recommendations {
            backend: Backend::Memory(Arc::default()),
        }
    }

    /// Recommendations in the state store.
    pub fn in_store(store: Arc<Mutex<Store>>) -> Recommendations {
        Recommendations {
            backend: Backend::Store(store),
        }
    }

    /// Records that `key` was recommended `replicas` at `at_ms`, and returns the earlier
    /// recommendations for `key` made within `keep` before it, oldest first. Older ones are
    /// deleted: `keep` is the longest stabilization window, and nothing older can matter to it.
    /// (Two steps sharing a key with different windows prune to the later one's; share a key only
    /// between steps that mean the same thing.)
    pub fn record(
        &self,
        key: &str,
        at_ms: i64,
        replicas: u32,
        keep: Duration,
    ) -> Result<Vec<Recommendation>, StateError> {
        let oldest = at_ms.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
        match &self.backend {
            Backend::Memory(map) => {
                // A poisoned lock only means another thread panicked mid-push: the list is whole.
                let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let list = map.entry(key.to_string()).or_default();
                list.retain(|earlier| earlier.at_ms >= oldest);
                let earlier = list.clone();
                list.push(Recommendation { at_ms, replicas });
                Ok(earlier)
            }
            Backend::Store(store) => {
                let mut store = store
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                store.write("record a scale recommendation", |transaction| {
                    transaction
                        .prepare_cached(
                            "DELETE FROM scale_recommendations WHERE key = ?1 AND at_ms < ?2",
                        )?
                        .execute(params![key, oldest])?;
                    let earlier = transaction
                        .prepare_cached(
                            "SELECT at_ms, replicas FROM scale_recommendations \
                             WHERE key = ?1 ORDER BY at_ms, rowid",
                        )?
                        .query_map(params![key], |row| {
                            Ok(Recommendation {
                                at_ms: row.get(0)?,
                                replicas: row.get(1)?,
                            })
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    transaction
                        .prepare_cached(
                            "INSERT INTO scale_recommendations (key, at_ms, replicas) \
                             VALUES (?1, ?2, ?3)",
                        )?
                        .execute(params![key, at_ms, replicas])?;
                    Ok(earlier)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Masker;
    use crate::state::StateLocation;

    fn exercise(recommendations: &Recommendations) {
        let minute = Duration::from_secs(60);
        assert!(
            recommendations
                .record("api", 0, 10, minute)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            recommendations.record("api", 30_000, 8, minute).unwrap(),
            vec![Recommendation {
                at_ms: 0,
                replicas: 10
            }]
        );
        // Another key is another history.
        assert!(
            recommendations
                .record("web", 30_000, 3, minute)
                .unwrap()
                .is_empty()
        );
        // 0 is now older than a minute: pruned, and not returned.
        assert_eq!(
            recommendations.record("api", 61_000, 4, minute).unwrap(),
            vec![Recommendation {
                at_ms: 30_000,
                replicas: 8
            }]
        );
    }

    #[test]
    fn memory_keeps_recommendations_per_key_within_the_window() {
        exercise(&Recommendations::in_memory());
    }

    #[test]
    fn the_store_keeps_recommendations_per_key_within_the_window() {
        let store = Store::open(&StateLocation::Memory, Masker::new()).unwrap();
        exercise(&Recommendations::in_store(Arc::new(Mutex::new(store))));
    }

    #[test]
    fn the_store_keeps_recommendations_across_connections() {
        let folder = tempfile::tempdir().unwrap();
        let location = StateLocation::File(folder.path().join("state.db"));
        let open = || {
            Recommendations::in_store(Arc::new(Mutex::new(
                Store::open(&location, Masker::new()).unwrap(),
            )))
        };
        let hour = Duration::from_secs(3600);
        open().record("api", 1_000, 10, hour).unwrap();
        assert_eq!(
            open().record("api", 2_000, 2, hour).unwrap(),
            vec![Recommendation {
                at_ms: 1_000,
                replicas: 10
            }]
        );
    }
}
