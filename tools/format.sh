#!/usr/bin/env bash
# The project's C++ layout (.clang-format: Google style, 100 columns). Usage:
#   tools/format.sh            reformat every tracked .h/.cpp/.cu file in place
#   tools/format.sh --check    change nothing; list the files it would change and fail if any
# The layout is clang-format 14's (Debian 12's; tools/setup.sh --test installs it): other versions
# lay some lines out differently, so --check skips, saying so, under any other major version.
set -euo pipefail
cd "$(dirname "$0")/.."
fmt=$(command -v clang-format-14 || command -v clang-format || true)
[[ -n "$fmt" ]] || { echo "[format] error: clang-format not found (apt-get install clang-format)" >&2; exit 1; }
version=$("$fmt" --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
mapfile -t files < <(git ls-files '*.h' '*.cpp' '*.cu' '*.cuh')
if [[ "${1:-}" == "--check" ]]; then
  if [[ "$version" != 14 ]]; then
    echo "[format] skipped: $fmt is version $version, the layout is clang-format 14's"
    exit 0
  fi
  bad=()
  for f in "${files[@]}"; do
    "$fmt" --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done
  if [[ ${#bad[@]} -gt 0 ]]; then
    echo "[format] ${#bad[@]} of ${#files[@]} files are not laid out as .clang-format says (run tools/format.sh):"
    printf '  %s\n' "${bad[@]}"
    exit 1
  fi
  echo "[format] all ${#files[@]} files laid out as .clang-format says"
elif [[ $# -eq 0 ]]; then
  "$fmt" -i "${files[@]}"
  echo "[format] formatted ${#files[@]} files with $fmt"
else
  echo "usage: tools/format.sh [--check]" >&2
  exit 2
fi
