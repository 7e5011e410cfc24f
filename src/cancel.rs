//! Cancellation: a flag set by SIGINT/SIGTERM (or by a test), polled by running steps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared, cheap to clone; once cancelled it stays cancelled. A child token is cancelled with its
/// parent (a signal stops every run) or on its own (a concurrency group cancels one run).
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
    parent: Option<Arc<AtomicBool>>,
}

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// A token that SIGINT and SIGTERM cancel. A second signal while cancelling exits at once
    /// with status 130, for the user who does not want to wait for the grace period.
    pub fn from_signals() -> CancelToken {
        let token = CancelToken::new();
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // Registration fails only for forbidden signals; these two are allowed. The
            // conditional shutdown is registered first so it sees the flag before this signal sets it.
            let _ =
                signal_hook::flag::register_conditional_shutdown(signal, 130, token.flag.clone());
            let _ = signal_hook::flag::register(signal, token.flag.clone());
        }
        token
    }

    /// A token cancelled by this one or by itself.
    pub fn child(&self) -> CancelToken {
        CancelToken {
            flag: Arc::new(AtomicBool::new(false)),
            parent: Some(self.flag.clone()),
        }
    }

    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
            || self
                .parent
                .as_ref()
                .is_some_and(|parent| parent.load(Ordering::SeqCst))
    }
}
