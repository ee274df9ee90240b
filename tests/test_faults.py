"""Scale and faults: DDP under torchrun matches one process; hostile or broken inputs are refused with
one line and exit 2, writing nothing outside the run directory."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

QUICK = ["trainer=quick", "trainer.threads=1", "trainer.epochs=2"]


def test_ddp_two_processes_match_one(tmp_path):
    args = [*QUICK, "--out", str(tmp_path)]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "dlx", "train", "trainer.strategy=ddp", *args, "--name", "ddp"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = subprocess.run([sys.executable, "-m", "dlx", "train", *args, "--name", "one"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["ddp", "one"]  # rank 1 wrote nothing
    a = pd.read_csv(tmp_path / "train" / "ddp" / "metrics.csv")
    b = pd.read_csv(tmp_path / "train" / "one" / "metrics.csv")
    # same batches, gradients averaged over two half-batches: equal up to summation order
    np.testing.assert_allclose(a.test_loss, b.test_loss, rtol=1e-4)
    np.testing.assert_allclose(a.train_loss, b.train_loss, rtol=1e-4)


def test_ddp_outside_torchrun_is_a_usage_error(run_cli, tmp_path):
    rc, _, err = run_cli("train", "trainer.strategy=ddp", "--out", str(tmp_path))
    assert rc == 2 and "torchrun" in err


def test_checkpoint_with_pickled_objects_is_refused(run_cli, tmp_path):
    assert run_cli("train", *QUICK, "--out", str(tmp_path), "--name", "r")[0] == 0
    ckpt = tmp_path / "train" / "r" / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=True)
    state["evil"] = _Payload(str(tmp_path / "pwned"))
    torch.save(state, ckpt)
    rc, _, err = run_cli("eval", str(tmp_path / "train" / "r"))
    assert rc == 2 and "refusing to load" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "pwned").exists()


class _Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_truncated_idx_file_is_one_line(run_cli, tmp_path):
    root = tmp_path / "mnist"
    root.mkdir()
    imgs = np.zeros((4, 28, 28), np.uint8)
    with gzip.open(root / "train-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(struct.pack(">IIII", 0x803, 4, 28, 28) + imgs.tobytes()[:-100])  # cut short
    for name, n in (("train-labels-idx1-ubyte", 4), ("t10k-labels-idx1-ubyte", 4)):
        (root / name).write_bytes(struct.pack(">II", 0x801, n) + bytes(n))
    (root / "t10k-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, 4, 28, 28) + imgs.tobytes())
    rc, _, err = run_cli("train", "data=mnist", f"data.root={root}", *QUICK, "--out", str(tmp_path / "o"))
    assert rc == 2 and "train-images-idx3-ubyte" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("data", ["mnist", "cifar10"])
def test_unreadable_data_root(run_cli, tmp_path, data):
    """A root that is a file, not a folder (permission bits cannot stop root, who runs CI)."""
    root = tmp_path / "not-a-folder"
    root.write_text("x")
    rc, _, err = run_cli("train", f"data={data}", f"data.root={root}", *QUICK, "--out", str(tmp_path / "o"))
    assert rc == 2 and str(root) in err and len(err.strip().splitlines()) == 1


def test_missing_data_root(run_cli, tmp_path):
    rc, _, err = run_cli("train", "data=cifar10", f"data.root={tmp_path}/nope", *QUICK,
                         "--out", str(tmp_path))
    assert rc == 2 and "nope" in err and len(err.strip().splitlines()) == 1


def test_bad_input_writes_nothing_outside_run_dir(run_cli, tmp_path):
    before = set(os.listdir(tmp_path))
    for args in (["model=nope"], ["trainer.epochz=1"], ["trainer.epochs=x"]):
        rc, _, _ = run_cli("train", *args, "--out", str(tmp_path / "o"))
        assert rc == 2
    assert set(os.listdir(tmp_path)) - before == set()  # config errors stop before any directory exists
    for args in (["data.label_noise=2"], ["trainer.epochs=0"], ["optimizer.momentum=2"], ["data=mnist"]):
        rc, _, _ = run_cli("train", *args, "--out", str(tmp_path / "o"), "--name", "d")
        assert rc == 2  # data, trainer and optimizer settings are checked before the run directory exists
    assert set(os.listdir(tmp_path)) - before == set()


@pytest.mark.parametrize("args, needle", [
    (["train", "trainer.epochs=0"], "trainer.epochs must be >= 1"),
    (["train", "trainer.batch_size=0"], "trainer.batch_size must be >= 1"),
    (["train", "task.label_smoothing=2"], "label_smoothing"),
    (["train", "data.n_train=5000"], "more than the 1348 training examples"),
    (["train", "+foo=1"], "adds a key no part of dlx reads"),
    (["sweep", "double-descent", "data.n_train=100"], "set sweep.n_train"),
    (["sweep", "double-descent", "seed=3"], "set sweep.seeds"),
    (["sweep", "grid", "model.width=2,3", "model.width=4"], "varied by this sweep"),
])
def test_settings_that_cannot_work_are_refused(run_cli, tmp_path, args, needle):
    rc, _, err = run_cli(*args, "--out", str(tmp_path))
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("text", ["[1, 2]", '{"invocations": "x", "started": "s"}', "{not json", ""])
def test_odd_summary_files_do_not_break_a_resumed_run(tmp_path, text):
    from dlx.runs import Run, status

    (tmp_path / "summary.json").write_text(text)
    run = Run(tmp_path, "train")
    assert run.extra.get("invocations") in (None, 2)
    assert status(tmp_path) is None
    assert run.summary("completed")["status"] == "completed"
    assert Run.reopen(tmp_path, "train").summary("failed").get("invocations") == run.extra.get("invocations")
