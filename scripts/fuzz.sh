#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD for SECONDS each, two at a time, on a copy of its
# seed corpus (tests/fuzz/corpus/NAME). A crash fails the run and leaves the input in fuzz-out/.
set -uo pipefail
build=$1 seconds=$2
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/fuzz-out
mkdir -p "$out"
targets=$(find "$build" -maxdepth 1 -type f -executable -name 'fuzz_*' | sort)
[ -n "$targets" ] || { echo "no fuzz targets built" >&2; exit 1; }
pass=0 fail=0
run_one() {
  local t=$1 name=${1##*/fuzz_}
  local corpus=$out/corpus-$name
  mkdir -p "$corpus"
  [ -d "$root/tests/fuzz/corpus/$name" ] && cp -n "$root/tests/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null
  if "$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$out/$name-" \
       "$corpus" >"$out/$name.log" 2>&1; then
    echo "fuzz $name: ok ($(grep -c . "$out/$name.log") log lines)"
    return 0
  fi
  echo "fuzz $name: FAILED, see $out/$name.log"; tail -30 "$out/$name.log"
  return 1
}
set -- $targets
while [ $# -gt 0 ]; do
  run_one "$1" & p1=$!
  p2=""
  if [ $# -gt 1 ]; then run_one "$2" & p2=$!; fi
  if wait $p1; then pass=$((pass+1)); else fail=$((fail+1)); fi
  if [ -n "$p2" ]; then if wait $p2; then pass=$((pass+1)); else fail=$((fail+1)); fi; shift; fi
  shift
done
echo "fuzz: $pass passed, $fail failed"
[ $fail -eq 0 ]
