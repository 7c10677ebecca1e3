#!/usr/bin/env bash
# Installs what building and testing Holdfast needs on a fresh Debian machine. Idempotent: it
# only calls apt-get when something is missing.
set -euo pipefail

# nginx and haproxy: the multi-instance tests' load balancers; chromium: the browser tests.
packages=(libzmq3-dev pkg-config curl nginx haproxy chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# JavaScript clients of the end-to-end tests (wscat, playwright-core driving the chromium above),
# from tests/js/package-lock.json. `npm ci` runs only when node_modules is missing or the lock
# changed since the last install (a copy of the lock it installed is kept inside node_modules).
js=tests/js
cd "$(dirname "$0")/.."
if ! cmp -s "$js/package-lock.json" "$js/node_modules/.installed-lock.json"; then
  echo "setup: npm ci in $js"
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$js/package-lock.json" "$js/node_modules/.installed-lock.json"
fi
