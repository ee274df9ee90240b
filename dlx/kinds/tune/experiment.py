"""`dlx tune`: search a train run's settings with Optuna on the validation split, N trials, each an
ordinary train run; write trials.csv, best.yaml (the chosen overrides), importances.csv and the figures.

The objective is the task's primary metric on the validation split (its direction from the task); a data
set without one holds out tune.val_fraction of its training split (data.val_fraction, seeded, stratified
where the data set stratifies). No trial evaluates the test split. The study is in the run directory, so
the same `dlx tune ... --name N` resumes it (the trials already done are kept), and tune.workers > 1 or a
second invocation on the same directory work on it in parallel, each trial exactly once: launcher=local
runs tune.workers processes here, launcher=slurm a SLURM array of tune.workers jobs on the same study
(submitit; its files in the run directory's .submitit).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from dlx.errors import DlxError
from dlx.runs import Run, write_csv

SAMPLERS = ("tpe", "random")
# what a trial is: a train run of ``model``, a baseline fit of ``baseline``, or a forecast run of ``model``
CHILDREN = ("train", "fit", "forecast")
PRUNERS = ("none", "median", "halving")
LAUNCHERS = ("inline", "local", "slurm")  # inline: one process, whatever tune.workers says


def settings_of(cfg) -> dict:
    """tune.* checked: a bad value is one line, before anything is written."""
    from dlx.config import number

    t = cfg.get("tune") or {}
    out = {"trials": int(number(t.get("trials"), "tune.trials", lo=1, integer=True)),
           "workers": int(number(t.get("workers", 1), "tune.workers", lo=1, integer=True)),
           "seed": int(number(t.get("seed", 0), "tune.seed", lo=0, integer=True)),
           "startup": int(number(t.get("startup", 10), "tune.startup", lo=1, integer=True)),
           "val_fraction": float(number(t.get("val_fraction", 0.2), "tune.val_fraction", lo=0.0, hi=1.0)),
           "sampler": str(t.get("sampler", "tpe")), "pruner": str(t.get("pruner", "none")),
           "child": str(t.get("child", "train"))}
    if out["child"] not in CHILDREN and trial_kind(out["child"]) is None:
        raise DlxError(f"tune.child must be one of {', '.join(CHILDREN)}, got {out['child']!r}")
    out["config"] = str(t.get("config") or out["child"])  # a paper's config when the paper tunes its models
    if out["sampler"] not in SAMPLERS:
        raise DlxError(f"tune.sampler must be one of {', '.join(SAMPLERS)}, got {out['sampler']!r}")
    if out["pruner"] not in PRUNERS:
        raise DlxError(f"tune.pruner must be one of {', '.join(PRUNERS)}, got {out['pruner']!r}")
    if not 0 < out["val_fraction"] < 1:
        raise DlxError(f"tune.val_fraction must be in (0, 1), got {out['val_fraction']}")
    launcher = cfg.get("launcher") or {"name": "local"}
    out["launcher"] = str(launcher.get("name"))
    if out["launcher"] not in LAUNCHERS:
        raise DlxError(f"dlx tune runs its trials with launcher={'|'.join(LAUNCHERS)}, "
                       f"got {out['launcher']!r}")
    if out["launcher"] == "slurm" and launcher.get("detach"):
        raise DlxError("dlx tune waits for its SLURM jobs (launcher.detach is for sweeps); a killed dlx tune "
                       "resumes its study when run again with the same --name")
    return out


def trial_kind(child: str):
    """The registry record of a paper's own kind of child run that can be a trial (a MUiR child): one with
    the hooks ``tune_objective(cfg) -> (primary, higher_is_better)``, ``tune_validation(cfg, overrides,
    fraction) -> (overrides, validation rows)`` and ``tune_trial_overrides() -> [overrides]`` (the test
    split off); None for any other name."""
    from dlx.registry import get

    try:
        kind = get(child)
    except DlxError:
        return None
    return kind if kind.hook("tune_objective") is not None else None


def tuned_name(cfg, child: str) -> str:
    """The searched model's name: ``model`` for train trials, ``baseline`` for fit trials, the space file
    for a paper's own kind of child."""
    if child not in CHILDREN:
        return str((cfg.get("tune") or {}).get("space_file") or child)
    return str((cfg.get("baseline") if child == "fit" else cfg.get("model") or {}).get("name"))


def space_of(cfg, child: str = "train") -> dict[str, str]:
    """tune.space, or the searched model's default space conf/tune/<name>.yaml (first on the config path)."""
    from omegaconf import OmegaConf

    from dlx.config import config_file
    from dlx.kinds.tune.space import flat

    given = (cfg.get("tune") or {}).get("space")
    if given:
        return flat(OmegaConf.to_container(given))
    own = (cfg.get("tune") or {}).get("space_file")
    name = own or tuned_name(cfg, child)
    path = config_file("tune", name)
    if path is None and own:
        raise DlxError(f"tune.space_file={own}: there is no conf/tune/{own}.yaml")
    if path is None:
        what = "baseline" if child == "fit" else "model"
        raise DlxError(f"{what} '{name}' has no default search space (conf/tune/{name}.yaml): give one, e.g. "
                       "tune.space.optimizer.lr='tag(log, interval(1e-4, 0.1))'")
    return flat(OmegaConf.to_container(OmegaConf.load(path)))


def base_overrides(run: Run) -> list[str]:
    """The user's overrides a trial starts from (tune.* are the search's own; launcher.* say where the
    trials run, not how one trains)."""
    given = list(run.config[1]) if run.config else []
    return [o for o in given if o.lstrip("+~").split("=", 1)[0].split(".")[0] not in ("tune", "launcher")]


def with_validation(cfg, base: list[str], fraction: float, config: str = "train") -> tuple[list[str], int]:
    """The overrides that give the trials a validation split (``data.val_fraction`` when the data has
    none), and its size; refused when the data cannot carve one."""
    from dlx.config import compose
    from dlx.data import build_data

    data = build_data(cfg.data, device="cpu")
    if data.val is not None:
        return base, len(data.val)
    if "val_windows" in cfg.data:  # a panel: the same rolling windows, one test span earlier
        carved = [*base, "data.val_windows=true"]
        data = build_data(compose(config, carved).data, device="cpu")
        return carved, len(data.val)
    if "val_fraction" not in cfg.data:
        raise DlxError(f"data '{cfg.data.name}' has no validation split and cannot hold one out "
                       "(data.val_fraction): dlx tune never scores on the test split")
    carved = [*base, f"data.val_fraction={fraction}"]
    try:
        data = build_data(compose(config, carved).data, device="cpu")
    except DlxError as err:
        raise DlxError(f"data '{cfg.data.name}' has no validation split and cannot hold one out ({err}); "
                       "dlx tune never scores on the test split") from None
    if data.val is None or len(data.val) == 0:
        raise DlxError(f"data.val_fraction={fraction} leaves data '{cfg.data.name}' no validation rows")
    return carved, len(data.val)


def run(cfg, run: Run):
    from dlx.kinds.tune.space import distributions
    from dlx.tasks.registry import TASKS, build_task

    settings = settings_of(cfg)
    child = settings["child"]
    space = space_of(cfg, child)
    distributions(space)  # a bad expression is refused before anything is written
    if child == "train" and cfg.trainer.get("strategy", "none") != "none":
        raise DlxError("dlx tune runs each trial as a one-process train run: leave trainer.strategy=none")
    given = base_overrides(run)
    if child in CHILDREN:
        task = TASKS.get(cfg.task.name) or type(build_task(cfg.task))
        base, n_val = with_validation(cfg, given, settings["val_fraction"], settings["config"])
        primary, higher = task.primary, bool(task.higher_is_better)
    else:  # a paper's own kind of child: the paper says what it is scored on and where its validation is
        kind = trial_kind(child)
        primary, higher = kind.hook("tune_objective")(cfg)
        base, n_val = kind.hook("tune_validation")(cfg, given, settings["val_fraction"])
    run.summary("running", metric=f"val_{primary}", higher_is_better=higher, trials=settings["trials"],
                space=space, val_rows=n_val, child=child, model=tuned_name(cfg, child),
                data=(cfg.get("data") or {}).get("name"))
    t0 = time.time()
    _work(run.dir, base, space, settings, higher, primary, cfg.get("launcher"))
    df, best = results(run.dir, settings, space, given, primary, higher)
    write_csv(run.path("trials.csv"), df)
    write_best(run.path("best.yaml"), best, settings, run)
    importances(run.dir, higher, settings)
    plot(run.dir)
    states = df["state"].value_counts().to_dict()
    run.summary("completed", best_value=best["value"], best_trial=best["trial"],
                best_overrides=best["chosen"], best_params=best["params"],
                completed=int(states.get("complete", 0)),
                pruned=int(states.get("pruned", 0)), failed=int(states.get("failed", 0)),
                tune_wall_s=round(time.time() - t0, 1))
    return df.drop(columns=["dir"])  # the terminal's table; trials.csv keeps each trial's directory


def _work(run_dir: Path, base, space, settings, higher: bool, primary: str, launcher=None) -> None:
    """The trials: here (tune.workers=1, launcher=inline), in a spawn pool of tune.workers processes
    sharing the study, each with its share of the cores (launcher=local), or as tune.workers SLURM array
    jobs sharing it (launcher=slurm)."""
    from dlx.kinds.tune.study import work

    workers = min(settings["workers"], settings["trials"])
    args = (str(run_dir), base, space, settings, higher, primary)
    if settings["launcher"] == "slurm":
        _on_slurm(run_dir, args, workers, launcher)
        return
    if workers == 1 or settings["launcher"] == "inline":
        work(*args)
        return
    from concurrent.futures import ProcessPoolExecutor, wait
    from multiprocessing import get_context

    from dlx.sweep.execute import _stop_pool, warm_up
    from dlx.threads import free_cores
    from dlx.train.interrupt import working

    share = max(1, free_cores()[0] // workers)
    spawn = get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=spawn, initializer=warm_up) as pool:
        pending = {pool.submit(working, work, *args, w, share): w for w in range(workers)}
        try:
            wait(pending)
        except KeyboardInterrupt:
            _stop_pool(pool, pending)
            raise
        for f in pending:
            err = f.exception()
            if isinstance(err, KeyboardInterrupt):
                raise KeyboardInterrupt
            if err is not None:
                raise err


def _on_slurm(run_dir: Path, args: tuple, workers: int, launcher) -> None:
    """tune.workers array jobs, each the tuning loop on the shared study with launcher.cpus_per_task
    threads; waits for all of them. A job that dies mid-trial leaves it running in the study: the next
    process that asks for a trial finds it stale and queues it again."""
    from dlx.kinds.tune.study import work
    from dlx.sweep.slurm import executor

    ex = executor(run_dir, launcher)
    cpus = int(launcher.get("cpus_per_task", 4))
    columns = [[a] * workers for a in args]
    jobs = ex.map_array(work, *columns, list(range(workers)), [cpus] * workers)
    failed = []
    for job in jobs:
        try:
            job.result()
        except Exception as err:  # submitit's error carries the job's traceback: the log has it
            failed.append(f"job {job.job_id} ({type(err).__name__})")
    if failed:
        raise DlxError(f"tuning jobs failed: {', '.join(failed)}; their logs are in "
                       f"{Path(run_dir) / '.submitit'} - run the same command again to resume the study")


def results(run_dir: Path, settings: dict, space: dict, base: list[str], primary: str, higher: bool):
    """(trials table, best) from the study: a row per trial (number, state, validation metric,
    parameters, seconds, directory); the best completed trial's values after the user's overrides
    ``base`` (not the validation hold-out: a run trained with them uses its whole training split)."""
    import pandas as pd
    from optuna.trial import TrialState

    from dlx.kinds.tune.space import overrides
    from dlx.kinds.tune.study import open_study

    study = open_study(run_dir, higher, settings)
    names = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
             TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}
    rows = []
    for t in study.get_trials(deepcopy=False):
        state = names.get(t.state, str(t.state))
        if t.state == TrialState.FAIL and not t.user_attrs.get("ran"):
            state = "restarted"  # its process died; its parameters ran again as a later trial
        rows.append({"trial": t.number, "state": state, f"val_{primary}": t.value,
                     **{k: t.params.get(k) for k in space}, "seconds": t.user_attrs.get("seconds"),
                     "dir": t.user_attrs.get("dir")})
    df = pd.DataFrame(rows)
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not done:
        raise DlxError(f"no trial completed (see {Path(run_dir) / 'trials'}/*/summary.json)")
    best = study.best_trial
    chosen = overrides(best.params)
    keys = {o.split("=", 1)[0] for o in chosen}
    kept = [o for o in base if o.lstrip("+~").split("=", 1)[0] not in keys]
    return df, {"value": float(best.value), "trial": best.number, "chosen": chosen,
                "overrides": [*kept, *chosen], "metric": f"val_{primary}", "params": dict(best.params)}


def write_best(path: Path, best: dict, settings: dict, run: Run) -> None:
    """best.yaml: the overrides to train with (the user's, then the chosen values), and how they were
    found; `dlx train +tune=<this file>` composes them."""
    from dlx.config import quote
    from dlx.files import write_text

    given = " ".join(quote(o) if " " in o else o for o in (run.config[1] if run.config else []))
    lines = [f"# dlx tune: the best of {settings['trials']} trials ({settings['sampler']}, seed "
             f"{settings['seed']}) on the validation split",
             f"# found by: dlx tune {given} --name {run.dir.name}",
             f"# use it: dlx {settings['child']} +tune={path}",
             f"metric: {best['metric']}", f"value: {best['value']!r}", f"trial: {best['trial']}",
             f"trials: {settings['trials']}", "overrides:"]
    lines += [f"  - {json.dumps(o)}" for o in best["overrides"]]  # a JSON string is a YAML string
    write_text(path, "\n".join(lines) + "\n")


def importances(run_dir: Path, higher: bool, settings: dict) -> None:
    """importances.csv: Optuna's fANOVA importance of each parameter (needs two completed trials and a
    parameter that varied)."""
    import optuna
    import pandas as pd
    from optuna.trial import TrialState

    from dlx.kinds.tune.study import open_study

    study = open_study(run_dir, higher, settings)
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    try:
        found = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=settings["seed"])) \
            if len(done) >= 2 else {}
    except (RuntimeError, ValueError):  # every completed trial has the same value: nothing to attribute
        found = {}
    write_csv(Path(run_dir) / "importances.csv",
              pd.DataFrame({"param": list(found), "importance": [float(v) for v in found.values()]}))


def plot(run_dir: Path) -> list[Path]:
    from dlx.kinds.tune.plots import draw

    return draw(Path(run_dir))


def headline(summary: dict) -> str | None:
    """'tune: best val_error 0.031 (trial 7 of 12): optimizer.lr=... model.width=...'."""
    if summary.get("best_value") is None:
        return None
    from dlx.tables import fmt_metric

    def short(v) -> str:
        return f"{v:.4g}" if isinstance(v, float) and math.isfinite(v) else str(v)

    metric = str(summary.get("metric"))
    params = summary.get("best_params") or {}
    chosen = " ".join(f"{k}={short(v)}" for k, v in params.items()) or \
        " ".join(summary.get("best_overrides") or [])
    return (f"tune: best {metric} {fmt_metric(metric.removeprefix('val_'), summary['best_value'])} at trial "
            f"#{summary.get('best_trial')} of {summary.get('trials')} ({summary.get('completed')} completed, "
            f"{summary.get('pruned')} pruned, {summary.get('failed')} failed): {chosen}; use it: "
            f"dlx {summary.get('child') or 'train'} +tune=<run directory>/best.yaml")
