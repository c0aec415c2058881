#!/bin/bash
# Checks a Bazel dependency graph (`bazel query --output=graph`, as the genquery
# //:dependency_graph writes it) against the layer rules of the project: an edge
# from one of the project's packages to another is allowed only if the table
# below lists it. External repositories (@...) are not checked.
#
#   scripts/check-layers.sh GRAPH               check a graph file
#   scripts/check-layers.sh --self-test GRAPH   first show that a forbidden edge
#                                               is caught, then check GRAPH
#   bazel query --output=graph --noimplicit_deps 'kind(rule, deps(//...))' \
#     > /tmp/g && scripts/check-layers.sh /tmp/g
#
# The layers run one way: io and data at the bottom, with cli (the command lines
# of the tools and the benchmark); fan, search, filter and log on io and data;
# the data file (reader and merge) on those; the index on top; then the tools,
# the benchmark and the fuzzers. model and testing are test-only.
set -euo pipefail

# package -> the packages it may depend on (besides itself).
declare -A allowed=(
  [io]=""
  [data]=""
  [cli]=""
  [model]=""
  [fan]=""
  [search]="data"
  [filter]="io data"
  [log]="io data"
  [datafile]="io data fan search filter log"
  [runset]="io data filter datafile"
  [index]="io data filter log datafile runset"
  [testing]="io data model index"
  [tools]="io data cli fan filter log datafile runset index"
  [bench]="io data cli index testing"
  [fuzz]="io data fan search filter log datafile runset index model testing"
  [tests]="io data fan search filter log datafile runset index model testing tools"
)

# Prints each forbidden edge of the graph file $1; returns 1 if there is one.
check() {
  local graph="$1" bad=0 from to pf pt
  while read -r from to; do
    pf="${from#//}"; pf="${pf%%[:/]*}"
    pt="${to#//}"; pt="${pt%%[:/]*}"
    # Edges within a package, and to bazel/ (build support, not code), are free.
    [[ "$pf" == "$pt" || "$pt" == bazel ]] && continue
    if [[ -z "${allowed[$pf]+set}" ]]; then
      echo "layers: package '$pf' (in $from -> $to) is not in the table of scripts/check-layers.sh"
      bad=1
      continue
    fi
    if [[ " ${allowed[$pf]} " != *" $pt "* ]]; then
      echo "layers: forbidden dependency $from -> $to ('$pf' may depend on: ${allowed[$pf]:-nothing})"
      bad=1
    fi
  done < <(sed -n 's#^ *"\(//[^"]*\)" -> "\(//[^"]*\)".*#\1 \2#p' "$graph")
  return $bad
}

if [[ "${1:-}" == --self-test ]]; then
  shift
  tmp="$(mktemp)"
  trap 'rm -f "$tmp"' EXIT
  printf '%s\n' 'digraph g {' '  "//log:log" -> "//io:env"' '  "//io:env" -> "//index:index"' '}' > "$tmp"
  if out="$(check "$tmp")"; then
    echo "layers: self-test failed: the edge //io:env -> //index:index was not reported"
    exit 1
  fi
  if [[ "$out" != *"//io:env -> //index:index"* || "$out" == *"//log:log"* ]]; then
    echo "layers: self-test failed: wrong report: $out"
    exit 1
  fi
fi

graph="${1:?usage: check-layers.sh [--self-test] GRAPH}"
edges="$(grep -c -- '->' "$graph" || true)"
if [[ "$edges" -lt 10 ]]; then
  echo "layers: $graph holds only $edges edges: not a dependency graph"
  exit 1
fi
check "$graph"
echo "layers: $edges edges checked, none forbidden"
