"""Config -> objects: the data, model, task and precision policy of one training run, built in the order
that makes seeding reproducible (seed, data, then the model's initialization)."""

from __future__ import annotations

from dataclasses import dataclass

from dlx import threads


@dataclass
class Parts:
    data: object  # DataBundle
    model: object  # nn.Module on the device
    task: object  # Task
    precision: object  # Precision policy
    device: str
    params: int
    threads: str = ""  # how trainer.threads was resolved (recorded in summary.json)


def build(cfg) -> Parts:
    from dlx.data import build_data
    from dlx.device import resolve_device, seed_everything
    from dlx.models import build_model, count_params
    from dlx.precision import build_precision
    from dlx.tasks import build_task
    from dlx.train.distributed import device_for_rank

    device = device_for_rank(resolve_device(cfg.get("device", "auto")))
    setting = cfg.trainer.get("threads", "auto")
    if setting != "auto":  # as given, before any work; auto needs the model, below
        threads.apply(threads.choose(setting)[0])
    seed_everything(cfg.seed, bool(cfg.trainer.get("deterministic", False)))
    data = build_data(cfg.data, device=device)
    task = build_task(cfg.task, data.meta)
    model = build_model(cfg.model, data.meta, data.train).to(device)
    precision = build_precision(cfg.precision, device)
    n, why = threads.choose(setting, model, first_batch(data, int(cfg.trainer.batch_size)))
    threads.apply(n)
    return Parts(data, model, task, precision, device, count_params(model), why)


def first_batch(data, batch_size: int):
    """The first (unshuffled) training batch: what the thread rule measures a forward pass on."""
    return next(iter(data.train.batches(max(1, batch_size))), None)


def final_metrics(rows: list[dict], task) -> dict:
    """The last evaluation row, plus best_<split>_<primary> over the run for each evaluated split (best in
    the task's direction: lowest error, highest AUC)."""
    if not rows:
        return {}
    out = {k: v for k, v in rows[-1].items() if k != "wall_s"}
    for split in ("val", "test"):
        col = f"{split}_{task.primary}"
        values = [r[col] for r in rows if col in r]
        if values:
            out[f"best_{col}"] = task.best(values)
    return out
