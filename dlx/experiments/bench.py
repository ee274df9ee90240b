"""`dlx bench`: what dlx's loop costs over a minimal hand-written PyTorch loop.

Both train the same freshly seeded model on the same device tensors for the same steps, with the
same optimizer and schedule, and end with one test evaluation. dlx's side is the real `fit` with the
callbacks `dlx train` uses (CSV log, checkpoint). Pairs alternate so drift hits both alike.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from dlx.runs import Run, write_csv

TABLE_COLUMNS = ["runner", "model", "steps", "median_s", "std_s", "steps_per_s", "ratio_to_hand"]


def hand_loop(model, data, trainer_cfg, optim_cfg, seed: int) -> None:
    from dlx.train.loop import plan_steps
    from dlx.train.optim import build_optimizer, build_schedule

    _, _, total = plan_steps(len(data.train), trainer_cfg)
    opt = build_optimizer(model.parameters(), optim_cfg)
    sched = build_schedule(opt, optim_cfg, total)
    gen = torch.Generator().manual_seed(seed)
    x_all, y_all, bs, step = data.train.x, data.train.y, int(trainer_cfg.batch_size), 0
    model.train()
    while step < total:
        perm = torch.randperm(len(y_all), generator=gen).to(x_all.device)
        for i in range(0, len(y_all), bs):
            idx = perm[i : i + bs]
            loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step >= total:
                break
    model.eval()
    with torch.no_grad():
        (model(data.test.x).argmax(1) != data.test.y).float().mean().item()


def time_overhead(cfg) -> dict:
    from omegaconf import OmegaConf

    from dlx.experiments.train import build
    from dlx.train import fit
    from dlx.train.callbacks import Checkpointer, CsvLogger

    trainer = OmegaConf.merge(cfg.trainer, {"eval_train": False, "eval_every": 10**9, "progress": "none"})
    parts = build(cfg)
    init = {k: v.clone() for k, v in parts.model.state_dict().items()}
    times: dict[str, list[float]] = {"dlx": [], "hand": []}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(int(cfg.bench.repeats) + 1):  # the first pair warms up and is dropped
            for who in (("dlx", "hand") if rep % 2 else ("hand", "dlx")):
                parts.model.load_state_dict(init)
                t0 = time.perf_counter()
                if who == "dlx":
                    cbs = [CsvLogger(Path(tmp) / "m.csv"), Checkpointer(Path(tmp) / "c.pt")]
                    fit(parts.model, parts.task, parts.data, parts.precision, trainer, cfg.optimizer,
                        seed=cfg.seed, callbacks=cbs)
                else:
                    hand_loop(parts.model, parts.data, trainer, cfg.optimizer, cfg.seed)
                if rep:
                    times[who].append(time.perf_counter() - t0)
    from dlx.train.loop import plan_steps

    steps = plan_steps(len(parts.data.train), trainer)[2]
    ratios = [d / h for d, h in zip(times["dlx"], times["hand"], strict=True)]
    return {"times": times, "ratios": ratios, "steps": steps, "device": parts.device, "params": parts.params}


def run(cfg, run: Run):
    import pandas as pd

    res = time_overhead(cfg)
    rows = []
    for who in ("hand", "dlx"):
        t = res["times"][who]
        rows.append({"bench": "overhead", "runner": who, "model": cfg.model.name, "data": cfg.data.name,
                     "steps": res["steps"], "median_s": statistics.median(t), "mean_s": statistics.mean(t),
                     "std_s": statistics.stdev(t) if len(t) > 1 else 0.0,
                     "steps_per_s": res["steps"] / statistics.median(t)})
    df = pd.DataFrame(rows)
    ratio = statistics.median(res["times"]["dlx"]) / statistics.median(res["times"]["hand"])
    df["ratio_to_hand"] = df["median_s"] / df.loc[df.runner == "hand", "median_s"].iloc[0]
    write_csv(run.path("results.csv"), df)
    metrics = {"overhead_ratio": ratio, "pair_ratio_mean": statistics.mean(res["ratios"]),
               "pair_ratio_std": statistics.stdev(res["ratios"]) if len(res["ratios"]) > 1 else 0.0}
    run.summary("completed", metrics, device=res["device"], params=res["params"])
    plot(run.dir)
    return df


def plot(run_dir: Path) -> list[Path]:
    from dlx.plots.bench import plot_bench_run

    return plot_bench_run(run_dir)
