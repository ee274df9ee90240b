"""Experiment trackers beside the run directory: TensorBoard and MLflow, chosen with the `logger` config
group (`logger=tensorboard`, `logger=mlflow`, `logger=[tensorboard,mlflow]`). The run directory (csv) is
always written: it is the contract; trackers mirror it. A tracker that fails (a locked database, a full
disk) never fails the run: it prints one warning line, is recorded in summary.json (`tracking_errors`)
and is dropped for the rest of the run."""

from __future__ import annotations

import sys

from dlx.errors import DlxError

EXTRA = "pip install -e '.[track]'"
KNOWN = ("csv", "tensorboard", "mlflow")


class Tracker:
    """What a run tells a tracker; every method may raise (the Trackers wrapper isolates failures)."""

    name = "tracker"

    def params(self, flat: dict) -> None: ...

    def metrics(self, row: dict, step: int) -> None: ...

    def finish(self, summary: dict, figures: list) -> None: ...


class Trackers:
    """The trackers of one run, each failure turned into a warning and a note in the run's summary."""

    def __init__(self, trackers: list[Tracker], run):
        self.items, self.run = trackers, run

    def __bool__(self) -> bool:
        return bool(self.items)

    def _each(self, method: str, *args) -> None:
        for t in list(self.items):
            try:
                getattr(t, method)(*args)
            except Exception as err:  # a tracker never fails the run
                msg = f"{t.name}: {type(err).__name__}: {' '.join(str(err).split())[:300]}"
                print(f"dlx: warning: tracking with {msg}; the run directory is unaffected", file=sys.stderr)
                self.run.extra.setdefault("tracking_errors", []).append(msg)
                self.items.remove(t)

    def params(self, flat: dict) -> None:
        self._each("params", flat)

    def metrics(self, row: dict, step: int) -> None:
        self._each("metrics", row, step)

    def finish(self, summary: dict, figures: list) -> None:
        self._each("finish", summary, figures)


def selected(cfg) -> list[str]:
    """The trackers a config asks for (the `logger` group; csv is the run directory itself)."""
    names = list((cfg.get("logger") or {}).keys()) if hasattr(cfg, "get") else []
    return [n for n in names if n != "csv"]


def check(cfg) -> None:
    """Before the run starts: each selected tracker's package is installed (else one line, exit 2)."""
    for name in selected(cfg):
        module = {"tensorboard": "tensorboard", "mlflow": "mlflow"}.get(name)
        if module is None:
            raise DlxError(f"unknown logger '{name}' (choose from: {', '.join(KNOWN)})")
        try:
            __import__(module)
        except ImportError:
            raise DlxError(f"logger={name} needs the tracking extra: {EXTRA}") from None


def start(cfg, run, parent: str | None = None) -> Trackers:
    """The trackers of ``run`` (already opened): TensorBoard events under the run directory, an MLflow run
    (nested under the sweep's run when ``parent`` is given). A tracker that cannot start is a warning."""
    from dlx.config import flatten

    made: list[Tracker] = []
    box = Trackers(made, run)
    for name in selected(cfg):
        try:
            if name == "tensorboard":
                from dlx.tracking.tensorboard import TensorBoard

                made.append(TensorBoard(run.dir, cfg.logger.tensorboard))
            elif name == "mlflow":
                from dlx.tracking.mlflow import MLflow

                made.append(MLflow(run, cfg.logger.mlflow, parent))
        except Exception as err:
            msg = " ".join(f"{type(err).__name__}: {err}".split())[:300]  # one line, however long the error
            print(f"dlx: warning: logger={name} could not start ({msg}); the run directory is unaffected",
                  file=sys.stderr)
            run.extra.setdefault("tracking_errors", []).append(f"{name}: {msg}")
    box.params(flatten(cfg))
    return box
