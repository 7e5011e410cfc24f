//! Keeping a lease alive while a run holds it: a thread renews it every third of its length until
//! stopped. The store's locks and JetStream's key-value locks share this; each says how to renew.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the renewing thread looks at its stop flag: a released lease is let go this fast.
const TICK: Duration = Duration::from_millis(20);

/// A renewing thread; `S` is the renewal's own state (a revision), handed back when stopped.
pub struct Renewer<S> {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<S>>,
}

impl<S: Send + 'static> Renewer<S> {
    /// Calls `renew` every `lease / 3` with `state`, until [`Renewer::stop`].
    pub fn start(
        lease: Duration,
        mut state: S,
        mut renew: impl FnMut(&mut S) + Send + 'static,
    ) -> Renewer<S> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let every = lease / 3;
            let mut last = Instant::now();
            while !flag.load(Ordering::SeqCst) {
                std::thread::sleep(TICK.min(every));
                if last.elapsed() < every {
                    continue;
                }
                last = Instant::now();
                renew(&mut state);
            }
            state
        });
        Renewer {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops renewing; the state as the last renewal left it (`None` after a panic in `renew`,
    /// or when already stopped).
    pub fn stop(&mut self) -> Option<S> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().and_then(|thread| thread.join().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_on_schedule_and_hands_back_its_state() {
        let mut renewer = Renewer::start(Duration::from_millis(150), 0u32, |count| *count += 1);
        std::thread::sleep(Duration::from_millis(400));
        let count = renewer.stop().unwrap();
        // Every 50 ms over 400 ms: about 8, whatever the scheduler's jitter.
        assert!((3..=9).contains(&count), "{count}");
        assert_eq!(renewer.stop(), None);
    }
}
