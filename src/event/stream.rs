//! Parsing a stream of events on other threads while the engine runs them in input order.
//!
//! Measured on 5 KB GitHub payloads: reading and parsing an event costs more than matching and
//! planning it, so one thread reads lines, parser threads turn batches of lines into events, and
//! the consumer receives them in their original order. Events are still run one at a time.

use super::{Event, EventError, EventReader, InputOptions, from_text};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

/// Lines per hand-over at most; a batch also goes as soon as no more input is buffered, so a slow
/// producer's event is never held back waiting for the next one.
const BATCH: usize = 64;

type Lines = Vec<Result<(usize, String), EventError>>;
type Parsed = Vec<Result<Event, EventError>>;

/// The events of a stream, parsed in the background, in input order.
pub struct EventStream {
    results: Receiver<(u64, Parsed)>,
    /// Batches that arrived before their turn.
    early: BTreeMap<u64, Parsed>,
    next: u64,
    current: std::vec::IntoIter<Result<Event, EventError>>,
}

impl EventStream {
    /// Starts reading `input` with `parsers` parser threads (at least one).
    pub fn spawn(
        input: Box<dyn BufRead + Send>,
        max_size: usize,
        options: InputOptions,
        parsers: usize,
    ) -> EventStream {
        let parsers = parsers.max(1);
        // Two batches in flight per parser each way keep every thread busy; more only holds
        // more events in memory (measured: peak RSS grew with the queue, throughput did not).
        let (work_sender, work_receiver) = sync_channel::<(u64, Lines)>(parsers * 2);
        let (result_sender, results) = sync_channel::<(u64, Parsed)>(parsers * 2);
        std::thread::spawn(move || read_lines(input, max_size, work_sender));
        let work = Arc::new(Mutex::new(work_receiver));
        for _ in 0..parsers {
            let work = Arc::clone(&work);
            let sender = result_sender.clone();
            let options = options.clone();
            std::thread::spawn(move || parse_batches(&work, &sender, &options));
        }
        EventStream {
            results,
            early: BTreeMap::new(),
            next: 0,
            current: Vec::new().into_iter(),
        }
    }
}

fn read_lines(input: Box<dyn BufRead + Send>, max_size: usize, sender: SyncSender<(u64, Lines)>) {
    let mut reader = EventReader::new(input, max_size);
    let mut sequence = 0;
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(item) = reader.next() {
        batch.push(item);
        if batch.len() == BATCH || !reader.has_buffered_input() {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if sender.send((sequence, full)).is_err() {
                return;
            }
            sequence += 1;
        }
    }
    if !batch.is_empty() {
        let _ = sender.send((sequence, batch));
    }
}

fn parse_batches(
    work: &Mutex<Receiver<(u64, Lines)>>,
    sender: &SyncSender<(u64, Parsed)>,
    options: &InputOptions,
) {
    loop {
        // The lock is held only to take the next batch; a poisoned lock means a parser panicked,
        // and the others stop too.
        let next = match work.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok((sequence, lines)) = next else { return };
        let parsed = lines
            .into_iter()
            .map(|item| {
                item.and_then(|(line, text)| {
                    from_text(&text, options).map_err(|error| error.at_line(line))
                })
            })
            .collect();
        if sender.send((sequence, parsed)).is_err() {
            return;
        }
    }
}

impl Iterator for EventStream {
    type Item = Result<Event, EventError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.current.next() {
                return Some(item);
            }
            let batch = match self.early.remove(&self.next) {
                Some(batch) => batch,
                None => loop {
                    // All senders gone and nothing early: the input has ended.
                    let (sequence, batch) = self.results.recv().ok()?;
                    if sequence == self.next {
                        break batch;
                    }
                    self.early.insert(sequence, batch);
                },
            };
            self.next += 1;
            self.current = batch.into_iter();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_in_input_order_with_their_errors() {
        let mut input = String::new();
        for number in 0..1000 {
            if number == 500 {
                input.push_str("{broken\n");
            } else {
                input.push_str(&format!("{{\"type\": \"t{number}\", \"data\": {{}}}}\n"));
            }
        }
        let stream = EventStream::spawn(
            Box::new(std::io::Cursor::new(input)),
            1 << 20,
            InputOptions::default(),
            3,
        );
        let items: Vec<_> = stream.collect();
        assert_eq!(items.len(), 1000);
        for (number, item) in items.iter().enumerate() {
            match item {
                Ok(event) => assert_eq!(event.kind, format!("t{number}")),
                Err(error) => {
                    assert_eq!(number, 500);
                    assert_eq!(error.line, Some(501));
                }
            }
        }
    }
}
