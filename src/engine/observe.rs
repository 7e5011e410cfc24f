//! The run-event stream: what happens to an event, told as it happens. The engine emits the
//! events of matching and running (matched, run started, step started, each line a step writes,
//! step finished, run finished); the pipeline adds the end of each event and each bad input.
//! Every consumer — human output, `--json`, GitHub Actions, the state recorder, metrics, live
//! progress — reads this one stream, so none re-derives what another already knows.

use super::{EventOutcome, RunRecord, StepRecord};
use crate::event::Event;
use crate::plan::Selection;
use crate::workflow::Step;
use std::sync::Arc;

/// Which stream of a step a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One step of one run, as the stream names it.
#[derive(Debug, Clone, Copy)]
pub struct StepRef<'a> {
    /// The event's place in the output order (see [`RunEvent`]).
    pub sequence: u64,
    /// The workflow's index in the loaded set.
    pub workflow: usize,
    pub run_id: &'a str,
    /// The job, where the workflow has `jobs:` (absent for the `steps:` shorthand).
    pub job: Option<&'a str>,
    pub step: &'a Step,
}

/// Something that happened. `sequence` numbers events in the order their outcomes are reported:
/// runs of several events may overlap, but an event's `EventFinished` comes after every event
/// with a lower sequence has finished, so a consumer can keep its output in input order.
#[derive(Clone, Copy)]
pub enum RunEvent<'a> {
    /// The event was matched: the verdict for every candidate workflow.
    Matched {
        sequence: u64,
        event: &'a Arc<Event>,
        selections: &'a [(usize, Selection)],
    },
    RunStarted {
        sequence: u64,
        workflow: usize,
        run_id: &'a str,
    },
    StepStarted(StepRef<'a>),
    /// One line the step wrote (without its line end), every secret already masked.
    StepOutput {
        step: StepRef<'a>,
        stream: Stream,
        line: &'a str,
    },
    /// Every step of a run ends with this, the skipped ones included.
    StepFinished {
        step: StepRef<'a>,
        record: &'a StepRecord,
    },
    RunFinished {
        sequence: u64,
        workflow: usize,
        record: &'a RunRecord,
    },
    /// Everything that happened for the event, in sequence order.
    EventFinished {
        sequence: u64,
        outcome: &'a EventOutcome,
    },
    /// An input that is no event (`place` is `stdin:3`, a file name, …); its message is masked.
    BadInput {
        sequence: u64,
        place: &'a str,
        message: &'a str,
    },
}

/// Reads the stream. Called from the threads that run steps, so implementations are shared.
pub trait Observer: Send + Sync {
    fn observe(&self, event: &RunEvent<'_>);
}

/// Nobody listens (`vane test`, the library's own callers).
pub struct Unobserved;

impl Observer for Unobserved {
    fn observe(&self, _event: &RunEvent<'_>) {}
}

/// Splits what a step writes into lines as it arrives and reports each one. A line ends at `\n`;
/// a line that grows past [`MAX_LINE`] without one is reported in pieces of that size (a cut
/// secret could then escape the mask, so the limit is far above any secret's length).
pub struct LineSplitter<'a> {
    stream: Stream,
    pending: Vec<u8>,
    sink: &'a (dyn Fn(Stream, &[u8]) + Sync),
}

/// The longest line held back waiting for its end.
pub const MAX_LINE: usize = 64 * 1024;

impl<'a> LineSplitter<'a> {
    pub fn new(stream: Stream, sink: &'a (dyn Fn(Stream, &[u8]) + Sync)) -> LineSplitter<'a> {
        LineSplitter {
            stream,
            pending: Vec::new(),
            sink,
        }
    }

    pub fn push(&mut self, mut chunk: &[u8]) {
        while let Some(end) = memchr::memchr(b'\n', chunk) {
            if self.pending.is_empty() {
                (self.sink)(self.stream, trim_cr(&chunk[..end]));
            } else {
                self.pending.extend_from_slice(&chunk[..end]);
                let line = std::mem::take(&mut self.pending);
                (self.sink)(self.stream, trim_cr(&line));
            }
            chunk = &chunk[end + 1..];
        }
        self.pending.extend_from_slice(chunk);
        while self.pending.len() > MAX_LINE {
            let rest = self.pending.split_off(MAX_LINE);
            let line = std::mem::replace(&mut self.pending, rest);
            (self.sink)(self.stream, &line);
        }
    }

    /// The stream ended: an unfinished last line is still a line.
    pub fn finish(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            (self.sink)(self.stream, trim_cr(&line));
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let lines = Mutex::new(Vec::new());
        let sink = |_: Stream, line: &[u8]| {
            lines
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(line).to_string())
        };
        let mut splitter = LineSplitter::new(Stream::Stdout, &sink);
        for chunk in chunks {
            splitter.push(chunk);
        }
        splitter.finish();
        lines.into_inner().unwrap()
    }

    #[test]
    fn lines_are_reported_whole_however_the_pipe_cuts_them() {
        assert_eq!(
            split(&[b"one\ntw", b"o\r\nthr", b"ee"]),
            ["one", "two", "three"]
        );
        assert_eq!(split(&[b"\n\n"]), ["", ""]);
        assert_eq!(split(&[b""]), Vec::<String>::new());
    }

    #[test]
    fn an_endless_line_comes_in_pieces_of_the_limit() {
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        let lines = split(&[&long]);
        assert_eq!(
            lines.iter().map(String::len).collect::<Vec<_>>(),
            [MAX_LINE, MAX_LINE, 5]
        );
    }
}
