//! The command line: clap definitions, and one module per subcommand that turns raw arguments
//! into the library's types and calls it. No behaviour lives here that the library lacks.

mod about;
mod args;
mod config;
mod dispatch;
mod drain;
mod poll;
mod replay;
mod run;
mod serve;
mod settings;
mod store;
mod test;
mod validate;
mod worker;
mod workflows;

pub use args::{Cli, Command};

use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;

pub use crate::pipeline::Exit;

/// What a command returns: `Err` is the exit status of a problem it has already reported.
type Outcome = Result<Exit, Exit>;

/// Reports a problem on stderr; the command exits with status 2.
fn invalid(problem: impl std::fmt::Display) -> Exit {
    eprintln!("error: {problem}");
    Exit::Invalid
}

/// Parses the arguments, runs the command, maps the outcome to an exit code.
pub fn main() -> ExitCode {
    crate::report::exit_quietly_on_broken_pipe();
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches).map(|cli| (cli, matches)));
    let (mut cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() {
                Exit::Invalid as u8
            } else {
                0
            });
        }
    };
    crate::log::init(
        cli.global.log_format,
        cli.command.audience(),
        cli.global.verbose,
    );
    if cli.command.reads_config()
        && let Err(exit) = config::apply(&mut cli.global, &matches)
    {
        return ExitCode::from(exit as u8);
    }
    let outcome = match &cli.command {
        Command::Run(args) => run::run(&cli.global, args, args.dry_run),
        Command::Plan(args) => run::run(&cli.global, args, true),
        Command::Dispatch(args) => dispatch::dispatch(&cli.global, args),
        Command::Validate(args) => validate::validate(&cli.global, args),
        Command::Test(args) => test::test(&cli.global, args),
        Command::Schema { file } => about::schema(*file),
        Command::Init(args) => about::init(args),
        Command::Completions(args) => about::completions(args),
        Command::Man(args) => about::man(args),
        Command::History(args) => store::history(&cli.global, args),
        Command::Show(args) => store::show(&cli.global, args),
        Command::Replay(args) => replay::replay(&cli.global, args),
        Command::Worker(args) => worker::worker(&cli.global, args),
        Command::Serve(args) => serve::serve(&cli.global, args),
        Command::Poll(args) => poll::poll(&cli.global, args),
        Command::Gates(args) => store::gates(&cli.global, args),
    };
    ExitCode::from(outcome.unwrap_or_else(|exit| exit) as u8)
}
