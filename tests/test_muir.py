"""MUiR: hyper-layers, the shared pool, the assignment search, the multitask data and tasks, and the
experiment end to end (tiny configs; the real default run is timed, not tested)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from dlx.data.bundle import Meta, TensorSplit
from dlx.errors import DlxError
from dlx.models.hyper import HyperConv1d, HyperConv2d, HyperLinear, HyperLSTM, HyperPool

SWEEP = ["trainer.threads=1", "trainer.progress=none", "launcher=inline"]
TINY_SYN = ["synthetic.seeds=1", "synthetic.search.generations=3", "synthetic.search.steps=4",
            "synthetic.search.final=1", "synthetic.trainer.eval_every=2"]
TINY_CM = ["crossmodal.seeds=1", "crossmodal.search.generations=2", "crossmodal.search.steps=3",
           "crossmodal.search.burn_in=1", "crossmodal.trainer.eval_every=1",
           "crossmodal.data.tasks.language.max_chars=4000",
           "crossmodal.data.tasks.genomics.n=64", "crossmodal.data.tasks.genomics.n_test=32",
           "crossmodal.data.tasks.vision.n_train=100"]


def pool_of(c=2, bo=4, bi=4):
    return HyperPool(bo, bi, c)


# --- hyper-layers -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("c", [0, 1, 3])
def test_hyper_layers_equal_plain_layers_built_from_their_generated_weights(c):
    torch.manual_seed(0)
    pool = pool_of(c)
    lin = HyperLinear(8, 12, pool, label="a.fc")
    c1 = HyperConv1d(4, 8, 3, pool, padding=1, label="a.c1")
    c2 = HyperConv2d(8, 4, 3, pool, padding=1, label="a.c2")
    lstm = HyperLSTM(8, 4, pool, num_layers=2, label="a.lstm")
    pool.finalize()
    with torch.no_grad():
        pool.Z.add_(torch.randn_like(pool.Z)) if pool.Z is not None else None
        for b in (lin.bias, c1.bias, c2.bias):
            b.normal_()
    x = torch.randn(5, 8)
    ref = torch.nn.Linear(8, 12)
    ref.weight.data, ref.bias.data = lin.weight().detach(), lin.bias.detach()
    assert torch.allclose(lin(x), ref(x), atol=1e-6)
    x1 = torch.randn(2, 4, 10)
    ref1 = torch.nn.Conv1d(4, 8, 3, padding=1)
    ref1.weight.data, ref1.bias.data = c1.weight().detach(), c1.bias.detach()
    assert c1.weight().shape == (8, 4, 3) and torch.allclose(c1(x1), ref1(x1), atol=1e-6)
    x2 = torch.randn(2, 8, 6, 6)
    ref2 = torch.nn.Conv2d(8, 4, 3, padding=1)
    ref2.weight.data, ref2.bias.data = c2.weight().detach(), c2.bias.detach()
    assert c2.weight().shape == (4, 8, 3, 3) and torch.allclose(c2(x2), ref2(x2), atol=1e-6)
    xs = torch.randn(3, 7, 8)
    ref3 = torch.nn.LSTM(8, 4, num_layers=2, batch_first=True)
    for (name, p), w in zip(ref3.named_parameters(), lstm.flat_weights(), strict=True):
        assert p.shape == w.shape, name
        p.data = w.detach().clone()
    assert torch.allclose(lstm(xs)[0], ref3(xs)[0], atol=1e-6)


def test_blocks_are_generated_by_the_assigned_module_times_the_context():
    torch.manual_seed(0)
    pool = pool_of(c=2, bo=2, bi=3)
    lin = HyperLinear(6, 4, pool, bias=False, label="t.fc")  # 2 x 2 blocks of 2 x 3
    pool.finalize()
    assert pool.n_loc == 4 and pool.n_modules == 4
    pool.assign([0, 0, 3, 1])
    w = lin.weight().detach()
    H, Z = pool.H.detach(), pool.Z.detach()
    for loc, (r, col) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        k = [0, 0, 3, 1][loc]
        block = (H[k] @ Z[loc]).view(2, 3)
        assert torch.allclose(w[2 * r:2 * r + 2, 3 * col:3 * col + 3], block)


def test_initialisation_gives_he_scaled_weights():
    torch.manual_seed(0)
    pool = HyperPool(16, 16, 4)
    lin = HyperLinear(256, 256, pool, label="t.fc")
    pool.finalize()
    assert abs(float(lin.weight().detach().std()) - math.sqrt(2 / 256)) < 0.01
    assert torch.allclose(pool.Z, torch.full_like(pool.Z, math.sqrt(2 / 256)))


def test_gradients_reach_hypermodules_contexts_and_soft_weights():
    torch.manual_seed(0)
    pool = pool_of(c=2)
    lin = HyperLinear(8, 8, pool, label="t.fc")
    pool.finalize(slots=2)
    lin(torch.randn(3, 8)).pow(2).sum().backward()
    assert pool.H.grad.abs().sum() > 0 and pool.Z.grad.abs().sum() > 0
    assert pool.soft.grad is None or pool.soft.grad.abs().sum() == 0  # no contest: soft weights unused
    pool.zero_grad()
    with torch.no_grad():
        pool.challengers[:, 0] = (pool.champion + 1) % pool.n_modules
        pool.contested[0] = True
    pool.refresh()
    lin(torch.randn(3, 8)).pow(2).sum().backward()
    assert pool.soft.grad[0].abs().sum() > 0 and pool.soft.grad[1:].abs().sum() == 0
    used = {int(pool.champion[0]), int(pool.challengers[0, 0])}
    assert all(pool.H.grad[k].abs().sum() > 0 for k in used)


def test_bad_block_sizes_and_context_are_one_clear_error():
    pool = pool_of(c=1, bo=4, bi=5)
    with pytest.raises(DlxError, match="does not split into 4 x 5 blocks"):
        HyperLinear(8, 8, pool, label="vision.fc1")
    with pytest.raises(DlxError, match="model.context"):
        HyperPool(4, 4, -1)


# --- the search -------------------------------------------------------------------------------------------

class ToyModel(torch.nn.Module):
    """Three one-location linear tasks on one pool (task i's weight is the i-th row of W)."""

    def __init__(self, c=1, slots=3, pool_size=None):
        super().__init__()
        self.pool = HyperPool(1, 4, c)
        self.fcs = torch.nn.ModuleList(HyperLinear(4, 1, self.pool, bias=False, label=f"t{i}.fc")
                                       for i in range(3))
        self.pool.finalize(pool_size, slots=slots)

    def forward_tasks(self, inputs):
        return {t: self.fcs[int(t[1])](x) for t, x in inputs.items()}


def toy_data(weights, n=64):
    from dlx.data.bundle import DataBundle
    from dlx.data.multitask import MultiTaskSplit

    g = torch.Generator().manual_seed(0)
    splits = {}
    for i, w in enumerate(weights):
        x = torch.rand(n, 4, generator=g) * 2 - 1
        splits[f"t{i}"] = TensorSplit((x, x @ torch.as_tensor(w, dtype=torch.float32)))
    metas = {k: Meta(k, "regress", (4,), num_outputs=1) for k in splits}
    meta = Meta("toy", "multitask", (3,), num_outputs=3, extra={"tasks": metas, "modality": {}})
    return DataBundle(MultiTaskSplit(splits, 16 * 20), MultiTaskSplit(splits), None, meta)


def toy_fit(model, data, search, epochs, callbacks=(), resume_from=None, seed=0):
    from omegaconf import OmegaConf

    from dlx.precision import build_precision
    from dlx.tasks import build_task
    from dlx.train import fit

    trainer = OmegaConf.create({"epochs": epochs, "steps": None, "batch_size": 16, "eval_every": 1,
                                "eval_train": False, "eval_batch_size": 64, "progress": "none"})
    optim = OmegaConf.create({"name": "adam", "lr": 0.01})
    task = build_task({"name": "multitask"}, data.meta)
    return fit(model, task, data, build_precision({"name": "fp32"}, "cpu"), trainer, optim, seed=seed,
               callbacks=[search, *callbacks], resume_from=resume_from)


SEARCH = {"generations": 1, "steps": 20, "lam": 2, "fraction": 1.0, "soft_lr": 0.1, "alpha": 0.5,
          "reactivation": 0.0, "burn_in": 0, "final": 0}


def exact_weights(model, weights):
    """Make every location's champion module generate its task's true weight exactly."""
    with torch.no_grad():
        model.pool.Z.fill_(1.0)
        for i, w in enumerate(weights):
            model.pool.H[i] = torch.as_tensor(w, dtype=torch.float32)[:, None]


def test_a_generation_never_loses_the_champions_quality():
    """One generation by hand: contest every location, train the mixture, then compare the selected
    assignment with keeping every champion, on the same trained modules. Locations 0 and 2 start on exact
    modules, location 1 on a wrong one while module 0 is exact for its task too."""
    from dlx.papers.muir.search import AssignmentSearch
    from dlx.tasks import build_task
    from dlx.train import evaluate

    weights = [[1, -2, 0.5, 3], [1, -2, 0.5, 3], [-3, 1, 2, -1]]
    for seed in range(3):
        torch.manual_seed(seed)
        model, data = ToyModel(), toy_data(weights)
        exact_weights(model, weights)
        with torch.no_grad():
            model.pool.H[1] = torch.tensor([[3.0], [3.0], [-3.0], [0.0]])
        task = build_task({"name": "multitask"}, data.meta)
        search = AssignmentSearch(model.pool, {**SEARCH, "lam": 2}, seed=seed)
        search.on_start(None)  # opens generation 1: every location contested
        assert model.pool.searching and int(model.pool.contested.sum()) == 3
        opt = torch.optim.Adam([model.pool.H, model.pool.Z], lr=0.01)
        g = torch.Generator().manual_seed(seed)
        for batch in data.train.batches(16, shuffle=True, generator=g):
            opt.zero_grad()
            task.loss(model, batch).backward()  # the soft weights step inside backward
            opt.step()
        contested = model.pool.contested.clone()
        model.pool.contested.zero_()
        model.pool.refresh()
        keep_champions = evaluate(model, task, data.test)["loss"]
        model.pool.contested.copy_(contested)
        model.pool.refresh()
        changed, n = search.select()
        selected = evaluate(model, task, data.test)["loss"]
        assert n == 3 and selected <= keep_champions + 1e-9
        assert model.pool.champion[0] == 0 and model.pool.champion[2] == 2  # right champions are kept


def test_a_better_module_in_use_elsewhere_spreads():
    """Tasks 0 and 1 share one true weight; location 1 starts on a useless module: it adopts module 0."""
    from dlx.papers.muir.search import AssignmentSearch

    weights = [[1, -2, 0.5, 3], [1, -2, 0.5, 3], [-3, 1, 2, -1]]
    torch.manual_seed(0)
    model, data = ToyModel(), toy_data(weights)
    exact_weights(model, weights)
    with torch.no_grad():
        model.pool.H[1] = torch.tensor([[3.0], [3.0], [-3.0], [0.0]])  # location 1's own module: wrong
    search = AssignmentSearch(model.pool, {**SEARCH, "generations": 4}, seed=1)
    for p in (model.pool.H, model.pool.Z):  # the modules fixed: only the assignment can fix task 1
        p.requires_grad_(False)
    model.register_parameter("dummy", torch.nn.Parameter(torch.zeros(1)))
    toy_fit(model, data, search, epochs=4)
    assert model.pool.champion.tolist() == [0, 0, 2]
    assert search.history[-1]["modules_in_use"] == 2


def test_resume_continues_the_same_search(tmp_path):
    """Stopped after 3 generations and resumed to 6, the search ends where an uninterrupted one does."""
    from dlx.papers.muir.search import AssignmentSearch
    from dlx.train.callbacks import Checkpointer

    weights = [[1, -2, 0.5, 3], [1, -2, 0.5, 3], [-3, 1, 2, -1]]
    cfg = {**SEARCH, "generations": 6, "fraction": 0.7, "lam": 2, "alpha": None, "reactivation": 0.3}

    def fresh():
        torch.manual_seed(0)
        model = ToyModel(pool_size=5)  # two spare modules, so reactivation happens
        return model, AssignmentSearch(model.pool, cfg, seed=3)

    model, search = fresh()
    toy_fit(model, toy_data(weights), search, epochs=6)
    model_a, search_a = fresh()
    toy_fit(model_a, toy_data(weights), search_a, epochs=3, callbacks=[Checkpointer(tmp_path / "c.pt")])
    model_b, search_b = fresh()
    toy_fit(model_b, toy_data(weights), search_b, epochs=6, resume_from=tmp_path / "c.pt")
    assert search_b.history == search.history
    assert len(search.history) == 7 and sum(r["contested"] for r in search.history) > 0
    assert torch.equal(model_b.pool.champion, model.pool.champion)
    assert torch.allclose(model_b.pool.H, model.pool.H) and torch.allclose(model_b.pool.Z, model.pool.Z)


def test_search_settings_are_checked():
    from dlx.papers.muir.search import check_search

    with pytest.raises(DlxError, match="lam"):
        check_search({**SEARCH, "lam": 0})
    with pytest.raises(DlxError, match="fraction"):
        check_search({**SEARCH, "fraction": 1.5})
    assert check_search(SEARCH)["lam"] == 2


# --- data and tasks -----------------------------------------------------------------------------------------

def test_kang_generator_groups_scales_and_noise():
    from dlx.data.multitask import kang_tasks

    clean, noisy = kang_tasks(seed=4), kang_tasks(seed=4, noise=0.3)
    assert np.array_equal(clean["group"], np.repeat([0, 1, 2], 10))
    w = clean["w"]
    for t in range(30):  # every task's weight is a scaled copy of its group's direction
        d = clean["directions"][clean["group"][t]]
        assert np.allclose(w[t], clean["scales"][t] * d) and 0.5 <= clean["scales"][t] <= 1.5
    assert [a.shape for a in clean["x"]] == [(30, 10, 20), (30, 5, 20), (30, 50, 20)]
    assert np.abs(clean["x"][0]).max() <= 1 and np.array_equal(clean["x"][2], noisy["x"][2])
    resid = noisy["y"][2] - clean["y"][2]
    assert 0.25 < resid.std() < 0.35 and np.allclose(clean["y"][2], np.einsum("tnd,td->tn", clean["x"][2], w))


def test_multitask_split_batches_jointly_for_training_and_per_task_for_evaluation():
    from dlx.data.multitask import MultiTaskSplit

    a = TensorSplit((torch.arange(10.0)[:, None], torch.arange(10.0)))
    b = TensorSplit((torch.arange(3.0)[:, None] + 100, torch.arange(3.0)))
    s = MultiTaskSplit({"a": a, "b": b}, epoch_examples=12)
    assert len(s) == 12
    joint = list(s.batches(4, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert len(joint) == 3 and all(set(j) == {"a", "b"} for j in joint)
    assert all(len(j["a"][0]) == 4 and len(j["b"][0]) == 3 for j in joint)  # b is smaller than a batch
    seen = torch.cat([j["a"][1] for j in joint[:2]])
    assert len(set(seen.tolist())) == 8  # one pass never repeats an example
    ev = list(s.batches(4))
    assert [list(e) for e in ev] == [["a"]] * 3 + [["b"]]
    assert sum(len(e[next(iter(e))][0]) for e in ev) == 13


def test_dna_motifs_are_planted_and_learnable_signal():
    from dlx.data.multitask import dna_motifs

    x, y, words, effects = dna_motifs(seed=0, n=400, length=64, motifs=3, motif_len=12, mutate=0.0, noise=0.0)
    assert x.shape == (400, 4, 64) and np.allclose(x.sum(1), 1)
    seqs = ["".join("ACGT"[i] for i in row) for row in x.argmax(1)]
    has = np.array([[w in s for w in words] for s in seqs], dtype=float)
    assert np.allclose(has @ effects, y, atol=1e-6)  # the target is exactly the planted motifs' effects


def test_chars_from_a_text_file_and_its_errors(tmp_path):
    from dlx.data import build_data

    text = "the quick brown fox jumps over the lazy dog. " * 40
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    b = build_data({"name": "chars", "root": str(tmp_path / "t.txt"), "seq_len": 8, "test_fraction": 0.2,
                    "max_chars": None})
    vocab = b.meta.extra["vocab"]
    x, y = b.train.fields
    assert b.meta.task == "lm" and x.shape[1] == 8 and torch.equal(x[:, 1:], y[:, :-1])
    assert "".join(vocab[i] for i in x[0].tolist()) == text[:8]
    assert vocab[1] == " "  # ids by frequency
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DlxError, match="not UTF-8"):
        build_data({"name": "chars", "root": str(tmp_path / "bad.txt")})
    with pytest.raises(DlxError, match="too short"):
        build_data({"name": "chars", "root": str(tmp_path / "t.txt"), "seq_len": 5000})
    pydoc = build_data({"name": "chars", "max_chars": 5000})
    assert pydoc.meta.extra["source"] == "pydoc_data.topics"


def test_lm_task_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    from dlx.tasks import build_task
    from dlx.train import evaluate

    meta = Meta("c", "lm", (6,), num_outputs=11)

    class Uniform(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(*x.shape, 11)

    split = TensorSplit((torch.randint(0, 11, (5, 6)), torch.randint(0, 11, (5, 6))))
    m = evaluate(Uniform(), build_task({"name": "lm"}, meta), split)
    assert m["perplexity"] == pytest.approx(11) and m["loss"] == pytest.approx(math.log(11))


def test_multitask_loss_is_the_sum_of_the_tasks_own_losses():
    from dlx.data import build_data
    from dlx.models import build_model
    from dlx.tasks import build_task

    data = build_data({"name": "muir_kang", "tasks": 6, "groups": 2, "noise": 0.3})
    model = build_model({"name": "muir_linear", "block_in": 20, "block_out": 1, "context": 1,
                         "default": {"arch": "linear"}}, data.meta)
    task = build_task({"name": "multitask"}, data.meta)
    batch = next(iter(data.train.batches(10, shuffle=True, generator=torch.Generator().manual_seed(0))))
    own = sum(F.mse_loss(model.member(t)(b[0]).view(-1), b[1]) for t, b in batch.items())
    assert torch.allclose(task.loss(model, batch), own, atol=1e-5)  # the stacked fast path agrees
    assert task.primary == "rmse"
    m = task.reduce({"t00.sq": 4.0, "t00.abs": 2.0, "t00.n": 1.0,
                     "t01.sq": 1.0, "t01.abs": 1.0, "t01.n": 1.0})
    assert m["t00.rmse"] == 2 and m["rmse"] == 1.5


# --- the experiment -----------------------------------------------------------------------------------------

def test_reproduce_muir_end_to_end_tiny(run_cli, tmp_path):
    small = ["synthetic.methods=[stl,muir,oracle]", "synthetic.variants=[noisy]",
             "crossmodal.methods=[alone,shared]"]
    rc, out, err = run_cli("reproduce", "muir", *SWEEP, *TINY_SYN, *TINY_CM, *small, "--out", str(tmp_path),
                           "--name", "m")
    assert rc == 0, err
    d = tmp_path / "reproduce" / "m"
    s = json.loads((d / "summary.json").read_text())
    assert s["status"] == "completed" and s["kind"] == "muir"
    assert {c["id"] for c in s["claims"]} >= {"noisy_beats_stl", "groups_recovered", "no_task_much_worse",
                                              "shared_across_modalities"}
    by_id = {c["id"]: c for c in s["claims"]}
    assert by_id["noisy_beats_stl"]["n"] == 1  # one seed: no interval
    assert by_id["noisy_beats_stl"]["verdict"] == "inconclusive"
    assert by_id["clean_beats_stl"]["verdict"] == "not shown"  # the clean variant did not run
    res = pd.read_csv(d / "results.csv")
    assert len(res) == 3 + 3 + 1  # synthetic 3 methods; cross-modal 3 alone, shared
    syn = res[res.part == "synthetic"]
    assert syn.test_rmse.notna().all() and syn[syn.method != "stl"].ari.notna().all()
    cm = pd.read_csv(d / "crossmodal.csv")
    assert list(cm.task) == ["vision", "language", "genomics"] and cm.change.notna().all()
    assign = pd.read_csv(d / "assignment.csv")
    assert set(assign[assign.method == "shared"].modality) == {"vision", "language", "genomics"}
    for png in ("muir_assignment.png", "muir_modules.png", "muir_curves.png"):
        assert (d / png).stat().st_size > 1000
    assert "claims hold" in out and "crossmodal" in out
    # re-running the same command resumes: every child is done, the tables are rebuilt, nothing retrains
    rc, _, err = run_cli("reproduce", "muir", *SWEEP, *TINY_SYN, *TINY_CM, *small, "--out", str(tmp_path),
                         "--name", "m")
    assert rc == 0, err
    assert pd.read_csv(d / "results.csv").equals(res)


@pytest.mark.parametrize("part, override, message", [
    ("crossmodal", "crossmodal.model.block_in=5", "does not split into 16 x 5 blocks"),
    ("synthetic", "synthetic.model.context=-1", "context size c"),
    ("synthetic", "synthetic.search.lam=0", "lam"),
    ("crossmodal", "crossmodal.search.fraction=0", "fraction"),
    ("synthetic", "parts=[nope]", "unknown part"),
    ("crossmodal", "crossmodal.methods=[alone,psychic]", "unknown method"),
])
def test_bad_settings_are_one_line_and_exit_2_before_any_run_directory(run_cli, tmp_path, part, override,
                                                                      message):
    small = ["crossmodal.data.tasks.language.max_chars=4000"] if part == "crossmodal" else []
    rc, _, err = run_cli("reproduce", "muir", *SWEEP, f"parts=[{part}]", *small, override, "--out",
                         str(tmp_path), "--name", "b")
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "reproduce" / "b").exists()


def test_paper_preset_runs_on_real_format_cifar_files(run_cli, tmp_path):
    from test_data_loaders import write_cifar10

    write_cifar10(tmp_path / "cifar-10-batches-py", n_per=8, learnable=True)
    rc, _, err = run_cli("reproduce", "muir", "experiment=muir_paper", f"data.root={tmp_path}", *SWEEP,
                         "parts=[crossmodal]", "crossmodal.methods=[alone,shared]",
                         "crossmodal.data.select=[vision]",
                         "crossmodal.search.generations=1", "crossmodal.search.steps=2",
                         "crossmodal.search.burn_in=0", "crossmodal.trainer.batch_size=8",
                         "crossmodal.data.tasks.vision.batch_size=8", "--out", str(tmp_path / "o"),
                         "--name", "p")
    assert rc == 0, err
    d = tmp_path / "o" / "reproduce" / "p"
    s = json.loads((d / "summary.json").read_text())
    assert s["status"] == "completed"
    cfg = (d / "config.yaml").read_text()
    assert "cifar10" in cfg and str(tmp_path) in cfg
    res = pd.read_csv(d / "results.csv")
    assert res.vision_error.notna().all() and set(res.method) == {"alone", "shared"}


def test_paper_preset_without_data_root_is_one_line(run_cli, tmp_path):
    rc, _, err = run_cli("reproduce", "muir", "experiment=muir_paper", *SWEEP, "parts=[crossmodal]",
                         "--out", str(tmp_path), "--name", "p")
    assert rc == 2 and "data.root" in err and len(err.strip().splitlines()) == 1


def test_moving_the_pool_keeps_soft_weights_a_trainable_leaf():
    """.to(device/dtype) copies buffers; the soft weights must stay a leaf the search's optimizer can step."""
    pool = pool_of(c=1)
    HyperLinear(4, 4, pool, label="t.fc")
    pool.finalize(slots=2)
    pool.double()
    assert pool.soft.dtype == torch.float64 and pool.soft.is_leaf and pool.soft.requires_grad


def test_estimate_prices_every_child_from_its_own_schedule(run_cli, tmp_path):
    """`--estimate` for a child: real steps timed once per shape, scaled by burn-in + generations + final."""
    from omegaconf import OmegaConf

    from dlx.config import compose
    from dlx.papers.muir.cost import child_cost
    from dlx.registry import get

    over = [*SWEEP, *TINY_SYN, *TINY_CM, "synthetic.search.burn_in=2", "synthetic.variants=[clean,noisy]",
            "synthetic.methods=[stl,muir]", "crossmodal.methods=[shared]",
            "crossmodal.data.select=[genomics]"]
    base = compose("muir", over)
    timings, costs = {}, {}
    for c in get("muir").children(base):
        cfg = base.copy()  # the child's config: the sweep's overrides of child.* and seed
        for k, v in c.params.items():
            OmegaConf.update(cfg, k, v)
        costs[c.run_id] = child_cost(cfg, timings)
    assert len(costs) == 1 + 2 * 2  # cross-modal shared; 2 synthetic methods x clean, noisy
    assert len(timings) == 1 + 2  # noise variants share one timing
    muir = [v for k, v in costs.items() if "methodmuir" in k]
    assert all(v.detail["steps"] == (2 + 3 + 1) * 4 for v in muir)  # (burn_in + generations + final) x steps
    assert all(v.detail["evaluations"] == 3 for v in muir)  # epochs 2, 4 and the last (6)
    shared = next(v for k, v in costs.items() if "methodshared" in k)
    assert shared.detail["steps"] == (1 + 2 + 10) * 3 and shared.wall_s > 0 and shared.disk_mb > 0
    assert all(v.wall_s > 0 for v in costs.values())
    rc, out, err = run_cli("reproduce", "muir", "--estimate", *SWEEP, *TINY_SYN, "parts=[synthetic]",
                           "synthetic.methods=[muir]", "synthetic.variants=[noisy]", "--out", str(tmp_path))
    assert rc == 0, err
    assert "estimate:" in out and "children 1" in out and "shapes 1" in out
    assert not any(tmp_path.iterdir())  # nothing written
    rc, _, err = run_cli("reproduce", "muir", "--estimate", *SWEEP, "parts=[synthetic]",
                         "synthetic.search.lam=0", "--out", str(tmp_path))
    assert rc == 2 and "lam" in err and not any(tmp_path.iterdir())
