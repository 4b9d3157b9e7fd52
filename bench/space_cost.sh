#!/usr/bin/env bash
# bench/space_cost.sh — what one live Space's audio costs per 20 ms tick, in instructions
# counted by callgrind inside sc_mixer_tick and sc_mixer_push (repeatable on a loaded machine),
# for the mixer now and for the mixer before the playout rework (0a2483d: every speaker
# decoded, the mix encoded, every tick). Issue #16's goals: a live Space nobody talks in
# <= 0.02 % of a core, one speaker talking <= 0.2 %, the mix no dearer than before.
#   bash bench/space_cost.sh [TICKS]          (default 500 ticks = 10 s of audio per case)
# % of a core = instructions per second / IPS, IPS = 3e9 by default (a ~3 GHz core at ~1
# instruction per cycle on codec code; set IPS=... to use another figure).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
ticks=${1:-500}
ips=${IPS:-3000000000}
build=${BUILD:-$root/build}
old_rev=${OLD_REV:-0a2483d}
work=$(mktemp -d /tmp/sc-cost-XXXXXX)
trap 'git -C "$root" worktree remove --force "$work/old" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

cmake --build "$build" -j2 --target bench_mixer >/dev/null
git -C "$root" worktree add --detach "$work/old" "$old_rev" >/dev/null 2>&1
cp "$here/bench_mixer.c" "$work/old/bench/bench_mixer.c"
cmake -S "$work/old" -B "$work/old/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS=-DSC_OLD_MIXER >/dev/null
cmake --build "$work/old/build" -j2 --target bench_mixer >/dev/null

count() { # binary case -> instructions per tick
  valgrind --tool=callgrind --toggle-collect=sc_mixer_tick --toggle-collect=sc_mixer_push \
    --callgrind-out-file="$work/cg.out" "$1" --case "$2" --ticks "$ticks" >/dev/null 2>&1
  awk -v t="$ticks" '/^(summary|totals):/ { print int($2 / t) }' "$work/cg.out" | tail -1
}

echo "| live Space | instructions per 20 ms tick, now | % of a core, now | before (0a2483d) | % of a core, before | now / before |"
echo "|---|---|---|---|---|---|"
for c in idle silent one one_of_two two; do
  case $c in
    idle) what="nobody connected";; silent) what="one speaker connected, not talking";;
    one) what="one speaker talking (forwarded)";; one_of_two) what="two connected, one talking";;
    two) what="two talking (the mix)";;
  esac
  now=$(count "$build/bench_mixer" $c)
  old=$(count "$work/old/build/bench_mixer" $c)
  awk -v w="$what" -v n="$now" -v o="$old" -v ips="$ips" 'BEGIN {
    printf "| %s | %d | %.4f %% | %d | %.4f %% | %.2f |\n", w, n, 100 * n * 50 / ips, o, 100 * o * 50 / ips, o ? n / o : 0 }'
done
echo
echo "($ticks ticks per case; % of a core = instructions per tick x 50 / $ips)"
