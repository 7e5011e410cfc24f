//! The commands that print something about vane itself, generated from its own definitions:
//! `vane schema`, `vane completions SHELL`, `vane man [COMMAND]`; and `vane init [DIR]`.

use super::args::{Cli, CompletionsArgs, InitArgs};
use super::{Exit, Outcome, invalid};
use clap::CommandFactory;
use std::fmt::Write as _;
use std::io::Write;

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (`vane man run` is vane-run(1)); none: vane(1).
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

/// The JSON Schema of a file vane reads, pretty-printed.
pub fn schema(file: crate::workflow::schema::SchemaFor) -> Outcome {
    let schema = file.json_schema();
    // Serializing a `serde_json::Value` cannot fail: every key is a string.
    let text = serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n";
    write_stdout(text.as_bytes())
}

pub fn completions(args: &CompletionsArgs) -> Outcome {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "vane", &mut script);
    write_stdout(&script)
}

pub fn man(args: &ManArgs) -> Outcome {
    let page = crate::manpage::render(Cli::command(), args.command.as_deref()).map_err(invalid)?;
    write_stdout(page.as_bytes())
}

/// Writes the starter project, or names what is in the way and writes nothing.
pub fn init(args: &InitArgs) -> Outcome {
    let written = crate::init::init(&args.dir).map_err(invalid)?;
    let mut text = String::new();
    for path in &written {
        let _ = writeln!(text, "created {}", path.display());
    }
    let cd = match args.dir == std::path::Path::new(".") {
        true => String::new(),
        false => format!("cd {} && ", args.dir.display()),
    };
    let next = "vane validate && vane test && vane plan --event events/push.json --explain";
    let _ = writeln!(text, "\nnext: {cd}{next}");
    write_stdout(text.as_bytes())
}

/// Writes a command's output. A closed pipe (`vane schema | head`) is not an error.
pub(super) fn write_stdout(bytes: &[u8]) -> Outcome {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(Exit::Success),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(Exit::Success),
        Err(error) => Err(invalid(format!("cannot write to stdout: {error}"))),
    }
}
