//! Where `vane run` and `vane plan` read their events: `--event FILE`, stdin, or — in GitHub
//! Actions, with nothing on stdin — the run's own event.

use super::{Events, Settings};
use crate::event::{self, EventStream, InputOptions};
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::Path;

type Input = Box<dyn BufRead + Send>;

/// The events to run and where they came from (for messages), parsed in the background.
/// `file`: `--event` (`-` is stdin); without it stdin, unless it is a terminal.
pub fn open_events(
    file: Option<&Path>,
    max_event_size: usize,
    options: InputOptions,
) -> Result<(String, Events), String> {
    let mut events: Events = Box::new(std::iter::empty());
    let mut origin = "stdin".to_string();
    if let Some((name, reader)) = open_input(file)? {
        let parsers = Settings::default_parallelism();
        origin = name;
        events = Box::new(EventStream::spawn(reader, max_event_size, options, parsers));
    }
    // In GitHub Actions stdin is neither a terminal nor an event: with nothing on it, the run's
    // own event is the input.
    match events.next() {
        Some(first) => Ok((origin, Box::new(std::iter::once(first).chain(events)))),
        None => match event::actions_event(&|name| std::env::var(name).ok()) {
            Some(item) => Ok((
                "GITHUB_EVENT_PATH".to_string(),
                Box::new(std::iter::once(item)),
            )),
            None => Err("no event: pass `--event FILE`, or pipe JSON on stdin".to_string()),
        },
    }
}

fn open_input(file: Option<&Path>) -> Result<Option<(String, Input)>, String> {
    let stdin = || -> Input {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            std::io::stdin().take(u64::MAX),
        ))
    };
    match file {
        Some(path) if path.as_os_str() == "-" => Ok(Some(("stdin".to_string(), stdin()))),
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|error| {
                format!("cannot read the event file `{}`: {error}", path.display())
            })?;
            let reader = Box::new(BufReader::with_capacity(256 * 1024, file));
            Ok(Some((path.display().to_string(), reader)))
        }
        None if std::io::stdin().is_terminal() => Ok(None),
        None => Ok(Some(("stdin".to_string(), stdin()))),
    }
}
