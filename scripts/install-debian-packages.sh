#!/usr/bin/env bash
# Install the Debian packages listed in $1 (one per line, '#' comments) that are missing.
# They hold the offline data sets of docs/references.md (Data). Needs root or sudo.
# Then warn (stderr, exit status 0) for each package whose installed version differs from the
# lock file $2 (package=version lines, written by `make lock`; default
# requirements/debian-lock.txt): results were made with the locked versions.
set -euo pipefail
list="${1:-debian-packages.txt}"
lock="${2:-requirements/debian-lock.txt}"

check_lock() {
  [ -f "$lock" ] || return 0
  local name want have
  while IFS='=' read -r name want; do
    have=$(dpkg-query -W -f='${Version}' "$name" 2>/dev/null || true)
    if [ "$have" != "$want" ]; then
      echo "warning: Debian package $name is ${have:-not installed}, $lock has $want" >&2
    fi
  done < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$lock")
}

mapfile -t wanted < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$list" | tr -d ' ')
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi
check_lock
