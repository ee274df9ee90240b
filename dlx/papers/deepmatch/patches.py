"""The learned patches of a finished DeepMatch run, read from its checkpoint (never retrained): per patch its
resolution, its query-side and response-side words (most probable first) and how much the network above
uses it (the L2 norm of the weights leaving its local units), plus, on the synthetic corpus, the true core
each word belongs to (``qD2``: query domain 2, ``rA7``: response aspect 7), so a reader can check what a
patch matches."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np


def usage(state: dict, sizes: list[int], units: int) -> np.ndarray:
    """Per patch: the L2 norm of the weights from its local units to the layer above. With the hierarchy
    that is the first sparse layer for the finest resolution (NaN for the others); with one resolution or
    without the hierarchy, the layer every patch feeds."""
    total = int(sum(sizes))
    out = np.full(total, np.nan)
    if "layers.0.weight" in state:
        w, n = state["layers.0.weight"], sizes[0]
    elif "head.0.weight" in state:
        w, n = state["head.0.weight"], total
    else:
        w, n = state["head.weight"], total
    w = w.float().numpy()[:, : n * units].reshape(w.shape[0], n, units)
    out[:n] = np.sqrt((w ** 2).sum((0, 2)))
    return out


def patch_table(state: dict, vocab: list[str], word_topic: dict | None, n_words: int):
    import pandas as pd

    px, py = state["patch_x"].numpy(), state["patch_y"].numpy()
    units = int(state["local_bias"].shape[1])
    sizes = [int(k) for k in state["resolution_sizes"]]  # patches are stored finest resolution first
    weight = usage(state, sizes, units)
    level = np.repeat(np.arange(len(sizes)), sizes)
    rows = []
    for p in range(len(px)):
        xs = [vocab[w] for w in px[p] if w][:n_words]
        ys = [vocab[w] for w in py[p] if w][:n_words]
        row = {"resolution": int(sizes[level[p]]), "level": int(level[p]), "patch": p, "usage": weight[p],
               "query_words": " ".join(xs), "response_words": " ".join(ys)}
        if word_topic:
            for side, ws in (("query", xs), ("response", ys)):
                common = Counter(word_topic.get(w, "noise") for w in ws).most_common(2)
                row[f"{side}_cores"] = " ".join(f"{t}:{c}" for t, c in common)
        rows.append(row)
    return pd.DataFrame(rows)


def learned_patches(child_dir: Path, data_cfg, n_words: int = 8):
    """patches.csv rows for the DeepMatch child in ``child_dir`` (empty when it has no checkpoint)."""
    import pandas as pd

    from dlx.data import build_data
    from dlx.train.checkpoint import read_checkpoint

    path = Path(child_dir) / "checkpoint.pt"
    if not path.is_file():
        return pd.DataFrame()
    state = read_checkpoint(path)["model"]
    data = build_data(data_cfg, device="cpu")
    return patch_table(state, list(data.meta.extra["vocab"]), data.notes.get("word_topic"), n_words)
