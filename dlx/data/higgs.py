"""``higgs_uci``: signal-vs-background collision events in the layout of the UCI HIGGS data set (Baldi,
Sadowski & Whiteson, "Searching for Exotic Particles in High-Energy Physics with Deep Learning", Nature
Communications 5:4308, 2014), from an embedded, seeded event generator or from the real ``HIGGS.csv(.gz)``.
An extra benchmark: ``dlx reproduce higgs`` reproduces the H -> tau tau study on ``htautau`` by default.

Every event is 28 features in the UCI order: 21 **low-level** ones, the measured lepton (pT, eta, phi), the
missing transverse energy (magnitude, phi) and four jets (pT, eta, phi, b-tag), and 7 **high-level** ones,
invariant masses a physicist derives from them (m_jj, m_jjj, m_lv, m_jlv, m_bb, m_Wbb, m_WWbb). ``features``
picks ``low`` (21), ``high`` (7) or ``all`` (28).

**The generator** (no ``root``) mirrors the paper's benchmark at parton level with a simple detector:

- signal: a heavy neutral Higgs H0 (425 GeV, Breit-Wigner width 5 GeV) -> W H+- (325 GeV), H+- -> W h
  (125 GeV), h -> b b; background: top pairs t t -> W b W b (the t t mass is 2 m_t plus a Gamma(1.5, 70 GeV)
  tail). Both end in the same final state: one W decays to a lepton and a neutrino, the other to two
  light quarks (for signal, which W is random). W masses follow a Breit-Wigner (80.4, 2.1) in [60, 100],
  top masses one of (172.5, 1.4) in [150, 195]. Two-body decays are isotropic in the parent's rest frame.
- the heavy system gets a transverse momentum (exponential, mean 25 GeV) balanced by an initial-state
  radiation jet (eta ~ N(0, 2)), and a rapidity ~ N(0, 1).
- detector: jet pT resolution 100%/sqrt(pT/GeV) (+) 5%, lepton 2%, angles 0.02; jets and the lepton need
  pT > 20 GeV and |eta| < 2.5; an event needs the lepton and at least four jets, of which the four
  leading (in measured pT) are kept, so the radiation jet can take a quark's place. b-tag (0/1): 70% for
  b quarks, 1% for other jets. The missing energy is the neutrino's pT plus everything the detector
  mis-measured (measured minus true visible pT) plus unclustered noise N(0, 10 GeV) per component.
- high-level features are computed from the (float32) low-level ones alone, by these rules: jets and
  the lepton are massless; the neutrino's pz solves m(lepton + neutrino) = m_W (the smaller |pz| of the
  two roots; the real part when there is none); the two b candidates are the jets with the highest b-tag
  (ties: higher pT), the other two make m_jj; each b is paired with the hadronic (jj) or the leptonic
  (l v) W so that |m_jjj - m_t| + |m_jlv - m_t| is smallest; m_bb, m_Wbb = m(jjbb), m_WWbb = m(all).

Signal and background differ mainly in these masses (m_bb near 125 GeV and m_WWbb near 425 GeV for signal,
m_jjj and m_jlv near m_t for background); the low-level features carry the same information, implicitly.
``n`` training events are drawn from ``seed``, ``n_test`` test events from ``test_seed`` on a separate
stream, so the test set stays fixed whatever the training size or seed; ``signal_fraction`` of each.

**The negative control** (``particles: shuffled``; ``particles: events`` is the default above). The
paper's premise is that signal and background differ in how an event's objects combine (the invariant
masses of its lepton, neutrino and jets), which the engineered high-level features spell out and a deep
network can learn from the low-level ones. The control draws exactly the default's events (same seeds,
same detector), then, within each class, gives every event each of its six objects from a different
random event of that class: the lepton (pT, eta, phi), the missing energy (magnitude, phi) and each jet
slot (pT, eta, phi, b-tag) are permuted independently among the events of the class (``shuffle_objects``).
Each object's joint distribution given the class, so every low-level column's per-class marginal, is kept
exactly (only the order of the values changes); the correlations between the objects of an event are
removed. The seven high-level features are then recomputed from the shuffled low-level ones by the same
rules, so they carry no information beyond the objects' per-class marginals: the masses no longer peak at
m_h, m_t or m_H0. Claims that rest on the engineered masses being informative (or on a multi-object
structure for a deep network to find) should not hold on it.

**The real file** (``root``: a directory holding ``HIGGS.csv`` or ``HIGGS.csv.gz``, or the file itself):
no header, column 0 the label, then the 28 features; the last ``test_rows`` (500,000) rows are the test
set. It is read once in chunks and cached as a raw float32 array (``<name>.f32``, beside the file or in
``cache_dir``) with a JSON record of its shape, SHA-256 and the source's size and mtime; every run then
memory-maps the cache, and training batches are read from it batch by batch, so 11 million rows need
neither 11 million Python objects nor the array in memory. ``n_train`` takes a seeded subset of the
training rows, ``val_fraction`` a seeded validation split from them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from dlx.data.bundle import DataBundle, Meta
from dlx.data.prep import opt
from dlx.data.registry import register_data
from dlx.data.tabular import refuse_class_keys, table_bundle
from dlx.errors import DlxError

LOW = (["lepton_pt", "lepton_eta", "lepton_phi", "missing_energy", "missing_energy_phi"]
       + [f"jet{i}_{v}" for i in range(1, 5) for v in ("pt", "eta", "phi", "btag")])
HIGH = ["m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"]
FEATURES = {"low": slice(0, 21), "high": slice(21, 28), "all": slice(0, 28)}
COLUMNS = 1 + len(LOW) + len(HIGH)  # the label, then the features

# physics (GeV)
M_W, G_W, M_TOP, G_TOP, M_B = 80.4, 2.1, 172.5, 1.4, 4.8
M_H0, G_H0, M_HC, M_H = 425.0, 5.0, 325.0, 125.0
SYSTEM_PT, ISR_ETA_SD, SYSTEM_Y_SD = 25.0, 2.0, 1.0
TT_SHAPE, TT_SCALE = 1.5, 70.0
# detector
JET_STOCH, JET_CONST, LEPTON_RES, ANGLE_RES, SOFT_MET = 1.0, 0.05, 0.02, 0.02, 10.0
PT_MIN, ETA_MAX, BTAG_EFF, BTAG_FAKE = 20.0, 2.5, 0.7, 0.01
# the objects of the 21 low-level columns: lepton, missing energy, jets 1-4 (the control permutes them apart)
OBJECTS = (slice(0, 3), slice(3, 5), slice(5, 9), slice(9, 13), slice(13, 17), slice(17, 21))
PARTICLES = ("events", "shuffled")


def feature_slice(cfg) -> tuple[str, slice]:
    name = str(opt(cfg, "features", "all"))
    if name not in FEATURES:
        raise DlxError(f"unknown data.features '{name}' for higgs (choose one of: low, high, all)")
    return name, FEATURES[name]


# ---------------------------------------------------------------- four-vectors (E, px, py, pz), GeV


def p4(pt, eta, phi) -> np.ndarray:
    """Massless four-vectors from (pT, eta, phi), stacked on a last axis of 4."""
    return np.stack([pt * np.cosh(eta), pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], -1)


def mass(*vectors) -> np.ndarray:
    """Invariant mass of the sum of four-vectors (0 where rounding makes m^2 negative)."""
    s = sum(vectors)
    return np.sqrt(np.maximum(s[..., 0] ** 2 - (s[..., 1:] ** 2).sum(-1), 0.0))


def boost(p: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Four-vectors ``p`` given in the rest frame of ``parent`` (lab four-vectors), in the lab frame."""
    m = np.sqrt(np.maximum(parent[:, 0] ** 2 - (parent[:, 1:] ** 2).sum(1), 1e-12))
    beta = parent[:, 1:] / parent[:, :1]
    b2 = (beta ** 2).sum(1)
    gamma = parent[:, 0] / m
    bp = (beta * p[:, 1:]).sum(1)
    g2 = np.where(b2 > 0, (gamma - 1) / np.maximum(b2, 1e-300), 0.0)
    return np.column_stack([gamma * (p[:, 0] + bp), p[:, 1:] + (g2 * bp + gamma * p[:, 0])[:, None] * beta])


def decay(rng, parent: np.ndarray, m1, m2) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic two-body decays of ``parent`` into masses ``m1`` and ``m2`` (lab four-vectors)."""
    n = len(parent)
    m1, m2 = np.broadcast_to(m1, n), np.broadcast_to(m2, n)
    big = np.sqrt(np.maximum(parent[:, 0] ** 2 - (parent[:, 1:] ** 2).sum(1), 1e-12))
    q = np.sqrt(np.maximum((big ** 2 - (m1 + m2) ** 2) * (big ** 2 - (m1 - m2) ** 2), 0.0)) / (2 * big)
    cos = rng.uniform(-1, 1, n)
    sin, phi = np.sqrt(1 - cos ** 2), rng.uniform(-np.pi, np.pi, n)
    d = np.column_stack([sin * np.cos(phi), sin * np.sin(phi), cos]) * q[:, None]
    a = np.column_stack([np.sqrt(m1 ** 2 + q ** 2), d])
    b = np.column_stack([np.sqrt(m2 ** 2 + q ** 2), -d])
    return boost(a, parent), boost(b, parent)


def breit_wigner(rng, m: float, width: float, n: int, lo: float, hi: float) -> np.ndarray:
    """Masses from a Breit-Wigner (Cauchy) of ``width`` around ``m``, truncated to [lo, hi]."""
    out = np.empty(n)
    todo = np.arange(n)
    while len(todo):
        draw = m + 0.5 * width * np.tan(np.pi * (rng.random(len(todo)) - 0.5))
        ok = (draw >= lo) & (draw <= hi)
        out[todo[ok]] = draw[ok]
        todo = todo[~ok]
    return out


def produce(rng, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A heavy system of masses ``m`` with transverse momentum from initial-state radiation, and that
    radiation as a jet balancing it."""
    n = len(m)
    pt, y = rng.exponential(SYSTEM_PT, n), rng.normal(0, SYSTEM_Y_SD, n)
    phi, eta = rng.uniform(-np.pi, np.pi, n), rng.normal(0, ISR_ETA_SD, n)
    mt = np.sqrt(m ** 2 + pt ** 2)
    system = np.column_stack([mt * np.cosh(y), pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y)])
    isr = np.column_stack([pt * np.cosh(eta), -pt * np.cos(phi), -pt * np.sin(phi), pt * np.sinh(eta)])
    return system, isr


def signal_partons(rng, n: int) -> tuple[np.ndarray, ...]:
    """H0 -> W H+-, H+- -> W h, h -> b b; one W -> l v, the other -> q q. (l, v, b, b, q, q, isr)."""
    h0, isr = produce(rng, breit_wigner(rng, M_H0, G_H0, n, M_H0 - 30, M_H0 + 30))
    w1, hc = decay(rng, h0, breit_wigner(rng, M_W, G_W, n, 60, 100), M_HC)
    w2, h = decay(rng, hc, breit_wigner(rng, M_W, G_W, n, 60, 100), M_H)
    b1, b2 = decay(rng, h, M_B, M_B)
    first = (rng.random(n) < 0.5)[:, None]  # which W decays to the lepton
    lep, nu = decay(rng, np.where(first, w1, w2), 0.0, 0.0)
    q1, q2 = decay(rng, np.where(first, w2, w1), 0.0, 0.0)
    return lep, nu, b1, b2, q1, q2, isr


def background_partons(rng, n: int) -> tuple[np.ndarray, ...]:
    """t t -> (W b)(W b); one W -> l v, the other -> q q. (l, v, b, b, q, q, isr)."""
    mt1, mt2 = (breit_wigner(rng, M_TOP, G_TOP, n, 150, 195) for _ in range(2))
    tt, isr = produce(rng, mt1 + mt2 + rng.gamma(TT_SHAPE, TT_SCALE, n))
    t1, t2 = decay(rng, tt, mt1, mt2)
    w1, b1 = decay(rng, t1, breit_wigner(rng, M_W, G_W, n, 60, 100), M_B)
    w2, b2 = decay(rng, t2, breit_wigner(rng, M_W, G_W, n, 60, 100), M_B)
    lep, nu = decay(rng, w1, 0.0, 0.0)
    q1, q2 = decay(rng, w2, 0.0, 0.0)
    return lep, nu, b1, b2, q1, q2, isr


def pt_eta_phi(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pt = np.hypot(p[:, 1], p[:, 2])
    return pt, np.arcsinh(p[:, 3] / np.maximum(pt, 1e-9)), np.arctan2(p[:, 2], p[:, 1])


def wrap(phi: np.ndarray) -> np.ndarray:
    return np.mod(phi + np.pi, 2 * np.pi) - np.pi


def detect(rng, lep, nu, b1, b2, q1, q2, isr) -> tuple[np.ndarray, np.ndarray]:
    """The 21 low-level features of each event as the detector measures them, and which events pass the
    selection (a lepton and at least four jets within acceptance)."""
    n = len(lep)
    pt, eta, phi = pt_eta_phi(lep)
    lep_pt = pt * (1 + LEPTON_RES * rng.normal(size=n))
    lep_eta, lep_phi = eta, phi
    miss_x = lep_pt * np.cos(phi) - lep[:, 1]  # measured minus true visible pT, summed below
    miss_y = lep_pt * np.sin(phi) - lep[:, 2]
    jets = []
    for parton, is_b in ((b1, True), (b2, True), (q1, False), (q2, False), (isr, False)):
        pt, eta, phi = pt_eta_phi(parton)
        res = np.sqrt(JET_STOCH ** 2 / np.maximum(pt, 1.0) + JET_CONST ** 2)
        pt_m = pt * np.maximum(1 + res * rng.normal(size=n), 0.05)
        eta_m, phi_m = eta + ANGLE_RES * rng.normal(size=n), wrap(phi + ANGLE_RES * rng.normal(size=n))
        tag = (rng.random(n) < (BTAG_EFF if is_b else BTAG_FAKE)).astype(np.float64)
        miss_x += pt_m * np.cos(phi_m) - parton[:, 1]
        miss_y += pt_m * np.sin(phi_m) - parton[:, 2]
        jets.append(np.column_stack([pt_m, eta_m, phi_m, tag]))
    met_x = nu[:, 1] - miss_x + SOFT_MET * rng.normal(size=n)
    met_y = nu[:, 2] - miss_y + SOFT_MET * rng.normal(size=n)
    jets = np.stack(jets, 1)  # (n, 5, 4)
    seen = (jets[:, :, 0] > PT_MIN) & (np.abs(jets[:, :, 1]) < ETA_MAX)
    order = np.argsort(-np.where(seen, jets[:, :, 0], -1.0), axis=1, kind="stable")
    lead = np.take_along_axis(jets, order[:, :, None], 1)[:, :4]
    passed = (lep_pt > PT_MIN) & (np.abs(lep_eta) < ETA_MAX) & (seen.sum(1) >= 4)
    low = np.column_stack([lep_pt, lep_eta, lep_phi, np.hypot(met_x, met_y), np.arctan2(met_y, met_x),
                           lead.reshape(n, 16)])
    return low, passed


def neutrino(low: np.ndarray) -> np.ndarray:
    """The neutrino's four-vector: pT from the missing energy, pz from m(lepton + neutrino) = m_W."""
    lep = p4(low[:, 0], low[:, 1], low[:, 2])
    met, phi = low[:, 3], low[:, 4]
    nx, ny = met * np.cos(phi), met * np.sin(phi)
    pt2 = low[:, 0] ** 2
    mu = M_W ** 2 / 2 + lep[:, 1] * nx + lep[:, 2] * ny
    a = mu * lep[:, 3] / pt2
    disc = a ** 2 - (lep[:, 0] ** 2 * met ** 2 - mu ** 2) / pt2
    root = np.sqrt(np.maximum(disc, 0.0))
    pz = np.where(np.abs(a - root) <= np.abs(a + root), a - root, a + root)
    return np.column_stack([np.sqrt(met ** 2 + pz ** 2), nx, ny, pz])


def high_level(low: np.ndarray) -> np.ndarray:
    """The 7 invariant masses (m_jj, m_jjj, m_lv, m_jlv, m_bb, m_Wbb, m_WWbb) from the 21 low-level
    features, by the rules in the module docstring."""
    low = np.asarray(low, np.float64)
    n = len(low)
    lep, nu = p4(low[:, 0], low[:, 1], low[:, 2]), neutrino(low)
    jets = low[:, 5:21].reshape(n, 4, 4)
    order = np.argsort(-jets[:, :, 3], axis=1, kind="stable")  # jets are in pT order: ties keep it
    vec = np.take_along_axis(p4(jets[:, :, 0], jets[:, :, 1], jets[:, :, 2]), order[:, :, None], 1)
    b1, b2, q1, q2 = vec[:, 0], vec[:, 1], vec[:, 2], vec[:, 3]
    w = lep + nu
    jjj1, jlv1, jjj2, jlv2 = mass(q1, q2, b1), mass(w, b2), mass(q1, q2, b2), mass(w, b1)
    first = np.abs(jjj1 - M_TOP) + np.abs(jlv1 - M_TOP) <= np.abs(jjj2 - M_TOP) + np.abs(jlv2 - M_TOP)
    return np.column_stack([mass(q1, q2), np.where(first, jjj1, jjj2), mass(lep, nu),
                            np.where(first, jlv1, jlv2), mass(b1, b2), mass(q1, q2, b1, b2),
                            mass(q1, q2, b1, b2, lep, nu)])


def selected(rng, partons, n: int) -> np.ndarray:
    """``n`` events of one class that pass the selection (low-level features, float32)."""
    out, have = [], 0
    while have < n:
        m = max(1024, int(1.5 * (n - have)) + 64)
        low, passed = detect(rng, *partons(rng, m))
        out.append(low[passed])
        have += int(passed.sum())
    return np.concatenate(out)[:n].astype(np.float32)


def shuffle_objects(low: np.ndarray, y: np.ndarray, rng) -> np.ndarray:
    """The negative control's events: within each class, every object (``OBJECTS``) of every event comes
    from an independently drawn random event of that class (see the module docstring)."""
    out = np.array(low, copy=True)
    for cls in np.unique(y):
        rows = np.flatnonzero(y == cls)
        for cols in OBJECTS:
            out[rows, cols] = low[rng.permutation(rows), cols]
    return out


def generate(n: int, rng, signal_fraction: float = 0.5,
             particles: str = "events") -> tuple[np.ndarray, np.ndarray]:
    """``n`` events (28 float32 features in the UCI order) and labels (1 = signal), shuffled. With
    ``particles="shuffled"``, the negative control: the same events with their objects permuted apart
    within each class before the high-level features are computed (``shuffle_objects``)."""
    if particles not in PARTICLES:
        raise DlxError(f"unknown data.particles '{particles}' for higgs (choose one of: "
                       f"{', '.join(PARTICLES)})")
    n_sig = int(round(signal_fraction * n))
    low = np.concatenate([selected(rng, signal_partons, n_sig), selected(rng, background_partons, n - n_sig)])
    y = np.concatenate([np.ones(n_sig, np.int64), np.zeros(n - n_sig, np.int64)])
    order = rng.permutation(n)
    low, y = low[order], y[order]
    if particles == "shuffled":
        low = shuffle_objects(low, y, rng)
    return np.column_stack([low, high_level(low).astype(np.float32)]), y


_GENERATED: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # this process's last draws (sweep workers reuse)


def generated(draw, n: int, stream: int, seed: int, signal_fraction: float,
              particles: str = "events") -> tuple[np.ndarray, np.ndarray]:
    """``draw(n, rng, signal_fraction, particles)`` (a module's ``generate``) from stream ``stream`` and
    ``seed``, kept (read-only) for the next run in this process: a sweep's children share their events, so
    a worker draws them once instead of once per child."""
    key = (draw.__module__, n, stream, seed, signal_fraction, particles)
    if key not in _GENERATED:
        if len(_GENERATED) >= 2:
            _GENERATED.pop(next(iter(_GENERATED)))
        x, y = draw(n, np.random.default_rng([stream, seed]), signal_fraction, particles)
        x.setflags(write=False)
        y.setflags(write=False)
        _GENERATED[key] = (x, y)
    return _GENERATED[key]


def particles_of(cfg, name: str, on_files: bool) -> str:
    """``data.particles`` of ``data=<name>`` checked: ``events``, or ``shuffled`` (the negative control, which
    shuffles generated events: refused on the user's files)."""
    particles = str(opt(cfg, "particles", "events"))
    if particles not in PARTICLES:
        raise DlxError(f"unknown data.particles '{particles}' for {name} (choose one of: "
                       f"{', '.join(PARTICLES)})")
    if on_files and particles != "events":
        raise DlxError("data.particles=shuffled (the negative control) needs the generator: drop data.root")
    return particles


def generated_events(cfg, name: str, draw) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, x_test, y_test) of the generator of ``data=<name>`` (``draw``: its ``generate``): ``n`` training
    events from stream 0 and ``seed``, ``n_test`` test events from stream 1 and ``test_seed``, so the test
    set stays fixed whatever the training size or seed; ``signal_fraction`` of each."""
    n, n_test = int(opt(cfg, "n", 100_000)), int(opt(cfg, "n_test", 50_000))
    frac = float(opt(cfg, "signal_fraction", 0.5))
    if n < 4 or n_test < 2 or not 0.0 < frac < 1.0:
        raise DlxError(f"data {name} needs n>=4, n_test>=2 and signal_fraction in (0, 1); got n={n} "
                       f"n_test={n_test} signal_fraction={frac}")
    particles = particles_of(cfg, name, on_files=False)
    x, y = generated(draw, n, 0, int(opt(cfg, "seed", 0)), frac, particles)
    xt, yt = generated(draw, n_test, 1, int(opt(cfg, "test_seed", 0)), frac, particles)
    if y.min() == y.max() or yt.min() == yt.max():
        raise DlxError(f"data {name} drew only one class; raise n, n_test or move signal_fraction from 0 "
                       "or 1")
    return x, y, xt, yt


# ---------------------------------------------------------------- the real UCI file


def source_file(root) -> Path:
    """The HIGGS file named by ``data.root``: the file itself, or HIGGS.csv / HIGGS.csv.gz in a folder."""
    path = Path(str(root)).expanduser()
    if path.is_dir():
        for name in ("HIGGS.csv", "HIGGS.csv.gz"):
            if (path / name).is_file():
                return path / name
        raise DlxError(f"data.root={root} holds no HIGGS.csv or HIGGS.csv.gz (the UCI HIGGS file: no header, "
                       "label then 28 features)")
    if not path.is_file():
        raise DlxError(f"data.root={root} does not exist (give the folder of HIGGS.csv(.gz) or the file)")
    return path


def _fingerprint(src: Path) -> dict:
    st = src.stat()
    return {"name": src.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            h.update(block)
    return h.hexdigest()


_VERIFIED: dict[tuple, bool] = {}  # cache files whose checksum this process has already checked


def cache_files(src: Path, cache_dir) -> tuple[Path, Path]:
    folder = Path(str(cache_dir)).expanduser() if cache_dir else src.parent
    stem = src.name.removesuffix(".gz").removesuffix(".csv")
    return folder / f"{stem}.f32", folder / f"{stem}.f32.json"


def valid_cache(data: Path, info: Path, columns: int, **expected) -> dict | None:
    """The JSON record ``info`` of the float32 cache ``data`` (rows x ``columns``) when it is still good: it
    records ``expected`` (the sources' fingerprints), the file has the recorded size, and its SHA-256 (checked
    once per process and file version) matches; else None (rebuild it). Shared by the htautau loader."""
    try:
        meta = json.loads(info.read_text())
    except (OSError, ValueError):
        return None
    if any(meta.get(k) != v for k, v in expected.items()) or not data.is_file():
        return None
    rows, cols = meta.get("shape", (0, 0))
    if data.stat().st_size != rows * cols * 4 or cols != columns:
        return None
    key = (str(data), data.stat().st_mtime_ns)
    if not _VERIFIED.get(key):
        if _sha256(data) != meta.get("sha256"):
            return None
        _VERIFIED[key] = True
    return meta


def _read_csv(src: Path, out, chunk_rows: int) -> tuple[int, str]:
    """Parse ``src`` in chunks, checking every row, appending float32 rows to ``out``; (rows, sha256)."""
    import pandas as pd

    h, rows = hashlib.sha256(), 0
    try:
        reader = pd.read_csv(src, header=None, chunksize=chunk_rows, dtype=np.float64, engine="c")
        for chunk in reader:
            a = chunk.to_numpy()
            if a.shape[1] != COLUMNS:
                raise DlxError(f"{src} has {a.shape[1]} columns, expected {COLUMNS} (label, 21 low-level and "
                               "7 high-level features)")
            bad = np.isnan(a).any(1)
            if bad.any():
                i = int(np.argmax(bad))
                have = int((~np.isnan(a[i])).sum())
                raise DlxError(f"{src} row {rows + i + 1} has {have} values, expected {COLUMNS} (a short or "
                               "empty field)")
            labels = a[:, 0]
            if not np.isin(labels, (0.0, 1.0)).all():
                i = int(np.argmax(~np.isin(labels, (0.0, 1.0))))
                raise DlxError(f"{src} row {rows + i + 1}: label {labels[i]:g} is not 0 or 1")
            block = np.ascontiguousarray(a, dtype=np.float32).tobytes()
            h.update(block)
            out.write(block)
            rows += len(a)
    except pd.errors.ParserError as err:
        raise DlxError(f"{src} is not a HIGGS table: {str(err).strip().splitlines()[-1]}") from None
    except (ValueError, EOFError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DlxError(f"{src} could not be read as a HIGGS table: {first}") from None
    if rows == 0:
        raise DlxError(f"{src} has no rows")
    return rows, h.hexdigest()


def built_cache(data: Path, info: Path, what: str, columns: int, expected: dict, write) -> dict:
    """The record of the float32 cache ``data`` (rows x ``columns``), reused while ``valid_cache`` says so,
    else rebuilt: ``write(out)`` streams the rows into an open file and returns the record's other fields
    (``shape``, ``sha256``, ...). Under a lock, so concurrent runs build it once; the array and then its
    record are each written to a temporary file and renamed, so a crash never leaves a record describing a
    half-written array. Shared by the htautau loader."""
    try:
        data.parent.mkdir(parents=True, exist_ok=True)
        lock = open(f"{data}.lock", "a")  # noqa: SIM115  (held for the whole build)
    except OSError as err:
        raise DlxError(f"cannot write the {what} cache in {data.parent} ({err.strerror}); set data.cache_dir "
                       "to a writable folder") from None
    import fcntl

    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent runs: one builds, the others wait and reuse
        meta = valid_cache(data, info, columns, **expected)
        if meta is None:
            info.unlink(missing_ok=True)  # no record may describe a half-replaced array
            tmp = data.with_name(data.name + f".tmp{os.getpid()}")
            try:
                with open(tmp, "wb") as out:
                    fields = write(out)
                os.replace(tmp, data)
            finally:
                tmp.unlink(missing_ok=True)
            meta = {**expected, **fields}
            tmp_info = info.with_name(info.name + f".tmp{os.getpid()}")
            tmp_info.write_text(json.dumps(meta, indent=1))
            os.replace(tmp_info, info)
            _VERIFIED[(str(data), data.stat().st_mtime_ns)] = True
    return meta


def cached_array(src: Path, cache_dir=None, chunk_rows: int = 500_000) -> np.memmap:
    """The file as a read-only memory-mapped (rows, 29) float32 array, parsing it once into a cache."""
    data, info = cache_files(src, cache_dir)

    def write(out) -> dict:
        rows, digest = _read_csv(src, out, chunk_rows)
        return {"shape": [rows, COLUMNS], "dtype": "float32", "sha256": digest,
                "format": "raw little-endian float32, row-major: label, 28 features"}

    meta = built_cache(data, info, "HIGGS", COLUMNS, {"source": _fingerprint(src)}, write)
    return np.memmap(data, dtype="<f4", mode="r", shape=tuple(meta["shape"]))


class MemmapSplit:
    """Rows of an on-disk (rows, 29) array as an (x, y) split: each batch is read from the memory map
    (label column 0, features ``cols``), standardized with ``mean``/``std`` and put on ``device``."""

    CHUNK = 1 << 16  # rows read from the map at once

    def __init__(self, array: np.ndarray, rows: np.ndarray, cols: slice, mean: np.ndarray | None,
                 std: np.ndarray | None, device="cpu"):
        self.array, self.rows, self.cols = array, np.asarray(rows, np.int64), cols
        self.mean, self.std, self.device = mean, std, device
        r = self.rows
        contiguous = len(r) > 0 and int(r[-1]) - int(r[0]) + 1 == len(r) and bool((np.diff(r) == 1).all())
        self.start = int(r[0]) if contiguous else None  # contiguous rows are sliced, not gathered

    def __len__(self) -> int:
        return len(self.rows)

    def to(self, device) -> MemmapSplit:
        return MemmapSplit(self.array, self.rows, self.cols, self.mean, self.std, device)

    def read(self, idx) -> tuple[np.ndarray, np.ndarray]:
        """(features, labels) of the rows at positions ``idx`` of this split (a slice or sorted indices)."""
        if self.start is not None and isinstance(idx, slice):
            block = np.asarray(self.array[self.start + idx.start: self.start + min(idx.stop, len(self))])
        else:
            block = self.array[self.rows[idx]]
        x = block[:, 1:][:, self.cols].astype(np.float32)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x, block[:, 0].astype(np.int64)

    def _tensors(self, x, y):
        return torch.from_numpy(np.ascontiguousarray(x)).to(self.device), torch.from_numpy(y).to(self.device)

    def batches(self, batch_size: int, shuffle: bool = False,
                generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of the split (in a random order drawn from ``generator`` when shuffling). Rows are read
        from the map a block of about ``CHUNK`` at a time, in file order, then put back in the batch order
        and moved to the device in one piece; the batches are slices of that block."""
        n = len(self)
        order = torch.randperm(n, generator=generator).numpy() if shuffle else None
        step = max(batch_size, self.CHUNK // batch_size * batch_size)
        for i in range(0, n, step):
            if shuffle:
                pos = order[i:i + step]
                ranked = np.sort(pos)
                x, y = self.read(ranked)
                back = np.searchsorted(ranked, pos)  # each batch position's row within the sorted read
                x, y = x[back], y[back]
            else:
                x, y = self.read(slice(i, i + step))
            xt, yt = self._tensors(x, y)
            for j in range(0, len(yt), batch_size):
                yield xt[j:j + batch_size], yt[j:j + batch_size]

    def _all(self):
        xs, ys = [], []
        for i in range(0, len(self), 1 << 20):
            x, y = self.read(slice(i, i + (1 << 20)))
            xs.append(x)
            ys.append(y)
        return self._tensors(np.concatenate(xs), np.concatenate(ys))

    @property
    def x(self) -> torch.Tensor:
        """All features in memory (what a scikit-learn baseline fits on)."""
        return self._all()[0]

    @property
    def y(self) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.array[self.rows, 0]).astype(np.int64)).to(self.device)


def moments(array, rows: np.ndarray, cols: slice, chunk: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std (float32) of ``rows``, accumulated in float64 chunk by chunk."""
    total = sq = None
    for i in range(0, len(rows), chunk):
        x = np.asarray(array[rows[i:i + chunk]], np.float64)[:, 1:][:, cols]
        total = x.sum(0) if total is None else total + x.sum(0)
        sq = (x ** 2).sum(0) if sq is None else sq + (x ** 2).sum(0)
    mean = total / len(rows)
    std = np.sqrt(np.maximum(sq / len(rows) - mean ** 2, 0.0))
    return mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)


def real_bundle(cfg, cols: slice, meta: Meta) -> DataBundle:
    refuse_class_keys(cfg, "higgs_uci")
    src = source_file(cfg.root)
    test_rows = int(opt(cfg, "test_rows", 500_000))
    array = cached_array(src, opt(cfg, "cache_dir"))
    total = len(array)
    if not 1 <= test_rows < total:
        raise DlxError(f"data.test_rows={test_rows} must be at least 1 and leave training rows: {src} has "
                       f"{total} rows")
    train = np.arange(total - test_rows)
    test = np.arange(total - test_rows, total)
    meta.extra.update(source=str(src), rows=total)
    return memmap_bundle(cfg, array, train, test, cols, meta)


def memmap_bundle(cfg, array, train: np.ndarray, test: np.ndarray, cols: slice, meta: Meta) -> DataBundle:
    """Splits of a memory-mapped event table: ``val_fraction`` and ``n_train`` carved from the ``train``
    rows (seeded by ``subset_seed``; smaller ``n_train`` subsets nested in larger ones), every split read in
    row order, normalised by the training rows' moments (``normalize``)."""
    rng = np.random.default_rng(int(opt(cfg, "subset_seed", 0)))
    val = None
    frac = float(opt(cfg, "val_fraction", 0.0))
    if not 0.0 <= frac < 1.0:
        raise DlxError(f"data.val_fraction must be in [0, 1), got {frac}")
    if round(frac * len(train)) > 0:
        perm = rng.permutation(len(train))
        k = int(round(frac * len(train)))
        val, train = np.sort(train[perm[:k]]), np.sort(train[perm[k:]])
    n_train = opt(cfg, "n_train")
    if n_train is not None:
        if not 2 <= int(n_train) <= len(train):
            raise DlxError(f"data.n_train={int(n_train)} must be between 2 and the {len(train)} training "
                           "rows")
        # a prefix of one seeded permutation: smaller subsets are nested in larger ones
        perm = np.random.default_rng(int(opt(cfg, "subset_seed", 0))).permutation(len(train))
        train = np.sort(train[perm[:int(n_train)]])
    mean = std = None
    if opt(cfg, "normalize", True):
        mean, std = moments(array, train, cols)
        meta.extra.update(norm_mean=mean.tolist(), norm_std=std.tolist())
    return DataBundle(train=MemmapSplit(array, np.sort(train), cols, mean, std),
                      test=MemmapSplit(array, np.sort(test), cols, mean, std),
                      val=None if val is None else MemmapSplit(array, val, cols, mean, std), meta=meta)


@register_data("higgs_uci", root="optional")
def build(cfg) -> DataBundle:
    name, cols = feature_slice(cfg)
    names = (LOW + HIGH)[cols]
    meta = Meta("higgs_uci", "binary", (len(names),), class_names=["background", "signal"], num_outputs=1,
                feature_names=names, extra={"features": name})
    particles = particles_of(cfg, "higgs_uci", on_files=opt(cfg, "root") is not None)
    if opt(cfg, "root") is not None:
        return real_bundle(cfg, cols, meta)
    x, y, xt, yt = generated_events(cfg, "higgs_uci", generate)
    meta.extra.update(source="generator", particles=particles)
    return table_bundle(cfg, x[:, cols], y, meta, xt[:, cols], yt)
