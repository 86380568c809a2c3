#!/usr/bin/env bash
# Every mode twice against each binary, before then after back to back (B A B A), plus
# four follow-ups: `slots` with the server's open-files limit at 2048, `guess` with 200
# connections, `pipeline` with 300/600/1000 stanzas, and `guess` with a login 62 s
# after the window. Output (one JSON line and a
# summary per run) goes to results/<UTC time>/; the README tables are made from it.
#   bash interop/attacks/run_all.sh /work/bench-before/herald /work/bench-after/herald
set -euo pipefail
before=${1:?before binary}
after=${2:?after binary}
here=$(cd "$(dirname "$0")" && pwd)
out="$here/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
{
  echo "date -u: $(date -u)"
  echo "loadavg at start: $(cat /proc/loadavg)"
  echo "cores: $(nproc)"
  echo "before: $before (commit $(cat "$(dirname "$before")/COMMIT" 2>/dev/null || echo ?))"
  echo "after:  $after (commit $(cat "$(dirname "$after")/COMMIT" 2>/dev/null || echo ?))"
} | tee "$out/machine.txt"
run() {
  local name=$1; shift
  echo "--- $name: loadavg $(cat /proc/loadavg)" | tee -a "$out/machine.txt"
  python3 "$here/attack.py" "$@" > "$out/$name.txt" 2>&1 || echo "(exit $?)" >> "$out/$name.txt"
  tail -n +2 "$out/$name.txt"
}
for mode in amplify guess slots; do
  for i in 1 2; do
    run "$mode-before-$i" "$before" "$mode"
    run "$mode-after-$i" "$after" "$mode"
  done
done
for i in 1 2; do
  run "slots-nofile2048-before-$i" "$before" slots --server-nofile 2048
  run "slots-nofile2048-after-$i" "$after" slots --server-nofile 2048
done
for i in 1 2; do
  run "guess-conns200-before-$i" "$before" guess --conns 200
  run "guess-conns200-after-$i" "$after" guess --conns 200
done
for n in 300 600 1000; do
  for i in 1 2; do
    run "pipeline$n-before-$i" "$before" pipeline --stanzas "$n"
    run "pipeline$n-after-$i" "$after" pipeline --stanzas "$n"
  done
done
# How long the owner stays locked out once the guessing stops (one run each).
run "guess-relogin62-before-1" "$before" guess --sources 20 --relogin-after 62
run "guess-relogin62-after-1" "$after" guess --sources 20 --relogin-after 62
echo "results in $out"
