#!/usr/bin/env python3
"""The kernelab seed workloads in PyTorch, for a same-machine comparison.

Runs, on the same MNIST-format data and with the same settings as `kernelab train` and
`kernelab distill` (Adam 1e-3, batch 64, PyTorch's default Linear init, shuffled batches with
the last partial one kept), and prints one JSON line per epoch with the same fields
(`model`, `epoch`, `train_loss`, `test_loss`, `test_acc`, `epoch_s`, `samples_per_s`):

  train     a 784-128-10 MLP on labels                      (model: "model")
  distill   a 784-512-256-10 teacher (or one loaded from a kernelab checkpoint), then for each
            seed a 784-128-10 student on labels ("student") and, for every temperature and alpha
            asked, one distilled from the teacher ("distilled"), loss α·T²·KL + (1−α)·CE; both
            students of a seed start from the same initial parameters
  parallel  the 784-128-10 MLP with DistributedDataParallel over N CPU processes (gloo, loopback)

Usage:
  python3 scripts/compare_pytorch.py --workload train --epochs 3 --threads 2
  python3 scripts/compare_pytorch.py --workload distill --epochs 10 --temperature 1 --alpha 0.5
  python3 scripts/compare_pytorch.py --workload distill --epochs 10 --teacher-checkpoint t.safetensors \
      --seeds 5 --temperature 1,2,4 --alpha 0,0.1,0.3,0.5,0.7,0.9
  python3 scripts/compare_pytorch.py --workload parallel --epochs 3 --replicas 2

Needs torch (CPU build is enough). Set --threads to the thread count kernelab used (rayon uses
one per core) so the epoch times compare like with like.
"""

import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import mnist_idx

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """An IDX file (raw or gzipped) as a uint8 tensor of its shape."""
    try:
        dims, values = mnist_idx.read(path)
    except mnist_idx.IdxError as e:
        sys.exit(str(e))
    return torch.frombuffer(bytearray(values), dtype=torch.uint8).reshape(dims)


def load(data_dir):
    """(train_x, train_y, test_x, test_y): images flattened and scaled to [0, 1]."""
    def split(images, labels):
        x = read_idx(os.path.join(data_dir, images)).reshape(-1, 28 * 28).float() / 255.0
        y = read_idx(os.path.join(data_dir, labels)).long()
        return x, y

    return (*split("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            *split("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))


def mlp(spec):
    """nn.Sequential(Linear, ReLU, …, Linear) from a spec like 784-128-10 (state_dict names match
    kernelab's safetensors checkpoints: 0.weight, 0.bias, 2.weight, …)."""
    widths = [int(w) for w in spec.split("-")]
    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b))
        if i + 2 < len(widths):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@torch.no_grad()
def evaluate(model, x, y):
    logits = model(x)
    return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


def fit(name, model, loss_fn, data, args, emit, shard=None, reduce_total=None, eval_model=None):
    """Adam over shuffled batches; one log line per epoch through `emit` (None: log nothing).

    For data parallel, `shard(idx)` picks this replica's rows of a batch and the factor its mean
    loss is scaled by, and `reduce_total` sums the epoch's loss over replicas."""
    train_x, train_y, test_x, test_y = data
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    n = len(train_y)
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(n, generator=gen)
        total, started = 0.0, time.perf_counter()
        for lo in range(0, n, args.batch):
            idx = order[lo : lo + args.batch]
            rows, scale = shard(idx) if shard else (idx, 1.0)
            mean = loss_fn(model, train_x[rows], train_y[rows], rows)
            opt.zero_grad(set_to_none=True)
            (mean * scale).backward()
            opt.step()
            total += mean.item() * len(rows)
        epoch_s = time.perf_counter() - started
        total = reduce_total(total) if reduce_total else total
        if emit:
            test_loss, test_acc = evaluate(eval_model or model, test_x, test_y)
            emit(dict(model=name, epoch=epoch, train_loss=total / n, test_loss=test_loss, test_acc=test_acc,
                      epoch_s=epoch_s, samples_per_s=n / epoch_s))
    return model


def cross_entropy(model, x, y, rows=None):
    return F.cross_entropy(model(x), y)


def distillation(teacher, temperature, alpha, teacher_logits=None):
    """The distillation loss; `teacher_logits`, when given, are the frozen teacher's logits of
    every training row, computed once in one pass (equal to its per-batch forward pass up to the
    rounding of a differently blocked product)."""
    def loss(model, x, y, rows):
        logits = model(x)
        with torch.no_grad():
            t = teacher(x) if teacher_logits is None else teacher_logits[rows]
            soft = F.softmax(t / temperature, dim=1)
        kl = F.kl_div(F.log_softmax(logits / temperature, dim=1), soft, reduction="batchmean")
        return alpha * temperature**2 * kl + (1 - alpha) * F.cross_entropy(logits, y)

    return loss


def floats(text):
    return [float(v) for v in text.split(",")]


def distill_runs(args, data, emit):
    """The teacher once (trained, or loaded from kernelab's checkpoint), then per seed the
    label-only student and one distilled student per (temperature, alpha), each line tagged with
    its seed, temperature and alpha. Both students of a seed are built from the same seed, so
    they start from the same parameters; at alpha = 0 the distilled one must equal the label-only
    one."""
    if args.teacher_checkpoint:
        from safetensors.torch import load_file

        teacher = mlp(args.teacher)
        teacher.load_state_dict(load_file(args.teacher_checkpoint))
        test_loss, test_acc = evaluate(teacher, data[2], data[3])
        emit(dict(model="teacher", epoch=0, train_loss=None, test_loss=test_loss, test_acc=test_acc,
                  epoch_s=0.0, samples_per_s=None, loaded=args.teacher_checkpoint))
    else:
        torch.manual_seed(args.seed + 1000)
        teacher = fit("teacher", mlp(args.teacher), cross_entropy, data, args, emit)
    teacher.eval()
    with torch.no_grad():
        teacher_logits = teacher(data[0])
    # alpha = 0 ignores the teacher, so it is one run whatever the temperature (the control).
    grid = [(t, a) for t in args.temperature for a in args.alpha if a > 0 or t == args.temperature[0]]
    for seed in range(args.seed, args.seed + args.seeds):
        run = argparse.Namespace(**{**vars(args), "seed": seed})
        tagged = lambda **tags: (lambda line: emit({**line, "seed": seed, **tags}))
        torch.manual_seed(seed)
        fit("student", mlp(args.student), cross_entropy, data, run, tagged())
        for t, alpha in grid:
            torch.manual_seed(seed)
            fit("distilled", mlp(args.student), distillation(teacher, t, alpha, teacher_logits), data, run,
                tagged(temperature=t, alpha=alpha))


def parallel_worker(rank, world, args, data, port):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(max(1, args.threads // world))
    torch.manual_seed(args.seed)
    model = DistributedDataParallel(mlp(args.model))

    def shard(idx):
        # DDP averages gradients over replicas; scaling each shard's mean by its share of the
        # batch (times `world`) makes the step the gradient of the whole batch's mean, as
        # kernelab's all-reduce does.
        rows = idx.tensor_split(world)[rank]
        return rows, len(rows) * world / len(idx)

    def reduce_total(total):
        summed = torch.tensor([total])
        dist.all_reduce(summed)
        return summed.item()

    emit = (lambda line: print(json.dumps(line), flush=True)) if rank == 0 else None
    fit("model", model, cross_entropy, data, args, emit, shard, reduce_total, eval_model=model.module)
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", choices=["train", "distill", "parallel"], default="train")
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--model", default="784-128-10")
    p.add_argument("--teacher", default="784-512-256-10")
    p.add_argument("--student", default="784-128-10")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--temperature", type=floats, default=[1.0], help="one or more, comma-separated")
    p.add_argument("--alpha", type=floats, default=[0.5], help="one or more, comma-separated")
    p.add_argument("--seeds", type=int, default=1, help="distill: students from --seed, --seed + 1, …")
    p.add_argument("--teacher-checkpoint", help="distill: a kernelab (safetensors) teacher instead of training one")
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--json", help="also append the JSON lines to this file")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    data = load(args.data)
    sink = open(args.json, "a") if args.json else None

    def emit(line):
        text = json.dumps(line)
        print(text, flush=True)
        if sink:
            sink.write(text + "\n")
            sink.flush()

    if args.workload == "train":
        torch.manual_seed(args.seed)
        fit("model", mlp(args.model), cross_entropy, data, args, emit)
    elif args.workload == "distill":
        distill_runs(args, data, emit)
    else:
        import torch.multiprocessing as mp

        port = 29500 + os.getpid() % 1000
        mp.spawn(parallel_worker, args=(args.replicas, args, data, port), nprocs=args.replicas, join=True)


if __name__ == "__main__":
    main()
