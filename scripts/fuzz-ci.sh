#!/usr/bin/env bash
# Fuzzing in CI: every cargo-fuzz crate of the repository (*/fuzz/Cargo.toml) is linted
# (rustfmt, clippy -D warnings, with its committed Cargo.lock), built with libFuzzer, and
# each of its targets runs for FUZZ_SECONDS from its committed seeds
# (fuzz/corpus/<target>/).
# Targets run side by side, one per core. A crash fails the run and prints the input that
# caused it and the command that replays it.
#
# Toolchain: nightly where rustup has one, else the default toolchain with
# RUSTC_BOOTSTRAP=1 (cargo-fuzz needs a few unstable flags). FUZZ_TOOLCHAIN=stable forces
# the second path. New inputs found go to a scratch directory, so the committed seeds
# stay as they are.
#
#   scripts/fuzz-ci.sh                      # all crates, FUZZ_SECONDS=20 per target
#   FUZZ_SECONDS=300 scripts/fuzz-ci.sh     # a longer local run
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=${FUZZ_SECONDS:-20}
jobs=${FUZZ_JOBS:-$(nproc)}
target_dir="$root/target/fuzz"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-ci.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

toolchain=${FUZZ_TOOLCHAIN:-}
if [ -z "$toolchain" ] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=nightly
fi
# Only cargo-fuzz's builds get RUSTC_BOOTSTRAP: clippy keeps sharing the workspace's
# check artifacts.
if [ -n "$toolchain" ] && [ "$toolchain" != stable ]; then
  fuzz=(cargo "+$toolchain")
else
  fuzz=(env RUSTC_BOOTSTRAP=1 cargo)
fi
echo "fuzz-ci: $("${fuzz[@]}" --version), ${seconds}s per target, $jobs at a time"

started=$SECONDS
mapfile -t crates < <(find . -path ./target -prune -o -path '*/fuzz/Cargo.toml' -print | sort)
if [ "${#crates[@]}" -eq 0 ]; then
  echo "fuzz-ci: no fuzz crate found" >&2
  exit 1
fi

runs=()
for manifest in "${crates[@]}"; do
  dir=$(dirname "${manifest#./}")
  echo "fuzz-ci: $dir: rustfmt, clippy"
  cargo fmt --manifest-path "$dir/Cargo.toml" -- --check
  if ! cargo clippy --manifest-path "$dir/Cargo.toml" --locked --all-targets \
    --target-dir "$root/target" -- -D warnings; then
    echo "fuzz-ci: $dir does not lint clean (if Cargo.lock is out of date after a" \
      "dependency change: cd $dir && cargo update --workspace, and commit it)" >&2
    exit 1
  fi
  echo "fuzz-ci: $dir: build"
  # Optimised with overflow checks and debug assertions (cargo-fuzz's default), no
  # sanitizer (the code under test is safe Rust: its crashes are panics, which libFuzzer
  # catches), 16 codegen units (a build in half the time, runs a little slower).
  "${fuzz[@]}" fuzz build --fuzz-dir "$dir" --sanitizer none --codegen-units 16 \
    --target-dir "$target_dir"
  while read -r target; do
    [ -n "$target" ] && runs+=("$dir $target")
  done < <("${fuzz[@]}" fuzz list --fuzz-dir "$dir")
done
built=$((SECONDS - started))
bin_dir="$target_dir/$(rustc -vV | sed -n 's/^host: //p')/release"

# One target: seeds read from the committed corpus, new inputs written to scratch, a
# crash saved under scratch/artifacts/<crate>/<target>/.
run_target() {
  local dir=$1 target=$2 label="${1%/fuzz}/$2"
  local seeds="$dir/corpus/$target" found="$scratch/corpus/$dir/$target"
  local artifacts="$scratch/artifacts/$dir/$target" log="$scratch/logs/${label//\//_}.log"
  mkdir -p "$found" "$artifacts" "$(dirname "$log")"
  local corpora=("$found")
  if [ -d "$seeds" ]; then
    corpora+=("$seeds")
  else
    echo "fuzz-ci: warning: $label has no seeds in $seeds" >&2
  fi
  if "$bin_dir/$target" "${corpora[@]}" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1; then
    local done_line
    done_line=$(grep -m1 '^Done ' "$log" || true)
    echo "fuzz-ci: $label: ok (${done_line:-no summary})"
    return 0
  fi
  echo "fuzz-ci: $label: FAILED" >&2
  tail -n 40 "$log" >&2
  for crash in "$artifacts"/*; do
    [ -f "$crash" ] || continue
    echo "fuzz-ci: reproducer $(basename "$crash") ($(stat -c %s "$crash") bytes), base64:" >&2
    base64 -w 76 "$crash" | head -n 200 >&2
    echo "fuzz-ci: replay: decode the base64 above into crash.bin (base64 -d), then" \
      "cargo +nightly fuzz run --fuzz-dir $dir $target crash.bin" >&2
  done
  return 1
}

failed=0
pids=()
for run in "${runs[@]}"; do
  read -r dir target <<<"$run"
  # At most $jobs at once: wait for the oldest before starting another.
  if [ "${#pids[@]}" -ge "$jobs" ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
  fi
  run_target "$dir" "$target" &
  pids+=("$!")
done
for pid in "${pids[@]}"; do
  wait "$pid" || failed=1
done

echo "fuzz-ci: ${#runs[@]} targets in ${#crates[@]} crates: lint and build ${built}s," \
  "total $((SECONDS - started))s"
if [ "$failed" -ne 0 ]; then
  echo "fuzz-ci: a target crashed" >&2
  exit 1
fi
