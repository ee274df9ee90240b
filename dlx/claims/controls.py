"""Negative controls: the same pipeline on data that keeps everything of the default but the premise the
paper's method exploits (each paper's record names the overrides: ``Experiment.control``).

``dlx reproduce <paper> --controls`` runs the default into ``<run>/`` and the control into
``<run>/control/`` (a run directory of its own: resumable, with its own summary.json), then writes each
claim's verdict on the control into the default's summary.json (``claims[*].control``). A claim that holds
on both is "built in": the data, not the method, made it hold (claims.py counts it apart).
"""

from __future__ import annotations

from pathlib import Path

CONTROL_DIR = "control"


def has_control(exp) -> bool:
    return bool(exp.control)


def control_overrides(exp, overrides, run_dir: Path | None = None) -> list[str]:
    """The control's overrides: the default's (the user's) plus the paper's control switches. A default
    that tuned (tune=true) hands the control the settings it chose: the control runs what the default ran,
    not a tuning of its own on data without the premise."""
    from dlx.sweep.tuning import recorded

    given = list(overrides or [])
    tuned = recorded(run_dir) if run_dir is not None else []
    if tuned:
        given = [o for o in given if o.split("=", 1)[0].lstrip("+~") not in ("tune", "tune.enabled")]
    return [*given, *tuned, *exp.control]


def run_control(exp, run_dir: Path, overrides, say) -> dict:
    """Run (or resume) the control of ``exp`` into ``run_dir/control``; returns its summary. A finished
    control is not re-run. Its failure is recorded in its own summary, not raised."""
    from dlx.config import compose
    from dlx.launch import launch_recorded
    from dlx.runs import Run, read_summary

    d = Path(run_dir) / CONTROL_DIR
    if read_summary(d).get("status") == "completed":
        return read_summary(d)
    ovs = control_overrides(exp, overrides, run_dir)
    cfg = compose(exp.name, ovs)
    run = Run(d, exp.name, config=(cfg, ovs), exclusive=exp.sweep is None,
              on_open=lambda p: say(f"{exp.name} control ({exp.control_note or ' '.join(exp.control)}): {p}"))
    # the default's verdicts stand if the control fails; the control's summary says why
    return launch_recorded(exp, cfg, run, say, f"{exp.name} control")


def merge(run_dir: Path, exp=None) -> dict:
    """Write the control's verdict beside each of the default's claims (``control``: holds | fails |
    inconclusive | not shown; "not shown" with a reason when the control did not finish or lacks the id),
    and the control's directory and overrides into the default's summary.json. Idempotent."""
    from dlx.runs import read_summary, write_json

    run_dir = Path(run_dir)
    summary = read_summary(run_dir)
    ctrl = read_summary(run_dir / CONTROL_DIR)
    if not summary or not ctrl:
        return summary
    done = ctrl.get("status") == "completed"
    by_id = {c.get("id"): c for c in ctrl.get("claims") or []} if done else {}
    for c in summary.get("claims") or []:
        other = by_id.get(c.get("id"))
        c["control"] = other.get("verdict", "not shown") if other else "not shown"
        if other is not None and other.get("ci") is not None:
            c["control_ci"] = other["ci"]
        if other is not None:
            c["control_measured"] = other.get("measured")
        elif not done:
            c["control_why"] = f"the control run is {ctrl.get('status')}"
    summary["control"] = {"dir": CONTROL_DIR, "status": ctrl.get("status"),
                          "overrides": list(exp.control) if exp is not None else None,
                          "note": exp.control_note if exp is not None else None}
    write_json(run_dir / "summary.json", summary)
    return summary
