#!/usr/bin/env python3
"""DLEN against its base architecture, several seeds, on a simulator whose emotion states and
objectionable videos are known, or on a real log (no truth: the truth figures are left out).

For each seed it trains the base and the DLEN model of one run config, scores the test day with
`seesaw eval --json --predictions`, and reports:
  - each task's AUC (base, DLEN);
  - the AUC of e on the confident rows, on liked against hated impressions (beside the base's
    p(like) - p(hate) on the same rows) and, on the simulator, against the true emotion state;
  - the top 10% of the test rows by fused score: hate rate and engagement rate, for the base, for
    DLEN and for DLEN without e in its fusion (with Wilson 95% intervals pooled over seeds);
  - on the simulator, per user with at least 2K test impressions, the share of objectionable
    videos and the engagement in the user's top-K under the base fusion, the DLEN fusion, DLEN
    without e, and the oracle (the same fusion on the true probabilities and true P(emotion)).

A benchmark aid, not a test: it only runs the `seesaw` binary and reads its files.

    python3 scripts/dlen_study.py --config configs/simulator-dlen.toml --seeds 0 1 2 3 4 \
        --out runs/dlen-sim
    python3 scripts/dlen_study.py --config configs/kuairand-dlen.toml --seeds 0 1 2 \
        --out runs/dlen-kuairand
"""

import argparse
import csv
import json
import math
import os
import re
import statistics
import subprocess
import sys
from collections import defaultdict

ENGAGEMENT = ["like", "follow", "comment", "long_view"]


def auc(scores, labels):
    """Mann-Whitney AUC with ties counted half; None without both classes."""
    pairs = sorted(zip(scores, labels))
    n_pos = sum(1 for _, y in pairs if y)
    n_neg = len(pairs) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mid_rank = (i + 1 + j) / 2.0
        rank_sum += mid_rank * sum(1 for k in range(i, j) if pairs[k][1])
        i = j
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def wilson(successes, n, z=1.96):
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (c - h, c + h)


def mean_sd(values):
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def run(cmd):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def config_with(text, seed, architecture, keep_emotion):
    """The run config with its [train] seed and [model] architecture replaced (and, for the base
    model, which has no emotion score, its fusion without it)."""
    text = re.sub(r"(?m)^architecture = .*$", f"architecture = {architecture}", text)
    if not keep_emotion:
        text = re.sub(r",? *emotion = [0-9.]+", "", text)
    return re.sub(r"(?m)^\[train\]$", f"[train]\nseed = {seed}", text, count=1)


def fused(weights, demote, row):
    score = sum(w * row[name] for name, w in weights.items())
    for name, strength in demote.items():
        score *= (1.0 - min(max(row[name], 0.0), 1.0)) ** strength
    return score


def top_k_by_user(rows, key, k, min_rows):
    by_user = defaultdict(list)
    for r in rows:
        by_user[r["user_id"]].append(r)
    chosen = []
    for user_rows in by_user.values():
        if len(user_rows) >= min_rows:
            chosen.extend(sorted(user_rows, key=key, reverse=True)[:k])
    return chosen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seesaw", default="target/release/seesaw")
    ap.add_argument("--top-k", type=int, default=10)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    text = open(args.config).read()
    dlen_arch = re.search(r"(?m)^architecture = (.*)$", text).group(1)
    base_arch = re.search(r"base = (\{[^{}]*\})", dlen_arch).group(1)
    fusion_weights = dict(
        (m.group(1), float(m.group(2)))
        for m in re.finditer(r"(\w+) = ([0-9.]+)", re.search(r"(?m)^weights = \{(.*)\}$", text).group(1))
    )
    fusion_demote = dict(
        (m.group(1), float(m.group(2)))
        for m in re.finditer(r"(\w+) = ([0-9.]+)", re.search(r"(?m)^demote = \{(.*)\}$", text).group(1))
    )
    base_weights = {k: v for k, v in fusion_weights.items() if k != "emotion"}
    config_dir = os.path.dirname(os.path.abspath(args.config))

    results = defaultdict(list)
    pooled = defaultdict(lambda: [0, 0])
    for seed in args.seeds:
        evals = {}
        for name, arch in [("base", base_arch), ("dlen", dlen_arch)]:
            model = os.path.join(args.out, f"{name}-seed{seed}")
            # Beside the config, so that its relative paths still hold; named per process, so
            # that studies run side by side do not overwrite each other's.
            cfg = os.path.join(config_dir, f".dlen-study-{os.getpid()}-{name}-{seed}.toml")
            if not os.path.exists(os.path.join(model, "manifest.json")):
                with open(cfg, "w") as f:
                    f.write(config_with(text, seed, arch, keep_emotion=(name == "dlen")))
                try:
                    run([args.seesaw, "train", "--config", cfg, "--out", model])
                finally:
                    os.remove(cfg)
            evals[name] = model
        # The test day: the simulator's last date, or the real config's day after valid_end.
        sim_dir = os.path.join(evals["base"], "simulator")
        simulated = os.path.isdir(sim_dir)
        if simulated:
            log_path = os.path.join(sim_dir, "log_standard_sim.csv")
        else:
            rel = re.search(r'(?ms)^\[dataset\.log\]\s*path = "([^"]+)"', text).group(1)
            log_path = os.path.normpath(os.path.join(config_dir, rel))
        with open(log_path) as f:
            reader = csv.DictReader(f)
            log = list(reader)
            header = reader.fieldnames
        last_date = max(r["date"] for r in log)
        test_index = [i for i, r in enumerate(log) if r["date"] == last_date]
        test_log = os.path.join(args.out, f"test-seed{seed}.csv")
        with open(test_log, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=header)
            w.writeheader()
            for i in test_index:
                w.writerow(log[i])
        truth = None
        if simulated:
            with open(os.path.join(sim_dir, "truth.csv")) as f:
                all_truth = list(csv.DictReader(f))
            truth = [all_truth[i] for i in test_index]

        scored = {}
        for name, model in evals.items():
            pred_path = os.path.join(args.out, f"{name}-seed{seed}-predictions.csv")
            report = json.loads(
                run([args.seesaw, "eval", "--json", "--model", model, "--log", test_log,
                     "--predictions", pred_path])
            )
            with open(pred_path) as f:
                preds = list(csv.DictReader(f))
            scored[name] = (report, preds)
            for task, m in report["tasks"].items():
                if "auc" in m:
                    results[(name, f"auc {task}")].append(m["auc"])
        (base_report, base_preds), (dlen_report, dlen_preds) = scored["base"], scored["dlen"]
        # Rows dropped by cleaning are absent from the predictions, whose `row` counts the rows
        # kept: walk the test log in order and match each prediction's user and video.
        if [(p["user_id"], p["video_id"]) for p in base_preds] != [
            (p["user_id"], p["video_id"]) for p in dlen_preds
        ]:
            sys.exit("the two models scored different rows")
        kept, j = [], 0
        for p in base_preds:
            while (log[test_index[j]]["user_id"], log[test_index[j]]["video_id"]) != (p["user_id"], p["video_id"]):
                j += 1
            kept.append(j)
            j += 1
        test_index = [test_index[r] for r in kept]
        if truth is not None:
            truth = [truth[r] for r in kept]
        for key in ["auc_confident", "auc_like_vs_hate"]:
            results[("dlen", f"e: {key}")].append(dlen_report["emotion"][key])
        for name, report in [("base", base_report), ("dlen", dlen_report)]:
            d = report["demotion"]
            results[(name, "top 10%: hate rate")].append(d["hate_rate"])
            results[(name, "top 10%: engagement rate")].append(d["engagement_rate"])
            if d.get("hate_rate_without_emotion") is not None:
                results[(name, "top 10% without e: hate rate")].append(d["hate_rate_without_emotion"])
                results[(name, "top 10% without e: engagement rate")].append(
                    d["engagement_rate_without_emotion"])
        # The base's own separation of liked from hated rows: p(like) - p(hate).
        liked = [(i, int(r["is_like"])) for i, r in enumerate(log[j] for j in test_index)
                 if int(r["is_like"]) != int(r["is_hate"])]
        if liked:
            s = [float(base_preds[i]["like"]) - float(base_preds[i]["hate"]) for i, _ in liked]
            results[("base", "p(like) - p(hate): auc_like_vs_hate")].append(auc(s, [y for _, y in liked]))
            s = [float(dlen_preds[i]["like"]) - float(dlen_preds[i]["hate"]) for i, _ in liked]
            results[("dlen", "p(like) - p(hate): auc_like_vs_hate")].append(auc(s, [y for _, y in liked]))
        n_top = math.ceil(0.1 * len(test_index))
        for name, preds, weights in [("base", base_preds, base_weights), ("dlen", dlen_preds, fusion_weights)]:
            rows = [{k: float(v) for k, v in p.items() if k not in ("user_id", "video_id")} for p in preds]
            order = sorted(range(len(rows)), key=lambda i: fused(weights, fusion_demote, rows[i]), reverse=True)
            hated = sum(int(log[test_index[i]]["is_hate"]) for i in order[:n_top])
            pooled[(name, "top 10% hate")][0] += hated
            pooled[(name, "top 10% hate")][1] += n_top

        # Per user, top-K over users with at least 2K test impressions: observed hate and
        # engagement in each user's top K (K = 3 on a real log of ~3 impressions per user a day).
        k_real = 3 if truth is None else args.top_k
        for name, preds, weights in [
            ("base", base_preds, base_weights),
            ("dlen", dlen_preds, fusion_weights),
            ("dlen without e", dlen_preds, base_weights),
        ]:
            rows = [{"user_id": p["user_id"], "i": i,
                     "score": fused(weights, fusion_demote,
                                    {kk: float(v) for kk, v in p.items() if kk not in ("user_id", "video_id")})}
                    for i, p in enumerate(preds)]
            top = top_k_by_user(rows, lambda r: r["score"], k_real, 2 * k_real)
            if top:
                users = len(top) // k_real
                hated = [int(log[test_index[r["i"]]]["is_hate"]) for r in top]
                results[(name, f"top-{k_real} per user ({users} users): hate rate (observed)")].append(
                    statistics.mean(hated))
                pooled[(name, f"top-{k_real} per user hate")][0] += sum(hated)
                pooled[(name, f"top-{k_real} per user hate")][1] += len(hated)
                results[(name, f"top-{k_real} per user: any engagement (observed)")].append(statistics.mean(
                    int(any(int(log[test_index[r["i"]]][c]) for c in ["is_like", "is_follow", "is_comment", "long_view"]))
                    for r in top))

        if truth is not None:
            e = [float(p["emotion"]) for p in dlen_preds]
            results[("dlen", "e: auc against the true emotion state")].append(
                auc(e, [int(t["emotion"]) for t in truth]))
            results[("dlen", "e: auc against the true P(emotion) > 0.5")].append(
                auc(e, [float(t["p_emotion"]) > 0.5 for t in truth]))
            k = args.top_k
            rankings = {}
            for name, preds, weights in [
                ("base", base_preds, base_weights),
                ("dlen", dlen_preds, fusion_weights),
                ("dlen without e", dlen_preds, base_weights),
            ]:
                rankings[name] = [
                    dict({kk: float(v) for kk, v in p.items() if kk not in ("user_id", "video_id")},
                         user_id=p["user_id"], i=i,
                         score=fused(weights, fusion_demote,
                                     {kk: float(v) for kk, v in p.items() if kk not in ("user_id", "video_id")}))
                    for i, p in enumerate(preds)
                ]
            oracle = []
            for i, t in enumerate(truth):
                row = {task: float(t[f"p_{task}"]) for task in fusion_weights if f"p_{task}" in t}
                row["emotion"] = float(t["p_emotion"])
                row["hate"] = float(t["p_hate"])
                w = {kk: v for kk, v in fusion_weights.items() if kk in row}
                oracle.append({"user_id": t["user_id"], "i": i, "score": fused(w, fusion_demote, row)})
            rankings["oracle"] = oracle
            # Engagement alone (click), as a feed without any demotion would rank, and the same
            # with e added: does e alone keep objectionable videos out?
            for name, preds, weights in [
                ("base, click only", base_preds, {"click": 1.0}),
                ("dlen, click + e", dlen_preds, {"click": 1.0, "emotion": 1.0}),
            ]:
                rankings[name] = [
                    {"user_id": p["user_id"], "i": i,
                     "score": fused(weights, {}, {kk: float(p[kk]) for kk in weights})}
                    for i, p in enumerate(preds)
                ]
            results[("oracle", "true P(emotion): auc against the true emotion state")].append(
                auc([float(t["p_emotion"]) for t in truth], [int(t["emotion"]) for t in truth]))
            for name, rows in rankings.items():
                top = top_k_by_user(rows, lambda r: r["score"], k, 2 * k)
                if not top:
                    continue
                obj = statistics.mean(int(truth[r["i"]]["objectionable"]) for r in top)
                eng = statistics.mean(
                    int(any(int(log[test_index[r["i"]]][c]) for c in ["is_like", "is_follow", "is_comment", "long_view"]))
                    for r in top)
                true_eng = statistics.mean(
                    sum(float(truth[r["i"]][f"p_{c}"]) for c in ENGAGEMENT) for r in top)
                users = len(top) // k
                results[(name, f"top-{k} per user ({users} users): objectionable share")].append(obj)
                results[(name, f"top-{k} per user: engagement rate (observed)")].append(eng)
                results[(name, f"top-{k} per user: expected engagements (truth)")].append(true_eng)
            results[("all", "objectionable share of test impressions")].append(
                statistics.mean(int(t["objectionable"]) for t in truth))

    lines = [f"# DLEN study: {args.config}, seeds {args.seeds}", "",
             "| model | figure | mean ± sd over seeds |", "| --- | --- | --- |"]
    for (name, figure), values in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        lines.append(f"| {name} | {figure} | {mean_sd(values)} |")
    lines += ["", "Hate rates pooled over seeds (Wilson 95%):", ""]
    for (name, what), (hits, n) in sorted(pooled.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        lo, hi = wilson(hits, n)
        lines.append(f"- {what}, {name}: {hits}/{n} = {hits / max(n, 1):.4f} [{lo:.4f}, {hi:.4f}]")
    report = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "dlen-study.md"), "w") as f:
        f.write(report)
    print(report)


if __name__ == "__main__":
    main()
