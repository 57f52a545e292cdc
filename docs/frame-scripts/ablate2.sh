#!/bin/bash
# The negative-graph ablation again with tanh (bias-free ReLU layers can start dead), beside
# the paper defaults with tanh.
set -e
BIN=target/release/seesaw
BASE=configs/simulator-frame.toml
OUT=runs/frame/ablate
run() {
  local name=$1 arch=$2
  sed -e '/^architectures = \[/,/^\]/d' $BASE > $OUT/$name.toml
  printf 'architectures = [\n    %s,\n]\n' "$arch" >> $OUT/$name.toml
  /usr/bin/time -f "$name wall %e s, max RSS %M KB" $BIN compare --config $OUT/$name.toml --out $OUT/$name --json > $OUT/$name.json 2>> $OUT/times2.log
}
run tanh '{ kind = "frame", n_clips = 4, activation = "tanh" }'
run no_neg_tanh '{ kind = "frame", n_clips = 4, activation = "tanh", use_negative_graph = false, alpha_n = 0.0 }'
echo done >> $OUT/times2.log
