"""`dlx reproduce muir tune=true`: each trained method of each part tuned on validation with the same budget.

A method's own settings live in ``<part>.settings.<label>`` (label: the method, or ``<method>_<task>`` for
a cross-modal method trained on one task alone): blocks of ``optimizer``, ``search``, ``model`` or
``trainer`` keys for that method's children only, which they carry as ``<part>.<group>.<key>=...``
overrides. Studied: the synthetic part's trained methods (MUiR, oracle, random; single-task ridge already
picks each task's penalty on its validation points) on ``synthetic.tune_noise``, and every cross-modal
method (each task alone, alone on hypermodules, shared), all on seed 0.

A MUiR child is its own kind of run, so the tune kind reaches three hooks here (through the registry):
what a trial is scored on (``tune_objective``), the overrides that give it a validation split
(``tune_validation``: the synthetic benchmark has 5 validation points per task; a cross-modal task holds
out tune.val_fraction of its training split, or draws that many extra sequences where its data is
generated) and how a trial runs without the test split (``tune_trial_overrides``).
"""

from __future__ import annotations

from dlx.errors import DlxError

PARTS = ("synthetic", "crossmodal")
SEARCHING = ("muir", "shared")  # their space also searches the soft weights' learning rate


def tune_cells(cfg) -> list[tuple[str, str, str | None, str | None]]:
    """(part, method, task, noise) of every child studied (its seed 0 child)."""
    out = []
    parts = list(cfg.parts)
    if "synthetic" in parts:
        variants = list(cfg.synthetic.variants)
        noise = cfg.synthetic.get("tune_noise")
        if noise not in variants:
            raise DlxError(f"synthetic.tune_noise must be one of synthetic.variants ({', '.join(variants)}), "
                           f"got {noise!r}")
        out += [("synthetic", m, None, noise) for m in cfg.synthetic.methods if m != "stl"]
    if "crossmodal" in parts:
        from dlx.papers.muir.cells import tasks_of

        for m in cfg.crossmodal.methods:
            out += [("crossmodal", m, t, None) for t in (tasks_of(cfg) if m.startswith("alone") else [None])]
    return out


def tunables(cfg):
    """The studies of `dlx reproduce muir tune=true` (dlx/sweep/tuning.py)."""
    from dlx.papers.muir.cells import GROUPS, child_overrides, child_params, label
    from dlx.sweep.tuning import Tunable

    out = []
    for part, method, task, noise in tune_cells(cfg):
        name = label(method, task)
        params = child_params(part, method, task, noise, 0)
        into = {f"{part}.{g}.": f"{part}.settings.{name}.{g}." for g in GROUPS}
        space = f"muir_{part}" + ("_search" if method in SEARCHING else "")
        out.append(Tunable(f"{part}_{name}", "muir", child_overrides(cfg, params), into, space))
    return out


# --- the tune kind's hooks for a trial that is a MUiR child -----------------------------------------------


def tune_objective(cfg) -> tuple[str, bool]:
    """(primary metric, higher is better) of the child's multitask task: the tasks' shared metric (RMSE on
    the synthetic benchmark, one task's own metric alone), else the joint loss."""
    from omegaconf import OmegaConf

    from dlx.data import build_data
    from dlx.papers.muir.child import child_settings
    from dlx.tasks import build_task

    s = child_settings(cfg)
    data = build_data(OmegaConf.merge(s["data"], {"epoch_examples": None}), device="cpu")
    task = build_task(s["task"], data.meta)
    return task.primary, bool(task.higher_is_better)


def tune_validation(cfg, base: list[str], fraction: float) -> tuple[list[str], int]:
    """(overrides giving the child a validation split, its rows)."""
    from dlx.config import compose
    from dlx.data import build_data
    from dlx.papers.muir.child import child_settings

    part = cfg.child.part
    carved = list(base)
    if part == "crossmodal":
        for name, task in cfg.crossmodal.data.tasks.items():
            if "n_val" in task and "n" in task:  # generated: draw that many more, the training set unchanged
                carved.append(f"crossmodal.data.tasks.{name}.n_val={max(1, round(fraction * int(task.n)))}")
            else:
                carved.append(f"crossmodal.data.tasks.{name}.val_fraction={fraction}")
    data = build_data(child_settings(compose("muir", carved))["data"], device="cpu")
    if data.val is None or len(data.val) == 0:
        raise DlxError(f"MUiR's {part} data has no validation split to tune on")
    return carved, len(data.val)


def tune_trial_overrides() -> list[str]:
    """A trial never evaluates the test split and prints no progress bar."""
    return [*(f"{p}.trainer.eval_test=false" for p in PARTS), "trainer.progress=none"]
