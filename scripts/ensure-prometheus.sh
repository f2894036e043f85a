#!/usr/bin/env bash
# `npm test` checks docs/monitoring/ with the real Prometheus (promtool and a prometheus process
# scraping the stack); install Debian's package when promtool is missing (these machines run as
# root with apt). PROMTOOL_PATH and PROMETHEUS_PATH point elsewhere if needed. The package's
# service is never started: no policy lets it, and nothing is left listening on :9090.
set -euo pipefail
[ -n "${PROMTOOL_PATH:-}" ] && [ -n "${PROMETHEUS_PATH:-}" ] && exit 0
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's prometheus for the monitoring test…" >&2
  # invoke-rc.d asks policy-rc.d whether a package may start its service: 101 is "no".
  policy=/usr/sbin/policy-rc.d
  added=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added=1
  fi
  trap 'if [ -n "$added" ]; then rm -f "$policy"; fi' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
else
  echo "prometheus is missing: install Debian's prometheus (or set PROMTOOL_PATH and PROMETHEUS_PATH) for the monitoring test" >&2
fi
