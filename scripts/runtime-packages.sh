#!/usr/bin/env bash
# Prints the Debian packages that hold the shared libraries a binary links (one per line,
# sorted): what the container's runtime stage installs (Dockerfile). Usage:
#   scripts/runtime-packages.sh build/release/src/cli/mlaas
set -euo pipefail
binary="${1:?usage: $0 BINARY}"
[ -x "$binary" ] || { echo "runtime-packages: $binary is not an executable" >&2; exit 1; }
missing=0
while read -r lib; do
  # dpkg knows a file by the path its package installed: try the path ldd gives, the real file
  # behind it (alternatives such as libblas.so.3 -> OpenBLAS) and both sides of the /usr merge.
  real="$(realpath "$lib")"
  pkg=""
  for candidate in "$lib" "$real" "${lib#/usr}" "${real#/usr}" "/usr$lib" "/usr$real"; do
    if pkg="$(dpkg-query -S "$candidate" 2>/dev/null | head -n1 | cut -d: -f1)" && [ -n "$pkg" ]; then break; fi
    pkg=""
  done
  if [ -z "$pkg" ]; then
    echo "runtime-packages: no Debian package holds $lib" >&2
    missing=1
  else
    echo "$pkg"
  fi
done < <(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $2 ~ /^\(/ {print $1}') | sort -u
exit "$missing"
