#!/bin/bash
# Time per epoch against the number of graph edges: FRAME trained one epoch on simulated logs
# of 25k, 50k, 100k and 200k impressions (same users/videos), peak memory from /usr/bin/time.
set -e
BIN=target/release/seesaw
OUT=runs/frame/scale
for n in 25000 50000 100000 200000; do
  sed -e "s/^n_impressions = 100000/n_impressions = $n/" -e "s/^epochs = 2/epochs = 1/" \
      configs/simulator-frame.toml > $OUT/n$n.toml
  /usr/bin/time -f "n$n wall %e s, max RSS %M KB" $BIN train --config $OUT/n$n.toml --out $OUT/n$n --json > $OUT/n$n.json 2>> $OUT/times.log
done
echo done >> $OUT/times.log
