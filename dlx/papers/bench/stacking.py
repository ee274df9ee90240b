"""The stacking suite: S same-shape children (seeds 0..S-1) trained one by one with fit() and together
with fit_stack() (dlx/train/stacked.py), children-epochs per second for each, in one run, on the
double-descent MLP (MNIST-1D, 15% label noise, per-seed noise) at a few widths and on a small CNN (cnn5
of width k on digits). Both modes build their members the same way and train the same epochs with the
same evaluation schedule; rounds alternate the two so drifting machine load hits both alike. CPU time is
recorded beside wall time: on a shared machine the CPU-time ratio is the steadier one."""

from __future__ import annotations

import statistics
import time

from dlx.errors import DlxError

WORKLOADS = ("mlp", "cnn")


def overrides(kind: str, width: int, epochs: int) -> list[str]:
    """The composed config of one child: the double-descent presets at a given width."""
    common = [f"model.width={int(width)}", f"trainer.epochs={int(epochs)}", "trainer.eval_points=2",
              "trainer.threads=1", "trainer.progress=none"]
    if kind == "mlp":
        return [*common, "data.label_noise=0.15"]
    return ["experiment=double_descent_digits", "model=cnn5", *common, "data.label_noise=0.2"]


def check(scfg) -> None:
    for key in ("mlp_widths", "cnn_widths", "sizes"):
        values = list(scfg.get(key) or [])
        if any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
            raise DlxError(f"bench.stacking.{key} must be positive integers, got {values}")
    if not list(scfg.sizes):
        raise DlxError("bench.stacking.sizes is empty: give stack sizes, e.g. [1,3,8]")
    for key in ("epochs", "repeats"):
        if int(scfg.get(key)) < 1:
            raise DlxError(f"bench.stacking.{key} must be >= 1, got {scfg.get(key)}")


def _configs(kind: str, width: int, epochs: int, n: int) -> list:
    from dlx.config import compose

    return [compose("double_descent", [*overrides(kind, width, epochs), f"seed={s}"]) for s in range(n)]


def _build(cfgs: list) -> list:
    from dlx.build import build

    return [(cfg, build(cfg)) for cfg in cfgs]


def _one_by_one(built) -> list[float]:
    from dlx.train import fit

    finals = []
    for cfg, p in built:
        hist = fit(p.model, p.task, p.data, p.precision, cfg.trainer, cfg.optimizer, seed=cfg.seed)
        finals.append(hist.final.get("train_loss", float("nan")))
    return finals


def _members(built) -> list:
    from dlx.train.stacked import member_state

    return [member_state(p.model, p.task, p.data, p.precision, cfg.trainer, cfg.optimizer, int(cfg.seed))
            for cfg, p in built]


def _stacked(members, trainer_cfg) -> list[float]:
    from dlx.train.stacked import fit_stack

    fit_stack(members, trainer_cfg)
    return [m.state.history[-1].get("train_loss", float("nan")) if m.state.history else float("nan")
            for m in members]


def run_stacking(scfg, log=None) -> list[dict]:
    """A row per workload, S and mode: children-epochs/s of training (data and models are built outside
    the timer, evaluation on the runs' schedule is inside) as mean and std over rounds, wall and CPU
    seconds per round (medians), and the one-by-one / stacked ratios of the median times."""
    epochs, repeats = int(scfg.epochs), int(scfg.repeats)
    cells = [("mlp", w) for w in scfg.mlp_widths] + [("cnn", w) for w in scfg.cnn_widths]
    sizes = [int(S) for S in scfg.sizes]
    rows = []
    for kind, width in cells:
        cfgs = _configs(kind, width, epochs, max(sizes))
        warm = _configs(kind, width, 1, 2)  # warm-up: data generation and caches out of the timings
        _one_by_one(_build(warm[:1]))
        _stacked(_members(_build(warm)), warm[0].trainer)
        name = f"{'dd mlp h' if kind == 'mlp' else 'cnn5 k'}={width}"
        for S in sizes:
            wall: dict[str, list[float]] = {"one_by_one": [], "stacked": []}
            cpu: dict[str, list[float]] = {"one_by_one": [], "stacked": []}
            finals = {}
            for rep in range(repeats):
                order = ("one_by_one", "stacked") if rep % 2 == 0 else ("stacked", "one_by_one")
                for mode in order:
                    built = _build(cfgs[:S])
                    members = _members(built) if mode == "stacked" else None
                    t0, c0 = time.perf_counter(), time.process_time()
                    finals[mode] = _stacked(members, cfgs[0].trainer) if members else _one_by_one(built)
                    wall[mode].append(time.perf_counter() - t0)
                    cpu[mode].append(time.process_time() - c0)
            gap = max(abs(a - b) for a, b in zip(finals["one_by_one"], finals["stacked"], strict=True))
            for mode in ("one_by_one", "stacked"):
                rate = [S * epochs / t for t in wall[mode]]
                row = {"suite": "stacking", "model": name, "mode": f"{mode.replace('_', ' ')} S={S}",
                       "stack": S, "unit": "children-epochs/s", "mean": statistics.fmean(rate),
                       "std": statistics.stdev(rate) if len(rate) > 1 else 0.0, "n": len(rate),
                       "median": statistics.median(rate), "wall_s": statistics.median(wall[mode]),
                       "cpu_s": statistics.median(cpu[mode]), "epochs": epochs, "loss_gap": gap, "note": ""}
                if mode == "stacked":
                    med = statistics.median
                    row["ratio"] = med(wall["one_by_one"]) / med(wall["stacked"])
                    row["cpu_ratio"] = med(cpu["one_by_one"]) / med(cpu["stacked"])
                rows.append(row)
                if log:
                    log(row)
    return rows


def plot_stacking(run_dir) -> list:
    """stacking.png: stacked / one-by-one speed-up (wall and CPU time) against the stack size S."""
    from pathlib import Path

    from dlx.plots import figure, read_table, save, style

    df = read_table(Path(run_dir) / "results.csv")
    if df is None or "suite" not in df or not (df["suite"] == "stacking").any():
        return []
    sub = df[(df["suite"] == "stacking") & df["mode"].astype(str).str.startswith("stacked")]
    fig, (ax,) = figure(1, size=(6, 3.6))
    for i, (model, g) in enumerate(sub.groupby("model", sort=False)):
        g = g.sort_values("stack")
        ax.plot(g["stack"], g["ratio"], "-o", color=f"C{i}", label=f"{model} (wall)")
        ax.plot(g["stack"], g["cpu_ratio"], "--", color=f"C{i}", lw=1, label=f"{model} (CPU)")
    ax.axhline(1, color="#888", lw=0.8)
    style(ax, title="training S same-shape children: stacked vs one by one", xlabel="children per stack (S)",
          ylabel="speed-up (x one by one)", legend_size=7)
    return [save(fig, Path(run_dir) / "stacking.png")]
