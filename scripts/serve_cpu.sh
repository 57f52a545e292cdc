#!/usr/bin/env bash
# The server's CPU per request and its mean model call under hey, as docs/performance.md reports
# them (one line). usage: scripts/serve_cpu.sh SEESAW MODEL_DIR [CLIENTS RATE SECONDS]
#   defaults: 1 client at 100 requests/s for 10 s, the request of scripts/serve_hey.sh.
# CPU: user + system time of the server process (/proc/PID/stat) over the run, per answered
# request, and of its threads by name (/proc/PID/task/*): the HTTP threads (decoding, encoding
# the candidates, writing the answer) and the scoring workers; model call: the mean of
# seesaw_model_call_duration_seconds over the run (/metrics).
set -euo pipefail
source "$(dirname "$0")/serve_lib.sh"
BIN=$1; MODEL=$2; CLIENTS=${3:-1}; RATE=${4:-100}; SECONDS_RUN=${5:-10}
PORT=${PORT:-18900}
work=$(mktemp -d)
trap 'kill -TERM $PID 2>/dev/null || true; rm -rf "$work"' EXIT
write_request_body "$work/body.json"
start_server "$BIN" "$MODEL" "$PORT" "$work/serve.log"
URL=http://127.0.0.1:$PORT/v1/score
hey -z 3s -c 1 -q 100 -m POST -T application/json -D "$work/body.json" $URL > /dev/null  # warm-up
calls() { curl -s http://127.0.0.1:$PORT/metrics \
  | awk '/^seesaw_model_call_duration_seconds_(sum|count)/ {print $2}' | paste -sd' '; }
cpu_ticks() { awk '{print $14 + $15}' /proc/$PID/stat; }
# cpu_ticks_of NAME: the ticks of the threads whose name contains NAME.
cpu_ticks_of() {
  for task in /proc/$PID/task/*; do echo "$(cat $task/comm) $(awk '{print $14 + $15}' $task/stat)"; done \
    | awk -v name="$1" 'index($1, name) {sum += $2} END {print sum + 0}'
}
before=$(calls); t0=$(cpu_ticks); h0=$(cpu_ticks_of seesaw-http); s0=$(cpu_ticks_of seesaw-score)
answered=$(hey -z ${SECONDS_RUN}s -c $CLIENTS -q $RATE -m POST -T application/json \
  -D "$work/body.json" $URL | awk '/\[200\]/ {print $2}')
after=$(calls); t1=$(cpu_ticks); h1=$(cpu_ticks_of seesaw-http); s1=$(cpu_ticks_of seesaw-score)
python3 - "$before" "$after" "$t0 $t1 $h0 $h1 $s0 $s1" "$answered" "$(getconf CLK_TCK)" \
  "$(basename "$BIN")" "${CLIENTS}x${RATE}" <<'PY'
import sys
b, a = map(float, sys.argv[1].split()), map(float, sys.argv[2].split())
(bs, bc), (as_, ac) = b, a
t0, t1, h0, h1, s0, s1 = map(float, sys.argv[3].split())
n, hz = int(sys.argv[4]), float(sys.argv[5])
ms = lambda ticks: ticks / hz * 1e3 / n
print(f"{sys.argv[6]} {sys.argv[7]}: {n} answered, server CPU {ms(t1 - t0):.2f} ms a request "
      f"(HTTP threads {ms(h1 - h0):.2f}, scoring workers {ms(s1 - s0):.2f}), "
      f"mean model call {(as_ - bs) / (ac - bc) * 1e3:.2f} ms")
PY
