#!/bin/bash
# Formats-check and lints every Bazel file of the project with buildifier (from npm:
# npm install -g @bazel/buildifier@8.2.1). `buildifier -r .` would also walk into
# third_party/abseil-src (it does not read .bazelignore), hence the explicit list.
# Usage: scripts/lint-bazel.sh [fix]
set -euo pipefail
cd "$(dirname "$0")/.."
mode=check; lint=warn
[[ "${1:-}" == fix ]] && { mode=fix; lint=fix; }
find . \( -path ./third_party -o -name 'bazel-*' -o -name .git \) -prune -o -type f \
     \( -name BUILD -o -name BUILD.bazel -o -name '*.BUILD' -o -name '*.bzl' -o -name WORKSPACE \) \
     -print0 | xargs -0 buildifier -mode="$mode" -lint="$lint"
