#!/bin/bash
# Issue 11, the last rows: MMoE and CGC in the N_c = 1 and 8 worlds (3 seeds each, same simulator
# seed 42 as the ablations, so single-task must repeat the ablation tables' reference), and FRAME
# at N_c = 4 and 8 again for the clip-curve measurement that compare now makes.
set -e
BIN=${BIN:-target/release/seesaw}
BASE=configs/simulator-frame.toml
OUT=${OUT:-runs/frame/worlds}; mkdir -p $OUT
MMOE='{ kind = "mmoe", experts = 4, expert_hidden = [64, 32], gate_temperature = 1.0 }'
CGC='{ kind = "cgc", shared_experts = 2, task_experts = 1, expert_hidden = [64, 32], gate_temperature = 1.0 }'
run() { # name, n_clips, architectures...
  local name=$1 nc=$2; shift 2
  sed -e "s/^n_clips = 4/n_clips = $nc/" -e "s/^clips = 4/clips = $nc/" \
      -e "s/^architecture = { kind = \"frame\", n_clips = 4/architecture = { kind = \"frame\", n_clips = $nc/" \
      -e '/^architectures = \[/,/^\]/d' $BASE > $OUT/$name.toml
  { echo 'architectures = ['; for a in "$@"; do echo "    $a,"; done; echo ']'; } >> $OUT/$name.toml
  /usr/bin/time -f "$name wall %e s, max RSS %M KB" $BIN compare --config $OUT/$name.toml --out $OUT/$name --json > $OUT/$name.json 2>> $OUT/times.log
}
run nc1_mmoe_cgc 1 "$MMOE" "$CGC"
run nc8_mmoe_cgc 8 "$MMOE" "$CGC"
run nc4_frame 4 '{ kind = "frame", n_clips = 4, features = "linear", dim = 32, gcn_layers = 1 }'
run nc8_frame 8 '{ kind = "frame", n_clips = 8, features = "linear", dim = 32, gcn_layers = 1 }'
echo done >> $OUT/times.log
