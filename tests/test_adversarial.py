"""I-defender and baselines: detectors on synthetic data with a known answer, attacks within budget,
and `dlx detect-adversarial` end to end on a tiny config."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from dlx.config import compose
from dlx.papers.idefender import attacks as atk
from dlx.papers.idefender.detectors import build_detector, class_fpr, separation, threshold, thresholds
from dlx.papers.idefender.detectors.idefender import UNSEEN
from dlx.papers.idefender.detectors.kd_bu import mc_uncertainty
from dlx.papers.idefender.detectors.lid import lid_mle
from dlx.papers.idefender.features import Observed, layer_names, observe
from dlx.papers.idefender.wrap import PixelModel


def blobs(n_per: int, rng, shift=0.0, dim=6):
    """Two classes: class c lives around +-3 on every axis (two clusters each); ``shift`` moves the points
    off both classes, towards where no natural input lies."""
    centers = {0: [np.full(dim, -3.0), np.r_[np.full(dim // 2, -3.0), np.full(dim - dim // 2, -1.0)]],
               1: [np.full(dim, 3.0), np.r_[np.full(dim // 2, 3.0), np.full(dim - dim // 2, 1.0)]]}
    xs, ys = [], []
    for c, cs in centers.items():
        for mu in cs:
            xs.append(mu + shift + 0.3 * rng.standard_normal((n_per, dim)))
            ys += [c] * n_per
    x = np.concatenate(xs)
    logits = np.stack([-x.sum(1), x.sum(1)], 1)  # predicted class = sign of the sum, as a classifier would
    return Observed({"fc1": x, "fc2": x[:, :3], "logits": logits}, logits), np.array(ys)


DET_CFG = OmegaConf.create({
    "idefender": {"layers": ["fc1"], "components": 2, "covariance": "full", "pca": None, "reg_covar": 1e-3},
    "mahalanobis": {"layers": ["fc1"]}, "kd_bu": {"layer": "fc1", "bandwidth": 0.5},
    "lid": {"layers": ["fc1", "fc2"], "k": 10, "ref_size": 60}})


@pytest.mark.parametrize("name", ["idefender", "mahalanobis", "kd_bu"])
def test_unsupervised_detectors_flag_off_manifold_points(name):
    rng = np.random.default_rng(0)
    train, y = blobs(50, rng)
    val, _ = blobs(30, rng)
    clean, _ = blobs(30, rng)
    off, _ = blobs(30, rng, shift=np.r_[0, 0, 0, 0, 2.0, -2.0])  # same predicted class, odd hidden state
    det = build_detector(name, DET_CFG, seed=0).fit(train, y)
    det.calibrate(val)
    thr = threshold(det.score(val), 0.05)
    res = separation(det.score(clean), det.score(off), thr)
    assert res["auroc"] > 0.95 and res["tpr"] > 0.8
    assert res["fpr_test"] < 0.2


def test_idefender_prefers_the_mixture_of_the_predicted_class():
    rng = np.random.default_rng(1)
    train, y = blobs(60, rng)
    det = build_detector("idefender", DET_CFG, seed=0).fit(train, y)
    x, _ = blobs(20, rng)
    swapped = Observed(x.feats, -x.logits)  # same hidden state, but the classifier claims the other class
    assert (det.loglik(x) > det.loglik(swapped) + 10).all()
    # one mixture component per cluster: more components fit the two-cluster classes better
    one = OmegaConf.merge(DET_CFG, {"idefender": {"components": 1}})
    det1 = build_detector("idefender", one).fit(train, y)
    assert det.loglik(x).mean() > det1.loglik(x).mean()
    # a class with a single training point gets no mixture: inputs predicted as it are never typical
    lone = np.flatnonzero(y == 1)[1:]
    keep = np.setdiff1d(np.arange(len(y)), lone)
    few = build_detector("idefender", DET_CFG).fit(Observed({k: v[keep] for k, v in train.feats.items()},
                                                            train.logits[keep]), y[keep])
    ll = few.loglik(x)
    assert (ll[x.pred == 1] <= UNSEEN).all() and (ll[x.pred == 0] > UNSEEN).all() and np.isfinite(ll).all()
    clean = few.score(x)  # and scores stay usable for thresholds and ROC
    sep = separation(clean, clean[::-1], threshold(clean, 0.05))
    assert np.isfinite(sep["auroc"])


def test_idefender_ablation_variant_adopts_the_fitted_layers_mixtures_exactly():
    """The ablation reuses the run's I-defender mixtures for its default size and each of its layers: the
    scores equal a fresh fit's; another size, another layer or another seed is fitted, not adopted."""
    from dlx.papers.idefender.detectors.idefender import IDefender

    rng = np.random.default_rng(2)
    train, y = blobs(40, rng)
    x, _ = blobs(15, rng)
    both = IDefender(layers=["fc1", "fc2"], n_components=2, seed=3).fit(train, y)
    for layers in (["fc1"], ["fc2"], ["fc2", "fc1"]):
        reused = IDefender(layers=layers, n_components=2, seed=3)
        assert reused.adopt(both)
        np.testing.assert_array_equal(reused.score(x), IDefender(layers=layers, n_components=2, seed=3)
                                      .fit(train, y).score(x))
    assert not IDefender(layers=["logits"], n_components=2, seed=3).adopt(both)
    assert not IDefender(layers=["fc1"], n_components=3, seed=3).adopt(both)
    assert not IDefender(layers=["fc1"], n_components=2, seed=4).adopt(both)
    assert not IDefender(layers=["fc1"], n_components=2, seed=3).adopt(None)
    unfitted = IDefender(["fc1"], 2, seed=3)
    assert not IDefender(layers=["fc1"], n_components=2, seed=3).adopt(unfitted)


def test_lid_supervised_and_estimator():
    rng = np.random.default_rng(2)
    # points on a 2-D plane in 10-D space have LID near 2; full 10-D gaussian noise has a higher LID
    ref = np.c_[rng.standard_normal((400, 2)), np.zeros((400, 8))]
    plane = np.c_[rng.standard_normal((50, 2)), np.zeros((50, 8))]
    assert abs(np.median(lid_mle(plane, ref, 20)) - 2) < 1.0
    train, y = blobs(40, rng)
    det = build_detector("lid", DET_CFG).fit(train, y)
    assert det.supervised
    clean, _ = blobs(30, rng)
    adv, _ = blobs(30, rng, shift=np.r_[0, 0, 0, 0, 2.0, -2.0])
    det.fit_supervised(clean, adv)
    test_clean, _ = blobs(30, rng)
    test_adv, _ = blobs(30, rng, shift=np.r_[0, 0, 0, 0, 2.0, -2.0])
    assert separation(det.score(test_clean), det.score(test_adv), 0.0)["auroc"] > 0.8


def test_max_softmax_and_uncertainty():
    logits = np.array([[10.0, 0.0], [0.1, 0.0]])
    s = build_detector("max_softmax", DET_CFG).score(Observed({}, logits))
    assert s[1] > s[0]
    agree = np.tile(np.array([[0.9, 0.1]]), (5, 1, 1))
    disagree = np.array([[[0.9, 0.1]], [[0.1, 0.9]]] * 2)
    assert mc_uncertainty(agree)[0] == pytest.approx(0.0, abs=1e-12)
    assert mc_uncertainty(disagree)[0] == pytest.approx(0.32)


def test_perturbation_of_nothing_fooled():
    from dlx.papers.idefender.attacks import perturbation

    x = np.zeros((0, 1, 8, 8), np.float32)
    l2, linf = perturbation(x, x)
    assert l2.shape == linf.shape == (0,)
    l2, linf = perturbation(np.zeros((2, 1, 2, 2)), np.full((2, 1, 2, 2), 0.5))
    assert l2 == pytest.approx([1.0, 1.0]) and linf == pytest.approx([0.5, 0.5])


def test_threshold_hits_target_fpr():
    scores = np.arange(1000.0)
    thr = threshold(scores, 0.05)
    assert (scores > thr).mean() == pytest.approx(0.05, abs=0.002)
    # few inputs: the nearest rate they allow (1 of 22 flagged, not 2)
    assert (np.arange(22.0) > threshold(np.arange(22.0), 0.05)).sum() == 1
    assert (np.arange(5.0) > threshold(np.arange(5.0), 0.05)).sum() == 0


def class_scores(n_per: int, rng):
    """Clean scores of three predicted classes on different scales (class 2's clean inputs look least
    typical to the detector), as hidden-layer likelihoods often do."""
    pred = np.repeat([0, 1, 2], n_per)
    scores = np.r_[rng.normal(0, 1, n_per), rng.normal(3, 1, n_per), rng.normal(6, 2, n_per)]
    return scores, pred


def test_per_class_thresholds_give_each_class_the_target_fpr():
    rng = np.random.default_rng(0)
    val, pred = class_scores(1000, rng)
    glob = thresholds(val, pred, 0.05, per_class=False)
    per = thresholds(val, pred, 0.05, per_class=True)
    assert glob.mode == "global" and per.mode == "per_class" and set(per.per_class) == {0, 1, 2}
    # a global threshold flags the classes at very different rates: ~0% of class 0, most of the 5% in class 2
    g = {r["class"]: r["fpr"] for r in class_fpr(val, pred, glob, 3)}
    assert (val > glob.at(pred)).mean() == pytest.approx(0.05, abs=0.003)
    assert g[0] < 0.01 and g[2] > 0.12
    # per class: each class at the target on the calibration data (to the 1/n granularity) ...
    for r in class_fpr(val, pred, per, 3):
        assert r["n"] == 1000 and r["fpr"] == pytest.approx(0.05, abs=1 / 1000)
        assert r["threshold"] == per.per_class[r["class"]]
    # ... and close to it on fresh clean inputs of the same classes
    test, tpred = class_scores(4000, rng)
    for r in class_fpr(test, tpred, per, 3):
        assert r["fpr"] == pytest.approx(0.05, abs=0.025)
    # a class no validation input was predicted as keeps the global threshold; its row says n = 0
    assert per.at(np.array([5]))[0] == glob.value
    assert class_fpr(val, pred, per, 4)[3]["n"] == 0
    # separation takes one threshold per input
    sep = separation(test, test + 10, per.at(tpred), per.at(tpred))
    assert sep["fpr_test"] == pytest.approx(0.05, abs=0.02) and sep["tpr"] > 0.9


def tiny_model():
    from dlx.data.bundle import Meta
    from dlx.models import build_model

    torch.manual_seed(0)
    cfg = OmegaConf.create({"name": "cnnfc", "width": 4, "hidden": [16, 8], "dropout": 0.5})
    return build_model(cfg, Meta("t", "classify", (1, 8, 8), 10))


def test_features_hook_hidden_layers_and_mc_dropout():
    model = tiny_model()
    assert layer_names(model) == ["fc1", "fc2", "logits"]
    obs = observe(model, torch.randn(7, 1, 8, 8), batch_size=3, mc_samples=4)
    assert obs.feats["fc1"].shape == (7, 16) and obs.feats["fc2"].shape == (7, 8)
    assert (obs.feats["fc1"] >= 0).all()  # after the ReLU
    assert obs.logits.shape == (7, 10) and obs.mc_probs.shape == (4, 7, 10)
    assert all(m.training for m in model.modules())  # a model in train mode is handed back in train mode
    model.eval()
    observe(model, torch.randn(3, 1, 8, 8), mc_samples=2)
    assert not any(m.training for m in model.modules())  # and MC dropout leaves no dropout layer on


@pytest.mark.parametrize("name", ["fgsm", "bim", "pgd", "deepfool", "cw"])
def test_attacks_stay_in_clip_range_and_eps(name):
    model = tiny_model()
    pm = PixelModel(model, torch.full((1, 1, 1, 1), 0.3), torch.full((1, 1, 1, 1), 0.4))
    clf = atk.art_classifier(pm, (1, 8, 8), 10, (0.0, 1.0), "cpu")
    cfg = compose("idefender", ["attack.eps=0.1", "attack.bim.max_iter=5", "attack.pgd.max_iter=5",
                                         "attack.cw.max_iter=5", "attack.cw.binary_search_steps=1",
                                         "attack.deepfool.max_iter=5"]).attack
    x = np.random.default_rng(0).random((6, 1, 8, 8)).astype(np.float32)
    y = np.arange(6) % 10
    x_adv = atk.craft(name, clf, x, y, cfg)
    assert x_adv.shape == x.shape and x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    if name in atk.LINF:
        assert np.abs(x_adv - x).max() <= 0.1 + 1e-6
        assert np.abs(x_adv - x).max() > 0.05  # it did move
    l2, linf = atk.perturbation(x, x_adv)
    assert (l2 >= linf - 1e-6).all()


def tiny_target(model):
    from dlx.data.bundle import Meta
    from dlx.papers.idefender.experiment import Target

    one = torch.ones(1, 1, 1, 1)
    return Target(model.eval(), Meta("t", "classify", (1, 8, 8), 10), "cpu", 0.3 * one, 0.4 * one, (0.0, 1.0),
                  (1, 8, 8), 10, 0, 0)


def test_query_substitute_learns_the_targets_labels_not_the_true_ones(tmp_path):
    """Papernot et al.'s protocol: the substitute's training labels are the target's predictions on the
    attacker's held-out inputs (and on their Jacobian augmentations), never the true labels."""
    from dlx.papers.idefender.classifier import predict
    from dlx.papers.idefender.substitute import query_substitute, substitute_options

    torch.manual_seed(0)  # a random linear target: varied predictions that have nothing to do with the labels
    target = tiny_target(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)))
    cfg = compose("idefender", ["model.width=4", "model.hidden=[16,8]", "trainer.threads=1",
                                "substitute.n_query=40", "substitute.augment_rounds=2",
                                "substitute.epochs=10"])
    opts = substitute_options(cfg)
    assert opts.labels == "query" and opts.model is None  # the defaults: query labels, the target's family
    x_pool = np.random.default_rng(0).random((60, 1, 8, 8)).astype(np.float32)
    y_pool = np.arange(60) % 10
    sub, (x, labels, rounds), table = query_substitute(opts, cfg, target, x_pool, tmp_path, y_pool)
    assert len(x) == 40 * 2**2 and list(table.n_labelled) == [40, 80, 160]
    assert list(np.bincount(rounds)) == [40, 40, 80]
    np.testing.assert_array_equal(labels, target.predict(x))  # every label is a query of the target
    first = rounds == 0
    true = y_pool[np.isin(np.arange(60), np.flatnonzero(np.isin(x_pool, x[first]).all(axis=(1, 2, 3))))]
    assert len(true) == 40 and (labels[first] != true).mean() > 0.5  # ... and not the true labels
    # the augmented points are new inputs within lambda of their parents, in the pixel range
    step = np.abs(x[40:80] - x[:40]).max(axis=(1, 2, 3))
    assert np.allclose(step, opts.lam, atol=1e-5) and x.min() >= 0.0 and x.max() <= 1.0
    written = pd.read_csv(tmp_path / "labels.csv")
    np.testing.assert_array_equal(written.label, labels)
    assert (written.true_label[first] >= 0).all() and (written.true_label[~first] == -1).all()
    assert (tmp_path / "weights.pt").is_file() and (tmp_path / "rounds.csv").is_file()
    # it was fit to the target's labels (agrees with them more often than 1 in 10)
    xt = target.model_input(x)
    assert (predict(sub, xt) == labels).mean() > 0.3
    assert type(sub).__name__ == type(tiny_model()).__name__  # the classifier's own family (cnnfc) by default


TINY = ["model.width=8", "model.hidden=[32,16]", "trainer.epochs=15", "trainer.threads=1",
        "attacks=[fgsm,pgd]", "attack.pgd.max_iter=5", "attack.pgd.eps_step=0.08", "detector.mc_samples=3",
        "substitute.attacks=[fgsm]", "substitute.n_query=100", "substitute.augment_rounds=2",
        "substitute.epochs=10", "ablation.components=[1,2]", "ablation.layers=[fc1,fc2]",
        "attack.max_examples=60"]


def test_detect_adversarial_end_to_end(run_cli, tmp_path):
    rc, out, err = run_cli("detect-adversarial", *TINY, "--out", str(tmp_path), "--name", "d")
    assert rc == 0, err
    run = tmp_path / "reproduce" / "d"
    for f in ("results.csv", "scores.csv", "ablation.csv", "fpr_per_class.csv", "summary.json", "roc.png",
              "loglik_hist.png", "ablation.png", "classifier/checkpoint.pt", "substitute/weights.pt",
              "substitute/labels.csv", "substitute/rounds.csv"):
        assert (run / f).is_file(), f
    df = pd.read_csv(run / "results.csv")
    # the substitute: query-labelled by default, said so in every black-box row
    black = df[df.setting == "blackbox"]
    assert (black.substitute == "query-labelled").all() and (black.substitute_queries == 400).all()
    assert (black.substitute_model == "cnnfc").all() and black.substitute_agreement.between(0, 1).all()
    assert (df[df.setting == "graybox"].substitute == "none").all()
    assert len(pd.read_csv(run / "substitute" / "labels.csv")) == 400
    # thresholds: global by default; the realized FPR per predicted class under both kinds of threshold
    fpr = pd.read_csv(run / "fpr_per_class.csv")
    assert set(fpr.thresholds) == {"global", "per_class"} and set(fpr["class"]) == set(range(10))
    assert (fpr[fpr.used].thresholds == "global").all() and len(fpr) == 5 * 2 * 10
    assert (df.thresholds == "global").all() and (df.fpr_class_min <= df.fpr_class_max).all()
    assert set(df.detector) == {"idefender", "max_softmax", "mahalanobis", "kd_bu", "lid"}
    cells = set(zip(df.setting, df.attack, strict=True))
    assert cells == {("graybox", "fgsm"), ("graybox", "pgd"), ("blackbox", "fgsm")}
    assert (df[df.detector == "lid"].supervision == "supervised:fgsm").all()
    assert (df[df.detector != "lid"].supervision == "unsupervised").all()
    assert ((df.linf <= 0.3 + 1e-5) & (df.n <= df.n_attacked) & (df.n_attacked <= 60)).all()
    assert df.auroc.between(0, 1).all() and df.clean_acc.gt(0.5).all()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["kind"] == "idefender" and summary["status"] == "completed"
    # --estimate: each phase timed on this machine, nothing written, within a factor of 3 of the run (both
    # after this process's imports, which the run above paid; 3, not 2: the suite's other worker changes the
    # load between the run and the estimate)
    files = sorted(tmp_path.rglob("*"))
    rc, est, err = run_cli("detect-adversarial", *TINY, "--out", str(tmp_path), "--name", "e", "--estimate")
    assert rc == 0, err
    assert sorted(tmp_path.rglob("*")) == files
    assert all(f"{p}_s" in est for p in ("classifier", "substitute", "attacks", "detectors", "figures"))
    assert "attacked<= 60" in est  # attack.max_examples caps the sources
    guess, took = float(re.search(r"estimate: ([\d.]+) s wall", est).group(1)), summary["experiment_s"]
    assert took / 3 <= max(guess, 0.5) <= 3 * took, (guess, took)
    assert "graybox.fgsm.idefender.auroc" in summary["metrics"]
    assert summary["substitute"]["labels"] == "query" and summary["substitute"]["queries"] == 400
    assert summary["thresholds"] == "global" and "idefender.fpr_class_spread" in summary["metrics"]
    assert set(summary["fpr_per_class"]) == set(df.detector)
    # the claims: every id, each comparison decided on a bootstrap percentile interval over test examples
    from dlx.papers.idefender.verdicts import CLAIM_IDS

    got = {c["id"]: c for c in summary["claims"]}
    assert list(got) == list(CLAIM_IDS)
    for c in got.values():
        assert c["verdict"] in ("holds", "fails", "inconclusive") and c["ci_method"] == "percentile", c
        assert c["n"] == 2000 and c["ci"][0] - 1e-9 <= c["estimate"] <= c["ci"][1] + 1e-9, c
    assert "> 0.9 on its 95% bootstrap percentile interval" in got["detects_graybox"]["rule"]
    assert set(got["detects_graybox"]["measured"]) == {"fgsm", "pgd"}
    gray_fgsm = df[(df.setting == "graybox") & (df.attack == "fgsm") & (df.detector == "idefender")]
    assert got["detects_graybox"]["measured"]["fgsm"] == pytest.approx(gray_fgsm.auroc.iloc[0], abs=6e-4)
    # scores.csv says which inputs each detector's threshold flags: its rates are results.csv's
    scores = pd.read_csv(run / "scores.csv", keep_default_na=False, na_values=[""])
    ours = scores[scores.detector == "idefender"]
    assert ours[ours.label == 0].flagged.mean() == pytest.approx(gray_fgsm.fpr_test.iloc[0])
    assert ours[(ours.label == 1) & (ours.attack == "fgsm") & (ours.setting == "graybox")].flagged.mean() == \
        pytest.approx(gray_fgsm.tpr.iloc[0])
    fpr_test = got["fpr_at_nominal"]["measured"]["fpr_test"]
    assert fpr_test == pytest.approx(gray_fgsm.fpr_test.iloc[0], abs=1e-4)
    black_claim = got["detects_blackbox"]
    assert "query-labelled substitute" in black_claim["claim"]
    assert "= 400 target queries" in black_claim["claim"]
    assert "labelled by the target's predictions" in summary["substitute"]["protocol"]
    assert "idefender" in out  # the rich table
    (run / "roc.png").unlink()
    assert run_cli("plot", str(run))[0] == 0 and (run / "roc.png").stat().st_size > 1000

    # the trained child is itself a classifier run; reuse it, black-box only, with the earlier protocol (a
    # substitute trained on the true labels, itself a train run) and per-class thresholds
    rc, _, err = run_cli("detect-adversarial", *TINY, "settings=[blackbox]", "detectors=[idefender]",
                         "substitute.labels=true", "substitute.model=mlp", "detector.per_class=true",
                         f"classifier.run={run / 'classifier'}", "--out", str(tmp_path), "--name", "r")
    assert rc == 0, err
    r = tmp_path / "reproduce" / "r"
    again = pd.read_csv(r / "results.csv")
    assert again.clean_acc.iloc[0] == pytest.approx(df.clean_acc.iloc[0])
    assert (again.substitute == "true-labelled").all() and (again.substitute_model == "mlp").all()
    assert again.substitute_queries.isna().all() and (r / "substitute" / "checkpoint.pt").is_file()
    assert (again.thresholds == "per_class").all()
    fpr = pd.read_csv(r / "fpr_per_class.csv")
    used = fpr[fpr.used]
    assert (used.thresholds == "per_class").all()
    # on the calibration data each class is flagged at the rate nearest 5% its count allows
    assert (abs(used.fpr_val - 0.05) <= 0.5 / used.n_val + 1e-9).all()
    said = {c["id"]: c for c in json.loads((r / "summary.json").read_text())["claims"]}
    assert "true labels of the training split" in said["detects_blackbox"]["claim"]
    assert said["detects_graybox"]["verdict"] == "not shown"  # black-box only: no gray-box attack run
    assert said["beats_supervised_lid"]["verdict"] == "not shown"  # I-defender alone


@pytest.mark.parametrize("args, needle", [
    (["attacks=[fgsm,nope]"], "unknown attack 'nope'"),
    (["detectors=[idefender,magic]"], "unknown detector 'magic'"),
    (["attacks=nope"], "unknown attack 'nope' in attacks"),  # a bare name is a list of one
    (["attacks=[1]"], "attacks must be a list of attacks"),
    (["classifier.run=/nonexistent/run"], "not a directory"),
    (["detector.idefender.layers=[fc9]"], "unknown feature layer 'fc9'"),
    (["substitute.labels=oracle"], "substitute.labels must be one of: query, true"),
    (["substitute.n_query=0"], "substitute.n_query must be an integer >= 1"),
    (["detector.per_class=maybe"], "detector.per_class"),
    (["idefender.rules.auroc=2"], "idefender.rules.auroc must be a number in [0, 1]"),
    (["idefender.bootstrap.replicates=1"], "idefender.bootstrap.replicates must be an integer >= 2"),
    # attack settings ART would refuse only after the classifier is trained
    (["attack.pgd.max_iter=0"], "attack.pgd.max_iter must be an integer >= 1"),
    (["attacks=[cw]", "attack.cw.binary_search_steps=-2"], "attack.cw.binary_search_steps must be"),
    (["attacks=[deepfool]", "attack.deepfool.nb_grads=0"], "attack.deepfool.nb_grads must be"),
    (["attack.eps=2"], "attack.eps must be a number in [0.0, 1.0]"),
    (["attack.batch_size=0"], "attack.batch_size must be an integer >= 1"),
])
@pytest.mark.parametrize("estimate", [False, True])
def test_bad_input_is_one_line_exit_2(run_cli, tmp_path, args, needle, estimate):
    rc, _, err = run_cli("detect-adversarial", *TINY, *args, "--out", str(tmp_path),
                         *(["--estimate"] if estimate else []))
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.rglob("summary.json"))


def test_classifier_run_without_checkpoint(run_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    rc, _, err = run_cli("detect-adversarial", *TINY, f"classifier.run={tmp_path / 'empty'}",
                         "--out", str(tmp_path))
    assert rc == 2 and "no checkpoint" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("preset", ["idefender_mnist", "idefender_cifar10"])
def test_paper_presets_compose_with_paper_strength_cw_and_query_substitute(preset):
    from dlx.papers.idefender.experiment import options

    cfg = compose("idefender", [f"experiment={preset}"])
    assert cfg.data.name == preset.split("_")[1]
    assert cfg.attack.eps == pytest.approx(8 / 255 if "cifar" in preset else 0.3, rel=1e-3)
    cw = cfg.attack.cw
    assert (cw.binary_search_steps, cw.max_iter, cw.learning_rate, cw.initial_const) == (9, 1000, 0.01, 0.001)
    opts = options(cfg)  # every setting of the preset passes the checks a run makes first
    assert opts.substitute.labels == "query" and opts.substitute.model is None and opts.fpr == 0.05
    assert opts.attacks == ["fgsm", "bim", "pgd", "deepfool", "cw"]


@pytest.mark.parametrize("preset", ["idefender_mnist", "idefender_cifar10"])
def test_every_paper_preset_setting_says_paper_or_dlx_choice(preset):
    """Each setting's comment (on its line, or the comment block right above a long one) says whether the
    value is the paper's or dlx's choice."""
    from dlx.config import conf_dir

    lines = (conf_dir() / "experiment" / f"{preset}.yaml").read_text().splitlines()
    checked = 0
    for i, line in enumerate(lines):
        code, _, comment = line.partition("#")
        if not code.strip() or code.rstrip().endswith(":"):
            continue  # comments, and the headers of nested blocks
        above = []
        for prev in reversed(lines[:i]):
            if not prev.strip().startswith("#"):
                break
            above.append(prev)
        says = comment or " ".join(above)
        assert "paper" in says or "dlx's choice" in says, line
        checked += 1
    assert checked >= 15
    cw = next(i for i, line in enumerate(lines) if line.strip().startswith("cw:"))
    assert "9 binary-search steps" in " ".join(lines[cw - 3 : cw])  # the CW budget is stated
