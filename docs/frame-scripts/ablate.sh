#!/bin/bash
# FRAME ablations on the simulator: 3 seeds each, FRAME alone (the other architectures are in
# the main comparison, runs/sim-frame).
set -e
BIN=target/release/seesaw
BASE=configs/simulator-frame.toml
OUT=runs/frame/ablate
run() { # name, n_clips, frame table
  local name=$1 nc=$2 arch=$3
  sed -e "s/^n_clips = 4/n_clips = $nc/" -e "s/^clips = 4/clips = $nc/" \
      -e '/^architectures = \[/,/^\]/d' $BASE > $OUT/$name.toml
  printf 'architectures = [\n    %s,\n]\n' "$arch" >> $OUT/$name.toml
  /usr/bin/time -f "$name wall %e s, max RSS %M KB" $BIN compare --config $OUT/$name.toml --out $OUT/$name --json > $OUT/$name.json 2>> $OUT/times.log
}
run nc1 1 '{ kind = "frame", n_clips = 1, features = "linear" }'
run nc8 8 '{ kind = "frame", n_clips = 8, features = "linear" }'
run feat_none 4 '{ kind = "frame", n_clips = 4, features = "none" }'
run feat_raw 4 '{ kind = "frame", n_clips = 4, features = "raw" }'
run no_neg 4 '{ kind = "frame", n_clips = 4, use_negative_graph = false, alpha_n = 0.0 }'
run no_bpr 4 '{ kind = "frame", n_clips = 4, bpr_weight = 0.0 }'
run code 4 '{ kind = "frame", n_clips = 4, normalization = "row", alpha_p = 1.0, alpha_n = 0.0, video_score = "sum", bpr_scope = "batch", share_gcn_weights = true, trainable_features = true, clip_weighting = "watched_fraction" }'
run mmoe_nc1 1 '{ kind = "mmoe", experts = 4, expert_hidden = [64, 32], gate_temperature = 1.0 }'
run mmoe_nc8 8 '{ kind = "mmoe", experts = 4, expert_hidden = [64, 32], gate_temperature = 1.0 }'
echo done >> $OUT/times.log
