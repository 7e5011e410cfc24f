//! `vane validate [PATH…]`: every problem in every file, as `file:line:col: error: …`.

use super::Exit;
use super::args::{GlobalArgs, ValidateArgs};

pub fn validate(global: &GlobalArgs, args: &ValidateArgs) -> Exit {
    let (set, diagnostics) = match super::workflows::load(global, &args.paths) {
        Ok(loaded) => loaded,
        Err(exit) => return exit,
    };
    let errors = diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.is_error())
        .count();
    let warnings = diagnostics.len() - errors;
    let github = crate::report::github::enabled(global.github);
    for diagnostic in &diagnostics {
        println!("{diagnostic}");
        if github {
            println!("{}", crate::report::github::annotation(diagnostic));
        }
    }
    if !global.quiet || errors > 0 {
        let plural = |count: usize, word: &str| {
            format!("{count} {word}{}", if count == 1 { "" } else { "s" })
        };
        println!(
            "{} valid, {}, {}",
            plural(set.len(), "workflow"),
            plural(errors, "error"),
            plural(warnings, "warning")
        );
    }
    if errors > 0 {
        Exit::Invalid
    } else {
        Exit::Success
    }
}
