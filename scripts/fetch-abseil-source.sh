#!/bin/bash
# Unpacks Debian's own abseil source package (the exact version + Debian patches that
# built libabsl-dev) into third_party/abseil-src, for --config=tsan-absl: ThreadSanitizer
# needs Abseil compiled with -fsanitize=thread to see absl::Mutex synchronisation.
# Uses a private apt configuration whose deb-src entries are derived from the system's own
# apt sources (so no mirror is named here); the system's apt sources are left alone.
# Needs dpkg-dev (pulled in by bazel-bootstrap via build-essential).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/third_party/abseil-src"
[[ -f "$dest/absl/base/config.h" ]] && { echo "abseil source already in $dest"; exit 0; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/parts"
# deb822 sources: same entries, as deb-src.
for f in /etc/apt/sources.list.d/*.sources; do
  [[ -f "$f" ]] && sed 's/^Types:.*/Types: deb-src/' "$f" > "$work/parts/$(basename "$f")"
done
# one-line sources: same entries, as deb-src.
grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
  | sed 's/^deb /deb-src /' > "$work/sources.list" || true
apt_opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=$work/parts"
          -o "Dir::State::lists=$work/lists" -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" -qq update
# Same version as the installed libabsl-dev, so headers and ABI match exactly.
version="$(dpkg-query -W -f='${source:Version}' libabsl-dev)"
(cd "$work" && apt-get "${apt_opts[@]}" -qq source --download-only "abseil=$version")
dpkg-source -x "$work"/abseil_*.dsc "$work/abseil" >/dev/null
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$work/abseil" "$dest"
echo "abseil $version source in $dest"
