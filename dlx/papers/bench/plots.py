"""Benchmark figures from results.csv and step_times.csv alone: throughput bars per model and mode,
step time per iteration, runner overhead, multiprocessing transfer time and (on CUDA) async/memory."""

from __future__ import annotations

from pathlib import Path

from dlx.plots import figure, integer_ticks, need_table, plain_log_ticks, read_table, save, style

MODE_COLORS = {"eager": "#888888", "compile": "#d8763b", "channels_last": "#3b7dd8", "bf16": "#4caf50"}


def plot_throughput(df, path: Path) -> Path:
    models = list(dict.fromkeys(df["model"]))
    fig, axes = figure(len(models), cols=3, size=(3.2, 2.8))
    for ax, model in zip(axes, models, strict=True):
        sub = df[df["model"] == model].reset_index(drop=True)
        ok = sub["mean"].notna()
        ax.bar(sub.index[ok], sub["mean"][ok], yerr=sub["std"][ok], capsize=3,
               color=[MODE_COLORS.get(m, "#999") for m in sub["mode"][ok]])
        high = sub["mean"] + sub["std"].fillna(0)  # labels sit above the error bars
        top = high.max() if ok.any() else 1.0
        for x, r in sub.iterrows():
            label = f"{r['pct_of_best']:.0f}%" if ok[x] else str(r.get("status", "n/a"))
            ax.text(x, (high[x] if ok[x] else 0) + 0.02 * top, label, ha="center", va="bottom", fontsize=8)
        ax.set_xticks(sub.index, [m.replace("channels_last", "ch_last") for m in sub["mode"]], fontsize=8)
        ax.set_title(f"{model} (~{sub['paper_model'].iloc[0]})", fontsize=9)
        ax.set_ylabel(sub["unit"].iloc[0], fontsize=8)
        ax.set_ylim(0, top * 1.18)
    return save(fig, path, title="training throughput, mean +- std over timed steps (% of the model's best)")


def plot_step_times(steps, path: Path) -> Path:
    keys = list(dict.fromkeys(zip(steps["suite"], steps["model"], strict=True)))
    fig, axes = figure(len(keys), cols=3, size=(3.2, 2.8))
    for ax, (suite, model) in zip(axes, keys, strict=True):
        sub = steps[(steps["suite"] == suite) & (steps["model"] == model)]
        for mode, g in sub.groupby("mode", sort=False):
            ax.plot(g["step"], 1e3 * g["seconds"], marker=".", color=MODE_COLORS.get(mode), label=mode)
        warm = sub[sub["warmup"].astype(bool)]["step"]
        if len(warm) and suite == "throughput":
            ax.axvspan(0.5, warm.max() + 0.5, color="#eee", zorder=0)
        style(ax, logy=True)
        plain_log_ticks(ax)
        ax.set_title(f"{model}" + (" (CUDA, cold allocator)" if suite == "cuda" else ""), fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("ms per step", fontsize=8)
        integer_ticks(ax)
    return save(fig, path, title="step time per iteration (grey: warm-up steps, left out of the means)")


def plot_overhead(df, path: Path) -> Path:
    ok = df[df["median"].notna()]
    fig, (ax,) = figure(1, size=(5.5, 3.2))
    ax.bar(ok["mode"], ok["median"], yerr=ok["std"], capsize=4,
           color=["#888", "#9bbce8", "#3b7dd8", "#8e44ad"][: len(ok)])
    high = ok["median"] + ok["std"].fillna(0)  # labels sit above the error bars
    for i, y in enumerate(high):
        ax.text(i, y + 0.01 * high.max(), f"x{ok['ratio'].iloc[i]:.3f}", ha="center", va="bottom")
    skipped = df[df["median"].isna()]
    title = f"{df['model'].iloc[0]}: {int(ok['steps'].iloc[0])} steps per run (median, x hand loop)"
    if len(skipped):
        title += "\n" + "; ".join(f"{r['mode']} skipped: {r['note']}" for _, r in skipped.iterrows())
    style(ax, title=title, ylabel="seconds per run", ylim=(0, 1.12 * high.max()))
    ax.title.set_fontsize(8)
    return save(fig, path)


def plot_multiprocessing(df, path: Path) -> Path:
    sizes = list(dict.fromkeys(df["model"]))
    modes = list(dict.fromkeys(df["mode"]))
    fig, (ax,) = figure(1, size=(6, 3.2))
    w = 0.8 / len(modes)
    for j, mode in enumerate(modes):
        sub = df[df["mode"] == mode].set_index("model").loc[sizes]
        ax.bar([i + j * w for i in range(len(sizes))], sub["mean"], w, yerr=sub["std"], capsize=3, label=mode)
    ax.set_xticks([i + w * (len(modes) - 1) / 2 for i in range(len(sizes))], sizes)
    style(ax, title="array to another process: shared memory vs pickling", ylabel="ms per round trip",
          logy=True, legend_size=8)
    plain_log_ticks(ax)
    return save(fig, path)


def plot_cuda(df, path: Path) -> Path:
    fig, (a, b) = figure(2, size=(4.5, 3.2))
    t = df[df["unit"] == "ms/step"]
    a.bar(t["mode"], t["mean"], yerr=t["std"], capsize=3, color="#3b7dd8")
    a.tick_params(axis="x", labelsize=7)
    style(a, title="enqueue (Python returns) vs execute (GPU done)", ylabel="ms per step")
    m = df[df["mode"].str.startswith("memory:")]
    xs = range(len(m))
    b.bar([x - 0.2 for x in xs], m["mean"], 0.4, label="allocated")
    b.bar([x + 0.2 for x in xs], m["reserved_mb"], 0.4, label="reserved (cache)")
    b.set_xticks(list(xs), [s.split(":", 1)[1] for s in m["mode"]], fontsize=7, rotation=20)
    style(b, title="caching allocator", ylabel="MB")
    return save(fig, path)


def plot_bench_run(run_dir: Path) -> list[Path]:
    run_dir = Path(run_dir)
    df = need_table(run_dir / "results.csv")
    for col in ("mean", "std", "median", "pct_of_best", "ratio", "reserved_mb"):
        if col not in df.columns:
            df[col] = float("nan")
    out = []
    tp = df[df["suite"] == "throughput"]
    if len(tp):
        out.append(plot_throughput(tp, run_dir / "throughput.png"))
    steps = read_table(run_dir / "step_times.csv")
    if steps is not None:
        out.append(plot_step_times(steps, run_dir / "step_times.png"))
    oh = df[df["suite"] == "overhead"]
    if oh["median"].notna().any():
        out.append(plot_overhead(oh, run_dir / "overhead.png"))
    mp = df[(df["suite"] == "multiprocessing") & df["mean"].notna()]
    if len(mp):
        out.append(plot_multiprocessing(mp, run_dir / "multiprocessing.png"))
    cu = df[(df["suite"] == "cuda") & df["mean"].notna()]
    if len(cu):
        out.append(plot_cuda(cu, run_dir / "cuda.png"))
    return out
