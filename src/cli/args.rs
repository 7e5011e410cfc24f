//! clap definitions. Every flag has an environment variable (`VANE_…`).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "vane",
    version,
    about = "Events in, versioned YAML workflows matched, steps rendered and run."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// The workflows folder (searched recursively for *.yml / *.yaml).
    #[arg(
        long,
        global = true,
        env = "VANE_WORKFLOWS",
        default_value = "workflows",
        value_name = "DIR"
    )]
    pub workflows: PathBuf,
    /// The folder `render` steps load templates from.
    #[arg(
        long,
        global = true,
        env = "VANE_TEMPLATES",
        default_value = "templates",
        value_name = "DIR"
    )]
    pub templates: PathBuf,
    /// Load the workflows and templates from this git revision (branch, tag or sha) of the
    /// repository that holds the workflows folder, without checking it out.
    #[arg(long, global = true, env = "VANE_WORKFLOWS_REF", value_name = "REV")]
    pub workflows_ref: Option<String>,
    /// The folder `run` steps start in and `render` steps write under.
    #[arg(
        long,
        global = true,
        env = "VANE_WORKSPACE",
        default_value = ".",
        value_name = "DIR"
    )]
    pub workspace: PathBuf,
    /// The state store (runs and their steps); `:memory:` keeps nothing.
    #[arg(
        long,
        global = true,
        env = "VANE_STATE",
        default_value = ".vane/state.db",
        value_name = "PATH"
    )]
    pub state: PathBuf,
    /// How many events one input may cause through `emit` steps, in all (default: `max-emitted`
    /// in vane.yaml, else 1000); beyond it the emitting run fails.
    #[arg(long, global = true, env = "VANE_MAX_EMITTED", value_name = "N")]
    pub max_emitted: Option<usize>,
    /// One JSON object per event on stdout, nothing else.
    #[arg(long, global = true, env = "VANE_JSON", conflicts_with = "quiet")]
    pub json: bool,
    /// Print only the closing summary line.
    #[arg(long, short, global = true, env = "VANE_QUIET")]
    pub quiet: bool,
    /// GitHub Actions mode (automatic when `GITHUB_ACTIONS=true`): workflow commands, step
    /// outputs and a job summary.
    #[arg(long, global = true, env = "VANE_GITHUB")]
    pub github: bool,
    /// Which lines that steps write human output shows: `all` (under each step, as written),
    /// `failed` (a step's lines only when it fails) or `none` (a failed step still shows the
    /// last 20 lines of its stderr).
    #[arg(
        long,
        global = true,
        env = "VANE_STEP_OUTPUT",
        value_enum,
        default_value_t = crate::pipeline::OutputMode::All,
        value_name = "WHICH"
    )]
    pub output: crate::pipeline::OutputMode,
    /// When to colour human output: `auto` (a terminal without `NO_COLOR`, or `CLICOLOR_FORCE`
    /// set), `always` or `never`.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = crate::report::ColorChoice::Auto,
        value_name = "WHEN"
    )]
    pub color: crate::report::ColorChoice,
    /// More detail on stderr (repeat for more): log level DEBUG, then TRACE (`VANE_LOG` or
    /// `RUST_LOG` add filter directives, e.g. `vane=debug`).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// How log lines on stderr are written: `text`, or `json` (one object per line).
    #[arg(long, global = true, env = "VANE_LOG_FORMAT", value_enum, default_value_t = crate::log::LogFormat::Text, value_name = "FORMAT")]
    pub log_format: crate::log::LogFormat,
    /// vane's configuration: sources, webhooks, queue, secrets, and defaults for
    /// `--workflows`, `--templates` and `--state`. Default: `./vane.yaml` where it exists.
    #[arg(long, global = true, env = "VANE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The configuration read from `--config` (or `./vane.yaml`), once loaded.
    #[arg(skip)]
    pub loaded: Option<std::sync::Arc<crate::config::Config>>,
}

const RUN_EXAMPLES: &str = "Examples:
  vane run --event event.json                            one envelope or CloudEvent
  producer | vane run                                    NDJSON events on stdin
  vane run --type push --source github --event push.json a saved webhook body
  vane run --dry-run --explain < events.ndjson           plan, and say why others did not match";

const PLAN_EXAMPLES: &str = "Examples:
  vane plan --type push --source github --event push.json
  vane plan --event deploy.cloudevent.json --explain
  vane plan --json < events.ndjson";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read events, match them against the workflows, execute the matched ones.
    #[command(after_help = RUN_EXAMPLES)]
    Run(EventArgs),
    /// Match and render, execute nothing: exactly what `run` would do.
    #[command(after_help = PLAN_EXAMPLES)]
    Plan(EventArgs),
    /// Run one workflow by hand, through a `dispatch` event with typed inputs.
    Dispatch(crate::cli::dispatch::DispatchArgs),
    /// Check workflows and the templates they use; every problem as file:line:col.
    Validate(ValidateArgs),
    /// Run workflow test files (*.test.yaml): match and render each case's event, check what it expects.
    Test(TestArgs),
    /// Print the JSON Schema (draft 2020-12) of workflows, vane.yaml or test files, for editors.
    Schema {
        #[arg(long = "for", value_enum, default_value_t, value_name = "FILE")]
        file: crate::workflow::schema::SchemaFor,
    },
    /// Write a starter project: workflows/, templates/, vane.yaml, a test file and an example event.
    Init(InitArgs),
    /// Print shell completions (bash, zsh, fish, elvish or powershell) to stdout.
    Completions(CompletionsArgs),
    /// Print vane's man page, or one command's (`vane man run`), as roff to stdout.
    Man(crate::cli::about::ManArgs),
    /// List recorded runs, newest first.
    History(crate::cli::store::HistoryArgs),
    /// One recorded run with its steps, rendered actions, outputs and log tails.
    Show(crate::cli::store::ShowArgs),
    /// Send a recorded run's event through the current workflows again.
    Replay(crate::cli::replay::ReplayArgs),
    /// The daemon: verified webhooks into the durable queue, workers running them (vane.yaml).
    Serve(crate::cli::serve::ServeArgs),
    /// Take events from the queue (vane.yaml `queue:`) and run them, until SIGINT/SIGTERM.
    Worker(crate::cli::worker::WorkerArgs),
    /// Poll the sources of vane.yaml (git, HTTP, GitHub API) and fire due schedules; run what is new.
    Poll(crate::cli::poll::PollArgs),
    /// List the gates' live keys (throttle, debounce, window, correlate) with their next deadline; `clear` resets them.
    Gates(crate::cli::store::GatesArgs),
}

/// Where events come from.
#[derive(Debug, Args)]
#[command(next_help_heading = "Event options")]
pub struct EventArgs {
    /// Read the event(s) from this file (`-` is stdin) instead of stdin.
    #[arg(long, short = 'e', env = "VANE_EVENT", value_name = "FILE")]
    pub event: Option<PathBuf>,
    /// The input is a raw payload of this event type (e.g. a saved GitHub webhook body).
    #[arg(
        long = "type",
        short = 't',
        env = "VANE_EVENT_TYPE",
        value_name = "NAME"
    )]
    pub kind: Option<String>,
    /// Where a raw payload came from (`github`, `gitlab`, …); default `cli`, or `github` for a
    /// body with GitHub's `repository` and `sender` keys.
    #[arg(
        long,
        short = 's',
        env = "VANE_EVENT_SOURCE",
        value_name = "NAME",
        requires = "kind"
    )]
    pub source: Option<String>,
    /// The largest event accepted, in bytes.
    #[arg(long, env = "VANE_MAX_EVENT_SIZE", default_value_t = crate::event::DEFAULT_MAX_EVENT_SIZE, value_name = "BYTES")]
    pub max_event_size: usize,
    /// Also say why every other workflow did not match.
    #[arg(long)]
    pub explain: bool,
    /// Runs at once, at most (default: the number of cores). Events are still matched in order.
    #[arg(long, env = "VANE_PARALLEL", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: Option<u16>,
    /// How long a run waits for its concurrency group held by another vane process, then fails.
    #[arg(long, env = "VANE_LOCK_TIMEOUT", default_value = "10m", value_name = "DURATION", value_parser = crate::duration::parse_duration)]
    pub lock_timeout: std::time::Duration,
    /// Plan instead of executing (what `vane plan` does).
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Test files or folders to run (default: every *.test.yaml under the workflows folder and under tests/).
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The folder to write the starter project into.
    #[arg(default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Workflow files or folders to check (default: the workflows folder).
    pub paths: Vec<PathBuf>,
}

impl Command {
    /// Who reads what the command logs: the daemons log for operators.
    pub fn audience(&self) -> crate::log::Audience {
        match self {
            Command::Serve(_) | Command::Worker(_) => crate::log::Audience::Daemon,
            Command::Poll(args) if args.every.is_some() && !args.once => {
                crate::log::Audience::Daemon
            }
            _ => crate::log::Audience::Command,
        }
    }

    /// Whether the command reads `vane.yaml`; those that print about vane itself work anywhere.
    pub fn reads_config(&self) -> bool {
        !matches!(
            self,
            Command::Schema { .. } | Command::Init(_) | Command::Completions(_) | Command::Man(_)
        )
    }
}
