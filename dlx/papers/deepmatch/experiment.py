"""A Deep Architecture for Matching Short Texts (Lu & Li, NIPS 2013; "DeepMatch"): DeepMatch and the
baselines the paper compares against (random, inner product, PLS, a low-rank bilinear model in the spirit of
RMLS) plus a modern dual encoder, ranked by P@1 of the true response among 1 + N candidates.

Children (dlx.sweep): every model is a ``train`` run (task=rank, data=textpairs; the fitted or fixed scorers
have no trainable parameters and are evaluated once). Three groups of children:

* the table: every model in ``deepmatch.models`` on all training pairs, ``deepmatch.seeds`` seeds each. The
  fixed scorers (random, inner product, PLS) run on every seed too: their scores do not depend on it but
  the tie-break of P@1 and MRR does (``task.tie_seed`` follows the run's seed), which gives them a spread
  over seeds and lets every comparison pair by seed (models listed in ``deepmatch.fixed_models`` run on the
  first seed only, e.g. an expensive PLS at paper scale);
* the ablation: ``deepmatch`` with one resolution (the finest of ``model.resolutions``) and without the
  hierarchy (every patch's local units straight to the output), on the same seeds;
* the learning curve: ``deepmatch.curve.models`` on nested subsets of the training pairs (``data.n_train``).

finalize aggregates seeds and decides the claims on the per-seed values (analysis.py), reads the learned
patches of the first DeepMatch child
(patches.py: from its checkpoint, never retraining), writes the claims and draws the figures (plots.py).
"""

from __future__ import annotations

from pathlib import Path

from dlx.config import integers
from dlx.errors import DlxError
from dlx.runs import Run
from dlx.threads import cpu_seconds

MODELS = ("random", "inner_product", "pls", "bilinear", "dual_encoder", "deepmatch")
VARIANTS = ("full", "one_resolution", "no_hierarchy")


def plan(cfg) -> dict:
    """The sweep's settings, checked: models, seeds, ablation variants, curve sizes."""
    from dlx.config import name_list

    d = cfg.deepmatch
    models = name_list(d.models, MODELS, "deepmatch.models", "model")
    if not models:
        raise DlxError("deepmatch.models must not be empty")
    fixed = name_list(d.fixed_models, MODELS, "deepmatch.fixed_models", "model")
    ablation = name_list(d.ablation, VARIANTS[1:], "deepmatch.ablation", "ablation variant")
    if ablation and "deepmatch" not in models:
        raise DlxError("deepmatch.ablation varies the deepmatch model: keep deepmatch in deepmatch.models")
    curve = d.curve
    sizes = sorted(set(integers(curve.n_train, "deepmatch.curve.n_train", lo=2, allow_empty=True)))
    curve_models = name_list(curve.models, MODELS, "deepmatch.curve.models", "model") if sizes else []
    return {"models": models, "fixed": [m for m in fixed if m in models],
            "seeds": integers(d.seeds, "deepmatch.seeds"), "ablation": ablation, "curve_sizes": sizes,
            "curve_models": [m for m in curve_models if m in models],
            "curve_seeds": integers(curve.seeds, "deepmatch.curve.seeds") if sizes else []}


OWN_GROUPS = ("optimizer", "trainer")  # deepmatch.settings.<model>.optimizer.lr=...: that model's own


def settings(cfg, model: str) -> dict:
    """The settings of one model's children (``deepmatch.settings.<model>``): model.* keys, and
    ``optimizer``/``trainer`` blocks of keys for that model alone."""
    from omegaconf import OmegaConf

    got = cfg.deepmatch.settings.get(model) if "settings" in cfg.deepmatch else None
    return dict(OmegaConf.to_container(got, resolve=True)) if got else {}


def variant_overrides(cfg, variant: str) -> list[str]:
    if variant == "one_resolution":
        res = settings(cfg, "deepmatch").get("resolutions") or [60]
        res = res if isinstance(res, list) else [res]
        return [f"model.resolutions=[{max(int(k) for k in res)}]"]
    if variant == "no_hierarchy":
        return ["model.hierarchy=false"]
    return []


def child(cfg, model: str, variant: str, seed: int, n_train: int | None):
    from dlx.sweep import Child, run_id
    from dlx.sweep.tuning import own_overrides

    params = {"model": model, "variant": variant, "seed": seed, "data.n_train": n_train}
    overrides = [f"model={model}", f"seed={seed}", f"data.n_train={'null' if n_train is None else n_train}"]
    overrides += own_overrides(settings(cfg, model), OWN_GROUPS)  # its own model and optimizer/trainer keys
    if model == "deepmatch":
        overrides += [f"model.lda_seed={seed}", *variant_overrides(cfg, variant)]
    return Child(run_id(params), tuple(overrides), params, "train")


def children(cfg):
    p = plan(cfg)
    kids = [child(cfg, m, "full", s, None) for m in p["models"]
            for s in (p["seeds"][:1] if m in p["fixed"] else p["seeds"])]
    kids += [child(cfg, "deepmatch", v, s, None) for v in p["ablation"] for s in p["seeds"]]
    for n in p["curve_sizes"]:
        kids += [child(cfg, m, "full", s, n) for m in p["curve_models"]
                 for s in (p["curve_seeds"][:1] if m in p["fixed"] else p["curve_seeds"])]
    return kids


def tunables(cfg):
    """`tune=true`: every compared model with a search space (conf/tune/<model>.yaml: PLS, bilinear, dual
    encoder, DeepMatch; random and inner product have nothing to tune), tuned as its first-seed child; the
    choices go to ``deepmatch.settings.<model>`` (model keys, and its own optimizer/trainer keys)."""
    from dlx.config import config_file
    from dlx.sweep.tuning import Tunable, into_block

    p = plan(cfg)
    out = []
    for m in p["models"]:
        if config_file("tune", m) is None:
            continue
        into = into_block(f"deepmatch.settings.{m}.", OWN_GROUPS)
        out.append(Tunable(m, "train", child(cfg, m, "full", p["seeds"][0], None).overrides, into))
    return out


def check(cfg, overrides=()) -> None:
    """What would make every child fail, refused before the sweep starts (and before any write)."""

    for ov in overrides:  # every child is another model: a model.* key would reach all of them
        key = ov.split("=", 1)[0].lstrip("+~")
        if key.startswith("model."):
            raise DlxError(f"'{ov}' would reach every model of the sweep; set deepmatch.settings.<model>."
                           f"{key[len('model.'):]} for the children of one model (e.g. "
                           "deepmatch.settings.deepmatch.resolutions=[60,20])")
    from dlx.sweep.tuning import owned_keys, refuse_shadowed

    blocks = {m: settings(cfg, m) for m in plan(cfg)["models"]}
    refuse_shadowed(list(overrides), cfg, owned_keys(blocks, "deepmatch.settings.", OWN_GROUPS))
    if cfg.data.name != "textpairs":
        raise DlxError(f"dlx reproduce deepmatch needs data=textpairs, got data={cfg.data.name}")
    if cfg.task.name != "rank":
        raise DlxError(f"dlx reproduce deepmatch needs task=rank, got task={cfg.task.name}")
    from dlx.data.textpairs import check_settings

    check_settings(cfg.data)
    if cfg.data.get("root") is None:
        if cfg.deepmatch.get("needs_root"):
            raise DlxError("this preset runs on a real corpus: give data.root=<a .tsv of "
                           "text_left<TAB>text_right[<TAB>label] lines, or a folder with pairs.tsv or "
                           "train.tsv and test.tsv> (the default preset uses the synthetic corpus)")
        n_train = int(cfg.data.pairs) - int(cfg.data.test_queries)
        for n in plan(cfg)["curve_sizes"]:
            if n > n_train:
                raise DlxError(f"deepmatch.curve.n_train has {n}, more than the {n_train} synthetic training "
                               "pairs (data.pairs - data.test_queries)")
    else:
        root = Path(str(cfg.data.root)).expanduser()
        if not root.exists():
            raise DlxError(f"data.root {root} does not exist (give a .tsv file or a folder with pairs.tsv, "
                           "or train.tsv and test.tsv)")
    # deepmatch.rules: checked against the record's bounds (RULES in dlx/papers/deepmatch) by dlx/launch.py




def finalize(cfg, run: Run, kids):
    import pandas as pd

    from dlx.papers.deepmatch.analysis import claims, learning, per_seed, summarize
    from dlx.papers.deepmatch.patches import learned_patches
    from dlx.sweep import collect
    from dlx.sweep.driver import finish

    results, _ = collect(run.dir, kids)
    results["curve"] = [c.params["data.n_train"] is not None for c in kids]
    for col in ("test_p_at_1", "test_mrr", "setup_s", "train_s", "wall_s"):
        if col not in results:
            results[col] = float("nan")
    table = summarize(results)
    curve = learning(results)
    said = claims(per_seed(results), cfg.deepmatch.rules, candidates=1 + int(cfg.data.test_negatives))
    first = next((c for i, c in enumerate(kids) if c.params["model"] == "deepmatch"
                  and c.params["variant"] == "full" and c.params["data.n_train"] is None
                  and results.status[i] == "completed"), None)
    patches = pd.DataFrame()
    if first is not None:
        patches = learned_patches(run.dir / "runs" / first.run_id, cfg.data,
                                  int(cfg.deepmatch.get("patch_words", 8)))
    cols = ["model", "variant", "seed", "n_train", "curve", "params", "test_p_at_1", "test_mrr", "test_loss",
            "status", "epochs", "setup_s", "train_s", "wall_s", "run_id", "error"]
    results = results[[c for c in cols if c in results.columns]]
    metrics = {f"p_at_1_{r.model}" + ("" if r.variant == "full" else f"_{r.variant}"): float(r.p_at_1)
               for r in table.itertuples() if pd.notna(r.p_at_1)}
    finish(run, results, metrics,
           tables={"table": table, "learning": curve, "patches": patches},
           claims=said, data=cfg.data.name,
           source=str(cfg.data.root) if cfg.data.get("root") else "synthetic",
           candidates=1 + int(cfg.data.test_negatives), children=len(kids),
           children_wall_s=round(float(pd.to_numeric(results.wall_s, errors="coerce").fillna(0).sum()), 1),
           cpu_s=round(cpu_seconds(), 1))
    return display(table)


def display(table):
    """The terminal's view of table.csv: mean ± std over seeds."""
    import pandas as pd

    def pm(mean, sd):
        if pd.isna(mean):
            return "-"
        return f"{100 * mean:.1f}" + ("" if pd.isna(sd) else f"±{100 * sd:.1f}")

    return pd.DataFrame({
        "model": table.model, "variant": table.variant,
        "P@1": [pm(m, s) for m, s in zip(table.p_at_1, table.p_at_1_std, strict=True)],
        "MRR": [pm(m, s) for m, s in zip(table.mrr, table.mrr_std, strict=True)],
        "runs": table.runs, "fit_s": [f"{v:.0f}" if pd.notna(v) else "-" for v in table.fit_s]})


def plot(run_dir: Path) -> list[Path]:
    from dlx.papers.deepmatch.plots import plot_all

    return plot_all(Path(run_dir))
