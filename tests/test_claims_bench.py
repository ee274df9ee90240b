"""Every bench claim can hold, fail or come out inconclusive: made-up results, rounds and step times fed to
claims() (no timing, no training)."""

from __future__ import annotations

import json

import pytest

from dlx.config import compose
from dlx.errors import DlxError
from dlx.papers.bench.experiment import check_rules, claims, deciding

RULES = {"overhead_max": 1.03, "eager_min": 0.83, "shared_min": 1.0, "async_max": 0.5}


def overhead(dlx_over_hand):
    """rounds.csv rows: hand 1 s a round, dlx the given ratio (and a dlx_bare that must not matter)."""
    rows = []
    for i, r in enumerate(dlx_over_hand, 1):
        rows += [{"suite": "overhead", "model": "mlp/digits", "mode": "hand", "round": i, "seconds": 1.0},
                 {"suite": "overhead", "model": "mlp/digits", "mode": "dlx", "round": i, "seconds": r},
                 {"suite": "overhead", "model": "mlp/digits", "mode": "dlx_bare", "round": i, "seconds": 9.0}]
    return rows


def sharing(pickled_over_shared):
    rows = []
    for i, r in enumerate(pickled_over_shared, 1):
        for size, n in (("1 MB float32", 2**20), ("64 MB float32", 2**26)):
            ratio = r if n == 2**26 else 0.5  # only the largest size decides
            rows += [{"suite": "multiprocessing", "model": size, "mode": "shared_tensor", "round": i,
                      "seconds": 0.01, "bytes": n},
                     {"suite": "multiprocessing", "model": size, "mode": "pickled_numpy", "round": i,
                      "seconds": 0.01 * ratio, "bytes": n}]
    return rows


def cuda(enqueue_over_execute):
    rows = []
    for i, r in enumerate(enqueue_over_execute, 1):
        rows += [{"suite": "cuda", "model": "resnet18k", "mode": "enqueue", "round": i, "seconds": 0.01 * r},
                 {"suite": "cuda", "model": "resnet18k", "mode": "execute", "round": i, "seconds": 0.01}]
    return rows


def throughput(per_model: dict[str, list[float]]):
    """Results rows and step times: per model, eager at 100 items/s a step and bf16 at 100 / ratio, so the
    per-step eager / bf16 throughput is the given ratio; one warm-up step each that must not count."""
    rows, steps = [], []
    for model, ratios in per_model.items():
        t_eager = [1.0] * len(ratios)
        t_bf16 = list(ratios)  # t_best / t_eager = ratio
        for mode, times in (("eager", t_eager), ("bf16", t_bf16)):
            mean = sum(100.0 / t for t in times) / len(times)
            rows.append({"suite": "throughput", "model": model, "mode": mode, "mean": mean})
            steps.append({"suite": "throughput", "model": model, "mode": mode, "step": 1, "seconds": 50.0,
                          "warmup": True})
            steps += [{"suite": "throughput", "model": model, "mode": mode, "step": i + 2, "seconds": t,
                       "warmup": False} for i, t in enumerate(times)]
        rows.append({"suite": "throughput", "model": model, "mode": "compile", "status": "skipped"})
    return rows, steps


def verdict(rows=(), steps=(), rounds=(), cid="runner_overhead", rules=RULES):
    out = {c["id"]: c for c in claims(list(rows), list(steps), list(rounds), rules)}
    assert list(out) == ["runner_overhead", "eager_competitive", "shared_memory", "async_cuda"]
    json.dumps(list(out.values()), allow_nan=False)
    return out[cid]


@pytest.mark.parametrize("ratios, expect", [
    ([1.00, 1.01, 1.02, 1.01, 1.00], "holds"),
    ([1.08, 1.10, 1.09, 1.07, 1.08], "fails"),
    ([0.90, 1.15, 1.00, 1.08, 1.05], "inconclusive"),  # the ±15% rounds: the interval straddles 1.03
])
def test_runner_overhead(ratios, expect):
    c = verdict(rounds=overhead(ratios))
    assert c["verdict"] == expect and c["source"] == "dlx" and c["n"] == len(ratios)
    assert c["estimate"] == pytest.approx(sum(ratios) / len(ratios))
    assert "< 1.03" in c["rule"] and c["ci_method"] == "t"


def test_runner_overhead_pairs_rounds_and_follows_the_rule():
    c = verdict(rounds=overhead([1.05, 1.06, 1.05]), rules={**RULES, "overhead_max": 1.10})
    assert c["verdict"] == "holds" and "< 1.1" in c["rule"]
    missing = [r for r in overhead([1.0, 1.0, 1.0]) if not (r["mode"] == "dlx" and r["round"] == 2)]
    assert verdict(rounds=missing)["n"] == 2  # a round without its pair drops out
    assert verdict()["verdict"] == "not shown"


@pytest.mark.parametrize("per_model, expect, decided_by", [
    ({"alexnet": [0.95, 0.97, 0.96, 0.95], "ncf": [1.0, 1.0, 1.0, 1.0]}, "holds", "alexnet"),
    ({"alexnet": [0.55, 0.52, 0.54, 0.53], "ncf": [1.0, 1.0, 1.0, 1.0]}, "fails", "alexnet"),
    ({"alexnet": [0.95, 0.97, 0.96, 0.95], "lstm": [0.6, 1.1, 0.7, 1.0]}, "inconclusive", "lstm"),
    # one model fails outright, another straddles: the claim fails, shown on the failing model
    ({"lstm": [0.6, 1.1, 0.7, 1.0], "alexnet": [0.55, 0.52, 0.54, 0.53]}, "fails", "alexnet"),
])
def test_eager_competitive(per_model, expect, decided_by):
    rows, steps = throughput(per_model)
    c = verdict(rows, steps, cid="eager_competitive")
    assert c["verdict"] == expect and c["measured"]["decided by"] == decided_by and c["source"] == "dlx"
    assert c["n"] == 4  # the warm-up step is left out
    assert "> 0.83" in c["rule"]


def test_eager_fastest_is_compared_with_itself():
    rows, steps = throughput({"ncf": [1.0, 1.0, 1.0]})
    rows = [r for r in rows if r["mode"] != "bf16" or r.update(mean=1.0) is None]  # bf16 now slower
    c = verdict(rows, steps, cid="eager_competitive")
    assert c["verdict"] == "holds" and c["estimate"] == 1.0 and "ncf eager % of eager" in c["measured"]
    assert verdict(cid="eager_competitive")["verdict"] == "not shown"


@pytest.mark.parametrize("ratios, expect", [
    ([18.0, 20.0, 19.5, 21.0, 18.5], "holds"),
    ([0.80, 0.82, 0.79, 0.81, 0.80], "fails"),   # pickling faster: shared memory did not pay
    ([0.70, 1.40, 0.90, 1.30, 1.00], "inconclusive"),
])
def test_shared_memory(ratios, expect):
    c = verdict(rounds=sharing(ratios), cid="shared_memory")
    assert c["verdict"] == expect and c["source"] == "paper" and c["n"] == len(ratios)
    assert "64 MB float32" in c["measured"]
    assert verdict(cid="shared_memory")["verdict"] == "not shown"


@pytest.mark.parametrize("ratios, expect", [
    ([0.05, 0.06, 0.05, 0.04], "holds"),
    ([0.95, 0.97, 0.96, 0.98], "fails"),   # synchronous: Python waits for the GPU
    ([0.2, 0.9, 0.3, 0.8], "inconclusive"),
])
def test_async_cuda(ratios, expect):
    c = verdict(rounds=cuda(ratios), cid="async_cuda")
    assert c["verdict"] == expect and c["n"] == len(ratios)
    assert c["measured"]["execute ms"] == pytest.approx(10.0)
    none = verdict(cid="async_cuda")
    assert none["verdict"] == "not shown" and "CUDA" in none["why"]


def test_deciding_picks_the_failing_then_the_weakest():
    def t(lo, hi, v):
        return {"ci": [lo, hi], "verdict": v}

    assert deciding({"a": t(0.9, 1.0, "holds"), "b": t(0.5, 0.6, "fails")})[0] == "b"
    assert deciding({"a": t(0.9, 1.0, "holds"), "b": t(0.85, 1.2, "holds")})[0] == "b"
    assert deciding({"a": t(0.9, 1.0, "holds"), "b": {"ci": None, "verdict": "inconclusive"}})[0] == "b"


def test_rules_live_in_config():
    cfg = compose("bench")
    assert check_rules(cfg.bench.rules) == RULES
    assert cfg.bench.overhead.repeats >= 3 and cfg.bench.multiprocessing.repeats >= 3
    with pytest.raises(DlxError, match="bench.rules.eager_min"):
        check_rules({**RULES, "eager_min": "x"})
