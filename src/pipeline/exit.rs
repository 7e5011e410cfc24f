//! The exit statuses: 0 everything ran, 1 a run failed, 2 invalid usage, input, configuration or
//! workflows, 130 interrupted.

/// What a command's outcome means to the shell that started it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Everything ran (a run of nothing included).
    Success = 0,
    /// A run failed.
    RunFailed = 1,
    /// Invalid usage, input, configuration or workflows.
    Invalid = 2,
    /// Interrupted by SIGINT/SIGTERM.
    Interrupted = 130,
}

impl Exit {
    /// The more severe of two outcomes; an interrupt outranks everything.
    pub fn worst(self, other: Exit) -> Exit {
        self.max(other)
    }

    /// How a daemon (`serve`, `worker`, `poll --every`) ends: stopping on request and runs that
    /// failed along the way are a clean exit; only a broken setup is not.
    pub fn for_daemon(self) -> Exit {
        match self {
            Exit::Interrupted | Exit::RunFailed => Exit::Success,
            other => other,
        }
    }
}
