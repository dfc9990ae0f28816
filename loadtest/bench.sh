#!/usr/bin/env bash
# The benchmark of issue 8: coturn (from apt) against our turn-server on loopback, and
# lk-jwt-service's /get_token under load. Builds the release binaries, raises the open-file limit (10 000 allocations need
# ~20 000 sockets between loadtest and the server) and runs `loadtest compare`, which
# writes docs/benchmarks.md and docs/bench-*.svg. Extra arguments go to compare
# (e.g. --rounds 5, --duration 10s; see `loadtest compare --help`). Takes ~7-11 minutes.
# Installs nothing: coturn must be there (apt-get install coturn).
# BENCH_NICE=-10 runs loadtest and both servers (which inherit it) at a higher priority,
# which makes figures on a busy shared machine less noisy (needs root; same for both).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in turnserver turnutils_uclient turnutils_peer; do
    if ! command -v "$tool" >/dev/null; then
        echo "bench.sh: $tool not found; install coturn (apt-get install coturn)" >&2
        exit 1
    fi
done
cargo build --release -p turn-server -p lk-jwt-service -p loadtest
target="${CARGO_TARGET_DIR:-target}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec nice -n "${BENCH_NICE:-0}" "$target/release/loadtest" compare --ours "$target/release/turn-server" \
    --jwt "$target/release/lk-jwt-service" "$@"
