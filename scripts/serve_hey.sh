#!/usr/bin/env bash
# Latency of `seesaw serve` under hey (Debian's `hey`), as docs/performance.md reports it.
# usage: scripts/serve_hey.sh SEESAW MODEL_DIR LABEL [SERVE FLAGS...]
#   SEESAW     the binary (target/release/seesaw)
#   MODEL_DIR  a trained model (seesaw train --config configs/kuairand.toml --out MODEL_DIR)
# The request: `write_request_body` in serve_lib.sh (500 candidates, 10 KB).
# Prints one line per load: LABEL CLIENTSxRATE: p50 / p99 in ms over all requests, then over the
# requests sent after the first 3 s; requests/s sent; non-200 answers; how many answers took more
# than 5 ms to read after their first byte; and p50 / p99 of the time to the answer's first byte
# (hey's "Response-delay": the server's part, without the client's reads). Every hey run opens
# new connections, and while a connection is young the client's receive window is small: a 106 KB
# answer may then wait about 25 ms in the middle for the window to open (hey -o csv,
# "Response-read"), a few times in a run's first 2 s. Those stalls are the client's TCP start,
# not the server. Some runs on the KVM guests we measure on see a few hundred such slow reads
# throughout, whichever binary serves; the time to the first byte is unaffected by them.
set -euo pipefail
source "$(dirname "$0")/serve_lib.sh"
BIN=$1; MODEL=$2; LABEL=$3; shift 3
PORT=${PORT:-18700}
LOADS=${LOADS:-"1:100 4:25 4:75 4:100 4:125 4:150 4:250 8:100"}
SECONDS_PER_LOAD=${SECONDS_PER_LOAD:-15}
work=$(mktemp -d)
trap 'kill -TERM $PID 2>/dev/null || true; rm -rf "$work"' EXIT
write_request_body "$work/body.json"
start_server "$BIN" "$MODEL" "$PORT" "$work/serve.log" "$@"
URL=http://127.0.0.1:$PORT/v1/score
hey -z 2s -c 1 -q 100 -m POST -T application/json -D "$work/body.json" $URL > /dev/null  # warm-up
for load in $LOADS; do
  clients=${load%%:*}; rate=${load##*:}
  hey -z ${SECONDS_PER_LOAD}s -c $clients -q $rate -o csv -m POST -T application/json \
    -D "$work/body.json" $URL > "$work/hey.csv"
  python3 - "$work/hey.csv" "$LABEL ${clients}x${rate}" "$SECONDS_PER_LOAD" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def pct(values, p):
    values = sorted(values)
    return values[max(0, min(len(values) - 1, -(-len(values) * p // 100) - 1))] * 1000
ok = [r for r in rows if r["status-code"] == "200"]
every = [float(r["response-time"]) for r in ok]
later = [float(r["response-time"]) for r in ok if float(r["offset"]) >= 3]
slow_reads = sum(float(r["Response-read"]) > 0.005 for r in ok)
first_byte = [float(r["Response-delay"]) for r in ok]
print(f"{sys.argv[2]}: p50 {pct(every, 50):.1f} / p99 {pct(every, 99):.1f} ms; after 3 s p50 "
      f"{pct(later, 50):.1f} / p99 {pct(later, 99):.1f} ms; {len(rows) / float(sys.argv[3]):.1f} "
      f"req/s, {len(rows) - len(ok)} non-200, {slow_reads} reads > 5 ms; first byte p50 "
      f"{pct(first_byte, 50):.1f} / p99 {pct(first_byte, 99):.1f} ms")
PY
done
