//! The embedded queue: a table in the state store. Pushes from many threads (webhook requests)
//! are committed together by one writer thread — group commit — so a burst costs one transaction,
//! not one per request.

use super::{Enqueued, Queue, QueueItem, Taken};
use crate::engine::Renewer;
use crate::state::{Claimer, Store};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Items pushed per transaction, at most: bounds how long the write lock is held.
const BATCH: usize = 512;

type Reply = super::Reply;

struct Push {
    items: Vec<QueueItem>,
    cursor: Option<(String, String)>,
    reply: Reply,
}

/// The state store's queue, over its own connections.
pub struct SqliteQueue {
    /// For taking, acknowledging and reading; pushes go through the writer's connection.
    store: Arc<Mutex<Store>>,
    pushes: Mutex<Sender<Push>>,
    /// Signalled after each commit, so that a waiting `take` wakes at once.
    arrived: Arc<(Mutex<u64>, Condvar)>,
    /// This process as the owner of its claims.
    claimer: Claimer,
    /// Extends this process's claims while it lives; stopped when the queue is dropped.
    renewer: Mutex<Renewer<()>>,
}

impl SqliteQueue {
    /// The queue of the store at `location`, with a connection for the writer thread and one
    /// for the workers.
    pub fn open(
        location: &crate::state::StateLocation,
        masker: crate::secrets::Masker,
    ) -> Result<SqliteQueue, crate::state::StateError> {
        let reader = Store::open(location, masker.clone())?;
        // `:memory:` is a database per connection: the writer must share the workers' one.
        let store = Arc::new(Mutex::new(reader));
        let writer = if *location == crate::state::StateLocation::Memory {
            Writer::Shared(Arc::clone(&store))
        } else {
            let writer = Store::open(location, masker)?;
            writer.leave_checkpoints_to_others()?;
            Writer::Own(Box::new(writer))
        };
        let (sender, receiver) = channel();
        let arrived = Arc::new((Mutex::new(0u64), Condvar::new()));
        let signal = Arc::clone(&arrived);
        std::thread::Builder::new()
            .name("vane-queue-writer".to_string())
            .spawn(move || write_loop(writer, &receiver, &signal))
            .map_err(|error| crate::state::StateError::Thread(error.to_string()))?;
        let claimer = Claimer::this_process();
        let renewer = {
            let (store, claimer) = (Arc::clone(&store), claimer.clone());
            Renewer::start(claimer.lease, (), move |()| {
                if let Ok(mut store) = store.lock()
                    && let Err(error) = store.renew_claims(&claimer)
                {
                    tracing::error!("cannot renew this process's queue claims: {error}");
                }
            })
        };
        Ok(SqliteQueue {
            store,
            pushes: Mutex::new(sender),
            arrived,
            claimer,
            renewer: Mutex::new(renewer),
        })
    }

    fn with_store<T>(
        &self,
        work: impl FnOnce(&mut Store) -> Result<T, crate::state::StateError>,
    ) -> Result<T, String> {
        let mut store = self.store.lock().map_err(|_| {
            "the state store is unusable after a crash of another thread".to_string()
        })?;
        work(&mut store).map_err(|error| error.to_string())
    }
}

impl Drop for SqliteQueue {
    fn drop(&mut self) {
        if let Ok(mut renewer) = self.renewer.lock() {
            renewer.stop();
        }
    }
}

enum Writer {
    Own(Box<Store>),
    Shared(Arc<Mutex<Store>>),
}

/// Commits pushes as they come, each batch in one transaction, and answers each pusher.
fn write_loop(mut writer: Writer, receiver: &Receiver<Push>, arrived: &(Mutex<u64>, Condvar)) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        // A push that moves a cursor commits alone: its items and cursor are one unit.
        if batch[0].cursor.is_none() {
            while batch.len() < BATCH {
                match receiver.try_recv() {
                    Ok(next) if next.cursor.is_none() => batch.push(next),
                    Ok(next) => {
                        commit(&mut writer, std::mem::take(&mut batch));
                        batch.push(next);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        commit(&mut writer, batch);
        if let Ok(mut count) = arrived.0.lock() {
            *count += 1;
            arrived.1.notify_all();
        }
    }
}

fn commit(writer: &mut Writer, batch: Vec<Push>) {
    let Some(first) = batch.first() else {
        return;
    };
    let items: Vec<QueueItem> = batch
        .iter()
        .flat_map(|push| push.items.iter().cloned())
        .collect();
    let cursor = first
        .cursor
        .as_ref()
        .map(|(source, value)| (source.as_str(), value.as_str()));
    let result = match writer {
        Writer::Own(store) => store.enqueue(&items, cursor),
        Writer::Shared(store) => match store.lock() {
            Ok(mut store) => store.enqueue(&items, cursor),
            Err(_) => Err(crate::state::StateError::Thread(
                "the state store is unusable after a crash of another thread".to_string(),
            )),
        },
    }
    .map_err(|error| error.to_string());
    let mut outcomes = result.clone().unwrap_or_default().into_iter();
    for push in batch {
        let reply = match &result {
            Ok(_) => Ok(outcomes.by_ref().take(push.items.len()).collect()),
            Err(message) => Err(message.clone()),
        };
        (push.reply)(reply);
    }
}

impl Queue for SqliteQueue {
    fn push(
        &self,
        items: &[QueueItem],
        cursor: Option<(&str, &str)>,
    ) -> Result<Vec<Enqueued>, String> {
        let (reply, answer) = channel();
        self.push_then(
            items.to_vec(),
            cursor.map(|(source, value)| (source.to_string(), value.to_string())),
            Box::new(move |outcome| {
                let _ = reply.send(outcome);
            }),
        );
        answer
            .recv()
            .map_err(|_| "the queue writer stopped before answering".to_string())?
    }

    fn push_then(
        &self,
        items: Vec<QueueItem>,
        cursor: Option<(String, String)>,
        reply: super::Reply,
    ) {
        let push = Push {
            items,
            cursor,
            reply,
        };
        let sent = match self.pushes.lock() {
            Ok(sender) => sender.send(push).map_err(|error| error.0),
            Err(_) => Err(push),
        };
        if let Err(push) = sent {
            (push.reply)(Err("the queue writer is gone".to_string()));
        }
    }

    fn take(&self, limit: usize, wait: Duration) -> Result<Vec<Taken>, String> {
        let claimer = &self.claimer;
        let seen = self
            .arrived
            .0
            .lock()
            .map(|count| *count)
            .unwrap_or_default();
        let claimed = self.with_store(|store| store.claim(claimer, limit))?;
        let claimed = if claimed.is_empty() && !wait.is_zero() {
            // Woken by a push of this process, or after `wait` for pushes of other processes.
            if let Ok(count) = self.arrived.0.lock() {
                let _ = self
                    .arrived
                    .1
                    .wait_timeout_while(count, wait, |count| *count == seen);
            }
            self.with_store(|store| store.claim(claimer, limit))?
        } else {
            claimed
        };
        Ok(claimed
            .into_iter()
            .map(|claimed| Taken {
                delivery: claimed.delivery,
                source: claimed.source,
                event: claimed.event,
                attempts: claimed.attempts,
                handle: 0,
            })
            .collect())
    }

    fn done(&self, taken: &Taken) -> Result<(), String> {
        self.with_store(|store| store.acknowledge(&taken.delivery))
    }

    fn give_back(&self, taken: &[Taken]) {
        let deliveries: Vec<String> = taken.iter().map(|taken| taken.delivery.clone()).collect();
        let _ = self.with_store(|store| store.release(&self.claimer, &deliveries));
    }

    fn already_recorded(&self, taken: &Taken) -> bool {
        taken.attempts > 1
            && self
                .with_store(|store| store.has_finished_runs(&taken.delivery))
                .unwrap_or(false)
    }

    fn in_store(&self) -> bool {
        true
    }

    fn depth(&self) -> Option<u64> {
        self.with_store(|store| store.queue_depth()).ok()
    }

    fn cursor(&self, source: &str) -> Result<Option<String>, String> {
        self.with_store(|store| store.cursor(source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Masker;
    use crate::state::StateLocation;

    fn item(delivery: &str) -> QueueItem {
        QueueItem {
            delivery: delivery.to_string(),
            source: "test".to_string(),
            event: "{}".to_string(),
        }
    }

    #[test]
    fn pushes_from_many_threads_are_all_kept_once() {
        let dir = tempfile::tempdir().unwrap();
        let location = StateLocation::File(dir.path().join("state.db"));
        let queue = Arc::new(SqliteQueue::open(&location, Masker::new()).unwrap());
        std::thread::scope(|threads| {
            for thread in 0..8 {
                let queue = Arc::clone(&queue);
                threads.spawn(move || {
                    for index in 0..50 {
                        // Every delivery is pushed by two threads: one of them is a duplicate.
                        let delivery = format!("{}-{index}", thread / 2);
                        queue.push(&[item(&delivery)], None).unwrap();
                    }
                });
            }
        });
        assert_eq!(queue.depth(), Some(200));
        let mut taken = 0;
        loop {
            let batch = queue.take(64, Duration::ZERO).unwrap();
            if batch.is_empty() {
                break;
            }
            for event in &batch {
                queue.done(event).unwrap();
            }
            taken += batch.len();
        }
        assert_eq!(taken, 200);
        assert_eq!(queue.depth(), Some(0));
    }

    #[test]
    fn a_waiting_take_wakes_on_a_push() {
        let queue = Arc::new(SqliteQueue::open(&StateLocation::Memory, Masker::new()).unwrap());
        let pusher = Arc::clone(&queue);
        let started = std::time::Instant::now();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            pusher.push(&[item("late")], None).unwrap();
        });
        let taken = queue.take(1, Duration::from_secs(20)).unwrap();
        thread.join().unwrap();
        assert_eq!(taken.len(), 1);
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
