#!/usr/bin/env bash
# The model call of single requests on a fresh server, as docs/performance.md reports it: the
# first request, three requests of 500 videos never scored before, then the same three again
# (what a served model keeps per video shows as the difference). One line, in ms.
# usage: scripts/serve_cold.sh SEESAW MODEL_DIR   (videos drawn from 0..7583, KuaiRand's ids)
set -euo pipefail
source "$(dirname "$0")/serve_lib.sh"
BIN=$1; MODEL=$2
PORT=${PORT:-18950}
work=$(mktemp -d)
trap 'kill -TERM $PID 2>/dev/null || true; rm -rf "$work"' EXIT
python3 - "$work" <<'PY'
import json, random, sys
rng = random.Random(1)
videos = list(range(7583))
rng.shuffle(videos)
for i in range(4):
    body = {"user_id": 712, "context": {"tab": 1},
            "candidates": [{"video_id": v} for v in videos[i * 500:(i + 1) * 500]]}
    json.dump(body, open(f"{sys.argv[1]}/body{i}.json", "w"))
PY
start_server "$BIN" "$MODEL" "$PORT" "$work/serve.log"
call_seconds() { curl -s http://127.0.0.1:$PORT/metrics \
  | awk '/^seesaw_model_call_duration_seconds_sum/ {print $2}'; }
line="$(basename "$BIN"):"
for i in 0 1 2 3 1 2 3; do
  a=$(call_seconds)
  curl -s -o /dev/null -X POST -H 'content-type: application/json' \
    --data-binary @"$work/body$i.json" http://127.0.0.1:$PORT/v1/score
  b=$(call_seconds)
  line="$line $(python3 -c "print(f'{($b - $a) * 1e3:.2f}')")"
done
echo "$line  (first request; three of new videos; the same three again)"
