"""Understanding Batch Normalization (Bjorck et al. 2018): BN's benefit is that it allows larger learning
rates. The same network with and without BN is trained over a log-spaced lr grid (each cell an ordinary
train run through dlx.sweep, so a re-run with the same --name resumes); divergence (NaN/inf, or a loss
above trainer.divergence_factor x the first) ends a child as 'diverged' and the sweep goes on.

Init-time analyses run here in the parent on a fresh model of each kind (cheap, no training):
relative loss L(theta - eta g) / L(theta) vs step size eta on the first batches, per-layer activation
mean/std, and a middle layer's gradients.

Analysis rules (results.csv -> summary): a learning rate is *stable* for a network when no seed diverged
and the seed-mean final test accuracy is >= analysis.min_acc (a run that neither diverges nor learns, e.g.
stuck at chance, is not counted as stable; the largest merely non-diverged lr is reported too).
best = highest seed-mean final test accuracy over non-diverged lrs. The matched *small lr* is
analysis.small_lr, or by default no-BN's best lr (in the paper, no-BN's best is also its largest trainable
lr, 1e-4); the two are *close* when their seed-mean test accuracies differ by <= analysis.close_tol.
The training-curve figure adds BN at analysis.large_lr, by default the smallest lr above no-BN's largest
stable lr at which BN is stable.
"""

from __future__ import annotations

import copy
import math
import resource
import sys
from pathlib import Path

from dlx.errors import DlxError
from dlx.runs import Run, write_csv

CONFIG = "batchnorm"
SWEPT_BY = {"optimizer.lr": "set sweep.lrs=[...]", "model.batchnorm": "set sweep.bn=[...]",
            "seed": "set sweep.seeds=N (seeds 0..N-1)"}
TABLE_COLUMNS = ["bn", "lr", "seed", "train_acc", "test_acc", "diverged", "diverged_epoch", "epochs",
                 "wall_s"]


def grid(sweep) -> dict[str, list]:
    """Validate the sweep block and turn it into the grid (bn, lr, seed)."""
    from dlx.config import positive_floats

    lrs = positive_floats(sweep.lrs, "sweep.lrs")
    bns = list(sweep.bn)
    if not bns or any(not isinstance(b, bool) for b in bns):
        raise DlxError(f"sweep.bn must be a list of true/false, got {bns}")
    if not isinstance(sweep.seeds, int) or sweep.seeds < 1:
        raise DlxError(f"sweep.seeds must be an integer >= 1, got {sweep.seeds}")
    # large lrs first: the no-BN ones diverge fast, and a pool then ends with the long small-lr runs evenly
    return {"model.batchnorm": bns, "optimizer.lr": sorted(set(lrs), reverse=True),
            "seed": list(range(int(sweep.seeds)))}


def check_analysis(a) -> None:
    """Refuse analysis settings that would make the verdict meaningless, in one line each."""
    from dlx.config import number, positive_floats

    positive_floats(a.step_sizes, "analysis.step_sizes")
    for key in ("small_lr", "large_lr"):
        if a.get(key) is not None and number(a[key], f"analysis.{key}", lo=0) <= 0:
            raise DlxError(f"analysis.{key} must be a positive learning rate or null, got {a[key]}")
    if a.get("batch_size") is not None:
        number(a.batch_size, "analysis.batch_size", lo=1, integer=True)
    number(a.batches, "analysis.batches", lo=1, integer=True)
    number(a.close_tol, "analysis.close_tol", lo=0, hi=1)
    number(a.min_acc, "analysis.min_acc", lo=0, hi=1)


def tidy(results):
    """collect()'s frame -> one row per child: bn, lr, seed, accuracies, diverged and its epoch."""
    import numpy as np

    df = results.rename(columns={"batchnorm": "bn"}).copy()
    df["diverged"] = df.status == "diverged"
    for split in ("train", "test"):
        acc = 1.0 - df[f"{split}_error"].astype(float)
        df[f"{split}_acc"] = acc.where(~df.diverged, np.nan)  # a diverged net has no final accuracy
    return df


def lr_table(df):
    """Per (bn, lr): seed-mean test accuracy, and whether any seed diverged."""
    return (df.groupby(["bn", "lr"]).agg(test_acc=("test_acc", "mean"), train_acc=("train_acc", "mean"),
                                         diverged=("diverged", "any"), runs=("seed", "count"))
            .reset_index().sort_values(["bn", "lr"]))


def analyse(df, small_lr: float | None = None, close_tol: float = 0.03, min_acc: float = 0.5,
            large_lr: float | None = None) -> dict:
    """Largest stable lr, best accuracy and its lr per network; the matched small-lr comparison; the
    large lr the training-curve figure shows BN at."""
    table = lr_table(df)
    records = table.astype(object).where(table.notna(), None).to_dict("records")  # NaN is not JSON
    out: dict = {"per_lr": records}
    for bn, tag in ((True, "bn"), (False, "nobn")):
        t = table[(table.bn == bn) & ~table.diverged & table.test_acc.notna()]
        best = t.loc[t.test_acc.idxmax()] if len(t) else None
        useful = t[t.test_acc >= min_acc]
        out[f"{tag}_max_nondiverged_lr"] = float(t.lr.max()) if len(t) else None
        out[f"{tag}_max_stable_lr"] = float(useful.lr.max()) if len(useful) else None
        out[f"{tag}_best_lr"] = float(best.lr) if best is not None else None
        out[f"{tag}_best_test_acc"] = float(best.test_acc) if best is not None else None
        out[f"{tag}_diverged_lrs"] = sorted(table[(table.bn == bn) & table.diverged].lr.tolist())
    a, b = out["bn_max_stable_lr"], out["nobn_max_stable_lr"]
    out["stable_lr_ratio"] = a / b if a and b else None
    out["bn_best_above_nobn"] = (out["bn_best_test_acc"] is not None and out["nobn_best_test_acc"] is not None
                                 and out["bn_best_test_acc"] > out["nobn_best_test_acc"])
    out.update(best_gap(df, out))
    small = float(small_lr) if small_lr is not None else out["nobn_best_lr"]
    out["small_lr"] = small
    if small is not None:
        at = table[table.lr == small].set_index("bn").test_acc
        bn_acc, nobn_acc = at.get(True), at.get(False)
        out["small_lr_bn_test_acc"] = None if bn_acc is None or bn_acc != bn_acc else float(bn_acc)
        out["small_lr_nobn_test_acc"] = None if nobn_acc is None or nobn_acc != nobn_acc else float(nobn_acc)
        if out["small_lr_bn_test_acc"] is not None and out["small_lr_nobn_test_acc"] is not None:
            out["small_lr_gap"] = out["small_lr_bn_test_acc"] - out["small_lr_nobn_test_acc"]
            out["small_lr_close"] = abs(out["small_lr_gap"]) <= close_tol
    out["large_lr"] = float(large_lr) if large_lr is not None else beyond_nobn(table, min_acc, out)
    out["claims"] = {"stable_lr_ratio>=10": bool(out["stable_lr_ratio"] and out["stable_lr_ratio"] >= 10),
                     "bn_best>nobn_best": bool(out["bn_best_above_nobn"]),
                     "close_at_small_lr": bool(out.get("small_lr_close"))}
    return out


def best_gap(df, out: dict) -> dict:
    """BN's best minus no-BN's best seed-mean accuracy, and whether seed noise could explain it: Welch's
    t-test p-value over the per-seed accuracies at the two best lrs (None with fewer than 2 seeds each)."""
    if out["bn_best_test_acc"] is None or out["nobn_best_test_acc"] is None:
        return {}
    from scipy import stats

    a = df[(df.bn == True) & (df.lr == out["bn_best_lr"])].test_acc.dropna()  # noqa: E712
    b = df[(df.bn == False) & (df.lr == out["nobn_best_lr"])].test_acc.dropna()  # noqa: E712
    p = None
    if min(len(a), len(b)) >= 2 and (a.std() > 0 or b.std() > 0):
        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return {"best_gap": out["bn_best_test_acc"] - out["nobn_best_test_acc"], "best_gap_welch_p": p}


def beyond_nobn(table, min_acc: float, out: dict) -> float | None:
    """The smallest lr above no-BN's largest stable lr at which BN is stable: the lr that shows what BN
    makes possible. BN's best lr when there is none, or when the sweep has no no-BN runs."""
    def stable(t):
        return set(t[~t.diverged & (t.test_acc >= min_acc)].lr)

    nobn_rows = table[table.bn == False]  # noqa: E712
    if not len(nobn_rows):
        return out["bn_best_lr"]
    bn, nobn = stable(table[table.bn == True]), stable(nobn_rows)  # noqa: E712
    beyond = sorted(lr for lr in bn if not nobn or lr > max(nobn))
    return float(beyond[0]) if beyond else out["bn_best_lr"]


# ---- init-time analyses (a fresh model, no training) -------------------------------------------------

def first_batches(data, batch_size: int, n: int, seed: int):
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    out = []
    for x, y in data.train.batches(batch_size, shuffle=True, generator=gen):
        out.append((x, y))
        if len(out) >= n:
            break
    return out


def relative_loss(model, task, batches, step_sizes) -> list[dict]:
    """L(theta - eta g) / L(theta) on each batch, g that batch's gradient; the model is left untouched.

    The model stays in train mode (BN uses batch statistics, as in the training step being probed);
    running statistics and weights are restored afterwards."""
    import torch

    saved = copy.deepcopy(model.state_dict())
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    model.train()
    for i, batch in enumerate(batches):
        model.zero_grad(set_to_none=True)
        loss0 = task.loss(model, batch)
        grads = torch.autograd.grad(loss0, params)
        theta = [p.detach().clone() for p in params]
        l0 = float(loss0.detach())
        gnorm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))
        for eta in step_sizes:
            with torch.no_grad():
                for p, t, g in zip(params, theta, grads, strict=True):
                    p.copy_(t - float(eta) * g)
                loss = float(task.loss(model, batch))
            rows.append({"batch": i, "eta": float(eta), "loss0": l0, "loss": loss, "grad_norm": gnorm,
                         "ratio": loss / l0 if math.isfinite(loss) else math.inf})
        with torch.no_grad():
            for p, t in zip(params, theta, strict=True):
                p.copy_(t)
    model.load_state_dict(saved)
    return rows


def probe_layers(model) -> list[tuple[str, object]]:
    """The layers whose outputs the activation statistics describe: the stem and every residual block
    (or, for other model families, every top-level module that keeps a channel axis)."""
    from dlx.models.resnet_cifar import BasicBlock

    blocks = [(n, m) for n, m in model.named_modules() if isinstance(m, BasicBlock)]
    if blocks:
        stem = [(n, m) for n, m in model.named_children() if m.__class__.__name__ == "ReLU"][:1]
        return stem + blocks
    return [(n, m) for n, m in model.named_children() if m.__class__.__name__ == "ReLU"]


def activation_stats(model, batch) -> list[dict]:
    """Per probed layer on one batch in train mode: mean |channel mean| and mean channel std.
    Running statistics are restored afterwards."""
    import torch

    saved = copy.deepcopy(model.state_dict())
    layers = probe_layers(model)
    if not layers:
        raise DlxError("activation statistics need a model with residual blocks or ReLU layers")
    found: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, out, name=name: found.__setitem__(name, out.detach()))
             for name, m in layers]
    model.train()
    try:
        with torch.no_grad():
            model(batch[0])
    finally:
        for h in hooks:
            h.remove()
        model.load_state_dict(saved)
    rows = []
    for i, (name, _) in enumerate(layers):
        a = found[name].double()
        per_channel = a.transpose(0, 1).reshape(a.shape[1], -1)  # (C, N*H*W)
        rows.append({"layer": i, "name": name, "abs_mean": float(per_channel.mean(1).abs().mean()),
                     "std": float(per_channel.std(1).mean()), "max_abs": float(a.abs().max())})
    return rows


def middle_conv(model):
    """(name, module) of the first conv of the middle residual block."""
    import torch.nn as nn

    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    if not convs:
        raise DlxError("the gradient histogram needs a model with conv layers")
    return convs[len(convs) // 2]


def middle_gradients(model, task, batch):
    """Gradients of the middle conv layer's weights on one batch (train mode); weights untouched."""
    saved = copy.deepcopy(model.state_dict())
    name, conv = middle_conv(model)
    model.train()
    model.zero_grad(set_to_none=True)
    task.loss(model, batch).backward()
    values = conv.weight.grad.detach().flatten().double().cpu().numpy()
    model.zero_grad(set_to_none=True)
    model.load_state_dict(saved)
    return name, values


def init_analyses(cfg, bns) -> tuple:
    """relative_loss.csv, activations.csv and gradients.csv rows for a fresh model of each kind."""
    import pandas as pd
    from omegaconf import OmegaConf

    from dlx.experiments.train import build

    rel, act, grad = [], [], []
    for bn in bns:
        c = copy.deepcopy(cfg)
        OmegaConf.update(c, "model.batchnorm", bool(bn))
        parts = build(c)  # seeds before the model init: the same conv weights with and without BN
        bs = int(cfg.analysis.batch_size or cfg.trainer.batch_size)
        batches = first_batches(parts.data, bs, int(cfg.analysis.batches), int(cfg.seed))
        rel += [{"bn": bool(bn), **r} for r in relative_loss(parts.model, parts.task, batches,
                                                             list(cfg.analysis.step_sizes))]
        act += [{"bn": bool(bn), **r} for r in activation_stats(parts.model, batches[0])]
        name, values = middle_gradients(parts.model, parts.task, batches[0])
        grad.append(pd.DataFrame({"bn": bool(bn), "layer": name, "grad": values}))
    return pd.DataFrame(rel), pd.DataFrame(act), pd.concat(grad, ignore_index=True)


def init_summary(rel, act, grad) -> dict:
    """Numbers the paper quotes: the largest eta that still lowers the loss, activation growth with depth,
    and how much larger / heavier-tailed the no-BN gradients are."""
    out = {}
    for bn, tag in ((True, "bn"), (False, "nobn")):
        r = rel[rel.bn == bn].groupby("eta").ratio.median()
        if len(r):
            out[f"{tag}_best_eta"] = float(r.idxmin())
            out[f"{tag}_max_eta_loss_falls"] = float(r[r < 1].index.max()) if (r < 1).any() else None
        a = act[act.bn == bn].sort_values("layer")
        if len(a):
            out[f"{tag}_act_std_first_last"] = [float(a["std"].iloc[0]), float(a["std"].iloc[-1])]
        g = grad[grad.bn == bn].grad
        if len(g):
            out[f"{tag}_grad_abs_mean"] = float(g.abs().mean())
            out[f"{tag}_grad_kurtosis"] = float(g.kurt())
    if out.get("bn_grad_abs_mean") and out.get("nobn_grad_abs_mean"):
        out["grad_ratio_nobn_over_bn"] = out["nobn_grad_abs_mean"] / out["bn_grad_abs_mean"]
    return out


# ---- the experiment ----------------------------------------------------------------------------------

def cpu_seconds() -> float:
    """CPU time of this command so far: this process and its finished children (the pool workers)."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def child_extras(run_dir: Path, results):
    """diverged_epoch (1-based: the epoch in which the loss blew up) and training wall time per child."""
    from dlx.runs import read_json

    epochs, train_wall = [], []
    for rid in results.run_id:
        path = Path(run_dir) / "runs" / rid / "summary.json"
        s = read_json(path) if path.is_file() else {}
        epochs.append(s.get("diverged_epoch"))
        train_wall.append(s.get("train_wall_s"))
    results = results.copy()
    results["diverged_epoch"] = epochs
    results["train_wall_s"] = train_wall
    return results


def children(cfg):
    from dlx.sweep import expand

    return expand(grid(cfg.sweep))


def run(cfg, run: Run):
    """Init-time analyses in this process (cheap), then the lr x bn x seed sweep of child runs."""
    from dlx.sweep.driver import run_sweep

    check_analysis(cfg.analysis)
    grid(cfg.sweep)  # bad sweep settings stop here, before the init analyses
    rel, act, grad = init_analyses(cfg, list(cfg.sweep.bn))
    write_csv(run.path("relative_loss.csv"), rel)
    write_csv(run.path("activations.csv"), act)
    write_csv(run.path("gradients.csv"), grad)
    return run_sweep(cfg, run, sys.modules[__name__])


def finalize(cfg, run: Run, children):
    import pandas as pd

    from dlx.sweep import collect
    from dlx.sweep.execute import DONE

    results, curves = collect(run.dir, children)
    results = tidy(child_extras(run.dir, results))
    cols = ["bn", "lr", "seed", "train_acc", "test_acc", "diverged", "diverged_epoch", "diverged_step",
            "status", "epochs", "train_loss", "test_loss", "params", "wall_s", "train_wall_s", "run_id",
            "error"]
    results = results[cols].sort_values(["bn", "lr", "seed"], ascending=[False, True, True])
    write_csv(run.path("results.csv"), results)
    if len(curves):
        curves = curves.rename(columns={"batchnorm": "bn"})
    write_csv(run.path("curves.csv"), curves)
    analysis = analyse(results, cfg.analysis.small_lr, float(cfg.analysis.close_tol),
                       float(cfg.analysis.min_acc), cfg.analysis.large_lr)
    names = ("relative_loss", "activations", "gradients")
    init = init_summary(*(pd.read_csv(run.path(f"{n}.csv")) for n in names))
    done = results.status.isin(DONE).all()
    metrics = {k: v for k, v in analysis.items() if k not in ("per_lr", "claims")}
    run.summary("completed" if done else "failed", metrics, analysis=analysis, init=init,
                model=cfg.model.name, depth=cfg.model.get("depth"), data=cfg.data.name,
                children=len(children),
                children_wall_s=round(float(results.wall_s.fillna(0).sum()), 1),
                cpu_s=round(cpu_seconds(), 1))
    plot(run.dir)
    return results


def headline(summary: dict) -> str:
    a = summary.get("analysis", {})
    if not a:
        return f"batchnorm: {summary.get('status')}"

    def pct(v):
        return "n/a" if v is None else f"{100 * v:.1f}%"

    claims = a.get("claims", {})
    p = a.get("best_gap_welch_p")
    noise = "" if p is None else f" (Welch p={p:.2g} over seeds)"
    r = a.get("stable_lr_ratio")
    ratio = "ratio n/a" if r is None else f"{r:.3g}x"
    return (f"batchnorm: largest stable lr {a.get('bn_max_stable_lr')} with BN vs "
            f"{a.get('nobn_max_stable_lr')} without ({ratio}; "
            f"{'holds' if claims.get('stable_lr_ratio>=10') else 'fails'} >= 10x); best test accuracy "
            f"{pct(a.get('bn_best_test_acc'))} vs {pct(a.get('nobn_best_test_acc'))}{noise}; "
            f"at lr {a.get('small_lr')}: "
            f"{pct(a.get('small_lr_bn_test_acc'))} vs {pct(a.get('small_lr_nobn_test_acc'))} "
            f"({'close' if claims.get('close_at_small_lr') else 'not close'})")


def plot(run_dir: Path) -> list[Path]:
    from dlx.plots.batchnorm import plot_all

    return plot_all(Path(run_dir))
