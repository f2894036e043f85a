#!/usr/bin/env bash
# `npm test` drives Debian's Chromium through playwright-core for the status-page test; install
# it when missing (these machines run as root with apt). CHROMIUM_PATH points elsewhere if needed.
set -euo pipefail
[ -n "${CHROMIUM_PATH:-}" ] && exit 0
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the status-page test…" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "chromium is missing: install it (or set CHROMIUM_PATH) for the status-page test" >&2
fi
