#!/usr/bin/env bash
# Connection flood of issue 14: UDP clients relay through our turn-server while TCP and
# TLS connections flood its stream ports, capped by max-tcp-clients(-per-ip). A bounded
# benchmark, not a CI test (~1 minute): the same UDP load runs once alone and once under
# the flood, and both reports are printed for comparison (loss, RTT, relayed per server
# CPU-second), with what the flood got (handshakes done, connections refused by the caps,
# the server's connection_limit drops). Builds the release binaries; a self-signed
# certificate is made in a scratch folder. Results in docs/benchmarks.md.
#
#   ./loadtest/flood.sh                  # 20 UDP clients x 500 pps, 15 s per phase
#   FLOOD_SECONDS=30 ./loadtest/flood.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p turn-server -p loadtest
target="${CARGO_TARGET_DIR:-target}"
seconds=${FLOOD_SECONDS:-15}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
work=$(mktemp -d)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
tls_port=$(free_port)
prometheus=$(free_port)
secret=flood-not-a-real-secret
# The caps as shipped (max-tcp-clients-per-ip=200): the flood comes from one address.
"$target/release/turn-server" -n --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 \
    --listening-port="$port" --tls-listening-port="$tls_port" --min-port=40000 \
    --max-port=49999 --realm=example.org --static-auth-secret="$secret" \
    --allow-loopback-peers --cert="$work/cert.pem" --pkey="$work/key.pem" \
    --prometheus --prometheus-address=127.0.0.1 --prometheus-port="$prometheus" \
    --log-file="$work/turn-server.log" --simple-log --no-stdout-log &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do
    "$target/release/turn-server" healthcheck -n --listening-ip=127.0.0.1 \
        --listening-port="$port" >/dev/null 2>&1 && break
    sleep 0.1
done
udp_load() {
    "$target/release/loadtest" turn --server "127.0.0.1:$port" --secret "$secret" \
        --clients 20 --rate 500 --size 100 --duration "${seconds}s" --server-pid "$server" \
        2>/dev/null
}
echo "== UDP clients alone"
udp_load
echo "== UDP clients while TCP and TLS connections flood the stream ports"
python3 - "$tls_port" "$port" "$seconds" > "$work/flood.txt" <<'PY' &
import socket, ssl, sys, threading, time
tls_port, tcp_port, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
end = time.monotonic() + seconds + 2
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
counts = {"tls handshakes": 0, "tcp connections held": 0, "refused or closed": 0}
held = []
lock = threading.Lock()

def bump(key):
    with lock:
        counts[key] += 1

def tls_flood():
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", tls_port), timeout=2) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost"):
                    bump("tls handshakes")
        except OSError:
            bump("refused or closed")

def tcp_hold():
    # Idle connections opened as fast as possible and held, as a slowloris would: the
    # caps bound them. After 1 s every connection is checked: the server has closed
    # those over max-tcp-clients-per-ip.
    socks = []
    while len(socks) < 1000 and time.monotonic() < end:
        try:
            socks.append(socket.create_connection(("127.0.0.1", tcp_port), timeout=2))
        except OSError:
            bump("refused or closed")
    time.sleep(1)
    for s in socks:
        s.setblocking(False)
        try:
            closed = s.recv(1) == b""
        except BlockingIOError:
            closed = False
        except OSError:
            closed = True
        bump("refused or closed" if closed else "tcp connections held")
        held.append(s)
    while time.monotonic() < end:
        time.sleep(0.1)

threads = [threading.Thread(target=tls_flood) for _ in range(4)] + [threading.Thread(target=tcp_hold)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for key, value in counts.items():
    print(f"flood: {key}: {value}")
PY
flood=$!
sleep 1
udp_load
wait "$flood"
cat "$work/flood.txt"
curl -s "http://127.0.0.1:$prometheus/metrics" | grep 'connection_limit' || true
