#!/usr/bin/env python3
"""The CMI estimator against the simulator's truth, at dependence 0, 0.3 and 0.6.

For each level: simulate and train configs/simulator-cmi.toml's MMoE (`seesaw train`), take the
test day (the log's last date) as the estimation log, run `seesaw cmi --json` with both samplers and both bounds,
and set each pair's estimate beside the true CMI of <model>/simulator/true_cmi.json. Prints a
markdown table per level and the rank correlation / relative error per sampler; writes
everything as JSON to <out>/cmi_study.json.

    python3 scripts/cmi_study.py [--seesaw target/release/seesaw] [--out runs/cmi-study]
"""

import argparse
import csv
import json
import os
import re
import subprocess
import sys


# Each estimate: the sampler, then how the critics' scores become nats.
SAMPLERS = ["kernel/log-ratio", "variational/log-ratio", "kernel/dv", "variational/dv"]


def ranks(values):
    order = sorted(range(len(values)), key=lambda i: values[i])
    r = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2.0
        i = j + 1
    return r


def spearman(x, y):
    rx, ry = ranks(x), ranks(y)
    n = len(x)
    mx, my = sum(rx) / n, sum(ry) / n
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    vx = sum((a - mx) ** 2 for a in rx) ** 0.5
    vy = sum((b - my) ** 2 for b in ry) ** 0.5
    return cov / (vx * vy) if vx > 0 and vy > 0 else float("nan")


def run(cmd):
    print("$", " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE)
    return out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seesaw", default="target/release/seesaw")
    ap.add_argument("--config", default="configs/simulator-cmi.toml")
    ap.add_argument("--out", default="runs/cmi-study")
    ap.add_argument("--levels", default="0,0.3,0.6")
    ap.add_argument("--max-rows", default="40000")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    base = open(args.config).read()
    results = {}
    for level in [float(v) for v in args.levels.split(",")]:
        name = f"dep{level:g}"
        config = os.path.join(args.out, f"{name}.toml")
        with open(config, "w") as f:
            f.write(re.sub(r"(?m)^dependence = .*$", f"dependence = {level}", base))
        model = os.path.join(args.out, name)
        if not os.path.exists(os.path.join(model, "manifest.json")):
            run([args.seesaw, "train", "--json", "--config", config, "--out", model])
        sim = os.path.join(model, "simulator")
        truth = json.load(open(os.path.join(sim, "true_cmi.json")))
        log = os.path.join(sim, "log_standard_sim.csv")
        test_log = os.path.join(args.out, f"{name}-test.csv")
        with open(log) as f:
            rows = list(csv.reader(f))
        header, rows = rows[0], rows[1:]
        date = header.index("date")
        last = max(r[date] for r in rows)
        with open(test_log, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(r for r in rows if r[date] == last)
        level_result = {"truth": truth["pairs"], "estimates": {}}
        for sampler in SAMPLERS:
            kind, bound = sampler.split("/")
            out = run([args.seesaw, "cmi", "--json", "--sampler", kind, "--bound", bound,
                       "--model", model, "--log", test_log, "--max-rows", args.max_rows])
            level_result["estimates"][sampler] = json.loads(out)
        results[level] = level_result

        true_of = {(p["a"], p["b"]): p["cmi"] for p in truth["pairs"]}
        true_of.update({(p["b"], p["a"]): p["cmi"] for p in truth["pairs"]})
        print(f"\n### dependence {level:g}\n")
        print("| pair | true | " + " | ".join(f"{s} [95%]" for s in SAMPLERS) + " |")
        print("|---|---|" + "---|" * len(SAMPLERS))
        est = level_result["estimates"]
        cell = lambda p: f"{p['cmi']:.4f} [{p['low']:.4f}, {p['high']:.4f}]"
        for i, pk in enumerate(est[SAMPLERS[0]]["pairs"]):
            t = true_of.get((pk["a"], pk["b"]))
            cells = " | ".join(cell(est[s]["pairs"][i]) for s in SAMPLERS)
            print(f"| {pk['a']}–{pk['b']} | {t:.4f} | {cells} |", flush=True)
        for sampler in SAMPLERS:
            pairs = [p for p in est[sampler]["pairs"] if (p["a"], p["b"]) in true_of]
            t = [true_of[(p["a"], p["b"])] for p in pairs]
            e = [p["cmi"] for p in pairs]
            rel = sorted(abs(a - b) / b for a, b in zip(e, t) if b > 1e-4)
            covered = sum(p["low"] <= true_of[(p["a"], p["b"])] <= p["high"] for p in pairs)
            summary = {
                "spearman": spearman(t, e),
                "median_relative_error": rel[len(rel) // 2] if rel else None,
                "intervals_containing_truth": f"{covered}/{len(pairs)}",
                "intervals_containing_zero": f"{sum(p['low'] <= 0 <= p['high'] for p in pairs)}/{len(pairs)}",
                "max_estimate": max(e),
            }
            level_result[f"summary_{sampler}"] = summary
            print(f"\n{sampler}: {json.dumps(summary)}", flush=True)
    with open(os.path.join(args.out, "cmi_study.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
