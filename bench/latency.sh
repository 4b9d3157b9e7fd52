#!/usr/bin/env bash
# Speaker mouth-to-ear latency on loopback: WebRTC (WHIP/WHEP) and the WebSocket speaker link side
# by side, speaker → other speaker and speaker → live listener (bench/latency.mjs says how).
# Needs Debian's Chromium and playwright-core in tests/browser/node_modules (make browser-deps).
# Usage: bash bench/latency.sh     (OUT=file for the table, default bench/results/latency.md;
#                                   DURATION=seconds per transport, default 20)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export SPACECAST_BIN=${SC_BIN:-$here/../build/spacecast}
if [ ! -d "$here/../tests/browser/node_modules/playwright-core" ]; then
  echo "latency: playwright-core is missing; run: make browser-deps" >&2; exit 1
fi
exec node "$here/latency.mjs" "$@"
