"""Model registry, exact reference parameter counts, and shape coverage for every model."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from omegaconf import OmegaConf

from dlx.data.bundle import Meta
from dlx.errors import DlxError
from dlx.models import MODELS, build_model, count_params, list_models

SHAPES = {"digits": (1, 8, 8), "mnist1d": (1, 40), "flat": (16,), "cifar": (3, 32, 32)}
SMALL = {"mlp": 8, "cnn5": 2, "resnet18k": 2, "cnn1d": 4, "transformer": 8}


def meta(shape=(3, 32, 32), classes=10) -> Meta:
    return Meta(name="t", task="classify", input_shape=shape, num_classes=classes)


def build(name, shape=(3, 32, 32), classes=10, **kw):
    return build_model(OmegaConf.create({"name": name, **kw}), meta(shape, classes))


def test_registry_lists_all_families():
    assert list_models() == sorted(MODELS)
    assert set(SMALL) <= set(MODELS)


@pytest.mark.parametrize("name,width,expected", [
    ("cnn5", 4, 6_666), ("cnn5", 16, 99_210), ("cnn5", 64, 1_558_026), ("resnet18k", 64, 11_171_146),
])
def test_reference_param_counts(name, width, expected):
    assert count_params(build(name, width=width, batchnorm=True)) == expected


@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
@pytest.mark.parametrize("name", sorted(SMALL))
def test_forward_backward(name, shape):
    torch.manual_seed(0)
    model = build(name, shape, classes=3, width=SMALL[name])
    x = torch.randn(4, *shape)
    out = model(x)
    assert out.shape == (4, 3)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    assert model(x[:1]).shape == (1, 3)  # batch of one must work in eval mode


@pytest.mark.parametrize("name", sorted(SMALL))
def test_batchnorm_false_removes_bn(name):
    for shape in (SHAPES["digits"], SHAPES["mnist1d"]):
        model = build(name, shape, width=SMALL[name], batchnorm=False)
        assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def test_batchnorm_true_adds_bn():
    for name in ("mlp", "cnn5", "resnet18k", "cnn1d"):
        model = build(name, SHAPES["digits"], width=SMALL[name], batchnorm=True)
        assert any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()), name


@pytest.mark.parametrize("name", sorted(SMALL))
def test_width_monotone(name):
    counts = [count_params(build(name, SHAPES["digits"], width=w)) for w in (4, 8, 16)]
    assert counts == sorted(counts) and len(set(counts)) == 3


def test_mlp_depth_zero_is_linear():
    model = build("mlp", (3, 32, 32), depth=0)
    assert count_params(model) == 3 * 32 * 32 * 10 + 10


def test_mlp_activation_and_dropout():
    model = build("mlp", (16,), width=8, activation="tanh", dropout=0.5)
    assert any(isinstance(m, nn.Tanh) for m in model.modules())
    assert any(isinstance(m, nn.Dropout) for m in model.modules())
    with pytest.raises(DlxError, match="activation"):
        build("mlp", (16,), activation="gelu-ish")


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 40), (16,), (3, 5, 7)])
def test_transformer_odd_width_and_padding(shape):
    model = build("transformer", shape, width=6, depth=1, heads=4, patch=3)
    assert model.encoder.layers[0].self_attn.num_heads == 3
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_unknown_model_lists_names():
    with pytest.raises(DlxError) as err:
        build("nope")
    msg = str(err.value)
    assert "nope" in msg and all(n in msg for n in SMALL) and "\n" not in msg


@pytest.mark.parametrize("shape", [(), (1, 2, 3, 4), (0, 8)])
def test_bad_input_shape(shape):
    with pytest.raises(DlxError, match="input shape"):
        build("mlp", shape)


def test_bad_width():
    with pytest.raises(DlxError, match="width"):
        build("cnn5", width=0)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_build_deterministic(name):
    def state():
        torch.manual_seed(123)
        return build(name, SHAPES["digits"], width=SMALL[name]).state_dict()

    a, b = state(), state()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
