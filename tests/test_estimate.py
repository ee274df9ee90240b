"""--estimate: the cost of a run before paying for it, near what the run then takes."""

from __future__ import annotations

import json
import re

import pytest


def seconds(out: str) -> float:
    m = re.search(r"estimate: ([\d.]+) (s|min|h) wall", out)
    assert m, out
    return float(m.group(1)) * {"s": 1, "min": 60, "h": 3600}[m.group(2)]


def test_a_sweep_estimate_is_within_a_factor_of_three_and_writes_nothing(run_cli, tmp_path):
    """Two widths of one MLP: planned as one zero-padded stack, priced as one (its steps timed together)."""
    args = ["sweep", "grid", "model.width=64,128", "trainer.epochs=60", "trainer.threads=1",
            "launcher=inline", "--out", str(tmp_path), "--name", "g"]
    rc, out, err = run_cli(*args, "--estimate")
    assert rc == 0, err
    assert "children 2" in out and "shapes 2" in out and "stacks 1" in out
    assert "peak memory" in out and "disk" in out
    assert not (tmp_path / "sweep").exists()
    guess = seconds(out)
    rc, _, err = run_cli(*args)
    assert rc == 0, err
    res = json.loads((tmp_path / "sweep" / "g" / "summary.json").read_text())
    runs = [json.loads(p.read_text()) for p in (tmp_path / "sweep" / "g").glob("runs/*/summary.json")]
    assert [r["stack"]["members"] for r in runs] == [2, 2]
    took = res["wall_s"]  # the whole sweep: its children, and collecting them
    # a factor of 3, not 2: the suite runs two test files side by side, so the load can change between
    # the estimate and the run (quiet-machine accuracy per paper: docs/benchmarks.md)
    assert res["status"] == "completed" and took / 3 <= guess <= 3 * took, (guess, took)


def test_train_estimate(run_cli, tmp_path):
    rc, out, err = run_cli("train", "trainer=quick", "trainer.threads=1", "--estimate",
                           "--out", str(tmp_path))
    assert rc == 0, err
    assert "steps 22" in out and "evaluations 2" in out  # trainer=quick: 2 epochs of 11 steps
    assert not (tmp_path / "train").exists()


def test_estimate_with_all_is_refused(run_cli, tmp_path):
    rc, _, err = run_cli("reproduce", "all", "--estimate", "--out", str(tmp_path))
    assert rc == 2 and "one paper at a time" in err


def test_children_that_stop_at_once_are_not_timed(run_cli, tmp_path):
    """fp8_native on a CPU: the run records that child as skipped without training, so the estimate
    leaves it out and says so, instead of failing."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("fp8_native may run here")
    args = ["reproduce", "fp8", "data=synthetic", "data.shape=[1,4,4]", "trainer.steps=3", "fp8.models=[cnn]",
            "fp8.model_overrides.cnn=['model=cnn5','model.width=2']", "fp8.precisions=[fp32,fp8_native]",
            "fp8.updates.precisions=[]", "fp8.cost.steps=0", "--out", str(tmp_path), "--estimate"]
    rc, out, err = run_cli(*args)
    assert rc == 0, err
    assert "estimate:" in out and "not timed 1 that stop at once" in out and "fp8_native" in out
    assert not list(tmp_path.rglob("summary.json"))


def test_an_estimate_builds_each_data_once_and_times_a_fit_once_per_shape(run_cli, tmp_path, monkeypatch):
    """--estimate stays cheap: the shapes of a sweep share their data (each child is still charged its
    build), and a baseline fit is timed once per shape, not once per seed or training-set size."""
    import dlx.data

    calls = []
    real = dlx.data.DATASETS["digits"]
    monkeypatch.setitem(dlx.data.DATASETS, "digits", lambda cfg: calls.append(1) or real(cfg))
    rc, out, err = run_cli("sweep", "grid", "model.width=4,8,16", "data=digits", "trainer.epochs=2",
                           "trainer.threads=1", "launcher=inline", "--out", str(tmp_path), "--estimate")
    assert rc == 0 and "shapes 3" in out, err
    assert len(calls) == 1
    from dlx.estimate import _FITS

    _FITS.clear()
    fits = []
    import dlx.kinds.fit.experiment as fit_exp

    real_time_fit = fit_exp.time_fit  # the fit kind's --estimate hook
    monkeypatch.setattr(fit_exp, "time_fit", lambda cfg, data: fits.append(1) or real_time_fit(cfg, data))
    calls.clear()
    rc, out, err = run_cli("sweep", "grid", "sweep.child=fit", "baseline=logistic", "seed=0,1,2",
                           "data.n_train=300,600", "data=digits", "launcher=inline", "--out", str(tmp_path),
                           "--estimate")
    assert rc == 0 and "children 6" in out, err
    assert len(fits) == 1  # neither the seed nor the training-set size is a new shape: the fit scales
    assert len(calls) == 1  # a subset is priced from the whole data's build: nothing more is built
    assert not (tmp_path / "sweep").exists()


def test_a_boosted_fit_is_timed_at_a_few_rounds_and_scaled(monkeypatch):
    """A boosted baseline's estimate fits FIT_ROUNDS rounds (what it does once, what it does per round) on
    at most FIT_SIZES rows and scores SCORE_ROWS rows, whatever the configured rounds and data; the price
    grows with the rounds and the rows."""
    import dlx.kinds.fit.estimators as est_mod
    from dlx.config import compose
    from dlx.estimate import _FITS, FIT_ROUNDS, FIT_SIZES, fit_cost

    seen = []
    real = est_mod.build_estimator
    monkeypatch.setattr(est_mod, "build_estimator", lambda cfg, task, seed=0: seen.append(int(cfg.max_iter))
                        or real(cfg, task, seed))
    base = ["data=higgs_uci", "task=binary", "data.n=60000", "data.n_test=20000", "baseline.max_leaf_nodes=8"]
    _FITS.clear()
    many = fit_cost(compose("fit", [*base, "baseline=gbt", "baseline.max_iter=400"]))
    assert sorted(set(seen)) == sorted(FIT_ROUNDS) and len(seen) == 2 * len(FIT_SIZES)
    assert "5 and 20 of 400 rounds, scaled" in many.detail["timed"]
    _FITS.clear()
    few = fit_cost(compose("fit", [*base, "baseline=gbt", "baseline.max_iter=40"]))
    assert few.wall_s < many.wall_s
    small = fit_cost(compose("fit", [*base, "baseline=gbt", "baseline.max_iter=40", "data.n_train=5000"]))
    assert small.wall_s < few.wall_s and len(seen) == 4 * len(FIT_SIZES)  # the subset: no new timing


def test_a_seed_is_never_a_new_shape_to_time():
    """DeepMatch's model carries lda_seed=${seed}: each seed would otherwise rebuild its topic models."""
    from dlx.config import compose
    from dlx.estimate import shape_key

    base = ["data=textpairs", "task=rank", "model=deepmatch"]
    a, b = (compose("train", [*base, f"seed={s}", f"model.lda_seed={s}", f"data.noise_seed={s}"])
            for s in (0, 1))
    assert a.model.lda_seed != b.model.lda_seed
    assert shape_key(a) == shape_key(b)
    assert shape_key(a) != shape_key(compose("train", [*base, "model.rank=3"]))


def test_training_set_sizes_of_one_shape_are_timed_once_at_the_largest(run_cli, tmp_path, monkeypatch):
    """A learning curve (data.n_train=...) is one shape: timed at its largest training set, the smaller
    ones derived (DeepMatch's and Higgs's curves were timed size by size)."""
    import dlx.estimate

    timed = []
    real = dlx.estimate.time_train
    monkeypatch.setattr(dlx.estimate, "time_train", lambda cfg, parts=None: timed.append(
        cfg.data.n_train) or real(cfg, parts))
    rc, out, err = run_cli("sweep", "grid", "data.n_train=300,1200,600", "data=digits", "trainer.epochs=2",
                           "trainer.threads=1", "sweep.stack=false", "launcher=inline", "--out",
                           str(tmp_path), "--estimate")
    assert rc == 0 and "children 3" in out and "shapes 1" in out, err
    assert timed == [1200]


def test_a_derived_size_scales_what_grows_with_the_training_rows():
    """``resized``: the step is the same; a model built from the training split (PLS) builds in time
    proportional to its rows, one that is not (an MLP) in the same time; each split's evaluation scales
    by its rows; the data is its own."""
    from dlx.config import compose
    from dlx.estimate import resized

    base = {"setup_s": 10.0, "data_s": 2.0, "step_s": 0.01, "eval_s": 3.0, "n_train": 1000,
            "splits": {"train": (2.0, 1000), "test": (1.0, 500)}, "device": "cpu", "params": 1,
            "peak_mb": 1.0, "trainable": True, "ckpt_s": 0.0, "csv_s": 0.0, "plot_s": 0.0}
    cfg = compose("train", ["data=digits", "data.n_train=500"])
    small = resized(base, cfg)
    n, test = small["n_train"], small["splits"]["test"][1]
    assert n == 500 and small["step_s"] == base["step_s"]
    assert small["splits"]["train"][0] == pytest.approx(2.0 * n / 1000)
    assert small["splits"]["test"][0] == pytest.approx(1.0 * test / 500)
    assert small["setup_s"] == pytest.approx(small["data_s"] + 8.0)  # an MLP's build does not grow
    pls = compose("train", ["data=textpairs", "task=rank", "model=pls", "data.n_train=500"])
    grown = resized({**base, "splits": {}}, pls)
    assert grown["setup_s"] == pytest.approx(grown["data_s"] + 8.0 * grown["n_train"] / 1000)


def test_timing_a_stack_never_evaluates_it(monkeypatch):
    """The stack's step is what is timed; its final evaluation of every split (most of Higgs's estimate)
    is not run."""
    import dlx.train.stacked
    from dlx.config import compose
    from dlx.estimate import time_stack

    def refuse(*a, **k):
        raise AssertionError("evaluated while timing a stack")

    monkeypatch.setattr(dlx.train.stacked, "evaluate_stack", refuse)
    cfgs = [compose("train", ["data=digits", f"model.width={w}", "trainer.threads=1"]) for w in (4, 8)]
    assert time_stack(cfgs) > 0


def test_a_model_fitted_per_row_is_timed_on_a_sample_of_rows():
    """ETS fits each series' window at evaluation: the estimate fits ROW_SAMPLE of them and scales (the
    DeepState estimate fitted every test window of every baseline)."""
    from dlx.build import build
    from dlx.config import compose
    from dlx.estimate import ROW_SAMPLE, time_train

    cfg = compose("forecast", ["model=ets", "trainer.threads=1"])
    parts = build(cfg)
    n = len(parts.data.test)
    assert n > ROW_SAMPLE
    t = time_train(cfg, parts)
    assert parts.model.fits == ROW_SAMPLE * len(t["splits"])
    assert t["splits"]["test"][1] == n and t["eval_s"] > 0


def test_deepmatch_topic_models_are_fitted_once_per_process_and_charged_to_the_estimate(monkeypatch):
    """Variants of one seed (one resolution, no hierarchy) share the full model's topic models; a reuse
    adds the first fit's seconds to REUSED, which --estimate charges to each build."""
    import sklearn.decomposition
    import torch

    from dlx.models import matching
    from dlx.models.registry import REUSED

    fits = []
    real = sklearn.decomposition.LatentDirichletAllocation

    class Counting(real):
        def fit(self, X, y=None):
            fits.append(self.n_components)
            return super().fit(X, y)

    monkeypatch.setattr(sklearn.decomposition, "LatentDirichletAllocation", Counting)
    monkeypatch.setattr(matching, "_TOPICS", {})
    g = torch.Generator().manual_seed(0)
    q, r = torch.randint(1, 40, (200, 6), generator=g), torch.randint(1, 40, (200, 6), generator=g)
    a = matching.build_patches(q, r, 40, [6, 3], 4, seed=0, max_iter=2)
    before = REUSED[0]
    b = matching.build_patches(q, r, 40, [6], 4, seed=0, max_iter=2)
    assert fits == [6, 3] and REUSED[0] > before
    assert (a[0]["x"] == b[0]["x"]).all() and (a[0]["topic_word"] == b[0]["topic_word"]).all()
    matching.build_patches(q, r, 40, [6], 4, seed=1, max_iter=2)
    assert fits == [6, 3, 6]  # another seed is another model


def test_a_test_split_is_timed_once_per_model_across_training_ranges(run_cli, tmp_path, monkeypatch):
    """Runs that differ only in what they train on (data.train_range, data.n_train) evaluate the same test
    split: its evaluation is timed once and reused."""
    import importlib

    from dlx.estimate import _EVALS

    ev = importlib.import_module("dlx.train.evaluate")  # the module (dlx.train.evaluate is also a function)

    _EVALS.clear()
    calls = []
    real = ev.evaluate
    monkeypatch.setattr(ev, "evaluate", lambda model, task, split, *a, **k: calls.append(len(split))
                        or real(model, task, split, *a, **k))
    rc, out, err = run_cli("reproduce", "deepstate", "sweep.models=[deepstate]",
                           "sweep.train_ranges=[14D,21D,28D]", "sweep.seeds=1", "trainer.steps=2",
                           "--out", str(tmp_path), "--estimate")
    assert rc == 0 and "shapes 3" in out, err
    assert len(calls) == 1  # three training ranges, one test split timed
