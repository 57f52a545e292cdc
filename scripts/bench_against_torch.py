#!/usr/bin/env python3
"""Seesaw against PyTorch on the same machine in the same run (issue 12).

Runs `seesaw bench train --json` and scripts/torch_reference_mmoe.py --json with the same
--steps/--warmup/--seed, alternating them for --rounds rounds (the order flips every round, so
neither always runs second on a warmer or busier machine), and prints a markdown table: per
measure, Seesaw and PyTorch as the median over rounds with the min-max, and the ratio
Seesaw / PyTorch of the medians (with the min-max of the per-round ratios).

`seesaw bench train` has no batch-size flag: one run times training at batch 512 and 4096 and
inference at batch 1024, and so does the torch script.

Threads: torch gets --threads (torch.set_num_threads); seesaw gets RAYON_NUM_THREADS set to the
same number (burn's flex backend runs on rayon's global pool).

Peak RSS is measured the same way for both: each process reports its own VmHWM from
/proc/self/status at the end of its run (bench_data.rs `peak_rss_bytes`; the torch script reads
the same line). The PyTorch figure includes the interpreter and libtorch; the row "PyTorch RSS
after import torch" shows how much of it that is.

Run it with the Python that has torch (the torch script is started with this interpreter):
    /work/torch-venv/bin/python scripts/bench_against_torch.py target/release/seesaw
Standard library only (torch is needed by the child script, not here).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

TORCH_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_reference_mmoe.py")


def run_json(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out)


def measures(report):
    """(name, value, higher is better) of one report."""
    rows = [(f"training samples/s, batch {t['batch_size']}", t["samples_per_second"], True)
            for t in report["training"]]
    i = report["inference"]
    rows.append((f"inference samples/s, batch {i['batch_size']}", i["samples_per_second"], True))
    rows.append(("peak RSS (MiB)", report["peak_rss_bytes"] / 2**20, False))
    return rows


def span(values, fmt):
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}–{fmt(max(values))})"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("seesaw", nargs="?", default="target/release/seesaw")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--torch-args", default="", help="extra flags, e.g. '--adam fused'")
    p.add_argument("--embedding-updates", choices=["dense", "lazy"], default="dense",
                   help="lazy: Seesaw's lazy embedding updates against PyTorch's sparse "
                        "embeddings and SparseAdam")
    args = p.parse_args()

    common = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--seed", str(args.seed),
              "--json"]
    seesaw_cmd = [args.seesaw, "bench", "train", *common,
                  "--embedding-updates", args.embedding_updates]
    torch_cmd = [sys.executable, TORCH_SCRIPT, *common, "--threads", str(args.threads),
                 "--embeddings", "sparse" if args.embedding_updates == "lazy" else "dense",
                 *args.torch_args.split()]
    seesaw_env = {**os.environ, "RAYON_NUM_THREADS": str(args.threads)}

    seesaw, torch = [], []
    for r in range(args.rounds):
        runs = [("seesaw", lambda: seesaw.append(run_json(seesaw_cmd, seesaw_env))),
                ("pytorch", lambda: torch.append(run_json(torch_cmd)))]
        for name, go in runs if r % 2 == 0 else runs[::-1]:
            print(f"round {r + 1}/{args.rounds}: {name}", file=sys.stderr)
            go()

    print(f"Seesaw: {seesaw[0]['model']}, {seesaw[0]['num_params']} parameters  ")
    print(f"PyTorch: {torch[0]['model']}, {torch[0]['num_params']} parameters  ")
    print(f"{args.rounds} rounds of {args.steps} timed steps (+{args.warmup} warm-up), "
          f"{args.threads} threads; median (min–max) over rounds\n")
    print("| measure | Seesaw | PyTorch | Seesaw / PyTorch |")
    print("|---|---|---|---|")
    per_round = [list(zip(measures(s), measures(t))) for s, t in zip(seesaw, torch)]
    for m in range(len(per_round[0])):
        name, _, higher = per_round[0][m][0]
        s = [rnd[m][0][1] for rnd in per_round]
        t = [rnd[m][1][1] for rnd in per_round]
        ratios = [a / b for a, b in zip(s, t)]
        ratio = statistics.median(s) / statistics.median(t)
        note = "higher is better" if higher else "lower is better"
        print(f"| {name} | {span(s, '{:,.0f}'.format)} | {span(t, '{:,.0f}'.format)} | "
              f"{ratio:.2f} ({min(ratios):.2f}–{max(ratios):.2f}; {note}) |")
    base = [t["baseline_rss_bytes"] / 2**20 for t in torch]
    print(f"| PyTorch RSS after import torch (MiB) | | {span(base, '{:,.0f}'.format)} | |")


if __name__ == "__main__":
    main()
