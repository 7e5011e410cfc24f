//! Problems found in users' files, each pointing at `file:line:col`, shown with the offending
//! line and a caret under the column, as rustc and just show theirs.
//!
//! The snippet is rendered here rather than with `annotate-snippets`: vane shows one line and one
//! caret run per problem, which is twenty lines, where the crate's current major brings its own
//! styling and width handling and a dependency for every build.

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
    /// The text of the line at `position`, once [`attach_source`] has seen the file.
    pub source_line: Option<String>,
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
            source_line: None,
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
            source_line: None,
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

/// Gives every diagnostic with a position the line of `text` it points at. `text` is the file
/// the diagnostics are about; lines past its end are left without a snippet.
pub fn attach_source(diagnostics: &mut [Diagnostic], text: &str) {
    for diagnostic in diagnostics {
        if let Some(position) = diagnostic.position {
            diagnostic.source_line = text
                .lines()
                .nth(position.line.saturating_sub(1))
                .map(|line| line.replace('\t', " "));
        }
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

/// How many columns the caret covers: the word at the column (a key, a scalar, `{{`), at least 1.
fn caret_width(line: &str, column: usize) -> usize {
    let rest: String = line.chars().skip(column.saturating_sub(1)).collect();
    let quote = rest.chars().next().filter(|c| matches!(c, '"' | '\''));
    let width = match quote {
        // A quoted scalar: up to its closing quote.
        Some(quote) => rest[1..].find(quote).map_or(rest.len(), |end| end + 2),
        None => rest
            .find(|c: char| c.is_whitespace() || matches!(c, ':' | ',' | ']' | '}' | '#'))
            .unwrap_or(rest.len()),
    };
    rest[..width.min(rest.len())].chars().count().max(1)
}

impl fmt::Display for Diagnostic {
    /// `workflows/deploy.yaml:12:7: error: unknown key `branch` (did you mean `branches`?)`,
    /// then, when the line is known, the line with a caret under the column:
    ///
    /// ```text
    ///    |
    /// 12 |       branch: [main]
    ///    |       ^^^^^^
    /// ```
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
        )?;
        if let (Some(text), Some(_)) = (&self.source_line, self.position) {
            let gutter = " ".repeat(line.to_string().len());
            let indent = " ".repeat(column.saturating_sub(1));
            let carets = "^".repeat(caret_width(text, column));
            write!(
                formatter,
                "\n{gutter} |\n{line} | {text}\n{gutter} | {indent}{carets}"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diagnostic_shows_its_line_with_a_caret_under_the_word() {
        let text = "version: 1\non:\n  push:\n    branch: [main]\n";
        let mut diagnostics = vec![
            Diagnostic::error(
                "w.yaml",
                Some(Position::new(4, 5)),
                "on.push: unknown key `branch` (did you mean `branches`?)",
            ),
            Diagnostic::warning("w.yaml", Some(Position::new(1, 10)), "a warning"),
            Diagnostic::error("w.yaml", None, "no position"),
        ];
        attach_source(&mut diagnostics, text);
        assert_eq!(
            diagnostics[0].to_string(),
            "w.yaml:4:5: error: on.push: unknown key `branch` (did you mean `branches`?)\n  |\n4 |     branch: [main]\n  |     ^^^^^^"
        );
        assert_eq!(
            diagnostics[1].to_string(),
            "w.yaml:1:10: warning: a warning\n  |\n1 | version: 1\n  |          ^"
        );
        assert_eq!(diagnostics[2].to_string(), "w.yaml:1:1: error: no position");
    }

    #[test]
    fn the_caret_covers_a_quoted_scalar_or_at_least_one_column() {
        assert_eq!(caret_width("  run: 'echo hi' # x", 8), 9);
        assert_eq!(caret_width("  x: {{ a", 6), 2);
        assert_eq!(caret_width("abc", 9), 1);
    }
}
