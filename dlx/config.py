"""Compose configs with Hydra's Compose API and turn every composition error into one clear line.

Deliberately free of torch: `dlx list` and `dlx --help` go through here.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

from dlx.errors import DlxError

# earlier names of top-level configs (sweep children record theirs) and of presets, so run directories and
# scripts from before the one-name-per-experiment layout still compose
RENAMED_CONFIGS = {"sweep_double_descent": "double_descent", "sweep_grid": "grid",
                   "detect_adversarial": "idefender"}
RENAMED_PRESETS = {"dd_mnist1d": "double_descent_mnist1d", "dd_digits": "double_descent_digits",
                   "dd_cnn5_cifar10": "double_descent_cnn5_cifar10",
                   "dd_resnet18_cifar10": "double_descent_resnet18_cifar10", "bn_digits": "batchnorm_digits",
                   "bn_resnet110_cifar10": "batchnorm_resnet110_cifar10"}

# keys a paper's config had before its settings moved under `<paper>:` (a run started then resumes with
# the overrides it was started with): config -> {old prefix: new prefix}
RENAMED_KEYS = {"batchnorm": {"analysis.": "batchnorm."}, "deepstate": {"analysis.": "deepstate."},
                "double_descent": {"rules.": "double_descent.rules."}, "muir": {"rules.": "muir.rules."}}


MULTI = ("logger",)  # config groups that take a list of choices, e.g. logger=[tensorboard,mlflow]


def renamed(overrides: list[str], command: str | None = None) -> list[str]:
    """``experiment=<old preset name>`` -> its current name; a key of ``command``'s config that moved
    (RENAMED_KEYS) -> where it is now; a value ``~/...`` (a path in the home folder, which Hydra's grammar
    cannot read and the shell leaves alone after ``key=``) -> the expanded path."""
    import os

    out = []
    for ov in overrides:
        for old, new in RENAMED_KEYS.get(command, {}).items():
            bare = ov.lstrip("+~")
            if bare.startswith(old):
                ov = ov[: len(ov) - len(bare)] + new + bare[len(old):]
        key, sep, value = ov.partition("=")
        if sep and key == "experiment" and value in RENAMED_PRESETS:
            ov = f"{key}={RENAMED_PRESETS[value]}"
        elif sep and (value == "~" or value.startswith("~/")):
            ov = f"{key}={os.path.expanduser(value)}"
        out.append(ov)
    return out


def conf_dir() -> Path:
    """The shipped config directory: dlx/conf in a wheel, ../conf next to the package in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise DlxError(f"dlx's config directory is missing (looked in"
                   f" {here / 'conf'} and {here.parent / 'conf'})")


CONFIG_PATH_ENV = "DLX_CONFIG_PATH"  # the user's config dirs (os.pathsep-separated), searched before conf/
RECORD = "# dlx config dirs: "  # the first line of a run's config.yaml when user config dirs composed it


def config_dirs() -> list[Path]:
    """The user's config directories, in the order they are searched (all before dlx's own conf/):
    ``DLX_CONFIG_PATH``, which ``--config-dir`` extends at the front. Kept in the environment so that
    everything this process starts (pool workers, SLURM jobs) composes the same way."""
    dirs: list[Path] = []
    for part in os.environ.get(CONFIG_PATH_ENV, "").split(os.pathsep):
        if not part.strip():
            continue
        path = Path(os.path.expanduser(part))
        if not path.is_dir():
            raise DlxError(f"{CONFIG_PATH_ENV} names {part}, which is not a directory")
        path = path.resolve()
        if path not in dirs and path != conf_dir():
            dirs.append(path)
    return dirs


def add_config_dir(path, where: str = "--config-dir", front: bool = True) -> Path:
    """Search ``path`` for configs before dlx's conf/ (in front of the dirs already given, or behind them
    with ``front=False``), for this process and every process it starts."""
    given = Path(os.path.expanduser(str(path)))
    if not given.is_dir():
        what = "is not a directory" if given.exists() else "does not exist"
        raise DlxError(f"{where} {path} {what}")
    given = given.resolve()
    others = [str(d) for d in config_dirs() if d != given]
    os.environ[CONFIG_PATH_ENV] = os.pathsep.join([str(given), *others] if front else [*others, str(given)])
    return given


def recorded_dirs(run_dir) -> list[str]:
    """The user config dirs a run was composed with, from the first line of its config.yaml."""
    try:
        with open(Path(run_dir) / "config.yaml", encoding="utf-8") as f:
            first = f.readline()
    except OSError:
        return []
    if not first.startswith(RECORD):
        return []
    import json

    try:
        dirs = json.loads(first[len(RECORD):])
    except ValueError:
        return []
    return [str(d) for d in dirs if isinstance(d, str)] if isinstance(dirs, list) else []


def adopt_recorded(run_dir) -> list[str]:
    """Re-compose ``run_dir`` as it was composed: its recorded config dirs join the search path behind any
    given now. Returns the recorded dirs that no longer exist (not added)."""
    gone = []
    for d in recorded_dirs(run_dir):
        if Path(d).is_dir():
            if Path(d).resolve() not in config_dirs():
                add_config_dir(d, front=False)
        else:
            gone.append(d)
    return gone


def import_dirs() -> list[Path]:
    """Where a model given by ``_target_`` is imported from, besides sys.path as it is: the current
    directory, then the folder holding each user config dir (conf/'s parent in the usual project layout)."""
    out: list[Path] = []
    for d in [Path.cwd(), *(c.parent for c in config_dirs())]:
        d = d.resolve()
        if d not in out:
            out.append(d)
    return out


def make_importable() -> None:
    """Append :func:`import_dirs` to sys.path (appended: they never shadow an installed package)."""
    import sys

    present = {os.path.abspath(p or os.curdir) for p in sys.path}
    for d in import_dirs():
        if str(d) not in present:
            sys.path.append(str(d))
            present.add(str(d))


def _search() -> list[Path]:
    """Every config directory, first match wins: the user's, then dlx's conf/."""
    return [*config_dirs(), conf_dir()]


def groups() -> list[str]:
    found = {p.name for p in conf_dir().iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    for d in config_dirs():  # a user dir's folder is a group when it holds a config
        found |= {p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
                  and any(p.glob("*.yaml"))}
    return sorted(found)


def choices(group: str) -> list[str]:
    """Options of a config group; files starting with '_' are shared fragments, not choices."""
    return sorted({p.stem for d in _search() if (d / group).is_dir() for p in (d / group).glob("*.yaml")
                   if not p.stem.startswith("_")})


def config_file(group: str, choice: str) -> Path | None:
    """The file ``group=choice`` composes: the first on the search path (a user's shadows dlx's)."""
    return next((d / group / f"{choice}.yaml" for d in _search() if (d / group / f"{choice}.yaml").is_file()),
                None)


def describe(group: str, choice: str) -> str:
    """The one-line description: the first comment line of the YAML file."""
    path = config_file(group, choice)
    for line in path.read_text().splitlines() if path is not None else []:
        if line.startswith("#") and not line.startswith("# @"):  # skip Hydra's '# @package' header
            return line.lstrip("#").strip()
    return ""


def _nearest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else ""


def _split(override: str) -> tuple[str, str | None]:
    key, sep, value = override.partition("=")
    return key.lstrip("+~"), (value if sep else None)


def tuned(overrides: list[str]) -> list[str]:
    """``+tune=<dlx tune run>/best.yaml`` (or the run directory) -> the overrides that run chose, in its
    place: later overrides still win. ``tune=true|false`` (a paper's reproduce) is ``tune.enabled``. Any other
    ``tune`` override is left as it is."""
    out = []
    for ov in overrides:
        key, value = _split(ov)
        if key == "tune" and not ov.startswith(("+", "~")) and str(value).lower() in ("true", "false"):
            out.append(f"tune.enabled={str(value).lower()}")
            continue
        if key != "tune" or not value or not (value.endswith((".yaml", ".yml")) or "/" in value
                                                or Path(value).is_dir()):
            out.append(ov)
            continue
        path = Path(value).expanduser()
        path = path / "best.yaml" if path.is_dir() else path
        import yaml

        try:
            chosen = yaml.safe_load(path.read_text())
        except (OSError, UnicodeDecodeError) as err:
            raise DlxError(f"{ov}: cannot read {path} ({getattr(err, 'strerror', None) or err}); give a dlx "
                           "tune run's best.yaml") from None
        except yaml.YAMLError:
            raise DlxError(f"{ov}: {path} is not YAML; give a dlx tune run's best.yaml") from None
        given = chosen.get("overrides") if isinstance(chosen, dict) else None
        if not isinstance(given, list) or not all(isinstance(o, str) for o in given):
            raise DlxError(f"{ov}: {path} has no list of overrides; give a dlx tune run's best.yaml")
        out += given
    return out


def search_expressions(overrides: list[str]) -> list[str]:
    """``tune.space.<key>=tag(log, interval(1e-4, 0.1))``: a search expression (the Hydra Optuna sweeper's
    syntax, which Hydra's compose would read as a sweep) is kept as a string for dlx tune to parse."""
    out = []
    for ov in overrides:
        key, value = _split(ov)
        if key.startswith("tune.space.") and value and not value.startswith(("'", '"')):
            ov = f"++{key}={quote(value)}"
        out.append(ov)
    return out


def _check_group_choices(overrides: list[str]) -> None:
    known = groups()
    for ov in overrides:
        key, value = _split(ov)
        if ov == "~experiment":  # drops the command's default preset
            continue
        if ov.startswith("~"):  # every other key is read by some part of dlx: deleting one can only break it
            raise DlxError(f"'{ov}' deletes a key dlx needs; set it to another value instead (see --cfg)")
        if value is None:
            raise DlxError(f"override '{ov}' is not KEY=VALUE (e.g. model=cnn5 or trainer.epochs=10)")
        if ov.startswith("+") and key not in known and not key.startswith("tune.space."):  # dlx tune's space
            raise DlxError(f"'{ov}' adds a key no part of dlx reads; set an existing key (see --cfg)")
        if key == "experiment" and value == "null":
            raise DlxError("to run without the default preset, give ~experiment (not experiment=null)")
        if key in known:
            opts = choices(key)
            listed = key in MULTI and value.startswith("[") and value.endswith("]")
            for v in [p.strip() for p in value[1:-1].split(",") if p.strip()] if listed else [value]:
                if v not in opts:
                    raise DlxError(f"unknown {key} '{v}'{_nearest(v, opts)} (choose from: {', '.join(opts)})")


def _leaf_keys(cfg, prefix: str = "") -> list[str]:
    from omegaconf import DictConfig

    keys = []
    for k in cfg.keys():
        path = f"{prefix}{k}"
        keys.append(path)
        v = cfg._get_node(k)
        if isinstance(v, DictConfig):
            keys.extend(_leaf_keys(v, path + "."))
    return keys


def _raw_compose(command: str, overrides: list[str]):
    """Hydra's composition. ``experiment=X`` on a command with no preset slot appends the preset (as
    ``+experiment=X`` would); a group choice given by ``_target_`` without a ``name`` is named after its
    file (run names and tables show it)."""
    from hydra.errors import ConfigCompositionException

    if not (conf_dir() / f"{command}.yaml").is_file():
        raise DlxError(f"no config for command '{command}'")
    try:
        cfg = _hydra_compose(command, overrides)
    except ConfigCompositionException as err:
        if "Could not override 'experiment'" not in str(err):
            raise
        overrides = [f"+{ov}" if _split(ov)[0] == "experiment" and not ov.startswith(("+", "~")) else ov
                     for ov in overrides]
        cfg = _hydra_compose(command, overrides)
    return cfg


def _hydra_compose(command: str, overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import DictConfig, open_dict

    dirs = config_dirs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3", job_name="dlx"):
        if dirs:  # Hydra's search path with the user's dirs in front of conf/ (the "main" entry)
            from hydra._internal.hydra import Hydra
            from hydra._internal.utils import create_config_search_path
            from hydra.core.config_search_path import SearchPathQuery

            path = create_config_search_path(str(conf_dir()))
            for d in dirs:
                path.prepend("dlx-user", str(d), anchor=SearchPathQuery(provider="main"))
            GlobalHydra.instance().clear()
            Hydra.create_main_hydra2(task_name="dlx", config_search_path=path)
        cfg = hydra_compose(config_name=command, overrides=list(overrides), return_hydra_config=True)
    picked = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
        for group, choice in picked.items():
            node = cfg.get(group) if "/" not in group and isinstance(choice, str) else None
            if isinstance(node, DictConfig) and "_target_" in node and "name" not in node:
                node["name"] = choice
    return cfg


def _check_types(cfg, base, overrides: list[str]) -> None:
    """Plain YAML configs carry no schema, so compare each overridden value with its default's type."""
    from omegaconf import OmegaConf

    for ov in overrides:
        key, _ = _split(ov)
        if key in groups() or ov.startswith(("+", "~")):
            continue
        old = OmegaConf.select(base, key, default=None)
        new = OmegaConf.select(cfg, key, default=None)
        if old is None or new is None:
            continue
        if isinstance(old, bool):
            ok = isinstance(new, bool)
        elif isinstance(old, int):
            ok = isinstance(new, int) and not isinstance(new, bool)
        elif isinstance(old, float):
            ok = isinstance(new, (int, float)) and not isinstance(new, bool)
        elif isinstance(old, str):
            ok = isinstance(new, (str, int, float))
        else:
            ok = True
        if not ok:
            raise DlxError(f"{key} expects {type(old).__name__}, got {new!r}")


_BASES: dict[tuple, object] = {}  # (search path, command, group overrides) -> Hydra's composition


def _base(command: str, group_only: list[str]):
    """Hydra's composition of ``command`` with its group overrides, composed once per process (a sweep
    composes every child, and each composition reads and merges the whole defaults tree: ~0.1 s)."""
    key = (tuple(str(d) for d in _search()), command, tuple(group_only))
    if key not in _BASES:
        _BASES[key] = _raw_compose(command, group_only)
    return _BASES[key]


def _assign(cfg, overrides: list[str]) -> bool:
    """Apply plain KEY=VALUE overrides to ``cfg`` as Hydra does after composing the defaults list (its
    parser for the values, then ``OmegaConf.update(..., merge=True)`` in struct mode). False when one is
    anything else (an add, a delete, a sweep) or fails: the full composition then decides and words the
    error."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    try:
        parsed = OverridesParser.create().parse_overrides(overrides=list(overrides))
        for ov in parsed:
            if ov.is_add() or ov.is_force_add() or ov.is_delete() or ov.is_sweep_override() \
                    or ov.package is not None:
                return False
            OmegaConf.update(cfg, ov.key_or_group, ov.value(), merge=True)
    except Exception:
        return False
    return True


def compose(command: str, overrides: list[str] | tuple[str, ...] = ()):
    """conf/<command>.yaml + groups + overrides -> a struct-mode DictConfig, or a one-line DlxError."""
    import copy

    from omegaconf import OmegaConf

    command = RENAMED_CONFIGS.get(command, command)
    overrides = renamed(tuned(list(overrides)), command)
    if command == "tune":
        overrides = search_expressions(overrides)
    _check_group_choices(overrides)
    group_only = [ov for ov in overrides if _split(ov)[0] in groups()]
    try:
        base = _base(command, group_only)
    except DlxError:
        raise
    except Exception as err:  # hydra's own message is multi-line; keep its first line
        raise DlxError(str(err).strip().splitlines()[0]) from None
    cfg = copy.deepcopy(base)
    OmegaConf.set_struct(cfg, True)
    if _assign(cfg, [ov for ov in overrides if ov not in group_only]):
        _check_types(cfg, base, overrides)
        return cfg
    try:
        cfg = _raw_compose(command, overrides)
    except Exception as err:
        msg = str(err)
        valid = _leaf_keys(base)
        for ov in overrides:
            key, _ = _split(ov)
            if ov.startswith(("+", "~")) or key in groups():
                continue
            if key == "tune.enabled" and "tune" not in base:
                shown = ov.replace("tune.enabled", "tune")
                raise DlxError(f"'{shown}' is for a paper: dlx reproduce <paper> "
                               "tune=true tunes the models it compares (dlx tune tunes one model)") from None
            if key not in valid:
                raise DlxError(f"unknown key '{key}'{_nearest(key, valid)}") from None
        raise DlxError(msg.strip().splitlines()[0]) from None
    _check_types(cfg, base, overrides)
    OmegaConf.set_struct(cfg, True)
    return cfg


def name_list(value, known, key: str, what: str = "name") -> list[str]:
    """A list of names from `known` (a bare name counts as a list of one), or one clear error naming
    the config key and the valid choices."""
    from omegaconf import ListConfig

    if isinstance(value, str):
        items = [value]
    elif isinstance(value, (list, tuple, ListConfig)):
        items = list(value)
    else:
        items = None
    if items is None or any(not isinstance(n, str) for n in items):
        raise DlxError(f"{key} must be a list of {what}s, got {value!r}")
    for n in items:
        if n not in known:
            raise DlxError(f"unknown {what} '{n}' in {key} (choose from: {', '.join(known)})")
    return items


def number(value, key: str, lo: float | None = None, hi: float | None = None, integer: bool = False,
           closed_hi: bool = True) -> float | int:
    """One number within [lo, hi] (hi open unless closed_hi), or one clear error naming the key."""
    import math

    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (not integer or float(value).is_integer())
    ok = ok and (lo is None or value >= lo) and (hi is None or (value <= hi if closed_hi else value < hi))
    if not ok:
        kind = "an integer" if integer else "a number"
        bounds = f" in [{lo}, {hi}{']' if closed_hi else ')'}" if hi is not None else \
            (f" >= {lo}" if lo is not None else "")
        raise DlxError(f"{key} must be {kind}{bounds}, got {value!r}")
    return int(value) if integer else float(value)


def numbers(node, table: dict, key: str) -> dict[str, float | int]:
    """The keys of ``table`` read from the config block ``node``, each a number within its bounds: ``table``
    maps a name to ``(lo, hi)`` or ``(lo, hi, "int")`` (None: unbounded). One DlxError naming ``key.<name>``
    (or every missing name) otherwise. Keys of ``node`` outside the table are not its business."""
    missing = [k for k in table if node is None or node.get(k) is None]
    if missing:
        raise DlxError(f"{key} needs {', '.join(missing)}")
    return {k: number(node.get(k), f"{key}.{k}", b[0], b[1], integer=b[2:] == ("int",))
            for k, b in table.items()}


def integers(value, key: str, lo: int | None = 0, allow_empty: bool = False) -> list[int]:
    """A list of integers, each at least ``lo`` (a bare number counts as a list of one), or one clear error
    naming the key."""
    from omegaconf import ListConfig

    items = list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]
    if not items and not allow_empty:
        raise DlxError(f"{key} must be a non-empty list of integers, got {value!r}")
    return [number(v, key, lo=lo, integer=True) for v in items]


def positive_floats(value, key: str) -> list[float]:
    """A non-empty list of finite positive numbers (a bare number counts as a list of one)."""
    import math

    from omegaconf import ListConfig

    items = list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]
    try:
        out = [float(v) for v in items if not isinstance(v, bool)]
    except (TypeError, ValueError):
        out = []
    if not out or len(out) != len(items) or any(not (v > 0 and math.isfinite(v)) for v in out):
        raise DlxError(f"{key} must be a non-empty list of positive numbers, got {value!r}")
    return out


def quote(text: str) -> str:
    """`text` as a single-quoted Hydra override string that parses back to exactly `text`: quotes are
    escaped, and so are the backslashes before a quote or at the end (Hydra's only escape rules)."""
    out = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", text)
    out = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, out)
    return f"'{out}'"


def to_yaml(cfg) -> str:
    """The resolved config as plain YAML; composed with user config dirs, a first comment line records them
    (a run's config.yaml: ``dlx eval``, ``dlx status`` and a resume re-compose with them)."""
    import json

    from omegaconf import OmegaConf

    dirs = config_dirs()
    head = f"{RECORD}{json.dumps([str(d) for d in dirs])}\n" if dirs else ""
    return head + OmegaConf.to_yaml(cfg, resolve=True)


def flatten(cfg, prefix: str = "") -> dict:
    """Nested config -> {'model.width': 64, ...}, lists as strings, for results tables."""
    from omegaconf import OmegaConf

    out = {}
    container = cfg if isinstance(cfg, dict) else OmegaConf.to_container(cfg, resolve=True)
    for k, v in container.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, path + "."))
        else:
            out[path] = str(v) if isinstance(v, list) else v
    return out
