"""``htautau``: H -> tau+ tau- (signal) vs Z -> tau+ tau- (background) dilepton events, the benchmark of
Sadowski, Whiteson & Baldi, "Searching for Higgs Boson Decay Modes with Deep Learning" (NIPS 2014; companion
Baldi, Sadowski & Whiteson, PRL 114, 111801, arXiv:1410.3469), from an embedded, seeded event generator or
from the authors' released ``htautau`` / ``ztautau`` CSV files.

Every event is 25 features: 10 **low-level** ones, what the detector measures, and 15 **high-level** ones
that physicists derive from them. ``features`` picks ``low`` (10), ``high`` (15) or ``all`` (25).

**Low-level** (GeV and radians; leptons ordered by measured pT; azimuths are absolute, in (-pi, pi]):
``lep1_pt, lep1_eta, lep1_phi, lep2_pt, lep2_eta, lep2_phi`` (the two leptons), ``met, met_phi`` (the
missing transverse momentum's magnitude and azimuth), ``jet_pt, jet_eta`` (the jet, when one is
reconstructed; **no jet: jet_pt = 0 and jet_eta = 0** -- a real jet has jet_pt > 25 GeV, so 0 flags it).

**High-level**, computed from the (float32) low-level features alone, in float64. Leptons are massless:
p_i = pT_i (cosh eta_i, cos phi_i, sin phi_i, sinh eta_i); pT-vectors p_1, p_2, MET = met (cos, sin)(met_phi);
dphi(a, b) wrapped into [-pi, pi]; mT(a, b) = sqrt(2 pT_a pT_b (1 - cos dphi(a, b))).

1. ``m_ll`` = m(p_1 + p_2), the visible mass.
2. ``m_col``, the collinear mass: each tau's neutrinos fly along its lepton, nu_i = a_i p_i, so MET = a_1 p_1
   + a_2 p_2 (a 2x2 linear system, determinant pT_1 pT_2 sin(phi_2 - phi_1)); the visible momentum
   fractions are x_i = 1 / (1 + a_i) and m_col = m_ll / sqrt(x_1 x_2). Unphysical solutions: a_i < 0 (the
   neutrinos against their lepton, x_i > 1 or x_i <= 0) are taken as no neutrinos, x_i = 1; then x_i is
   floored at ``X_MIN`` = 0.05 (a near-singular system, leptons back to back), so m_ll <= m_col <= 20 m_ll.
3. ``m_mmc``, a missing-mass-calculator-style estimate (in the spirit of the MMC of Elagin et al. 2011, which
   weighs the mass of every neutrino hypothesis by its likelihood; here the hypotheses are collinear): on
   the grid x_k = (k + 1/2) / K, K = ``MMC_GRID`` = 16, of both visible fractions, each hypothesis (x_i, x_j)
   has the weight w_ij ~ exp(-|MET - a_i p_1 - a_j p_2|^2 / (2 sigma^2)) f(x_i) f(x_j), a_k = 1/x_k - 1,
   sigma = ``MMC_SIGMA`` = 10 GeV per MET component, and f(x) = 5/3 - 3 x^2 + 4/3 x^3 the lab-frame visible
   energy fraction of an unpolarised, ultra-relativistic tau -> l nu nu (the Michel spectrum below,
   emitted isotropically); m_mmc = m_ll exp(-1/2 sum_ij w_ij log(x_i x_j) / sum_ij w_ij), the
   likelihood-weighted geometric mean of the hypotheses' masses m_ll / sqrt(x_i x_j). Unlike m_col it
   stays finite and stable when the leptons are back to back (the prior resolves the degenerate
   direction), and m_ll < m_mmc < 2 K m_ll.
4. ``mt_l1`` = mT(l1, MET); 5. ``mt_l2`` = mT(l2, MET).
6. ``mt_tot`` = sqrt(mT(l1, MET)^2 + mT(l2, MET)^2 + mT(l1, l2)^2), the total transverse mass.
7. ``delta_r_ll`` = sqrt(deta^2 + dphi^2) of the leptons; 8. ``delta_phi_ll`` = |dphi(l1, l2)|;
   9. ``delta_eta_ll`` = |eta_1 - eta_2|.
10. ``pt_ll`` = |p_1 + p_2|, the di-lepton pT.
11. ``sum_pt`` = pT_1 + pT_2 + met + jet_pt, the scalar sum.
12. ``p_zeta`` = (p_1 + p_2 + MET) . zeta and 13. ``p_zeta_vis`` = (p_1 + p_2) . zeta (CMS), zeta the unit
    bisector of the leptons' transverse directions (u_1 + u_2)/|u_1 + u_2|; leptons exactly back to back:
    u_1 turned by +90 degrees.
14. ``met_centrality`` = (A + B) / sqrt(A^2 + B^2), A = sin(phi_met - phi_2) / sin(phi_1 - phi_2),
    B = sin(phi_1 - phi_met) / sin(phi_1 - phi_2) (ATLAS): sqrt 2 with MET on the leptons' bisector, 1 along
    a lepton, below 1 outside the angle between them, -sqrt 2 opposite the bisector (0 where undefined).
15. ``sphericity`` = 3/2 (lambda_2 + lambda_3) = 3/2 (1 - lambda_1), lambda_1 >= lambda_2 >= lambda_3 the
    eigenvalues of S^ab = sum_k p_k^a p_k^b / sum_k |p_k|^2 over the 3-momenta of l1, l2 and MET (p_z = 0).

**The generator** (no ``root``), at parton level with a simple detector (all energies in GeV):

- the resonance: signal H, m = 125, Breit-Wigner width 0.0041 (narrow); background Z (Drell-Yan), m = 91.19,
  width 2.5; each a Breit-Wigner (Cauchy) truncated at m +- 10 widths (no gamma* continuum). **Production is
  the same for both**: transverse momentum pT ~ Exponential(mean ``SYSTEM_PT`` = 20), balanced by an
  initial-state-radiation parton (the jet) with eta ~ N(0, 2); rapidity y ~ N(0, 1.5); so the resonance is
  (sqrt(m^2 + pT^2) cosh y, pT cos phi, pT sin phi, sqrt(m^2 + pT^2) sinh y). Signal and background differ
  only in the resonance's mass and width.
- R -> tau+ tau- (m_tau = 1.777): isotropic two-body decay in the resonance's rest frame, E* = m/2,
  |p*| = sqrt(m^2/4 - m_tau^2). **Spin correlations and tau polarisation are omitted** (H is a scalar, Z a
  vector: in reality the two tau decays are correlated differently; here both are independent and
  unpolarised).
- each tau -> l nu nu (l = e or mu with probability 1/2 each, m_e = 0.000511, m_mu = 0.10566), a three-body
  decay in the tau's rest frame: the lepton's energy from the unpolarised Michel spectrum
  dG/dy ~ y^2 (3 - 2 y), y in [0, 1] (CDF 2 y^3 - y^4), E_l = max(y E_max, m_l) with
  E_max = (m_tau^2 + m_l^2) / (2 m_tau), |p_l| = sqrt(E_l^2 - m_l^2), direction isotropic; the two
  neutrinos are one invisible four-vector (m_tau - E_l, -p_l) of mass^2 = m_tau^2 - 2 m_tau E_l + m_l^2 >= 0.
  Both are boosted to the lab with the tau, so lepton + invisible = tau exactly (up to rounding).
- true missing pT = the vector sum of the two invisible systems' pT (``truth(...)['met']``); momentum balance
  makes it equal to -(l1 + l2 + ISR parton) in the transverse plane.
- detector: lepton pT resolution ``LEPTON_RES`` = 2%, lepton eta and phi smeared by ``LEPTON_ANGLE_RES``
  = 0.001; jet pT resolution 100%/sqrt(pT) (+) 5% (pT floored at 5% of the truth), jet eta and phi 0.05; the
  measured MET = true MET - (measured - true) visible pT (leptons and the radiation, clustered or not) +
  unclustered noise N(0, ``SOFT_MET`` = 10) per component. Acceptance: the leading lepton pT > 20, the
  other > 10, both |eta| < 2.5; events without two leptons are redrawn (exactly ``n`` come out). The jet is
  kept when its measured pT > 25 and |eta| < 4.7, else the no-jet sentinel. (To save time, events whose
  true leptons are below 80% of these thresholds or beyond |eta| = 2.51 -- more than 10 resolutions away
  -- skip the detector as failed; ``plausible``.)
- in the code, four-vectors are component-major arrays (4, n): rows E, px, py, pz.

**Relative azimuths** (``azimuth: relative``; ``absolute`` is the default): every event rotated about the
beam axis so that the leading lepton's azimuth is 0 (``relative_azimuths``): ``lep2_phi`` and ``met_phi``
become differences from ``lep1_phi``, which is 0. A symmetry of the physics applied to the measurements, not
an engineered feature; it spares a network learning the rotation invariance from data. Generated events only.

**The negative control** (``particles: shuffled``; ``events`` is the default): exactly the default's
events, then, within each class, every event gets each of its four objects -- the leading lepton, the other
lepton (pT, eta, phi each), the missing pT (magnitude, phi), the jet (pT, eta) -- from a different random
event of that class (``shuffle_objects``; the leptons are then re-ordered by pT). Each object's per-class
distribution is kept, the correlations between an event's objects are removed, and the 15 high-level
features are recomputed from the shuffled objects by the same rules: m_ll, m_col and m_mmc no longer peak
at the resonance. What a deep network would find in the low-level features (the masses) is gone, and so is
what the engineered features spell out.

``n`` training events are drawn from ``seed``, ``n_test`` test events from ``test_seed`` on a separate
stream, so the test set stays fixed whatever the training size or seed; ``signal_fraction`` of each; the
draws are kept in memory for the next run of the process (a sweep's workers reuse them), as for ``higgs``.
Features are standardised with the training split's mean and std (``normalize``), ``val_fraction`` and
``n_train`` are seeded (``subset_seed``) stratified carve-outs of the training events.

**The real files** (``root``: a folder holding ``htautau.csv.gz`` or ``htautau.csv`` and ``ztautau.csv.gz``
or ``ztautau.csv``; or ``signal_file`` / ``background_file``, relative to ``root`` when it is given): no
header and no label column -- the file is the label (htautau -> 1, ztautau -> 0); each row 25
comma-separated numbers, the 10 low-level then the 15 high-level features. A row with the wrong number of
values, or a value that is not a finite number, is one error naming the file and its line. The two are read
once in chunks into one raw float32 cache (``<signal>_<background>.f32``: label, then the 25 features; the
signal rows, then the background rows) with a JSON record of its shape, SHA-256 and both sources' size and
mtime, beside the signal file or in ``cache_dir``; every run memory-maps it. One seeded permutation
(``split_seed``) of all rows shuffles signal and background together: its first ``test_rows`` (default
500,000; our choice, the paper's split is not known here) are the test set, the rest training;
``val_fraction`` and ``n_train`` as for the real HIGGS file.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from dlx.data.bundle import DataBundle, Meta
from dlx.data.higgs import (
    PARTICLES,
    _fingerprint,
    breit_wigner,
    built_cache,
    generated_events,
    mass,
    memmap_bundle,
    p4,
    particles_of,
    wrap,
)
from dlx.data.prep import opt
from dlx.data.registry import register_data
from dlx.data.tabular import refuse_class_keys, table_bundle
from dlx.errors import DlxError

LOW = ["lep1_pt", "lep1_eta", "lep1_phi", "lep2_pt", "lep2_eta", "lep2_phi", "met", "met_phi", "jet_pt",
       "jet_eta"]
HIGH = ["m_ll", "m_col", "m_mmc", "mt_l1", "mt_l2", "mt_tot", "delta_r_ll", "delta_phi_ll", "delta_eta_ll",
        "pt_ll", "sum_pt", "p_zeta", "p_zeta_vis", "met_centrality", "sphericity"]
FEATURES = {"low": slice(0, 10), "high": slice(10, 25), "all": slice(0, 25)}
OBJECTS = (slice(0, 3), slice(3, 6), slice(6, 8), slice(8, 10))  # l1, l2, missing pT, jet (low-level columns)
AZIMUTHS = ("absolute", "relative")
NFEAT = len(LOW) + len(HIGH)
COLUMNS = 1 + NFEAT  # the cache: the label, then the features

# physics (GeV)
M_H, G_H, M_Z, G_Z = 125.0, 0.0041, 91.19, 2.5
M_TAU, M_E, M_MU = 1.777, 0.000511, 0.10566
BW_WIDTHS = 10.0  # the Breit-Wigners are truncated at m +- 10 widths
SYSTEM_PT, SYSTEM_Y_SD, ISR_ETA_SD = 20.0, 1.5, 2.0
# detector
LEPTON_RES, LEPTON_ANGLE_RES, SOFT_MET = 0.02, 0.001, 10.0
JET_STOCH, JET_CONST, JET_ANGLE_RES = 1.0, 0.05, 0.05
LEAD_PT_MIN, SUB_PT_MIN, LEPTON_ETA_MAX, JET_PT_MIN, JET_ETA_MAX = 20.0, 10.0, 2.5, 25.0, 4.7
# high-level rules
X_MIN, MMC_SIGMA, MMC_GRID = 0.05, 10.0, 16

SIGNAL_FILES, BACKGROUND_FILES = ("htautau.csv.gz", "htautau.csv"), ("ztautau.csv.gz", "ztautau.csv")


def feature_slice(cfg) -> tuple[str, slice]:
    name = str(opt(cfg, "features", "all"))
    if name not in FEATURES:
        raise DlxError(f"unknown data.features '{name}' for htautau (choose one of: low, high, all)")
    return name, FEATURES[name]


# ---------------------------------------------------------------- the generator
# Four-vectors are component-major here: an array of shape (4, n), rows E, px, py, pz (GeV), so that every
# component is a contiguous array.


def _pt_eta_phi(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pt = np.hypot(p[1], p[2])
    return pt, np.arcsinh(p[3] / np.maximum(pt, 1e-12)), np.arctan2(p[2], p[1])


def lab(p: np.ndarray, parent: np.ndarray, m) -> np.ndarray:
    """Four-vectors ``p`` given in the rest frame of ``parent`` (lab four-vectors of mass ``m``, given rather
    than recomputed from E^2 - p^2, which loses precision for a fast light particle), in the lab frame:
    gamma = E/m, beta = p/E, E' = gamma (E + beta.p), p' = p + (gamma^2/(gamma + 1) beta.p + gamma E) beta."""
    beta = parent[1:] / parent[0]
    gamma = parent[0] / m
    bp = beta[0] * p[1]
    bp += beta[1] * p[2]
    bp += beta[2] * p[3]
    k = gamma * gamma / (gamma + 1)
    k *= bp
    k += gamma * p[0]
    out = np.empty_like(p)
    np.multiply(gamma, p[0] + bp, out=out[0])
    np.multiply(beta, k, out=out[1:])
    out[1:] += p[1:]
    return out


def _isotropic(rng, n: int) -> np.ndarray:
    """Unit vectors (3, n), uniform on the sphere."""
    cos, phi = rng.uniform(-1, 1, n), rng.uniform(-np.pi, np.pi, n)
    sin = np.sqrt(1 - cos ** 2)
    return np.stack([sin * np.cos(phi), sin * np.sin(phi), cos])


def _two_body(rng, parent: np.ndarray, big: np.ndarray, m: float) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic decays of ``parent`` (lab four-vectors of masses ``big``) into two of mass ``m`` each."""
    d = _isotropic(rng, big.size) * np.sqrt(np.maximum(big ** 2 / 4 - m ** 2, 0.0))
    e = big / 2
    return lab(np.vstack([e[None], d]), parent, big), lab(np.vstack([e[None], -d]), parent, big)


def michel(rng, n: int) -> np.ndarray:
    """y = 2 E_l / m_tau from the unpolarised Michel spectrum 2 y^2 (3 - 2 y) on [0, 1] (by rejection)."""
    out = np.empty(n)
    todo = np.arange(n)
    while len(todo):
        y, u = rng.random(len(todo)), rng.random(len(todo))
        ok = 2 * u < 6 * y ** 2 - 4 * y ** 3  # the density's maximum is 2, at y = 1
        out[todo[ok]] = y[ok]
        todo = todo[~ok]
    return out


def tau_decay(rng, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """tau -> l nu nu in the tau's rest frame, boosted with it: (lepton, invisible nu nu, lepton mass)."""
    n = tau.shape[1]
    m_l = np.where(rng.random(n) < 0.5, M_E, M_MU)
    e_max = (M_TAU ** 2 + m_l ** 2) / (2 * M_TAU)
    e = np.maximum(michel(rng, n) * e_max, m_l)
    p = np.sqrt(np.maximum(e ** 2 - m_l ** 2, 0.0)) * _isotropic(rng, n)
    return lab(np.vstack([e[None], p]), tau, M_TAU), lab(np.vstack([(M_TAU - e)[None], -p]), tau, M_TAU), m_l


def truth(rng, n: int, signal: bool) -> dict[str, np.ndarray]:
    """``n`` generated events of one class before the detector: four-vectors (4, n) -- rows E, px, py, pz --
    of the resonance (``parent``), its taus (``tau1``, ``tau2``), their leptons (``lep1``, ``lep2``) and
    invisible nu nu systems (``inv1``, ``inv2``), the radiation parton (``isr``); the leptons' masses
    (``lep_mass``, (2, n)), and ``met``, the true missing pT: the invisible systems' vector sum, (2, n)."""
    m0, width = (M_H, G_H) if signal else (M_Z, G_Z)
    m = breit_wigner(rng, m0, width, n, m0 - BW_WIDTHS * width, m0 + BW_WIDTHS * width)
    pt, y = rng.exponential(SYSTEM_PT, n), rng.normal(0, SYSTEM_Y_SD, n)
    phi, eta = rng.uniform(-np.pi, np.pi, n), rng.normal(0, ISR_ETA_SD, n)
    mt = np.sqrt(m ** 2 + pt ** 2)
    px, py = pt * np.cos(phi), pt * np.sin(phi)
    parent = np.stack([mt * np.cosh(y), px, py, mt * np.sinh(y)])
    isr = np.stack([pt * np.cosh(eta), -px, -py, pt * np.sinh(eta)])
    tau1, tau2 = _two_body(rng, parent, m, M_TAU)
    lep1, inv1, m1 = tau_decay(rng, tau1)
    lep2, inv2, m2 = tau_decay(rng, tau2)
    return {"parent": parent, "isr": isr, "tau1": tau1, "tau2": tau2, "lep1": lep1, "lep2": lep2,
            "inv1": inv1, "inv2": inv2, "lep_mass": np.stack([m1, m2]), "met": inv1[1:3] + inv2[1:3]}


def detect(rng, t: dict[str, np.ndarray], smear: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The 10 low-level features (n, 10) of each event as the detector measures them (float64), and which
    events pass the two-lepton selection. ``smear=False``: a perfect detector (measured = true, the MET the
    true missing pT exactly), for tests."""
    n = t["lep1"].shape[1]
    s = 1.0 if smear else 0.0
    miss_x, miss_y = np.zeros(n), np.zeros(n)  # measured minus true visible pT
    leptons = []
    for key in ("lep1", "lep2"):
        pt, eta, phi = _pt_eta_phi(t[key])
        pt_m = pt * (1 + s * LEPTON_RES * rng.normal(size=n))
        eta_m = eta + s * LEPTON_ANGLE_RES * rng.normal(size=n)
        phi_m = wrap(phi + s * LEPTON_ANGLE_RES * rng.normal(size=n))
        if smear:
            miss_x += pt_m * np.cos(phi_m) - t[key][1]
            miss_y += pt_m * np.sin(phi_m) - t[key][2]
        leptons.append((pt_m, eta_m, phi_m))
    pt, eta, phi = _pt_eta_phi(t["isr"])
    res = np.sqrt(JET_STOCH ** 2 / np.maximum(pt, 1.0) + JET_CONST ** 2)
    jet_pt = pt * np.maximum(1 + s * res * rng.normal(size=n), 0.05)
    jet_eta = eta + s * JET_ANGLE_RES * rng.normal(size=n)
    jet_phi = wrap(phi + s * JET_ANGLE_RES * rng.normal(size=n))
    if smear:
        miss_x += jet_pt * np.cos(jet_phi) - t["isr"][1]
        miss_y += jet_pt * np.sin(jet_phi) - t["isr"][2]
    met_x = t["met"][0] - miss_x + s * SOFT_MET * rng.normal(size=n)
    met_y = t["met"][1] - miss_y + s * SOFT_MET * rng.normal(size=n)
    (a_pt, a_eta, a_phi), (b_pt, b_eta, b_phi) = leptons
    first = a_pt >= b_pt
    jet = (jet_pt > JET_PT_MIN) & (np.abs(jet_eta) < JET_ETA_MAX)
    low = np.empty((n, 10))
    for i, (u, v) in enumerate(((a_pt, b_pt), (a_eta, b_eta), (a_phi, b_phi))):
        low[:, i], low[:, 3 + i] = np.where(first, u, v), np.where(first, v, u)
    low[:, 6], low[:, 7] = np.hypot(met_x, met_y), np.arctan2(met_y, met_x)
    low[:, 8], low[:, 9] = np.where(jet, jet_pt, 0.0), np.where(jet, jet_eta, 0.0)
    passed = ((low[:, 0] > LEAD_PT_MIN) & (low[:, 3] > SUB_PT_MIN) & (np.abs(low[:, 1]) < LEPTON_ETA_MAX)
              & (np.abs(low[:, 4]) < LEPTON_ETA_MAX))
    return low, passed


def plausible(t: dict[str, np.ndarray]) -> np.ndarray:
    """Events whose true leptons could pass the selection: each pT above 80% of its threshold and |eta| <
    2.5 + 0.01 (failing it, passing would need a fluctuation of more than 10 resolutions)."""
    pt1, eta1, _ = _pt_eta_phi(t["lep1"])
    pt2, eta2, _ = _pt_eta_phi(t["lep2"])
    lo, hi = np.minimum(pt1, pt2), np.maximum(pt1, pt2)
    return ((hi > 0.8 * LEAD_PT_MIN) & (lo > 0.8 * SUB_PT_MIN) & (np.abs(eta1) < LEPTON_ETA_MAX + 0.01)
            & (np.abs(eta2) < LEPTON_ETA_MAX + 0.01))


def selected(rng, n: int, signal: bool) -> np.ndarray:
    """``n`` events of one class that pass the selection (low-level features, float32). Only the
    ``plausible`` events go through the detector (the others cannot pass: this only saves time)."""
    out, have, rate = [], 0, 0.25  # the fraction that passes (about 0.29 for H, 0.17 for Z), then measured
    while have < n:
        m = max(1024, int((n - have) / rate * 1.05) + 64)
        t = truth(rng, m, signal)
        keep = plausible(t)
        low, passed = detect(rng, {k: v[..., keep] for k, v in t.items()})
        out.append(low[passed])
        have += int(passed.sum())
        rate = max(int(passed.sum()) / m, 0.02)
    return np.concatenate(out)[:n].astype(np.float32)


# ---------------------------------------------------------------- the high-level features


def _michel_lab_logpdf(x: np.ndarray) -> np.ndarray:
    """log f(x), f(x) = 5/3 - 3 x^2 + 4/3 x^3: the lab visible fraction of an unpolarised tau -> l nu nu."""
    return np.log(np.maximum(5 / 3 - 3 * x ** 2 + 4 / 3 * x ** 3, 1e-300))


def mmc_log_fractions(p1x, p1y, p2x, p2y, mx, my, chunk: int = 1024) -> np.ndarray:
    """The likelihood-weighted mean of log(x1 x2) of the simplified MMC (module docstring, feature 3), per
    event. |MET - a1 p1 - a2 p2|^2 is expanded so that only the cross term a1 a2 (p1 . p2) is a full grid;
    the weights are float32 (log-weights within about 1e-3 of float64's), in chunks that stay in cache."""
    grid = (np.arange(MMC_GRID) + 0.5) / MMC_GRID
    a, lf, s = 1 / grid - 1, _michel_lab_logpdf(grid), 1 / (2 * MMC_SIGMA ** 2)
    logs = (np.log(grid)[:, None] + np.log(grid)[None, :]).ravel().astype(np.float32)
    cross = np.outer(a, a).ravel().astype(np.float32)
    out = np.empty(len(p1x))
    for i in range(0, len(p1x), chunk):
        ax, ay, bx, by, ex, ey = (v[i:i + chunk, None] for v in (p1x, p1y, p2x, p2y, mx, my))
        u1 = (lf - s * (a ** 2 * (ax ** 2 + ay ** 2) - 2 * a * (ex * ax + ey * ay))).astype(np.float32)
        u2 = (lf - s * (a ** 2 * (bx ** 2 + by ** 2) - 2 * a * (ex * bx + ey * by))).astype(np.float32)
        lp = (u1[:, :, None] + u2[:, None, :]).reshape(len(u1), -1)  # (c, K^2) log-weights
        lp -= (2 * s * (ax * bx + ay * by)).astype(np.float32) * cross
        lp -= lp.max(1, keepdims=True)
        np.exp(lp, out=lp)
        out[i:i + len(lp)] = (lp @ logs) / lp.sum(1)
    return out


def high_level(low: np.ndarray) -> np.ndarray:
    """The 15 high-level features from the 10 low-level ones, by the rules of the module docstring."""
    low = np.asarray(low, np.float64)
    pt1, eta1, phi1, pt2, eta2, phi2, met, mphi, jpt = (low[:, i] for i in range(9))
    l1, l2 = p4(pt1, eta1, phi1), p4(pt2, eta2, phi2)
    p1x, p1y, p2x, p2y = l1[:, 1], l1[:, 2], l2[:, 1], l2[:, 2]
    mx, my = met * np.cos(mphi), met * np.sin(mphi)
    m_ll = mass(l1, l2)
    # collinear approximation: MET = a1 p1 + a2 p2
    det = p1x * p2y - p1y * p2x
    det = np.where(det == 0, 1e-300, det)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        a1 = (mx * p2y - my * p2x) / det
        a2 = (p1x * my - p1y * mx) / det
        x1 = np.where(a1 >= 0, 1 / (1 + a1), 1.0)
        x2 = np.where(a2 >= 0, 1 / (1 + a2), 1.0)
    x1, x2 = np.maximum(x1, X_MIN), np.maximum(x2, X_MIN)
    m_col = m_ll / np.sqrt(x1 * x2)
    m_mmc = m_ll * np.exp(-0.5 * mmc_log_fractions(p1x, p1y, p2x, p2y, mx, my))

    def mt(pa, pb, dphi):
        return np.sqrt(np.maximum(2 * pa * pb * (1 - np.cos(dphi)), 0.0))

    dphi = wrap(phi1 - phi2)
    mt1, mt2, mt12 = mt(pt1, met, phi1 - mphi), mt(pt2, met, phi2 - mphi), mt(pt1, pt2, dphi)
    deta = eta1 - eta2
    llx, lly = p1x + p2x, p1y + p2y
    # the zeta axis: the bisector of the leptons' transverse directions
    zx, zy = np.cos(phi1) + np.cos(phi2), np.sin(phi1) + np.sin(phi2)
    norm = np.hypot(zx, zy)
    flat = norm < 1e-12
    zx = np.where(flat, -np.sin(phi1), zx / np.where(flat, 1.0, norm))
    zy = np.where(flat, np.cos(phi1), zy / np.where(flat, 1.0, norm))
    # MET phi-centrality
    a, b, d = np.sin(mphi - phi2), np.sin(phi1 - mphi), np.sin(phi1 - phi2)
    ab = np.hypot(a, b)
    cent = np.where(ab > 0, np.where(d >= 0, 1.0, -1.0) * (a + b) / np.where(ab > 0, ab, 1.0), 0.0)
    # sphericity of l1, l2 and MET (p_z = 0)
    mom = np.stack([l1[:, 1:], l2[:, 1:], np.column_stack([mx, my, np.zeros_like(mx)])], 1)  # (n, 3, 3)
    tensor = np.einsum("nka,nkb->nab", mom, mom)
    tensor /= np.maximum(np.trace(tensor, axis1=1, axis2=2), 1e-300)[:, None, None]
    sph = 1.5 * (1 - np.linalg.eigvalsh(tensor)[:, -1])
    return np.column_stack([
        m_ll, m_col, m_mmc, mt1, mt2, np.sqrt(mt1 ** 2 + mt2 ** 2 + mt12 ** 2), np.hypot(deta, dphi),
        np.abs(dphi), np.abs(deta), np.hypot(llx, lly), pt1 + pt2 + met + jpt,
        (llx + mx) * zx + (lly + my) * zy, llx * zx + lly * zy, cent, sph])


def shuffle_objects(low: np.ndarray, y: np.ndarray, rng) -> np.ndarray:
    """The negative control's events: within each class, each object (``OBJECTS``: either lepton, the
    missing pT, the jet) of every event comes from an independently drawn random event of that class; the
    leptons are then put back in pT order (l1 the leading one)."""
    out = np.array(low, copy=True)
    for cls in np.unique(y):
        rows = np.flatnonzero(y == cls)
        for cols in OBJECTS:
            out[rows, cols] = low[rng.permutation(rows), cols]
    swap = out[:, 3] > out[:, 0]
    out[swap, 0:3], out[swap, 3:6] = out[swap, 3:6], out[swap, 0:3].copy()
    return out


def relative_azimuths(x: np.ndarray) -> np.ndarray:
    """Events rotated about the beam axis so that the leading lepton's azimuth is 0: ``lep2_phi`` and
    ``met_phi`` become their differences from ``lep1_phi`` (wrapped into [-pi, pi)), ``lep1_phi`` 0. The
    physics is the same in every rotated frame, and every high-level feature is invariant under the
    rotation (they are left as they are); the network no longer has to learn that invariance itself."""
    out = np.array(x, copy=True)
    ref = out[:, 2].astype(np.float64)
    for c in (5, 7):
        out[:, c] = wrap(out[:, c].astype(np.float64) - ref)
    out[:, 2] = 0.0
    return out


def generate(n: int, rng, signal_fraction: float = 0.5, particles: str = "events") -> tuple[np.ndarray,
                                                                                           np.ndarray]:
    """``n`` events (25 float32 features: 10 low-level, 15 high-level) and labels (1 = H), shuffled. With
    ``particles="shuffled"``, the negative control: the same events with their objects permuted apart
    within each class before the high-level features are computed (``shuffle_objects``)."""
    if particles not in PARTICLES:
        raise DlxError(f"unknown data.particles '{particles}' for htautau (choose one of: "
                       f"{', '.join(PARTICLES)})")
    n_sig = int(round(signal_fraction * n))
    low = np.concatenate([selected(rng, n_sig, True), selected(rng, n - n_sig, False)])
    y = np.concatenate([np.ones(n_sig, np.int64), np.zeros(n - n_sig, np.int64)])
    order = rng.permutation(n)
    low, y = low[order], y[order]
    if particles == "shuffled":
        low = shuffle_objects(low, y, rng)
    return np.column_stack([low, high_level(low).astype(np.float32)]), y


# ---------------------------------------------------------------- the real files


def _pick(root: Path | None, given, names: tuple[str, ...], what: str) -> Path:
    if given is not None:
        path = Path(str(given)).expanduser()
        if root is not None and not path.is_absolute():
            path = root / path
        if not path.is_file():
            raise DlxError(f"data.{what}_file={given} does not exist")
        return path
    for name in names:
        if (root / name).is_file():
            return root / name
    raise DlxError(f"data.root={root} holds no {' or '.join(names)} (the {what} events: no header, 25 "
                   "numbers a row)")


def source_files(cfg) -> tuple[Path, Path]:
    """(signal, background) files named by ``data.root`` and/or ``data.signal_file`` / ``background_file``."""
    root, sig, bkg = opt(cfg, "root"), opt(cfg, "signal_file"), opt(cfg, "background_file")
    if root is not None:
        root = Path(str(root)).expanduser()
        if not root.is_dir():
            raise DlxError(f"data.root={root} must be a folder holding htautau.csv(.gz) and ztautau.csv(.gz) "
                           "(or give data.signal_file and data.background_file)")
    elif sig is None or bkg is None:
        raise DlxError("data htautau reads files from data.root, or from both data.signal_file and "
                       "data.background_file: one of the two was given alone")
    return _pick(root, sig, SIGNAL_FILES, "signal"), _pick(root, bkg, BACKGROUND_FILES, "background")


def cache_files(sig: Path, bkg: Path, cache_dir) -> tuple[Path, Path]:
    folder = Path(str(cache_dir)).expanduser() if cache_dir else sig.parent
    stems = [p.name.removesuffix(".gz").removesuffix(".csv") for p in (sig, bkg)]
    return folder / f"{stems[0]}_{stems[1]}.f32", folder / f"{stems[0]}_{stems[1]}.f32.json"


def _sources(sig: Path, bkg: Path) -> dict:
    return {"signal": {**_fingerprint(sig), "path": str(sig.resolve())},
            "background": {**_fingerprint(bkg), "path": str(bkg.resolve())}}


def _open_text(src: Path):
    if src.name.endswith(".gz"):
        import gzip

        return gzip.open(src, "rt")
    return open(src)  # noqa: SIM115


def _bad_line(src: Path) -> str | None:
    """The first line of ``src`` that is not 25 finite numbers, described (blank lines are skipped, as
    the parser does); None when every line is."""
    with _open_text(src) as f:
        for number, line in enumerate(f, 1):
            text = line.strip()
            if not text:
                continue
            fields = text.split(",")
            if len(fields) != NFEAT:
                return (f"{src} line {number} has {len(fields)} values, expected {NFEAT} (10 low-level and "
                        "15 high-level features, no label)")
            for field in fields:
                try:
                    value = float(field)
                except ValueError:
                    return f"{src} line {number}: '{field.strip()[:30]}' is not a number"
                if not math.isfinite(value):
                    return f"{src} line {number}: '{field.strip()[:30]}' is not a finite number"
    return None


def _read_csv(src: Path, label: float, out, h, chunk_rows: int) -> int:
    """Parse ``src`` in chunks, checking every row, appending float32 (label, 25 features) rows to ``out``
    and to the hash ``h``; the number of rows."""
    import pandas as pd

    rows = 0

    def fail(detail: str):
        raise DlxError(_bad_line(src) or f"{src} could not be read as an htautau/ztautau table: {detail}")

    try:
        for chunk in pd.read_csv(src, header=None, chunksize=chunk_rows, dtype=np.float64, engine="c"):
            a = chunk.to_numpy()
            if a.shape[1] != NFEAT or not np.isfinite(a).all():
                fail(f"{a.shape[1]} columns or a missing value")
            block = np.empty((len(a), COLUMNS), np.float32)
            block[:, 0], block[:, 1:] = label, a
            data = block.tobytes()
            h.update(data)
            out.write(data)
            rows += len(a)
    except pd.errors.EmptyDataError:
        raise DlxError(f"{src} has no rows") from None
    except pd.errors.ParserError as err:
        fail(str(err).strip().splitlines()[-1])
    except (ValueError, EOFError, OSError) as err:
        fail(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
    if rows == 0:
        raise DlxError(f"{src} has no rows")
    return rows


def cached_array(sig: Path, bkg: Path, cache_dir=None, chunk_rows: int = 500_000) -> tuple[np.memmap, dict]:
    """Both files as one read-only memory-mapped (rows, 26) float32 array (label, 25 features; signal rows
    first), parsed once into a cache; and its record."""
    data, info = cache_files(sig, bkg, cache_dir)

    def write(out) -> dict:
        h = hashlib.sha256()
        n_sig = _read_csv(sig, 1.0, out, h, chunk_rows)
        n_bkg = _read_csv(bkg, 0.0, out, h, chunk_rows)
        return {"shape": [n_sig + n_bkg, COLUMNS], "dtype": "float32", "sha256": h.hexdigest(),
                "signal_rows": n_sig, "background_rows": n_bkg,
                "format": "raw little-endian float32, row-major: label (1 htautau, 0 ztautau), 10 "
                          "low-level and 15 high-level features; signal rows first"}

    meta = built_cache(data, info, "htautau", COLUMNS, {"sources": _sources(sig, bkg)}, write)
    return np.memmap(data, dtype="<f4", mode="r", shape=tuple(meta["shape"])), meta


def real_bundle(cfg, cols: slice, meta: Meta) -> DataBundle:
    refuse_class_keys(cfg, "htautau")
    sig, bkg = source_files(cfg)
    test_rows = int(opt(cfg, "test_rows", 500_000))
    array, record = cached_array(sig, bkg, opt(cfg, "cache_dir"))
    total = len(array)
    if not 1 <= test_rows < total:
        raise DlxError(f"data.test_rows={test_rows} must be at least 1 and leave training rows: {sig.name} "
                       f"and {bkg.name} have {total} rows")
    perm = np.random.default_rng(int(opt(cfg, "split_seed", 0))).permutation(total)
    meta.extra.update(source=f"{sig},{bkg}", rows=total, signal_rows=record["signal_rows"],
                      background_rows=record["background_rows"])
    return memmap_bundle(cfg, array, perm[test_rows:], perm[:test_rows], cols, meta)


@register_data("htautau", root="optional")
def build(cfg) -> DataBundle:
    name, cols = feature_slice(cfg)
    names = (LOW + HIGH)[cols]
    meta = Meta("htautau", "binary", (len(names),), class_names=["Z->tautau", "H->tautau"], num_outputs=1,
                feature_names=names, extra={"features": name})
    on_files = any(opt(cfg, k) is not None for k in ("root", "signal_file", "background_file"))
    particles = particles_of(cfg, "htautau", on_files)
    azimuth = str(opt(cfg, "azimuth", "absolute"))
    if azimuth not in AZIMUTHS:
        raise DlxError(f"unknown data.azimuth '{azimuth}' for htautau (choose one of: {', '.join(AZIMUTHS)})")
    if on_files:
        if azimuth != "absolute":
            raise DlxError("data.azimuth=relative rotates generated events; the files are read as they are "
                           "(absolute azimuths): drop data.azimuth or data.root")
        return real_bundle(cfg, cols, meta)
    x, y, xt, yt = generated_events(cfg, "htautau", generate)
    if azimuth == "relative":
        x, xt = relative_azimuths(x), relative_azimuths(xt)
    meta.extra.update(source="generator", particles=particles, azimuth=azimuth)
    return table_bundle(cfg, x[:, cols], y, meta, xt[:, cols], yt)
