//! `vane init [DIR]`: write the starter project, or name what is in the way and write nothing.

use super::Exit;
use super::args::InitArgs;

pub fn init(args: &InitArgs) -> Exit {
    match crate::init::init(&args.dir) {
        Ok(written) => {
            for path in &written {
                println!("created {}", path.display());
            }
            let cd = if args.dir == std::path::Path::new(".") {
                String::new()
            } else {
                format!("cd {} && ", args.dir.display())
            };
            println!(
                "\nnext: {cd}vane validate && vane test && vane plan --event events/push.json --explain"
            );
            Exit::Success
        }
        Err(error) => {
            eprintln!("error: {error}");
            Exit::Invalid
        }
    }
}
