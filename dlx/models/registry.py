"""The model registry: ``@register_model(name, ...)``, ``build_model`` (built-ins, a user's ``_target_``,
the ``dlx.models`` entry points) and the lookups over them. It imports no model module (they import it), so
it loads without them; ``dlx.models`` imports them all."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from dlx.errors import DlxError

Builder = Callable[..., nn.Module]
MODELS: dict[str, Builder] = {}
# what each registration declares (filled by register_model only):
NEEDS_TRAIN: set[str] = set()  # built from the training split too (its structure comes from the data)
STACKABLE: set[str] = set()  # has a stacked form (dlx/models/stacked.py): a sweep may train members as one


REUSED = [0.0]  # seconds of build work a builder reused from earlier in this process (``reused``)


def reused(seconds: float) -> None:
    """A builder handed back work done earlier in this process (e.g. DeepMatch's topic models): its first
    computation's seconds, which ``--estimate`` charges to every build that would redo it alone."""
    REUSED[0] += float(seconds)


def register_model(name: str, needs_train: bool = False, stackable: bool = False
                   ) -> Callable[[Builder], Builder]:
    """Decorator: register ``fn(cfg, meta) -> nn.Module`` (``fn(cfg, meta, train)`` with ``needs_train``);
    ``stackable``: dlx.models.stacked.stack_model converts every model it builds (dropout aside)."""

    def deco(fn: Builder) -> Builder:
        if name in MODELS:
            raise ValueError(f"model '{name}' registered twice")
        MODELS[name] = fn
        if needs_train:
            NEEDS_TRAIN.add(name)
        if stackable:
            STACKABLE.add(name)
        return fn

    return deco


def stackable(model) -> bool:
    """Whether ``model`` (a name, or a model config) has a stacked form: a built-in registered
    ``stackable``. A user's model (a config with ``_target_``, or an entry point) never has one."""
    if not isinstance(model, str):
        if model is None or model.get("_target_") is not None:
            return False
        model = model.get("name")
    return model in STACKABLE


def needs_train(model) -> bool:
    """Whether building ``model`` (a model config) reads the training split, so its build time grows with
    it: a built-in registered ``needs_train``; a user's model (``_target_`` or an entry point) may."""
    return model.get("_target_") is not None or model.get("name") not in MODELS or \
        model.get("name") in NEEDS_TRAIN


def build_model(cfg, meta, train=None) -> nn.Module:
    """Build the model named ``cfg.name`` for ``meta.input_shape`` and ``meta.num_outputs`` outputs: a
    built-in, a user's factory named by ``cfg._target_`` (an import path), or one a package registers under
    the ``dlx.models`` entry-point group (:func:`build_factory` for the factories' contract)."""
    name = cfg.get("name")
    target = cfg.get("_target_")
    if target is not None:
        return build_factory(_locate(str(target)), cfg, meta, train, f"model _target_ '{target}'")
    if name not in MODELS:
        found = _entry_point(name)
        if found is None:
            raise DlxError(f"unknown model '{name}' (choose one of: {', '.join(list_models())})")
        return build_factory(found[0], cfg, meta, train, f"model '{name}' (entry point {found[1]})")
    if not meta.num_outputs or meta.num_outputs < 1:
        raise DlxError(f"model '{name}' needs an output size, but data '{meta.name}' gives none")
    shape = tuple(meta.input_shape)
    if not 1 <= len(shape) <= 3 or any(int(s) < 1 for s in shape):
        raise DlxError(f"model '{name}' cannot take input shape {shape} (expected (C,H,W), (C,L) or (L,))")
    if name in NEEDS_TRAIN:
        return MODELS[name](cfg, meta, train)
    return MODELS[name](cfg, meta)


ENTRY_POINTS = "dlx.models"  # [project.entry-points."dlx.models"] name = "package.module:factory"
FACTS = ("input_shape", "num_outputs", "num_classes", "meta", "train")  # what dlx passes a factory, by name
RESERVED = ("_target_", "name")  # keys of the model config that are dlx's, not the factory's


def _entry_point(name) -> tuple | None:
    """(factory, 'module:attr') registered by an installed package under ``name``, or None. Read only when
    a name is not built in, so the registry's import stays free of installed packages' imports."""
    from importlib.metadata import entry_points

    if not isinstance(name, str):
        return None
    found = [ep for ep in entry_points(group=ENTRY_POINTS) if ep.name == name]
    if not found:
        return None
    ep = found[0]
    try:
        return ep.load(), ep.value
    except Exception as err:
        raise DlxError(f"model '{name}': loading entry point {ep.value} failed: {_one_line(err)}") from None


def _one_line(err: BaseException) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())[:300]


def _locate(target: str):
    """The object at import path ``target`` ('pkg.module.Name'), importing the longest module prefix; the
    current directory and each config dir's parent are importable (dlx.config.import_dirs). Errors are one
    line naming the target."""
    import importlib

    from dlx.config import import_dirs, make_importable

    what = f"model _target_ '{target}'"
    parts = target.split(".")
    if not target or not all(p.isidentifier() for p in parts):
        raise DlxError(f"{what} is not an import path like 'package.module.Name'")
    make_importable()
    for i in range(len(parts), 0, -1):
        module = ".".join(parts[:i])
        try:
            obj = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name and (module == err.name or module.startswith(err.name + ".")):
                continue  # no such module: the rest is an attribute path
            raise DlxError(f"{what}: importing {module} failed: {_one_line(err)}") from None
        except Exception as err:  # a SyntaxError, or a raise at the module's top level
            raise DlxError(f"{what}: importing {module} failed: {_one_line(err)}") from None
        for j, attr in enumerate(parts[i:], start=i):
            if not hasattr(obj, attr):
                import difflib

                close = difflib.get_close_matches(attr, [a for a in dir(obj) if not a.startswith("_")], n=1)
                hint = f"; did you mean '{'.'.join([*parts[:j], close[0]])}'?" if close else ""
                raise DlxError(f"{what}: {'.'.join(parts[:j])} has no attribute '{attr}'{hint}")
            obj = getattr(obj, attr)
        if not callable(obj):
            raise DlxError(f"{what} is an object of type {type(obj).__name__}, not a class or function")
        return obj
    where = ", ".join(str(d) for d in import_dirs())
    raise DlxError(f"{what}: no module named '{parts[0]}' (dlx imports from PYTHONPATH, installed packages "
                   f"and {where})")


def build_factory(factory, cfg, meta, train, what: str) -> nn.Module:
    """Call a user's model factory (a class or function): the model config's keys other than ``_target_``
    and ``name`` as keyword arguments (nested ``_target_`` nodes instantiated, lists and dicts plain), plus
    each of ``input_shape`` (a tuple), ``num_outputs``, ``num_classes``, ``meta`` (dlx.data.bundle.Meta) and
    ``train`` (the training split) that its signature names; one taking ``**kwargs`` gets ``input_shape``
    and ``num_outputs``. The result must be an ``nn.Module``."""
    import inspect

    from hydra.utils import instantiate
    from omegaconf import DictConfig, OmegaConf

    keys = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    keys = {k: v for k, v in keys.items() if k not in RESERVED}
    bad = [k for k in keys if k in FACTS or (k.startswith("_") and k.endswith("_"))]
    if bad:
        raise DlxError(f"{what}: model.{bad[0]} is not a key a model config may set "
                       f"({'dlx passes it from the data' if bad[0] in FACTS else 'not supported by dlx'})")
    try:
        kwargs = instantiate(keys, _convert_="all") if _nested_target(keys) else keys
    except Exception as err:
        cause = err.__cause__ or err
        raise DlxError(f"{what}: a nested _target_ failed: {_one_line(cause)}") from None
    facts = {"input_shape": tuple(int(s) for s in meta.input_shape), "num_outputs": meta.num_outputs,
             "num_classes": meta.num_classes, "meta": meta, "train": train}
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    named = {k: v for k, v in facts.items() if k in params}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        named = {"input_shape": facts["input_shape"], "num_outputs": facts["num_outputs"], **named}
    try:
        model = factory(**kwargs, **named)
    except DlxError:
        raise
    except Exception as err:
        raise DlxError(f"{what} failed: {_one_line(err)}") from None
    if not isinstance(model, nn.Module):
        raise DlxError(f"{what} returned an object of type {type(model).__name__}, not a torch.nn.Module")
    return model


def _nested_target(value) -> bool:
    if isinstance(value, dict):
        return "_target_" in value or any(_nested_target(v) for v in value.values())
    if isinstance(value, list):
        return any(_nested_target(v) for v in value)
    return False


def list_models() -> list[str]:
    """Built-in models and those installed packages register under the ``dlx.models`` entry points."""
    from importlib.metadata import entry_points

    return sorted(set(MODELS) | {ep.name for ep in entry_points(group=ENTRY_POINTS)})


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
