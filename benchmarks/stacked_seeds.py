"""Does training same-shape children together pay? S MLPs (MNIST-1D double-descent shape, 40-h-h-10,
batch 100, SGD momentum) trained one by one, stacked with torch.func (vmap over stacked parameters),
and as grouped parameters with batched matmuls (baddbmm). Ratios measured in one run.

    .venv/bin/python benchmarks/stacked_seeds.py [S] [h]

The numbers and the decision are recorded in docs/benchmarks.md."""

from __future__ import annotations

import copy
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

S = int(sys.argv[1]) if len(sys.argv) > 1 else 4
H = int(sys.argv[2]) if len(sys.argv) > 2 else 64
B = 100
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


if __name__ == "__main__":
    times = {}
    for fn in (one_by_one, stacked_vmap, grouped_bmm):
        for _ in range(50):
            fn()
        t0 = time.perf_counter()
        for _ in range(500):
            fn()
        times[fn.__name__] = (time.perf_counter() - t0) / 500 * 1e3
    for name, ms in times.items():
        gain = times["one_by_one"] / ms
        print(f"{name:13s} {ms:7.3f} ms per step of {S} models (h={H})  speed-up x{gain:.2f}")
