#!/usr/bin/env bash
# What a gate costs: a stream of EVENTS alert events over KEYS keys (default 100,000 over 1,000)
# through `vane run --quiet` with the state store on disk, for one workflow each:
#   none      no gate: every event runs the workflow (`run: "true"`) — the same stream without gates
#   if-false  no gate, an `if` that drops every event: matching alone, nothing runs
#   throttle  `throttle: {key, once-within: 1h}`: one run per key, the rest dropped and counted
#   window    `window: {key, within: 1h, count: EVENTS/KEYS}`: one run per key, with its events
# Prints each one's wall time (median of RUNS) and the ratios the goal is about: throttle and
# window against `none` (goal ≤ 2×), and against `if-false` (the gate's per-event bookkeeping —
# a read and a write of the key's row in one SQLite transaction — against dropping by `if`).
#
# usage: bench/gates.sh [EVENTS] [KEYS] [RUNS]     (defaults: 100000 1000 1)
set -euo pipefail
events=${1:-100000}
keys=${2:-1000}
runs=${3:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
# VANE=path/to/vane measures that binary instead of building the release one.
if [ -z "${VANE:-}" ]; then
  cargo build --release --quiet --manifest-path "$root/Cargo.toml"
fi
vane="${VANE:-${CARGO_TARGET_DIR:-$root/target}/release/vane}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 -c "
import json, sys
events, keys = int(sys.argv[1]), int(sys.argv[2])
for n in range(events):
    print(json.dumps({'type': 'alert', 'source': 'bench', 'data': {'alert': f'alert-{n % keys}', 'n': n}}))
" "$events" "$keys" > "$work/events.ndjson"

per_key=$(( events / keys ))
workflow() { # name, extra keys
  mkdir -p "$work/$1/workflows"
  printf 'version: 1\nname: %s\non:\n  alert:\n%s\nsteps:\n  - run: "true"\n' "$1" "$2" \
    > "$work/$1/workflows/$1.yaml"
}
workflow none ""
workflow if-false 'if: event.data.n < 0'
workflow throttle $'throttle:\n  key: "{{ event.data.alert }}"\n  once-within: 1h'
workflow window $'window:\n  key: "{{ event.data.alert }}"\n  within: 1h\n  count: '"$per_key"

measure() { # name → median seconds of $runs runs, each from an empty store
  local name=$1 times=()
  for _ in $(seq "$runs"); do
    rm -rf "$work/$name/.vane"
    local start end
    start=$(date +%s.%N)
    (cd "$work/$name" && "$vane" run --quiet < "$work/events.ndjson" > "$work/$name.out")
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

declare -A took
for name in none if-false throttle window; do
  took[$name]=$(measure "$name")
  printf '%-9s %8.2f s  %s\n' "$name" "${took[$name]}" "$(tail -n 1 "$work/$name.out")"
done
ratio() { echo "scale=2; $1 / $2" | bc; }
echo "throttle / none     $(ratio "${took[throttle]}" "${took[none]}")×   (goal ≤ 2×)"
echo "window / none       $(ratio "${took[window]}" "${took[none]}")×   (goal ≤ 2×)"
echo "throttle / if-false $(ratio "${took[throttle]}" "${took[if-false]}")×"
echo "window / if-false   $(ratio "${took[window]}" "${took[if-false]}")×"
