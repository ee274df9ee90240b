"""One child run of the MUiR experiment: a (part, method, seed) cell, trained with dlx's one loop.

Methods: ``muir`` (search on, every location starts on its own module), ``oracle`` (the synthetic set's
true grouping, fixed: group g's tasks share module g), ``random`` (each location a uniformly random module
of the pool, fixed), ``stl`` (scikit-learn ridge per task; synthetic), ``alone`` (one task, its plain
architecture; cross-modal), ``alone_hyper`` (one task on a pool of its own, one module per location, no
search: the reparameterisation without sharing) and ``shared`` (all tasks, one pool, search on). Every trained
method gets the same schedule: ``burn_in + generations + final`` epochs of ``steps`` joint steps.

Writes metrics.csv (per-task metrics at each evaluation), search.csv (modules in use per generation),
assignment.csv (the final location -> module table), a checkpoint (resumed automatically when the child is
run again after an interruption) and summary.json.
"""

from __future__ import annotations

import time
from pathlib import Path

from dlx.errors import DlxError
from dlx.runs import Run, write_csv

SEARCHING = ("muir", "shared")
TRAINED = ("muir", "oracle", "random", "alone", "alone_hyper", "shared")


def child_settings(cfg) -> dict:
    """The part's config turned into this child's data, model, task, optimizer and trainer configs."""
    from omegaconf import OmegaConf

    from dlx.papers.muir.search import check_search, epochs_of

    part, method = cfg.child.part, cfg.child.method
    pc = cfg[part]
    search = check_search(pc.search, f"{part}.search")
    data = OmegaConf.to_container(pc.data, resolve=True)
    model = OmegaConf.to_container(pc.model, resolve=True)
    trainer = OmegaConf.to_container(pc.trainer, resolve=True)
    if trainer.get("steps") is not None:
        raise DlxError(f"{part}.trainer.steps is set by the search: give {part}.search.generations and "
                       f"{part}.search.steps instead")
    if part == "synthetic":
        data["seed"] = int(cfg.seed)
        data["noise"] = float(pc.noise[cfg.child.noise])
    if method in ("alone", "alone_hyper"):  # one task: its plain architecture, or on its own pool unshared
        data["select"] = [cfg.child.task]
        model["hyper"] = method == "alone_hyper"
    if data.get("select") is not None and data.get("tasks"):  # tasks left out need no architecture
        chosen = [data["select"]] if isinstance(data["select"], str) else list(data["select"])
        dropped = set(data["tasks"]) - set(chosen)
        model["members"] = {k: v for k, v in (model.get("members") or {}).items() if k not in dropped}
    epochs = epochs_of(search)  # every trained method: the same schedule
    if method in SEARCHING:
        model["slots"] = 1 + search["lam"]
    bs = int(trainer["batch_size"])
    data["epoch_examples"] = search["steps"] * bs
    trainer.update(epochs=epochs, steps=None, threads=cfg.trainer.threads, progress=cfg.trainer.progress)
    return {"data": OmegaConf.create(data), "model": OmegaConf.create(model), "task": pc.task,
            "optimizer": pc.optimizer, "trainer": OmegaConf.create(trainer), "search": search}


def fixed_assignment(method: str, model, meta, seed: int):
    """The oracle's or the random method's module per location (None for the others)."""
    import torch

    pool = model.pool
    if method == "oracle":
        groups = (meta.extra or {}).get("groups")
        if groups is None:
            raise DlxError("method oracle needs data that knows its true groups (the synthetic benchmark)")
        by_task = dict(zip(meta.extra["tasks"], groups, strict=True))
        return [int(by_task[r["task"]]) for r in model.locations()]
    if method == "random":
        g = torch.Generator().manual_seed(10_000 + int(seed))
        return torch.randint(0, pool.n_modules, (pool.n_loc,), generator=g).tolist()
    return None


def sharing(assignment, meta) -> dict:
    """How the final assignment shares: modules in use, the fraction of them used by more than one task
    and by more than one modality, that fraction's expectation under random placement of the same modules
    (``shared_modalities_chance``: every module keeps its number of locations, the locations drawn at
    random), and (when the data knows its true groups) the adjusted Rand index between tasks clustered by
    their (most used) module and the true groups."""
    from sklearn.metrics import adjusted_rand_score

    if assignment is None or not len(assignment):
        return {}
    by_module = assignment.groupby("module")
    out = {"modules_in_use": int(assignment.module.nunique()),
           "shared_tasks_fraction": float((by_module.task.nunique() > 1).mean()),
           "shared_modalities_fraction": float((by_module.modality.nunique() > 1).mean()),
           "shared_modalities_chance": mixed_chance(by_module.size().tolist(),
                                                    assignment.modality.value_counts().tolist())}
    groups = (meta.extra or {}).get("groups")
    if groups is not None:
        names = list(meta.extra["tasks"])
        module_of = assignment.groupby("task").module.agg(lambda m: m.value_counts().idxmax())
        out["ari"] = float(adjusted_rand_score(groups, [int(module_of[n]) for n in names]))
    return out


def mixed_chance(sizes: list[int], per_modality: list[int]) -> float:
    """The expected fraction of modules that span more than one modality when each module's ``size``
    locations are drawn at random (without replacement) from all locations (``per_modality`` of each):
    a module of k locations stays within one modality with probability sum_m C(n_m, k) / C(N, k)."""
    from math import comb

    if not sizes:
        return float("nan")
    total = sum(per_modality)
    one = [sum(comb(n, k) for n in per_modality) / comb(total, k) for k in sizes]
    return float(1 - sum(one) / len(sizes))


def run(cfg, run: Run) -> dict:
    method = cfg.child.method
    if method == "stl":
        return run_stl(cfg, run)
    if method not in TRAINED:
        raise DlxError(f"unknown method '{method}'")
    return run_trained(cfg, run)


def choose_threads(setting, model, data, bs: int):
    """trainer.threads for a multi-task model: the shared rule, measured on one joint forward."""
    import torch

    from dlx import threads
    from dlx.tasks.multitask import inputs_of

    class Joint(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, inputs):
            return self.m.forward_tasks(inputs)

    batch = next(iter(data.train.batches(bs, shuffle=True, generator=torch.Generator().manual_seed(0))))
    n, why = threads.choose(setting, Joint(model), ({t: inputs_of(b) for t, b in batch.items()},))
    threads.apply(n)
    return why


def build_child(cfg):
    """(settings, device, data, task, model) of a trained child, seeded and with its fixed assignment (if
    its method has one) applied: what the run trains and what --estimate times."""
    from dlx.data import build_data
    from dlx.device import resolve_device, seed_everything
    from dlx.models import build_model
    from dlx.tasks import build_task

    s = child_settings(cfg)
    device = resolve_device(cfg.get("device", "auto"))
    seed_everything(int(cfg.seed))
    data = build_data(s["data"], device=device)
    task = build_task(s["task"], data.meta)
    model = build_model(s["model"], data.meta).to(device)
    fixed = fixed_assignment(cfg.child.method, model, data.meta, int(cfg.seed)) if model.pool is not None \
        else None
    if fixed is not None:
        model.pool.assign(fixed)
    return s, device, data, task, model


def run_trained(cfg, run: Run) -> dict:
    import pandas as pd

    from dlx.build import final_metrics
    from dlx.models import count_params
    from dlx.papers.muir.search import AssignmentSearch
    from dlx.precision import build_precision
    from dlx.train import fit
    from dlx.train.callbacks import Checkpointer, CsvLogger, Progress
    from dlx.train.loop import check_settings

    method = cfg.child.method
    s, device, data, task, model = build_child(cfg)
    check_settings(s["trainer"], s["optimizer"], len(data.train))
    why = choose_threads(s["trainer"].threads, model, data, int(s["trainer"].batch_size))
    run.env["threads_rule"] = why
    run.device = device
    ckpt = run.dir / "checkpoint.pt"
    resume = ckpt.is_file()
    run.summary("running", part=cfg.child.part, method=method, params=count_params(model),
                n_locations=model.pool.n_loc if model.pool is not None else 0,
                n_modules=model.pool.n_modules if model.pool is not None else 0, **task.describe())
    search = None
    callbacks = []
    if method in ("muir", "shared"):
        search = AssignmentSearch(model.pool, s["search"], seed=int(cfg.seed))
        callbacks.append(search)
    tr = s["trainer"]
    callbacks += [CsvLogger(run.path("metrics.csv")), Checkpointer(ckpt, tr.get("checkpoint_every", 0)),
                  Progress(tr.get("progress", "auto"), label=run.dir.name), *run.callbacks]  # a tune trial's
    t0 = time.time()
    hist = fit(model, task, data, build_precision({"name": "fp32"}, device), tr, s["optimizer"],
               seed=int(cfg.seed), callbacks=callbacks, resume_from=ckpt if resume else None)
    assignment = None
    if model.pool is not None:
        assignment = pd.DataFrame(model.locations())
        assignment["module"] = model.pool.champion.cpu().numpy()
        write_csv(run.path("assignment.csv"), assignment)
    if search is not None:
        write_csv(run.path("search.csv"), pd.DataFrame(search.history))
    metrics = {**final_metrics(hist.rows, task), **sharing(assignment, data.meta)}
    return run.summary(hist.status, metrics, epochs=hist.epoch, steps=hist.step, resumed=resume,
                       train_wall_s=round(time.time() - t0, 3))


def run_stl(cfg, run: Run) -> dict:
    """Single-task learning: a ridge regression per task (scikit-learn, no intercept, like the data), its
    penalty chosen from ``synthetic.stl_alphas`` by the task's validation RMSE; scored by the same multitask
    task as the networks."""
    import numpy as np
    import pandas as pd
    import torch
    from sklearn.linear_model import Ridge

    from dlx.config import positive_floats
    from dlx.data import build_data
    from dlx.tasks import build_task
    from dlx.train import evaluate

    s = child_settings(cfg)
    alphas = positive_floats(cfg.synthetic.stl_alphas, "synthetic.stl_alphas")
    data = build_data(s["data"], device="cpu")
    task = build_task(s["task"], data.meta)
    run.summary("running", part=cfg.child.part, method="stl", params=None, **task.describe())
    fitted, chosen = {}, {}
    for name, split in data.train.splits.items():
        x, y = split.x.numpy(), split.y.numpy()
        best = None
        for a in alphas:
            est = Ridge(alpha=a, fit_intercept=False).fit(x, y)
            if data.val is None:
                break
            v = data.val.splits[name]
            err = float(np.sqrt(np.mean((est.predict(v.x.numpy()) - v.y.numpy()) ** 2)))
            if best is None or err < best[0]:
                best = (err, a, est)
        fitted[name], chosen[name] = (best[2], best[1]) if best else (est, alphas[0])

    class Ridges(torch.nn.Module):
        def forward_tasks(self, inputs):
            return {t: torch.as_tensor(fitted[t].predict(x.numpy()), dtype=torch.float32)
                    for t, x in inputs.items()}

    model, row = Ridges(), {"epoch": 1}
    for split in ("train", "val", "test"):
        if split != "val" or data.val is not None:
            row.update({f"{split}_{k}": v for k, v in evaluate(model, task, data.split(split)).items()})
    write_csv(run.path("metrics.csv"), pd.DataFrame([row]))
    write_csv(run.path("ridge_alphas.csv"),
              pd.DataFrame({"task": list(chosen), "alpha": list(chosen.values())}))
    from dlx.build import final_metrics

    return run.summary("completed", final_metrics([row], task))


def plot(run_dir: Path) -> list[Path]:
    """A child's own figure: its learning curves (the sweep draws the paper's figures)."""
    return []
