"""The path every sweep-shaped experiment shares: expand -> execute -> finalize, and `dlx status`.

An experiment module provides `children(cfg) -> [Child]` and `finalize(cfg, run, children) -> DataFrame`
(collect, analyse, write results and figures). `CONFIG` names the config its children compose."""

from __future__ import annotations

from pathlib import Path

from dlx.runs import Run, read_json, read_overrides, read_summary
from dlx.runs import status as run_status
from dlx.sweep.execute import DONE, child_dir, execute


def status_frame(children, statuses: dict):
    import pandas as pd

    return pd.DataFrame([{**{k.split(".")[-1]: v for k, v in c.params.items()}, "run_id": c.run_id,
                          "status": statuses.get(c.run_id) or "pending"} for c in children])


def check_fixed(base: list[str], children, hints: dict | None = None) -> None:
    """A fixed override on a key the sweep varies would be silently overwritten in every child."""
    from dlx.errors import DlxError

    swept = {k for c in children for k in c.params}
    for ov in base:
        key = ov.split("=", 1)[0].lstrip("+~")
        if key in swept:
            how = (hints or {}).get(key, "give it as an axis of the sweep instead")
            raise DlxError(f"{key} is varied by this sweep, so '{ov}' would be overwritten; {how}")


def run_sweep(cfg, run: Run, module):
    children = module.children(cfg)
    check_fixed(read_overrides(run.dir), children, getattr(module, "SWEPT_BY", None))
    base = [*read_overrides(run.dir), "trainer.progress=none"]
    run.summary("running", n_children=len(children))
    try:
        statuses = execute(children, module.CONFIG, base, run.dir, launcher=cfg.launcher,
                           workers=cfg.sweep.workers, fail_fast=cfg.sweep.fail_fast)
    except KeyboardInterrupt:
        run.summary("interrupted")
        raise
    if "submitted" in statuses.values():  # detached: `dlx status DIR` collects later
        run.summary("running", n_children=len(children), detached=True)
        return status_frame(children, statuses)
    same_usage_error(run.dir, children, statuses)
    return module.finalize(cfg, run, children)


def same_usage_error(run_dir: Path, children, statuses: dict) -> None:
    """Every child refused with one and the same bad-input error (e.g. a missing data.root): that is the
    sweep's own bad input, so it ends as one line and exit 2 rather than a table of failures."""
    from dlx.errors import DlxError

    if not children or any(statuses.get(c.run_id) != "failed" for c in children):
        return
    errors = {read_summary(child_dir(run_dir, c)).get("error") for c in children}
    if len(errors) == 1 and str(next(iter(errors))).startswith("DlxError: "):
        raise DlxError(f"{next(iter(errors)).removeprefix('DlxError: ')} (every child of the sweep)")


def sweep_status(run_dir: Path):
    """Children's statuses from their run directories; finalizes the sweep once all are done."""
    from omegaconf import OmegaConf

    from dlx.experiments import module as experiment

    run_dir = Path(run_dir)
    summary = read_json(run_dir / "summary.json")
    mod = experiment(summary.get("kind"))
    if not hasattr(mod, "children"):
        return None, summary
    cfg = OmegaConf.load(run_dir / "config.yaml")
    children = mod.children(cfg)
    statuses = {c.run_id: run_status(child_dir(run_dir, c)) for c in children}
    if all(s in DONE for s in statuses.values()) and summary.get("status") != "completed":
        mod.finalize(cfg, Run.reopen(run_dir, summary["kind"]), children)
        summary = read_json(run_dir / "summary.json")
    return status_frame(children, statuses), summary
