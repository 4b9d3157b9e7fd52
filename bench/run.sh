#!/usr/bin/env bash
# make bench: every benchmark, one after another; tables go to stdout (paste into docs/BENCHMARKS.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
echo "## mixer CPU per Space"; echo; "$build/bench_mixer"; echo
echo "## a live Space's audio cost"; echo; bash "$here/space_cost.sh"; echo
echo "## TLS: user-space work per listener-page and per handshake, full against resumed (callgrind)"; echo; bash "$here/tls_cost.sh"; echo
echo "## listener encoder complexity"; echo; /usr/bin/python3 "$here/fidelity/complexity.py"; echo
echo "## speech fidelity"; echo; /usr/bin/python3 "$here/fidelity/run.py"; echo
echo "## speech fidelity beside Chromium's NetEq"; echo; /usr/bin/python3 "$here/fidelity/neteq.py"; echo
for b in "$here"/api_details.sh "$here"/fanout.sh "$here"/night.sh "$here"/edges.sh "$here"/latency.sh "$here"/reactions.sh "$here"/tls.sh "$here"/spaces.sh; do
  echo "## $(basename "$b" .sh)"; echo; bash "$b"; echo
done
