//! Where everything vane says on stderr goes: one `tracing` subscriber per process.
//!
//! The daemons (`vane serve`, `vane worker`, `vane poll --every`) log for operators: each line
//! has a timestamp, a level and fields (`text`), or is one JSON object for log shippers (`json`):
//! `{"timestamp":"…","level":"INFO","message":"…",<fields>}`, the event's fields flattened beside
//! the message. The other commands print for the person at the terminal, as they always have:
//! `error: …`, `warning: …`, `file:line: error: …` (`plain`), unless `--log-format json` asks for
//! JSON there too.
//!
//! The level is INFO for vane (WARN for the libraries it uses), DEBUG with `-v`, TRACE with
//! `-vv`; `VANE_LOG` (else `RUST_LOG`) adds `tracing` filter directives on top (`vane=debug`,
//! `warn`, `vane::serve=trace`), which win for the targets they name.

use std::io::{IsTerminal, Write};
use tracing::Level;
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people: a daemon's with timestamp, level and fields; a command's as
    /// `error: …`.
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, message and the event's fields.
    Json,
}

/// Who reads the lines: an operator of a long-running process, or the person who ran a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Daemon,
    Command,
}

/// The filter directives for `verbose` (`-v` count) and the environment's `VANE_LOG` /
/// `RUST_LOG`, later directives winning.
pub fn directives(verbose: u8, env: Option<&str>) -> String {
    let base = match verbose {
        0 => "warn,vane=info",
        1 => "warn,vane=debug",
        _ => "info,vane=trace",
    };
    match env.map(str::trim).filter(|env| !env.is_empty()) {
        Some(env) => format!("{base},{env}"),
        None => base.to_string(),
    }
}

/// Installs the process's subscriber. A `VANE_LOG` that is no filter is said (as a warning) and
/// left out. Call once, before anything logs; later calls change nothing.
pub fn init(format: LogFormat, audience: Audience, verbose: u8) {
    let env = std::env::var("VANE_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok());
    let (filter, problem) = match EnvFilter::try_new(directives(verbose, env.as_deref())) {
        Ok(filter) => (filter, None),
        Err(error) => (
            EnvFilter::new(directives(verbose, None)),
            Some(format!(
                "VANE_LOG / RUST_LOG `{}` is not a log filter ({error}); it is ignored",
                env.unwrap_or_default()
            )),
        ),
    };
    let subscriber = Registry::default()
        .with(layer(format, audience, Stderr))
        .with(filter);
    if tracing::subscriber::set_global_default(subscriber).is_ok()
        && let Some(problem) = problem
    {
        tracing::warn!("{problem}");
    }
}

/// The formatting layer for `format` and `audience`, writing to `writer`.
pub fn layer<S, W>(
    format: LogFormat,
    audience: Audience,
    writer: W,
) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    match (format, audience) {
        (LogFormat::Json, _) => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_target(false)
            .boxed(),
        (LogFormat::Text, Audience::Daemon) => fmt
            .with_target(false)
            .with_ansi(crate::report::use_color(std::io::stderr().is_terminal()))
            .boxed(),
        (LogFormat::Text, Audience::Command) => fmt.event_format(Plain).boxed(),
    }
}

/// stderr, written a whole line at a time, with live progress lines cleared around it.
#[derive(Clone, Copy)]
pub struct Stderr;

impl<'w> MakeWriter<'w> for Stderr {
    type Writer = Stderr;

    fn make_writer(&'w self) -> Stderr {
        Stderr
    }
}

impl Write for Stderr {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        crate::report::progress::suspend(|| std::io::stderr().lock().write_all(buffer))?;
        Ok(buffer.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// A command's messages as a person reads them: `[place: ]error: message` (`warning: ` for a
/// warning, nothing for the rest); other fields are left out, the message says it all.
struct Plain;

#[derive(Default)]
struct PlainFields {
    message: String,
    place: Option<String>,
}

impl Visit for PlainFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_string(),
            "place" => self.place = Some(value.to_string()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "place" => self.place = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

impl<S, N> FormatEvent<S, N> for Plain
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = PlainFields::default();
        event.record(&mut fields);
        if let Some(place) = &fields.place {
            write!(writer, "{place}: ")?;
        }
        match *event.metadata().level() {
            Level::ERROR => write!(writer, "error: ")?,
            Level::WARN => write!(writer, "warning: ")?,
            _ => {}
        }
        writeln!(writer, "{}", fields.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buffer);
            Ok(buffer.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Buffer {
            self.clone()
        }
    }

    fn logged(format: LogFormat, audience: Audience, log: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let subscriber = Registry::default().with(layer(format, audience, buffer.clone()));
        tracing::subscriber::with_default(subscriber, log);
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn json_lines_are_flat_objects_of_timestamp_level_message_and_fields() {
        let text = logged(LogFormat::Json, Audience::Daemon, || {
            tracing::warn!(
                endpoint = "github",
                reason = "signature",
                "delivery rejected"
            );
        });
        let line: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        let keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["timestamp", "level", "message", "endpoint", "reason"]
        );
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "delivery rejected");
        assert_eq!(line["reason"], "signature");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn a_commands_messages_read_as_they_always_have() {
        let text = logged(LogFormat::Text, Audience::Command, || {
            tracing::error!(code = 3, "cannot open the store");
            tracing::warn!("a note");
            tracing::info!("found 2 events");
            tracing::error!(place = "stdin:3", "not JSON");
        });
        assert_eq!(
            text,
            "error: cannot open the store\nwarning: a note\nfound 2 events\nstdin:3: error: not JSON\n"
        );
    }

    #[test]
    fn a_daemons_text_lines_carry_level_message_and_fields() {
        let text = logged(LogFormat::Text, Audience::Daemon, || {
            tracing::info!(address = "http://127.0.0.1:1", "listening");
        });
        assert!(
            text.contains(" INFO listening address=\"http://127.0.0.1:1\""),
            "{text}"
        );
    }

    #[test]
    fn verbosity_sets_the_base_level_and_the_environment_adds_to_it() {
        assert_eq!(directives(0, None), "warn,vane=info");
        assert_eq!(directives(1, Some(" ")), "warn,vane=debug");
        assert_eq!(
            directives(2, Some("vane::serve=warn")),
            "info,vane=trace,vane::serve=warn"
        );
        assert!(EnvFilter::try_new(directives(0, Some("vane=[nope"))).is_err());
        // A later directive for the same target wins: `VANE_LOG=vane=warn` quietens vane.
        let filter = EnvFilter::new(directives(0, Some("vane=warn")));
        let subscriber = Registry::default().with(filter);
        tracing::subscriber::with_default(subscriber, || {
            assert!(!tracing::enabled!(target: "vane::serve", Level::INFO));
            assert!(tracing::enabled!(target: "vane::serve", Level::WARN));
        });
    }
}
