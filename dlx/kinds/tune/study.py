"""The study of a `dlx tune` run and the loop every tuning process runs on it.

The study is Optuna's journal file storage in the run directory (``study.journal``): any number of
processes — a local pool's workers, a second `dlx tune --name` on the same directory — share it. Asking
for a trial happens under a lease (``.ask.lease``), after counting the trials already used, so a budget of
N trials runs exactly N however many processes work on it. A trial that was running in a process that
died (kill -9, a lost node) is found under that lease, marked failed and queued again with its directory,
so it resumes from its checkpoint and does not count against the budget.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

STUDY_FILE = "study.journal"
ASK_LEASE = ".ask.lease"
STUDY_NAME = "dlx"


def open_study(run_dir: Path, higher_is_better: bool, settings: dict, worker: int = 0):
    """The run's study (created on first use). The sampler's seed is tune.seed plus the trials already in
    the study and the worker's index, so a resumed or parallel process does not replay the first
    process's random draws."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(Path(run_dir) / STUDY_FILE)))
    direction = "maximize" if higher_is_better else "minimize"
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction=direction,
                                load_if_exists=True)
    seed = int(settings["seed"]) + len(study.get_trials(deepcopy=False)) + 7919 * worker
    study.sampler = _sampler(settings["sampler"], seed, int(settings.get("startup", 10)))
    study.pruner = _pruner(settings["pruner"])
    return study


def _sampler(name: str, seed: int, startup: int = 10):
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def _pruner(name: str):
    import optuna

    if name == "median":  # a trial below the median of the others at the same evaluation stops there
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def owner() -> dict:
    from dlx.locks import Lease

    return Lease(Path(".")).record()


def counted(trial) -> bool:
    """A trial that used budget: finished (complete, pruned), failed after running, or running now."""
    from optuna.trial import TrialState

    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
        return True
    return trial.state == TrialState.FAIL and bool(trial.user_attrs.get("ran"))


def stale(trial, run_dir: Path) -> bool:
    """A running trial whose process is gone: its recorded owner is dead (same host: the pid; another
    host: its record expired) and nobody holds its run directory's lease."""
    from dlx.locks import alive, read

    who = trial.user_attrs.get("owner") or {}
    if who and who.get("host") == socket.gethostname():
        return not alive(who)
    held = read(Path(run_dir) / str(trial.user_attrs.get("dir", "")))
    return not (held and alive(held)) and not (who and alive(who))


def recover(study, run_dir: Path) -> list[int]:
    """Fail each stale running trial and queue its parameters again with its directory (it resumes from
    its checkpoint there); returns their numbers. Called under the ask lease."""
    from optuna.trial import TrialState

    found = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if stale(t, run_dir):
            study.tell(t.number, state=TrialState.FAIL)
            study.enqueue_trial(t.params, user_attrs={"dir": t.user_attrs.get("dir"), "retry_of": t.number})
            found.append(t.number)
    return found


def next_trial(study, run_dir: Path, budget: int, space: dict):
    """Under the ask lease: recover dead trials, then a new trial (with its directory and owner recorded),
    or None when the budget is used."""
    from dlx.locks import Lease

    lease = Lease(Path(run_dir), ASK_LEASE).wait(poll=0.05)
    try:
        recover(study, run_dir)
        if sum(counted(t) for t in study.get_trials(deepcopy=False)) >= budget:
            return None
        trial = study.ask(space)
        trial.set_user_attr("owner", owner())
        if not trial.user_attrs.get("dir"):
            trial.set_user_attr("dir", f"trials/{trial.number:04d}")
        return trial
    finally:
        lease.release()


def work(run_dir: str, base: list[str], space_text: dict, settings: dict, higher_is_better: bool,
         primary: str, worker: int = 0, threads: int | None = None) -> int:
    """One tuning process: ask, run the trial as a train run, tell; until the budget is used. Returns the
    trials it ran. A process-pool entry point (plain arguments)."""
    import os

    from dlx import threads as thread_rule
    from dlx.kinds.tune.space import distributions
    from dlx.kinds.tune.trial import run_trial

    if threads:  # this worker's share of the cores
        os.environ[thread_rule.CAP_ENV] = str(threads)
        thread_rule.apply(threads)
    run_dir = Path(run_dir)
    study = open_study(run_dir, higher_is_better, settings, worker)
    space = distributions(space_text)
    ran = 0
    while (trial := next_trial(study, run_dir, int(settings["trials"]), space)) is not None:
        t0 = time.time()
        state, value = run_trial(trial, run_dir, base, primary, settings.get("child", "train"),
                                 settings.get("config"))
        trial.set_user_attr("ran", True)
        trial.set_user_attr("seconds", round(time.time() - t0, 3))
        study.tell(trial, value, state=state)
        ran += 1
        say(trial, state, value, primary, int(settings["trials"]), time.time() - t0)
    return ran


def say(trial, state, value, primary: str, budget: int, seconds: float) -> None:
    """One line per finished trial on stderr (the trials' own progress lines are off)."""
    import sys

    from dlx.tables import fmt_metric

    shown = fmt_metric(primary, value) if value is not None else state.name.lower()
    params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
    print(f"tune: trial #{trial.number} (budget {budget}): val {primary} {shown} ({params}) {seconds:.1f} s",
          file=sys.stderr, flush=True)
