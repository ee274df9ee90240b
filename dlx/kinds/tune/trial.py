"""One trial of a study: an ordinary train run (the sweep child's life: lease, status, resume, record) in
<tune run>/trials/NNNN, scored on the validation split. It never evaluates the test split: the trial's
trainer has eval_test off and writes no test predictions."""

from __future__ import annotations

import math
from pathlib import Path

# what every trial adds to the user's overrides (best.yaml leaves them out: they are how a trial runs)
TRIAL_OVERRIDES = {"train": ("trainer.eval_test=false", "trainer.progress=none"), "fit": ("eval_test=false",),
                   "forecast": ("trainer.eval_test=false", "trainer.progress=none")}


class Reporter:
    """A fit callback: each evaluation's validation metric goes to the trial (Optuna's pruners read it);
    a trial the pruner stops ends as 'pruned' at that epoch."""

    state_key = "TuneReporter"

    def __init__(self, trial, primary: str):
        self.trial, self.key = trial, f"val_{primary}"

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...

    def on_start(self, state) -> None: ...

    def on_batch_end(self, state) -> None: ...

    def on_epoch_end(self, state) -> None:
        if not state.evaluated or not state.history or self.key not in state.history[-1]:
            return
        value = float(state.history[-1][self.key])
        if math.isfinite(value):
            self.trial.report(value, state.epoch)
            if self.trial.should_prune():
                state.stop = "pruned"

    def on_end(self, state, status: str) -> None: ...


def run_trial(trial, run_dir: Path, base: list[str], primary: str, child: str = "train",
              config: str | None = None):
    """(TrialState, value) of ``trial`` run as a ``child`` run (train, or a baseline fit) in ``run_dir``,
    composed from ``config`` (the child's own, or the config of the paper whose model is tuned)."""
    from optuna.trial import TrialState

    from dlx.kinds.tune.space import overrides
    from dlx.registry import get
    from dlx.runs import read_summary
    from dlx.sweep.child import open_child

    where = Path(run_dir) / trial.user_attrs["dir"]
    # a fit in a paper's config (its fit children) has the paper's trainer block: test off there
    own = (config or child) == child or child != "fit"
    if child not in TRIAL_OVERRIDES:  # a paper's own kind of child says how it runs without the test split
        extra = tuple(get(child).hook("tune_trial_overrides")())
    else:
        extra = TRIAL_OVERRIDES[child] if own else TRIAL_OVERRIDES["train"]
    ovs = [*base, *overrides(trial.params), *extra]
    try:
        run, cfg = open_child(config or child, ovs, where, child)
        if run is not None:
            if child != "fit":  # epochs to report to a pruner; a fit has one evaluation
                run.callbacks.append(Reporter(trial, primary))
            with run.recording():
                get(child).run(cfg, run)
    except KeyboardInterrupt:
        raise
    except Exception:  # recorded in the trial's summary.json by run.recording()
        pass
    summary = read_summary(where)
    status = summary.get("status")
    if status == "interrupted":  # Ctrl-C: the trial stays running in the study; a resume continues it
        raise KeyboardInterrupt
    if status == "pruned":
        return TrialState.PRUNED, None
    value = (summary.get("metrics") or {}).get(f"val_{primary}")
    if status != "completed" or not isinstance(value, (int, float)) or not math.isfinite(value):
        return TrialState.FAIL, None
    return TrialState.COMPLETE, float(value)
