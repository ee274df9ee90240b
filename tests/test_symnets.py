"""Deep symmetry networks (Gens & Domingos): the symnet layer's equivariance and kernel interpolation, the
local-maximum search, the baselines, the rotated-digit and MNIST-rot data, the negative control's data,
bad input as one line with exit 2, and a tiny sweep end to end through the CLI (with resume). The claims'
rules are tested in test_claims_symnets.py."""

from __future__ import annotations

import json
import math
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from dlx.data import build_data
from dlx.data.bundle import Meta
from dlx.data.rotated import AMAT_TEST, AMAT_TRAIN, AMAT_ZIP, parse_amat, rotate_images
from dlx.errors import DlxError
from dlx.models import build_model, count_params
from dlx.models.symnet import P4CNN, ConvNet, Interpolator, Lattice, SymNet

IMG = Meta("digits_rot", "classify", (1, 24, 24), 10)


def digit_batch(n=4, seed=0) -> torch.Tensor:
    """Smooth digit-like images: upsampled scikit-learn digits in a 24x24 frame."""
    cfg = OmegaConf.create({"name": "digits_rot", "rotate": False, "normalize": False, "n_train": None})
    x = build_data(cfg).test.x
    return x[seed:seed + n]


def rel_err(a, b) -> float:
    return float((a - b).detach().norm() / b.detach().norm())


# ------------------------------------------------------------------------------------- the symnet layer
def test_rotating_the_input_by_a_control_angle_permutes_the_group_axis():
    """warp=inputs (the default): the copies of the input at the control points are permuted, so the
    responses at G's control points are too -- by one rotation step (S scales) per 45 degrees."""
    torch.manual_seed(0)
    net = SymNet(1, 10, lattice=Lattice("rotscale", 8, [0.87, 1.15]))
    step = net.lattice.rotation_step()
    assert step == 2 and net.lattice.size == 16
    x = digit_batch()
    r = net.responses(x)  # (B, G, C, H, W), each copy in its own frame
    # a quarter turn is two rotation steps; bilinear resampling commutes with it, so equality is exact
    assert rel_err(net.responses(rotate_images(x, math.pi / 2)), torch.roll(r, 2 * step, dims=1)) < 1e-5
    # 45 degrees, one step: equal up to resampling the image twice
    r45 = net.responses(rotate_images(x, math.pi / 4))
    assert rel_err(r45, torch.roll(r, step, dims=1)) < 0.1
    assert rel_err(r45, torch.roll(r, step, dims=1)) < 0.4 * rel_err(r45, r)
    f, f45 = net.features(x), net.features(rotate_images(x, math.pi / 4))  # after the second layer too
    assert rel_err(f45, torch.roll(f, step, dims=1)) < 0.1


def test_filter_warping_lifts_to_maps_over_g_that_rotate_and_permute():
    """warp=filters: the maps share the image's frame, so a turned input turns the maps and shifts G."""
    torch.manual_seed(0)
    net = SymNet(1, 10, lattice=Lattice("rotation", 8), stem=1, warp="filters")
    x = digit_batch()
    r = net.responses(x)

    def turned(maps, k, angle):
        return rotate_images(torch.roll(maps, k, dims=1).flatten(1, 2), angle).view_as(maps)

    assert rel_err(net.responses(rotate_images(x, math.pi / 2)), turned(r, 2, math.pi / 2)) < 1e-5
    inner = (slice(None), slice(None), slice(None), slice(6, 18), slice(6, 18))  # away from the frame
    r45 = net.responses(rotate_images(x, math.pi / 4))[inner]
    shifted, unshifted = turned(r, 1, math.pi / 4)[inner], turned(r, 0, math.pi / 4)[inner]
    assert rel_err(r45, shifted) < 0.25 and rel_err(r45, shifted) < 0.5 * rel_err(r45, unshifted)


def test_layer_by_layer_maps_over_g_are_aligned_and_pooled_over_neighbourhoods():
    """warp=layers: the first layer runs on warped copies of the input, then its maps return to the image's
    frame: one map over (G, space) that a turned input turns and shifts along G (exactly at a quarter turn,
    up to resampling at 45 degrees), pooled over each control point's neighbourhood in G."""
    torch.manual_seed(0)
    net = SymNet(1, 10, lattice=Lattice("rotscale", 8, [0.87, 1.15]), warp="layers")
    step = net.lattice.rotation_step()
    x = digit_batch()
    r = net.responses(x)

    def turned(maps, k, angle):
        return rotate_images(torch.roll(maps, k, dims=1).flatten(1, 2), angle).view_as(maps)

    assert rel_err(net.responses(rotate_images(x, math.pi / 2)), turned(r, 2 * step, math.pi / 2)) < 1e-5
    inner = (slice(None), slice(None), slice(None), slice(3, 9), slice(3, 9))  # away from the frame
    r45 = net.responses(rotate_images(x, math.pi / 4))[inner]
    shifted, unshifted = turned(r, step, math.pi / 4)[inner], turned(r, 0, math.pi / 4)[inner]
    assert rel_err(r45, shifted) < 0.15 and rel_err(r45, shifted) < 0.3 * rel_err(r45, unshifted)
    # the pooling over G sees every control point's map at the same image position: it is the
    # interpolated neighbourhood maximum of the aligned maps, never below the control value itself
    pooled = net.local_pool(r)
    assert pooled.shape == r.shape and (pooled >= r - 1e-5).all() and (pooled > r + 1e-4).any()
    rows = r.permute(0, 2, 3, 4, 1).reshape(-1, r.shape[1])
    assert torch.allclose(pooled.permute(0, 2, 3, 4, 1).reshape(-1, r.shape[1]), net.interp.local_max(rows))
    # without the search (refine_radius=0) there is nothing between control points to pool
    flat = SymNet(1, 10, lattice=Lattice("rotscale", 8, [0.87, 1.15]), warp="layers", refine_radius=0.0)
    flat.load_state_dict(net.state_dict())
    assert torch.equal(flat.local_pool(r), r)


@pytest.mark.parametrize("warp", ["inputs", "filters", "layers"])
def test_the_symnet_is_invariant_to_quarter_turns_and_k1_is_the_convnet(warp):
    torch.manual_seed(0)
    x = digit_batch()
    net = SymNet(1, 10, warp=warp)
    with torch.no_grad():
        out = net(x)
        for k in (1, 2, 3):  # warp=layers resamples four times: float32 rounding of the grids adds up
            assert torch.allclose(net(torch.rot90(x, k, dims=(-2, -1))), out,
                                  atol=5e-4 if warp == "layers" else 1e-4)
    one, plain = SymNet(1, 10, lattice=Lattice("rotation", 1), warp=warp), ConvNet(1, 10)
    assert count_params(one) == count_params(plain) == count_params(net)
    plain.load_state_dict({"conv1.weight": one.conv1.weight, "conv2.weight": one.conv2.weight,
                           "bias1": one.bias1, "bias2": one.bias2, "fc.weight": one.fc.weight,
                           "fc.bias": one.fc.bias})
    assert torch.allclose(one(x), plain(x), atol=1e-5)


def test_p4cnn_is_invariant_to_rot90_with_a_comparable_size():
    torch.manual_seed(0)
    x = digit_batch()
    p4 = P4CNN(1, 10)
    with torch.no_grad():
        assert torch.allclose(p4(torch.rot90(x, 1, dims=(-2, -1))), p4(x), atol=1e-5)
    sym = count_params(SymNet(1, 10))
    assert abs(count_params(p4) - sym) / sym < 0.1


@pytest.mark.parametrize("group,scales", [("rotation", [1.0]), ("rotscale", [0.8, 1.0, 1.25])])
def test_interpolation_reproduces_the_control_values_exactly(group, scales):
    ip = Interpolator(Lattice(group, 8, scales), steps=1, radius=0.5, grid=3)
    f = torch.randn(6, ip.G)
    at_ctrl = ip.value(f, ip.ctrl.unsqueeze(0).expand(6, -1, -1))
    assert torch.allclose(at_ctrl, f, atol=1e-5)
    assert torch.allclose(ip.on_grid(f)[..., 0], f, atol=1e-5)  # grid point 0 is the control point
    const = torch.full((2, ip.G), 3.0)  # constants are reproduced everywhere, not only at the points
    assert torch.allclose(ip.value(const, torch.rand(2, 5, ip.D)), const[:, :5], atol=1e-5)


def test_the_search_finds_the_maximum_between_control_points():
    """A smooth response peaked half-way between two control points: the control points miss the peak,
    the interpolated search finds it."""
    lat = Lattice("rotation", 8)
    phi = torch.tensor([0.3, 2 * math.pi / 16, 1.9])  # radians; the second is exactly between two points
    f = torch.exp(2 * (torch.cos(lat.coords[:, 0].float()[None] - phi[:, None]) - 1))  # peak value 1
    ip = Interpolator(lat, steps=2, radius=0.5)
    found = ip.global_max(f)
    dense = ip.value(f, torch.linspace(0, 2 * math.pi, 3601)[None, :, None].expand(3, -1, -1)).amax(-1)
    assert torch.allclose(found, dense, atol=1e-3)  # the interpolant's own maximum
    assert (found > f.amax(-1) + 0.05).all() and (found - 1).abs().max() < 0.05  # near the true peak, 1
    assert torch.equal(Interpolator(lat, radius=0).global_max(f), f.amax(-1))  # no search: the points only
    local = Interpolator(lat, steps=1, radius=0.5).local_max(f)
    assert (local >= f - 1e-6).all() and (local.amax(-1) > f.amax(-1)).all()
    assert torch.equal(Interpolator(lat, radius=0).local_max(f), f)


def test_the_symnet_trains_end_to_end_through_the_search():
    torch.manual_seed(0)
    net = SymNet(1, 10)
    x, y = digit_batch(8), torch.arange(8)
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    assert net.conv1.weight.grad.abs().sum() > 0


def test_affine_group_builds_and_runs():
    cfg = OmegaConf.create({"name": "symnet", "group": "affine", "K": 4, "scales": [0.9, 1.1],
                            "aspects": [1.0], "shears": [-0.2, 0.2], "search_grid": 3, "widths": [4, 8]})
    net = build_model(cfg, IMG)
    assert net.lattice.size == 16 and net.interp.D == 3  # rotation, scale, shear searched
    assert net(digit_batch(2)).shape == (2, 10)


@pytest.mark.parametrize("key,value,msg", [
    ("K", 0, "model.K"), ("group", "euclid", "unknown symmetry group"), ("kernel_width", -1, "kernel_width"),
    ("search_grid", 4, "odd"), ("refine_radius", 2, "refine_radius"), ("scales", [0, 1], "scales"),
    ("kernel_width", 40.0, "too wide")])
def test_bad_model_settings_are_one_clear_error(key, value, msg):
    cfg = OmegaConf.create({"name": "symnet", key: value})
    with pytest.raises(DlxError, match=msg):
        build_model(cfg, IMG)


# ---------------------------------------------------------------------------------------------- data
def test_digits_rot_fixed_test_set_stratified_subsets_and_seeded_augmentation():
    base = {"name": "digits_rot", "n_train": 50}
    a = build_data(OmegaConf.create({**base, "subset_seed": 0}))
    b = build_data(OmegaConf.create({**base, "subset_seed": 1}))
    assert a.meta.input_shape == (1, 24, 24) and len(a.train) == 50 and len(a.test) == 539
    raw = [build_data(OmegaConf.create({**base, "subset_seed": k, "normalize": False})) for k in (0, 1)]
    assert torch.equal(raw[0].test.x, raw[1].test.x)  # the same test images whatever the subset
    assert not torch.equal(a.train.x, b.train.x)
    assert np.bincount(a.train.y.numpy(), minlength=10).tolist() == [5] * 10
    upright = build_data(OmegaConf.create({**base, "rotate": False}))
    assert not torch.equal(upright.test.x, a.test.x)
    aug = build_data(OmegaConf.create({**base, "rotate_augment": True})).augment
    batch = (a.train.x[:8], a.train.y[:8])
    one = aug(batch, torch.Generator().manual_seed(3))[0]
    assert torch.equal(one, aug(batch, torch.Generator().manual_seed(3))[0])
    assert not torch.equal(one, aug(batch, torch.Generator().manual_seed(4))[0])
    # corners turned in take the background value, not zero
    fill = a.meta.extra["fill"]
    turned = rotate_images(torch.full((1, 1, 24, 24), fill), math.pi / 4, fill=fill)
    assert torch.allclose(turned, torch.full_like(turned, fill), atol=1e-5)


def test_digits_rot_bad_settings():
    for cfg, msg in (({"n_train": 5000}, "n_train"), ({"scale": [1.2, 0.8]}, "data.scale"),
                     ({"angles": [0, 720]}, "data.angles"), ({"digit_size": 30}, "digit_size")):
        with pytest.raises(DlxError, match=msg):
            build_data(OmegaConf.create({"name": "digits_rot", **cfg}))


def amat_lines(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(f"{v:.6e}" for v in rng.random(784)) + f" {float(i % 10):.6e}" for i in range(n)]


def write_amat(root, n_train=30, n_test=12, zipped=False, bad: str | None = None):
    train, test = amat_lines(n_train, 0), amat_lines(n_test, 1)
    if bad is not None:
        test[4] = bad
    if zipped:
        with zipfile.ZipFile(root / AMAT_ZIP, "w") as z:
            z.writestr(f"mnist_rotation_new/{AMAT_TRAIN}", "\n".join(train) + "\n")
            z.writestr(f"mnist_rotation_new/{AMAT_TEST}", "\n".join(test) + "\n")
    else:
        (root / AMAT_TRAIN).write_text("\n".join(train) + "\n")
        (root / AMAT_TEST).write_text("\n".join(test) + "\n")
    return train, test


@pytest.mark.parametrize("zipped", [False, True])
def test_mnist_rot_amat_roundtrip(tmp_path, zipped):
    train, _ = write_amat(tmp_path, zipped=zipped)
    d = build_data(OmegaConf.create({"name": "mnist_rot", "root": str(tmp_path), "n_valid": 10,
                                     "normalize": False}))
    assert (len(d.train), len(d.val), len(d.test)) == (20, 10, 12)
    assert d.meta.input_shape == (1, 28, 28)
    first = np.array(train[0].split(), dtype=np.float32)
    assert np.allclose(d.train.x[0, 0].numpy().ravel(), first[:784], atol=1e-6)  # row by row
    assert d.train.y[:3].tolist() == [0, 1, 2] and d.val.y[0].item() == 0  # line 21 has label 20 % 10
    merged = build_data(OmegaConf.create({"name": "mnist_rot", "root": str(tmp_path), "n_valid": 10,
                                          "merge_valid": True}))
    assert len(merged.train) == 30 and merged.val is None


@pytest.mark.parametrize("bad,msg", [
    ("1 2 3", "line 5: expected 785"), (" ".join(["0.5"] * 784) + " x", "line 5: 'x'"),
    (" ".join(["0.5"] * 784) + " 12", "line 5: label"), (" ".join(["7"] * 784) + " 1", "line 5: pixel")])
def test_malformed_amat_line_is_named(tmp_path, bad, msg):
    write_amat(tmp_path, bad=bad)
    with pytest.raises(DlxError, match=msg):
        parse_amat((tmp_path / AMAT_TEST).read_text(), AMAT_TEST)


def test_mnist_rot_missing_root_or_files(tmp_path):
    with pytest.raises(DlxError, match="data.root is required"):
        build_data(OmegaConf.create({"name": "mnist_rot"}))
    with pytest.raises(DlxError, match="missing"):
        build_data(OmegaConf.create({"name": "mnist_rot", "root": str(tmp_path)}))


# ------------------------------------------------------------------------------------- negative control
def test_control_keeps_the_images_and_the_class_balance_but_not_the_invariance():
    """data.label=digit_plus_angle: the very same images (pool and test), ten classes as balanced as the
    digits', but the class is the digit shifted by its 36-degree angle bin, so the digit alone (what a
    rotation-invariant network sees) says nothing about it; upright, it is the default's upright data."""
    from dlx.data.rotated import angle_bins, make_digits

    base = {"name": "digits_rot", "normalize": False, "n_train": None}
    d = build_data(OmegaConf.create(base))
    c = build_data(OmegaConf.create({**base, "label": "digit_plus_angle"}))
    assert torch.equal(d.train.x, c.train.x) and torch.equal(d.test.x, c.test.x)
    for split in ("train", "test"):
        yd, yc = getattr(d, split).y.numpy(), getattr(c, split).y.numpy()
        share = np.bincount(yc, minlength=10) / len(yc)
        assert share.min() > 0.07 and share.max() < 0.13  # the digits': 0.10 +- 0.01
        assert (yc != yd).mean() > 0.8  # most images change class
        joint = np.histogram2d(yd, yc, bins=10, range=[[0, 10], [0, 10]])[0] / len(yd)
        px, py = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
        mi = float(np.nansum(joint * np.log(joint / (px * py))))
        assert mi < 0.1 < 2.0 < -np.sum(px * np.log(px))  # digit -> class: no information (it was all of it)
    # the class is exactly the digit plus the angle's bin, with the angles the default draws
    th = torch.rand(1797, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 * math.pi
    from sklearn.datasets import load_digits

    from dlx.data.prep import stratified_pick
    digits = load_digits().target
    test_idx, _ = stratified_pick(digits, 539, 0)
    want = (digits + angle_bins(th.numpy())) % 10
    got = make_digits(24, 16, 0.3, 0, True, (0.0, 2 * math.pi), None, 0, "digit_plus_angle")[3]
    assert np.array_equal(got, want[test_idx])
    edges = [0.0, math.radians(35.9), math.radians(36.1), math.radians(359.9), 2 * math.pi]
    assert angle_bins(edges).tolist() == [0, 0, 1, 9, 0]
    upright = [build_data(OmegaConf.create({**base, "rotate": False, "label": lab}))
               for lab in ("digit", "digit_plus_angle")]
    assert torch.equal(upright[0].train.y, upright[1].train.y)
    assert torch.equal(upright[0].test.x, upright[1].test.x)
    with pytest.raises(DlxError, match="data.label"):
        build_data(OmegaConf.create({**base, "label": "angle"}))


def test_the_turned_test_digits_carry_the_datas_own_labels(tmp_path):
    """invariance.evaluate: a P4 CNN (exactly invariant to quarter turns) errs as much at 90 degrees as at 0
    on the default labels; on the control a quarter turn moves every digit two classes on (90 / 36), so
    there its error at 90 degrees is its upright prediction scored against the shifted labels."""
    from dlx.config import compose
    from dlx.papers.symnets.invariance import evaluate
    from dlx.runs import write_json
    from dlx.sweep.grid import Child

    cfg = compose("symnets", ["model=p4cnn", "data.rotate=false", "data.n_train=100", "model.widths=[4,8]"])
    data = build_data(cfg.data)  # upright digits: the same data (and so the same model) for both labels
    torch.manual_seed(0)
    model = build_model(cfg.model, data.meta, data.train)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(25):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(data.train.x), data.train.y).backward()
        opt.step()
    with torch.no_grad():
        upright = model.eval()(data.test.x).argmax(1)
    errors = {}
    for label in ("digit", "digit_plus_angle"):
        d = tmp_path / "runs" / label
        d.mkdir(parents=True)
        OmegaConf.save(OmegaConf.merge(cfg, {"data": {"label": label}}), d / "config.yaml")
        write_json(d / "summary.json", {"status": "completed"})
        torch.save({"model": model.state_dict()}, d / "checkpoint.pt")
        child = Child(label, (), {"variant": "p4cnn", "model": "p4cnn", "seed": 0})
        errors[label] = evaluate(tmp_path, [child], [0, 90]).set_index("angle").error
    shifted = float((upright != (data.test.y + 2) % 10).float().mean())
    assert errors["digit"][90] == pytest.approx(errors["digit"][0], abs=0.005)
    assert errors["digit_plus_angle"][0] == pytest.approx(errors["digit"][0])
    assert errors["digit_plus_angle"][90] == pytest.approx(shifted, abs=0.005)
    assert errors["digit"][90] < 0.5 < 0.8 < errors["digit_plus_angle"][90]


def test_the_control_is_registered_and_composes():
    from dlx.config import compose
    from dlx.registry import get

    exp = get("symnets")
    assert exp.control == ("data.label=digit_plus_angle",) and "angle bin" in exp.control_note
    assert compose("symnets", list(exp.control)).data.label == "digit_plus_angle"


# ----------------------------------------------------------------------------------------------- CLI
TINY = ["sweep.models=[convnet,symnet]", "sweep.n_train=[20,30]", "sweep.seeds=1", "ablation.n_train=[20]",
        "ablation.K=[8]", "invariance.models=[symnet]", "invariance.n_train=20", "invariance.seeds=1",
        "invariance.angle_step=90",
        "trainer.steps=3", "baseline_steps=3", "trainer.threads=1", "launcher=inline", "model.widths=[4,8]",
        "data.test_fraction=0.05"]


def test_tiny_sweep_end_to_end_and_resume(run_cli, tmp_path):
    rc, out, err = run_cli("reproduce", "symnets", *TINY, "ablation.warps=[layers]", "--out", str(tmp_path),
                           "--name", "t")
    assert rc == 0, err
    d = tmp_path / "reproduce" / "t"
    for f in ("results.csv", "errors.csv", "ablation.csv", "invariance.csv", "error_vs_n.png",
              "invariance.png", "ablation.png"):
        assert (d / f).is_file(), f
    res = pd.read_csv(d / "results.csv")
    # 4 main, 1 without the search, 2 layer-wise (with and without the search), 1 upright
    assert len(res) == 8 and (res.status == "completed").all()
    assert (res.warp == "layers").sum() == 2 and res.warp.fillna("").isin(["", "layers"]).all()
    errors = pd.read_csv(d / "errors.csv")
    assert set(errors.model) == {"convnet", "symnet"} and set(errors.n_train) == {20, 30}
    assert (errors.params > 0).all() and errors.epoch_s.notna().all()
    abl = pd.read_csv(d / "ablation.csv")
    assert set(abl.row) == {"K=8", "K=8, no search", "K=8, warp=layers", "K=8, no search, warp=layers"}
    assert (abl.seeds == 1).all() and abl[abl.row == "K=8"].main.all() and abl.main.sum() == 1
    inv = pd.read_csv(d / "invariance.csv")
    assert sorted(inv.angle.unique()) == [0, 90, 180, 270] and set(inv.model) == {"symnet"}
    s = json.loads((d / "summary.json").read_text())
    assert s["status"] == "completed" and {c["id"] for c in s["claims"]} >= {"small_n_gap", "gap_shrinks"}
    assert "symnets:" in out and "claims hold" in out
    (d / "error_vs_n.png").unlink()
    rc, _, err = run_cli("plot", str(d))  # figures come back from the tables alone
    assert rc == 0 and (d / "error_vs_n.png").is_file(), err
    rc, out, err = run_cli("reproduce", "symnets", *TINY, "ablation.warps=[layers]", "--out", str(tmp_path),
                           "--name", "t")
    assert rc == 0, err
    assert json.loads((d / "summary.json").read_text())["invocations"] == 2


@pytest.mark.parametrize("args,msg", [
    (["ablation.K=[0,8]"], "ablation.K"),
    (["ablation.warps=[sideways]"], "ablation.warps"),
    (['variants.symnet=["model=symnet","model.K=0"]'], "model.K"),
    (['variants.symnet=["model=symnet","model.group=euclid"]'], "unknown symmetry group"),
    (["sweep.models=[convnet,resnet9]"], "unknown variant"),
    (["model=p4cnn"], "varied by this sweep"),
    (["sweep.n_train=[50,5000]"], "more than the"),
    (["symnets.rules.small=0"], "symnets.rules.small"),
    (["data.label=angle"], "data.label"),
])
def test_bad_input_is_one_line_and_exit_2(run_cli, tmp_path, args, msg):
    rc, _, err = run_cli("reproduce", "symnets", *args, "--out", str(tmp_path), "--name", "bad")
    assert rc == 2 and msg in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "reproduce" / "bad").exists()  # refused before anything was written


def test_malformed_amat_through_the_cli(run_cli, tmp_path):
    write_amat(tmp_path, bad="0.1 0.2")
    rc, _, err = run_cli("reproduce", "symnets", "experiment=symnets_mnist_rot", f"data.root={tmp_path}",
                         "data.n_valid=10", "sweep.n_train=[10]", "sweep.seeds=1", "ablation.n_train=[]",
                         "--out", str(tmp_path / "o"), "--name", "m")
    assert rc == 2 and "line 5: expected 785" in err and len(err.strip().splitlines()) == 1, err
