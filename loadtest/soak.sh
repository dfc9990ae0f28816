#!/usr/bin/env bash
# Soak run of issue 14: 10 000 allocations on our turn-server, refreshed every 30 s for
# 10 minutes, with the server's RSS read after each refresh round (it must stay flat).
# A bounded benchmark, not a CI test: it loads the machine for ~11 minutes. Builds the
# release binaries, starts turn-server on loopback (free ports, abuse limits off for one
# source, logs to a file), runs `loadtest alloc` and stops the server. Extra arguments go
# to loadtest (e.g. --count 1000 --hold 2m for a short check); results in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p turn-server -p loadtest
target="${CARGO_TARGET_DIR:-target}"
# 10 000 allocations hold ~20 000 sockets between loadtest and the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
secret=soak-not-a-real-secret
"$target/release/turn-server" -n --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 \
    --listening-port="$port" --min-port=40000 --max-port=59999 --realm=example.org \
    --static-auth-secret="$secret" --unauthorized-ratelimit-rps=0 --no-tls --no-tcp \
    --log-file="$work/turn-server.log" --simple-log --no-stdout-log &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do
    "$target/release/turn-server" healthcheck -n --listening-ip=127.0.0.1 \
        --listening-port="$port" >/dev/null 2>&1 && break
    sleep 0.1
done
"$target/release/loadtest" alloc --server "127.0.0.1:$port" --secret "$secret" \
    --count 10000 --hold 10m --refresh-every 30s --server-pid "$server" "$@"
