#!/usr/bin/env bash
# Runs vane's fuzz targets one after another, each for SECONDS (default 600), one job at a
# time (the CI machine's cores are shared), on the checked-in corpora under corpus/.
#
#   fuzz/run.sh                 # every target, 10 minutes each
#   fuzz/run.sh 60 yaml_set     # one target, one minute
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain; with only a stable
# one it sets RUSTC_BOOTSTRAP=1, which lets stable rustc take the sanitizer flags cargo-fuzz
# passes. Crashes land in fuzz/artifacts/TARGET/; new corpus entries in fuzz/corpus/TARGET/
# (minimize before committing: `TARGET -set_cover_merge=1 NEW corpus/TARGET` with the built
# binary under target/*/release/, then NEW replaces corpus/TARGET). CI's `cargo test` never
# builds this crate: it is its own workspace. SANITIZER=none builds without AddressSanitizer (much faster to
# build on a small machine; panics and every property a target checks are still caught, memory
# errors in unsafe code are not). Leak detection is off: vane leaks its template environment and
# compiled template sources on purpose (they live for the whole process). For the same reason a
# target that loads workflows grows with every input: the targets run in fork mode (-fork=1), where
# a child that reaches the memory limit is replaced and its corpus kept, instead of the run ending.
set -euo pipefail
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
cd "$(dirname "$0")"
seconds=${1:-600}
sanitizer=${SANITIZER:-address}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(event_reader workflow_loader shell_rewriter yaml_set)
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    cargo_fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    cargo_fuzz=(cargo fuzz)
fi
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    echo "== $target: ${seconds}s"
    "${cargo_fuzz[@]}" run -O -s "$sanitizer" "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 \
        -max_len=4096 -timeout=10 -detect_leaks=0 -rss_limit_mb=2048 -fork=1 -ignore_ooms=1
done
