"""Run directories: naming, atomic writes, config snapshot, summary.json and status.

A crash or kill never leaves a half-written file: everything goes to a temporary file in the same
directory and is moved into place with os.replace.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from dlx.errors import DlxError

# the atomic writes live in dlx/files.py (the leases below runs.py use them too); runs re-exports them
from dlx.files import (  # noqa: F401
    FILE_MODE,
    _atomic,
    save_torch,
    write_bytes,
    write_csv,
    write_json,
    write_text,
)

STATUSES = ("running", "completed", "diverged", "failed", "interrupted", "pruned")  # pruned: a dlx tune trial


def read_json(path) -> dict:
    """A JSON object from ``path``; missing, damaged or not an object is one clear DlxError."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DlxError(f"{path} not found") from None
    except json.JSONDecodeError as err:
        raise DlxError(f"{path} is not valid JSON ({err.msg.removesuffix(' at')}, line {err.lineno} column "
                       f"{err.colno}: damaged or truncated)") from None
    except (UnicodeDecodeError, IsADirectoryError):
        raise DlxError(f"{path} is not a JSON text file") from None
    if not isinstance(data, dict):
        raise DlxError(f"{path} holds a JSON {type(data).__name__}, not the object dlx writes "
                       "(damaged or not a dlx file)")
    return data


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def env_info(device: str | None = None) -> dict:
    import dlx

    info = {"dlx": dlx.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "device": device, "git": git_sha()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["threads"] = torch.get_num_threads()
        if device and device.startswith("cuda"):
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def default_name(*parts: str) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return "_".join([stamp, *[str(p) for p in parts if p]])


MAX_NAME = 200  # bytes: file systems allow 255 in one component; leave room for suffixes


def check_name(name: str) -> str:
    """A run name is one path component: no separators, no '.' or '..', nothing hidden."""
    name = str(name)
    if len(name.encode()) > MAX_NAME:
        raise DlxError(f"--name is {len(name.encode())} bytes long; a run name has at most {MAX_NAME} "
                       "(it is a directory name, and sweeps add suffixes)")
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
        raise DlxError(f"--name must be a plain directory name (no '/', not '.' or '..', not hidden), "
                       f"got {name!r}")
    return name


def resolve_dir(out: str | os.PathLike, command: str, name: str, reuse: bool = False) -> Path:
    """<out>/<command>/<name>; an existing name gets a numeric suffix unless the run is reused (resume).
    Nothing is created here: a run's directory appears with its first write (Run.open)."""
    base = Path(out) / command
    path = base / check_name(name)
    if path.exists() and not reuse:
        i = 1
        while (base / f"{name}-{i}").exists():
            i += 1
        path = base / f"{name}-{i}"
    if path.exists() and not path.is_dir():
        raise DlxError(f"cannot use {path} as a run directory: it is a file")
    return path


def _create_fresh(path: Path) -> Path:
    """Create ``path`` or, when another process took that name first (two runs started in the same
    second), the first free ``<name>-<i>``: mkdir is atomic, so two processes never share one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    base, i = path, 0
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            i += 1
            path = base.with_name(f"{base.name}-{i}")


@dataclass
class Run:
    """A run directory plus the bookkeeping every command writes into it."""

    dir: Path
    kind: str
    started: str = field(default_factory=now_iso)
    t0: float = field(default_factory=time.time)
    extra: dict = field(default_factory=dict)

    new_invocation: bool = True
    writes: bool = True  # False on DDP ranks other than 0: summary() computes but never writes
    metrics: dict = field(default_factory=dict)  # the last metrics written; kept when a run stops early
    config: tuple | None = None  # (cfg, overrides) to save as config.yaml/overrides.yaml when the run opens
    on_open: object = None  # called with the directory when it is first created (the CLI announces it)
    opened: bool = False
    env: dict = field(default_factory=dict)  # added to env_info() in summary.json (e.g. the thread rule)
    trackers: object = None  # dlx.tracking.Trackers when the config selects TensorBoard or MLflow
    closed: bool = False
    exclusive: bool = True  # lease the directory (dlx/locks.py): a second writer is refused; sweeps share
    lease: object = None
    fresh: bool = False  # a new directory is wanted (an automatic name): a taken one moves on to <name>-<i>
    callbacks: list = field(default_factory=list)  # extra fit callbacks (a tune trial's reporter)

    def __post_init__(self) -> None:
        # a resumed run: started/wall_s describe this invocation; the first start and the count carry over
        old = read_summary(self.dir)
        if old and self.new_invocation:
            self.extra.setdefault("first_started", old.get("first_started") or old.get("started"))
            self.extra.setdefault("invocations", _count(old) + 1)

    @classmethod
    def reopen(cls, run_dir: Path, kind: str, **extra) -> Run:
        """The invocation that wrote run_dir's summary, continued elsewhere (a detached sweep finished by
        `dlx status`, a child whose worker died): keeps its started, first_started and invocations."""
        old = read_summary(run_dir)
        keep = {k: old[k] for k in ("first_started", "invocations") if k in old}
        return cls(Path(run_dir), kind, started=old.get("started") or now_iso(), extra={**keep, **extra},
                   new_invocation=False, opened=True)

    def open(self) -> Run:
        """Create the directory and save the pending config: the first write of a run does this, so a
        config refused before then leaves no directory behind."""
        if self.opened or not self.writes:
            return self
        try:
            if self.fresh:
                self.dir = _create_fresh(self.dir)
            else:
                self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            if err.errno == errno.ENAMETOOLONG:
                raise DlxError(f"cannot create run directory {self.dir}: the name is too long "
                               f"({len(self.dir.name)} characters; give a shorter --name)") from None
            raise DlxError(f"cannot create run directory {self.dir}: {err.strerror}") from None
        if self.exclusive:  # before any file: a live writer elsewhere means this run must not start
            from dlx.locks import Lease

            self.lease = Lease(self.dir).acquire()
        self.opened = True
        if self.config is not None:
            self.save_config(*self.config)
            self.start_tracking()
        if callable(self.on_open):
            self.on_open(self.dir)
        return self

    def start_tracking(self) -> None:
        """Start the trackers the config selects (TensorBoard, MLflow), if any and not started yet."""
        from dlx import tracking

        if self.trackers is None and self.config is not None and tracking.selected(self.config[0]):
            self.trackers = tracking.start(self.config[0], self)

    def close(self) -> None:
        """The run has written everything: trackers get the final summary and the figures (once)."""
        if self.closed or not self.opened:
            return
        self.closed = True
        try:
            if self.trackers:
                self.trackers.finish(read_summary(self.dir) or {}, sorted(self.dir.glob("*.png")))
                if self.extra.get("tracking_errors"):  # what failed while finishing goes into the summary
                    data = read_summary(self.dir)
                    if data:
                        data["tracking_errors"] = self.extra["tracking_errors"]
                        write_json(self.dir / "summary.json", data)
        finally:
            if self.lease is not None:
                self.lease.release()

    def overrides(self) -> list[str]:
        """The overrides this run was started with (pending, or from overrides.yaml)."""
        return list(self.config[1]) if self.config is not None else read_overrides(self.dir)

    def path(self, name: str) -> Path:
        """A file of this run (opening the run: asking for a path means a write follows)."""
        return self.open().dir / name

    def save_config(self, cfg, overrides) -> None:
        from dlx.config import to_yaml

        write_text(self.dir / "config.yaml", to_yaml(cfg))
        write_text(self.dir / "overrides.yaml", "".join(f"- {_yaml_str(o)}\n" for o in overrides) or "[]\n")

    def summary(self, status: str, metrics: dict | None = None, device: str | None = None, **extra) -> dict:
        """Write summary.json; ``metrics=None`` keeps the last ones written, ``device`` is remembered."""
        assert status in STATUSES, status
        self.extra.update(extra)
        if device is not None:
            self.device = device
        if metrics is not None:
            self.metrics = metrics
        done = status != "running"
        if self.writes and not self.opened:
            if status in ("failed", "interrupted"):  # refused or stopped before it began: touch nothing
                return {"kind": self.kind, "status": status, "metrics": self.metrics, **self.extra}
            self.open()
        data = {"kind": self.kind, "status": status, "metrics": self.metrics,
                "env": {**env_info(getattr(self, "device", None)), **self.env}, "started": self.started,
                "finished": now_iso() if done else None, "wall_s": round(time.time() - self.t0, 3),
                **self.extra}
        if self.writes:
            write_json(self.dir / "summary.json", data)
        return data

    @contextmanager
    def recording(self, keep_open: bool = False):
        """The one place a run's early end is recorded: Ctrl-C leaves 'interrupted', an exception 'failed'
        with its one-line error (a DlxError's own message; a bug's type and message). Re-raises. The run is
        closed at the end, or (``keep_open``: a phase of a run that goes on) only when it ended early."""
        ok = False
        try:
            yield self
            ok = True
        except KeyboardInterrupt:
            self.summary("interrupted")
            raise
        except Exception as err:  # the traceback (of a bug) is for us, the summary for the user
            self.fail(err)
            raise
        finally:
            if not (ok and keep_open):
                self.close()

    def fail(self, err: BaseException) -> dict:
        """Record ``err`` as this run's failure: a DlxError (bad input) by its message, anything else (a bug,
        a torch error) by type and message; ``error_type`` tells them apart."""
        msg = str(err) if isinstance(err, DlxError) else f"{type(err).__name__}: {err}"
        return self.summary("failed", error=" ".join(msg.split())[:500], error_type=type(err).__name__)


def _yaml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid YAML scalar and keeps '=' and ',' intact


def read_overrides(run_dir: Path) -> list[str]:
    import yaml

    path = Path(run_dir) / "overrides.yaml"
    if not path.is_file():
        return []
    return [str(o) for o in (yaml.safe_load(path.read_text()) or [])]


def read_summary(run_dir: Path) -> dict:
    """run_dir's summary.json, or {} when it is missing or unreadable (never raises)."""
    try:
        data = json.loads((Path(run_dir) / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _count(summary: dict) -> int:
    try:
        return max(1, int(summary.get("invocations") or 1))
    except (TypeError, ValueError):
        return 1


def usage_error(summary: dict) -> str | None:
    """The bad-input message of a run that failed on a DlxError (None for other failures)."""
    err = summary.get("error")
    if summary.get("status") != "failed" or not isinstance(err, str):
        return None
    if summary.get("error_type") == "DlxError":
        return err
    return err.removeprefix("DlxError: ") if err.startswith("DlxError: ") else None  # older runs


def status(run_dir: Path) -> str | None:
    return read_summary(run_dir).get("status")
