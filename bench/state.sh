#!/usr/bin/env bash
# The state store's cost: 10,000 runs of a one-step workflow (`run: "true"`) through
# `vane run --quiet` on NDJSON, recorded in a SQLite store and with `--state :memory:`.
# Prints runs/s for both (hyperfine's mean over its runs).
#
# usage: bench/state.sh [EVENTS] [RUNS]     (defaults: 10000 events, 3 hyperfine runs)
set -euo pipefail

events=${1:-10000}
runs=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
vane="$root/target/release/vane"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/workflows"
cat > "$work/workflows/tick.yaml" <<'YAML'
version: 1
name: tick
on:
  tick: {}
steps:
  - run: "true"
YAML
python3 -c "
import json, sys
for n in range(int(sys.argv[1])):
    print(json.dumps({'type': 'tick', 'data': {'n': n}}))
" "$events" > "$work/events.ndjson"

cd "$work"
# Every measured run starts from an empty store, so that each one writes $events runs afresh.
hyperfine --style basic --runs "$runs" \
    --prepare 'rm -rf .vane' \
    --export-json "$work/times.json" \
    --command-name 'store (.vane/state.db)' "$vane run --quiet < events.ndjson" \
    --command-name 'no store (:memory:)' "$vane run --quiet --state :memory: < events.ndjson"

python3 - "$work/times.json" "$events" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
events = int(sys.argv[2])
for result in results:
    mean, stddev = result["mean"], result["stddev"] or 0.0
    print(f"{result['command']:<24} {events / mean:8.0f} runs/s  ({mean:.3f} s ± {stddev:.3f} s for {events} runs)")
PY
