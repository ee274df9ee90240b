"""Deep symmetry networks (Gens & Domingos 2014): a symnet (dlx/models/symnet.py), the plain CNN with the
same layout and filters, that CNN trained with rotation augmentation, and a P4 group-convolution CNN, each
trained on rotated digits of several training-set sizes and seeds (ordinary train runs on the sweep
driver: resumable by --name, parallel workers). The same sweep holds the symnet ablation (K control
points, with and without the local-maximum search) and the invariance check (trained upright, tested at
every angle).

Steps: validate everything (plan.py, every child's config, the model and data settings) before the run
directory exists -> the sweep -> collect, the tables and claims (analysis.py), the per-angle evaluation
(invariance.py), the figures (plots.py).
"""

from __future__ import annotations

from pathlib import Path

from dlx.runs import Run
from dlx.threads import cpu_seconds


def children(cfg):
    from dlx.papers.symnets.plan import children as kids

    return kids(cfg)


def check(cfg, given: list[str]) -> None:
    """Build the data and the model of every distinct kind of child once (the largest training size of
    each), so a bad K, an unknown group, a malformed file or an impossible n_train is one line and exit 2
    before the run directory exists, not a sweep of failed children."""
    from dlx.config import compose
    from dlx.data import build_data
    from dlx.errors import DlxError
    from dlx.models import build_model
    from dlx.papers.symnets.plan import OWN_GROUPS, settings, variants
    from dlx.sweep.tuning import owned_keys, refuse_shadowed

    blocks = {v: settings(cfg, v) for v in variants(cfg)}
    refuse_shadowed(list(given), cfg, owned_keys(blocks, "symnets.settings.", OWN_GROUPS))
    groups: dict[tuple, list] = {}
    for c in children(cfg):  # the seed and the size change neither the model nor the file checks
        key = tuple(o for o in c.overrides if not o.startswith(("seed=", "data.n_train=")))
        groups.setdefault(key, []).append(c)
    for members in groups.values():
        biggest = max(members, key=lambda c: int(c.params.get("data.n_train") or 0))
        try:
            child = compose("symnets", [*given, *biggest.overrides])
        except DlxError as err:
            raise DlxError(f"{err} (in sweep child {' '.join(biggest.overrides)})") from None
        build_model(child.model, build_data(child.data).meta)


def tunables(cfg):
    from dlx.papers.symnets.plan import tunables as found

    return found(cfg)


def finalize(cfg, run: Run, kids):
    from dataclasses import replace

    from dlx.papers.symnets import analysis, invariance
    from dlx.papers.symnets.plan import (
        angles,
        base_K,
        nosearch_variant,
        plan,
        rules,
        study_of,
        symnet_variant,
        variants,
    )
    from dlx.sweep import collect
    from dlx.sweep.driver import finish

    ids = {c.overrides: c.run_id for c in kids}  # a tuned sweep's children carry a digest in their ids
    studies = {k: [replace(c, run_id=ids.get(c.overrides, c.run_id)) for c in v]
               for k, v in plan(cfg).items()}
    results, curves = collect(run.dir, kids)
    df = analysis.tidy(results, curves, study_of(studies))
    table = variants(cfg)
    sym = symnet_variant(cfg, table) or "symnet"
    k0 = base_K(table[sym]) if sym in table else None
    order = list(cfg.sweep.models)
    errors = analysis.error_table(df, order)
    abl = analysis.ablation_table(df, k0) if k0 is not None else analysis.ablation_table(df.iloc[:0], 0)
    inv = invariance.evaluate(run.dir, studies["invariance"], angles(cfg))
    nosearch = nosearch_variant(table, sym)
    claims = analysis.claims(analysis.seed_rows(df, "main"), analysis.seed_rows(df, "ablation", k0), inv,
                             rules(cfg), sym=sym, base_k=k0, nosearch=nosearch)
    metrics = analysis.metrics(errors, abl, inv, sym)
    cols = ["studies", "variant", "model", "n_train", "seed", "K", "refine", "warp", "rotate", "status",
            "test_error",
            "train_error", "params", "epochs", "steps", "epoch_s", "step_ms", "wall_s", "train_s", "run_id",
            "error"]
    results = df[[c for c in cols if c in df]]
    finish(run, results, metrics, curves=curves,
           tables={"errors": errors, "ablation": abl, "invariance": inv}, claims=claims,
           data=cfg.data.name, label=str(cfg.data.get("label", "digit")), children=len(kids),
           cpu_s=round(cpu_seconds(), 1),
           children_wall_s=round(float(results.wall_s.fillna(0).sum()), 1))
    return analysis.display_table(errors)


def plot(run_dir: Path) -> list[Path]:
    from dlx.papers.symnets.plots import plot_all

    return plot_all(Path(run_dir))
