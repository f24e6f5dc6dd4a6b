#!/usr/bin/env bash
# Runs lockbox's fuzz targets (fuzz/, cargo fuzz + libFuzzer) on the stable
# toolchain.
#
#   scripts/fuzz.sh TARGET SECONDS   one target, e.g. a nightly run:
#                                    scripts/fuzz.sh http_request 3600
#   scripts/fuzz.sh all SECONDS      every target, SECONDS each (CI: 30)
#   scripts/fuzz.sh list             the targets
#
# Each target starts from its committed seeds (fuzz/seeds/TARGET) and keeps
# what it learns in fuzz/corpus/TARGET (not committed). A crash stops the
# run with a non-zero exit; the input is saved under fuzz/artifacts/TARGET/
# and `scripts/fuzz.sh repro TARGET FILE` replays it. Every crash found
# becomes a regression test in the normal suite.
#
# cargo fuzz needs unstable compiler flags (sanitizer coverage); the stable
# toolchain accepts them with RUSTC_BOOTSTRAP=1, so no nightly is needed.
# No sanitizer runs (`-s none`): safe Rust; the properties are assertions.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "[fuzz] installing cargo-fuzz" >&2
  cargo install --locked --quiet cargo-fuzz@0.13.2 >&2
fi

targets() { cargo fuzz list; }

run() {
  local target=$1 seconds=$2
  mkdir -p "corpus/$target" "seeds/$target"
  local dict=()
  [ -f "dict/$target.dict" ] && dict=(-dict="dict/$target.dict")
  echo "[fuzz] $target for ${seconds}s" >&2
  mkdir -p "artifacts/$target"
  local log="artifacts/$target/last-run.log" rc=0
  cargo fuzz run -s none --release "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" \
    >"$log" 2>&1 || rc=$?
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|thread .* panicked|SUMMARY|assertion|  left|  right|Test unit written)' "$log" >&2 || true
  if [ "$rc" -ne 0 ]; then
    echo "[fuzz] $target FAILED (exit $rc); full output: fuzz/$log" >&2
    grep -A12 'panicked at' "$log" | head -30 >&2 || true
  fi
  return "$rc"
}

case "${1:-}" in
  list) targets ;;
  all)
    seconds=${2:?usage: scripts/fuzz.sh all SECONDS}
    cargo fuzz build -s none --release >&2
    failed=()
    for t in $(targets); do run "$t" "$seconds" || failed+=("$t"); done
    if [ ${#failed[@]} -gt 0 ]; then
      echo "[fuzz] FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
      exit 1
    fi
    echo "[fuzz] every target ran ${seconds}s without a failure" >&2
    ;;
  repro)
    cargo fuzz run -s none --release "${2:?target}" "${3:?file}"
    ;;
  ""|-h|--help) sed -n '2,18p' "$0" ;;
  *) run "$1" "${2:?usage: scripts/fuzz.sh TARGET SECONDS}" ;;
esac
