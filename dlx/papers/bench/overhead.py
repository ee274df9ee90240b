"""Runner overhead: dlx's `fit` against a minimal hand-written PyTorch loop (and PyTorch Lightning when it
is installed) on the same freshly seeded model, device tensors, optimizer, schedule and steps, each ending
with one test evaluation. dlx runs twice: bare (fit adds only its Evaluator and DivergenceGuard) and as
`dlx train` runs it (plus the CSV log and checkpoint), so the fixed file-writing cost shows apart.
Runners take turns in a rotating order so drift in machine load hits all alike."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

RUNNERS = ("hand", "dlx_bare", "dlx", "lightning")


def _epoch_batches(x_all, y_all, bs: int, gen: torch.Generator):
    perm = torch.randperm(len(y_all), generator=gen).to(x_all.device)
    for i in range(0, len(y_all), bs):
        idx = perm[i : i + bs]
        yield x_all[idx], y_all[idx]


def _final_test_error(model, data) -> float:
    model.eval()
    with torch.no_grad():
        return (model(data.test.x).argmax(1) != data.test.y).float().mean().item()


def hand_loop(model, data, trainer_cfg, optim_cfg, seed: int) -> float:
    """The loop a user would write by hand: shuffle, forward, backward, step, schedule; then test once."""
    from dlx.train.loop import plan_steps
    from dlx.train.optim import build_optimizer, build_schedule

    _, _, total = plan_steps(len(data.train), trainer_cfg)
    opt = build_optimizer(model.parameters(), optim_cfg)
    sched = build_schedule(opt, optim_cfg, total)
    gen = torch.Generator().manual_seed(seed)
    bs, step = int(trainer_cfg.batch_size), 0
    model.train()
    while step < total:
        for x, y in _epoch_batches(data.train.x, data.train.y, bs, gen):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step >= total:
                break
    return _final_test_error(model, data)


def lightning_missing() -> str | None:
    """Why the Lightning runner cannot run here, or None."""
    try:
        import lightning  # noqa: F401
    except ImportError:
        return "lightning is not installed (optional: pip install lightning)"
    return None


def lightning_loop(model, data, trainer_cfg, optim_cfg, seed: int, device: str) -> float:
    """The same training through lightning.Trainer with logging, checkpoints and progress bar off."""
    import logging
    import warnings

    import lightning as L

    from dlx.train.loop import plan_steps
    from dlx.train.optim import build_optimizer, build_schedule

    spe, _, total = plan_steps(len(data.train), trainer_cfg)
    bs = int(trainer_cfg.batch_size)

    class Batches:  # an iterable of device tensors: no DataLoader, exactly like the other runners
        def __init__(self):
            self.gen = torch.Generator().manual_seed(seed)

        def __iter__(self):
            return _epoch_batches(data.train.x, data.train.y, bs, self.gen)

        def __len__(self):
            return spe

    class Module(L.LightningModule):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def training_step(self, batch, _):
            x, y = batch
            return F.cross_entropy(self.net(x), y)

        def configure_optimizers(self):
            opt = build_optimizer(self.net.parameters(), optim_cfg)
            sched = build_schedule(opt, optim_cfg, total)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    accel = "gpu" if str(device).startswith("cuda") else "cpu"
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "GPU available but not used", "few batches", ... on stderr
        trainer = L.Trainer(max_steps=total, max_epochs=-1, accelerator=accel, devices=1, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, num_sanity_val_steps=0)
        trainer.fit(Module(model), train_dataloaders=Batches())
    return _final_test_error(model.to(device), data)


def time_overhead(cfg, runners=RUNNERS, repeats: int = 7, log=None) -> dict:
    """Seconds per full run for each runner; the first round warms up and is dropped."""
    from omegaconf import OmegaConf

    from dlx.build import build
    from dlx.train import fit
    from dlx.train.callbacks import Checkpointer, CsvLogger
    from dlx.train.loop import plan_steps

    trainer = OmegaConf.merge(cfg.trainer, {"eval_train": False, "eval_every": 10**9, "progress": "none"})
    parts = build(cfg)
    init = {k: v.clone() for k, v in parts.model.state_dict().items()}
    skipped = {}
    if "lightning" in runners and (why := lightning_missing()):
        skipped["lightning"] = why
    active = [r for r in runners if r not in skipped]
    times: dict[str, list[float]] = {r: [] for r in active}
    errors: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(int(repeats) + 1):
            order = active[rep % len(active):] + active[: rep % len(active)]
            for who in order:
                parts.model.load_state_dict(init)
                t0 = time.perf_counter()
                if who == "hand":
                    errors[who] = hand_loop(parts.model, parts.data, trainer, cfg.optimizer, cfg.seed)
                elif who.startswith("dlx"):
                    cbs = [CsvLogger(Path(tmp) / "m.csv"), Checkpointer(Path(tmp) / "c.pt")] \
                        if who == "dlx" else []
                    hist = fit(parts.model, parts.task, parts.data, parts.precision, trainer, cfg.optimizer,
                               seed=cfg.seed, callbacks=cbs)
                    errors[who] = hist.final.get("test_error", float("nan"))
                else:
                    errors[who] = lightning_loop(parts.model, parts.data, trainer, cfg.optimizer, cfg.seed,
                                                 parts.device)
                elapsed = time.perf_counter() - t0
                if rep:
                    times[who].append(elapsed)
            if log and rep:
                log(rep, {w: times[w][-1] for w in active})
    steps = plan_steps(len(parts.data.train), trainer)[2]
    return {"times": times, "steps": steps, "device": parts.device, "params": parts.params,
            "test_error": errors, "skipped": skipped}


def overhead_rows(res: dict, model: str, data: str) -> list[dict]:
    """One row per runner: seconds per run (mean, std, median) and the median ratio to the hand loop."""
    times, rows = res["times"], []
    hand = statistics.median(times["hand"]) if times.get("hand") else float("nan")
    for who in RUNNERS:
        row = {"suite": "overhead", "model": f"{model}/{data}", "mode": who, "unit": "s/run",
               "steps": res["steps"], "params": res["params"]}
        if who in res["skipped"]:
            rows.append({**row, "status": "skipped", "note": res["skipped"][who]})
            continue
        if who not in times:
            continue
        t = times[who]
        med = statistics.median(t)
        rows.append({**row, "mean": statistics.fmean(t), "std": statistics.stdev(t) if len(t) > 1 else 0.0,
                     "median": med, "n": len(t), "ratio": med / hand, "steps_per_s": res["steps"] / med,
                     "test_error": res["test_error"].get(who), "note": ""})
    return rows


def overhead_rounds(res: dict, model: str, data: str) -> list[dict]:
    """One row per runner and round (rounds.csv): the seconds behind the medians, paired by round."""
    return [{"suite": "overhead", "model": f"{model}/{data}", "mode": who, "round": i + 1, "seconds": t}
            for who in RUNNERS for i, t in enumerate(res["times"].get(who, []))]
