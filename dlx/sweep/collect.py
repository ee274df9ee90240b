"""collect(): the children's run directories -> results (a row per child) and curves (a row per
child and evaluated epoch), with the grid values as columns. Every metric a child's summary.json
records becomes a column, whatever the task (error, auc, rmse, ...)."""

from __future__ import annotations

import json
from pathlib import Path

SKIP = ("epoch", "step", "lr")  # per-row bookkeeping of metrics.csv, already in epochs/steps


def collect(sweep_dir: Path, children, with_config: bool = False):
    """with_config adds each child's resolved config, flattened ('optimizer.lr', ...), as columns."""
    import pandas as pd
    import yaml

    from dlx.config import flatten

    rows, curves = [], []
    for c in children:
        d = Path(sweep_dir) / "runs" / c.run_id
        grid = {k.split(".")[-1]: v for k, v in c.params.items()}
        try:
            s = json.loads((d / "summary.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            s = {"status": "missing"}
        m = s.get("metrics", {}) if isinstance(s.get("metrics"), dict) else {}
        rows.append({**grid, "run_id": c.run_id, "status": s.get("status"), "params": s.get("params"),
                     "n_train": s.get("n_train", grid.get("n_train")), "epochs": s.get("epochs"),
                     **{k: v for k, v in m.items() if k not in SKIP and k not in grid},
                     "wall_s": s.get("wall_s"), "setup_s": s.get("setup_s"), "train_s": s.get("train_wall_s"),
                     "diverged_step": s.get("diverged_step"),
                     "error": s.get("error"), "error_type": s.get("error_type")})
        if with_config and (d / "config.yaml").is_file():
            flat = flatten(yaml.safe_load((d / "config.yaml").read_text()) or {})
            rows[-1].update({k: v for k, v in flat.items() if k not in rows[-1]})
        if (d / "metrics.csv").is_file():
            df = pd.read_csv(d / "metrics.csv")
            for k, v in {**grid, "n_train": rows[-1]["n_train"], "run_id": c.run_id}.items():
                df[k] = v
            curves.append(df)
    results = pd.DataFrame(rows)
    return results, (pd.concat(curves, ignore_index=True) if curves else pd.DataFrame())
