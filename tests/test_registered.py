"""Common checks of everything registered (scikit-learn's ``check_estimator`` idea): every model, dataset,
task and experiment has its conf file, named as registered, that composes with its family's top-level
config; every model and task fits a few steps to finite metrics; every dataset builds (from tiny files in
the real format when it reads the user's), and one that needs data.root refuses to build without it. A new
registration fails here until it is given a tiny run below."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from dlx.config import compose, conf_dir
from dlx.data import DATASETS, NEEDS_ROOT, build_data, register_data
from dlx.errors import DlxError
from dlx.models import MODELS, build_model, register_model, stackable
from dlx.papers.idefender.detectors import DETECTORS, register_detector
from dlx.registry import experiments
from dlx.tasks import TASKS, register_task

QUICK = ["trainer.epochs=1", "trainer.threads=1", "trainer.progress=none", "trainer.batch_size=32",
         "device=cpu"]
TEXT = ["data=textpairs", "task=rank", "data.pairs=200", "data.test_queries=40", "data.vocab_size=100",
        "data.domains=2", "data.aspects=4", "data.domain_words=20", "data.aspect_words=10",
        "data.test_negatives=3", "data.negatives=2"]
PANEL = ["data.series=3", "data.days=21", "data.rolling=1", "data.train_range=7D", "trainer.steps=2"]
ROT = ["data=digits_rot", "data.n_train=40"]
CROSSMODAL = ["data.tasks.language.max_chars=2000", "data.tasks.genomics.n=64",
              "data.tasks.genomics.n_test=32", "data.tasks.vision.n_train=60"]

# model -> (top-level config, overrides): a run of a few seconds at most on a small embedded dataset
MODEL_RUNS = {
    "mlp": ("train", ["model.width=8"]),
    "cnn5": ("train", ["model.width=4"]),
    "cnn1d": ("train", ["data=mnist1d", "data.num_samples=200", "model.width=4"]),
    "cnnfc": ("train", ["model.width=4", "model.hidden=[8]", "model.dropout=0"]),  # stacks without dropout
    "resnet18k": ("train", ["model.width=2"]),
    "resnet": ("train", ["model.depth=8", "model.width=4"]),
    "transformer": ("train", ["model.width=8", "model.depth=1", "model.heads=2"]),
    "convnet": ("train", [*ROT, "model.widths=[4,8]"]),
    "p4cnn": ("train", [*ROT, "model.widths=[2,4]"]),
    "symnet": ("train", [*ROT, "model.widths=[4,8]", "model.K=4"]),
    "pls": ("train", [*TEXT, "model.components=4"]),
    "bilinear": ("train", [*TEXT, "model.rank=4"]),
    "dual_encoder": ("train", [*TEXT, "model.dim=8", "model.hidden=8", "model.out=8"]),
    "random": ("train", TEXT),
    "inner_product": ("train", TEXT),
    "deepmatch": ("train", [*TEXT, "model.resolutions=[4,2]", "model.patch_size=5", "model.rank=4",
                            "model.lda_iter=1", "model.top=4"]),
    "muir_linear": ("train", ["data=muir_kang", "task=multitask", "data.tasks=3", "data.groups=1"]),
    "muir_crossmodal": ("train", ["data=muir_crossmodal", "task=multitask", *CROSSMODAL]),
    "deepstate": ("forecast", [*PANEL, "model.hidden=4", "model.layers=1"]),
    "deepar": ("forecast", [*PANEL, "model.hidden=4", "model.layers=1", "model.num_samples=10"]),
    "seasonal_naive": ("forecast", PANEL),
    "ets": ("forecast", PANEL),
    "arima": ("forecast", [*PANEL, "model.samples=10"]),
}


class TinyLM(torch.nn.Module):
    """No built-in model is a language model on its own (MUiR's is a multitask member): an embedding and
    a linear readout, (B, T) token ids -> (B, T, V) logits."""

    def __init__(self, vocab: int):
        super().__init__()
        self.embed, self.out = torch.nn.Embedding(vocab, 8), torch.nn.Linear(8, vocab)

    def forward(self, x):
        return self.out(self.embed(x))


# task -> a MODEL_RUNS entry that trains it, or (config, overrides[, model factory of the data's Meta])
TASK_RUNS = {
    "classify": "mlp",
    "binary": ("train", ["task=binary", "data=synthetic_binary", "data.n=200", "data.n_test=100",
                         "model.width=8"]),
    "regress": ("train", ["task=regress", "data=diabetes", "model.width=8"]),
    "forecast": "deepstate",
    "lm": ("train", ["task=lm", "data=chars", "data.max_chars=2000"], lambda meta: TinyLM(meta.num_outputs)),
    "rank": "dual_encoder",
    "multitask": "muir_linear",
}

# embedded dataset -> (top-level config, overrides that keep it small)
DATA_RUNS = {
    "chars": ("train", ["task=lm", "data.max_chars=2000"]),
    "co2": ("forecast", []),
    "diabetes": ("train", ["task=regress"]),
    "digits": ("train", []),
    "digits_rot": ("train", ["data.n_train=40"]),
    "dna_motifs": ("train", ["task=regress", "data.n=64", "data.n_test=32"]),
    "elnino": ("forecast", []),
    "higgs_uci": ("train", ["task=binary", "data.n=200", "data.n_test=100"]),
    "htautau": ("train", ["task=binary", "data.n=200", "data.n_test=100"]),
    "issm_panel": ("forecast", ["data.series=3", "data.days=21", "data.rolling=1", "data.train_range=7D"]),
    "mnist1d": ("train", ["data.num_samples=200"]),
    "muir_crossmodal": ("train", ["task=multitask", *CROSSMODAL]),
    "muir_crossmodal_cifar": ("train", ["task=multitask", "data.select=[language,genomics]",
                                        "data.tasks.language.max_chars=2000", "data.tasks.genomics.n=64",
                                        "data.tasks.genomics.n_test=32"]),
    "muir_kang": ("train", ["task=multitask", "data.tasks=3", "data.groups=1"]),
    "nile": ("forecast", []),
    "sunspots": ("forecast", []),
    "synthetic": ("train", ["data.n=64", "data.n_test=32"]),
    "synthetic_binary": ("train", ["task=binary", "data.n=200", "data.n_test=100"]),
    "textpairs": ("train", [o for o in TEXT if not o.startswith("data=")]),
}


def _mnist(tmp: Path) -> list[str]:
    from test_data_loaders import make_mnist

    make_mnist(tmp)
    return [f"data.root={tmp}"]


def _cifar10(tmp: Path) -> list[str]:
    from test_data_loaders import write_cifar10

    write_cifar10(tmp)
    return [f"data.root={tmp}"]


def _cifar100(tmp: Path) -> list[str]:
    import pickle

    import numpy as np

    rng = np.random.default_rng(0)
    for name, n in (("train", 6), ("test", 3)):  # the python-version files: dicts with bytes keys
        with open(tmp / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"fine_labels": list(range(n)), b"coarse_labels": [0] * n}, f)
    return [f"data.root={tmp}"]


def _mnist_rot(tmp: Path) -> list[str]:
    from test_symnets import write_amat

    write_amat(tmp, n_train=30, n_test=12)
    return [f"data.root={tmp}", "data.n_valid=10"]


def _smallnorb(tmp: Path) -> list[str]:
    from test_smallnorb import write_norb

    write_norb(tmp)
    return [f"data.root={tmp}", "data.size=24"]


def _csv(tmp: Path) -> list[str]:
    from test_user_data import csv_file

    return [f"data.root={csv_file(tmp)}", "data.target=label"]


def _image_folder(tmp: Path) -> list[str]:
    from test_user_data import write_images

    write_images(tmp / "imgs", per=4, size=8)
    return [f"data.root={tmp / 'imgs'}", "data.size=8"]


def _panel_csv(tmp: Path) -> list[str]:
    from test_user_data import write_panel

    write_panel(tmp / "daily.csv")
    return [f"data.root={tmp / 'daily.csv'}", "data.horizon=7"]


def _electricity(tmp: Path) -> list[str]:
    from test_forecast import write_electricity

    write_electricity(tmp / "LD2011_2014.txt")  # 9 days of 3 clients
    return [f"data.root={tmp}", "data.rolling=1", "data.train_range=7D", "data.train_window=2D"]


# dataset that reads only the user's files -> (top-level config, writer of tiny files in the real format
# returning the overrides that point at them)
ROOT_RUNS = {
    "mnist": ("train", _mnist),
    "fashion_mnist": ("train", _mnist),  # the same IDX format
    "cifar10": ("train", _cifar10),
    "cifar100": ("train", _cifar100),
    "mnist_rot": ("train", _mnist_rot),
    "smallnorb": ("train", _smallnorb),
    "csv": ("train", _csv),
    "image_folder": ("train", _image_folder),
    "panel_csv": ("forecast", _panel_csv),
    "electricity": ("forecast", _electricity),
}


def conf_of(group: str, name: str) -> Path:
    path = conf_dir() / group / f"{name}.yaml"
    assert path.is_file(), f"{group} '{name}' is registered but has no {path}"
    assert OmegaConf.load(path).get("name") == name, f"{path} does not say name: {name}"
    return path


def family_config(runs: dict, group: str, name: str) -> str:
    assert name in runs, f"{group} '{name}' has no tiny run in tests/test_registered.py: give it one"
    return runs[name][0]


@functools.cache
def tiny_fit(config: str, overrides: tuple, own_model=None):
    """(parts, history) of a tiny run (cached: a task's check reuses a model's run)."""
    from dlx.build import build
    from dlx.train import fit

    cfg = compose(config, [*QUICK, *overrides])
    parts = build(cfg)
    if own_model is not None:
        parts.model = own_model(parts.data.meta)
    hist = fit(parts.model, parts.task, parts.data, parts.precision, cfg.trainer, cfg.optimizer, seed=0)
    return cfg, parts, hist


def assert_finite(parts, hist) -> None:
    assert hist.status == "completed", hist.status
    row = hist.final
    assert f"test_{parts.task.primary}" in row, sorted(row)
    # a model with nothing to train (a fitted baseline) has no likelihood: its loss is NaN by design
    trains = any(p.requires_grad for p in parts.model.parameters())
    bad = {k: v for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)
           and (trains or not k.endswith("loss"))}
    assert not bad, bad


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model(name):
    conf_of("model", name)
    config = family_config(MODEL_RUNS, "model", name)
    assert compose(config, [f"model={name}"]).model.name == name
    cfg, parts, hist = tiny_fit(config, (f"model={name}", *MODEL_RUNS[name][1]))
    assert_finite(parts, hist)
    # the registration's stackable agrees with dlx/models/stacked.py: such a model converts, member by member
    from dlx.models.stacked import NotStackable, stack_model

    members = [parts.model, build_model(cfg.model, parts.data.meta, parts.data.train)]
    if stackable(name):
        stacked = stack_model([m.eval() for m in members]).eval()
        x = next(iter(parts.data.test.batches(4)))[0]
        out = stacked(torch.stack([x, x]))
        for i, m in enumerate(members):
            torch.testing.assert_close(out[i], m(x), rtol=1e-4, atol=1e-4)
    else:
        with pytest.raises(NotStackable):
            stack_model(members)


def test_stackable_reads_the_registration():
    assert stackable("mlp") and stackable(OmegaConf.create({"name": "resnet"}))
    assert not stackable("transformer") and not stackable("no_such_model") and not stackable(None)
    assert not stackable(OmegaConf.create({"name": "mlp", "_target_": "mypkg.Net"}))  # the user's own


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task(name):
    conf_of("task", name)
    run = TASK_RUNS.get(name)
    assert run is not None, f"task '{name}' has no tiny run in tests/test_registered.py: give it one"
    config, overrides, *own = MODEL_RUNS[run] if isinstance(run, str) else run
    overrides = (f"model={run}", *overrides) if isinstance(run, str) else tuple(overrides)
    assert compose(config, [f"task={name}"]).task.name == name
    cfg, parts, hist = tiny_fit(config, overrides, *own)
    assert parts.task.name == name
    assert_finite(parts, hist)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_data(name, tmp_path):
    conf_of("data", name)
    runs = ROOT_RUNS if name in NEEDS_ROOT else DATA_RUNS
    config = family_config(runs, "data", name)
    assert compose(config, [f"data={name}"]).data.name == name
    if name in NEEDS_ROOT:
        with pytest.raises(DlxError, match="data.root"):
            build_data(compose(config, [f"data={name}"]).data)
        overrides = ROOT_RUNS[name][1](tmp_path)
    else:
        overrides = DATA_RUNS[name][1]
    data = build_data(compose(config, [f"data={name}", *overrides]).data)
    assert data.meta.name == name and len(data.train) > 0 and len(data.test) > 0
    assert (config == "forecast") == (data.meta.task == "forecast")  # each family with its own config


@pytest.mark.parametrize("name", sorted(experiments()))
def test_experiment_composes(name):
    assert (conf_dir() / f"{name}.yaml").is_file(), f"experiment '{name}' has no conf/{name}.yaml"
    compose(name, [])


@pytest.mark.parametrize("register, name, thing", [
    (register_data, "digits", lambda cfg: None),
    (register_model, "mlp", lambda cfg, meta: None),
    (register_task, "classify", TASKS["classify"]),
    (register_detector, "lid", DETECTORS["lid"]),
])
def test_a_name_registered_twice_is_refused(register, name, thing):
    before = {"data": dict(DATASETS), "models": dict(MODELS), "tasks": dict(TASKS), "det": dict(DETECTORS)}
    with pytest.raises(ValueError, match="registered twice"):
        register(name)(thing)
    assert before == {"data": DATASETS, "models": MODELS, "tasks": TASKS, "det": DETECTORS}
