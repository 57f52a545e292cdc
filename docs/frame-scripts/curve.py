"""The per-video clip-score curve (the paper's figure): for the most-viewed test-day videos,
FRAME's mean predicted continuation probability per clip against the observed share of the
users who reached the clip and watched it through, and the observed share still watching."""
import csv, collections, sys
import matplotlib; matplotlib.use("Agg")
import matplotlib.pyplot as plt
pred, log, out = sys.argv[1], sys.argv[2], sys.argv[3]
NC = 4
rows = list(csv.DictReader(open(log)))
test_day = max(r["date"] for r in rows)
preds = {int(r["row"]): r for r in csv.DictReader(open(pred))}
by_video = collections.defaultdict(list)
for i, r in enumerate(rows):
    if r["date"] == test_day and i in preds and int(r["duration_ms"]) > 0:
        by_video[r["video_id"]].append((int(r["play_time_ms"]) / int(r["duration_ms"]), preds[i]))
top = sorted(by_video, key=lambda v: -len(by_video[v]))[:4]
fig, axes = plt.subplots(1, 4, figsize=(14, 3.4), sharey=True)
lines = []
for ax, v in zip(axes, top):
    views = by_video[v]
    score = [sum(float(p[f"clip_{i}"]) for _, p in views) / len(views) for i in range(NC)]
    reached = [sum(1 for r, _ in views if r >= i / NC) for i in range(NC)]
    through = [sum(1 for r, _ in views if r >= (i + 1) / NC) for i in range(NC)]
    cont = [t / n if n else float("nan") for t, n in zip(through, reached)]
    still = [t / len(views) for t in through]
    x = range(1, NC + 1)
    ax.plot(x, score, "o-", label="FRAME σ(s_i), mean over views")
    ax.plot(x, cont, "s--", label="observed P(watch clip i | reached it)")
    ax.plot(x, still, "^:", label="observed share still watching after clip i")
    ax.set_title(f"video {v} ({len(views)} test views)")
    ax.set_xlabel("clip"); ax.set_xticks(list(x))
    lines.append((v, len(views), score, cont, still))
axes[0].set_ylabel("probability"); axes[0].legend(fontsize=7, loc="lower left")
fig.tight_layout(); fig.savefig(out, dpi=110)
for v, n, s, c, st in lines:
    print(f"| {v} | {n} | " + " / ".join(f"{a:.2f}" for a in s) + " | " + " / ".join(f"{a:.2f}" for a in c) + " | " + " / ".join(f"{a:.2f}" for a in st) + " |")
