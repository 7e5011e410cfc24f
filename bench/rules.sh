#!/usr/bin/env bash
# Issue 15, goal 1: rules as `if` conditions in EDA's rule shape at 100 and 1,000 rules, beside
# ansible-rulebook in the same run (../shared/peers: run its setup.sh first, or set PEERS to a
# copy of it; --no-peer measures vane alone).
#
#   bench/rules.sh [--events N] [--peer-events N] [--runs 3] [--no-peer]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
exec python3 bench/workloads.py rules "${CARGO_TARGET_DIR:-target}/release/vane" "$@"
