#!/usr/bin/env python3
"""PyTorch twin of `seesaw bench train` (issue 12): the same reference MMoE, batches, optimiser and
measurements, printing JSON with the same field names as `seesaw bench train --json`.

Mirrors crates/seesaw-cli/src/commands/bench_train.rs:
- ids user_id/video_id/video_category with vocabularies 30,000/10,000/50, embedded in 16 dims
  (N(0, 0.05) init), plus 10 dense features as they are: input width 3*16 + 10 = 58;
- 4 experts of Linear+ReLU [128, 64], computed as one batched matmul per layer like
  blocks/expert_bank.rs (`--experts loop` runs 4 separate nn.Sequential instead);
- per task a softmax gate Linear(58 -> 4) reading the same input as the experts, and a tower
  Linear(64 -> 32)+ReLU, Linear(32 -> 1);
- tasks: click (binary, BCE with logits) and watch_ratio (regression, sigmoid head, MSE), each
  the mean over the rows whose mask is 1, summed with weight 1;
- plain Adam, lr 1e-3, betas (0.9, 0.999), eps 1e-5 (burn's AdamConfig defaults; burn's eps is
  applied as eps*sqrt(1-beta2^t) to sqrt(v), which equals torch's sqrt(v_hat) + eps), dense
  embedding gradients; `--embeddings sparse` (the twin of `--embedding-updates lazy`) gives the
  tables sparse gradients stepped by SparseAdam, the rest of the model Adam;
- the batches are the Rust command's, bit for bit: its SplitMix64 stream, seeded the same way;
- each measurement builds a fresh model (and optimiser), runs `--warmup` untimed steps and
  `--steps` timed ones; a step includes turning the batch into tensors (a copy, as
  ModelInput::from_batch does), reading each task loss back to the host, backward and Adam;
  inference (batch 1024) is the model in no-grad eval mode, predictions copied out;
- peak_rss_bytes is this process's VmHWM from /proc/self/status, as the Rust command reads it.
  It includes the Python interpreter and libtorch: baseline_rss_bytes (VmRSS right after
  `import torch`, an extra field) tells how much of it that is.

Standard library + torch only. Usage: python scripts/torch_reference_mmoe.py --steps 20 --json
"""

import argparse
import json
import os
import time
import warnings

# The PyPI build warns at import when numpy is absent; nothing here uses numpy.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402


def rss_line(key):
    """Bytes of a Vm* line of /proc/self/status (VmHWM = peak resident, VmRSS = now)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


BASELINE_RSS = rss_line("VmRSS")

TRAIN_BATCHES = [512, 4096]
INFERENCE_BATCH = 1024
TRAIN_TARGET, INFERENCE_TARGET = 40_000.0, 200_000.0
VOCABULARIES = [30_000, 10_000, 50]
N_DENSE, EMBEDDING_DIM, N_EXPERTS = 10, 16, 4
EXPERT_HIDDEN, TOWER_HIDDEN = [128, 64], [32]
N_TASKS = 2  # click (binary), watch_ratio (regression)
DISTINCT_BATCHES = 4
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-5
M64 = (1 << 64) - 1


class SplitMix:
    """bench_train.rs's SplitMix64, so both programs train on the same numbers."""

    def __init__(self, seed):
        self.s = seed & M64

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & M64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def below(self, n):
        return self.next() % n

    def unit(self):
        return (self.next() >> 40) / float(1 << 24)


def random_batches(size, seed):
    """bench_train.rs `random_batches`, draw for draw: (ids int32 [B,3], dense [B,10],
    labels [T,B], masks [T,B]) as tensors, prepared before timing."""
    rng = SplitMix(seed ^ ((size * 0xA0761D6478BD642F) & M64))
    batches = []
    for _ in range(DISTINCT_BATCHES):
        ids = [rng.below(v) for _ in range(size) for v in VOCABULARIES]
        dense = [rng.unit() * 4.0 - 2.0 for _ in range(size * N_DENSE)]
        click = [float(rng.unit() < 0.4) for _ in range(size)]
        watch, watch_mask = [], []
        for _ in range(size):
            watch.append(rng.unit())
            watch_mask.append(1.0 if rng.unit() < 0.9 else 0.0)
        for _ in range(size):  # user_group: unused here, drawn to keep the stream aligned
            rng.below(1000)
        batches.append((
            torch.tensor(ids, dtype=torch.int32).reshape(size, len(VOCABULARIES)),
            torch.tensor(dense, dtype=torch.float32).reshape(size, N_DENSE),
            torch.tensor([click, watch], dtype=torch.float32),
            torch.tensor([[1.0] * size, watch_mask], dtype=torch.float32),
        ))
    return batches


def linear_like(t, fan_in):
    """burn's KaimingUniform(gain 1/sqrt 3) = torch's Linear default: U(-1/sqrt fan_in, ...)."""
    bound = 1.0 / fan_in ** 0.5
    return nn.Parameter(t.uniform_(-bound, bound))


class Mmoe(nn.Module):
    def __init__(self, experts="batched", sparse=False):
        super().__init__()
        self.embeddings = nn.ModuleList(
            nn.Embedding(v, EMBEDDING_DIM, sparse=sparse) for v in VOCABULARIES)
        for e in self.embeddings:
            nn.init.normal_(e.weight, 0.0, 0.05)
        d = len(VOCABULARIES) * EMBEDDING_DIM + N_DENSE
        self.batched = experts == "batched"
        if self.batched:  # expert_bank.rs: weights [n, in, out], bias [n, 1, out]
            self.weights, self.biases, d_in = nn.ParameterList(), nn.ParameterList(), d
            for d_out in EXPERT_HIDDEN:
                self.weights.append(linear_like(torch.empty(N_EXPERTS, d_in, d_out), d_in))
                self.biases.append(linear_like(torch.empty(N_EXPERTS, 1, d_out), d_in))
                d_in = d_out
        else:
            self.experts = nn.ModuleList(mlp(d, EXPERT_HIDDEN) for _ in range(N_EXPERTS))
        self.gates = nn.ModuleList(nn.Linear(d, N_EXPERTS) for _ in range(N_TASKS))
        self.towers = nn.ModuleList(
            nn.Sequential(mlp(EXPERT_HIDDEN[-1], TOWER_HIDDEN), nn.Linear(TOWER_HIDDEN[-1], 1))
            for _ in range(N_TASKS)
        )

    def forward(self, ids, dense):
        """Raw tower outputs [B, 1] per task: click's logit, watch_ratio before its sigmoid."""
        parts = [table(ids[:, j]) for j, table in enumerate(self.embeddings)]
        x = torch.cat(parts + [dense], 1)  # [B, 58]
        if self.batched:
            h = x.unsqueeze(0).expand(N_EXPERTS, *x.shape)  # [n, B, 58]
            for w, b in zip(self.weights, self.biases):
                h = torch.relu(torch.matmul(h, w) + b)
        else:
            h = torch.stack([e(x) for e in self.experts])  # [n, B, 64]
        out = []
        for gate, tower in zip(self.gates, self.towers):
            g = torch.softmax(gate(x), 1)  # [B, n]
            mixed = (h * g.t().unsqueeze(-1)).sum(0)  # gate.rs `mix`: [B, 64]
            out.append(tower(mixed))
        return out


def mlp(d_in, hidden):
    layers = []
    for d_out in hidden:
        layers += [nn.Linear(d_in, d_out), nn.ReLU()]
        d_in = d_out
    return nn.Sequential(*layers)


def to_input(batch):
    """ModelInput/ModelTargets::from_batch: copy the host buffers into fresh tensors."""
    ids, dense, labels, masks = batch
    return ids.long(), dense.clone(), labels.clone(), masks.clone()


def time_training(batches, args):
    torch.manual_seed(args.seed)
    sparse = args.embeddings == "sparse"
    model = Mmoe(args.experts, sparse)
    impl = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[args.adam]
    if sparse:
        # Sparse gradients for the tables, stepped by SparseAdam (lazy moments); Adam for the rest.
        tables = list(model.embeddings.parameters())
        table_ids = {id(q) for q in tables}
        rest = [q for q in model.parameters() if id(q) not in table_ids]
        optimizers = [torch.optim.SparseAdam(tables, lr=LR, betas=BETAS, eps=EPS),
                      torch.optim.Adam(rest, lr=LR, betas=BETAS, eps=EPS, **impl)]
    else:
        optimizers = [torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS, **impl)]
    seconds = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        ids, dense, labels, masks = to_input(batches[step % len(batches)])
        click, watch = model(ids, dense)
        per_row = [
            F.binary_cross_entropy_with_logits(click, labels[0].unsqueeze(1), reduction="none"),
            (torch.sigmoid(watch) - labels[1].unsqueeze(1)) ** 2,
        ]
        losses = [  # loss.rs task_loss: masked mean (count read on the host, as in Rust)
            (r * masks[k].unsqueeze(1)).sum() / float(masks[k].sum())
            for k, r in enumerate(per_row)
        ]
        values = [l.item() for l in losses]  # the trainer logs every task loss
        if any(v in (float("inf"), float("-inf")) for v in values):
            raise RuntimeError(f"a loss diverged at step {step}")
        for opt in optimizers:
            opt.zero_grad()
        sum(losses).backward()
        for opt in optimizers:
            opt.step()
        if step >= args.warmup:
            seconds.append(time.perf_counter() - start)
    return seconds


def time_inference(batches, args):
    torch.manual_seed(args.seed)
    model = Mmoe(args.experts).eval()
    seconds, checksum = [], 0.0
    with torch.inference_mode():
        for step in range(args.warmup + args.steps):
            start = time.perf_counter()
            ids, dense, _, _ = to_input(batches[step % len(batches)])
            click, watch = model(ids, dense)
            predictions = [torch.sigmoid(click).clone(), torch.sigmoid(watch).clone()]
            if step >= args.warmup:
                seconds.append(time.perf_counter() - start)
            checksum += sum(float(p[0, 0]) for p in predictions)
    return seconds


def timing(batch_size, seconds, target):
    seconds = sorted(seconds)
    median = seconds[len(seconds) // 2]  # bench_train.rs `timing`: the upper median
    return {
        "batch_size": batch_size,
        "steps": len(seconds),
        "median_step_seconds": median,
        "min_step_seconds": seconds[0],
        "samples_per_second": batch_size / median,
        "target_samples_per_second": target,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before each measurement")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--experts", choices=["batched", "loop"], default="batched")
    p.add_argument("--adam", choices=["default", "foreach", "fused"], default="default",
                   help="torch's Adam implementation (the maths is the same)")
    p.add_argument("--embeddings", choices=["dense", "sparse"], default="dense",
                   help="sparse: nn.Embedding(sparse=True) stepped by SparseAdam (lazy moments)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    args.steps = max(args.steps, 1)
    torch.set_num_threads(args.threads)

    training = []
    for b in TRAIN_BATCHES:
        seconds = time_training(random_batches(b, args.seed), args)
        training.append(timing(b, seconds, TRAIN_TARGET if b == 4096 else None))
    batches = random_batches(INFERENCE_BATCH, (args.seed + 1) & M64)
    inference = timing(INFERENCE_BATCH, time_inference(batches, args), INFERENCE_TARGET)
    report = {
        "model": f"pytorch {torch.__version__} mmoe: ids 30000/10000/50 x 16 + 10 dense, "
                 f"4 experts [128, 64] ({args.experts}), towers [32], click (binary) + "
                 f"watch_ratio (regression); adam {args.adam}, {args.embeddings} embeddings",
        "num_params": sum(q.numel() for q in Mmoe(args.experts).parameters()),
        "threads_available": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "training": training,
        "inference": inference,
        "peak_rss_bytes": rss_line("VmHWM"),
        "baseline_rss_bytes": BASELINE_RSS,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['model']} ({report['num_params']} parameters; "
          f"{report['torch_threads']} torch threads)")
    for t in training + [inference]:
        kind = "inference" if t is inference else "training"
        print(f"{kind}, batch {t['batch_size']:>4}: {t['samples_per_second']:>9.0f} samples/s "
              f"(median step {t['median_step_seconds'] * 1e3:.2f} ms, "
              f"min {t['min_step_seconds'] * 1e3:.2f} ms, {t['steps']} steps)")
    print(f"peak RSS: {report['peak_rss_bytes'] / 2**20:.0f} MiB "
          f"(of which {BASELINE_RSS / 2**20:.0f} MiB after import torch)")


if __name__ == "__main__":
    main()
