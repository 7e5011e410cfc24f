//! Pushes NDJSON events from stdin into the queue a vane.yaml names — the producer side of the
//! queue that `vane serve` will be, for `bench/queue.sh`. Each event gets
//! `data.enqueued_us` (Unix microseconds when it was pushed), for latency measurements.
//!
//! usage: cargo run --release --example enqueue -- VANE_YAML STATE [RATE]
//!   STATE: the state store of the SQLite queue (ignored for `queue: nats://…`)
//!   RATE:  events per second, pushed one by one; without it, batches of 500 as fast as possible

use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use vane::queue::{JetStreamQueue, Queue, QueueItem, SqliteQueue};
use vane::secrets::Masker;
use vane::state::StateLocation;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(config), Some(state)) = (args.get(1), args.get(2)) else {
        return Err("usage: enqueue VANE_YAML STATE [RATE]".to_string());
    };
    let rate: Option<f64> = args.get(3).and_then(|rate| rate.parse().ok());
    let config = vane::config::load(Path::new(config)).map_err(|problems| {
        problems
            .iter()
            .map(|problem| problem.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let queue: Box<dyn Queue> = match &config.queue {
        vane::config::Queue::Sqlite => Box::new(
            SqliteQueue::open(&StateLocation::from_flag(Path::new(state)), Masker::new())
                .map_err(|error| error.to_string())?,
        ),
        vane::config::Queue::Nats(settings) => Box::new(JetStreamQueue::open(
            settings,
            &StateLocation::Memory,
            Masker::new(),
        )?),
    };
    let started = Instant::now();
    let mut batch = Vec::new();
    for (index, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.map_err(|error| error.to_string())?;
        let mut value: serde_json::Value =
            serde_json::from_str(&line).map_err(|error| error.to_string())?;
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(index as f64 / rate);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|error| error.to_string())?;
        value["data"]["enqueued_us"] = serde_json::json!(now.as_micros() as u64);
        let event = vane::event::from_value(&value, &vane::event::InputOptions::default())
            .map_err(|error| error.message)?;
        batch.push(QueueItem {
            delivery: event.id().to_string(),
            source: "bench".to_string(),
            event: serde_json::to_string(&event).map_err(|error| error.to_string())?,
        });
        if rate.is_some() || batch.len() >= 500 {
            queue.push(&batch, None)?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        queue.push(&batch, None)?;
    }
    Ok(())
}
