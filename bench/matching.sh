#!/usr/bin/env bash
# Issue 2's benchmark: cold start of `vane plan` with 100 and 1,000 workflows, and throughput of
# `vane run --dry-run --quiet` over 100,000 NDJSON push events (~5 KB each), with peak RSS.
#
#   bench/matching.sh [EVENTS]        (needs hyperfine and GNU time: apt-get install hyperfine time)
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-100000}
work=${BENCH_DIR:-/tmp/vane-bench}
cargo build --release --quiet
vane=$PWD/target/release/vane

mkdir -p "$work"
[ -d "$work/w100" ] || python3 bench/gen.py "$work/w100" 100 10
[ -f "$work/w1000/events-$events.ndjson" ] || {
    python3 bench/gen.py "$work/w1000" 1000 "$events"
    mv "$work/w1000/events.ndjson" "$work/w1000/events-$events.ndjson"
}

echo "== cold start: vane plan --event push.json (whole process)"
for count in 100 1000; do
    (cd "$work/w$count" && hyperfine -N --warmup 5 --runs 50 --export-json "$work/cold-$count.json" \
        "$vane plan --event push.json --quiet --state :memory:" >/dev/null)
    python3 - "$work/cold-$count.json" "$count" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))["results"][0]
print(f"{sys.argv[2]:>5} workflows: median {result['median'] * 1000:.1f} ms "
      f"(mean {result['mean'] * 1000:.1f} ± {result['stddev'] * 1000:.1f} ms, min {result['min'] * 1000:.1f})")
PY
done

echo "== throughput: vane run --dry-run --quiet < $events events, 1,000 workflows"
cd "$work/w1000"
size=$(stat -c %s "events-$events.ndjson")
for attempt in 1 2 3; do
    /usr/bin/time -f "%e %M" -o "$work/time.txt" \
        "$vane" run --dry-run --quiet --state :memory: < "events-$events.ndjson" > "$work/summary.txt"
    read -r seconds rss_kb < "$work/time.txt"
    python3 -c "
import sys
events, seconds, rss, size = $events, float('$seconds'), int('$rss_kb'), $size
print(f'run $attempt: {events / seconds:,.0f} events/s ({seconds:.2f} s, {size / seconds / 1e6:.0f} MB/s of JSON), peak RSS {rss / 1024:.1f} MiB — ' + open('$work/summary.txt').read().strip())
"
done
