"""A short double-descent sweep with dlx against the same work in a hand-written PyTorch loop, in one run.

The same work: the 15 MLP widths of `dlx sweep double-descent` (MNIST-1D, 4,000 training examples with 15%
of the labels flipped, 2 hidden layers of width h, SGD lr 0.01 momentum 0.9, batch 100), one seed, EPOCHS
epochs each, evaluated (train and test loss and error) at the same log-spaced epochs; one process, one
torch thread. dlx runs `dlx sweep double-descent sweep.seeds=1 trainer.epochs=EPOCHS sweep.workers=1
trainer.threads=1` as a fresh process; the hand loop is a fresh process too (this file with `hand`), which
builds the data once with dlx's MNIST-1D builder (the same arrays) and trains plain nn.Sequential models.
Rounds alternate the two so drifting load hits both alike; the ratio is dlx's wall time over the hand
loop's, per round, and its median is reported with dlx's own timings (summary.json) of the median round:

    .venv/bin/python benchmarks/sweep_vs_hand.py [EPOCHS=50] [ROUNDS=3]

Recorded in docs/benchmarks.md."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WIDTHS = (2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 91, 128, 181, 256)


def hand(epochs: int) -> None:
    """The hand-written loop (run in its own process): prints one JSON line of final test errors."""
    import torch
    import torch.nn as nn

    from dlx.config import compose
    from dlx.data import build_data
    from dlx.train.callbacks import eval_epochs

    torch.set_num_threads(1)
    cfg = compose("double_descent", ["sweep.seeds=1", f"trainer.epochs={epochs}", "data.label_noise=0.15"])
    data = build_data(cfg.data, device="cpu")
    x, y = data.train.x, data.train.y
    xt, yt = data.test.x, data.test.y
    when = eval_epochs(epochs, 1, int(cfg.trainer.eval_points))
    loss_fn = nn.CrossEntropyLoss()
    out = {}
    for w in WIDTHS:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), w), nn.ReLU(), nn.Linear(w, w), nn.ReLU(),
                            nn.Linear(w, 10))
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        g = torch.Generator().manual_seed(0)
        for epoch in range(1, epochs + 1):
            net.train()
            for idx in torch.randperm(len(y), generator=g).split(100):
                opt.zero_grad()
                loss_fn(net(x[idx]), y[idx]).backward()
                opt.step()
            if epoch in when:
                net.eval()
                with torch.no_grad():
                    for xs, ys in ((x, y), (xt, yt)):
                        logits = net(xs)
                        float(loss_fn(logits, ys))
                        err = float((logits.argmax(1) != ys).float().mean())
                out[w] = err
    print(json.dumps({"test_error": out}))


def main(epochs: int = 50, rounds: int = 3) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for mode in ("dlx", "hand") if r % 2 == 0 else ("hand", "dlx"):
                if mode == "dlx":
                    cmd = [str(Path(sys.executable).parent / "dlx"), "sweep", "double-descent", "sweep.seeds=1",
                           f"trainer.epochs={epochs}", "sweep.workers=1", "trainer.threads=1", "--out", tmp,
                           "--name", f"r{r}"]
                else:
                    cmd = [sys.executable, __file__, "hand", str(epochs)]
                t = time.perf_counter()
                done = subprocess.run(cmd, capture_output=True, text=True)
                wall = time.perf_counter() - t
                if done.returncode != 0:
                    sys.exit(f"{mode} failed: {done.stderr[-2000:]}")
                rows.append({"round": r, "mode": mode, "wall_s": wall})
                print(f"round {r} {mode}: {wall:.2f} s", flush=True)
        timings = [json.loads((Path(tmp) / "reproduce" / f"r{r}" / "summary.json").read_text())["timings"]
                   for r in range(rounds)]
    ratios = [next(x["wall_s"] for x in rows if x["round"] == r and x["mode"] == "dlx")
              / next(x["wall_s"] for x in rows if x["round"] == r and x["mode"] == "hand") for r in range(rounds)]
    dlx = statistics.median(x["wall_s"] for x in rows if x["mode"] == "dlx")
    hand_s = statistics.median(x["wall_s"] for x in rows if x["mode"] == "hand")
    mid = sorted(range(rounds), key=lambda r: ratios[r])[rounds // 2]
    print(f"dlx {dlx:.2f} s, hand {hand_s:.2f} s (medians); dlx / hand per round: "
          f"{', '.join(f'{q:.3f}' for q in ratios)}; median {statistics.median(ratios):.3f}")
    t = timings[mid]
    print("dlx's timings (median round): " + ", ".join(f"{k} {v:.2f}" for k, v in t.items())
          + f"; sweep overhead (total - children_wall_sum) {t['total'] - t['children_wall_sum']:.2f} s")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "hand":
        hand(int(sys.argv[2]))
    else:
        main(*(int(a) for a in sys.argv[1:3]))
