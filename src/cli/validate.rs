//! `vane validate [PATH…]`: every problem in every file, as `file:line:col: error: …`.

use super::args::{GlobalArgs, ValidateArgs};
use super::{Exit, Outcome};
use std::fmt::Write;

pub fn validate(global: &GlobalArgs, args: &ValidateArgs) -> Outcome {
    let (set, diagnostics) = super::workflows::load(global, &args.paths)?;
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let github = crate::report::github::enabled(global.github);
    let mut text = String::new();
    for diagnostic in &diagnostics {
        let _ = writeln!(text, "{diagnostic}");
        if github {
            let _ = writeln!(text, "{}", crate::report::github::annotation(diagnostic));
        }
    }
    if !global.quiet || errors > 0 {
        let plural = |count: usize, word: &str| {
            format!("{count} {word}{}", if count == 1 { "" } else { "s" })
        };
        let workflows = plural(set.len(), "workflow");
        let (errors, warnings) = (plural(errors, "error"), plural(warnings, "warning"));
        let _ = writeln!(text, "{workflows} valid, {errors}, {warnings}");
    }
    super::about::write_stdout(text.as_bytes())?;
    Ok(if errors > 0 {
        Exit::Invalid
    } else {
        Exit::Success
    })
}
