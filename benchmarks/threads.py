"""trainer.threads=auto against torch's default (every core), on an idle machine and beside a busy one.

Runs the demo (`dlx train`: MLP on digits, 30 epochs) and a conv net (cnn5 width 16, 10 epochs) in fresh
processes, alternating the settings in each round so both see the same machine, with and without a
background process spinning on one core (what a second user or job does to a shared machine). Prints
median wall times of the training loop (`train_wall_s`) and their ratio.

    .venv/bin/python benchmarks/threads.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

JOBS = {"demo (mlp, digits)": [], "cnn5 width 16": ["model=cnn5", "model.width=16", "trainer.epochs=10"]}
SETTINGS = {"torch default (all cores)": "trainer.threads=null", "auto": "trainer.threads=auto"}


def train_seconds(args: list[str], out: Path, name: str) -> tuple[float, str]:
    subprocess.run([sys.executable, "-m", "dlx", "train", *args, "trainer.progress=none", "--out", str(out),
                    "--name", name], check=True, capture_output=True)
    s = json.loads((out / "train" / name / "summary.json").read_text())
    return s["train_wall_s"], f"{s['env']['threads']} ({s['env'].get('threads_rule', '')})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    rounds = ap.parse_args().rounds
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for load in ("idle", "one busy core"):
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load != "idle" else None
            try:
                for job, extra in JOBS.items():
                    times = {s: [] for s in SETTINGS}
                    used = {}
                    for r in range(rounds):
                        for i, (s, ov) in enumerate(SETTINGS.items()):
                            name = f"{len(rows)}-{r}-{i}"
                            t, used[s] = train_seconds([*extra, ov], Path(tmp), name)
                            times[s].append(t)
                    med = {s: statistics.median(v) for s, v in times.items()}
                    rows.append((load, job, med, used))
            finally:
                if spinner:
                    spinner.kill()
    print("| machine | job | torch default (threads) | auto (threads) | default / auto |")
    print("|---|---|---|---|---|")
    for load, job, med, used in rows:
        d, a = med["torch default (all cores)"], med["auto"]
        print(f"| {load} | {job} | {d:.2f} s ({used['torch default (all cores)']}) | "
              f"{a:.2f} s ({used['auto']}) | {d / a:.2f}x |")


if __name__ == "__main__":
    main()
