#!/usr/bin/env bash
# The benchmark of issues 8 and 15: coturn against our turn-server (in userspace and, with
# --offload, with its kernel fast path), on loopback and, with --veth, between two network
# namespaces joined by a veth pair; and lk-jwt-service's /get_token under load. Builds the
# release binaries (with turn-offload's eBPF program: needs clang and libbpf-dev), raises
# the open-file limit (10 000 allocations need ~20 000 sockets between loadtest and the
# server) and runs `loadtest compare`, which writes docs/benchmarks.md and docs/bench-*.svg.
# Extra arguments go to compare (e.g. --rounds 4, --coturn PATH --uclient PATH --peer PATH
# for a coturn built from source; see `loadtest compare --help`). --offload and --veth
# need root. Installs nothing: coturn must be there (apt-get install coturn, or --coturn).
# BENCH_NICE=-10 runs loadtest and the servers (which inherit it) at a higher priority,
# which makes figures on a busy shared machine less noisy (needs root; same for all).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p turn-server -p lk-jwt-service -p loadtest
target="${CARGO_TARGET_DIR:-target}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec nice -n "${BENCH_NICE:-0}" "$target/release/loadtest" compare --ours "$target/release/turn-server" \
    --jwt "$target/release/lk-jwt-service" "$@"
