"""One name per experiment: the registry, the config, the kind, the package and the presets agree, and the
listing commands never load torch."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from dlx.config import choices, compose, conf_dir
from dlx.errors import DlxError
from dlx.registry import experiments, get, papers

EXPERIMENTS = experiments()


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_one_name_everywhere(name):
    exp = EXPERIMENTS[name]
    assert (conf_dir() / f"{name}.yaml").is_file()  # the top-level config
    home = "papers" if exp.paper else "kinds"
    assert importlib.import_module(f"dlx.{home}.{name}")  # the package
    mod = exp.module()
    assert mod.__name__.startswith(f"dlx.{home}.{name}.")
    hooks = ["plot"] + (["children", "finalize"] if exp.sweep else ["run"])
    for hook in hooks:
        assert callable(getattr(mod, hook)), (name, hook)
    # a paper's headline comes from its claims (dlx/claims); a kind may say its own (tune: the best trial)
    assert not (exp.paper and hasattr(mod, "headline"))
    if exp.sweep:  # the platform runs a sweep: the paper never calls the driver on itself
        assert exp.name == "muir" or not hasattr(mod, "run"), name
    compose(name)  # composes with its default preset
    for preset in choices("experiment"):
        if preset.startswith(f"{name}_"):
            compose(name, [f"experiment={preset}"])


def test_every_preset_belongs_to_an_experiment():
    for preset in choices("experiment"):
        assert any(preset.startswith(f"{n}_") for n in EXPERIMENTS), preset


def test_spellings_and_old_names():
    assert get("double-descent") is get("double_descent")
    assert get("adversarial") is get("idefender")  # the kind older runs recorded
    assert compose("sweep_double_descent", ["experiment=dd_digits"]).data.name == "digits"
    assert compose("detect_adversarial").model.name == "cnnfc"


@pytest.mark.parametrize("args", [["--help"], ["reproduce", "--help"], ["list", "experiments"], ["-V"]])
def test_listing_never_imports_torch(args):
    code = f"import sys; from dlx.cli import main; rc = main({args!r}); assert 'torch' not in sys.modules; " \
           "sys.exit(rc)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    if args[0] == "reproduce":
        for exp in papers():
            assert exp.name.replace("_", "-") in res.stdout
    if args[0] == "list":
        assert all(name in res.stdout for name in EXPERIMENTS)


def test_an_old_kind_still_plots(run_cli, tmp_path):
    """A detect-adversarial run written before the rename (kind 'adversarial') redraws."""
    rc, _, err = run_cli("detect-adversarial", "trainer.epochs=3", "trainer.threads=1", "attacks=[fgsm]",
                         "detectors=[idefender,max_softmax]", "settings=[graybox]", "ablation.components=[1]",
                         "ablation.layers=[fc2]", "--out", str(tmp_path), "--name", "d")
    assert rc == 0, err
    d = tmp_path / "reproduce" / "d"
    s = json.loads((d / "summary.json").read_text())
    s["kind"] = "adversarial"
    (d / "summary.json").write_text(json.dumps(s))
    (d / "roc.png").unlink()
    rc, out, err = run_cli("plot", str(d))
    assert rc == 0 and (d / "roc.png").is_file(), err


def test_unknown_paper_lists_the_registry(run_cli):
    rc, _, err = run_cli("reproduce", "nope")
    assert rc == 2 and "double-descent" in err and "idefender" in err


def test_every_papers_claim_lines_are_under_its_own_namespace():
    """One place to look for what a claim is held to: ``<paper>.rules`` in conf/<paper>.yaml, a mapping of
    numbers (or lists/mappings of numbers and names) for every paper with claims."""
    from dlx.config import compose

    for exp in papers():
        cfg = compose(exp.name)
        assert "rules" not in cfg and "analysis" not in cfg, f"{exp.name}: rules outside `{exp.name}:`"
        assert cfg.get(exp.name) is not None and cfg[exp.name].get("rules"), f"{exp.name}.rules is missing"


@pytest.mark.parametrize("paper, old, new", [
    ("batchnorm", "analysis.batches=2", ("batchnorm", "batches")),
    ("deepstate", "analysis.rules.beats_margin=0.01", ("deepstate", "rules", "beats_margin")),
    ("double_descent", "rules.epsilon=0.2", ("double_descent", "rules", "epsilon")),
    ("muir", "rules.min_ari=0.5", ("muir", "rules", "min_ari")),
])
def test_a_key_from_before_the_paper_namespace_still_composes(paper, old, new):
    """A sweep started with the old spelling resumes with the overrides it was started with."""
    node = compose(paper, [old])
    for k in new:
        node = node[k]
    assert node == float(old.split("=")[1])


def _leaves(node, prefix=""):
    from omegaconf import DictConfig

    for k, v in node.items():
        if isinstance(v, DictConfig):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


@pytest.mark.parametrize("paper", [e.name for e in papers()])
def test_every_claim_line_has_bounds_and_a_bad_one_is_refused_before_anything_runs(paper, tmp_path):
    """Every single-number line in ``<paper>.rules`` is declared on the record with its bounds (a list or a
    mapping of lines is its paper's own check); the default passes; a line out of its bounds or not a
    number is one DlxError naming the key, raised by launch() before the run directory exists."""
    from dlx.launch import launch
    from dlx.runs import Run

    exp = get(paper)
    rules = compose(paper)[paper].rules
    scalars = {k for k, v in _leaves(rules) if isinstance(v, (int, float)) and "." not in k}
    assert scalars and scalars == set(exp.rules), f"{paper}: undeclared or stale lines"
    assert set(exp.rules_of(compose(paper))) == scalars
    key, (lo, hi, *_) = next((k, b) for k, b in exp.rules.items() if b[0] is not None or b[1] is not None)
    bad = lo - 1 if lo is not None else hi + 1
    for value in (bad, "nan"):
        cfg = compose(paper)
        cfg[paper].rules[key] = float(value)
        with pytest.raises(DlxError, match=rf"{paper}\.rules\.{key} must be"):
            launch(exp, cfg, Run(tmp_path / "run", paper))
        assert not (tmp_path / "run").exists()
    # a run already open (`dlx reproduce all`, a negative control) records the refusal as its failure
    from dlx.runs import read_summary

    run = Run(tmp_path / "open", paper)
    run.open()
    with pytest.raises(DlxError):
        launch(exp, cfg, run)
    assert read_summary(tmp_path / "open")["status"] == "failed"
