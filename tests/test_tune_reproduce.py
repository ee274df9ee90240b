"""`dlx reproduce <paper> tune=true`: one equal-budget study per compared model before the comparison, the
choices in the children's settings, resumable and extendable; refused where a paper does not tune."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dlx.sweep.tuning import Tunable

DM = ["data.pairs=500", "data.test_queries=80", "data.vocab_size=150", "data.domains=2", "data.aspects=4",
      "data.test_negatives=4", "deepmatch.settings.deepmatch.resolutions=[6,3]",
      "deepmatch.settings.deepmatch.lda_pairs=null", "deepmatch.settings.deepmatch.rank=8",
      "deepmatch.settings.bilinear.rank=8", "deepmatch.settings.dual_encoder.dim=8",
      "deepmatch.settings.pls.components=4", "trainer.epochs=1", "trainer.eval_every=1",
      "deepmatch.seeds=[0]", "deepmatch.curve.n_train=[]", "deepmatch.ablation=[]",
      "deepmatch.models=[random,pls,bilinear]", "launcher=inline", "trainer.threads=1"]
HIGGS = ["data.n=1500", "data.n_test=1000", "trainer.epochs=1", "trainer.eval_every=1", "higgs.seeds=[0]",
         "higgs.deep.width=16", "higgs.deep.depth=2", "higgs.shallow.width=16", "higgs.gbt.max_iter=10",
         "higgs.curve.n_train=[]", "higgs.features=[low,all]", "higgs.significance.min_background=20",
         "higgs.bootstrap.replicates=50", "launcher=inline", "trainer.threads=1"]


def completed_trials(d: Path) -> int:
    df = pd.read_csv(d / "trials.csv")
    return int((df.state == "complete").sum())


def child_overrides(sweep: Path, model: str) -> list[list[str]]:
    return [yaml.safe_load((r / "overrides.yaml").read_text()) for r in sorted((sweep / "runs").iterdir())
            if r.name.startswith(f"model{model}_")]


def test_paper_overrides_map_into_the_papers_own_keys():
    t = Tunable("bilinear", "train", (), {"model.": "deepmatch.settings.bilinear.",
                                          "optimizer.": "deepmatch.settings.bilinear.optimizer."})
    assert t.paper_overrides(["model.rank=12", "optimizer.lr=0.003", "baseline.C=2"]) == [
        "deepmatch.settings.bilinear.rank=12", "deepmatch.settings.bilinear.optimizer.lr=0.003",
        "baseline.C=2"]


def test_deepmatch_tunes_every_trained_model_then_compares_with_the_choices(run_cli, tmp_path):
    rc, out, err = run_cli("reproduce", "deepmatch", *DM, "tune=true", "tune.trials=2",
                           "--out", str(tmp_path), "--name", "d")
    assert rc == 0, err
    assert "tuned on the validation split" in out
    d = tmp_path / "reproduce" / "d"
    tuning = pd.read_csv(d / "tuning.csv")
    assert list(tuning.model) == ["pls", "bilinear"]  # random has nothing to tune
    assert (tuning.trials == 2).all()
    assert (tuning.completed == 2).all() and tuning.metric.eq("val_p_at_1").all()
    for m in ("pls", "bilinear"):
        study = d / "tune" / m
        assert completed_trials(study) == 2
        for t in pd.read_csv(study / "trials.csv").dir:  # scored on held-out training queries, never test
            s = json.loads((study / t / "summary.json").read_text())
            assert "val_p_at_1" in s["metrics"] and not any(k.startswith("test_") for k in s["metrics"])
            assert not (study / t / "predictions_test.csv").exists()
    tuned = yaml.safe_load((d / "tuned.yaml").read_text())
    rank = next(o for o in tuned["bilinear"]["chosen"] if o.startswith("model.rank="))
    lr = next(o for o in tuned["bilinear"]["chosen"] if o.startswith("optimizer.lr="))
    mapped = f"deepmatch.settings.bilinear.{rank.removeprefix('model.')}"
    assert mapped in tuned["bilinear"]["overrides"]
    (bilinear,) = child_overrides(d, "bilinear")  # the comparison's child trains with the choice
    assert rank in bilinear and lr in bilinear
    (pls,) = child_overrides(d, "pls")
    assert all(o in pls for o in tuned["pls"]["chosen"])
    summary = json.loads((d / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["tuned"]["bilinear"] == tuned["bilinear"]["chosen"]
    assert "tune: bilinear: 2 trials" in err

    # the same command again: nothing is tuned or trained again
    stamp = {p: p.stat().st_mtime_ns for p in d.rglob("summary.json") if p.parent != d}
    rc, _, err = run_cli("reproduce", "deepmatch", *DM, "tune=true", "tune.trials=2", "--out", str(tmp_path),
                         "--name", "d")
    assert rc == 0, err
    assert {p: p.stat().st_mtime_ns for p in stamp} == stamp and "trial #" not in err
    rc, out, _ = run_cli("status", str(d))
    assert rc == 0 and "completed: 3" in out  # `dlx status` plans the tuned children too

    # a larger budget extends each study; a model whose choice changed trains again in a new directory,
    # and the children trained before are kept
    before = {r.name for r in (d / "runs").iterdir()}
    rc, _, err = run_cli("reproduce", "deepmatch", *DM, "tune=true", "tune.trials=4", "--out", str(tmp_path),
                         "--name", "d")
    assert rc == 0, err
    assert completed_trials(d / "tune" / "bilinear") == 4 and completed_trials(d / "tune" / "pls") == 4
    after = {r.name for r in (d / "runs").iterdir()}
    assert before <= after
    tuned = yaml.safe_load((d / "tuned.yaml").read_text())
    results = pd.read_csv(d / "results.csv")
    assert len(results) == 3 and (results.status == "completed").all()
    used = yaml.safe_load((d / "runs" / results[results.model == "bilinear"].run_id.iloc[0] /
                           "overrides.yaml").read_text())
    assert all(o in used for o in tuned["bilinear"]["chosen"])


def test_higgs_tunes_its_networks_and_the_trees(run_cli, tmp_path):
    rc, _, err = run_cli("reproduce", "higgs", *HIGGS, "tune=true", "tune.trials=2", "--out", str(tmp_path),
                         "--name", "h")
    assert rc == 0, err
    d = tmp_path / "reproduce" / "h"
    tuning = pd.read_csv(d / "tuning.csv")
    assert list(tuning.model) == ["shallow", "deep", "gbt"] and tuning.metric.eq("val_auc").all()
    assert (tuning.completed == 2).all()
    chosen = yaml.safe_load((d / "tuned.yaml").read_text())
    # the networks search their lr and weight decay, not their shape (the comparison); the trees their own
    assert {o.split("=")[0] for o in chosen["deep"]["chosen"]} == {"optimizer.lr", "optimizer.weight_decay"}
    assert {o.split("=")[0] for o in chosen["gbt"]["chosen"]} >= {"baseline.learning_rate",
                                                                   "baseline.max_iter"}
    for model in ("deep", "gbt"):
        runs = child_overrides(d, model)
        assert len(runs) == 2 and all(all(o in r for o in chosen[model]["chosen"]) for r in runs)
    for t in pd.read_csv(d / "tune" / "gbt" / "trials.csv").dir:  # a fit trial never scores the test split
        s = json.loads((d / "tune" / "gbt" / t / "summary.json").read_text())
        assert "val_auc" in s["metrics"] and not any(k.startswith("test_") for k in s["metrics"])
        assert "data.features=all" in (d / "tune" / "gbt" / t / "overrides.yaml").read_text()


SMALL = ["data.n=300", "data.n_test=200", "higgs.curve.n_train=[]", "trainer.epochs=1"]


@pytest.mark.parametrize("args, needle", [
    (["reproduce", "fp8", "tune=true"], "fp8 has no models to tune"),
    # the presets set each model's own (tuned) settings: a shared key would silently reach none of them
    # (the UCI preset ships tuned settings; the small sizes only bound the damage should a refusal regress)
    (["reproduce", "higgs", "experiment=higgs_uci_cpu", "optimizer.lr=0.01", *SMALL],
     "higgs.deep.optimizer.lr"),
    (["reproduce", "higgs", "experiment=higgs_uci_cpu", "baseline.max_iter=10", *SMALL],
     "higgs.gbt.max_iter"),
    (["reproduce", "deepmatch", "optimizer.lr=0.01"], "deepmatch.settings.bilinear.optimizer.lr"),
    (["train", "tune=true"], "is for a paper"),
    (["reproduce", "higgs", "tune=true", "higgs.tune_features=mid"], "higgs.tune_features"),
    (["reproduce", "deepmatch", "tune=true", "tune.trials=0"], "tune.trials"),
    (["reproduce", "muir", "synthetic.settings.muir.optimizer.lr=0.003", "synthetic.optimizer.lr=0.01"],
     "synthetic.settings.muir.optimizer.lr"),
    (["reproduce", "muir", "tune=true", "synthetic.tune_noise=loud"], "synthetic.tune_noise"),
    (["reproduce", "symnets", "optimizer.lr=0.01", "symnets.settings.p4cnn.optimizer.lr=0.002"],
     "symnets.settings.p4cnn.optimizer.lr"),
    (["reproduce", "muir", "synthetic.settings.muir.lr=0.01"], "unknown key 'synthetic.settings.muir.lr'"),
])
def test_bad_tuning_settings_are_one_line_and_exit_2(run_cli, tmp_path, args, needle):
    rc, _, err = run_cli(*args, "--out", str(tmp_path))
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.rglob("summary.json"))  # refused before anything ran


def test_estimate_prices_the_studies(run_cli, tmp_path):
    rc, out, err = run_cli("reproduce", "deepmatch", *DM, "tune=true", "tune.trials=3", "--estimate",
                           "--out", str(tmp_path))
    assert rc == 0, err
    line = next(x for x in (out + err).splitlines() if x.startswith("estimate:") and "wall" in x)
    assert "tuning_s" in line
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_the_control_runs_the_settings_the_default_chose(run_cli, tmp_path):
    """--controls with tune=true: the control is not tuned on data without the premise; it trains with the
    default's choices."""
    rc, out, err = run_cli("reproduce", "deepmatch", *DM, "tune=true", "tune.trials=2", "--controls",
                           "--out", str(tmp_path), "--name", "c")
    assert rc == 0, err
    d = tmp_path / "reproduce" / "c"
    control = d / "control"
    assert (control / "summary.json").is_file() and not (control / "tune").exists()
    chosen = yaml.safe_load((d / "tuned.yaml").read_text())["bilinear"]["overrides"]
    given = yaml.safe_load((control / "overrides.yaml").read_text())
    assert all(o in given for o in chosen) and "tune=true" not in given and "data.pairing=shuffled" in given


DS = ["launcher=inline", "sweep.models=[deepstate,deepar,seasonal_naive]", "sweep.train_ranges=[7D,8D]",
      "sweep.seeds=1", "trainer.steps=3", "data.series=3", "data.rolling=2", "data.days=14",
      "data.train_window=4D"]


def test_a_panel_validates_on_the_windows_before_its_forecast_start():
    """data.val_windows: the test protocol one test span earlier; training ends where those windows'
    forecasts begin, so neither the validation futures nor anything after them is trained on."""
    from dlx.config import compose
    from dlx.data import build_data
    from dlx.errors import DlxError

    cfg = compose("deepstate", ["data.val_windows=true"])
    data, plain = build_data(cfg.data), build_data(compose("deepstate").data)
    span = int(data.meta.extra["rolling"]) * int(data.meta.extra["horizon"])
    context = int(data.meta.extra["context_length"])
    assert len(data.val) == len(data.test) and plain.val is None
    assert (data.val.begin == data.test.begin - span).all()
    first_val_forecast = int(data.val.begin.min()) + context
    window = int(data.meta.extra["train_window"])
    assert int(data.train.begin.max()) + window <= first_val_forecast
    assert int(plain.train.begin.max()) + window <= int(plain.test.begin.min()) + context
    with pytest.raises(DlxError, match="data.val_windows"):
        build_data(compose("deepstate", ["data.val_windows=true", "data.train_range=35D"]).data)


def test_dlx_tune_searches_a_forecaster_on_validation_windows(run_cli, tmp_path):
    rc, out, err = run_cli("tune", "tune.child=forecast", "model=deepar", "data=issm_panel", "task=forecast",
                           "optimizer=adam", "trainer.steps=3", "data.series=3", "data.rolling=2",
                           "data.days=14", "data.train_window=4D", "data.train_range=7D", "trainer.threads=1",
                           "tune.space.optimizer.lr=tag(log, interval(0.001, 0.01))", "tune.trials=2",
                           "--out", str(tmp_path), "--name", "f")
    assert rc == 0, err
    d = tmp_path / "tune" / "f"
    for t in pd.read_csv(d / "trials.csv").dir:
        s = json.loads((d / t / "summary.json").read_text())
        assert "val_ql50" in s["metrics"] and not any(k.startswith("test_") for k in s["metrics"])
        assert not (d / t / "forecasts.csv").exists()  # the test windows are never forecast
        assert "data.val_windows=true" in (d / t / "overrides.yaml").read_text()


def test_deepstate_tunes_deepstate_and_deepar(run_cli, tmp_path):
    rc, out, err = run_cli("reproduce", "deepstate", *DS, "tune=true", "tune.trials=2",
                           "--out", str(tmp_path), "--name", "s")
    assert rc == 0, err
    d = tmp_path / "reproduce" / "s"
    tuning = pd.read_csv(d / "tuning.csv")
    assert list(tuning.model) == ["deepstate", "deepar"] and tuning.metric.eq("val_ql50").all()
    chosen = yaml.safe_load((d / "tuned.yaml").read_text())
    for model in ("deepstate", "deepar"):
        runs = child_overrides(d, model)
        assert len(runs) == 2 and all(all(o in r for o in chosen[model]["chosen"]) for r in runs)
    naive = child_overrides(d, "seasonal_naive")  # the local baseline has nothing to tune
    assert naive and not any(o.startswith(("model.hidden", "optimizer.lr")) for r in naive for o in r)
    rc, _, err = run_cli("reproduce", "deepstate", "model.hidden=64", "--out", str(tmp_path))
    assert rc == 2 and "deepstate.settings.deepstate.hidden" in err, err


MUIR = ["trainer.threads=1", "trainer.progress=none", "launcher=inline", "synthetic.seeds=1",
        "synthetic.search.generations=3", "synthetic.search.steps=4", "synthetic.search.final=1",
        "synthetic.trainer.eval_every=2", "synthetic.methods=[stl,muir]", "synthetic.variants=[noisy]",
        "crossmodal.seeds=1", "crossmodal.search.generations=2", "crossmodal.search.steps=3",
        "crossmodal.search.burn_in=1", "crossmodal.trainer.eval_every=1", "crossmodal.methods=[alone,shared]",
        "crossmodal.data.tasks.language.max_chars=4000", "crossmodal.data.tasks.genomics.n=64",
        "crossmodal.data.tasks.genomics.n_test=32", "crossmodal.data.tasks.vision.n_train=100"]


def test_muir_tunes_each_trained_method_on_validation_then_compares(run_cli, tmp_path):
    """A MUiR child is its own kind of run: its trials hold out validation rows (the synthetic benchmark's
    own points; a cross-modal task's fraction, or extra generated sequences), never score test, and the
    choices reach each method's children as that method's own settings."""
    rc, out, err = run_cli("reproduce", "muir", *MUIR, "tune=true", "tune.trials=2", "--out", str(tmp_path),
                           "--name", "m")
    assert rc == 0, err
    d = tmp_path / "reproduce" / "m"
    tuning = pd.read_csv(d / "tuning.csv")
    assert list(tuning.model) == ["synthetic_muir", "crossmodal_alone_vision", "crossmodal_alone_language",
                                  "crossmodal_alone_genomics", "crossmodal_shared"]  # ridge picks its own
    assert list(tuning.metric) == ["val_rmse", "val_error", "val_perplexity", "val_rmse", "val_loss"]
    assert (tuning.completed == 2).all()
    for label in tuning.model:
        study = d / "tune" / label
        assert json.loads((study / "summary.json").read_text())["val_rows"] > 0
        for t in pd.read_csv(study / "trials.csv").dir:
            m = json.loads((study / t / "summary.json").read_text())["metrics"]
            assert not [k for k in m if k.startswith("test_")] and any(k.startswith("val_") for k in m)
    tuned = yaml.safe_load((d / "tuned.yaml").read_text())
    assert {o.split("=")[0] for o in tuned["synthetic_muir"]["overrides"]} == {
        "synthetic.settings.muir.optimizer.lr", "synthetic.settings.muir.search.soft_lr"}
    assert [o.split("=")[0] for o in tuned["crossmodal_alone_vision"]["overrides"]] == [
        "crossmodal.settings.alone_vision.optimizer.lr"]
    runs = {r.name: yaml.safe_load((r / "overrides.yaml").read_text()) for r in (d / "runs").iterdir()}
    muir = next(v for k, v in runs.items() if "methodmuir" in k)
    chosen = tuned["synthetic_muir"]["chosen"]
    assert [o for o in muir if o.startswith("synthetic.optimizer.lr=")] == chosen[:1]
    vision = next(v for k, v in runs.items() if "methodalone_taskvision" in k)
    assert tuned["crossmodal_alone_vision"]["chosen"][0] in vision
    stl = runs[next(k for k in runs if "methodstl" in k)]  # ridge: no trained settings
    assert not any(o.startswith("synthetic.optimizer.lr=") for o in stl)
    assert json.loads((d / "summary.json").read_text())["status"] == "completed"


def test_muir_estimate_prices_its_studies(run_cli, tmp_path):
    rc, out, err = run_cli("reproduce", "muir", *MUIR, "parts=[synthetic]", "tune=true", "tune.trials=3",
                           "--estimate", "--out", str(tmp_path))
    assert rc == 0, err
    line = next(x for x in (out + err).splitlines() if x.startswith("estimate:") and "wall" in x)
    assert "tuning_s" in line


SYM = ["sweep.models=[convnet,symnet]", "sweep.n_train=[20,30]", "sweep.seeds=1", "ablation.n_train=[20]",
       "ablation.K=[4]", "ablation.refine=[true]", "invariance.models=[]", "trainer.steps=3",
       "baseline_steps=3", "trainer.threads=1", "launcher=inline", "model.widths=[4,8]",
       "data.test_fraction=0.05", "symnets.tune_n_train=30"]


def test_symnets_tunes_every_compared_network_and_the_ablation_follows_the_symnet(run_cli, tmp_path):
    rc, out, err = run_cli("reproduce", "symnets", *SYM, "tune=true", "tune.trials=2", "--out", str(tmp_path),
                           "--name", "s")
    assert rc == 0, err
    d = tmp_path / "reproduce" / "s"
    tuning = pd.read_csv(d / "tuning.csv")
    assert list(tuning.model) == ["convnet", "symnet"] and (tuning.completed == 2).all()
    assert tuning.metric.eq("val_error").all()
    for m in ("convnet", "symnet"):
        for t in pd.read_csv(d / "tune" / m / "trials.csv").dir:
            s = json.loads((d / "tune" / m / t / "summary.json").read_text())
            assert not [k for k in s["metrics"] if k.startswith("test_")]
            assert "data.n_train=30" in yaml.safe_load((d / "tune" / m / t / "overrides.yaml").read_text())
    tuned = yaml.safe_load((d / "tuned.yaml").read_text())
    lr = {m: next(o for o in tuned[m]["chosen"] if o.startswith("optimizer.lr=")) for m in tuned}
    for r in (d / "runs").iterdir():  # every child, the symnet's ablation rows (K=4) too, has its network's
        ovs = yaml.safe_load((r / "overrides.yaml").read_text())
        assert lr["symnet" if "model=symnet" in ovs else "convnet"] in ovs
    assert any("K4" in r.name for r in (d / "runs").iterdir())
