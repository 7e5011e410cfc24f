//! The state store (SPEC §4.5): SQLite, embedded, in WAL mode, `.vane/state.db` by default. It
//! owns the record of runs and their steps that `history`, `show` and `replay` read. Its schema is
//! versioned in the binary ([`schema`]); a store from a newer vane is refused, never touched.

mod coordination;
mod dead;
mod error;
mod gates;
mod query;
mod queue;
mod recommendations;
mod schema;
mod store;
mod write;

pub use coordination::{Coordinator, DEFAULT_LEASE, instance_id};
pub use dead::DEAD_WORKFLOW;
pub use error::StateError;
pub use gates::{Refusals, RunningRow, StoredGate};
pub use query::{HistoryFilter, RUN_STATUSES, RunSummary, StoredRun, StoredStep, parse_since};
pub use queue::{Claimed, Claimer, Enqueued, QueueItem};
pub use recommendations::{Recommendation, Recommendations};
pub use schema::SCHEMA_VERSION;
pub use store::{StateLocation, Store};
pub use write::{LOG_TAIL_BYTES, RecordOptions, stored_status, timestamp};
