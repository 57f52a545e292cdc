#!/usr/bin/env bash
# Serving latency of a binary beside a reference binary, alternated under hey in one run, with
# the ratio: the machines we measure on change speed by 2x within a session, so an absolute p99
# means little without a reference measured in the same window (docs/performance.md, tenth stop).
# usage: scripts/serve_yardstick.sh REFERENCE CANDIDATE MODEL_DIR [ROUNDS]
#   REFERENCE  a seesaw binary to measure against: the code an issue was filed on, say, built in
#              a worktree of its own (git worktree add ../ref REV; cd ../ref; CARGO_TARGET_DIR=
#              ../target-ref cargo build --release -p seesaw-cli); it must load MODEL_DIR
#   CANDIDATE  the binary under test
#   MODEL_DIR  a trained model (seesaw train --config configs/kuairand.toml --out MODEL_DIR)
#   ROUNDS     reference then candidate, this many times, the order flipping each round (3)
# LOADS and SECONDS_PER_LOAD pass through to serve_hey.sh (here "1:100 4:25" and 20 s). Prints
# every run's line, then per load the median over rounds of each binary's p50, p99, p99 after the
# first 3 s and first-byte p99, and candidate / reference for each. A target set as an absolute
# p99 when the reference was measured at REF_P99 translates to this window as
# target x (this window's reference p99 / REF_P99).
set -euo pipefail
REFERENCE=$1; CANDIDATE=$2; MODEL=$3; ROUNDS=${4:-3}
export LOADS=${LOADS:-"1:100 4:25"}
export SECONDS_PER_LOAD=${SECONDS_PER_LOAD:-20}
here=$(dirname "$0")
lines=$(mktemp)
trap 'rm -f "$lines"' EXIT
for round in $(seq "$ROUNDS"); do
  order="reference candidate"
  if (( round % 2 == 0 )); then order="candidate reference"; fi
  for who in $order; do
    bin=$REFERENCE; [[ $who == candidate ]] && bin=$CANDIDATE
    "$here/serve_hey.sh" "$bin" "$MODEL" "$who" | tee -a "$lines"
  done
done
python3 - "$lines" <<'PY'
import re, statistics, sys
pattern = re.compile(
    r"^(\w+) (\d+x\d+): p50 ([\d.]+) / p99 ([\d.]+) ms; after 3 s p50 [\d.]+ / p99 ([\d.]+) ms;"
    r".*first byte p50 [\d.]+ / p99 ([\d.]+) ms")
runs = {}
for line in open(sys.argv[1]):
    m = pattern.match(line.strip())
    if m:
        who, load, *figures = m.groups()
        runs.setdefault((load, who), []).append([float(f) for f in figures])
names = ["p50", "p99", "p99 after 3 s", "first-byte p99"]
print()
for load in dict.fromkeys(load for load, _ in runs):
    ref, cand = runs.get((load, "reference")), runs.get((load, "candidate"))
    if not ref or not cand:
        continue
    print(f"{load} ({len(ref)} and {len(cand)} runs; medians, ms):")
    for i, name in enumerate(names):
        r = statistics.median(run[i] for run in ref)
        c = statistics.median(run[i] for run in cand)
        print(f"  {name:15s} reference {r:6.1f}  candidate {c:6.1f}  candidate / reference {c / r:.2f}")
PY
