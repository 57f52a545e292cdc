#!/usr/bin/env bash
# The kill test of docs/distributed.md: KILLS times, one rank of `mpirun -n 2 seesaw train` is
# aborted at a random training step (SEESAW_FAULT, as kill -9 would: no cleanup), then the run is
# resumed; every resumed model's test metrics must equal the uninterrupted run's.
# Usage: kill-and-resume.sh SEESAW_BINARY RUN_CONFIG [KILLS] [TOTAL_STEPS]
set -euo pipefail
seesaw=$(realpath "$1"); config=$(realpath "$2"); kills=${3:-10}; steps=${4:-75}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mpi=(mpirun --allow-run-as-root --oversubscribe -n 2)
metrics() { python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["training"]["evaluation"]["tasks"], sort_keys=True))' "$1/manifest.json"; }
timeout 600 "${mpi[@]}" "$seesaw" train --config "$config" --out "$work/full" >/dev/null 2>&1
reference=$(metrics "$work/full")
same=0
for i in $(seq 1 "$kills"); do
    rank=$((RANDOM % 2)); step=$((RANDOM % steps + 1))
    cat > "$work/faulty.sh" <<SH
#!/bin/sh
if [ "\$OMPI_COMM_WORLD_RANK" = $rank ]; then export SEESAW_FAULT=train:step@$step; fi
exec "$seesaw" "\$@"
SH
    rm -rf "$work/run"
    start=$(date +%s.%N)
    if timeout 600 "${mpi[@]}" sh "$work/faulty.sh" train --config "$config" --out "$work/run" >/dev/null 2>&1; then
        echo "kill $i: rank $rank at step $step: the run did not die"; exit 1
    fi
    died=$(echo "$(date +%s.%N) - $start" | bc)
    timeout 600 "${mpi[@]}" "$seesaw" train --config "$config" --out "$work/run" --resume >/dev/null 2>&1
    if [ "$(metrics "$work/run")" = "$reference" ]; then same=$((same + 1)); verdict=equal; else verdict=DIFFERENT; fi
    printf 'kill %2d: rank %d at step %3d, killed job exited %4.1f s after its start, resumed model %s\n' "$i" "$rank" "$step" "$died" "$verdict"
done
echo "$same of $kills resumed models score the test day as the uninterrupted run"
