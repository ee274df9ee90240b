"""htautau: the generator's physics (mass peaks, the collinear mass of a perfect event, MET as the neutrinos'
sum, four-vector consistency, the tau decay spectrum), the dataset through the public path (feature sets,
seeds, the fixed test set), the loader of the authors' htautau/ztautau files (gzipped, cached, malformed
rows as one line) and a one-epoch MLP through the CLI."""

from __future__ import annotations

import gzip
import json
import re

import numpy as np
import pytest

from dlx.config import compose
from dlx.data import build_data
from dlx.data import higgs as H
from dlx.data import htautau as T
from dlx.errors import DlxError


def inv_mass2(p):
    """m^2 of (4, n) four-vectors."""
    return p[0] ** 2 - p[1] ** 2 - p[2] ** 2 - p[3] ** 2


# ---------------------------------------------------------------- the generator's physics


def test_signal_masses_peak_above_the_backgrounds():
    x, y = T.generate(4000, np.random.default_rng(1))
    assert x.shape == (4000, 25) and x.dtype == np.float32 and y.sum() == 2000
    med = {name: (np.median(x[y == 1, 10 + i]), np.median(x[y == 0, 10 + i]))
           for i, name in enumerate(T.HIGH)}
    for name in ("m_ll", "m_col", "m_mmc"):
        assert med[name][0] > 1.1 * med[name][1], (name, med[name])
    assert 110 < med["m_col"][0] < 135 and 80 < med["m_col"][1] < 100  # near m_H = 125 and m_Z = 91.2
    # the high-level features are those of the (float32) low-level ones, by the module's rules
    np.testing.assert_allclose(x[:, 10:], T.high_level(x[:, :10]).astype(np.float32), rtol=1e-6)
    # the selection: two leptons in acceptance, in pT order; a jet above threshold or the 0 sentinel
    assert (x[:, 0] > 20).all() and (x[:, 3] > 10).all() and (x[:, 0] >= x[:, 3]).all()
    assert (np.abs(x[:, [1, 4]]) < 2.5).all()
    jet = x[:, 8] > 0
    assert (x[jet, 8] > 25).all() and (x[~jet, 9] == 0).all() and 0.1 < jet.mean() < 0.6


def collinear_event_features(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Noiseless events by hand: a 125 GeV parent decays to two taus; each tau's lepton carries a fraction
    x of its momentum and its neutrinos the rest, exactly along it. (low-level features, parent masses)."""
    m, pt, y, phi = np.full(n, 125.0), rng.uniform(40, 80, n), rng.normal(0, 1, n), rng.uniform(-3, 3, n)
    mt = np.sqrt(m ** 2 + pt ** 2)
    parent = np.stack([mt * np.cosh(y), pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y)])
    taus = T._two_body(rng, parent, m, T.M_TAU)
    leptons, met = [], np.zeros((2, n))
    for tau in taus:
        x = rng.uniform(0.2, 0.9, n)
        lep, nu = x * tau[1:], (1 - x) * tau[1:]  # massless, collinear
        met += nu[:2]
        leptons.append(np.stack([np.hypot(lep[0], lep[1]), np.arcsinh(lep[2] / np.hypot(lep[0], lep[1])),
                                 np.arctan2(lep[1], lep[0])]))
    a, b = leptons
    first = a[0] >= b[0]
    low = np.column_stack([np.where(first, a, b).T, np.where(first, b, a).T, np.hypot(*met),
                           np.arctan2(met[1], met[0]), np.zeros(n), np.zeros(n)])
    return low, np.sqrt(inv_mass2(parent))


def test_collinear_mass_of_a_perfect_event_is_the_parent_mass():
    low, parent = collinear_event_features(200, np.random.default_rng(3))
    dphi = np.abs(T.wrap(low[:, 2] - low[:, 5]))
    ok = dphi < 3.0  # leptons not back to back: the collinear system is well conditioned
    assert ok.sum() > 100
    high = T.high_level(low.astype(np.float32))
    m_col = high[ok, 1]
    np.testing.assert_allclose(m_col, parent[ok], rtol=0.01)
    assert (high[:, 0] < high[:, 1]).all()  # m_ll < m_col: the neutrinos carry mass
    # the MMC-style mass uses a prior and a resolution: near, not exact
    assert abs(np.median(high[:, 2]) / 125 - 1) < 0.1


def test_collinear_mass_rules_for_unphysical_solutions():
    # MET exactly opposite the leading lepton: its neutrinos "fly backwards" (a1 < 0 -> x1 = 1)
    low = np.array([[40.0, 0.3, 0.0, 30.0, -0.2, 1.5, 10.0, np.pi, 0.0, 0.0]])
    high = T.high_level(low)
    assert high[0, 1] == pytest.approx(high[0, 0], rel=1e-12)  # m_col = m_ll: no neutrinos taken
    # leptons exactly back to back with MET along them: x floored at X_MIN -> m_col = m_ll / X_MIN at most
    low = np.array([[40.0, 0.3, 0.0, 30.0, -0.2, np.pi, 10.0, 0.0, 0.0, 0.0]])
    high = T.high_level(low)
    assert high[0, 0] <= high[0, 1] <= high[0, 0] / T.X_MIN * (1 + 1e-9) and np.isfinite(high).all()


def test_met_before_smearing_is_the_neutrinos_vector_sum():
    rng = np.random.default_rng(5)
    t = T.truth(rng, 2000, True)
    np.testing.assert_array_equal(t["met"], t["inv1"][1:3] + t["inv2"][1:3])
    # momentum balance: the invisible pT is minus the visible pT (the leptons and the radiation)
    np.testing.assert_allclose(t["met"], -(t["lep1"][1:3] + t["lep2"][1:3] + t["isr"][1:3]), atol=1e-9)
    low, _ = T.detect(rng, t, smear=False)
    np.testing.assert_allclose(low[:, 6] * np.cos(low[:, 7]), t["met"][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(low[:, 6] * np.sin(low[:, 7]), t["met"][1], rtol=1e-12, atol=1e-12)
    smeared, _ = T.detect(rng, t)  # the detector's MET differs from the truth by the mismeasurement
    assert np.abs(smeared[:, 6] - low[:, 6]).mean() > 1.0


def test_four_vectors_are_consistent():
    t = T.truth(np.random.default_rng(6), 5000, False)
    m_l = t["lep_mass"]
    assert set(np.unique(m_l)) == {T.M_E, T.M_MU} and 0.4 < (m_l == T.M_E).mean() < 0.6
    for i, key in enumerate(("lep1", "lep2")):
        inv, tau = t[f"inv{i + 1}"], t[f"tau{i + 1}"]
        rounding = 1e-13 * tau[0] ** 2  # m^2 = E^2 - p^2 loses about E^2 x float64 epsilon (GeV^2)
        assert (np.abs(inv_mass2(t[key]) - m_l[i] ** 2) <= rounding).all()
        assert (inv_mass2(inv) > -rounding).all() and (inv[0] > 0).all()
        np.testing.assert_allclose(t[key] + inv, tau, rtol=1e-12, atol=1e-9)  # lepton + nu nu = tau
        assert (np.abs(inv_mass2(t[key] + inv) - T.M_TAU ** 2) <= rounding).all()
        assert (np.abs(inv_mass2(tau) - T.M_TAU ** 2) <= rounding).all()
    np.testing.assert_allclose(t["tau1"] + t["tau2"], t["parent"], rtol=1e-12, atol=1e-9)
    m = np.sqrt(inv_mass2(t["parent"]))
    assert (np.abs(m - T.M_Z) <= 10 * T.G_Z + 1e-9).all() and abs(np.median(m) - T.M_Z) < 0.3
    # the parent's pT is balanced by the radiation
    np.testing.assert_allclose(t["parent"][1:3], -t["isr"][1:3], atol=1e-12)


def test_tau_decay_spectrum():
    """A boosted tau's lepton carries a fraction x of its energy with density 5/3 - 3x^2 + 4/3x^3 (the
    Michel spectrum, emitted isotropically): mean 21/60, and P(x < 1/2) = 5/6 - 1/8 + 1/48 = 0.7292."""
    t = T.truth(np.random.default_rng(7), 20000, True)
    x = np.concatenate([t["lep1"][0] / t["tau1"][0], t["lep2"][0] / t["tau2"][0]])
    assert (x > 0).all() and (x < 1).all()
    assert np.mean(x) == pytest.approx(21 / 60, abs=0.006)
    assert np.mean(x < 0.5) == pytest.approx(5 / 6 - 1 / 8 + 1 / 48, abs=0.01)


# ---------------------------------------------------------------- the dataset


def bundle(*ov):
    return build_data(compose("train", ["data=htautau", "task=binary", *ov]).data)


def test_the_generated_dataset_through_the_public_path():
    raw = ["data.normalize=false", "data.n=400", "data.n_test=200"]
    a, again = bundle(*raw), bundle(*raw)
    assert a.meta.name == "htautau" and a.meta.task == "binary" and len(a.train) == 400 and len(a.test) == 200
    assert (a.train.x == again.train.x).all() and (a.test.y == again.test.y).all()  # seeded
    b = bundle("data.normalize=false", "data.n=600", "data.n_test=200", "data.seed=5")
    assert (a.test.x == b.test.x).all() and (a.test.y == b.test.y).all()  # the test set: the same for any n
    assert not (a.train.x[:400] == b.train.x[:400]).all()
    assert a.train.y.float().mean() == 0.5 and a.test.y.float().mean() == 0.5
    for feats, width, first in (("low", 10, "lep1_pt"), ("high", 15, "m_ll"), ("all", 25, "lep1_pt")):
        got = bundle("data.n=400", "data.n_test=200", f"data.features={feats}")
        assert got.train.x.shape == (400, width) and got.meta.input_shape == (width,)
        assert got.meta.feature_names[0] == first and len(got.meta.feature_names) == width
    norm = bundle("data.n=400", "data.n_test=200")  # standardized with the training split's moments
    assert norm.train.x.mean(0).abs().max() < 1e-4
    np.testing.assert_allclose(norm.train.x.std(0, unbiased=False).numpy(), 1.0, rtol=1e-3)
    val = bundle("data.n=400", "data.n_test=200", "data.val_fraction=0.25", "data.n_train=100")
    assert len(val.val) == 100 and len(val.train) == 100
    with pytest.raises(DlxError, match="unknown data.features 'mid'"):
        bundle("data.features=mid")
    with pytest.raises(DlxError, match="signal_fraction"):
        bundle("data.signal_fraction=1.0")


# ---------------------------------------------------------------- the authors' files


def write(path, rows: np.ndarray, gz: bool = True):
    text = "\n".join(",".join(f"{v:.9g}" for v in row) for row in rows) + "\n"
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)


def write_pair(folder, n_sig: int = 60, n_bkg: int = 60, gz: bool = True, seed: int = 0):
    x, y = T.generate(n_sig + n_bkg, np.random.default_rng(seed), n_sig / (n_sig + n_bkg))
    ext = ".csv.gz" if gz else ".csv"
    write(folder / f"htautau{ext}", x[y == 1], gz)
    write(folder / f"ztautau{ext}", x[y == 0], gz)
    return x[y == 1], x[y == 0]


def real(*ov):
    return build_data(compose("train", ["data=htautau", "task=binary", "data.test_rows=20", *ov]).data)


def test_loader_reads_the_two_files_through_a_cache(tmp_path, monkeypatch):
    sig, bkg = write_pair(tmp_path)
    d = real(f"data.root={tmp_path}", "data.normalize=false")
    assert len(d.train) == 100 and len(d.test) == 20 and d.train.x.shape == (100, 25)
    assert d.meta.extra["signal_rows"] == 60 and d.meta.extra["background_rows"] == 60
    # the file is the label: every row is back with its file's label
    table = {tuple(r): 1 for r in sig.tolist()} | {tuple(r): 0 for r in bkg.tolist()}
    for split in (d.train, d.test):
        got = [table[tuple(r)] for r in split.x.numpy().tolist()]
        assert got == split.y.numpy().tolist()
    assert int(d.train.y.sum() + d.test.y.sum()) == 60
    assert 0 < int(d.test.y.sum()) < 20  # shuffled together: both classes in the test set
    meta = json.loads((tmp_path / "htautau_ztautau.f32.json").read_text())
    assert meta["shape"] == [120, 26] and (tmp_path / "htautau_ztautau.f32").stat().st_size == 120 * 26 * 4
    assert len(meta["sha256"]) == 64 and meta["sources"]["signal"]["name"] == "htautau.csv.gz"
    # read in chunks of 7 rows: the same array
    files = (tmp_path / "htautau.csv.gz", tmp_path / "ztautau.csv.gz")
    chunked, record = T.cached_array(*files, tmp_path / "chunked", chunk_rows=7)
    np.testing.assert_array_equal(chunked, T.cached_array(*files)[0])
    assert record["sha256"] == meta["sha256"]
    assert (chunked[:60, 0] == 1).all() and (chunked[60:, 0] == 0).all()  # signal rows first
    # a second load reads the cache, not the text, and makes the same split
    monkeypatch.setattr(T, "_read_csv", lambda *a, **k: pytest.fail("re-parsed a cached file"))
    H._VERIFIED.clear()  # the checksum memo the two loaders share
    for feats, width in (("low", 10), ("high", 15)):
        again = real(f"data.root={tmp_path}", "data.normalize=false", f"data.features={feats}")
        assert again.train.x.shape == (100, width)
        np.testing.assert_array_equal(again.test.x.numpy(), d.test.x.numpy()[:, T.FEATURES[feats]])
    sub = real(f"data.root={tmp_path}", "data.val_fraction=0.2", "data.n_train=30")
    assert len(sub.val) == 20 and len(sub.train) == 30 and sub.train.x.mean(0).abs().max() < 1.0


def test_loader_takes_the_two_paths_as_keys(tmp_path):
    write_pair(tmp_path, 30, 40, gz=False)
    (tmp_path / "a").mkdir()
    for name in ("htautau.csv", "ztautau.csv"):
        (tmp_path / name).rename(tmp_path / "a" / f"my_{name}")
    d = real(f"data.signal_file={tmp_path / 'a' / 'my_htautau.csv'}",
             f"data.background_file={tmp_path / 'a' / 'my_ztautau.csv'}", f"data.cache_dir={tmp_path / 'c'}")
    assert len(d.train) + len(d.test) == 70 and int(d.train.y.sum() + d.test.y.sum()) == 30
    assert (tmp_path / "c" / "my_htautau_my_ztautau.f32").is_file()
    with pytest.raises(DlxError, match="one of the two was given alone"):
        real(f"data.signal_file={tmp_path / 'a' / 'my_htautau.csv'}")


def test_malformed_rows_are_one_clear_error(tmp_path):
    write_pair(tmp_path)
    path = tmp_path / "ztautau.csv.gz"
    with gzip.open(path, "rt") as f:
        good = f.read().splitlines()
    lines = list(good)
    lines[6] = ",".join(lines[6].split(",")[:24])  # a short row
    write_lines = "\n".join(lines) + "\n"
    with gzip.open(path, "wt") as f:
        f.write(write_lines)
    with pytest.raises(DlxError, match=re.escape(f"{path} line 7 has 24 values, expected 25")):
        real(f"data.root={tmp_path}")
    lines = list(good)
    lines[2] = "abc," + lines[2].split(",", 1)[1]  # a non-number
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    with pytest.raises(DlxError, match=re.escape(f"{path} line 3: 'abc' is not a number")):
        real(f"data.root={tmp_path}")
    lines = list(good)
    lines[9] += ",1.0"  # a long row
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    with pytest.raises(DlxError, match=re.escape(f"{path} line 10 has 26 values, expected 25")):
        real(f"data.root={tmp_path}")
    path.unlink()
    with pytest.raises(DlxError, match="holds no ztautau.csv.gz or ztautau.csv"):
        real(f"data.root={tmp_path}")


def test_malformed_file_via_the_cli_is_exit_2(run_cli, tmp_path):
    sig, _ = write_pair(tmp_path, gz=False)
    lines = (tmp_path / "htautau.csv").read_text().splitlines()
    lines[4] = ",".join(lines[4].split(",")[:10])
    (tmp_path / "htautau.csv").write_text("\n".join(lines) + "\n")
    rc, _, err = run_cli("train", "data=htautau", "task=binary", f"data.root={tmp_path}", "data.test_rows=20",
                         "trainer=quick", "--out", str(tmp_path / "o"))
    assert rc == 2 and "htautau.csv line 5 has 10 values, expected 25" in err, err
    assert len(err.strip().splitlines()) == 1, err


# ---------------------------------------------------------------- the CLI


def test_one_epoch_mlp_through_the_cli(run_cli, tmp_path):
    rc, out, err = run_cli("train", "model=mlp", "data=htautau", "task=binary", "data.n=2000",
                           "data.n_test=1000", "trainer.epochs=1", "trainer.threads=1",
                           "--out", str(tmp_path))
    assert rc == 0, err
    auc = float(re.search(r"test_auc\s*│\s*([0-9.]+)", out).group(1))
    print(f"htautau 1-epoch MLP test AUC: {auc}")
    assert 0.6 < auc < 1.0


# ---------------------------------------------------------------- the negative control


def test_control_keeps_each_objects_class_distribution_and_removes_the_masses():
    x, y = T.generate(4000, np.random.default_rng(1))
    xc, yc = T.generate(4000, np.random.default_rng(1), particles="shuffled")
    assert (yc == y).all() and xc.shape == x.shape and not np.array_equal(xc[:, :10], x[:, :10])
    lep = np.r_[x[:, 0:3], x[:, 3:6]]  # the leptons as a set (the control re-orders them by pT)
    for cls in (0, 1):
        c = np.r_[y == cls, y == cls]
        a, b = lep[c], np.r_[xc[:, 0:3], xc[:, 3:6]][c]
        np.testing.assert_array_equal(a[np.lexsort(a.T)], b[np.lexsort(b.T)])
        for cols in T.OBJECTS[2:]:  # missing pT and the jet: the same rows of the class, reordered
            a, b = x[y == cls][:, cols], xc[y == cls][:, cols]
            np.testing.assert_array_equal(a[np.lexsort(a.T)], b[np.lexsort(b.T)])
    assert (xc[:, 0] >= xc[:, 3]).all()  # l1 is still the leading lepton
    np.testing.assert_allclose(xc[:, 10:], T.high_level(xc[:, :10]).astype(np.float32), rtol=1e-5, atol=1e-5)
    col = T.HIGH.index("m_mmc") + 10

    def sep(x):  # how far apart the classes' median missing-mass estimates are, in GeV
        return float(np.median(x[y == 1, col]) - np.median(x[y == 0, col]))

    assert sep(x) > 20 and abs(sep(xc)) < 0.5 * sep(x)  # the H peak above the Z's is mostly gone


# ---------------------------------------------------------------- the paper preset on the authors' format


def test_paper_preset_end_to_end_on_tiny_files(run_cli, tmp_path):
    """`dlx reproduce higgs experiment=higgs_paper` on htautau/ztautau files written in the authors' format:
    every model and feature set, the threshold on validation, the claims."""
    write_pair(tmp_path, 300, 300)
    rc, out, err = run_cli("reproduce", "higgs", "experiment=higgs_paper", f"data.root={tmp_path}",
                           "data.test_rows=200", "data.val_fraction=0.25", "trainer.epochs=1",
                           "trainer.eval_every=1", "higgs.deep.width=8", "higgs.deep.depth=3",
                           "higgs.shallow.width=8", "higgs.curve.n_train=[100]", "higgs.curve.models=[gbt]",
                           "baseline.max_iter=5", "higgs.significance.min_background=10",
                           "higgs.bootstrap.replicates=20", "launcher=inline", "trainer.threads=1",
                           "--out", str(tmp_path / "out"), "--name", "p")
    assert rc == 0, err
    assert "deep_low_beats_shallow_all" in out and "equivalent_data" in out
    d = tmp_path / "out" / "reproduce" / "p"
    res = json.loads((d / "summary.json").read_text())
    assert res["data"] == "htautau" and res["source"] == "file" and res["n_test"] == 200
    assert len(res["claims"]) == 6 and res["significance"]["threshold_chosen_on"] == "val"
    import pandas as pd

    table = pd.read_csv(d / "results.csv")
    assert len(table) == 3 * 3 + 1 and (table.status == "completed").all()
    assert set(table[~table.curve].n_train) == {300} and set(table[table.curve].n_train) == {100}
    assert table.z_val.notna().all() and table.threshold.notna().all()
    assert (tmp_path / "htautau_ztautau.f32").is_file()


def test_relative_azimuths_rotate_each_event_and_keep_the_high_level_features():
    x, _ = T.generate(500, np.random.default_rng(4))
    r = T.relative_azimuths(x)
    assert (r[:, 2] == 0).all() and np.abs(r[:, [5, 7]]).max() <= np.pi
    np.testing.assert_allclose(np.cos(r[:, 5]), np.cos(x[:, 5] - x[:, 2]), atol=1e-5)
    np.testing.assert_allclose(np.sin(r[:, 7]), np.sin(x[:, 7] - x[:, 2]), atol=1e-5)
    np.testing.assert_array_equal(r[:, 10:], x[:, 10:])
    # the high-level features are invariant under the rotation: recomputed from the rotated event, the same
    np.testing.assert_allclose(T.high_level(r[:, :10]), T.high_level(x[:, :10]), rtol=1e-4, atol=1e-3)
    d = build_data(compose("train", ["data=htautau", "task=binary", "data.normalize=false", "data.n=200",
                                     "data.n_test=100", "data.azimuth=relative"]).data)
    assert (d.train.x[:, 2] == 0).all() and d.meta.extra["azimuth"] == "relative"
    with pytest.raises(DlxError, match="unknown data.azimuth"):
        build_data(compose("train", ["data=htautau", "task=binary", "data.n=200", "data.n_test=100",
                                     "data.azimuth=sideways"]).data)
