"""Discovery significance of a classifier's selection, as Baldi, Sadowski & Whiteson (2014) quote it.

The classifier's test scores define a selection ``score >= t``. Its signal and background efficiencies
(eps_s, eps_b: the fractions of test signal and background events that pass) scale the paper's
reference sample of ``signal`` = 100 signal and ``background`` = 1000 +- ``sigma_b`` = 50 background
events to ``s = 100 eps_s`` and ``b = 1000 eps_b +- 50 eps_b`` (the 5% normalization uncertainty stays
5% of what passes). The significance at ``t`` is the median discovery significance with background
uncertainty of Cowan et al. (``dlx.metrics.asimov_z(s, b, sigma_b)``), and the reported Z is its maximum
over thresholds. Thresholds that keep fewer than ``min_background`` test background events are skipped:
there, eps_b is estimated from a handful of events and the maximum would chase their noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlx.errors import DlxError


@dataclass(frozen=True)
class Setting:
    signal: float = 100.0
    background: float = 1000.0
    sigma_b: float = 50.0
    min_background: int = 50
    points: int = 400  # thresholds scanned (evenly spaced in rank); the best is refined around

    @classmethod
    def from_cfg(cls, cfg) -> Setting:
        from dlx.config import number

        s = cls(signal=number(cfg.signal, "higgs.significance.signal", lo=0),
                background=number(cfg.background, "higgs.significance.background", lo=0),
                sigma_b=number(cfg.sigma_b, "higgs.significance.sigma_b", lo=0),
                min_background=number(cfg.min_background, "higgs.significance.min_background", lo=1,
                                      integer=True))
        if s.signal <= 0 or s.background <= 0:
            raise DlxError("higgs.significance.signal and .background must be > 0 (expected events)")
        return s


def efficiencies(score, label) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, eps_s, eps_b) for every distinct cut ``score >= t``, from the highest threshold down."""
    score, label = np.asarray(score, np.float64), np.asarray(label).astype(bool)
    if score.shape != label.shape or score.ndim != 1:
        raise DlxError(f"scores and labels must be 1-d and of one length, got {score.shape} and "
                       f"{label.shape}")
    n_sig, n_bkg = int(label.sum()), int((~label).sum())
    if n_sig == 0 or n_bkg == 0:
        raise DlxError("the significance needs test events of both classes")
    order = np.argsort(-score, kind="stable")
    s, lab = score[order], label[order]
    last = np.r_[s[1:] != s[:-1], True]  # the last event of each run of equal scores
    cum_s, cum_b = np.cumsum(lab)[last], np.cumsum(~lab)[last]
    return s[last], cum_s / n_sig, cum_b / n_bkg


def z_at(eps_s, eps_b, setting: Setting) -> np.ndarray:
    """asimov_z at each (eps_s, eps_b) pair, in the paper's normalization."""
    from dlx.metrics import asimov_z

    ratio = setting.sigma_b / setting.background
    return np.array([asimov_z(setting.signal * es, setting.background * eb, ratio * setting.background * eb)
                     if eb > 0 else np.nan for es, eb in zip(eps_s, eps_b, strict=True)])


def scan(score, label, setting: Setting = Setting()) -> dict:
    """The best significance over thresholds and the curve it came from.

    Returns ``z`` (the best), ``threshold``, ``eps_s``, ``eps_b``, ``s``, ``b`` at the best cut, and
    ``curve``: a DataFrame of threshold, eps_s, eps_b, z at up to ``setting.points`` cuts."""
    import pandas as pd

    t, es, eb = efficiencies(score, label)
    n_bkg = int((~np.asarray(label).astype(bool)).sum())
    ok = eb * n_bkg >= setting.min_background
    if not ok.any():
        raise DlxError(f"no threshold keeps {setting.min_background} test background events "
                       f"(higgs.significance.min_background; the test set has {n_bkg})")
    t, es, eb = t[ok], es[ok], eb[ok]
    grid = np.unique(np.linspace(0, len(t) - 1, min(setting.points, len(t))).round().astype(int))
    z = z_at(es[grid], eb[grid], setting)
    best = int(grid[np.nanargmax(z)])
    # refine: every cut between the neighbouring grid points of the best one
    pos = int(np.searchsorted(grid, best))
    lo, hi = grid[max(pos - 1, 0)], grid[min(pos + 1, len(grid) - 1)]
    fine = np.arange(lo, hi + 1)
    zf = z_at(es[fine], eb[fine], setting)
    best = int(fine[np.nanargmax(zf)])
    zbest = float(np.nanmax(zf))
    curve = pd.DataFrame({"threshold": t[grid], "eps_s": es[grid], "eps_b": eb[grid], "z": z})
    return {"z": zbest, "threshold": float(t[best]), "eps_s": float(es[best]), "eps_b": float(eb[best]),
            "s": setting.signal * float(es[best]), "b": setting.background * float(eb[best]),
            "curve": curve}


def roc_points(score, label, points: int = 300):
    """A ROC curve thinned to about ``points`` points (false and true positive rates), for tables."""
    import pandas as pd
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(label), np.asarray(score, np.float64))
    keep = np.unique(np.r_[np.linspace(0, len(fpr) - 1, min(points, len(fpr))).round().astype(int)])
    return pd.DataFrame({"fpr": fpr[keep], "tpr": tpr[keep]})
