"""higgs: the significance scan against closed forms (the threshold chosen on one set, applied to another;
equivalent data), the UCI HIGGS generator's masses against an independent recomputation, the UCI HIGGS loader
on small real-format files (plain, gzipped, cached, malformed), bad input as one line, and tiny end-to-end
reproduces: the H -> tau tau default on its generator and on files in the authors' htautau/ztautau format,
and the UCI benchmark on its generator and a real-format file."""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pandas as pd
import pytest

from dlx.config import compose
from dlx.data import build_data
from dlx.data import higgs as H
from dlx.errors import DlxError
from dlx.papers.higgs.significance import Setting, at, efficiencies, equivalent_data, scan, z_at

# ---------------------------------------------------------------- significance


def closed_z(s, b, sigma):
    """Cowan et al. (2011), eq. 20 with background uncertainty, written out directly."""
    if sigma == 0:
        return math.sqrt(2 * ((s + b) * math.log(1 + s / b) - s))
    v = sigma ** 2
    return math.sqrt(2 * ((s + b) * math.log((s + b) * (b + v) / (b * b + (s + b) * v))
                          - b * b / v * math.log(1 + v * s / (b * (b + v)))))


def test_z_at_is_the_closed_form_in_the_papers_normalization():
    setting = Setting()  # 100 signal, 1000 +- 50 background
    es, eb = np.array([1.0, 0.5, 0.2, 0.03]), np.array([1.0, 0.1, 0.02, 0.001])
    got = z_at(es, eb, setting)
    want = [closed_z(100 * a, 1000 * b, 50 * b) for a, b in zip(es, eb, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-9)
    # no selection: 100 over 1000 +- 50 is about s / sqrt(b + sigma^2) = 100 / sqrt(3500)
    assert got[0] == pytest.approx(100 / math.sqrt(3500), rel=0.03)
    # without the uncertainty: sqrt(2((s+b) ln(1+s/b) - s))
    nosys = z_at(np.array([0.5]), np.array([0.1]), Setting(sigma_b=0.0))[0]
    assert nosys == pytest.approx(math.sqrt(2 * (150 * math.log(1 + 50 / 100) - 50)))


def test_scan_finds_the_best_threshold_of_a_known_table():
    # four score levels; counts per level (signal, background), highest score first
    levels = [(3.0, 30, 10), (2.0, 40, 90), (1.0, 20, 300), (0.0, 10, 600)]
    score = np.concatenate([np.full(s + b, t) for t, s, b in levels])
    label = np.concatenate([np.r_[np.ones(s), np.zeros(b)] for _, s, b in levels])
    t, es, eb = efficiencies(score, label)
    np.testing.assert_allclose(t, [3, 2, 1, 0])
    np.testing.assert_allclose(es, np.cumsum([30, 40, 20, 10]) / 100)
    np.testing.assert_allclose(eb, np.cumsum([10, 90, 300, 600]) / 1000)
    want = [closed_z(100 * a, 1000 * b, 50 * b) for a, b in zip(es, eb, strict=True)]
    out = scan(score, label, Setting(min_background=10))
    assert out["z"] == pytest.approx(max(want)) and out["threshold"] == t[int(np.argmax(want))]
    assert out["s"] == pytest.approx(100 * es[int(np.argmax(want))])
    # a cut that keeps fewer test background events than min_background is never chosen
    strict = scan(score, label, Setting(min_background=200))
    assert strict["eps_b"] * 1000 >= 200
    with pytest.raises(DlxError, match="min_background"):
        scan(score, label, Setting(min_background=5000))


def test_threshold_chosen_on_one_set_is_applied_to_another():
    rng = np.random.default_rng(3)
    lab_v, lab_t = rng.integers(0, 2, 4000), rng.integers(0, 2, 4000)
    val, test = rng.normal(lab_v * 1.5), rng.normal(lab_t * 1.5)
    st = Setting(signal=50, background=1000, sigma_b=0, min_background=20)
    best = scan(val, lab_v, st)
    got = at(test, lab_t, best["threshold"], st)
    keep = test >= best["threshold"]
    assert got["eps_s"] == pytest.approx(keep[lab_t == 1].mean()) and got["eps_b"] == pytest.approx(
        keep[lab_t == 0].mean())
    assert got["z"] == pytest.approx(closed_z(50 * got["eps_s"], 1000 * got["eps_b"], 0), rel=1e-9)
    # the test set's own best threshold is at least as good on it: choosing on validation is not optimistic
    assert scan(test, lab_t, st)["z"] >= got["z"]
    # per fb^-1 with a luminosity: the same as the counts it multiplies to
    lumi = Setting(signal=2.5, background=50, sigma_b=0, min_background=20, luminosity=20)
    assert at(test, lab_t, best["threshold"], lumi)["z"] == pytest.approx(got["z"])
    # no background passing: Z cannot be said
    assert np.isnan(at(test, lab_t, test.max() + 1, st)["z"])
    with pytest.raises(DlxError, match="both classes"):
        at(test, np.ones(4000), 0.0, st)


def test_equivalent_data_is_the_luminosity_ratio_at_equal_significance():
    # with sigma_b = 0, Z grows as sqrt(luminosity): (Z_a/Z_b)^2 - 1 more data brings b to a's Z
    st = Setting(signal=3, background=400, sigma_b=0, luminosity=10)
    za = z_at(np.array([0.5]), np.array([0.02]), st)[0]
    zb = z_at(np.array([0.4]), np.array([0.02]), st)[0]
    more = float(equivalent_data(za, zb))
    assert more > 0
    scaled = Setting(signal=3, background=400, sigma_b=0, luminosity=10 * (1 + more))
    assert z_at(np.array([0.4]), np.array([0.02]), scaled)[0] == pytest.approx(za, rel=1e-9)


def test_a_better_classifier_is_more_significant():
    rng = np.random.default_rng(0)
    y = rng.random(20000) < 0.5
    weak, strong = y + rng.normal(0, 2.0, y.size), y + rng.normal(0, 0.5, y.size)
    assert scan(strong, y)["z"] > scan(weak, y)["z"] > 0


# ---------------------------------------------------------------- the generator


def masses_by_hand(row):
    """The seven high-level masses of one event, recomputed from its 21 low-level features with plain
    floats, following the rules of dlx/data/higgs.py's docstring."""
    def vec(pt, eta, phi):
        return [pt * math.cosh(eta), pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)]

    def m(*vs):
        e, x, y, z = (sum(v[i] for v in vs) for i in range(4))
        return math.sqrt(max(e * e - x * x - y * y - z * z, 0.0))

    lep = vec(*row[0:3])
    met, mphi = row[3], row[4]
    nx, ny = met * math.cos(mphi), met * math.sin(mphi)
    lpt = row[0]
    mu = 80.4 ** 2 / 2 + lep[1] * nx + lep[2] * ny
    a = mu * lep[3] / lpt ** 2
    disc = a * a - (lep[0] ** 2 * met ** 2 - mu * mu) / lpt ** 2
    r = math.sqrt(disc) if disc > 0 else 0.0
    pz = min((a - r, a + r), key=abs)
    nu = [math.sqrt(met ** 2 + pz ** 2), nx, ny, pz]
    jets = [(row[5 + 4 * i + 3], i, vec(*row[5 + 4 * i: 8 + 4 * i])) for i in range(4)]
    jets.sort(key=lambda j: (-j[0], j[1]))  # highest tag first, then pT order
    b1, b2, q1, q2 = (j[2] for j in jets)
    w = [lep[i] + nu[i] for i in range(4)]
    one = (m(q1, q2, b1), m(w, b2))
    two = (m(q1, q2, b2), m(w, b1))
    jjj, jlv = one if abs(one[0] - 172.5) + abs(one[1] - 172.5) <= abs(two[0] - 172.5) + abs(two[1] - 172.5) \
        else two
    return [m(q1, q2), jjj, m(lep, nu), jlv, m(b1, b2), m(q1, q2, b1, b2), m(q1, q2, b1, b2, lep, nu)]


def test_high_level_features_are_masses_of_the_low_level_ones():
    x, y = H.generate(300, np.random.default_rng(7))
    assert x.shape == (300, 28) and x.dtype == np.float32 and set(np.unique(y)) == {0, 1}
    by_hand = np.array([masses_by_hand([float(v) for v in row[:21]]) for row in x])
    np.testing.assert_allclose(x[:, 21:], by_hand, rtol=2e-5, atol=1e-3)
    # the selection: a lepton and four jets above 20 GeV within |eta| < 2.5, jets in pT order, 0/1 tags
    jets = x[:, 5:21].reshape(-1, 4, 4)
    assert (x[:, 0] > 20).all() and (np.abs(x[:, 1]) < 2.5).all() and (jets[:, :, 0] > 20).all()
    assert (np.diff(jets[:, :, 0], axis=1) <= 0).all() and set(np.unique(jets[:, :, 3])) <= {0.0, 1.0}
    # where the W-mass constraint has a solution, m_lv is m_W
    assert np.median(x[:, 23]) == pytest.approx(80.4, abs=0.01)


def test_signal_and_background_differ_in_their_masses():
    x, y = H.generate(4000, np.random.default_rng(1))
    two_tags = x[:, 8:21:4].sum(1) == 2
    mbb_sig = np.median(x[(y == 1) & two_tags, 25])
    assert 110 < mbb_sig < 140  # h -> b b
    top = x[(y == 0) & two_tags, 22]  # background m_jjj near the top mass
    assert 150 < np.median(top) < 195
    wwbb = np.median(x[y == 1, 27])
    assert 400 < wwbb < 470  # H0 at 425 GeV


def test_generator_sets_are_seeded_and_the_test_set_is_fixed():
    def bundle(*ov):
        return build_data(compose("train", ["data=higgs_uci", "task=binary", "data.normalize=false",
                                            *ov]).data)

    a = bundle("data.n=200", "data.n_test=100")
    b = bundle("data.n=300", "data.n_test=100", "data.seed=5")
    c = bundle("data.n=200", "data.n_test=100")
    assert (a.test.x == b.test.x).all() and (a.test.y == b.test.y).all()
    assert (a.train.x == c.train.x).all() and not (a.train.x[:200] == b.train.x[:200]).all()
    assert len(a.train) == 200 and len(b.train) == 300
    for feats, width in (("low", 21), ("high", 7), ("all", 28)):
        got = bundle("data.n=50", "data.n_test=20", f"data.features={feats}")
        assert got.train.x.shape == (50, width) and got.meta.input_shape == (width,)
    assert bundle("data.n=50", "data.n_test=20", "data.features=high").meta.feature_names[0] == "m_jj"


def test_control_keeps_each_objects_class_distribution_and_removes_the_masses():
    x, y = H.generate(4000, np.random.default_rng(1))
    xc, yc = H.generate(4000, np.random.default_rng(1), particles="shuffled")
    assert (yc == y).all() and xc.shape == x.shape and xc.dtype == np.float32
    assert not np.array_equal(xc[:, :21], x[:, :21])
    for cls in (0, 1):
        c = y == cls
        for cols in H.OBJECTS:  # each object's joint per-class distribution: the same rows, reordered
            a, b = x[c][:, cols], xc[c][:, cols]
            np.testing.assert_array_equal(a[np.lexsort(a.T)], b[np.lexsort(b.T)])
        # the correlations between objects are gone (the default's are strong)
        cross = [abs(np.corrcoef(xc[c][:, i], xc[c][:, j])[0, 1]) for i in range(21) for j in range(21)
                 if i < j and not any(i in range(21)[o] and j in range(21)[o] for o in H.OBJECTS)
                 and xc[c][:, i].std() > 0 and xc[c][:, j].std() > 0]
        assert max(cross) < 0.12
        assert np.corrcoef(x[c][:, 5], x[c][:, 9])[0, 1] > 0.3  # jet 1 and jet 2 pT in the default
    # the high-level features are the masses of the shuffled objects, by the default's rules ...
    np.testing.assert_allclose(xc[:, 21:], H.high_level(xc[:, :21]).astype(np.float32), rtol=1e-6)

    # ... so the h -> b b peak of the signal is gone: m_bb in 110-140 GeV as often as in the background
    def window(x, sel):
        return float(((x[sel, 25] > 110) & (x[sel, 25] < 140)).mean())

    two, two_c = x[:, 8:21:4].sum(1) == 2, xc[:, 8:21:4].sum(1) == 2
    assert window(x, (y == 1) & two) > 3 * window(x, (y == 0) & two)
    assert abs(window(xc, (y == 1) & two_c) - window(xc, (y == 0) & two_c)) < 0.08


@pytest.mark.parametrize("data", ["higgs_uci", "htautau"])
def test_control_is_a_data_switch(tmp_path, data):
    """Both benchmarks' control is one switch (dlx/data/higgs.py particles_of, generated_events)."""
    def bundle(*ov):
        return build_data(compose("train", [f"data={data}", "task=binary", "data.normalize=false",
                                            "data.n=200", "data.n_test=100", *ov]).data)

    a, c = bundle(), bundle("data.particles=shuffled")
    assert (a.train.y == c.train.y).all() and not (a.train.x == c.train.x).all()
    assert c.meta.extra["particles"] == "shuffled"
    with pytest.raises(DlxError, match="unknown data.particles"):
        bundle("data.particles=mixed")
    real = tmp_path / "HIGGS.csv"  # a real file: the control still refuses it (it shuffles generated events)
    real.write_text("1,0.5\n")
    with pytest.raises(DlxError, match="needs the generator"):
        bundle("data.particles=shuffled", f"data.root={real}")


# ---------------------------------------------------------------- the real file


def write_higgs(path, rows: int, seed: int = 0, gz: bool = False, cols: int = 29):
    x, y = H.generate(rows, np.random.default_rng(seed))
    table = np.column_stack([y.astype(np.float64), x.astype(np.float64)])[:, :cols]
    text = "\n".join(",".join(f"{v:.18e}" for v in row) for row in table) + "\n"
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return table.astype(np.float32)


def real(root, *ov):
    return build_data(compose("train", ["data=higgs_uci", "task=binary", f"data.root={root}",
                                        "data.test_rows=10",
                                        *ov]).data)


@pytest.mark.parametrize("gz", [False, True])
def test_loader_reads_plain_and_gzipped_files_through_a_cache(tmp_path, gz, monkeypatch):
    name = "HIGGS.csv.gz" if gz else "HIGGS.csv"
    table = write_higgs(tmp_path / name, 60, gz=gz)
    d = real(tmp_path, "data.normalize=false")
    assert len(d.train) == 50 and len(d.test) == 10
    np.testing.assert_array_equal(d.test.x.numpy(), table[50:, 1:])  # the last rows are the test set
    np.testing.assert_array_equal(d.train.y.numpy(), table[:50, 0].astype(np.int64))
    cache, info = tmp_path / "HIGGS.f32", tmp_path / "HIGGS.f32.json"
    meta = json.loads(info.read_text())
    assert meta["shape"] == [60, 29] and cache.stat().st_size == 60 * 29 * 4
    # shuffled batches stream every training row once, from the memory map
    import torch

    got = [xb for xb, _ in d.train.batches(16, shuffle=True, generator=torch.Generator().manual_seed(0))]
    assert [len(b) for b in got] == [16, 16, 16, 2]
    rows = np.sort(np.concatenate([b.numpy() for b in got]).view([("", np.float32)] * 28).ravel())
    assert (rows == np.sort(table[:50, 1:].copy().view([("", np.float32)] * 28).ravel())).all()
    # a second load reads the cache, not the text
    monkeypatch.setattr(H, "_read_csv", lambda *a, **k: pytest.fail("re-parsed a cached file"))
    H._VERIFIED.clear()
    again = real(tmp_path, "data.features=low")
    assert again.train.x.shape == (50, 21)
    x = table[:50, 1:22]
    np.testing.assert_allclose(again.train.x.numpy(), (x - x.mean(0)) / x.std(0), rtol=1e-4, atol=1e-4)
    # a corrupted cache is rebuilt (its checksum no longer matches)
    monkeypatch.undo()
    H._VERIFIED.clear()
    with open(cache, "r+b") as f:
        f.write(b"\x00\x00\x00\x00")
    np.testing.assert_array_equal(real(tmp_path, "data.normalize=false").train.y.numpy()[:1],
                                  table[:1, 0].astype(np.int64))
    assert json.loads(info.read_text())["sha256"] == meta["sha256"]


def test_loader_subsets_nest_and_validation_is_carved_from_training(tmp_path):
    write_higgs(tmp_path / "HIGGS.csv", 80)
    small = real(tmp_path, "data.n_train=10", "data.normalize=false")
    big = real(tmp_path, "data.n_train=30", "data.normalize=false")
    s = {tuple(r) for r in small.train.x.numpy().tolist()}
    assert len(small.train) == 10 and s <= {tuple(r) for r in big.train.x.numpy().tolist()}
    val = real(tmp_path, "data.val_fraction=0.25", "data.normalize=false")
    assert len(val.val) == 18 and len(val.train) == 52 and len(val.test) == 10
    with pytest.raises(DlxError, match="n_train=500"):
        real(tmp_path, "data.n_train=500")


def test_the_cache_follows_the_source(tmp_path):
    write_higgs(tmp_path / "HIGGS.csv", 40, seed=0)
    first = real(tmp_path, "data.normalize=false").test.x.numpy()
    table = write_higgs(tmp_path / "HIGGS.csv", 40, seed=1)  # a new file: new size or mtime
    np.testing.assert_array_equal(real(tmp_path, "data.normalize=false").test.x.numpy(), table[30:, 1:])
    assert not np.array_equal(first, table[30:, 1:])


def test_cache_dir(tmp_path):
    write_higgs(tmp_path / "HIGGS.csv", 30)
    real(tmp_path / "HIGGS.csv", f"data.cache_dir={tmp_path / 'cache'}")
    assert (tmp_path / "cache" / "HIGGS.f32").is_file() and not (tmp_path / "HIGGS.f32").exists()


def test_malformed_files_are_one_clear_error(tmp_path):
    write_higgs(tmp_path / "HIGGS.csv", 30)
    lines = (tmp_path / "HIGGS.csv").read_text().splitlines()
    lines[6] = ",".join(lines[6].split(",")[:20])  # a short row
    (tmp_path / "HIGGS.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DlxError, match=r"row 7 has 20 values, expected 29"):
        real(tmp_path)
    narrow = tmp_path / "narrow"
    narrow.mkdir()
    write_higgs(narrow / "HIGGS.csv", 30, cols=28)
    with pytest.raises(DlxError, match="has 28 columns, expected 29"):
        real(narrow)
    wide = tmp_path / "wide"
    wide.mkdir()
    lines = [ln for ln in (tmp_path / "HIGGS.csv").read_text().splitlines() if ln.count(",") == 28]
    lines[3] += ",1.0"
    (wide / "HIGGS.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DlxError, match="not a HIGGS table"):
        real(wide)
    labels = tmp_path / "labels"
    labels.mkdir()
    write_higgs(labels / "HIGGS.csv", 30)
    text = (labels / "HIGGS.csv").read_text().splitlines()
    text[2] = "2" + text[2][text[2].index(","):]
    (labels / "HIGGS.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(DlxError, match="row 3: label 2 is not 0 or 1"):
        real(labels)
    text[2] = "1,abc" + text[2][text[2].index(",", 2):]
    (labels / "HIGGS.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(DlxError, match="could not be read as a HIGGS table"):
        real(labels)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DlxError, match="holds no HIGGS.csv"):
        real(tmp_path / "empty")
    with pytest.raises(DlxError, match="test_rows=10 must"):
        write_higgs(tmp_path / "empty" / "HIGGS.csv", 8)
        real(tmp_path / "empty")


# ---------------------------------------------------------------- the experiment

TINY = ["data.n=1500", "data.n_test=1000", "trainer.epochs=1", "trainer.eval_every=1", "higgs.seeds=[0]",
        "higgs.deep.width=16", "higgs.deep.depth=2", "higgs.shallow.width=16", "higgs.gbt.max_iter=10",
        "higgs.curve.n_train=[300]", "higgs.curve.models=[gbt]", "higgs.curve.features=[low]",
        "higgs.features=[low,all]",
        "higgs.significance.min_background=20", "higgs.bootstrap.replicates=50", "launcher=inline",
        "trainer.threads=1"]


def test_tiny_reproduce_end_to_end(run_cli, tmp_path):
    rc, out, err = run_cli("reproduce", "higgs", *TINY, "--out", str(tmp_path), "--name", "h")
    assert rc == 0, err
    assert "higgs: " in out and "claims hold" in out and "deep_low_beats_shallow_all" in out
    d = tmp_path / "reproduce" / "h"
    res = pd.read_csv(d / "results.csv")
    # 3 models x 2 feature sets + the trees on 300 training events
    assert len(res) == 6 + 1 and (res.status == "completed").all()
    assert set(res[~res.curve].features) == {"low", "all"} and res.z.gt(0).all()
    assert res.test_auc.between(0, 1).all() and set(res[res.curve].n_train) == {300}
    table = pd.read_csv(d / "table.csv")
    assert len(table) == 6 and (table.runs == 1).all()
    row = table[(table.model == "deep") & (table.features == "low")].iloc[0]
    assert pd.isna(row.paper_auc) and pd.isna(row.paper_z)  # the tau tau paper's AUC table is not quoted
    sub = res[(res.model == "deep") & (res.features == "low")]
    assert row.auc == pytest.approx(sub.test_auc.mean()) and row.z == pytest.approx(sub.z.mean())
    # Z comes from the child's own predictions, never from a retrain: the threshold most significant on
    # its validation events, applied to its test events
    child = res[(res.model == "gbt") & (res.features == "all") & ~res.curve].iloc[0]
    runs = d / "runs" / child.run_id
    pred, val = pd.read_csv(runs / "predictions_test.csv"), pd.read_csv(runs / "predictions_val.csv")
    st = Setting(signal=43.5, background=23600, sigma_b=0, min_background=20, luminosity=20)
    best = scan(val.score, val.label, st)
    assert len(pred) == 1000 and len(val) == 150 and child.threshold == pytest.approx(best["threshold"])
    assert child.z == pytest.approx(at(pred.score, pred.label, best["threshold"], st)["z"])
    assert child.z_val == pytest.approx(best["z"])
    curve = pd.read_csv(d / "learning.csv")
    assert set(curve.model) == {"gbt"} and list(curve.n_train) == [300, 1350]
    summary = json.loads((d / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["kind"] == "higgs" and summary["data"] == "htautau"
    assert summary["significance"]["threshold_chosen_on"] == "val"
    assert summary["significance"]["luminosity"] == 20
    assert [c["id"] for c in summary["claims"]] == ["deep_low_beats_shallow_all", "deep_low_beats_trees_all",
                                                    "deep_low_matches_all", "shallow_needs_high",
                                                    "trees_need_high", "equivalent_data"]
    by = {c["id"]: c for c in summary["claims"]}
    # one network seed: no interval for the per-seed claims; the trees' claims are bootstrapped over events
    for cid in ("deep_low_beats_shallow_all", "deep_low_matches_all", "shallow_needs_high",
                "equivalent_data"):
        assert by[cid]["verdict"] == "inconclusive" and by[cid]["n"] == 1, by[cid]
    for cid in ("deep_low_beats_trees_all", "trees_need_high"):
        assert by[cid]["ci_method"] == "percentile" and by[cid]["ci"] is not None
    assert "25%" in by["equivalent_data"]["paper"]
    zs = {(r.model, r.features): r.z for r in res[~res.curve].itertuples()}
    assert by["equivalent_data"]["estimate"] == pytest.approx(
        (zs["deep", "all"] / zs["shallow", "all"]) ** 2 - 1, rel=1e-4)
    assert summary["bootstrap"]["replicates"] == 50 and summary["particles"] == "events"
    for png in ("table.png", "roc.png", "learning.png", "significance.png"):
        assert (d / png).stat().st_size > 1000, png
    (d / "roc.png").unlink()
    assert run_cli("plot", str(d))[0] == 0 and (d / "roc.png").is_file()
    # dlx report shows the per-cell table (AUC and Z per model and feature set), not the children's rows
    assert run_cli("report", str(d), "--out", str(tmp_path / "rep"))[0] == 0
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "| model | features | auc | auc_std | z |" in report


def test_tiny_reproduce_of_the_uci_benchmark(run_cli, tmp_path):
    rc, out, err = run_cli("reproduce", "higgs", "experiment=higgs_uci_cpu", *TINY, "--out", str(tmp_path),
                           "--name", "u")
    assert rc == 0, err
    d = tmp_path / "reproduce" / "u"
    summary = json.loads((d / "summary.json").read_text())
    assert summary["data"] == "higgs_uci" and summary["significance"]["luminosity"] is None
    assert [c["id"] for c in summary["claims"]] == ["deep_beats_shallow_low", "deep_low_matches_all",
                                                    "shallow_needs_high", "deep_low_beats_high",
                                                    "significance_low", "trees_need_high"]
    by = {c["id"]: c for c in summary["claims"]}
    assert by["deep_low_beats_high"]["verdict"] == "not shown"  # no high-level runs in this sweep
    table = pd.read_csv(d / "table.csv")
    row = table[(table.model == "deep") & (table.features == "low")].iloc[0]
    assert row.paper_auc == 0.880 and row.paper_z == 4.9  # Nat. Commun. 2014, Table 1


def synthetic_results(aucs: dict, zs: dict | None = None):
    rows = []
    for (m, f), values in aucs.items():
        for seed, v in enumerate(values):
            rows.append({"model": m, "features": f, "seed": seed, "n_train": 1000, "curve": False,
                         "status": "completed", "test_auc": v, "z": (zs or {}).get((m, f), 1.0)})
    return pd.DataFrame(rows)


def test_table_on_a_synthetic_sweep():
    from dlx.papers.higgs.analysis import summarize

    paper_like = {("shallow", "low"): [0.73, 0.74], ("shallow", "high"): [0.77, 0.78],
                  ("shallow", "all"): [0.81, 0.82], ("deep", "low"): [0.875, 0.885],
                  ("deep", "high"): [0.80, 0.80], ("deep", "all"): [0.885, 0.885], ("gbt", "low"): [0.73],
                  ("gbt", "high"): [0.78], ("gbt", "all"): [0.81]}
    table = summarize(synthetic_results(paper_like, {("deep", "low"): 4.9, ("shallow", "low"): 2.5}),
                      "higgs_uci")
    assert len(table) == 9
    row = table[(table.model == "deep") & (table.features == "low")].iloc[0]
    assert row.auc == pytest.approx(0.88) and row.auc_std == pytest.approx(np.std([0.875, 0.885], ddof=1))
    assert row.runs == 2 and pd.isna(table[table.model == "gbt"].auc_std).all()
    assert row.z == pytest.approx(4.9) and row.paper_auc == 0.880


def test_htautau_claims_follow_the_numbers():
    """The tau tau paper's claims on synthetic per-seed tables: its shape holds, the reverse fails."""
    from omegaconf import OmegaConf

    from dlx.papers.higgs.analysis import claims

    rules = OmegaConf.create({"beats_all": 0.0, "match": 0.01, "needs_high": 0.0, "data_gain": 0.0,
                              "deep_gain": 0.02, "beats_high": 0.0, "z_gain": 0.0})
    paper = {("shallow", "low"): [0.70, 0.71, 0.70], ("shallow", "all"): [0.78, 0.785, 0.78],
             ("deep", "low"): [0.80, 0.805, 0.80], ("deep", "all"): [0.802, 0.806, 0.801],
             ("gbt", "low"): [0.71], ("gbt", "all"): [0.79]}
    zs = {("deep", "all"): 3.0, ("shallow", "all"): 2.5}
    rng = np.random.default_rng(0)
    boot = {("deep", "low"): 0.80 + 0.002 * rng.standard_normal(200),
            ("deep", "all"): 0.802 + 0.002 * rng.standard_normal(200),
            ("gbt", "low"): 0.71 + 0.002 * rng.standard_normal(200),
            ("gbt", "all"): 0.79 + 0.002 * rng.standard_normal(200)}
    res = synthetic_results(paper, zs)
    res.loc[(res.model == "deep") & (res.features == "all"), "z"] = [3.0, 3.1, 2.9]
    by = {c["id"]: c for c in claims(res, boot, rules, "htautau")}
    assert [by[k]["verdict"] for k in by] == ["holds"] * 6, by
    assert by["equivalent_data"]["estimate"] == pytest.approx(np.mean((np.array([3.0, 3.1, 2.9]) / 2.5) ** 2
                                                                       - 1), rel=1e-4)
    # the reverse: shallow with the engineered features ahead of deep without them, deep needing them
    rev = {("shallow", "low"): [0.70, 0.71, 0.70], ("shallow", "all"): [0.85, 0.855, 0.85],
           ("deep", "low"): [0.75, 0.755, 0.75], ("deep", "all"): [0.86, 0.865, 0.86],
           ("gbt", "low"): [0.71], ("gbt", "all"): [0.79]}
    by = {c["id"]: c for c in claims(synthetic_results(rev, {("deep", "all"): 2.0, ("shallow", "all"): 2.5}),
                                     {k: v - (0.1 if k == ("deep", "low") else 0) for k, v in boot.items()},
                                     rules, "htautau")}
    for cid in ("deep_low_beats_shallow_all", "deep_low_beats_trees_all", "deep_low_matches_all",
                "equivalent_data"):
        assert by[cid]["verdict"] == "fails", by[cid]


def test_weighted_auc_is_the_auc_of_the_repeated_sample():
    from sklearn.metrics import roc_auc_score

    from dlx.papers.higgs.analysis import weighted_auc

    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.4
    score = np.round(y + rng.normal(0, 1, 500), 1)  # rounded: many ties
    groups = np.unique(score, return_inverse=True)[1].ravel()
    ones = np.ones(500)
    assert weighted_auc(groups, ones, ones * y) == pytest.approx(roc_auc_score(y, score))
    w = rng.integers(0, 4, 500).astype(float)
    rep = np.repeat(np.arange(500), w.astype(int))
    assert weighted_auc(groups, w, w * y) == pytest.approx(roc_auc_score(y[rep], score[rep]))


def test_auc_replicates_resample_events_and_seeds():
    from sklearn.metrics import roc_auc_score

    from dlx.papers.higgs.analysis import auc_replicates

    rng = np.random.default_rng(1)
    n = 4000
    y = rng.random(n) < 0.5
    base = y + rng.normal(0, 1.5, n)
    scores = {("gbt", "low"): {0: base},
              ("gbt", "all"): {0: base + rng.normal(0, 0.01, n)},  # nearly the same scores
              ("deep", "low"): {s: y + rng.normal(0, 1.0 + 0.3 * s, n) for s in range(3)},
              ("deep", "all"): {0: y + rng.normal(0, 1.0, n), 2: y + rng.normal(0, 1.6, n)}}  # seed 1 failed
    b = auc_replicates(scores, y, replicates=300, seed=0)
    assert set(b) == set(scores) and all(len(v) == 300 for v in b.values())
    assert b["gbt", "low"].mean() == pytest.approx(roc_auc_score(y, base), abs=0.003)
    sd = b["gbt", "low"].std()
    assert 0.005 < sd < 0.015  # about the AUC's standard error on 4000 events
    # the same resample for every cell: a difference of near-identical scores is far tighter than either
    assert (b["gbt", "all"] - b["gbt", "low"]).std() < sd / 5
    # a network cell's replicates spread over its seeds' AUCs (seeds resampled), beyond the events' noise
    per_seed = [roc_auc_score(y, s) for s in scores["deep", "low"].values()]
    assert b["deep", "low"].mean() == pytest.approx(np.mean(per_seed), abs=0.005)
    assert b["deep", "low"].std() > sd
    assert np.isfinite(b["deep", "all"]).all()
    again = auc_replicates(scores, y, replicates=300, seed=0)
    assert all((again[k] == b[k]).all() for k in b)  # seeded


def test_paper_preset_end_to_end_on_a_tiny_real_file(run_cli, tmp_path):
    write_higgs(tmp_path / "HIGGS.csv.gz", 400, gz=True)
    rc, out, err = run_cli("reproduce", "higgs", "experiment=higgs_uci_paper", f"data.root={tmp_path}",
                           "data.test_rows=150", "trainer.epochs=1", "trainer.eval_every=1",
                           "higgs.deep.width=8", "higgs.shallow.width=8", "higgs.models=[shallow,gbt]",
                           "higgs.features=[low]", "higgs.curve.n_train=[100]", "higgs.curve.models=[gbt]",
                           "baseline.max_iter=5",
                           "higgs.significance.min_background=10", "launcher=inline", "trainer.threads=1",
                           "--out", str(tmp_path / "out"), "--name", "p")
    assert rc == 0, err
    d = tmp_path / "out" / "reproduce" / "p"
    res = pd.read_csv(d / "results.csv")
    assert len(res) == 3 and (res.status == "completed").all()
    assert set(res.n_train) == {225, 100}  # 250 training rows less a tenth for validation
    summary = json.loads((d / "summary.json").read_text())
    assert summary["source"] == "file" and summary["n_test"] == 150
    assert (tmp_path / "HIGGS.f32").is_file()


@pytest.mark.parametrize("override, needle", [
    ("data.features=low", "set higgs.features"),
    ("higgs.models=[shallow,cnn]", "unknown model 'cnn' in higgs.models"),
    ("higgs.features=[low,mid]", "unknown feature set 'mid'"),
    ("higgs.seeds=[a]", "higgs.seeds"),
    ("seed=3", "set higgs.seeds"),
    ("model.depth=3", "higgs.deep.depth"),
    ("higgs.curve.n_train=[999999999]", "higgs.curve.n_train"),
    ("higgs.significance.signal=0", "higgs.significance"),
    ("task=classify", "task=binary"),
    ("experiment=higgs_paper", "data.root"),
    ("experiment=higgs_uci_paper", "data.root"),
    ("data.root=/nonexistent/higgs", "/nonexistent/higgs"),
    ("data.val_fraction=0", "data.val_fraction > 0"),
    ("task.save_predictions=[test]", "task.save_predictions=[val,test]"),
    ("data=digits", "data=htautau"),
])
def test_bad_input_is_one_line(run_cli, tmp_path, override, needle):
    base = ["data.n=200", "data.n_test=100", "launcher=inline"]
    if not override.startswith("higgs.curve"):
        base.append("higgs.curve.n_train=[]")
    rc, _, err = run_cli("reproduce", "higgs", *base, override, "--out", str(tmp_path))
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    for summary in tmp_path.rglob("runs/*/summary.json"):  # refused before any child trained
        assert json.loads(summary.read_text())["status"] != "completed", summary


def test_unknown_feature_set_via_the_cli_is_exit_2(run_cli, tmp_path):
    rc, _, err = run_cli("train", "data=higgs_uci", "task=binary", "data.features=mid", "data.n=100",
                         "trainer=quick", "--out", str(tmp_path))
    assert rc == 2 and "unknown data.features 'mid'" in err and len(err.strip().splitlines()) == 1, err
    assert not any(tmp_path.rglob("summary.json"))  # refused before the run directory was written


def test_wrong_column_count_via_the_cli_is_exit_2(run_cli, tmp_path):
    write_higgs(tmp_path / "HIGGS.csv", 30, cols=22)
    rc, _, err = run_cli("train", "data=higgs_uci", "task=binary", f"data.root={tmp_path}",
                         "data.test_rows=10",
                         "trainer=quick", "--out", str(tmp_path / "o"))
    assert rc == 2 and "has 22 columns, expected 29" in err and len(err.strip().splitlines()) == 1, err


def test_presets_compose():
    cpu = compose("higgs")
    assert cpu.data.name == "htautau" and cpu.model.activation == "tanh" and cpu.task.name == "binary"
    assert cpu.higgs.shallow.depth == 1 and cpu.higgs.shallow.width == 300 and cpu.higgs.deep.depth == 8
    assert list(cpu.higgs.seeds) == [0, 1, 2] and cpu.sweep.workers == 2 and cpu.data.val_fraction > 0
    assert cpu.higgs.significance.sigma_b == 0 and cpu.higgs.significance.luminosity == 20
    paper = compose("higgs", ["experiment=higgs_paper"])
    assert paper.data.name == "htautau" and paper.higgs.deep.depth == 8 and paper.higgs.needs_root
    assert paper.trainer.batch_size == 100
    uci = compose("higgs", ["experiment=higgs_uci_paper"])
    assert uci.data.name == "higgs_uci" and uci.higgs.deep.width == 300 and uci.higgs.needs_root
    assert uci.optimizer.weight_decay == 1e-5 and uci.data.test_rows == 500000
    assert uci.higgs.significance.signal == 100 and uci.higgs.significance.luminosity is None
    assert compose("higgs", ["experiment=higgs_uci_cpu"]).data.name == "higgs_uci"
