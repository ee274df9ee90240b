"""`dlx reproduce fp8`: Wang et al. (2018), 8-bit floating-point training.

Four parts, each a table: results.csv (model x precision test error and its difference to fp32),
curves.csv (test error per epoch of every cell), swamping.csv (relative error of FP16 1-6-9 dot
products, sequential vs chunked, against float64) and cost.csv (emulated step time over fp32).
"""

from __future__ import annotations

from pathlib import Path

from dlx.errors import DlxError
from dlx.runs import Run


def _cell_cfg(base_overrides: list[str], extra: list[str]):
    from dlx.config import compose

    return compose("fp8", [*base_overrides, *extra])


def _model_overrides(cfg, label: str) -> list[str]:
    known = cfg.fp8.model_overrides
    if label not in known:
        raise DlxError(f"fp8.models: unknown model label '{label}' (choose from: {', '.join(known)})")
    return [str(o) for o in known[label]]


def children(cfg):
    """One child train run per (model label, precision, seed); each label stands for a list of overrides.
    The precisions in fp8.seeded (those the claims compare) run seeds 0..fp8.seeds-1, the others seed 0."""
    from dlx.config import choices, name_list, number
    from dlx.sweep import Child, run_id

    chosen = name_list(cfg.fp8.precisions, choices("precision"), "fp8.precisions", "precision")
    precisions = chosen + (["fp8_wang_nochunk"] if cfg.fp8.nochunk else [])
    seeds = number(cfg.fp8.seeds, "fp8.seeds", lo=1, integer=True)
    seeded = set(name_list(cfg.fp8.seeded, choices("precision"), "fp8.seeded", "precision"))
    bounded = cfg.fp8.get("nochunk_steps")
    if bounded is not None:
        bounded = number(bounded, "fp8.nochunk_steps (null = as long as the others)", lo=1, integer=True)
    kids = []
    for label in cfg.fp8.models:
        model_ov = _model_overrides(cfg, label)
        for prec in precisions:
            extra = (f"trainer.steps={bounded}",) if prec == "fp8_wang_nochunk" and bounded else ()
            for seed in range(seeds if prec in seeded else 1):
                params = {"model": label, "precision": prec, "seed": seed}
                kids.append(Child(run_id(params), (*model_ov, f"precision={prec}", *extra, f"seed={seed}"),
                                  params))
    return kids + update_children(cfg)


def update_children(cfg):
    """The small-update cells: SGD without momentum at fp8.updates.lr, a few seeds per precision."""
    from dlx.config import choices, name_list, number
    from dlx.sweep import Child, run_id

    u = cfg.fp8.get("updates")
    if not u or not u.precisions:
        return []
    precs = name_list(u.precisions, choices("precision"), "fp8.updates.precisions", "precision")
    lr = number(u.lr, "fp8.updates.lr", lo=0)
    seeds = number(u.seeds, "fp8.updates.seeds", lo=1, integer=True)
    model_ov = _model_overrides(cfg, str(u.model))
    kids = []
    for seed in range(seeds):
        for prec in precs:
            params = {"part": "updates", "model": str(u.model), "precision": prec, "seed": seed}
            kids.append(Child(run_id(params), (*model_ov, f"precision={prec}", f"optimizer.lr={lr}",
                                               "optimizer.momentum=0.0", "optimizer.schedule=constant",
                                               f"seed={seed}"), params))
    return kids


def cells(results, curves):
    """results.csv rows from the collected children. A child stopped by a DlxError (fp8_native without
    FP8 hardware) is a documented skip, not a failure."""
    from dlx.runs import usage_error

    rows = []
    for r in results.to_dict("records"):
        err = r.get("error") if isinstance(r.get("error"), str) else ""
        row = {"model": r["model"], "precision": r["precision"], "seed": int(r.get("seed") or 0),
               "status": r["status"]}
        skip = usage_error({"status": r["status"], "error": err, "error_type": r.get("error_type")})
        if skip:
            rows.append({**row, "status": "skipped", "reason": skip})
            continue
        rows.append({**row, "test_error": r.get("test_error"), "best_test_error": r.get("best_test_error"),
                     "test_loss": r.get("test_loss"), "wall_s": r.get("wall_s"), "params": r.get("params"),
                     "reason": err or None})
    keep = [c for c in ("model", "precision", "seed", "epoch", "step", "test_error", "test_loss")
            if c in curves]
    return rows, (curves[keep] if len(curves) else curves)


def at_step(curves, model: str, precision: str, step: int, seed: int | None = None) -> float | None:
    """A cell's test error at its last evaluation no later than ``step`` (curves.csv), of one seed."""
    if curves is None or not len(curves):
        return None
    c = curves[(curves.model == model) & (curves.precision == precision) & (curves.step <= step)]
    if seed is not None and "seed" in c:
        c = c[c.seed == seed]
    return None if not len(c) else float(c.sort_values("step").test_error.iloc[-1])


def dot_errors(n: int, chunk: int | None, trials: int, seed: int, exact: bool = True):
    """Per-trial relative errors of ``trials`` length-n FP8 dot products accumulated in FP16 1-6-9
    against float64 (the draws and arithmetic of dlx.precision.chunked.dot_error, whose value is their
    mean)."""
    import torch

    from dlx.precision.chunked import chunked_matmul
    from dlx.precision.formats import E5M2, FP16_169, quantize

    g = torch.Generator().manual_seed(seed)
    x = quantize(torch.rand(trials, n, generator=g), E5M2)
    y = quantize(torch.rand(n, trials, generator=g), E5M2)
    ref = (x.double() * y.double().T).sum(1)
    out = chunked_matmul(x, y, FP16_169, chunk, exact=exact, products_exact=True).diagonal().double()
    return ((out - ref).abs() / ref.abs().clamp_min(1e-300)).tolist()


def swamping(cfg) -> tuple[list[dict], list[dict]]:
    """swamping.csv rows (mean relative error per length, chunk and path) and swamping_trials.csv rows
    (every trial's error, what the chunking claim is decided on)."""
    sw = cfg.fp8.swamp
    rows, trials = [], []
    for lg in sw.log2_lengths:
        n = 2 ** int(lg)
        for chunk in [None, *sw.chunks]:
            for path in ("exact", "fast") if chunk is not None else ("exact",):
                errs = dot_errors(n, chunk, int(sw.trials), int(cfg.seed), exact=path == "exact")
                label = "none" if chunk is None else int(chunk)
                rows.append({"n": n, "chunk": label, "rel_error": sum(errs) / len(errs), "path": path})
                trials += [{"n": n, "chunk": label, "path": path, "trial": t, "rel_error": e}
                           for t, e in enumerate(errs)]
    return rows, trials


def step_time(cfg, steps: int) -> float:
    """Median seconds per training step (forward, backward, optimizer step) after 2 warm-up steps."""
    from dlx.build import build
    from dlx.estimate import step_seconds

    parts = build(cfg)
    return step_seconds(parts, parts.precision.prepare(parts.model), cfg, steps)


def step_costs(cfg, run: Run) -> list[dict]:
    """Emulated step time over fp32 per model: fp8_wang fast, and (fp8.cost.exact) the exact sequential
    emulation, which at paper scale takes minutes per step. fp8.cost.steps=0 skips the measurement."""
    base = [o for o in run.overrides() if not o.startswith(("precision=", "model="))]
    variants = {"fp32": ["precision=fp32"], "fp8_wang (fast)": ["precision=fp8_wang"]}
    if cfg.fp8.cost.get("exact", True):
        variants["fp8_wang (exact)"] = ["precision=fp8_wang", "precision.exact=true"]
    rows = []
    steps = int(cfg.fp8.cost.steps)
    if steps < 0:
        raise DlxError(f"fp8.cost.steps must be >= 0 (0 skips the cost measurement), got {steps}")
    if steps == 0:
        return rows
    for label in cfg.fp8.models:
        model_ov = _model_overrides(cfg, label)
        t = {v: step_time(_cell_cfg(base, [*model_ov, *ov]), steps) for v, ov in variants.items()}
        for v, s in t.items():
            rows.append({"model": label, "variant": v, "step_s": s, "ratio_to_fp32": s / t["fp32"]})
    return rows


def finalize(cfg, run: Run, kids):
    import pandas as pd

    from dlx.device import resolve_device
    from dlx.sweep import collect
    from dlx.sweep.child import DONE
    from dlx.sweep.driver import finish

    results, curves = collect(run.dir, kids)
    part = results.part if "part" in results else None
    updates = results[part == "updates"] if part is not None else results.iloc[:0]
    upd_curves = curves[curves.part == "updates"] if "part" in curves else curves.iloc[:0]
    if part is not None:
        results = results[part != "updates"]
        curves = curves[curves.part != "updates"] if "part" in curves else curves
    rows, curves = cells(results, curves)
    cols = ["model", "precision", "seed", "run_id", "status", "test_error", "test_loss", "wall_s"]
    upd = updates[[c for c in cols if c in updates]].astype({"seed": int}) if len(updates) else None
    df = pd.DataFrame(rows)
    ref = {(r["model"], r["seed"]): r.get("test_error") for r in rows if r["precision"] == "fp32"}
    df["diff_to_fp32"] = [r.get("test_error") - ref[(r["model"], r["seed"])]
                          if r.get("test_error") is not None and ref.get((r["model"], r["seed"])) is not None
                          else None for r in rows]
    sw_rows, sw_trials = swamping(cfg)
    sw, trials = pd.DataFrame(sw_rows), pd.DataFrame(sw_trials)
    cost_df = pd.DataFrame(step_costs(cfg, run), columns=["model", "variant", "step_s", "ratio_to_fp32"])
    metrics = {}
    done = df[df.status.isin(DONE) & df.test_error.notna()] if "test_error" in df else df.iloc[:0]
    for (m, prec), g in done.groupby(["model", "precision"], sort=False):  # seed means
        metrics[f"{m}/{prec}/test_error"] = float(g.test_error.mean())
        if g.diff_to_fp32.notna().any():
            metrics[f"{m}/{prec}/diff_to_fp32"] = float(g.diff_to_fp32.mean())
    for r in cost_df.to_dict("records"):
        if r["variant"] != "fp32":
            key = "fast" if "fast" in r["variant"] else "exact"
            metrics[f"{r['model']}/cost_ratio_{key}"] = r["ratio_to_fp32"]
    big = sw[sw.n == sw.n.max()]
    metrics["swamp_seq_rel_error_maxn"] = float(big[big.chunk.astype(str) == "none"].rel_error.iloc[0])
    cl64 = big[(big.chunk.astype(str) == str(cfg.fp8.rules.chunk)) & (big.path == "exact")]
    if len(cl64):
        metrics["swamp_cl64_rel_error_maxn"] = float(cl64.rel_error.iloc[0])
    tables = {"swamping": sw, "swamping_trials": trials, "cost": cost_df}
    if upd is not None:
        keep = [c for c in ("precision", "seed", "epoch", "test_error", "test_loss") if c in upd_curves]
        tables.update(updates=upd, updates_curves=upd_curves[keep])
    ok = bool(upd is None or updates.status.isin(DONE).all())
    lr = cfg.fp8.updates.lr if cfg.fp8.get("updates") else None
    return finish(run, df, metrics, curves=curves, ok=(*DONE, "skipped") if ok else (),
                  tables=tables, device=resolve_device(cfg.get("device", "auto")),
                  claims=claims(df, curves, upd, trials, cfg.fp8.rules, updates_lr=lr))


DONE_STATUSES = ("completed", "diverged")  # a cell's test error counts once it trained to the end


def seed_errors(table, model: str | None, precision: str) -> dict[int, float]:
    """seed -> final test error of one cell's finished runs (``model`` None: any model)."""
    import math

    if table is None or not len(table):
        return {}
    sub = table[(table.precision == precision) & table.status.isin(DONE_STATUSES)]
    if model is not None:
        sub = sub[sub.model == model]
    out = {}
    for r in sub.to_dict("records"):
        v = r.get("test_error")
        if v is not None and math.isfinite(float(v)):
            out[int(r.get("seed") or 0)] = float(v)
    return out


def paired(a: dict, b: dict) -> tuple[list[float], list[float]]:
    seeds = sorted(set(a) & set(b))
    return [a[s] for s in seeds], [b[s] for s in seeds]


BAD = {"fails": 0, "inconclusive": 1, "holds": 2}


def deciding(tests: dict) -> tuple[str, dict]:
    """The model whose comparison decides an 'every model' claim: a failing one, else an inconclusive
    one, else the hold whose interval comes nearest the line (so every model holds when it does)."""
    def key(item):
        t = item[1]
        lo, hi = t["ci"] if t["ci"] is not None else (float("-inf"), float("inf"))
        near = -hi if t["direction"] == "less" else lo
        return BAD[t["verdict"]], near
    return min(tests.items(), key=key)


def _per_model(tests: dict) -> dict:
    def text(t):
        est = "-" if t["estimate"] is None else f"{100 * t['estimate']:+.2f} pt"
        ci = "" if t["ci"] is None else f" [{100 * t['ci'][0]:+.2f}, {100 * t['ci'][1]:+.2f}]"
        return f"{est}{ci}, n={t['n']} ({t['verdict']})"
    return {m: text(t) for m, t in tests.items()}


def matches_fp32(results, rules) -> dict:
    from dlx.claims import claim, compare, rule_text

    text = "FP8 training with chunked FP16 accumulation and stochastic rounding keeps FP32 accuracy"
    paper = "every model within ~0.5 point of FP32 (CIFAR-10 CNN and ResNet, ImageNet models)"
    margin = float(rules["match"])
    models = list(dict.fromkeys(results.model)) if results is not None and len(results) else []
    tests = {}
    for m in models:
        a, b = paired(seed_errors(results, m, "fp8_wang"), seed_errors(results, m, "fp32"))
        if a:
            tests[m] = compare(a, b, direction="less", margin=margin, paired=True)
    rule = f"fp8_wang - fp32 test error (paired by seed) < {100 * margin:g} points for every model"
    if not tests:
        return claim("fp8_matches_fp32", text, None, rule, paper, why="fp8_wang or fp32 cells missing")
    m, t = deciding(tests)
    return claim("fp8_matches_fp32", text, _per_model(tests),
                 rule_text(t, what="for every model, fp8_wang - fp32 test error (paired by seed)", scale=100,
                           unit=" points") + f"; the interval shown is the deciding model's ({m})",
                 paper, test=t, scale=100)


def chunking_cuts_swamping(trials, rules) -> dict:
    """log10(CL error / sequential error) per trial at the longest length, paired, < -log10(factor)."""
    import math

    from dlx.claims import claim, compare, rule_text

    text = "chunk-based FP16 accumulation avoids swamping in long dot products"
    paper = "sequential FP16 accumulation loses small products (swamping); chunks of 64 fix it"
    chunk, factor = int(rules["chunk"]), float(rules["swamp_factor"])
    rule = f"per-trial relative error with CL={chunk} <= 1/{factor:g} of sequential's at the longest length"
    if trials is None or not len(trials):
        return claim("chunking_cuts_swamping", text, None, rule, paper, why="no swamping measurement")
    big = trials[(trials.n == trials.n.max()) & (trials.path == "exact")]
    seq = big[big.chunk.astype(str) == "none"].set_index("trial").rel_error
    cl = big[big.chunk.astype(str) == str(chunk)].set_index("trial").rel_error
    common = sorted(set(seq.index) & set(cl.index))
    if not common:
        return claim("chunking_cuts_swamping", text, None, rule, paper,
                     why=f"CL={chunk} not in fp8.swamp.chunks")

    def log(v):
        return math.log10(max(float(v), 1e-12))
    t = compare([log(cl[i]) for i in common], [log(seq[i]) for i in common], direction="less",
                margin=-math.log10(factor), paired=True)
    n = int(trials.n.max())
    return claim("chunking_cuts_swamping", text,
                 {"n": n, "sequential": float(seq.loc[common].mean()),
                  f"chunked CL={chunk}": float(cl.loc[common].mean()),
                  "ratio": round(10 ** t["estimate"], 4)},
                 rule_text(t, what=f"log10(CL={chunk} error / sequential error) per trial at N={n}")
                 + f" (= CL={chunk} at most 1/{factor:g} of sequential)",
                 paper, test=t)


def rounding_claim(results, updates, rules, lr) -> dict:
    """Stochastic rounding of the FP16 update matters where updates are small: fp8_wang_nearest against
    fp8_wang at fp8.updates.lr, paired by seed, with the default-lr difference beside it."""
    from dlx.claims import claim, compare, rule_text

    text, paper = ("rounding FP16 weight updates to nearest loses small updates and accuracy",
                   "nearest rounding of the FP16 update degrades accuracy; stochastic rounding recovers it")
    margin = float(rules["rounding"])
    default = {}
    models = list(dict.fromkeys(results.model)) if results is not None and len(results) else []
    for m in models:
        a, b = paired(seed_errors(results, m, "fp8_wang_nearest"), seed_errors(results, m, "fp8_wang"))
        if a:
            default[f"{m} at the default lr"] = f"{100 * (sum(a) - sum(b)) / len(a):+.2f} pt"
    a, b = paired(seed_errors(updates, None, "fp8_wang_nearest"), seed_errors(updates, None, "fp8_wang"))
    rule = (f"fp8_wang_nearest - fp8_wang test error at fp8.updates.lr (paired by seed) > {100 * margin:g} "
            "points")
    if not a:
        return claim("stochastic_rounding_needed", text, default or None, rule, paper,
                     why="the small-update cells did not run (fp8.updates.precisions)")
    t = compare(a, b, direction="greater", margin=margin, paired=True)
    at = f"lr {lr:g}" if lr is not None else "fp8.updates.lr"
    return claim("stochastic_rounding_needed", text,
                 {f"{at}: nearest - SR per seed": [f"{100 * (x - y):+.2f} pt"
                                                   for x, y in zip(a, b, strict=True)], **default},
                 rule_text(t, what=f"fp8_wang_nearest - fp8_wang test error at {at} (small updates; paired "
                           "by seed)", scale=100, unit=" points"),
                 paper, test=t, scale=100)


def chunking_needed(results, curves, rules) -> dict:
    """fp8_wang_nochunk against fp8_wang at the no-chunk run's last evaluation, paired by seed, per model."""
    from dlx.claims import claim, compare, rule_text

    text = "without chunking, FP16 accumulation degrades training"
    paper = "sequential FP16 accumulation costs accuracy; chunking recovers it"
    margin = float(rules["chunking"])
    tests, steps = {}, set()
    has = curves is not None and len(curves) and "step" in curves
    for m in (list(dict.fromkeys(curves.model)) if has else []):
        cut = curves[(curves.model == m) & (curves.precision == "fp8_wang_nochunk")]
        seeds = sorted(int(s) for s in cut.seed.unique()) if "seed" in cut else [None]
        a, b = [], []
        for s in seeds:
            mine = cut if s is None else cut[cut.seed == s]
            if not len(mine):
                continue
            last = int(mine.step.max())
            ref = at_step(curves, m, "fp8_wang", last, s)
            if ref is not None:
                a.append(at_step(curves, m, "fp8_wang_nochunk", last, s))
                b.append(ref)
                steps.add(last)
        if a:
            tests[m] = compare(a, b, direction="greater", margin=margin, paired=True)
    rule = (f"fp8_wang_nochunk - fp8_wang test error at the same step (paired by seed) > {100 * margin:g} "
            "points for every model")
    if not tests:
        return claim("chunking_needed_in_training", text, None, rule, paper,
                     why="not trained by default: the exact sequential emulation takes ~50 s per epoch on a "
                         "CPU (fp8.nochunk=true trains it)")
    m, t = deciding(tests)
    at = f"step {min(steps)}" if len(steps) == 1 else "the no-chunk runs' last evaluations"
    return claim("chunking_needed_in_training", text, _per_model(tests),
                 rule_text(t, what=f"for every model, fp8_wang_nochunk - fp8_wang test error at {at} (paired "
                           "by seed)", scale=100, unit=" points")
                 + f"; the interval shown is the deciding model's ({m})",
                 paper, test=t, scale=100)


def claims(results, curves=None, updates=None, swamp_trials=None, rules=None, updates_lr=None) -> list[dict]:
    """Wang et al.'s claims, a pure function of the tables: results (model, precision, seed, status,
    test_error), curves (model, precision, seed, step, test_error), updates (precision, seed, status,
    test_error), swamping trials (n, chunk, path, trial, rel_error) and fp8.rules."""
    return [matches_fp32(results, rules), chunking_cuts_swamping(swamp_trials, rules),
            rounding_claim(results, updates, rules, updates_lr), chunking_needed(results, curves, rules)]


def plot(run_dir: Path) -> list[Path]:
    from dlx.papers.fp8.plots import plot_fp8_run

    return plot_fp8_run(Path(run_dir))
