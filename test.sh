#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the real components the
# integration tests use, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-test-deps.sh
cargo test --workspace --all-targets --locked
