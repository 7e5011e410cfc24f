//! `vane init [DIR]`: write the starter project, or name what is in the way and write nothing.

use super::args::InitArgs;
use super::{Outcome, invalid};
use std::fmt::Write;

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
    let _ = writeln!(
        text,
        "\nnext: {cd}vane validate && vane test && vane plan --event events/push.json --explain"
    );
    super::schema::write_stdout(text.as_bytes())
}
