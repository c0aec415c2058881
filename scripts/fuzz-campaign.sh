#!/bin/bash
# A libFuzzer campaign over the targets of //fuzz.
#
#   scripts/fuzz-campaign.sh [-t SECONDS] [-j JOBS] [-p CPUS] [-c] [-m] [targets...]
#
#   -t SECONDS   fuzzing time per target (default 600; 0: no fuzzing, only the merge)
#   -j JOBS      parallel fuzzing jobs per target (-jobs/-workers; default 1)
#   -p CPUS      pin the fuzzing to these CPUs (a taskset list, e.g. 1), one per job:
#                a store fuzzer's background threads then share its core instead of
#                waking another (scripts/fuzz-lib.sh); campaigns side by side each
#                take their own (default: not pinned)
#   -c           also build with clang source-based coverage and print an llvm-cov
#                report of the merged corpus (library code only)
#   -m           re-minimise fuzz/corpus/<target>/ as a whole: keep the named inputs
#                (seed_*, bug_*, regress_*) and the smallest set of the others that
#                keeps every feature (instead of only adding new inputs)
#   targets      default: every *_fuzzer in fuzz/BUILD.bazel
#
# For each target: builds (./bazelw build --config=fuzz //fuzz:all), fuzzes a work
# corpus seeded from fuzz/corpus/<target>/ (with fuzz/<target>.dict and the extra flags
# of fuzz/<target>.options when present), saves crashes under the work directory,
# merges the new interesting inputs back into fuzz/corpus/<target>/ (-merge=1, so only
# inputs adding coverage: -set_cover_merge=1), and prints the final
# "cov: ft:" of the merged corpus.
#
# Environment:
#   FUZZ_WORK_DIR       work corpora, logs and crashes (default /tmp/kvindex-fuzz-work; not the
#                       fuzz build's Bazel output base, /tmp/kvindex-fuzz in README.md)
#   BAZEL_STARTUP_OPTS  startup options for Bazel, e.g. --output_base=/tmp/ob_fuzz
#   KVINDEX_FUZZ_TOLERATE  known bugs to step over (see fuzz/fuzz_util.h)
# Exit status: 0 if no target crashed, 1 otherwise, 2 on usage or build errors.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root" || exit 2

seconds=600
jobs=1
coverage=0
reminimise=0
cpus=""
while getopts "t:j:p:cmh" opt; do
  case "$opt" in
    t) seconds="$OPTARG" ;;
    j) jobs="$OPTARG" ;;
    p) cpus="$OPTARG" ;;
    c) coverage=1 ;;
    m) reminimise=1 ;;
    *) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ "$seconds" =~ ^[0-9]+$ && "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "bad -t or -j" >&2; exit 2; }

all_targets() { sed -n 's/^ *name = "\([a-z0-9_]*_fuzzer\)",$/\1/p' fuzz/BUILD.bazel; }
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && mapfile -t targets < <(all_targets)

read -r -a startup <<< "${BAZEL_STARTUP_OPTS:-}"
# shellcheck source=scripts/fuzz-lib.sh
source "$root/scripts/fuzz-lib.sh"
bazel_cmd() { ./bazelw "${startup[@]}" "$@"; }

echo "== building //fuzz:all with --config=fuzz" >&2
bazel_cmd build --config=fuzz //fuzz:all || { echo "build failed" >&2; exit 2; }
bin="$(bazel_cmd info --config=fuzz bazel-bin 2>/dev/null)/fuzz"

work="${FUZZ_WORK_DIR:-/tmp/kvindex-fuzz-work}"
declare -A summary
failed=0

# Extra libFuzzer flags of a target: fuzz/<t>.options, one flag per line, # comments.
target_flags() {
  local t="$1"
  [[ -f "fuzz/$t.dict" ]] && echo "-dict=$root/fuzz/$t.dict"
  [[ -f "fuzz/$t.options" ]] && grep -v '^\s*\(#\|$\)' "fuzz/$t.options"
}

# The "cov: N ft: M" libFuzzer reports after loading a corpus.
corpus_cov() {
  local t="$1" dir="$2"
  "$bin/$t" -runs=0 "$dir" 2>&1 | sed -n 's/.*INITED \(cov: [0-9]* ft: [0-9]*\).*/\1/p' | tail -1
}

for t in "${targets[@]}"; do
  [[ -x "$bin/$t" ]] || { echo "no such fuzz target: $t" >&2; exit 2; }
  dir="$work/$t"
  mkdir -p "$dir/corpus" "$dir/artifacts" "$dir/logs" "fuzz/corpus/$t"
  cp -n "fuzz/corpus/$t"/* "$dir/corpus/" 2>/dev/null
  mapfile -t flags < <(target_flags "$t")
  before=$(find "$dir/artifacts" -type f | wc -l)
  touch "$dir/logs/started"
  rc=0
  if [[ $seconds -gt 0 ]]; then
    echo "== $t: fuzzing ${seconds}s with $jobs job(s) (${flags[*]})" >&2
    (
      cd "$dir/logs" || exit 2
      pinned "$cpus" "$bin/$t" "${flags[@]}" -jobs="$jobs" -workers="$jobs" -max_total_time="$seconds" \
        -timeout=30 -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
        "$dir/corpus" > "$dir/logs/main.log" 2>&1
    )
    rc=$?
  fi
  after=$(find "$dir/artifacts" -type f | wc -l)
  crashes=$((after - before))
  if [[ $rc -ne 0 || $crashes -gt 0 ]]; then
    failed=1
    echo "!! $t: exit $rc, $crashes new artifact(s) in $dir/artifacts (logs: $dir/logs)" >&2
    grep -h -A3 -E "fuzz property violated|ERROR: (AddressSanitizer|libFuzzer|UndefinedBehavior)|runtime error" \
      "$dir/logs"/*.log 2>/dev/null | head -20 >&2
    mapfile -t found < <(find "$dir/artifacts" -type f -newer "$dir/logs/started")
    replay_with_full_stacks "$bin/$t" "$dir/logs/report.txt" "${found[@]}" >&2
  fi
  n_before=$(find "fuzz/corpus/$t" -type f | wc -l)
  if [[ $reminimise -eq 1 ]]; then
    # Named inputs first, then the fewest others that keep every feature.
    echo "== $t: re-minimising fuzz/corpus/$t" >&2
    fresh="$dir/minimised"
    rm -rf "$fresh"; mkdir -p "$fresh"
    find "fuzz/corpus/$t" -maxdepth 1 -type f \( -name 'seed_*' -o -name 'bug_*' -o -name 'regress_*' \) \
      -exec cp {} "$fresh/" \;
    if "$bin/$t" "${flags[@]}" -set_cover_merge=1 -timeout=30 -artifact_prefix="$dir/artifacts/" "$fresh" "fuzz/corpus/$t" "$dir/corpus" \
         > "$dir/logs/merge.log" 2>&1; then
      find "fuzz/corpus/$t" -maxdepth 1 -type f -delete
      cp "$fresh"/* "fuzz/corpus/$t/"
    else
      echo "!! $t: merge failed (see $dir/logs/merge.log); fuzz/corpus/$t left as it was" >&2
    fi
  else
    echo "== $t: merging new inputs into fuzz/corpus/$t" >&2
    "$bin/$t" "${flags[@]}" -set_cover_merge=1 -timeout=30 -artifact_prefix="$dir/artifacts/" "fuzz/corpus/$t" "$dir/corpus" \
      > "$dir/logs/merge.log" 2>&1 || echo "!! $t: merge exited with an error (see $dir/logs/merge.log)" >&2
  fi
  n_after=$(find "fuzz/corpus/$t" -type f | wc -l)
  summary[$t]="$(corpus_cov "$t" "fuzz/corpus/$t")  corpus: $n_after files ($(printf '%+d' $((n_after - n_before))))  crashes: $crashes"
done

if [[ $coverage -eq 1 ]]; then
  # Source-based coverage of the library code, replaying the merged corpora with the
  # plain (non-libFuzzer) build of the same sources.
  echo "== coverage build" >&2
  cov_opts=(--config=clang --copt=-fprofile-instr-generate --copt=-fcoverage-mapping
            --linkopt=-fprofile-instr-generate --linkopt=-fcoverage-mapping)
  if bazel_cmd build "${cov_opts[@]}" //fuzz:all; then
    cov_bin="$(bazel_cmd info "${cov_opts[@]}" bazel-bin 2>/dev/null)/fuzz"
    prof="$work/coverage"
    rm -rf "$prof"; mkdir -p "$prof"
    objects=()
    for t in "${targets[@]}"; do
      LLVM_PROFILE_FILE="$prof/$t-%p.profraw" "$cov_bin/$t" "fuzz/corpus/$t" > /dev/null 2>&1
      objects+=(-object "$cov_bin/$t")
    done
    llvm-profdata-14 merge -sparse "$prof"/*.profraw -o "$prof/all.profdata" &&
      llvm-cov-14 report "${objects[@]:1}" -instr-profile="$prof/all.profdata" \
        -ignore-filename-regex='(external/|fuzz/|bazel/|/usr/)' | tee "$prof/report.txt"
  else
    echo "!! coverage build failed" >&2
  fi
fi

echo
echo "== summary (cov/ft of the merged fuzz/corpus/<target>)"
for t in "${targets[@]}"; do
  printf '%-18s %s\n' "$t" "${summary[$t]}"
done
exit "$failed"
