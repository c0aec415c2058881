#!/bin/bash
# Mutation check: plants one realistic bug at a time (scripts/mutants/*.patch)
# in a scratch copy of the repository, runs the test suite on it, and reports
# which test targets caught each bug.
#
#   scripts/mutants.sh                       every mutant, `./bazelw test //...`
#   scripts/mutants.sh NAME...               only these (names as --list shows)
#   scripts/mutants.sh --list                the mutants, their module and tag
#   scripts/mutants.sh --build-only          apply each and build only
#   scripts/mutants.sh NAME -- --test_filter=Crash* //tests/...
#                                            extra Bazel options and targets
#
# Options:
#   --scratch DIR   the scratch copy (default ${TMPDIR:-/tmp}/kvindex-mutants): a
#                   git worktree of this repository, created on first use and
#                   reused, so that Bazel builds incrementally from one mutant to
#                   the next
#   --disk-cache DIR  Bazel's --disk_cache for the runs (default the scratch
#                   copy's path + ".bazel-cache"; "" for none): going back from a
#                   mutant to the revision is then a cache hit, not a rebuild
#   --rev REV       the revision the patches apply to (default HEAD)
#   --report FILE   also write the summary as a Markdown table to FILE
#   --build-only    `./bazelw build //...` instead of the tests: only checks that
#                   every mutant applies and builds
#   --check         only `git apply --check` every patch against REV (no Bazel)
#   --keep-logs DIR keep each mutant's Bazel output as DIR/NAME.log
#
# Everything after `--` goes to `./bazelw test --keep_going` (or build); //...
# is added when it names no target.
#
# Each patch is a `git diff` whose header lines (before the diff, starting
# with `#`) hold a one-line description, `module: ...` and `durability:
# yes|no` (yes: the bug loses or invents acknowledged data after a crash, a
# power loss, an fsync or a recovery).
#
# Outcomes: CAUGHT (some test target failed or timed out), SURVIVED (every
# test passed), STALE (the patch no longer applies), BUILD-BROKEN (the mutated
# tree does not build: not a runtime bug, so the mutant must be fixed), ERROR
# (Bazel stopped for another reason). The exit status is 0 only if every
# mutant run was CAUGHT, and every durability mutant by at least 2 distinct
# test targets (with --build-only / --check: if every mutant built / applied).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
patch_dir="$repo/scripts/mutants"
scratch="${TMPDIR:-/tmp}/kvindex-mutants"
rev=HEAD
report=""
disk_cache="unset"
mode="test"
list_only=0
keep_logs=""
names=()
bazel_extra=()

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --list) list_only=1 ;;
    --scratch) scratch="${2:?--scratch needs a directory}"; shift ;;
    --scratch=*) scratch="${1#*=}" ;;
    --disk-cache) disk_cache="${2?--disk-cache needs a directory or ''}"; shift ;;
    --disk-cache=*) disk_cache="${1#*=}" ;;
    --rev) rev="${2:?--rev needs a revision}"; shift ;;
    --rev=*) rev="${1#*=}" ;;
    --report) report="${2:?--report needs a file}"; shift ;;
    --report=*) report="${1#*=}" ;;
    --keep-logs) keep_logs="${2:?--keep-logs needs a directory}"; shift ;;
    --keep-logs=*) keep_logs="${1#*=}" ;;
    --build-only) mode=build ;;
    --check) mode=check ;;
    -h|--help) usage; exit 0 ;;
    --) shift; bazel_extra=("$@"); break ;;
    -*) echo "mutants.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) names+=("$1") ;;
  esac
  shift
done

# ---------------------------------------------------------------- patches

header_field() {  # header_field FILE FIELD: the value of "# FIELD: value"
  sed -n "/^diff --git /q; s/^# $2: *//p" "$1" | head -n 1
}
description() {  # the header's lines that are not fields, joined
  sed -En '/^diff --git /q; /^# (module|durability): /d; s/^# ?//p' "$1" | paste -sd ' ' -
}

all_names=()
for f in "$patch_dir"/*.patch; do
  [[ -e "$f" ]] || continue
  all_names+=("$(basename "$f" .patch)")
done
if [[ ${#all_names[@]} -eq 0 ]]; then
  echo "mutants.sh: no patches in $patch_dir" >&2
  exit 2
fi

if [[ $list_only -eq 1 ]]; then
  for n in "${all_names[@]}"; do
    f="$patch_dir/$n.patch"
    printf '%-40s durability: %-3s  %s\n    %s\n' "$n" \
      "$(header_field "$f" durability)" "$(header_field "$f" module)" \
      "$(description "$f")"
  done
  exit 0
fi

[[ ${#names[@]} -eq 0 ]] && names=("${all_names[@]}")
scratch="$(realpath -m "$scratch")"
[[ "$disk_cache" == unset ]] && disk_cache="${scratch}.bazel-cache"
[[ -n "$disk_cache" ]] && disk_cache="$(realpath -m "$disk_cache")"
for n in "${names[@]}"; do
  n="${n%.patch}"
  if [[ ! -f "$patch_dir/$n.patch" ]]; then
    echo "mutants.sh: no mutant named $n (see --list)" >&2
    exit 2
  fi
  case "$(header_field "$patch_dir/$n.patch" durability)" in
    yes|no) ;;
    *) echo "mutants.sh: $n.patch: header lacks 'durability: yes|no'" >&2; exit 2 ;;
  esac
done

sha="$(git -C "$repo" rev-parse --verify "$rev^{commit}")"

# ---------------------------------------------------------------- scratch copy

# The scratch copy: a worktree of this repository (or any git checkout that
# has, or can fetch, the revision), reset before and after every mutant.
prepare_scratch() {
  if [[ ! -e "$scratch" ]]; then
    mkdir -p "$(dirname "$scratch")"
    git -C "$repo" worktree add -q --detach "$scratch" "$sha"
  elif ! git -C "$scratch" rev-parse --git-dir >/dev/null 2>&1; then
    echo "mutants.sh: $scratch exists and is not a git checkout" >&2
    exit 2
  elif [[ "$(cd "$scratch" && pwd -P)" == "$(cd "$repo" && pwd -P)" ]]; then
    echo "mutants.sh: the scratch copy cannot be the repository itself" >&2
    exit 2
  fi
  if ! git -C "$scratch" cat-file -e "$sha^{commit}" 2>/dev/null; then
    git -C "$scratch" fetch -q "$repo" "$sha" 2>/dev/null ||
      git -C "$scratch" fetch -q "$repo" '+refs/heads/*:refs/remotes/mutants-source/*'
  fi
}

reset_scratch() {
  git -C "$scratch" checkout -q -f --detach "$sha"
  git -C "$scratch" clean -fdq
}

cleanup() {
  # Never leave a patch applied, whatever stopped the run.
  if [[ -d "$scratch" ]] && git -C "$scratch" rev-parse --git-dir >/dev/null 2>&1; then
    reset_scratch || echo "mutants.sh: could not reset $scratch" >&2
  fi
  [[ -n "${log:-}" && -z "$keep_logs" ]] && rm -f "$log"
  return 0
}

prepare_scratch
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
[[ -n "$keep_logs" ]] && mkdir -p "$keep_logs"

have_target=0
for a in ${bazel_extra[@]+"${bazel_extra[@]}"}; do
  [[ "$a" != -* ]] && have_target=1
done
targets=()
[[ $have_target -eq 0 ]] && targets=(//...)

# ---------------------------------------------------------------- runs

results=()   # name|outcome|durability|catching targets (space separated)
failures=0

run_one() {
  local name="$1" f="$patch_dir/$1.patch" dur outcome catchers="" rc=0
  dur="$(header_field "$f" durability)"
  reset_scratch
  if ! git -C "$scratch" apply --check "$f" 2>/dev/null; then
    outcome=STALE
  elif [[ "$mode" == check ]]; then
    outcome=APPLIES
  else
    git -C "$scratch" apply "$f"
    if [[ -n "$keep_logs" ]]; then log="$keep_logs/$name.log"; else log="$(mktemp)"; fi
    local cmd=(./bazelw "$mode" --keep_going
               ${disk_cache:+"--disk_cache=$disk_cache"}
               ${bazel_extra[@]+"${bazel_extra[@]}"}
               ${targets[@]+"${targets[@]}"})
    echo "== $name: ${cmd[*]} ($(date -u +%H:%M:%S))" >&2
    (cd "$scratch" && "${cmd[@]}") >"$log" 2>&1 || rc=$?
    reset_scratch
    # Test targets that failed or timed out, from Bazel's summary (a sharded
    # target some of whose shards were cached shows "(3/4 cached)").
    catchers="$(grep -E '^//[^ ]+ +(\(([0-9]+/[0-9]+ )?cached\) )?(FAILED|TIMEOUT|FLAKY)' "$log" |
                grep -v 'FAILED TO BUILD' | awk '{print $1}' | sort -u |
                paste -sd ' ' - || true)"
    if grep -qE '^//[^ ]+ +FAILED TO BUILD' "$log" || [[ $rc -eq 1 ]]; then
      outcome=BUILD-BROKEN
      catchers="$(grep -E '^ERROR: .*\.(cc|h):[0-9]+' "$log" | head -n 1 | cut -c1-200 || true)"
    elif [[ "$mode" == build ]]; then
      if [[ $rc -eq 0 ]]; then outcome=BUILDS; else outcome=ERROR; fi
    elif [[ $rc -eq 0 ]]; then
      outcome=SURVIVED
    elif [[ $rc -eq 3 && -n "$catchers" ]]; then
      outcome=CAUGHT
    else
      outcome=ERROR
      catchers="bazel exit status $rc"
    fi
    [[ -z "$keep_logs" ]] && rm -f "$log"
    log=""
  fi
  local ok=1 count
  case "$outcome" in
    CAUGHT)
      count=$(wc -w <<<"$catchers")
      if [[ "$dur" == yes && $count -lt 2 ]]; then
        ok=0
        outcome="CAUGHT-ONCE"
      fi ;;
    APPLIES|BUILDS) ;;
    *) ok=0 ;;
  esac
  [[ $ok -eq 1 ]] || failures=$((failures + 1))
  results+=("$name|$outcome|$dur|$catchers")
  printf '%-40s %-12s durability=%-3s %s\n' "$name" "$outcome" "$dur" "$catchers"
}

start="$(date -u +%Y-%m-%dT%H:%MZ)"
echo "mutants.sh: ${#names[@]} mutant(s), mode $mode, revision ${sha:0:12}, scratch $scratch" >&2
for n in "${names[@]}"; do
  run_one "${n%.patch}"
done

# ---------------------------------------------------------------- summary

echo
echo "Summary ($start, revision ${sha:0:12}, ${#names[@]} mutant(s), mode $mode):"
printf '%-40s %-12s %-4s %s\n' MUTANT OUTCOME DUR "CAUGHT BY"
for r in "${results[@]}"; do
  IFS='|' read -r n o d c <<<"$r"
  printf '%-40s %-12s %-4s %s\n' "$n" "$o" "$d" "$c"
done
echo "$failures failure(s)"

if [[ -n "$report" ]]; then
  {
    echo "Mutation check of ${sha:0:12}, $start, mode \`$mode\`${bazel_extra[*]:+, Bazel arguments \`${bazel_extra[*]}\`}: ${#names[@]} mutant(s), $failures failure(s)."
    echo
    echo "| Mutant | Module | Durability | Outcome | Caught by |"
    echo "|---|---|---|---|---|"
    for r in "${results[@]}"; do
      IFS='|' read -r n o d c <<<"$r"
      m="$(header_field "$patch_dir/$n.patch" module)"
      cells=""
      for t in $c; do cells+="${cells:+, }\`$t\`"; done
      echo "| \`$n\` | $m | $d | $o | $cells |"
    done
  } >"$report"
fi

[[ $failures -eq 0 ]]
