//! Problems found in users' files, each pointing at `file:line:col`.

use crate::yaml::Position;
use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub position: Option<Position>,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub fn error(
        file: impl Into<PathBuf>,
        position: Option<Position>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: file.into(),
            position,
            severity: Severity::Error,
            message: message.into(),
        }
    }

    pub fn warning(
        file: impl Into<PathBuf>,
        position: Option<Position>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: file.into(),
            position,
            severity: Severity::Warning,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `line` and `col`, 1 where unknown, as editors and `::error` annotations want them.
    pub fn line_col(&self) -> (usize, usize) {
        self.position
            .map(|position| (position.line, position.column))
            .unwrap_or((1, 1))
    }
}

impl Diagnostic {
    /// Logs the problem: at its severity's level, with `place` = `file:line:col` (a command's
    /// plain stderr shows it exactly as [`Display`](fmt::Display) writes it).
    pub fn log(&self) {
        let (line, column) = self.line_col();
        let place = format!("{}:{line}:{column}", self.file.display());
        match self.severity {
            Severity::Error => tracing::error!(place = %place, "{}", self.message),
            Severity::Warning => tracing::warn!(place = %place, "{}", self.message),
        }
    }
}

impl fmt::Display for Diagnostic {
    /// `workflows/deploy.yaml:12:7: error: unknown key `branch` (did you mean `branches`?)`
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, column) = self.line_col();
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            formatter,
            "{}:{line}:{column}: {severity}: {}",
            self.file.display(),
            self.message
        )
    }
}
