#!/bin/bash
# Builds and runs tests/downstream: a separate Bazel workspace that depends on this
# repository through local_repository and only uses its public target (@kvindex//index)
# and header (index/index.h), as a consumer following the README would.
#
#   scripts/downstream-test.sh [BAZEL STARTUP OPTIONS...]   e.g. --output_base=/tmp/ob
#
# The downstream workspace gets its own Bazel server and output base. Needs the packages
# ./bazelw installs (run it once first on a fresh machine).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/tests/downstream"
bazel="${BAZEL:-bazel}"

"$bazel" "$@" test //...
out="$("$bazel" "$@" run //app)"
echo "$out"
grep -q '^downstream: 1000 bindings written, merged and read back from ' <<<"$out"
echo "downstream: OK"
