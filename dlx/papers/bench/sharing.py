"""Sending an array to another process: a tensor through torch.multiprocessing (its storage lives in
shared memory, so only a handle crosses the pipe) against a numpy array through the same queue (pickled:
every byte is copied through the pipe and unpickled). Timed as a round trip: put -> the consumer reads
an element -> a small reply comes back."""

from __future__ import annotations

import queue
import time

import torch

from dlx.papers.bench.timing import mean_std

MODES = ("shared_tensor", "fresh_tensor", "pickled_numpy")
REPLY_TIMEOUT_S = 120.0


def consumer(inbox, outbox) -> None:
    """Child process: read one element of each array it gets (proving access) and reply with it."""
    while True:
        item = inbox.get()
        if item is None:
            return
        outbox.put(float(item.reshape(-1)[-1]))


def _round_trip(inbox, outbox, item, proc) -> float:
    t0 = time.perf_counter()
    inbox.put(item)
    while True:
        try:
            outbox.get(timeout=0.5)
            return time.perf_counter() - t0
        except queue.Empty:
            if not proc.is_alive():
                raise RuntimeError(f"the multiprocessing consumer died (exit code {proc.exitcode})") from None
            if time.perf_counter() - t0 > REPLY_TIMEOUT_S:
                raise RuntimeError(f"the multiprocessing consumer gave no reply in {REPLY_TIMEOUT_S:.0f} s") \
                    from None


def run_sharing(sizes_mb, repeats: int, log=None) -> tuple[list[dict], list[dict]]:
    """Rows per (size, mode): milliseconds per round trip (mean, std) and the ratio to shared_tensor; and
    per-round rows (the modes of one round take turns, so a round is a pair).

    shared_tensor: a tensor already in shared memory (as DataLoader workers' batches or Hogwild weights
    are), so a send passes a file descriptor; fresh_tensor: a new tensor per send, whose storage the
    queue first moves into shared memory (one copy); pickled_numpy: the bytes themselves travel.
    """
    import torch.multiprocessing as tmp

    ctx = tmp.get_context("spawn")  # fork after OpenMP threads start is unsafe; spawn is torch's advice
    inbox, outbox = ctx.Queue(), ctx.Queue()
    proc = ctx.Process(target=consumer, args=(inbox, outbox), daemon=True)
    proc.start()
    rows, rounds = [], []
    try:
        _round_trip(inbox, outbox, torch.zeros(4), proc)  # the child has imported torch and answers
        for mb in sizes_mb:
            n = max(1, int(float(mb) * 2**20 / 4))
            base = torch.rand(n, generator=torch.Generator().manual_seed(0))
            shared = base.clone().share_memory_()
            array = base.numpy()
            per_mode: dict[str, list[float]] = {m: [] for m in MODES}
            for rep in range(int(repeats) + 1):  # round 0 warms caches and is dropped
                for mode in MODES:
                    item = {"shared_tensor": shared, "fresh_tensor": base.clone(),
                            "pickled_numpy": array}[mode]
                    t = _round_trip(inbox, outbox, item, proc)
                    if rep:
                        per_mode[mode].append(t)
                        rounds.append({"suite": "multiprocessing", "model": f"{float(mb):g} MB float32",
                                       "mode": mode, "round": rep, "seconds": t, "bytes": 4 * n})
            ref = mean_std(per_mode["shared_tensor"])[0]
            for mode in MODES:
                mean, std = mean_std(per_mode[mode])
                rows.append({"suite": "multiprocessing", "model": f"{float(mb):g} MB float32", "mode": mode,
                             "unit": "ms/transfer", "mean": 1e3 * mean, "std": 1e3 * std,
                             "n": len(per_mode[mode]), "ratio": mean / ref, "bytes": 4 * n, "note": ""})
                if log:
                    log(rows[-1])
    finally:
        inbox.put(None)
        proc.join(timeout=30)
        if proc.is_alive():
            proc.terminate()
    return rows, rounds


def check_sizes(sizes) -> list[float]:
    from dlx.errors import DlxError

    out = []
    for s in sizes:
        try:
            v = float(s)
        except (TypeError, ValueError):
            v = -1.0
        if not v > 0:
            raise DlxError(f"bench.multiprocessing.sizes_mb must hold positive numbers, got {s!r}")
        out.append(v)
    return out

