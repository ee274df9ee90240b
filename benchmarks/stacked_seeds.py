"""Does training same-shape children together pay? Two measurements, each with its ratios taken in one run.

Step: one SGD step of S MLPs (MNIST-1D double-descent shape, 40-h-h-10, batch 100, SGD momentum) trained
one by one (nn.Sequential + torch.optim.SGD), stacked with torch.func (vmap over stacked parameters), as
grouped parameters with batched matmuls under autograd (baddbmm), and with dlx's stack (dlx/models/stacked.py:
grouped weights, the hand-written backward of a Linear/ReLU chain, dlx/train/stacked.py's SGD), 1 thread:

    .venv/bin/python benchmarks/stacked_seeds.py [S] [h]

Sweep: the default `dlx sweep double-descent` (45 children, 2 workers) with sweep.stack=true and then
sweep.stack=false, wall and CPU seconds (children included), the verdict line of each and the largest
difference between the two results tables:

    .venv/bin/python benchmarks/stacked_seeds.py sweep [OVERRIDES...]

The numbers and the decision are recorded in docs/benchmarks.md."""

from __future__ import annotations

import copy
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

B = 100


def step_benchmark(S: int, H: int) -> None:
    from dlx.models.stacked import LinearChain, StackedModel
    from dlx.train.stacked import StackedOptimizer

    torch.set_num_threads(1)
    torch.manual_seed(0)

    def mlp() -> nn.Module:
        return nn.Sequential(nn.Linear(40, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(), nn.Linear(H, 10))

    models = [mlp() for _ in range(S)]
    X, Y = torch.randn(S, B, 40), torch.randint(0, 10, (S, B))
    opts = [torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for m in models]

    def one_by_one():
        for m, opt, x, y in zip(models, opts, X, Y, strict=True):
            loss = F.cross_entropy(m(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

    params, buffers = stack_module_state(models)
    params = {k: v.detach().requires_grad_() for k, v in params.items()}
    skeleton = copy.deepcopy(models[0]).to("meta")
    vmap_opt = torch.optim.SGD(params.values(), lr=0.01, momentum=0.9)

    def member_loss(p, b, x, y):
        return F.cross_entropy(functional_call(skeleton, (p, b), (x,)), y)

    def stacked_vmap():
        loss = vmap(member_loss)(params, buffers, X, Y).sum()  # sum: each member gets its own gradient
        vmap_opt.zero_grad()
        loss.backward()
        vmap_opt.step()

    shapes = [(40, H), (H, H), (H, 10)]
    weights = [torch.randn(S, i, o, requires_grad=True) for i, o in shapes]
    biases = [torch.zeros(S, 1, o, requires_grad=True) for _, o in shapes]
    bmm_opt = torch.optim.SGD(weights + biases, lr=0.01, momentum=0.9)

    def grouped_bmm():
        z = X
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            z = torch.baddbmm(b, z, w)
            z = z.relu() if i < len(weights) - 1 else z
        loss = F.cross_entropy(z.reshape(S * B, 10), Y.reshape(-1), reduction="sum") / B
        bmm_opt.zero_grad()
        loss.backward()
        bmm_opt.step()

    from types import SimpleNamespace

    stack = StackedModel([mlp() for _ in range(S)])
    chain = LinearChain(stack)
    fake = []
    for m in [mlp() for _ in range(S)]:  # what StackedOptimizer reads of each member's own optimizer
        opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        fake.append(SimpleNamespace(state=SimpleNamespace(optimizer=opt, scheduler=sched, total_steps=1),
                                    optim_cfg={"schedule": "constant"}))
    dlx_opt = StackedOptimizer(stack.stacked_parameters(), fake)

    def dlx_stack():
        chain.step(X, Y).tolist()  # the per-member losses dlx's divergence check reads every step
        dlx_opt.step(0)

    times = {}
    for fn in (one_by_one, stacked_vmap, grouped_bmm, dlx_stack):
        for _ in range(50):
            fn()
        t0 = time.perf_counter()
        for _ in range(500):
            fn()
        times[fn.__name__] = (time.perf_counter() - t0) / 500 * 1e3
    for name, ms in times.items():
        gain = times["one_by_one"] / ms
        print(f"{name:13s} {ms:7.3f} ms per step of {S} models (h={H})  speed-up x{gain:.2f}")


def _run(cmd: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = out.stdout.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.startswith(("double descent:", "double_descent:"))),
                 len(lines))
    verdict = " ".join(ln.strip() for ln in lines[first:])  # the headline, unfolded
    if out.returncode != 0:
        print(out.stdout[-2000:], out.stderr[-2000:], file=sys.stderr)
    return {"wall": wall, "cpu": cpu, "rc": out.returncode, "verdict": verdict, "load": load,
            "load_after": os.getloadavg()[0]}


def sweep_benchmark(overrides: list[str]) -> None:
    import pandas as pd

    dlx = str(Path(sys.executable).with_name("dlx"))
    with tempfile.TemporaryDirectory() as tmp:
        res = {}
        for stack in ("true", "false"):
            res[stack] = r = _run([dlx, "sweep", "double-descent", f"sweep.stack={stack}", *overrides,
                                   "--out", tmp, "--name", f"stack_{stack}"])
            print(f"sweep.stack={stack}: {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU (children), "
                  f"rc {r['rc']}, load {r['load']:.1f} -> {r['load_after']:.1f}\n  {r['verdict']}",
                  flush=True)
        a = pd.read_csv(Path(tmp) / "sweep" / "stack_true" / "results.csv").sort_values("run_id")
        b = pd.read_csv(Path(tmp) / "sweep" / "stack_false" / "results.csv").sort_values("run_id")
        gap = (a.test_error.to_numpy() - b.test_error.to_numpy())
        on, off = res["true"], res["false"]
        print(f"wall x{off['wall'] / on['wall']:.2f}, CPU x{off['cpu'] / on['cpu']:.2f} "
              "(one by one / stacked); "
              f"same verdict: {on['verdict'] == off['verdict']}; "
              f"children with another final test error: {int((abs(gap) > 1e-9).sum())} of {len(gap)} "
              f"(largest gap {abs(gap).max():.4f})")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "sweep":
        sweep_benchmark(sys.argv[2:])
    else:
        args = [int(a) for a in sys.argv[1:3]]
        step_benchmark(*(args + [4, 64][len(args):]))
