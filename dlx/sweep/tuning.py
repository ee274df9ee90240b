"""`dlx reproduce <paper> tune=true tune.trials=N`: before its children, a paper that tunes (its ``tunables``
hook, dlx/registry.py) gets one `dlx tune` study per compared model, each with the same N trials scored on
the validation split, and its comparison then runs with the chosen settings on every seed.

Each study is an ordinary tune run in ``<sweep>/tune/<label>`` whose trials are that model's sweep child
(the paper's config, the user's overrides, the child's own) with the trial's values on top, so a model is
tuned exactly as the comparison trains it. The chosen values go back into the paper's own settings keys
(``Tunable.into``) and are recorded in ``<sweep>/tuned.yaml`` (what `dlx status` and a resume read) and
``tuning.csv``. Re-running the same command resumes an unfinished study; a larger tune.trials extends the
finished ones. A paper's ``children`` put each model's tuned keys into that model's child overrides (which
name its directory, ``children`` below), never read them from the sweep's config at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dlx.errors import DlxError

TUNED_FILE = "tuned.yaml"


@dataclass(frozen=True)
class Tunable:
    """One model a paper compares, tuned as one of its sweep children."""

    label: str  # the model's name in the paper's tables (the study's directory: tune/<label>)
    child: str  # the kind of its children: train or fit
    overrides: tuple[str, ...]  # the child tuned (its overrides in the paper's config, first seed)
    # chosen override key prefix -> the paper's settings key prefix it goes to (e.g. "model." ->
    # "deepmatch.settings.bilinear."); keys under no prefix apply as they are (e.g. baseline.*)
    into: dict = field(default_factory=dict)
    space_file: str | None = None  # conf/tune/<this>.yaml instead of the model's own space

    def paper_overrides(self, chosen: list[str]) -> list[str]:
        """The chosen ``key=value`` overrides as the paper's own settings keys (which its config has: a
        space searches what the paper sets)."""
        out = []
        for ov in chosen:
            key, _, value = ov.partition("=")
            for src, dst in self.into.items():
                if key.startswith(src):
                    key = dst + key[len(src):]
                    break
            out.append(f"{key}={value}")
        return out


# A paper's per-model settings block (``<paper>.settings.<model>``): model.* keys, and blocks of the groups
# in ``groups`` (e.g. optimizer: {lr: ...}) for that model's children alone. The three helpers below turn
# such a block into its children's overrides, into the keys a shared override would be shadowed by, and into
# the ``Tunable.into`` map that sends a study's choices back to it.


def override_value(v) -> str:
    """A config value as a Hydra override value (lists bracketed, booleans lower-case, None as null)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (list, tuple)) or type(v).__name__ == "ListConfig":
        return "[" + ",".join(override_value(x) for x in v) + "]"
    return str(v)


def own_overrides(block: dict, groups) -> list[str]:
    """A model's settings block as overrides of its children: ``model.k=v``, ``<group>.k=v``."""
    out = []
    for k, v in block.items():
        if k in groups and isinstance(v, dict):
            out += [f"{k}.{kk}={override_value(vv)}" for kk, vv in v.items()]
        else:
            out.append(f"model.{k}={override_value(v)}")
    return out


def owned_keys(blocks: dict[str, dict], prefix: str, groups) -> dict[str, dict]:
    """{shared override key: {paper key: value}} of the models' settings blocks (``prefix`` + model name
    is each block's key), for ``refuse_shadowed``."""
    owned: dict = {}
    for model, block in blocks.items():
        for k, v in block.items():
            pairs = v.items() if k in groups and isinstance(v, dict) else [(None, v)]
            for kk, vv in pairs:
                shared = f"{k}.{kk}" if kk is not None else f"model.{k}"
                own = f"{prefix}{model}.{k}" + (f".{kk}" if kk is not None else "")
                owned.setdefault(shared, {})[own] = vv
    return owned


def into_block(prefix: str, groups) -> dict[str, str]:
    """``Tunable.into`` for a settings block at ``prefix``: model.* keys and each group's keys."""
    return {"model.": prefix, **{f"{g}.": f"{prefix}{g}." for g in groups}}


def refuse_shadowed(given: list[str], cfg, owned: dict[str, dict[str, object]]) -> None:
    """A global override that a model's own setting would shadow (e.g. ``optimizer.lr=0.1`` where a paper
    sets each model's lr, as tuned) is one line naming the keys to set instead. ``owned``: {global key:
    {the paper's own key: its resolved value}}; an own key that follows the global one (an interpolation)
    has the user's value and is not shadowing it."""
    from omegaconf import OmegaConf

    for ov in given:
        key = ov.split("=", 1)[0].lstrip("+~")
        if key not in owned:
            continue
        value = OmegaConf.select(cfg, key)
        other = [k for k, v in owned[key].items() if v != value]
        if other:
            raise DlxError(f"'{ov}' would not reach {', '.join(other)} (each model's own setting, chosen by "
                           "tuning): set those keys instead")


def enabled(cfg) -> bool:
    return bool((cfg.get("tune") or {}).get("enabled"))


def tunables_of(exp, cfg) -> list[Tunable]:
    """The paper's models to tune; refused (one line) for a paper that does not tune."""
    hook = exp.hook("tunables")
    if hook is None:
        from dlx.registry import papers

        which = ", ".join(p.name for p in papers() if p.hook("tunables") is not None)
        raise DlxError(f"dlx reproduce {exp.name} has no models to tune (tune=true); papers that tune: "
                       f"{which}")
    found = list(hook(cfg))
    if not found:
        raise DlxError(f"tune=true: none of {exp.name}'s models in this run has a search space")
    return found


def tune_first(exp, cfg, run, given: list[str], say=None) -> list[str]:
    """Run (or resume) every study; returns the paper overrides of the chosen settings, recorded in
    tuned.yaml and tuning.csv. Every trial is checked before the first study starts."""
    from dlx.config import compose
    from dlx.registry import get

    found = tunables_of(exp, cfg)
    tune = get("tune")  # the tune kind, through its record (the sweep imports no kind)
    budget = tune.hook("settings_of")(cfg)["trials"]
    plans = []
    for t in found:
        ovs = study_overrides(exp, t, given)
        try:
            tcfg = compose(exp.name, ovs)
        except DlxError as err:
            raise DlxError(f"{err} (tuning {t.label})") from None
        tune.hook("space_of")(tcfg, t.child)  # a model without a space is refused before anything runs
        plans.append((t, ovs))
    rows, chosen = [], {}
    for t, ovs in plans:
        d = run.path("tune") / t.label
        if say:
            say(f"tune: {t.label}: {budget} trials on the validation split ({d})")
        summary = _study(exp.name, ovs, d, budget)
        if summary.get("status") != "completed":
            why = summary.get("error") or summary.get("status")
            raise DlxError(f"tuning {t.label} did not finish ({why}); "
                           f"see {d}/summary.json — run the same command again to resume it")
        picked = list(summary.get("best_overrides") or [])
        chosen[t.label] = {"trials": budget, "metric": summary.get("metric"),
                           "value": summary.get("best_value"), "trial": summary.get("best_trial"),
                           "chosen": picked, "overrides": t.paper_overrides(picked)}
        rows.append({"model": t.label, "trials": budget, "metric": summary.get("metric"),
                     "best_value": summary.get("best_value"), "best_trial": summary.get("best_trial"),
                     "completed": summary.get("completed"), "pruned": summary.get("pruned"),
                     "failed": summary.get("failed"), "chosen": " ".join(picked),
                     "tune_wall_s": summary.get("tune_wall_s")})
    import pandas as pd

    from dlx.runs import write_csv

    write_csv(run.path("tuning.csv"), pd.DataFrame(rows))
    _write_tuned(run.path(TUNED_FILE), chosen)
    return [o for v in chosen.values() for o in v["overrides"]]


def study_overrides(exp, t: Tunable, given: list[str]) -> list[str]:
    """The tune run's overrides: the user's (their tune.* budget and sampler kept), the child's, and how
    its trials run (a ``t.child`` in the paper's config)."""
    from dlx.config import _split

    kept = [o for o in given if _split(o)[0] not in ("tune", "tune.enabled", "tune.child", "tune.config",
                                                     "tune.space_file")]
    own = [f"tune.space_file={t.space_file}"] if t.space_file else []
    return [*kept, "trainer.progress=none", *t.overrides, f"tune.child={t.child}", f"tune.config={exp.name}",
            *own]


def _study(config: str, overrides: list[str], d: Path, budget: int) -> dict:
    """One study (the `dlx tune` kind) in ``d``: skipped when it finished with this budget; a smaller
    recorded budget (or an unfinished study) continues. Returns its summary."""
    from dlx.config import compose
    from dlx.registry import get
    from dlx.runs import Run, read_summary

    old = read_summary(d)
    if old.get("status") == "completed" and int(old.get("trials") or 0) == budget:
        return old
    run = Run(d, "tune", extra={"config": config}, exclusive=False)  # another invocation may share it
    with run.recording():
        cfg = compose(config, overrides)
        run.config = (cfg, overrides)
        run.open()
        get("tune").run(cfg, run)
    return read_summary(d)


def _write_tuned(path: Path, chosen: dict) -> None:
    import yaml

    from dlx.files import write_text

    head = "# the settings tune=true chose for each compared model (the paper's own keys); see tune/<model>\n"
    write_text(path, head + yaml.safe_dump(chosen, sort_keys=False))


def recorded(run_dir: Path) -> list[str]:
    """The paper overrides a tuned sweep ran its children with ([] for a sweep that did not tune)."""
    import yaml

    path = Path(run_dir) / TUNED_FILE
    if not path.is_file():
        return []
    data = yaml.safe_load(path.read_text()) or {}
    return [o for v in data.values() for o in (v.get("overrides") or [])]


def children(exp, cfg, tuned: list[str]):
    """The sweep's children, planned from ``cfg`` with the tuned overrides merged in. A tuned sweep's child
    directory also names a digest of the child's overrides (which carry its model's tuned settings): a
    resume whose studies chose anew (a larger tune.trials) trains the changed models again, in new
    directories, and keeps the children whose settings did not change."""
    import hashlib
    from dataclasses import replace

    kids = exp.children(apply(cfg, tuned))
    if not tuned:
        return kids
    return [replace(c, run_id=f"{c.run_id}-{hashlib.sha1(' '.join(c.overrides).encode()).hexdigest()[:6]}")
            for c in kids]


def apply(cfg, overrides: list[str]):
    """``cfg`` with the tuned overrides merged in (the children are planned from it)."""
    from omegaconf import OmegaConf, open_dict

    if not overrides:
        return cfg
    cfg = cfg.copy()
    with open_dict(cfg):
        merged = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    return merged
