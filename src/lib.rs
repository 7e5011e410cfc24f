//! vane: events in, versioned YAML workflows matched, steps rendered with Jinja templates and run.
//!
//! The data path, in the order an event travels it:
//! - [`event`]: every input becomes one `Event` envelope;
//! - [`workflow`]: YAML workflows loaded, checked and compiled ([`yaml`], [`glob`], [`template`]);
//! - [`matcher`] and [`plan`]: which workflows an event selects, and why the others do not;
//! - [`engine`] and [`steps`]: the matched workflows' jobs and steps executed (or planned);
//! - [`report`]: human, JSON and quiet output, every secret masked ([`secrets`]);
//! - [`queue`] and [`broker`]: where accepted events wait (the store, or NATS JetStream), and the
//!   NATS / MQTT subscriptions that feed it;
//! - [`state`]: the SQLite store of runs and their steps, for `history`, `show` and `replay`;
//! - [`testing`]: workflow test files, run as dry runs (`vane test`); [`init`]: a starter project;
//! - [`pipeline`]: the one path every command drives events along, and the consumers of its
//!   run-event stream;
//! - [`cli`]: the `vane` command line over all of it; [`manpage`]: its man pages.

pub mod broker;
pub mod cancel;
pub mod cli;
pub mod config;
pub mod cron;
pub mod diagnostic;
pub mod duration;
pub mod engine;
pub mod event;
pub mod gates;
pub mod glob;
pub mod init;
pub mod log;
pub mod manpage;
pub mod matcher;
pub mod metrics;
pub mod percent;
pub mod pipeline;
pub mod plan;
pub mod queue;
pub mod report;
pub mod secrets;
pub mod serve;
pub mod sources;
pub mod state;
pub mod steps;
pub mod template;
pub mod testing;
pub mod workflow;
pub mod yaml;
