"""Every paper-scale preset runs end to end on CIFAR-10 files written in the real format (tiny, so only
the compute knobs are shrunk): the path a GPU or SLURM user takes, minus the size."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_data_loaders import write_cifar10

SWEEP = ["trainer.threads=1", "launcher=inline"]
PRESETS = {
    "double_descent_cnn5_cifar10": ("sweep", "double-descent",
                        [*SWEEP, "sweep.widths=[2]", "sweep.label_noise=[0.1]", "trainer.steps=2"]),
    "double_descent_resnet18_cifar10": ("sweep", "double-descent",
                            [*SWEEP, "sweep.widths=[2]", "sweep.label_noise=[0.1]", "trainer.steps=2"]),
    "batchnorm_resnet110_cifar10": ("reproduce", "batchnorm",
                             [*SWEEP, "sweep.lrs=[0.1]", "sweep.seeds=1", "trainer.epochs=1",
                              "batchnorm.batches=1", "batchnorm.step_sizes=[0.01,1.0]"]),
    # fp32 only: emulated FP8 of these paper-size nets takes minutes a step on a CPU (tested on digits)
    "fp8_cifar10": ("reproduce", "fp8",
                    [*SWEEP, "fp8.precisions=[fp32]", "fp8.nochunk=false", "trainer.epochs=1",
                     "fp8.cost.steps=0", "fp8.swamp.trials=1", "fp8.swamp.log2_lengths=[8]",
                     "fp8.updates.precisions=[fp32]", "fp8.updates.seeds=1"]),
    "idefender_cifar10": ("reproduce", "idefender",
                          ["trainer.threads=1", "trainer.epochs=20", "attacks=[fgsm]",
                           "detectors=[idefender]", "substitute.model=null", "substitute.attacks=[fgsm]",
                           "attack.max_examples=8", "ablation.components=[1]", "ablation.layers=[fc1]",
                           "detector.mc_samples=1"]),
}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_paper_preset_runs_on_real_format_files(run_cli, tmp_path, preset):
    write_cifar10(tmp_path / "cifar-10-batches-py", n_per=8, learnable=True)
    group, command, shrink = PRESETS[preset]
    rc, _, err = run_cli(group, command, f"experiment={preset}", f"data.root={tmp_path}", *shrink,
                         "--out", str(tmp_path / "o"), "--name", "p")
    assert rc == 0, err
    d = next((tmp_path / "o").glob("*/p"))
    summary = json.loads((d / "summary.json").read_text())
    assert summary["status"] == "completed", summary.get("error")
    assert len(pd.read_csv(d / "results.csv")) >= 1
    cfg = (d / "config.yaml").read_text()
    assert "cifar10" in cfg and str(tmp_path) in cfg


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_paper_preset_estimate_writes_nothing(run_cli, tmp_path, preset):
    """`--estimate` prices each paper-scale preset from a few real steps on the same real-format files."""
    write_cifar10(tmp_path / "cifar-10-batches-py", n_per=8, learnable=True)
    group, command, shrink = PRESETS[preset]
    if preset.startswith("idefender"):  # the paper-strength CW (9 x 1000) is timed at 5 iterations
        shrink = [*shrink, "attacks=[fgsm,cw]", "attack.cw.max_examples=4"]
    rc, out, err = run_cli(group, command, f"experiment={preset}", f"data.root={tmp_path}", *shrink,
                           "--out", str(tmp_path / "o"), "--estimate")
    assert rc == 0, err
    assert out.startswith("estimate: ") and "peak memory" in out
    assert not (tmp_path / "o").exists()
