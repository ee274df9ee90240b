"""The symnets sweep's children, from the config's ``variants``, ``sweep``, ``ablation`` and ``invariance``
blocks, each validated into one clear line before anything runs.

Three studies share one sweep (one run directory, one process pool, resumable by --name):
* ``main``: every variant x training size x seed on the rotated data (the paper's figure);
* ``ablation``: the symnet with other numbers of control points K, without the local-maximum search
  (pooling at the control points only), and with other ways of computing its maps over G (``ablation.warps``,
  e.g. ``layers``: the paper's layer-by-layer maps and pooling); a row equal to a main child reuses it;
* ``invariance``: every listed variant trained on upright digits (``data.rotate=false``), later tested
  with the test set turned by every angle (invariance.py).
"""

from __future__ import annotations

import hashlib
import math

from dlx.errors import DlxError
from dlx.sweep.grid import Child

# rough cost of one child relative to the convnet, so the longest children start first in a pool
COST = {"symnet": 8.0, "p4cnn": 1.5, "convnet": 1.0}


def _ints(value, key: str, allow_empty: bool = False) -> list[int]:
    """Positive integers, each once (in the order given)."""
    from dlx.config import integers

    return list(dict.fromkeys(integers(value, key, lo=1, allow_empty=allow_empty)))


def _seeds(value, key: str) -> list[int]:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DlxError(f"{key} must be an integer >= 1, got {value!r}")
    return list(range(value))


OWN_GROUPS = ("optimizer", "trainer")  # symnets.settings.<variant>.optimizer.lr=...: that variant's own


def settings(cfg, name: str) -> dict:
    """A variant's own settings (``symnets.settings.<variant>``): model.* keys and optimizer/trainer blocks
    for its children alone (tune=true chooses them)."""
    from omegaconf import OmegaConf

    got = ((cfg.get("symnets") or {}).get("settings") or {}).get(name)
    return dict(OmegaConf.to_container(got, resolve=True)) if got else {}


def own(cfg, name: str) -> list[str]:
    """A variant's own settings as overrides; a key equal to the shared value adds nothing (so an untuned
    variant's children keep their ids)."""
    from omegaconf import OmegaConf

    from dlx.sweep.tuning import override_value, own_overrides

    out = []
    for o in own_overrides(settings(cfg, name), OWN_GROUPS):
        key, value = o.split("=", 1)
        if override_value(OmegaConf.select(cfg, key, default=None)) != value:
            out.append(o)
    return out


def variants(cfg) -> dict[str, list[str]]:
    """name -> overrides (the variant's, then its own settings); each must choose a model (model=...)."""
    out = {}
    for name, ovs in (cfg.get("variants") or {}).items():
        if isinstance(ovs, str) or not all(isinstance(o, str) and "=" in o for o in ovs or []):
            raise DlxError(f"variants.{name} must be a list of overrides like [model=convnet], got {ovs!r}")
        ovs = list(ovs)
        if not any(o.split("=", 1)[0] == "model" for o in ovs):
            raise DlxError(f"variants.{name} must choose a model (e.g. model=convnet), got {ovs}")
        out[str(name)] = ovs + own(cfg, str(name))
    return out


def _names(value, key: str, known: dict, allow_empty: bool = False) -> list[str]:
    items = list(value) if value is not None and not isinstance(value, str) else None
    if items is None or (not items and not allow_empty):
        raise DlxError(f"{key} must be a {'' if allow_empty else 'non-empty '}list of variant names, "
                       f"got {value!r}")
    for v in items:
        if v not in known:
            raise DlxError(f"{key}: unknown variant '{v}' (defined in variants: {', '.join(known)})")
    return list(dict.fromkeys(items))


def model_of(overrides: list[str]) -> str:
    return next(o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == "model")


def _child(study: str, variant: str, overrides: list[str], extra: dict) -> Child:
    """A train child: the variant's overrides then the study's settings. Its id reads as the variant and
    the settings; the hash covers the variant's overrides too: a redefined variant never reuses old runs."""
    params = {"study": study, "variant": variant, "model": model_of(overrides), **extra}
    ovs = [o for o in overrides if o.split("=", 1)[0] not in extra]
    ovs += [f"{k}={_fmt(v)}" for k, v in extra.items()]
    readable = "_".join([variant] + [_SHORT[k](v) if k in _SHORT else f"{k.split('.')[-1]}{v}"
                                     for k, v in extra.items()])
    digest = hashlib.sha1("\n".join([variant, *overrides, *ovs]).encode()).hexdigest()[:6]
    return Child(f"{readable}-{digest}", tuple(ovs), params)


_SHORT = {"data.n_train": lambda v: f"n{v}", "seed": lambda v: f"seed{v}", "model.K": lambda v: f"K{v}",
          "model.warp": lambda v: f"warp{v}",
          "model.refine_radius": lambda v: "nosearch" if v == 0 else f"radius{v}",
          "data.rotate": lambda v: "rotated" if v else "upright"}


def _fmt(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def symnet_variant(cfg, table: dict[str, list[str]]) -> str | None:
    """The variant the ablation varies: 'symnet' if defined, else the first variant whose model is symnet."""
    if "symnet" in table and model_of(table["symnet"]) == "symnet":
        return "symnet"
    return next((n for n, o in table.items() if model_of(o) == "symnet"), None)


def nosearch_variant(table: dict[str, list[str]], sym: str) -> str | None:
    """A symnet variant other than ``sym`` that pools at its control points only (refine_radius=0)."""
    def off(o: str) -> bool:
        key, _, value = o.replace(" ", "").partition("=")
        try:
            return key == "model.refine_radius" and float(value) == 0
        except ValueError:
            return False

    return next((n for n, o in table.items() if n != sym and model_of(o) == "symnet" and any(map(off, o))),
                None)


def base_K(variant_overrides: list[str]) -> int:
    """The symnet variant's own K: from its overrides, else the symnet model config's default."""
    for o in variant_overrides:
        if o.split("=", 1)[0] == "model.K":
            try:
                return int(o.split("=", 1)[1])
            except ValueError:
                raise DlxError(f"model.K must be an integer, got {o.split('=', 1)[1]!r}") from None
    from omegaconf import OmegaConf

    from dlx.config import conf_dir

    return int(OmegaConf.load(conf_dir() / "model" / "symnet.yaml").get("K", 8))


def base_warp(variant_overrides: list[str]) -> str:
    """The symnet variant's own ``model.warp``: from its overrides, else the symnet model config's."""
    for o in variant_overrides:
        if o.split("=", 1)[0] == "model.warp":
            return o.split("=", 1)[1]
    from omegaconf import OmegaConf

    from dlx.config import conf_dir

    return str(OmegaConf.load(conf_dir() / "model" / "symnet.yaml").get("warp", "inputs"))


def _warps(value) -> list[str]:
    """``ablation.warps``: names of model.warp, each once."""
    from dlx.models.symnet import WARPS

    items = [value] if isinstance(value, str) else list(value or [])
    bad = [w for w in items if w not in WARPS]
    if bad:
        raise DlxError(f"ablation.warps has {bad[0]!r}; choose from: {', '.join(WARPS)}")
    return list(dict.fromkeys(items))


def rules(cfg) -> dict:
    """``symnets.rules``, validated against the bounds the record declares (RULES in dlx/papers/symnets): the
    lines the claims are held to (analysis.claims)."""
    from dlx.config import numbers
    from dlx.papers.symnets import RULES

    return numbers((cfg.get("symnets") or {}).get("rules"), RULES, "symnets.rules")


def plan(cfg) -> dict:
    """The validated studies: {'main': [...], 'ablation': [...], 'invariance': [...]} of Children, the
    ablation rows that reuse main children included (a child appears once in ``children``)."""
    rules(cfg)  # a bad rule is one line before anything runs
    table = variants(cfg)
    sweep, abl, inv = cfg.sweep, cfg.get("ablation") or {}, cfg.get("invariance") or {}
    models = _names(sweep.models, "sweep.models", table)
    sizes = _ints(sweep.n_train, "sweep.n_train")
    seeds = _seeds(sweep.seeds, "sweep.seeds")
    main = [_child("main", v, table[v], {"data.n_train": n, "seed": s}) for v in models for n in sizes
            for s in seeds]
    by_key = {(c.params["variant"], c.params["data.n_train"], c.params["seed"]): c for c in main}

    ablation = []
    abl_sizes = _ints(abl.get("n_train", []), "ablation.n_train", allow_empty=True)
    if abl_sizes:
        sym = symnet_variant(cfg, table)
        if sym is None:
            raise DlxError("the ablation needs a symnet variant (a variant with model=symnet); set "
                           "ablation.n_train=[] to skip it")
        k0 = base_K(table[sym])
        ks = _ints(abl.get("K", [k0]), "ablation.K", allow_empty=True)
        refine = list(abl.get("refine", [True]))
        if any(not isinstance(r, bool) for r in refine):
            raise DlxError(f"ablation.refine must be a list of true/false, got {refine}")
        w0 = base_warp(table[sym])
        warps = [w for w in _warps(abl.get("warps", [])) if w != w0]
        rows = [(k, True, None) for k in ks] if True in refine else []
        rows += [(k0, False, None)] if False in refine else []
        rows += [(k0, r, w) for w in warps for r in (True, False) if r in refine]
        for n in abl_sizes:
            for s in seeds:
                for k, r, w in rows:
                    if k == k0 and r and w is None and (sym, n, s) in by_key:
                        ablation.append(by_key[(sym, n, s)])
                        continue
                    extra = {"data.n_train": n, "seed": s, "model.K": k}
                    if not r:
                        extra["model.refine_radius"] = 0
                    if w is not None:
                        extra["model.warp"] = w
                    ablation.append(_child("ablation", sym, table[sym], extra))

    invariance = []
    inv_models = _names(inv.get("models", []), "invariance.models", table, allow_empty=True)
    if inv_models:
        n = _ints([inv.get("n_train")], "invariance.n_train")[0]
        step = inv.get("angle_step", 15)
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0 < step <= 180 \
                or not math.isfinite(step):
            raise DlxError(f"invariance.angle_step must be a number of degrees in (0, 180], got {step!r}")
        for v in inv_models:
            for s in _seeds(inv.get("seeds", 1), "invariance.seeds"):
                invariance.append(_child("invariance", v, table[v], {"data.rotate": False, "data.n_train": n,
                                                                    "seed": s}))
    return {"main": main, "ablation": ablation, "invariance": invariance}


def children(cfg) -> list[Child]:
    """Every distinct child of the three studies, the most expensive first (a pool then ends evenly)."""
    studies = plan(cfg)
    seen: dict[str, Child] = {}
    for c in studies["main"] + studies["ablation"] + studies["invariance"]:
        seen.setdefault(c.run_id, c)

    def cost(c):
        k = c.params.get("model.K", 8)
        return COST.get(c.params["model"], 1.0) * (k / 8 if c.params["model"] == "symnet" else 1)

    return sorted(seen.values(), key=cost, reverse=True)


def tunables(cfg):
    """`tune=true`: every variant the main study compares, tuned (conf/tune/symnets.yaml: the same space
    for all) as its child at ``symnets.tune_n_train`` training examples and the first seed, on a held-out
    fraction of the training pool; the choices go to ``symnets.settings.<variant>`` (the ablation rows use
    the symnet's)."""
    from dlx.config import number
    from dlx.sweep.tuning import Tunable, into_block

    table = variants(cfg)
    n = int(number(cfg.symnets.get("tune_n_train"), "symnets.tune_n_train", lo=10, integer=True))
    seed = _seeds(cfg.sweep.seeds, "sweep.seeds")[0]
    return [Tunable(v, "train", _child("main", v, table[v], {"data.n_train": n, "seed": seed}).overrides,
                    into_block(f"symnets.settings.{v}.", OWN_GROUPS), "symnets")
            for v in _names(cfg.sweep.models, "sweep.models", table)]


def study_of(plan_: dict) -> dict[str, list[str]]:
    """run_id -> the studies it belongs to (a main child can also be an ablation row)."""
    out: dict[str, list[str]] = {}
    for study, kids in plan_.items():
        for c in kids:
            out.setdefault(c.run_id, []).append(study)
    return out


def angles(cfg) -> list[float]:
    """The invariance check's test angles in degrees, over [0, 360)."""
    step = float((cfg.get("invariance") or {}).get("angle_step", 15))
    return [round(i * step, 6) for i in range(int(math.ceil(360 / step - 1e-9)))]
