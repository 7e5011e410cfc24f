//! What the daemon forgets on a schedule: delivery ids older than the dedup window
//! (`serve.dedup-window`), and the payloads of runs finished longer ago than
//! `serve.payload-retention` — so that `state.db` does not grow forever and keeps no webhook
//! payload longer than `history` and `replay` are documented to need it.

use crate::cancel::CancelToken;
use crate::secrets::Masker;
use crate::state::{StateLocation, Store};
use std::time::{Duration, Instant};

/// How often the pruner runs: a tenth of the shorter period, between 1 s and 1 h, so that nothing
/// is kept more than 10% past its time.
pub fn prune_every(window: Duration, retention: Duration) -> Duration {
    (window.min(retention) / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

/// Prunes now and then every [`prune_every`] until `stop`, on its own connection to the store.
pub fn spawn_pruner(
    location: &StateLocation,
    masker: Masker,
    window: Duration,
    retention: Duration,
    stop: CancelToken,
) -> Option<std::thread::JoinHandle<()>> {
    if *location == StateLocation::Memory {
        return None;
    }
    let location = location.clone();
    std::thread::Builder::new()
        .name("vane-pruner".to_string())
        .spawn(move || {
            let every = prune_every(window, retention);
            let mut store = None;
            let mut last: Option<Instant> = None;
            while !stop.is_cancelled() {
                if last.is_none_or(|last| last.elapsed() >= every) {
                    last = Some(Instant::now());
                    if store.is_none() {
                        store = Store::open(&location, masker.clone()).ok();
                    }
                    if let Some(store) = store.as_mut() {
                        prune(store, window, retention);
                    }
                }
                std::thread::sleep(Duration::from_millis(100).min(every));
            }
        })
        .ok()
}

fn prune(store: &mut Store, window: Duration, retention: Duration) {
    if let Err(error) = store.forget_old_deliveries(window) {
        tracing::error!("cannot forget old delivery ids: {error}");
    }
    if let Err(error) = store.forget_old_payloads(retention) {
        tracing::error!("cannot forget old run payloads: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pruner_runs_at_a_tenth_of_the_shorter_period_within_bounds() {
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(prune_every(7 * day, 30 * day), Duration::from_secs(3600));
        assert_eq!(
            prune_every(Duration::from_secs(60), day),
            Duration::from_secs(6)
        );
        assert_eq!(
            prune_every(Duration::from_secs(2), day),
            Duration::from_secs(1)
        );
    }
}
