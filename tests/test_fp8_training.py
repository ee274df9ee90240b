"""Chunked accumulation, the emulated layers' gradients, the precision modes and the fp8 experiment."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from dlx.config import compose
from dlx.errors import DlxError
from dlx.precision import build_precision
from dlx.precision.chunked import chunked_matmul, dot_error
from dlx.precision.formats import E5M2, FP16_169, quantize
from dlx.precision.fp8 import Gemm, emulate


def test_chunked_paths_agree_with_hand_loop():
    g = torch.Generator().manual_seed(0)
    a, b = quantize(torch.rand(3, 10, generator=g), E5M2), quantize(torch.rand(10, 2, generator=g), E5M2)
    for chunk in (None, 1, 3, 4, 10):
        want = torch.zeros(3, 2)
        for i in range(3):
            for j in range(2):
                sums = []
                step = chunk or 10
                for s in range(0, 10, step):
                    acc = torch.tensor(0.0)
                    for k in range(s, min(s + step, 10)):
                        acc = quantize(acc + a[i, k] * b[k, j], FP16_169)
                    sums.append(acc)
                tot = sums[0]
                for t in sums[1:]:
                    tot = quantize(tot + t, FP16_169)
                want[i, j] = tot
        assert torch.equal(chunked_matmul(a, b, FP16_169, chunk, exact=True), want)


def test_chunking_beats_swamping():
    seq, cl64 = dot_error(4096, None, trials=4), dot_error(4096, 64, trials=4)
    fast = dot_error(4096, 64, trials=4, exact=False)
    assert seq > 10 * cl64 and fast < 10 * cl64


@pytest.mark.parametrize("layer", [nn.Linear(12, 5), nn.Conv2d(3, 4, 3, stride=2, padding=1),
                                   nn.Conv1d(2, 3, 3, padding=2, dilation=2)])
def test_emulated_layers_match_fp32_without_rounding(layer):
    """With every format off the emulated GEMMs must reproduce torch's forward and gradients."""
    torch.manual_seed(0)
    ref = layer
    emu = emulate(nn.Sequential(type(layer)(*_args(layer))), Gemm(None, None, None))[0]
    emu.load_state_dict(ref.state_dict())
    shape = {nn.Linear: (4, 12), nn.Conv2d: (2, 3, 7, 7), nn.Conv1d: (2, 2, 9)}[type(layer)]
    x = torch.randn(shape, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    ref(x).square().sum().backward()
    emu(x2).square().sum().backward()
    torch.testing.assert_close(x2.grad, x.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(emu.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-5)


def _args(layer):
    if isinstance(layer, nn.Linear):
        return (layer.in_features, layer.out_features)
    return (layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
            layer.dilation)


def test_fp8_wang_rounds_inputs_and_update():
    cfg = compose("train", ["precision=fp8_wang"])
    prec = build_precision(cfg.precision, "cpu")
    model = prec.prepare(nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 2)))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = model(torch.randn(16, 8)).square().mean()
    prec.backward(loss)
    prec.step(opt)
    for p in model.parameters():  # every weight lies on the 1-6-9 grid after the SR update
        assert torch.equal(p.detach(), quantize(p.detach(), FP16_169))
    assert model[1].gemm.fwd == E5M2 and model[0].gemm.fwd == FP16_169  # first/last layer in FP16


@pytest.mark.parametrize("ov", ["precision.exp_bits=0", "precision.man_bits=24", "precision.chunk=0",
                                "precision.update_rounding=up"])
def test_invalid_precision_settings(ov):
    cfg = compose("train", ["precision=fp8_wang", ov])
    with pytest.raises(DlxError):
        build_precision(cfg.precision, "cpu")


def test_native_needs_fp8_hardware():
    cfg = compose("train", ["precision=fp8_native"])
    with pytest.raises(DlxError, match="fp8_native"):
        build_precision(cfg.precision, "cpu")


def test_cli_bad_format_is_one_line(run_cli, tmp_path):
    rc, _, err = run_cli("train", "precision=fp8_wang", "precision.exp_bits=0", "trainer=quick",
                         "--out", str(tmp_path))
    assert rc == 2 and err.count("\n") == 1 and "exp_bits" in err


def test_reproduce_fp8_tiny(run_cli, tmp_path):
    args = ["reproduce", "fp8", "data=synthetic", "data.shape=[1,4,4]", "trainer.steps=3",
            "fp8.models=[cnn]", "fp8.model_overrides.cnn=['model=cnn5','model.width=2']",
            "fp8.precisions=[fp32,fp8_wang,fp8_native]", "fp8.swamp.log2_lengths=[6]", "fp8.swamp.chunks=[8]",
            "fp8.swamp.trials=2", "fp8.cost.steps=1", "fp8.updates.seeds=2", "fp8.updates.lr=0.001",
            "fp8.seeds=2", "--out", str(tmp_path), "--name", "t"]
    rc, out, err = run_cli(*args)
    assert rc == 0, err
    d = tmp_path / "reproduce" / "t"
    import pandas as pd

    res = pd.read_csv(d / "results.csv")
    assert set(res.precision) == {"fp32", "fp8_wang", "fp8_native"}
    assert res.groupby("precision").seed.apply(set).to_dict() == {"fp32": {0, 1}, "fp8_wang": {0, 1},
                                                                   "fp8_native": {0}}  # fp8.seeded
    assert res.set_index("precision").loc["fp8_native", "status"] == "skipped"
    assert (d / "cost.csv").is_file() and (d / "swamping.png").is_file() and (d / "curves.png").is_file()
    assert len(pd.read_csv(d / "swamping_trials.csv")) == 2 * 3  # 2 trials x (sequential, CL=8 exact, fast)
    assert set(pd.read_csv(d / "cost.csv").variant) == {"fp32", "fp8_wang (fast)", "fp8_wang (exact)"}
    upd = pd.read_csv(d / "updates.csv")  # the small-update cells: their own table, not results.csv's rows
    assert len(upd) == 6 and set(upd.seed) == {0, 1} and (d / "updates.png").is_file()
    child = (d / "runs" / upd.iloc[0].run_id / "config.yaml").read_text()
    assert "momentum: 0.0" in child and "lr: 0.001" in child and "schedule: constant" in child
    claims = {c["id"]: c for c in json.loads((d / "summary.json").read_text())["claims"]}
    assert claims["stochastic_rounding_needed"]["verdict"] in ("holds", "fails", "inconclusive")
    assert claims["stochastic_rounding_needed"]["n"] == 2
    assert "lr 0.001: nearest - SR" in str(claims["stochastic_rounding_needed"]["measured"])
    assert claims["fp8_matches_fp32"]["n"] == 2 and claims["fp8_matches_fp32"]["ci"] is not None
    assert claims["chunking_cuts_swamping"]["verdict"] == "not shown"  # CL=64 not measured here

    done = sorted(d.glob("runs/*/metrics.csv"))
    stamps = [p.stat().st_mtime_ns for p in done]
    assert run_cli(*args)[0] == 0  # the same command and --name resumes: finished cells are not retrained
    assert [p.stat().st_mtime_ns for p in done] == stamps
    pd.testing.assert_series_equal(pd.read_csv(d / "results.csv").test_error, res.test_error)


@pytest.mark.parametrize("exact, variants", [(True, 3), (False, 2)])
def test_cost_variants(tmp_path, exact, variants):
    from dlx.papers.fp8.experiment import step_costs
    from dlx.runs import Run

    ovs = ["data=synthetic", "data.shape=[1,4,4]", "fp8.models=[cnn]",
           "fp8.model_overrides.cnn=['model=cnn5','model.width=2']", "fp8.cost.steps=1",
           f"fp8.cost.exact={str(exact).lower()}"]
    run = Run(tmp_path, "fp8")
    cfg = compose("fp8", ovs)
    run.save_config(cfg, ovs)
    rows = step_costs(cfg, run)
    assert len(rows) == variants and all(r["step_s"] > 0 for r in rows)
    assert step_costs(compose("fp8", [*ovs, "fp8.cost.steps=0"]), run) == []


def test_default_runs_three_seeds_of_the_compared_precisions():
    from dlx.papers.fp8.experiment import children

    kids = [k.params for k in children(compose("fp8")) if "part" not in k.params]
    seeds = {}
    for p in kids:
        seeds.setdefault((p["model"], p["precision"]), set()).add(p["seed"])
    for m in ("cnn", "resnet"):
        assert seeds[(m, "fp32")] == seeds[(m, "fp8_wang")] == {0, 1, 2}
        assert seeds[(m, "fp16")] == {0}
    assert len(kids) == 2 * (8 + 2 * 2)


def test_paper_scale_preset_composes():
    cfg = compose("fp8", ["experiment=fp8_cifar10", "data.root=/nowhere"])
    assert cfg.data.name == "cifar10" and cfg.fp8.nochunk
    assert cfg.fp8.cost.exact is False  # exact emulation at paper size: minutes a step
    assert compose("fp8").data.name == "digits"
