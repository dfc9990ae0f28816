#!/usr/bin/env bash
# The TURN core (turn-proto) does no I/O: its normal dependency tree must hold no async
# runtime, socket, OS-randomness or OS-interface crate. Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(cargo tree --locked -p turn-proto -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)
forbidden='^(tokio|tokio-.*|mio|socket2|nix|libc|getrandom|async-.*|futures.*|hyper.*|quinn.*|rustls.*|polling|smol)$'
if bad=$(grep -E "$forbidden" <<<"$tree"); then
  echo "check-core-deps: turn-proto must not depend on: $(tr '\n' ' ' <<<"$bad")" >&2
  exit 1
fi
echo "check-core-deps: turn-proto depends on $(wc -l <<<"$tree") crates, none of them I/O"
