#!/usr/bin/env bash
# The queue: events/s through the SQLite queue and the NATS JetStream queue to two `vane worker`
# processes (4 runs at once each) running a one-step workflow, and the latency from enqueue to
# run start (median, p99) at a steady rate. The producer is `examples/enqueue.rs` (the queue's
# push, as `vane serve` calls it); the run start is taken by the step's first instruction
# (bash's $EPOCHREALTIME), so it includes starting bash.
#
# Needs nats-server with JetStream on 127.0.0.1:4222 (.ci/run starts one).
# usage: bench/queue.sh [EVENTS] [RATE]     (defaults: 5000 events; latency at 200 events/s)
set -euo pipefail

events=${1:-5000}
rate=${2:-200}
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin vane --example enqueue
vane="$root/target/release/vane"
enqueue="$root/target/release/examples/enqueue"

work=$(mktemp -d)
workers=()
cleanup() {
    for pid in "${workers[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/workflows"
cat > "$work/workflows/tick.yaml" <<'YAML'
version: 1
name: tick
on:
  tick: {}
steps:
  - run: echo "{{ event.data.enqueued_us }} $EPOCHREALTIME" >> "$LATENCIES"
YAML
printf 'version: 1\nqueue: sqlite\n' > "$work/sqlite.yaml"
# Ids are unique per invocation: the stream's dedup window must not drop a second benchmark.
printf 'version: 1\nqueue: nats://127.0.0.1:4222\njetstream:\n  stream: VANE_BENCH\n  subject: vane.bench\n  dead-letter: vane.bench.dead\n  consumer: bench\n  cursors: vane-bench-cursors\n  locks: vane-bench-locks\n' > "$work/nats.yaml"
run=$(date +%s%N)
generate() { # PREFIX COUNT
    python3 -c "
import json, sys
for n in range(int(sys.argv[2])):
    print(json.dumps({'id': f'{sys.argv[1]}-$run-{n}', 'type': 'tick', 'data': {}}))
" "$1" "$2"
}

start_workers() { # KIND
    local kind=$1 state
    workers=()
    for name in a b; do
        # The SQLite queue lives in one store, shared by both workers; JetStream workers have
        # their own.
        if [ "$kind" = sqlite ]; then state="$work/sqlite.db"; else state="$work/nats-$name.db"; fi
        (cd "$work" && exec "$vane" --config "$kind.yaml" --state "$state" worker --parallel 4 \
            >/dev/null 2>>"$work/$kind-$name.log") &
        workers+=($!)
    done
}

stop_workers() {
    for pid in "${workers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${workers[@]}"; do wait "$pid" 2>/dev/null || true; done
    workers=()
}

wait_lines() { # FILE COUNT
    while [ "$(wc -l < "$1" 2>/dev/null || echo 0)" -lt "$2" ]; do sleep 0.05; done
}

for kind in sqlite nats; do
    state="$work/sqlite.db"
    export LATENCIES="$work/$kind-throughput.txt"
    : > "$LATENCIES"
    # Throughput: the queue filled first, then drained by two workers.
    generate "$kind-t" "$events" | "$enqueue" "$work/$kind.yaml" "$state"
    begin=$(date +%s.%N)
    start_workers "$kind"
    wait_lines "$LATENCIES" "$events"
    end=$(date +%s.%N)
    stop_workers
    python3 -c "print(f'$kind: {int(\"$events\") / ($end - $begin):7.0f} events/s ($events events, 2 workers x 4)')"

    # Latency: events pushed one by one at a steady rate while the workers wait.
    export LATENCIES="$work/$kind-latency.txt"
    : > "$LATENCIES"
    latency_events=$((rate * 10))
    start_workers "$kind"
    sleep 1
    generate "$kind-l" "$latency_events" | "$enqueue" "$work/$kind.yaml" "$state" "$rate"
    wait_lines "$LATENCIES" "$latency_events"
    stop_workers
    python3 - "$LATENCIES" "$kind" "$rate" <<'PY'
import sys
latencies = sorted(float(run) * 1000 - int(queued) / 1000 for queued, run in (line.split() for line in open(sys.argv[1])))
median = latencies[len(latencies) // 2]
p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
print(f"{sys.argv[2]}: enqueue -> run start at {sys.argv[3]} events/s: median {median:.1f} ms, p99 {p99:.1f} ms ({len(latencies)} events)")
PY
done
