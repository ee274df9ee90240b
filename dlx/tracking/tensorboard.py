"""TensorBoard: event files under the run directory (<run>/tensorboard/), so `tensorboard --logdir` on a
sweep directory shows every child side by side. Scalars per evaluation row, the config as text and
hyper-parameters, the final metrics, the figures as images."""

from __future__ import annotations

import numbers
from pathlib import Path


def numeric(d: dict) -> dict:
    return {k: float(v) for k, v in d.items()
            if isinstance(v, numbers.Real) and not isinstance(v, bool) and v == v}


class TensorBoard:
    name = "tensorboard"

    def __init__(self, run_dir: Path, cfg):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / str(cfg.get("dir") or "tensorboard")))
        self.flat: dict = {}

    def params(self, flat: dict) -> None:
        self.flat = flat
        text = "\n".join(f"    {k}: {v}" for k, v in flat.items())  # indented: a code block in markdown
        self.writer.add_text("config", text, 0)

    def metrics(self, row: dict, step: int) -> None:
        for k, v in numeric(row).items():
            if k not in ("step", "epoch"):
                self.writer.add_scalar(k, v, step)
        self.writer.flush()

    def finish(self, summary: dict, figures: list) -> None:
        import matplotlib.image

        hparams = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in self.flat.items()}
        final = {f"final/{k}": v for k, v in numeric(summary.get("metrics", {})).items()}
        self.writer.add_hparams(hparams, final or {"final/none": 0.0}, run_name=".")
        self.writer.add_text("status", str(summary.get("status")), 0)
        for c in summary.get("claims") or []:
            self.writer.add_text(f"claims/{c['id']}", f"{c['verdict']}: {c['claim']}", 0)
        for png in figures:
            img = matplotlib.image.imread(str(png))[..., :3]  # RGBA -> RGB, floats in [0, 1]
            self.writer.add_image(f"figures/{Path(png).stem}", img, 0, dataformats="HWC")
        self.writer.close()
