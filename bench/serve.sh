#!/usr/bin/env bash
# `vane serve` against Debian's `webhook` (adnanh/webhook 2.8) under the same wrk load: signed
# ~7 KB GitHub push payloads, 2 threads, 50 connections. vane verifies, dedups, commits each
# delivery to the SQLite queue and only then answers 202, while its workers run the matched
# workflow (`run: "true"`) from the queue; webhook verifies and runs /bin/true before answering
# (its synchronous mode: its asynchronous mode loses most commands, see ../shared/peers/README.md).
#
# Prints requests/s, p50/p99 latency, vane's RSS idle and under load, and how long vane's workers
# took after wrk stopped to finish the backlog (every accepted event runs).
# Env: DURATION (10s), CONNS (50), THREADS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PEERS=$(cd "${PEERS:-../shared/peers}/webhook" 2>/dev/null && pwd || true)
DURATION=${DURATION:-10s}
CONNS=${CONNS:-50}
THREADS=${THREADS:-2}
SECRET=bench-secret-0123456789
for tool in wrk webhook; do
  command -v "$tool" >/dev/null || apt-get install -y "$tool" >/dev/null
done
cargo build --release --quiet
VANE=${CARGO_TARGET_DIR:-$ROOT/target}/release/vane
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

PAYLOAD=${PEERS:+$PEERS/payload.json}
if [ -z "$PAYLOAD" ] || [ ! -f "$PAYLOAD" ]; then
  echo "needs ../shared/peers/webhook/payload.json (the peers' signed ~7 KB push payload)" >&2
  exit 1
fi
SIG="sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r "$PAYLOAD" | cut -d' ' -f1)"
export PAYLOAD SIG

mkdir -p "$WORK/workflows"
cat >"$WORK/vane.yaml" <<YAML
version: 1
serve:
  webhooks:
    github: { secret: { env: BENCH_SECRET } }
YAML
cat >"$WORK/workflows/on-push.yaml" <<'YAML'
version: 1
name: on-push
on: { push: { branches: [main] } }
steps:
  - run: "true"
YAML

rss_kb() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/VmHWM/{print $2}' "/proc/$1/status"; }

echo "== vane serve"
(cd "$WORK" && BENCH_SECRET=$SECRET exec "$VANE" serve --listen 127.0.0.1:0 >"$WORK/serve.out" 2>"$WORK/serve.err") &
VPID=$!
for _ in $(seq 1 100); do grep -q listening "$WORK/serve.err" 2>/dev/null && break; sleep 0.05; done
URL="http://$(grep -o '127.0.0.1:[0-9]*' "$WORK/serve.err" | head -1)/hooks/github"
sleep 1
IDLE=$(rss_kb $VPID)
RUN=warm wrk -t"$THREADS" -c"$CONNS" -d2s -s bench/serve.lua "$URL" >/dev/null
# Let the warm-up's backlog run before measuring.
while [ "$(curl -s "${URL%/hooks/github}/healthz" | sed 's/.*"queue_depth":\([0-9]*\).*/\1/')" != "0" ]; do sleep 0.2; done
RUN=measured wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s bench/serve.lua "$URL" | tee "$WORK/vane.wrk"
T0=$(date +%s.%N)
while [ "$(curl -s "${URL%/hooks/github}/healthz" | sed 's/.*"queue_depth":\([0-9]*\).*/\1/')" != "0" ]; do sleep 0.2; done
DRAIN=$(echo "$(date +%s.%N) $T0" | awk '{printf "%.1f", $1-$2}')
LOADED=$(hwm_kb $VPID)
kill -TERM $VPID; wait $VPID || true
RUNS=$(cd "$WORK" && "$VANE" history --json --limit 1000000 | grep -c '"status":"success"' || true)

echo "== webhook (adnanh/webhook, synchronous /bin/true)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
webhook -hooks "$PEERS/hooks_output_true.json" -ip 127.0.0.1 -port "$PORT" >"$WORK/webhook.log" 2>&1 &
WPID=$!
sleep 1
(cd "$PEERS" && wrk -t"$THREADS" -c"$CONNS" -d2s -s post.lua "http://127.0.0.1:$PORT/hooks/github-push" >/dev/null)
(cd "$PEERS" && wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s post.lua "http://127.0.0.1:$PORT/hooks/github-push") | tee "$WORK/webhook.wrk"
WHWM=$(hwm_kb $WPID)
kill $WPID; wait $WPID 2>/dev/null || true

rps() { awk '/Requests\/sec/{print $2}' "$1"; }
pct() { awk -v p="$2" '$1==p{print $2}' "$1"; }
wrk_p99() { awk '/ 99%/{print $2}' "$1"; }
echo
echo "| server | requests/s | p50 | p99 | RSS idle | RSS peak |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
echo "| vane serve (durable queue, 202) | $(rps "$WORK/vane.wrk") | $(pct "$WORK/vane.wrk" p50_ms) ms | $(wrk_p99 "$WORK/vane.wrk") | $((IDLE / 1024)) MiB | $((LOADED / 1024)) MiB |"
echo "| webhook 2.8 (/bin/true, sync) | $(rps "$WORK/webhook.wrk") | $(awk '/ 50%/{print $2}' "$WORK/webhook.wrk") | $(wrk_p99 "$WORK/webhook.wrk") | | $((WHWM / 1024)) MiB |"
echo
echo "vane: backlog finished ${DRAIN}s after wrk stopped; $RUNS successful runs recorded in all (warm-up included)"
