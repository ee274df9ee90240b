"""The MUiR sweep's cells and each trained method's own settings: which children a config makes
(``child_params``, ``child_overrides``, ``cells``) and the ``<part>.settings.<method>`` blocks they carry
(tune=true chooses them; dlx/papers/muir/tuning.py)."""

from __future__ import annotations

from dlx.errors import DlxError

GROUPS = ("optimizer", "search", "model", "trainer")


def tasks_of(cfg) -> list[str]:
    """The cross-modal tasks that run (data.select, else all)."""
    tasks = list(cfg.crossmodal.data.tasks)
    select = cfg.crossmodal.data.get("select")
    if select is None:
        return tasks
    return [t for t in tasks if t in ([select] if isinstance(select, str) else list(select))]


def child_params(part: str, method: str, task: str | None, noise: str | None, seed: int) -> dict:
    """A child's grid values (they name its directory)."""
    if part == "crossmodal":
        return {"child.part": part, "child.method": method, "child.task": task, "seed": seed}
    return {"child.part": part, "child.method": method, "child.noise": noise, "seed": seed}


def child_overrides(cfg, params: dict) -> tuple[str, ...]:
    """The child's overrides: its grid values, then its method's own settings (``<part>.settings``)."""
    grid = [f"{k}={'null' if v is None else v}" for k, v in params.items()]
    own = own_overrides(cfg, params["child.part"], params["child.method"], params.get("child.task"))
    return (*grid, *own)


def cells(cfg) -> dict[str, list[tuple[str, str | None]]]:
    """{part: [(method, task)]} of the methods that run (a task for methods trained on one task alone)."""
    out = {}
    for part in cfg.parts:
        if part == "synthetic":
            out[part] = [(m, None) for m in cfg.synthetic.methods]
        else:
            out[part] = [(m, t) for m in cfg.crossmodal.methods
                         for t in (tasks_of(cfg) if m.startswith("alone") else [None])]
    return out


def label(method: str, task: str | None) -> str:
    """A method's settings key: ``alone_vision`` for a method on one task, else the method."""
    return f"{method}_{task}" if task else method


def settings(cfg, part: str, name: str) -> dict:
    from omegaconf import OmegaConf

    got = (cfg[part].get("settings") or {}).get(name)
    return dict(OmegaConf.to_container(got, resolve=True)) if got else {}


def own_overrides(cfg, part: str, method: str, task: str | None) -> list[str]:
    """The overrides a child of ``method`` carries from its settings block (``<part>.optimizer.lr=...``)."""
    from dlx.sweep.tuning import override_value

    out = []
    name = label(method, task)
    for group, block in settings(cfg, part, name).items():
        if group not in GROUPS or not isinstance(block, dict):
            raise DlxError(f"{part}.settings.{name}.{group}: a method's settings are blocks of "
                           f"{', '.join(GROUPS)} keys (e.g. {part}.settings.{name}.optimizer.lr=0.003)")
        out += [f"{part}.{group}.{k}={override_value(v)}" for k, v in block.items()]
    return out


def refuse_shadowed(cfg, overrides, methods: dict[str, list[tuple[str, str | None]]]) -> None:
    """A part-wide override (``synthetic.optimizer.lr=...``) that a method's own setting would shadow."""
    from dlx.sweep.tuning import refuse_shadowed as refuse

    owned: dict = {}
    for part, cells in methods.items():
        for method, task in cells:
            name = label(method, task)
            for group, block in settings(cfg, part, name).items():
                for k, v in (block or {}).items():
                    owned.setdefault(f"{part}.{group}.{k}", {})[f"{part}.settings.{name}.{group}.{k}"] = v
    refuse(list(overrides), cfg, owned)
