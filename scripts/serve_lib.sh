# Shared by the serving benchmark scripts (serve_hey.sh, serve_cpu.sh, serve_cold.sh); sourced.

# write_request_body FILE: the benchmark request, user 712, context tab 1, 500 candidates (video
# ids drawn with seed 0 from 0..7583, KuaiRand's video id range), 10 KB.
write_request_body() {
  python3 - "$1" <<'PY'
import json, random, sys
rng = random.Random(0)
body = {"user_id": 712, "context": {"tab": 1},
        "candidates": [{"video_id": rng.randrange(7583)} for _ in range(500)]}
json.dump(body, open(sys.argv[1], "w"))
PY
}

# start_server SEESAW MODEL_DIR PORT LOG [SERVE FLAGS...]: starts `seesaw serve` in the background,
# sets PID, and returns once it listens.
start_server() {
  local bin=$1 model=$2 port=$3 log=$4
  shift 4
  "$bin" serve --model "$model" --addr 127.0.0.1:"$port" "$@" 2> "$log" &
  PID=$!
  for _ in $(seq 100); do grep -q listening "$log" && break; sleep 0.2; done
}
