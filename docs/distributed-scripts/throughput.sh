#!/usr/bin/env bash
# Samples/s of one process against two ranks on the same run config, one thread each, and each
# rank's time in the gradient sums. Usage: throughput.sh SEESAW_BINARY RUN_CONFIG
set -euo pipefail
seesaw=$(realpath "$1"); config=$(realpath "$2")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
export RAYON_NUM_THREADS=1
for ranks in 1 2; do
    echo "== $ranks rank(s)"
    (cd "$(dirname "$config")" && mpirun --allow-run-as-root --oversubscribe --bind-to core -n "$ranks" \
        /usr/bin/time -f "rank peak RSS %M KB, wall %e s" "$seesaw" train --config "$config" --out "$work/r$ranks" 2>&1) \
        | grep -E "^epoch|gradient sums|peak RSS"
done
