#!/usr/bin/env bash
# Soak of the kernel fast path (issue 15: "off by default until it has soaked"): one
# turn-server with kernel-offload=on relays round after round of channel traffic, each
# round with new clients (allocate, permission, ChannelBind, traffic, delete), so the
# program's maps are filled and emptied again and again. After every round it checks
# what a leak or a lost counter would show: no loss, the relayed packets counted by the
# program (at least 99 %), no channel route left installed once the allocations are
# gone, no failed install; and it prints the server's RSS. Exits non-zero on the first
# violated check.
#
# Needs root (a network namespace of its own, the eBPF program). A bounded benchmark, not
# a CI test: ROUNDS rounds (default 20) of SECONDS seconds of traffic (default 25), about
# 10 minutes. Extra arguments go to `loadtest turn` (e.g. --clients 50 --rate 200).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-20}"
seconds="${SECONDS_PER_ROUND:-25}"
[ "$(id -u)" = 0 ] || { echo "offload-soak: needs root (network namespace, eBPF)" >&2; exit 2; }
cargo build --release -p turn-server -p loadtest
target="$(pwd)/${CARGO_TARGET_DIR:-target}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
work=$(mktemp -d)
ns="offload-soak-$$"
ip netns add "$ns"
ip -n "$ns" link set lo up
# bpf_fib_lookup answers only for an interface with forwarding on (turn-offload/src/lib.rs).
ip netns exec "$ns" sysctl -qw net.ipv4.conf.lo.forwarding=1 net.ipv6.conf.lo.forwarding=1
secret=soak-not-a-real-secret
ip netns exec "$ns" "$target/release/turn-server" -n --listening-ip=127.0.0.1 \
    --relay-ip=127.0.0.1 --listening-port=3478 --min-port=40000 --max-port=59999 \
    --realm=example.org --static-auth-secret="$secret" --allow-loopback-peers \
    --unauthorized-ratelimit-rps=0 --no-tls --no-tcp --kernel-offload=on \
    --prometheus --prometheus-address=127.0.0.1 --prometheus-port=9641 \
    --log-file="$work/turn-server.log" --simple-log --no-stdout-log &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"' EXIT

metric() { # metric NAME: its value from the server's exporter (0 when absent)
    ip netns exec "$ns" curl -s --max-time 5 http://127.0.0.1:9641/metrics |
        awk -v name="$1" '$1 == name { print $2; found = 1 } END { if (!found) print 0 }'
}
relayed() {
    echo $(( $(metric 'turn_offload_relayed_packets_total{direction="client_to_peer"}' | cut -d. -f1) \
        + $(metric 'turn_offload_relayed_packets_total{direction="peer_to_client"}' | cut -d. -f1) ))
}
for _ in $(seq 50); do
    [ "$(metric turn_offload_active)" = 1 ] && break
    sleep 0.1
done
[ "$(metric turn_offload_active)" = 1 ] || { echo "offload-soak: fast path not active" >&2; exit 1; }

echo "| round | received | loss % | kernel-relayed % | routes after | install failures | server RSS MiB |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq "$rounds"); do
    before=$(relayed)
    ip netns exec "$ns" "$target/release/loadtest" turn --server 127.0.0.1:3478 \
        --secret "$secret" --user "soak$round" --clients 100 --rate 200 --size 200 \
        --duration "${seconds}s" --json "$work/round.json" "$@" > "$work/round.log" 2>&1 ||
        { cat "$work/round.log" >&2; exit 1; }
    after=$(relayed)
    # Deleting the allocations removes their routes at once (docs/turn-server-config.md).
    routes=$(metric turn_offload_routes)
    failures=$(metric turn_offload_install_failures_total)
    rss=$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$server/status")
    read -r received loss < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["received"], r["loss_pct"])' "$work/round.json")
    share=$(python3 -c "print(f'{100 * ($after - $before) / max(1, 2 * $received):.1f}')")
    echo "| $round | $received | $loss | $share | $routes | $failures | $rss |"
    # Every round's ChannelData goes through the program (its counters, not the server's).
    in_kernel=$(python3 -c "print(1 if float('$share') >= 99.0 else 0)")
    if [ "$received" = 0 ] || [ "$loss" != 0.0 ] || [ "$in_kernel" != 1 ] ||
        [ "$routes" != 0 ] || [ "$failures" != 0 ]; then
        echo "offload-soak: round $round failed a check (see the row above)" >&2
        exit 1
    fi
done
echo "offload-soak: $rounds rounds passed"
