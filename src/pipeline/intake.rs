//! Whether this process takes more queued events: not while its state store cannot be written
//! (a full disk) — an event run then could not be recorded, and would run again later. The
//! recorder pauses intake when a record fails; a queue drain stops taking events, probes the
//! store, and resumes once a write succeeds. `/healthz` says `degraded` meanwhile, and
//! `/metrics` has `vane_intake_paused`.

use std::sync::Mutex;

static PAUSED: Mutex<Option<String>> = Mutex::new(None);

/// The store cannot be written: why.
pub fn pause(reason: &str) {
    if let Ok(mut paused) = PAUSED.lock() {
        *paused = Some(reason.to_string());
    }
}

/// The store can be written again.
pub fn resume() {
    if let Ok(mut paused) = PAUSED.lock() {
        *paused = None;
    }
}

/// Why intake is paused, while it is.
pub fn paused() -> Option<String> {
    PAUSED.lock().ok().and_then(|paused| paused.clone())
}
