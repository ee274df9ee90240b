"""Who writes a run directory: a lease, so two processes never train the same run at once.

A lease is a file ``.lease`` in the run directory, created atomically with O_CREAT|O_EXCL (atomic on local
filesystems and on NFSv3 and later, unlike fcntl locks over NFS), holding the owner's host, pid, start time
and an expiry time. The owner renews it from a background thread while it works and deletes the file
when it is done. A lease whose owner is gone is taken over: on the same host when its pid no longer runs,
from another host when its lease has expired (leases tolerate clock skew between hosts of up to
``SKEW_S``). Taking over goes through a short-lived ``.lease.takeover`` file, so two processes that find
the same dead owner do not both take it. An owner inside a SLURM job records the job, so its lease is
dead as soon as that job has left the queue.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from dlx.errors import DlxError

LEASE_FILE = ".lease"
LEASE_S = 600.0  # a lease not renewed for this long is dead (another host's view)
RENEW_S = 60.0
SKEW_S = 120.0


class Leased(DlxError):
    """The run directory is being written by another live process."""

    def __init__(self, path: Path, owner: dict):
        self.owner = owner
        super().__init__(f"{path} is being written by {describe(owner)}; wait for it, or stop it first")


def describe(owner: dict) -> str:
    return f"pid {owner.get('pid')} on {owner.get('host')} since {owner.get('started')}"


def read(path: Path, name: str = LEASE_FILE) -> dict | None:
    """The lease holder's record, or None when there is no (readable) lease."""
    try:
        data = json.loads((Path(path) / name).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def alive(owner: dict) -> bool:
    """Is the lease holder still working? Same host: its pid runs. Another host: its lease holds, and
    for an owner inside a SLURM job, that job is still in the queue (squeue; unknown counts as alive)."""
    if owner.get("host") != socket.gethostname() and owner.get("slurm_job"):
        from dlx.queue import job_queued

        if job_queued(owner["slurm_job"]) is False:
            return False  # its job left the queue: the process is gone with it
    if owner.get("host") == socket.gethostname():
        try:
            os.kill(int(owner.get("pid", -1)), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, ValueError, TypeError):
            return True  # a pid we may not signal exists
        return _not_zombie(int(owner["pid"]))
    return time.time() < float(owner.get("expires", 0)) + SKEW_S


def _not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True


class Lease:
    """``with Lease(dir):`` own a run directory for the duration (raises Leased if a live owner has it)."""

    def __init__(self, path: Path, name: str = LEASE_FILE):
        self.dir, self.name = Path(path), name
        self.token = uuid.uuid4().hex
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.held = False

    def record(self) -> dict:
        job = os.environ.get("SLURM_JOB_ID")
        if os.environ.get("SLURM_ARRAY_JOB_ID") and os.environ.get("SLURM_ARRAY_TASK_ID"):
            job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
        return {"host": socket.gethostname(), "pid": os.getpid(), "started": self.started,
                "expires": time.time() + LEASE_S, "token": self.token, **({"slurm_job": job} if job else {})}

    def _create(self) -> bool:
        try:
            fd = os.open(self.dir / self.name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            json.dump(self.record(), fh)
        return True

    def wait(self, poll: float = 1.0) -> Lease:
        """Acquire, waiting while a live owner holds the lease."""
        while True:
            try:
                return self.acquire()
            except Leased:
                time.sleep(poll)

    def acquire(self) -> Lease:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self._create():
            owner = read(self.dir, self.name)
            if owner is not None and alive(owner):
                raise Leased(self.dir, owner)
            self._take_over(owner)
        self.held = True
        self._thread = threading.Thread(target=self._renew, daemon=True, name="dlx-lease")
        self._thread.start()
        return self

    def _take_over(self, dead: dict | None) -> None:
        """Replace a dead owner's lease, one taker at a time."""
        guard = self.dir / f"{self.name}.takeover"
        try:
            fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.close(fd)
        except FileExistsError:
            if time.time() - _mtime(guard) < 60:  # another process is taking it over right now
                owner = read(self.dir, self.name) or dead or {}
                raise Leased(self.dir, owner) from None
            guard.unlink(missing_ok=True)  # a taker that died mid-takeover
            return self._take_over(dead)
        try:
            now = read(self.dir, self.name)
            if now is not None and now.get("token") != (dead or {}).get("token") and alive(now):
                raise Leased(self.dir, now)  # someone else took it over first
            (self.dir / self.name).unlink(missing_ok=True)
            if not self._create():
                raise Leased(self.dir, read(self.dir, self.name) or {})
        finally:
            guard.unlink(missing_ok=True)

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_S):
            if (read(self.dir, self.name) or {}).get("token") != self.token:
                return  # taken over (we were presumed dead): stop renewing someone else's lease
            from dlx.files import write_json

            write_json(self.dir / self.name, self.record())

    def release(self) -> None:
        self._stop.set()
        if self.held and (read(self.dir, self.name) or {}).get("token") == self.token:
            (self.dir / self.name).unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
