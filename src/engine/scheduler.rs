//! Running a stream of events for real: runs start as events arrive, up to `parallel` at once,
//! with GitHub Actions' concurrency groups (SPEC §4.4) — at most one running and one pending run
//! per group, a newer pending run replacing the older, `cancel-in-progress` cancelling the running
//! one — and a lock per group shared with other processes. Outcomes come out in input order.

use super::run::run_workflow;
use super::{Engine, EventOutcome, Overrides, RunRecord, RunStatus};
use crate::cancel::CancelToken;
use crate::event::{Event, EventError};
use crate::plan::Selection;
use crate::template::EventObject;
use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How a stream is run.
#[derive(Clone)]
pub struct StreamOptions {
    /// Runs at once, at most.
    pub parallel: usize,
    /// While this says so, no waiting run starts (a queue worker whose store cannot be written);
    /// asked again every 200 ms.
    pub hold: Option<Hold>,
}

/// See [`StreamOptions::hold`].
pub type Hold = Arc<dyn Fn() -> bool + Send + Sync>;

/// How often a held stream asks again.
const HOLD_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Something the stream produced, in input order.
pub enum StreamItem {
    Outcome(EventOutcome),
    /// An input that is no event, with its place in the output order.
    BadInput(u64, EventError),
}

/// What other processes sharing the state store must know: concurrency-group locks (leases) and
/// which runs are in progress.
pub trait GroupLocks: Sync {
    /// Blocks until the group is free for `run_id`, or fails with a message (timed out, cancelled).
    fn acquire(
        &self,
        group: &str,
        run_id: &str,
        cancel: &CancelToken,
    ) -> Result<Box<dyn GroupLease>, String>;

    /// A run is about to start: recorded as `running`, so that a process killed mid-run leaves a
    /// run that the next process marks `interrupted` rather than nothing at all.
    fn started(&self, _run_id: &str, _workflow: &crate::workflow::Workflow, _event: &Event) {}
}

/// Held while a run of a group executes; dropping it releases the group.
pub trait GroupLease: Send {}

/// No other processes to coordinate with (`--state :memory:`).
pub struct LocalOnly;

impl GroupLocks for LocalOnly {
    fn acquire(
        &self,
        _group: &str,
        _run_id: &str,
        _cancel: &CancelToken,
    ) -> Result<Box<dyn GroupLease>, String> {
        struct Nothing;
        impl GroupLease for Nothing {}
        Ok(Box::new(Nothing))
    }
}

/// One run waiting for, or holding, a place to execute.
struct Ticket {
    slot: u64,
    workflow: usize,
    group: Option<String>,
    cancel_in_progress: bool,
    cancel: CancelToken,
    /// The run id a gate committed with its decision, and the run's `gate`.
    run_id: Option<String>,
    gate: Option<serde_json::Value>,
}

/// One event on its way through: its verdicts, its runs as they finish.
struct Slot {
    event: Option<Arc<Event>>,
    depth: usize,
    selections: Vec<(usize, Selection)>,
    runs: Vec<(usize, RunRecord)>,
    emitted: Vec<Event>,
    outstanding: usize,
    bad: Option<EventError>,
    /// Input events count against the read-ahead credit; emitted ones do not.
    from_input: bool,
    gates: Vec<(usize, crate::gates::GateNote)>,
}

#[derive(Default)]
struct Group {
    running: Option<(u64, usize, CancelToken)>,
    pending: Option<Ticket>,
}

enum Message {
    /// Boxed: an event is large, and this message is sent for every input.
    Input(Box<Result<Event, EventError>>),
    InputEnd,
    Done {
        slot: u64,
        workflow: usize,
        record: RunRecord,
        emitted: Vec<Event>,
        group: Option<String>,
    },
}

/// A counting semaphore: how far the input may read ahead of the outcomes printed.
struct Credits {
    available: Mutex<usize>,
    changed: Condvar,
}

impl Credits {
    fn take(&self) {
        let Ok(mut available) = self.available.lock() else {
            return;
        };
        while *available == 0 {
            available = match self.changed.wait(available) {
                Ok(guard) => guard,
                Err(_) => return,
            };
        }
        *available -= 1;
    }

    fn give(&self) {
        if let Ok(mut available) = self.available.lock() {
            *available += 1;
            self.changed.notify_one();
        }
    }
}

/// Runs every event of `inputs`, calling `sink` with each outcome in input order.
pub fn run_stream<I>(
    engine: &Engine,
    inputs: I,
    options: &StreamOptions,
    locks: &dyn GroupLocks,
    sink: &mut dyn FnMut(StreamItem),
) where
    I: Iterator<Item = Result<Event, EventError>> + Send + 'static,
{
    let parallel = options.parallel.max(1);
    let credits = Arc::new(Credits {
        available: Mutex::new(parallel * 4),
        changed: Condvar::new(),
    });
    let (sender, receiver) = channel::<Message>();
    let (work_sender, work_receiver) = channel::<(Ticket, Arc<Event>, usize)>();
    let work_receiver = Mutex::new(work_receiver);
    std::thread::scope(|threads| {
        // A pool of `parallel` workers: a thread per run cost more than a short run itself.
        for _ in 0..parallel {
            let (work, sender) = (&work_receiver, sender.clone());
            threads.spawn(move || {
                loop {
                    // The lock is held only to take the next ticket.
                    let next = match work.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    let Ok((ticket, event, depth)) = next else {
                        return;
                    };
                    execute_ticket(engine, locks, ticket, event, depth, &sender);
                }
            });
        }
        let input_sender = sender.clone();
        let input_credits = Arc::clone(&credits);
        // The input is read on its own thread so that outcomes are printed while it waits.
        // Not a scoped thread: the scope would wait for it, and a cancelled run must not wait
        // for a stdin that never closes. It ends as soon as a send fails.
        std::thread::spawn({
            let mut inputs = inputs;
            move || {
                loop {
                    input_credits.take();
                    match inputs.next() {
                        Some(item) => {
                            if input_sender.send(Message::Input(Box::new(item))).is_err() {
                                return;
                            }
                        }
                        None => {
                            let _ = input_sender.send(Message::InputEnd);
                            return;
                        }
                    }
                }
            }
        });
        let mut state = State {
            engine,
            parallel,
            slots: VecDeque::new(),
            first_slot: 0,
            waiting: VecDeque::new(),
            groups: HashMap::new(),
            running: 0,
            input_done: false,
            work: work_sender,
            hold: options.hold.clone(),
        };
        state.main_loop(&receiver, &credits, sink);
        // Dropping the state closes the work queue; the workers finish and the scope joins them.
        drop(state);
    });
}

struct State<'a, 'e> {
    engine: &'a Engine<'e>,
    parallel: usize,
    slots: VecDeque<Slot>,
    first_slot: u64,
    waiting: VecDeque<Ticket>,
    groups: HashMap<String, Group>,
    running: usize,
    input_done: bool,
    /// Tickets for the worker pool.
    work: Sender<(Ticket, Arc<Event>, usize)>,
    hold: Option<Hold>,
}

impl<'a, 'e> State<'a, 'e> {
    fn main_loop(
        &mut self,
        receiver: &Receiver<Message>,
        credits: &Credits,
        sink: &mut dyn FnMut(StreamItem),
    ) {
        loop {
            // Finished events first: their records are written before the next run starts (and
            // a record that fails can hold the stream before it does).
            self.flush(credits, sink);
            self.start_waiting();
            if self.input_done && self.slots.is_empty() && self.running == 0 {
                return;
            }
            let message = match &self.hold {
                None => match receiver.recv() {
                    Ok(message) => message,
                    Err(_) => return,
                },
                Some(_) => match receiver.recv_timeout(HOLD_POLL) {
                    Ok(message) => message,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                },
            };
            match message {
                Message::Input(_) if self.input_done => {}
                Message::Input(item) => match *item {
                    Ok(event) => {
                        if self.engine.cancel.is_cancelled() {
                            self.input_done = true;
                            continue;
                        }
                        self.admit(event, 0, true);
                    }
                    Err(error) => {
                        self.slots.push_back(Slot {
                            event: None,
                            depth: 0,
                            selections: Vec::new(),
                            runs: Vec::new(),
                            emitted: Vec::new(),
                            outstanding: 0,
                            bad: Some(error),
                            from_input: true,
                            gates: Vec::new(),
                        });
                    }
                },
                Message::InputEnd => self.input_done = true,
                Message::Done {
                    slot,
                    workflow,
                    record,
                    emitted,
                    group,
                } => {
                    self.running -= 1;
                    if let Some(name) = group
                        && let Some(state) = self.groups.get_mut(&name)
                    {
                        state.running = None;
                        if let Some(next) = state.pending.take() {
                            self.waiting.push_back(next);
                        }
                    }
                    self.complete(slot, workflow, record, emitted);
                }
            }
            if self.engine.cancel.is_cancelled() {
                self.input_done = true;
                // No new runs start; waiting ones are recorded as cancelled.
                while let Some(ticket) = self.waiting.pop_front() {
                    self.complete(
                        ticket.slot,
                        ticket.workflow,
                        cancelled_for(&ticket, "not started: interrupted"),
                        Vec::new(),
                    );
                }
                let pending: Vec<Ticket> = self
                    .groups
                    .values_mut()
                    .filter_map(|group| group.pending.take())
                    .collect();
                for ticket in pending {
                    self.complete(
                        ticket.slot,
                        ticket.workflow,
                        cancelled_for(&ticket, "not started: interrupted"),
                        Vec::new(),
                    );
                }
            }
        }
    }

    fn slot_mut(&mut self, slot: u64) -> Option<&mut Slot> {
        let index = slot.checked_sub(self.first_slot)? as usize;
        self.slots.get_mut(index)
    }

    fn complete(&mut self, slot: u64, workflow: usize, record: RunRecord, emitted: Vec<Event>) {
        if let Some(entry) = self.slot_mut(slot) {
            entry.runs.push((workflow, record));
            entry.emitted.extend(emitted);
            entry.outstanding = entry.outstanding.saturating_sub(1);
        }
    }

    /// Matches an event and queues a ticket per matched workflow.
    fn admit(&mut self, event: Event, depth: usize, from_input: bool) {
        let engine = self.engine;
        let admitted = engine
            .gates
            .admit(engine.set, event, engine.options.dry_run);
        let (event, event_value, selections) =
            (admitted.event, admitted.event_value, admitted.selections);
        let mut gate_runs = admitted.runs;
        let slot = self.first_slot + self.slots.len() as u64;

        let mut tickets = Vec::new();
        let mut failures = Vec::new();
        for (index, selection) in &selections {
            if *selection != Selection::Matched {
                continue;
            }
            let workflow = &engine.set.workflows[*index];
            let (group, cancel_in_progress) = match crate::plan::concurrency_group(
                workflow,
                &event,
                &event_value,
                engine.set.revision.as_deref(),
            ) {
                Ok(Some((group, cancel_in_progress))) => (Some(group), cancel_in_progress),
                Ok(None) => (None, false),
                Err(message) => {
                    failures.push((*index, message));
                    continue;
                }
            };
            let (run_id, gate) = match gate_runs.remove(index) {
                Some((run_id, gate)) => (run_id, Some(gate)),
                None => (None, None),
            };
            tickets.push(Ticket {
                slot,
                workflow: *index,
                group,
                cancel_in_progress,
                cancel: engine.cancel.child(),
                run_id,
                gate,
            });
        }
        // A group that cannot render is an error in the workflow, reported as its verdict.
        let mut selections = selections;
        for (index, message) in failures {
            if let Some(entry) = selections.iter_mut().find(|(at, _)| *at == index) {
                entry.1 = Selection::Broken(message);
            }
        }
        let runs = Vec::new();
        engine.observer.observe(&super::RunEvent::Matched {
            sequence: slot,
            event: &event,
            selections: &selections,
        });
        self.slots.push_back(Slot {
            event: Some(event),
            depth,
            selections,
            runs,
            emitted: Vec::new(),
            outstanding: tickets.len(),
            bad: None,
            from_input,
            gates: admitted.notes,
        });
        for ticket in tickets {
            self.submit(ticket);
        }
    }

    /// Applies the group rules; a ticket without a group waits only for capacity.
    fn submit(&mut self, ticket: Ticket) {
        let Some(name) = ticket.group.clone() else {
            self.waiting.push_back(ticket);
            return;
        };
        let group = self.groups.entry(name.clone()).or_default();
        let busy = group.running.is_some()
            || self
                .waiting
                .iter()
                .any(|waiting| waiting.group.as_deref() == Some(&name));
        if !busy {
            self.waiting.push_back(ticket);
            return;
        }
        if ticket.cancel_in_progress
            && let Some((_, _, cancel)) = &group.running
        {
            cancel.cancel();
        }
        if let Some(replaced) = group.pending.replace(ticket) {
            let message = format!(
                "cancelled: a newer run of concurrency group `{name}` replaced it before it started"
            );
            self.complete(
                replaced.slot,
                replaced.workflow,
                cancelled_for(&replaced, &message),
                Vec::new(),
            );
        }
    }

    /// Starts waiting tickets while there is capacity and their group is free.
    fn start_waiting(&mut self) {
        if self.waiting.is_empty() || self.hold.as_ref().is_some_and(|hold| hold()) {
            return;
        }
        let mut index = 0;
        while self.running < self.parallel && index < self.waiting.len() {
            let group_busy = self.waiting[index].group.as_ref().is_some_and(|name| {
                self.groups
                    .get(name)
                    .is_some_and(|group| group.running.is_some())
            });
            if group_busy {
                index += 1;
                continue;
            }
            let Some(ticket) = self.waiting.remove(index) else {
                break;
            };
            let Some(slot) = self.slot_mut(ticket.slot) else {
                continue;
            };
            let Some(event) = slot.event.clone() else {
                continue;
            };
            let depth = slot.depth;
            if let Some(name) = &ticket.group {
                self.groups.entry(name.clone()).or_default().running =
                    Some((ticket.slot, ticket.workflow, ticket.cancel.clone()));
            }
            self.running += 1;
            // A worker of the pool takes it; the pool lives as long as the stream.
            let _ = self.work.send((ticket, event, depth));
        }
    }

    /// Hands finished events to the sink in input order; their emitted events go next.
    fn flush(&mut self, credits: &Credits, sink: &mut dyn FnMut(StreamItem)) {
        while self.slots.front().is_some_and(|slot| slot.outstanding == 0) {
            let Some(mut slot) = self.slots.pop_front() else {
                break;
            };
            self.first_slot += 1;
            if slot.from_input {
                credits.give();
            }
            if let Some(error) = slot.bad.take() {
                sink(StreamItem::BadInput(self.first_slot - 1, error));
                continue;
            }
            let Some(event) = slot.event.take() else {
                continue;
            };
            // Runs in the order of the workflows, as the sequential engine reports them.
            slot.runs.sort_by_key(|(index, _)| *index);
            let emitted = std::mem::take(&mut slot.emitted);
            let depth = slot.depth;
            sink(StreamItem::Outcome(EventOutcome {
                event,
                depth,
                selections: slot.selections,
                runs: slot.runs,
                emitted: Vec::new(),
                sequence: self.first_slot - 1,
                gates: slot.gates,
            }));
            for child in emitted {
                if self.engine.cancel.is_cancelled() {
                    break;
                }
                self.admit(child, depth + 1, false);
            }
            self.start_waiting();
        }
    }
}

/// One worker's share of a run: the group lock, the `running` record, the run itself.
fn execute_ticket(
    engine: &Engine,
    locks: &dyn GroupLocks,
    ticket: Ticket,
    event: Arc<Event>,
    depth: usize,
    sender: &Sender<Message>,
) {
    let run_engine = Engine {
        cancel: ticket.cancel.clone(),
        ..engine.clone()
    };
    let workflow = &engine.set.workflows[ticket.workflow];
    let event_value = EventObject::value(event.clone());
    let run_id = ticket
        .run_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let lease = match &ticket.group {
        Some(name) => match locks.acquire(name, &run_id, &ticket.cancel) {
            Ok(lease) => Some(lease),
            Err(message) => {
                let mut record = cancelled_for(&ticket, &message);
                if !ticket.cancel.is_cancelled() {
                    record.status = RunStatus::Failure;
                }
                let _ = sender.send(Message::Done {
                    slot: ticket.slot,
                    workflow: ticket.workflow,
                    record,
                    emitted: Vec::new(),
                    group: ticket.group,
                });
                return;
            }
        },
        None => None,
    };
    locks.started(&run_id, workflow, &event);
    let overrides = Overrides {
        run_id: Some(run_id),
        sequence: ticket.slot,
        gate: ticket.gate.clone(),
        ..Overrides::default()
    };
    let (record, emitted) = run_workflow(
        &run_engine,
        ticket.workflow,
        &event,
        &event_value,
        depth,
        &overrides,
    );
    drop(lease);
    let _ = sender.send(Message::Done {
        slot: ticket.slot,
        workflow: ticket.workflow,
        record,
        emitted,
        group: ticket.group,
    });
}

/// [`cancelled_record`] under the run id a gate committed for the ticket, which replaces its
/// `running` row.
fn cancelled_for(ticket: &Ticket, message: &str) -> RunRecord {
    let mut record = cancelled_record(message);
    if let Some(id) = &ticket.run_id {
        record.id = id.clone();
    }
    record
}

/// A run that never executed its steps.
fn cancelled_record(message: &str) -> RunRecord {
    RunRecord {
        id: uuid::Uuid::new_v4().to_string(),
        status: RunStatus::Cancelled,
        started: chrono::Utc::now(),
        duration_ms: 0,
        error: Some(message.to_string()),
        steps: Vec::new(),
    }
}

/// Waits up to `timeout` for `ready`, polling; for lock implementations.
pub fn wait_until(
    timeout: Duration,
    cancel: &CancelToken,
    mut ready: impl FnMut() -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline || cancel.is_cancelled() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
