#!/usr/bin/env bash
# Dense against lazy embedding updates on the KuaiRand slice (docs/performance.md): trains
# configs/kuairand.toml with [train] seed 0, 1, 2 and embedding_updates dense and lazy,
# alternating, and prints each run's test metrics.
# usage: scripts/embedding_updates_kuairand.sh SEESAW OUT_DIR
set -euo pipefail
BIN=$(realpath "$1"); OUT=$(realpath -m "$2")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT"
for seed in 0 1 2; do
  for updates in dense lazy; do
    # Beside configs/kuairand.toml, so that its relative data paths still resolve.
    config="$ROOT/configs/.embedding-updates-$updates-$seed.toml"
    sed -e "s/^\[train\]/[train]\nseed = $seed\nembedding_updates = \"$updates\"/" \
      "$ROOT/configs/kuairand.toml" > "$config"
    echo "== $updates, seed $seed"
    "$BIN" train --config "$config" --out "$OUT/$updates-$seed" 2>&1 | grep -E "AUC|RMSE"
    rm -f "$config"
  done
done
