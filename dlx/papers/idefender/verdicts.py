"""Zheng & Hong's claims about I-defender held to dlx's rules: a pure function of the run's tables.

:func:`claims` takes scores.csv (one row per scored input: ``setting``, ``attack``, ``detector``, ``label``
0 = clean test input / 1 = successful adversarial, ``score``, and ``flagged`` = above the detector's
threshold) and results.csv (one row per setting x attack x detector; ``success_rate``, ``n_attacked`` and
``supervision`` are read), the rules (``idefender.rules``) and the nominal false-positive rate, and decides
every claim with :func:`dlx.claims.compare` on bootstrap replicates over test examples
(``method="percentile"``). No model and no training: the unit tests feed it made-up score sets.

The bootstrap (``replicates`` resamples, seeded):

* each replicate resamples the clean test inputs once, shared by every cell and detector (the same clean
  inputs are scored in every cell), and each setting x attack cell's successful adversarials once, shared
  by every detector (each detector scores the same adversarials): detectors are compared **paired**, on
  the same resample, and a difference of AUROCs is taken within each replicate;
* a claim "on every attack" is decided on the replicates of the minimum over the attacks (the worst
  attack decides): it holds when the whole 95% interval of that minimum clears the rule's line;
* success rates (the black-box transfer check) are resampled as binomial proportions of their attacked
  inputs, which is the bootstrap of a mean of 0/1 outcomes.

What it does not cover: the variability of the trained classifier, substitute and detectors (one seed)
and of the thresholds' own validation inputs (the threshold is held fixed).
"""

from __future__ import annotations

import numpy as np

OURS = "idefender"
UNSUPERVISED = ("max_softmax", "mahalanobis", "kd_bu")  # the unsupervised baselines, best of them per cell
SUPERVISED = "lid"  # supervised on one known attack
SETTINGS = ("graybox", "blackbox")
CLAIM_IDS = ("detects_graybox", "detects_blackbox", "beats_unsupervised_baselines", "beats_supervised_lid",
             "fpr_at_nominal", "blackbox_transfers")
PAPER = ("detects adversarial inputs 'without any knowledge of attackers', with 'state-of-the-art "
         "robustness in defending black-box and gray-box attacks' (abstract)")


def check_rules(rules) -> dict[str, float]:
    """``idefender.rules`` as numbers within the bounds its record declares (dlx/papers/idefender RULES)."""
    from dlx.config import numbers
    from dlx.papers.idefender import RULES

    return numbers(rules, RULES, "idefender.rules")


def boot_weights(rng, n: int, replicates: int) -> np.ndarray:
    """(replicates, n) multiplicities: how often each of n inputs is drawn in each resample of size n."""
    idx = rng.integers(0, n, size=(replicates, n)) + n * np.arange(replicates)[:, None]
    # float32 counts: exact (well below 2**24), half the memory traffic of float64
    return np.bincount(idx.ravel(), minlength=replicates * n).reshape(replicates, n).astype(np.float32)


def weighted_auroc(clean, adv, w_clean, w_adv, ranked=None) -> np.ndarray:
    """AUROC (adversarial = positive, ties count one half) of each replicate, every input counted with its
    multiplicity in that replicate: ``w_clean`` (B, n_clean), ``w_adv`` (B, n_adv). Weights of ones give
    the plain AUROC (sklearn's roc_auc_score). ``ranked``: :func:`ranked_clean` of the same, reused."""
    sorted_clean, cum = ranked if ranked is not None else ranked_clean(clean, w_clean)
    adv = np.asarray(adv, np.float64)
    lo = np.searchsorted(sorted_clean, adv, side="left")  # clean inputs strictly below each adversarial
    hi = np.searchsorted(sorted_clean, adv, side="right")  # ... and those tied with it
    below = np.take(cum, lo, axis=1)
    below += np.take(cum, hi, axis=1)  # (below + at-or-below) / 2: ties count one half
    pairs = 2.0 * w_clean.sum(axis=1, dtype=np.float64) * w_adv.sum(axis=1, dtype=np.float64)
    return np.einsum("bi,bi->b", below, w_adv, dtype=np.float64) / pairs


def ranked_clean(clean, w_clean) -> tuple[np.ndarray, np.ndarray]:
    """The clean scores sorted, and per replicate the summed weight of the k lowest, k = 0..n."""
    clean = np.asarray(clean, np.float64)
    order = np.argsort(clean, kind="stable")
    cum = np.zeros((len(w_clean), len(clean) + 1), w_clean.dtype)
    np.cumsum(w_clean[:, order], axis=1, out=cum[:, 1:])
    return clean[order], cum


class Scores:
    """scores.csv split into clean scores per detector and adversarial scores per cell and detector, with
    the bootstrap weights: clean ones shared by every cell, each cell's shared by its detectors."""

    def __init__(self, scores, replicates: int, seed: int):
        self.clean, self.flagged, self.adv = {}, {}, {}
        for name, g in scores[scores.label == 0].groupby("detector", sort=False):
            self.clean[name] = g.score.to_numpy(np.float64)
            if "flagged" in g:
                self.flagged[name] = g.flagged.to_numpy(bool)
        adv = scores[scores.label == 1]
        for (setting, attack, name), g in adv.groupby(["setting", "attack", "detector"], sort=False):
            if len(g):
                self.adv.setdefault((setting, attack), {})[name] = g.score.to_numpy(np.float64)
        sizes = {len(v) for v in self.clean.values()}
        if len(sizes) > 1:
            raise ValueError(f"detectors score different numbers of clean inputs: {sorted(sizes)}")
        for cell, d in self.adv.items():
            if len({len(v) for v in d.values()}) > 1:
                raise ValueError(f"detectors score different numbers of adversarials in {cell}")
        rng = np.random.default_rng(seed)
        n_clean = sizes.pop() if sizes else 0
        self.w_clean = boot_weights(rng, n_clean, replicates)
        self.w_adv = {c: boot_weights(rng, len(next(iter(d.values()))), replicates)
                      for c, d in self.adv.items()}
        self._reps, self._ranked = {}, {}

    def cells(self, setting: str, *detectors: str) -> list[tuple[str, str]]:
        """The cells of ``setting`` whose adversarials and clean inputs every one of ``detectors`` scored."""
        return [c for c, d in self.adv.items() if c[0] == setting
                and all(n in d and n in self.clean for n in detectors)]

    def point(self, name: str, cell) -> float:
        clean, adv = self.clean[name], self.adv[cell][name]
        return float(weighted_auroc(clean, adv, np.ones((1, len(clean))), np.ones((1, len(adv))))[0])

    def reps(self, name: str, cell) -> np.ndarray:
        """The detector's AUROC in each bootstrap replicate of the cell."""
        key = (name, cell)
        if key not in self._reps:
            if name not in self._ranked:
                self._ranked[name] = ranked_clean(self.clean[name], self.w_clean)
            self._reps[key] = weighted_auroc(self.clean[name], self.adv[cell][name], self.w_clean,
                                             self.w_adv[cell], self._ranked[name])
        return self._reps[key]


def claims(scores, results, rules, *, fpr: float, substitute: str | None = None, replicates: int = 2000,
           seed: int = 0) -> list[dict]:
    """The claim records (dlx.claims.claim) of a run, ids CLAIM_IDS, from its tables:
    ``scores`` and ``results`` (pandas DataFrames shaped as scores.csv and results.csv), ``rules`` (mapping
    with the keys of RULES in dlx/papers/idefender), ``fpr`` (the nominal false-positive rate the thresholds
    were set at) and
    ``substitute`` (what the black-box attacker's substitute was, for the black-box claim's text)."""
    from dlx.claims import claim, compare, rule_text

    rules = check_rules(rules)
    s = Scores(scores, int(replicates), int(seed))

    def decide(reps, direction, margin):
        return compare(reps, direction=direction, margin=margin, method="percentile", seed=seed)

    out = []
    blackbox = f"attacks transferred from {substitute or 'a substitute model'}"
    for setting, what in (("graybox", "attacks on the classifier itself"), ("blackbox", blackbox)):
        cells = s.cells(setting, OURS)
        text = f"I-defender, unsupervised, flags {what}"
        if not cells:
            out.append(claim(f"detects_{setting}", text, None, f"AUROC > {rules['auroc']:g} on every attack",
                             PAPER, why=f"no {setting} attack fooled the classifier, or none was run "
                                        "(settings, attacks)"))
            continue
        test = decide(np.min([s.reps(OURS, c) for c in cells], axis=0), "greater", rules["auroc"])
        measured = {c[1]: round(s.point(OURS, c), 3) for c in cells}
        rule = rule_text(test, what="I-defender's lowest AUROC over the attacks")
        out.append(claim(f"detects_{setting}", text, measured, rule, PAPER, test=test))

    unsup = [d for d in UNSUPERVISED if d in s.clean]
    out.append(beats(s, "beats_unsupervised_baselines", unsup,
                     "I-defender separates adversarials better than the best of the other unsupervised "
                     f"detectors ({', '.join(unsup) or 'none run'}) on every attack, gray- and black-box",
                     "the best unsupervised baseline's",
                     PAPER + "; dlx holds it to the unsupervised baselines it runs", rules, decide,
                     "no unsupervised baseline among the detectors (detectors)"))
    sup = [SUPERVISED] if SUPERVISED in s.clean else []
    how = supervision(results, SUPERVISED)
    out.append(beats(s, "beats_supervised_lid", sup,
                     "I-defender, which never sees an adversarial, separates them better than LID "
                     f"({how}) on every attack, gray- and black-box", "LID's",
                     PAPER + "; dlx holds it to LID (Ma et al., ICLR 2018), supervised on one known attack",
                     rules, decide, "LID is not among the detectors (detectors)"))
    out.append(fpr_claim(s, rules, fpr, decide))
    out.append(transfer_claim(results, rules, replicates, seed, decide))
    return out


def supervision(results, name: str) -> str:
    """'supervised on fgsm adversarials' from results.csv's supervision column ('supervised:fgsm')."""
    if results is None or not len(results) or "supervision" not in results:
        return "supervised"
    got = results[results.detector == name].supervision
    if not len(got) or ":" not in str(got.iloc[0]):
        return "supervised"
    return f"supervised on {str(got.iloc[0]).split(':', 1)[1]} adversarials"


def beats(s: Scores, id: str, baselines: list[str], text: str, whose: str, paper: str, rules, decide,
          absent: str) -> dict:
    """I-defender's AUROC minus the best of ``baselines``' (per replicate, paired), lowest over every cell
    of both settings, above rules['margin']."""
    from dlx.claims import claim, rule_text

    cells = [c for st in SETTINGS for c in s.cells(st, OURS, *baselines)] if baselines else []
    if not cells:
        rule = f"I-defender's AUROC minus {whose} > {rules['margin']:g} on every attack"
        return claim(id, text, None, rule, paper,
                     why=absent if not baselines else "no attack fooled the classifier")
    diffs = [s.reps(OURS, c) - np.max([s.reps(d, c) for d in baselines], axis=0) for c in cells]
    test = decide(np.min(diffs, axis=0), "greater", rules["margin"])
    measured = {}
    for c in cells:
        best = max(baselines, key=lambda d: s.point(d, c))
        measured[f"{c[0]}.{c[1]}"] = f"{s.point(OURS, c):.3f} vs {s.point(best, c):.3f}" + \
            (f" ({best})" if len(baselines) > 1 else "")
    what = f"the lowest over the attacks of I-defender's AUROC minus {whose} (paired resamples)"
    return claim(id, text, measured, rule_text(test, what=what), paper, test=test)


def fpr_claim(s: Scores, rules, fpr: float, decide) -> dict:
    """I-defender's realized false-positive rate on clean test inputs within rules['fpr_tolerance'] of the
    nominal rate its threshold was set at on clean validation inputs."""
    from dlx.claims import claim, rule_text

    tol = rules["fpr_tolerance"]
    text = (f"I-defender's threshold, set to flag {fpr:g} of the clean validation inputs, flags that "
            "fraction of the clean test inputs: detection rates are read at the nominal false-positive rate")
    flagged = s.flagged.get(OURS)
    if flagged is None or not len(flagged):
        return claim("fpr_at_nominal", text, None, f"realized FPR - {fpr:g} within ±{tol:g}", source="dlx",
                     why="no flagged column for I-defender's clean scores (scores.csv)")
    reps = (s.w_clean * flagged).sum(axis=1) / s.w_clean.sum(axis=1) - fpr
    test = decide(reps, "within", tol)
    return claim("fpr_at_nominal", text, {"fpr_test": round(float(flagged.mean()), 4), "nominal": fpr},
                 rule_text(test, what=f"the realized clean-test FPR minus {fpr:g}"), source="dlx", test=test)


def transfer_claim(results, rules, replicates: int, seed: int, decide) -> dict:
    """The transferred attacks fool the classifier on more than rules['transfer'] of the attacked inputs,
    on every black-box attack: the black-box setting is a real attack."""
    from dlx.claims import claim, rule_text

    line = rules["transfer"]
    text = (f"the attacks crafted on the substitute fool the classifier on more than {line:g} of the "
            "attacked inputs, on every black-box attack (else there is little for the black-box claim to "
            "detect)")
    rows = []
    if results is not None and len(results):
        black = results[results.setting == "blackbox"].drop_duplicates("attack")
        rows = [r for r in black.itertuples() if r.n_attacked > 0 and r.success_rate == r.success_rate]
    if not rows:
        return claim("blackbox_transfers", text, None, f"success rate > {line:g} on every attack",
                     source="dlx", why="no black-box attack run (settings, substitute.attacks)")
    rng = np.random.default_rng([int(seed), 1])
    reps = np.min([rng.binomial(int(r.n_attacked), float(r.success_rate), int(replicates)) / int(r.n_attacked)
                   for r in rows], axis=0)
    test = decide(reps, "greater", line)
    return claim("blackbox_transfers", text, {r.attack: round(float(r.success_rate), 3) for r in rows},
                 rule_text(test, what="the lowest success rate over the black-box attacks"), source="dlx",
                 test=test)
