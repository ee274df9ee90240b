"""Expected discovery significance of a classifier's selection.

The classifier's scores define a selection ``score >= t``. Its signal and background efficiencies (eps_s,
eps_b: the fractions of signal and background events that pass) scale the expected events before the
selection, ``signal`` and ``background`` +- ``sigma_b`` (times ``luminosity`` when it is set: then they are
expected events per fb^-1, cross-section x branching ratios x acceptance in fb), to ``s = signal eps_s`` and
``b = background eps_b +- sigma_b eps_b`` (the relative uncertainty stays that of what passes). The
significance at ``t`` is the median discovery significance with background uncertainty of Cowan et al.
(``dlx.metrics.asimov_z(s, b, sigma_b)``).

The threshold is chosen where the significance is highest on one set of events (:func:`scan`: the
validation split in ``dlx reproduce higgs``) and the significance reported is the one that threshold gives
on another (:func:`at`: the test split), so the maximum over thresholds does not chase the test set's
noise. Thresholds that keep fewer than ``min_background`` background events of the scanned set are
skipped: there, eps_b is estimated from a handful of events.

With ``sigma_b`` = 0, Z grows exactly as the square root of the luminosity (s and b both scale with it), so
``(Z_a / Z_b)^2 - 1`` is the extra data classifier b needs to match classifier a: :func:`equivalent_data`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlx.errors import DlxError


@dataclass(frozen=True)
class Setting:
    signal: float = 100.0  # expected events before the selection (per fb^-1 when luminosity is set)
    background: float = 1000.0
    sigma_b: float = 50.0  # the background's uncertainty, in its units
    min_background: int = 50
    luminosity: float | None = None  # fb^-1; None: signal, background and sigma_b are event counts
    points: int = 400  # thresholds scanned (evenly spaced in rank); the best is refined around

    @classmethod
    def from_cfg(cls, cfg) -> Setting:
        from dlx.config import number

        lumi = cfg.get("luminosity")
        s = cls(signal=number(cfg.signal, "higgs.significance.signal", lo=0),
                background=number(cfg.background, "higgs.significance.background", lo=0),
                sigma_b=number(cfg.sigma_b, "higgs.significance.sigma_b", lo=0),
                min_background=number(cfg.min_background, "higgs.significance.min_background", lo=1,
                                      integer=True),
                luminosity=None if lumi is None else number(lumi, "higgs.significance.luminosity", lo=0))
        if s.signal <= 0 or s.background <= 0 or s.luminosity == 0:
            raise DlxError("higgs.significance.signal, .background (and .luminosity when set) must be > 0")
        return s

    def counts(self) -> tuple[float, float, float]:
        """(signal, background, sigma_b) as expected event counts before the selection."""
        k = 1.0 if self.luminosity is None else float(self.luminosity)
        return self.signal * k, self.background * k, self.sigma_b * k


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

    sig, bkg, sigma = setting.counts()
    return np.array([asimov_z(sig * es, bkg * eb, sigma * eb) if eb > 0 else np.nan
                     for es, eb in zip(eps_s, eps_b, strict=True)])


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
    sig, bkg, _ = setting.counts()
    return {"z": zbest, "threshold": float(t[best]), "eps_s": float(es[best]), "eps_b": float(eb[best]),
            "s": sig * float(es[best]), "b": bkg * float(eb[best]), "curve": curve}


def at(score, label, threshold: float, setting: Setting = Setting()) -> dict:
    """The selection ``score >= threshold`` (chosen on other events) applied to these: ``z``, ``eps_s``,
    ``eps_b``, ``s``, ``b``. No background passing gives eps_b = 0 and Z = NaN (the counts cannot say)."""
    score, label = np.asarray(score, np.float64), np.asarray(label).astype(bool)
    if score.shape != label.shape or score.ndim != 1 or label.all() or not label.any():
        raise DlxError("the significance needs 1-d scores and labels of one length with both classes")
    keep = score >= threshold
    es, eb = float(keep[label].mean()), float(keep[~label].mean())
    sig, bkg, _ = setting.counts()
    return {"z": float(z_at(np.array([es]), np.array([eb]), setting)[0]), "eps_s": es, "eps_b": eb,
            "s": sig * es, "b": bkg * eb}


def equivalent_data(z_a, z_b):
    """(Z_a / Z_b)^2 - 1: the fraction more data classifier b needs to be as significant as a (exact when
    sigma_b = 0, where Z grows as the square root of the data)."""
    return (np.asarray(z_a, np.float64) / np.asarray(z_b, np.float64)) ** 2 - 1


def roc_points(score, label, points: int = 300):
    """A ROC curve thinned to about ``points`` points (false and true positive rates), for tables."""
    import pandas as pd
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(label), np.asarray(score, np.float64))
    keep = np.unique(np.r_[np.linspace(0, len(fpr) - 1, min(points, len(fpr))).round().astype(int)])
    return pd.DataFrame({"fpr": fpr[keep], "tpr": tpr[keep]})
