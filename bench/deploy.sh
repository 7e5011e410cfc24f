#!/usr/bin/env bash
# Issue 15, goal 2: the realistic deploy workload (two steps + vars, GitHub's untrimmed ~8 KB push
# payload): cold start at 100 and 1,000 workflows, `run --dry-run --quiet` events/s and peak RSS.
#
#   bench/deploy.sh [--events N] [--runs 3]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
exec python3 bench/workloads.py deploy "${CARGO_TARGET_DIR:-target}/release/vane" "$@"
