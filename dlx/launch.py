"""The one run lifecycle. Every command that runs something (`dlx train`, `fit`, `forecast`, `sweep`,
`reproduce`, `reproduce all`, a negative control) opens a Run and hands it here with its composed config:

    launch(exp, cfg, run)
      -> a sweep experiment: dlx/sweep/driver.py run_sweep (its hooks: check, children, prepare; each child
         through dlx/sweep/child.py run_child -> its kind's run hook; finalize; plot)
      -> anything else: the experiment's run hook (a train run: dlx/train/lifecycle.py start -> fit -> finish)

under ``run.recording()``, the one place a failure or Ctrl-C is recorded in summary.json."""

from __future__ import annotations


def launch(exp, cfg, run):
    """Run the registered experiment ``exp`` (a dlx.registry.Experiment) with ``cfg`` into ``run``;
    returns what its run hook (or the sweep's finalize) returns. A claim's line out of its declared bounds
    is refused first: before anything is written, or recorded as the failure of a run already open."""
    with run.recording():
        exp.rules_of(cfg)
        if exp.sweep is not None:
            from dlx.sweep.driver import run_sweep

            return run_sweep(cfg, run, exp)
        return exp.run(cfg, run)


def launch_recorded(exp, cfg, run, say, what: str) -> dict:
    """``launch`` for a caller that goes on after a failure (`dlx reproduce all`, a negative control): the
    run's directory exists whatever happens, a failure is said in one line and recorded in its summary, not
    raised (Ctrl-C is). Returns the run's summary."""
    from dlx.runs import read_summary

    run.open()
    try:
        launch(exp, cfg, run)
    except KeyboardInterrupt:
        raise
    except Exception as err:
        say(f"{what}: failed: {' '.join(str(err).split())[:200]}")
    return read_summary(run.dir)
