#!/usr/bin/env bash
# The learning curve of docs/learning-curve.md: configs/simulator.toml at 1e5, 1e6 and 1e7
# impressions (same world: 2,000 users, 1,000 videos, 10 days), single-task against MMoE, 3 seeds
# (1 at 1e7). Needs about 7 GB of disk (the 1e7 simulation writes 5.6 GB) and an hour on 2 cores.
# usage: docs/learning-curve-scripts/run.sh OUT_DIR [SEESAW_BINARY]
set -euo pipefail
out=${1:?usage: run.sh OUT_DIR [SEESAW_BINARY]}
seesaw=${2:-target/release/seesaw}
here="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$out"
for n in 100000 1000000 10000000; do
    seeds="[0, 1, 2]"
    [ "$n" = 10000000 ] && seeds="[0]"
    # The built-in config with n impressions, an MMoE model, and a compare of MMoE alone (the
    # single-task reference is always trained beside it).
    sed -e "s/n_impressions = 100000/n_impressions = $n/" \
        -e 's/^tower_hidden = \[32\]/tower_hidden = [32]\narchitecture = { kind = "mmoe", experts = 4, expert_hidden = [64, 32], gate_temperature = 1.0 }/' \
        "$here/configs/simulator.toml" | sed '/^\[compare\]/,$d' > "$out/lc-$n.toml"
    printf '\n[compare]\nseeds = %s\narchitectures = [{ kind = "mmoe", experts = 4, expert_hidden = [64, 32], gate_temperature = 1.0 }]\n' \
        "$seeds" >> "$out/lc-$n.toml"
    /usr/bin/time -v "$seesaw" compare --config "$out/lc-$n.toml" --out "$out/cmp-$n" \
        > "$out/cmp-$n.out" 2> "$out/cmp-$n.err"
done
