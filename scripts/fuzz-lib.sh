#!/bin/bash
# Helpers shared by scripts/fuzz-ci.sh and scripts/fuzz-campaign.sh (sourced).

# The highest-numbered CPU this process may run on.
last_allowed_cpu() {
  local list
  list="$(taskset -pc $$ 2>/dev/null | sed 's/.*: *//')"
  # "0-3,6" -> 6; "1" -> 1; unknown -> empty (no pinning).
  [[ -n "$list" ]] && echo "${list##*[,-]}"
}

# Runs a command pinned to CPU(s) $1 (a taskset list; empty: not pinned). A store
# fuzzer hands each merge to a background thread and waits for it: on one core
# that is a context switch, across two a wake-up of an idle CPU, which costs a
# fifth of its time on a 2-core virtual machine (fuzz/HISTORY.md).
pinned() {
  local cpus="$1"
  shift
  if [[ -n "$cpus" ]] && command -v taskset > /dev/null; then
    taskset -c "$cpus" "$@"
  else
    "$@"
  fi
}

# The fuzz binaries keep no allocation stacks (bazel/fuzzing/asan_defaults.cc):
# replays the crashing inputs $3... with binary $1 and 30-frame stacks, the
# reports appended to file $2.
replay_with_full_stacks() {
  local bin="$1" report="$2" f
  shift 2
  for f in "$@"; do
    [[ -f "$f" ]] || continue
    echo "== $f" >> "$report"
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}malloc_context_size=30" \
      "$bin" "$f" >> "$report" 2>&1
  done
  [[ -s "$report" ]] && echo "   replayed with full allocation stacks: $report"
  return 0
}
