"""The invariance check: networks trained on upright digits, tested with the whole test set turned by each
angle. Each child's checkpoint is loaded into a model rebuilt from its own config, so the numbers come
from exactly the trained network; the turned test images use the same rotation as the data (bilinear,
corners filled with the normalized background) and carry the labels the data's own rule gives a digit
turned by that angle: the digit itself by default (``data.label=digit``), the digit shifted by the angle's
bin on the negative control (``data.label=digit_plus_angle``, dlx/data/rotated.py)."""

from __future__ import annotations

from pathlib import Path


def evaluate(sweep_dir: Path, kids, angles_deg: list[float]):
    """Rows (variant, model, seed, angle, error, n) for every finished invariance child."""
    import math

    import pandas as pd
    import torch
    from omegaconf import OmegaConf

    from dlx.data import build_data
    from dlx.data.rotated import relabel, rotate_images
    from dlx.models import build_model
    from dlx.runs import status
    from dlx.train.checkpoint import load_weights, read_checkpoint

    rows = []
    for c in kids:
        d = Path(sweep_dir) / "runs" / c.run_id
        if status(d) != "completed" or not (d / "checkpoint.pt").is_file():
            continue
        cfg = OmegaConf.load(d / "config.yaml")
        data = build_data(cfg.data)
        model = build_model(cfg.model, data.meta, data.train)
        load_weights(model, read_checkpoint(d / "checkpoint.pt")["model"], d / "checkpoint.pt")
        model.eval()
        x, y = data.test.x, data.test.y
        fill = float(data.meta.extra.get("fill", 0.0))
        bs = int(cfg.trainer.get("eval_batch_size", 2048))
        label = str(cfg.data.get("label", "digit"))  # the upright test set's labels are its digits
        with torch.no_grad():
            for a in angles_deg:
                xr = rotate_images(x, math.radians(a), fill=fill) if a else x
                yr = y if label == "digit" else \
                    torch.as_tensor(relabel(y.numpy(), [math.radians(a)] * len(y), label))
                wrong = sum(int((model(xr[i:i + bs]).argmax(1) != yr[i:i + bs]).sum())
                            for i in range(0, len(y), bs))
                rows.append({"model": c.params["variant"], "network": c.params["model"],
                             "seed": c.params["seed"], "angle": a, "error": wrong / len(y), "n": len(y),
                             "run_id": c.run_id})
    return pd.DataFrame(rows, columns=["model", "network", "seed", "angle", "error", "n", "run_id"])
