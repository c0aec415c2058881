#!/bin/bash
# Short fuzzing for CI: every target of //fuzz runs for N seconds on a scratch copy
# of its committed corpus (fuzz/corpus/<target>/ is not modified); fails if any
# target crashes or violates a property.
#
#   scripts/fuzz-ci.sh [-t SECONDS] [targets...]     (default 30 s, all targets)
#
# Each target runs pinned to one CPU (the last this script may use), so that its
# background threads share that core rather than wake another (scripts/fuzz-lib.sh).
# Environment: BAZEL_STARTUP_OPTS (e.g. --output_base=...), KVINDEX_FUZZ_TOLERATE
# (known bugs to step over, see fuzz/fuzz_util.h). Crashing inputs are kept under
# ${FUZZ_CI_DIR:-/tmp/kvindex-fuzz-ci}/<target>/ for reproduction, and replayed once
# with full allocation stacks (report.txt beside them):
#   bazel-bin/fuzz/<target> <crash file>
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root" || exit 2

seconds=30
while getopts "t:h" opt; do
  case "$opt" in
    t) seconds="$OPTARG" ;;
    *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "bad -t" >&2; exit 2; }

targets=("$@")
[[ ${#targets[@]} -eq 0 ]] &&
  mapfile -t targets < <(sed -n 's/^ *name = "\([a-z0-9_]*_fuzzer\)",$/\1/p' fuzz/BUILD.bazel)

read -r -a startup <<< "${BAZEL_STARTUP_OPTS:-}"
# shellcheck source=scripts/fuzz-lib.sh
source "$root/scripts/fuzz-lib.sh"
cpu="$(last_allowed_cpu)"
./bazelw "${startup[@]}" build --config=fuzz //fuzz:all || { echo "build failed" >&2; exit 2; }
bin="$(./bazelw "${startup[@]}" info --config=fuzz bazel-bin 2>/dev/null)/fuzz"

out="${FUZZ_CI_DIR:-/tmp/kvindex-fuzz-ci}"
failed=()
for t in "${targets[@]}"; do
  [[ -x "$bin/$t" ]] || { echo "no such fuzz target: $t" >&2; exit 2; }
  dir="$out/$t"
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp "fuzz/corpus/$t"/* "$dir/corpus/" 2>/dev/null
  flags=()
  [[ -f "fuzz/$t.dict" ]] && flags+=("-dict=$root/fuzz/$t.dict")
  [[ -f "fuzz/$t.options" ]] && mapfile -t -O "${#flags[@]}" flags < <(grep -v '^\s*\(#\|$\)' "fuzz/$t.options")
  echo "== $t (${seconds}s)"
  pinned "$cpu" "$bin/$t" "${flags[@]}" -max_total_time="$seconds" -timeout=30 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" "$dir/corpus" > "$dir/log.txt" 2>&1
  rc=$?
  sed -n 's/^#[0-9]*\s*DONE\s*\(cov: [0-9]* ft: [0-9]*\).*/   \1/p' "$dir/log.txt" | tail -1
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$dir/log.txt" | sed 's/^/   /'
  if [[ $rc -ne 0 ]]; then
    failed+=("$t")
    echo "!! $t failed (exit $rc); log: $dir/log.txt; inputs: $dir/artifacts/"
    grep -A4 -E "fuzz property violated|ERROR: (AddressSanitizer|libFuzzer|UndefinedBehavior)|runtime error" \
      "$dir/log.txt" | head -20
    replay_with_full_stacks "$bin/$t" "$dir/report.txt" "$dir/artifacts"/*
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all ${#targets[@]} fuzz targets ran ${seconds}s without a crash"
