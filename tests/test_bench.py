"""`dlx bench` end to end on tiny settings: tables, figures and summary are written and consistent.
No timing asserts: only that the numbers exist, are positive where they must be, and agree with each other."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from dlx.cli import main

TINY = [
    "bench.throughput.models=[ncf,resnet18k,lstm]",
    "bench.throughput.modes=[eager,compile,channels_last,bf16]",
    "bench.throughput.compile_budget_s=0",  # compiling takes tens of seconds; the test checks the skip path
    "bench.throughput.batch_size=4", "bench.throughput.warmup=1", "bench.throughput.steps=2",
    "bench.overhead.repeats=2", "bench.overhead.runners=[hand,dlx_bare,dlx,lightning]",
    "data=synthetic", "data.n=128", "data.n_test=64", "trainer.epochs=1", "trainer.batch_size=32",
    "bench.multiprocessing.sizes_mb=[0.25]", "bench.multiprocessing.repeats=2",
    "bench.threads=1",
    "bench.stacking.mlp_widths=[16]", "bench.stacking.cnn_widths=[2]", "bench.stacking.sizes=[2]",
    "bench.stacking.epochs=1", "bench.stacking.repeats=1",
]


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    assert main(["bench", *TINY, "--out", str(out), "--name", "tiny"]) == 0
    return out / "reproduce" / "tiny"


def test_writes_tables_figures_and_summary(bench_run):
    for f in ("config.yaml", "results.csv", "step_times.csv", "rounds.csv", "summary.json", "throughput.png",
              "step_times.png", "overhead.png", "multiprocessing.png"):
        assert (bench_run / f).is_file(), f
    summary = json.loads((bench_run / "summary.json").read_text())
    assert summary["kind"] == "bench" and summary["status"] == "completed"
    assert summary["machine"]["threads"] == 1 and summary["machine"]["cpu"]
    assert summary["versions"]["torch"]
    assert summary["metrics"]["overhead_ratio"] > 0
    claims = {c["id"]: c for c in summary["claims"]}
    assert list(claims) == ["runner_overhead", "eager_competitive", "shared_memory", "async_cuda"]
    for cid in ("runner_overhead", "eager_competitive", "shared_memory"):  # an interval from >= 2 values
        c = claims[cid]
        assert c["verdict"] in ("holds", "fails", "inconclusive") and c["n"] == 2, c
        assert c["ci"][0] <= c["estimate"] <= c["ci"][1] and "95% t interval" in c["rule"]


def test_rounds_are_the_pairs_the_claims_use(bench_run):
    rounds = pd.read_csv(bench_run / "rounds.csv")
    oh = rounds[rounds.suite == "overhead"]
    assert set(oh["mode"]) == {"hand", "dlx_bare", "dlx"} and (oh.groupby("mode").size() == 2).all()
    assert (oh["seconds"] > 0).all()
    mp = rounds[rounds.suite == "multiprocessing"]
    assert len(mp) == 3 * 2 and set(mp["round"]) == {1, 2} and (mp["bytes"] == 2**18).all()
    res = pd.read_csv(bench_run / "results.csv").query("suite == 'overhead'").set_index("mode")
    assert res.loc["dlx", "median"] == pytest.approx(oh[oh["mode"] == "dlx"]["seconds"].median())


def test_throughput_rows_are_sane(bench_run):
    df = pd.read_csv(bench_run / "results.csv")
    tp = df[df.suite == "throughput"]
    assert len(tp) == 3 * 4  # every model x mode has a row, run or not
    ran = tp[tp.status == "ok"]
    assert set(ran["mode"]) == {"eager", "bf16", "channels_last"}
    assert (ran["mean"] > 0).all() and (ran["std"] >= 0).all() and (ran["n"] == 2).all()
    for _, g in ran.groupby("model"):  # % of best: the best mode of each model is 100, the rest below
        assert g["pct_of_best"].max() == pytest.approx(100.0)
        assert (g["pct_of_best"] <= 100.0 + 1e-9).all()
    skipped = tp[tp.status == "skipped"]
    assert set(skipped[skipped["mode"] == "channels_last"]["model"]) == {"ncf", "lstm"}
    assert (skipped[skipped["mode"] == "compile"]["note"].str.contains("compile budget")).all()
    assert set(tp[tp.model == "lstm"]["unit"]) == {"tokens/s"}


def test_step_times_cover_warmup_and_timed_steps(bench_run):
    steps = pd.read_csv(bench_run / "step_times.csv")
    cells = steps.groupby(["model", "mode"]).size()
    assert (cells == 3).all() and len(cells) == 7  # 1 warm-up + 2 timed for each cell that ran
    assert (steps["seconds"] > 0).all()
    assert steps.groupby(["model", "mode"])["warmup"].sum().eq(1).all()


def test_overhead_runners_train_the_same_model(bench_run):
    oh = pd.read_csv(bench_run / "results.csv").query("suite == 'overhead'").set_index("mode")
    assert oh.loc["hand", "ratio"] == pytest.approx(1.0)
    ran = oh[oh.status == "ok"]
    assert {"hand", "dlx_bare", "dlx"} <= set(ran.index)
    # same seed, batches, optimizer and steps: every runner ends at the same test error
    assert ran["test_error"].nunique() == 1
    if "lightning" in oh.index and oh.loc["lightning", "status"] == "skipped":
        assert "not installed" in oh.loc["lightning", "note"]


def test_multiprocessing_and_cuda_rows(bench_run):
    df = pd.read_csv(bench_run / "results.csv")
    mp = df[df.suite == "multiprocessing"].set_index("mode")
    assert set(mp.index) == {"shared_tensor", "fresh_tensor", "pickled_numpy"}
    assert (mp["mean"] > 0).all() and mp.loc["shared_tensor", "ratio"] == pytest.approx(1.0)
    cuda = df[df.suite == "cuda"]
    import torch

    if not torch.cuda.is_available():
        assert list(cuda["status"]) == ["skipped"]


def test_plot_redraws_from_tables(bench_run):
    for png in bench_run.glob("*.png"):
        png.unlink()
    assert main(["plot", str(bench_run)]) == 0
    assert (bench_run / "throughput.png").is_file() and (bench_run / "overhead.png").is_file()


@pytest.mark.parametrize("override, needle", [
    ("bench.suites=[speed]", "unknown bench suite 'speed'"),
    ("bench.throughput.modes=[fast]", "unknown bench mode 'fast'"),
    ("bench.throughput.models=[vgg]", "unknown bench model 'vgg'"),
    ("bench.overhead.runners=[dlx]", "must include hand"),
    ("bench.rules.overhead_max=-1", "bench.rules.overhead_max must be a number >= 0"),
])
def test_bad_bench_settings_are_one_line_errors(tmp_path, capsys, override, needle):
    assert main(["bench", override, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
