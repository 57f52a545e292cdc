#!/usr/bin/env bash
# Latency of `seesaw serve` under hey (Debian's `hey`), as docs/performance.md reports it.
# usage: scripts/serve_hey.sh SEESAW MODEL_DIR LABEL [SERVE FLAGS...]
#   SEESAW     the binary (target/release/seesaw)
#   MODEL_DIR  a trained model (seesaw train --config configs/kuairand.toml --out MODEL_DIR)
# Prints one line per load: LABEL CLIENTSxRATE: p50 / p99 in ms, requests/s answered, non-200s.
# The request: user 712, context tab 1, 500 candidates (video ids drawn with seed 0 from
# 0..7583, KuaiRand's video id range), 10 KB.
set -euo pipefail
BIN=$1; MODEL=$2; LABEL=$3; shift 3
PORT=${PORT:-18700}
LOADS=${LOADS:-"1:100 4:25 4:75 4:100 4:125 4:150 4:250 8:100"}
SECONDS_PER_LOAD=${SECONDS_PER_LOAD:-15}
work=$(mktemp -d)
trap 'kill -TERM $PID 2>/dev/null || true; rm -rf "$work"' EXIT
python3 - "$work/body.json" <<'PY'
import json, random, sys
rng = random.Random(0)
body = {"user_id": 712, "context": {"tab": 1},
        "candidates": [{"video_id": rng.randrange(7583)} for _ in range(500)]}
json.dump(body, open(sys.argv[1], "w"))
PY
"$BIN" serve --model "$MODEL" --addr 127.0.0.1:$PORT "$@" 2> "$work/serve.log" &
PID=$!
for _ in $(seq 100); do grep -q listening "$work/serve.log" && break; sleep 0.2; done
URL=http://127.0.0.1:$PORT/v1/score
hey -z 2s -c 1 -q 100 -m POST -T application/json -D "$work/body.json" $URL > /dev/null  # warm-up
for load in $LOADS; do
  clients=${load%%:*}; rate=${load##*:}
  out=$(hey -z ${SECONDS_PER_LOAD}s -c $clients -q $rate -m POST -T application/json -D "$work/body.json" $URL)
  p50=$(echo "$out" | awk '/50% in/ {print $3 * 1000}')
  p99=$(echo "$out" | awk '/99% in/ {print $3 * 1000}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  other=$(echo "$out" | grep -A5 "Status code" | grep -v "\[200\]" | tail -n +2 | tr -s ' ' | tr '\n' ' ' || true)
  echo "$LABEL ${clients}x${rate}: p50 ${p50} / p99 ${p99} ms, ${rps} req/s ${other}"
done
