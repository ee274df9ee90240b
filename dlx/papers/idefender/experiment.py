"""`dlx detect-adversarial` (`dlx reproduce idefender`): I-defender (Zheng & Hong, NeurIPS 2018) and
baselines against standard attacks.

Steps: a classifier (trained here into classifier/, or an existing dlx train run) -> its correctly
classified test inputs in [0, 1] pixels (normalization inside the model) -> detectors fit on clean
training data, thresholded on clean validation data at `detector.fpr` (one global threshold, or one per
predicted class with `detector.per_class`) -> ART's FGSM/BIM/PGD/DeepFool/CW, gray-box (on the classifier
itself) and black-box (crafted on a substitute and transferred; by default the substitute learns from the
target's predicted labels of held-out inputs, Papernot et al. 2017, see substitute.py) -> each detector
scored on the successful adversarials against the clean test inputs -> the I-defender ablation over
mixture size and modelled layers -> the claims (verdicts.py), decided on bootstrap replicates of the scores
over test examples.

Tables: results.csv (setting x attack x detector), scores.csv (every scored input, and whether its
detector's threshold flags it), ablation.csv and fpr_per_class.csv (the realized false-positive rate per
predicted class, under a global and under per-class thresholds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlx.errors import DlxError
from dlx.papers.idefender.classifier import classifier, predict
from dlx.papers.idefender.substitute import SubstituteOptions
from dlx.papers.idefender.verdicts import check_rules, claims
from dlx.runs import Run, write_csv

SETTINGS = ("graybox", "blackbox")


@dataclass
class Options:
    attacks: list[str]
    detectors: list[str]
    settings: list[str]
    fpr: float
    lid_attack: str
    blackbox_attacks: list[str]
    per_class: bool
    substitute: SubstituteOptions
    rules: dict  # idefender.rules, checked numbers (verdicts.check_rules)
    replicates: int  # bootstrap resamples of the test examples behind every claim's interval
    boot_seed: int


def options(cfg) -> Options:
    """Every name and number checked before anything is trained."""
    from dlx.config import name_list, number
    from dlx.papers.idefender.attacks import check_attacks, check_settings
    from dlx.papers.idefender.detectors import check_detectors
    from dlx.papers.idefender.substitute import substitute_options

    fpr = float(cfg.detector.fpr)
    if not 0.0 < fpr < 1.0:
        raise DlxError(f"detector.fpr must be in (0, 1), got {fpr}")
    per_class = cfg.detector.per_class
    if not isinstance(per_class, bool):
        raise DlxError(f"detector.per_class must be true or false, got {per_class!r}")
    dets = check_detectors(cfg.detectors, "detectors")
    lid_attack = str(cfg.detector.lid.train_attack)
    if "lid" in dets:
        check_attacks([lid_attack], "detector.lid.train_attack")
    opts = Options(check_attacks(cfg.attacks, "attacks"), dets,
                   name_list(cfg.settings, list(SETTINGS), "settings", "setting"), fpr, lid_attack,
                   check_attacks(cfg.substitute.attacks, "substitute.attacks"), per_class,
                   substitute_options(cfg), check_rules(cfg.idefender.rules),
                   number(cfg.idefender.bootstrap.replicates, "idefender.bootstrap.replicates", lo=2,
                          integer=True),
                   number(cfg.idefender.bootstrap.seed, "idefender.bootstrap.seed", lo=0, integer=True))
    check_settings(cfg.attack, [*opts.attacks, *([lid_attack] if "lid" in dets else [])])
    return opts


def check_model_layers(cfg, model) -> None:
    from dlx.papers.idefender.features import check_layers

    for name in ("idefender", "mahalanobis", "lid"):
        check_layers(model, cfg.detector[name].layers)
    check_layers(model, [cfg.detector.kd_bu.layer])
    for spec in cfg.ablation.layers:
        check_layers(model, str(spec).split("+"))


@dataclass
class Target:
    """The attacked classifier seen from [0, 1] pixel space, and what the detectors observe of it."""

    model: torch.nn.Module
    meta: object  # the data's Meta (input shape, classes): what a substitute is built for
    device: str
    mean: torch.Tensor
    std: torch.Tensor
    clip: tuple[float, float]
    shape: tuple[int, ...]
    classes: int
    mc: int
    seed: int

    @classmethod
    def of(cls, parts, cfg) -> Target:
        from dlx.papers.idefender.wrap import norm_stats

        shape = tuple(parts.data.meta.input_shape)
        mean, std = norm_stats(parts.data.meta, shape)
        return cls(parts.model, parts.data.meta, parts.device, mean.to(parts.device), std.to(parts.device),
                   (float(cfg.attack.clip[0]), float(cfg.attack.clip[1])), shape,
                   int(parts.data.meta.num_classes), int(cfg.detector.mc_samples), int(cfg.seed))

    def to_pixels(self, x: torch.Tensor) -> np.ndarray:
        from dlx.papers.idefender.wrap import to_pixels

        return to_pixels(x, self.mean, self.std).clamp(*self.clip).cpu().numpy()

    def model_input(self, x_pix: np.ndarray) -> torch.Tensor:
        from dlx.papers.idefender.wrap import from_pixels

        return from_pixels(torch.as_tensor(x_pix, device=self.device), self.mean, self.std)

    def predict(self, x_pix: np.ndarray) -> np.ndarray:
        return predict(self.model, self.model_input(x_pix))

    def observe(self, x_pix: np.ndarray):
        from dlx.papers.idefender.features import observe

        return observe(self.model, self.model_input(x_pix), mc_samples=self.mc, seed=self.seed)

    def art(self, model=None):
        """An ART classifier of ``model`` (default: the target itself) in pixel space."""
        from dlx.papers.idefender.attacks import art_classifier
        from dlx.papers.idefender.wrap import PixelModel

        pixel_model = PixelModel(model or self.model, self.mean, self.std).to(self.device).eval()
        return art_classifier(pixel_model, self.shape, self.classes, self.clip, self.device)


def splits(data, seed: int):
    """(val, test) as (x, y) tensors; without a validation split, the test split is halved (stratified):
    one half calibrates thresholds, the other is evaluated."""
    from dlx.data.prep import stratified_pick

    te = data.test
    if data.val is not None:
        return (data.val.x, data.val.y), (te.x, te.y), "val"
    y = te.y.cpu().numpy()
    cal, ev = stratified_pick(y, len(y) // 2, seed)
    cal_t, ev_t = torch.as_tensor(cal, device=te.x.device), torch.as_tensor(ev, device=te.x.device)
    return (te.x[cal_t], te.y[cal_t]), (te.x[ev_t], te.y[ev_t]), "test half"


def sources(target: Target, x_te, y_te, max_examples) -> tuple[np.ndarray, np.ndarray, float]:
    """The correctly classified test inputs to attack, as pixels (a seeded subset of max_examples),
    their labels, and the clean test accuracy."""
    y = y_te.cpu().numpy()
    right = predict(target.model, x_te) == y
    idx = np.flatnonzero(right)
    if max_examples is not None and len(idx) > int(max_examples):
        idx = np.sort(np.random.default_rng(target.seed).choice(idx, int(max_examples), replace=False))
    if len(idx) == 0:
        raise DlxError("the classifier gets no test input right; nothing to attack")
    return target.to_pixels(x_te[idx]), y[idx], float(right.mean())


def fit_detectors(cfg, opts: Options, target: Target, data, val, x_clean: np.ndarray):
    """Detectors fit on clean training data (LID also on its known attack against validation inputs),
    thresholded at opts.fpr on clean validation scores (globally, or per predicted class with
    opts.per_class). Returns (detectors, supervision, thresholds, clean test scores, training observations,
    the per-class false-positive table)."""
    from dlx.papers.idefender.attacks import craft
    from dlx.papers.idefender.detectors import build_detector
    from dlx.papers.idefender.features import observe

    obs_train = observe(target.model, data.train.x)
    y_train = data.train.y.cpu().numpy()
    obs_val = observe(target.model, val[0], mc_samples=target.mc, seed=target.seed)
    dets = {n: build_detector(n, cfg.detector, target.seed).fit(obs_train, y_train) for n in opts.detectors}
    supervision = {n: "unsupervised" for n in dets}
    if "lid" in dets:
        y_val = val[1].cpu().numpy()
        ok = np.flatnonzero(predict(target.model, val[0]) == y_val)
        xv = target.to_pixels(val[0][ok])
        xv_adv = craft(opts.lid_attack, target.art(), xv, y_val[ok], cfg.attack, target.seed)
        hit = target.predict(xv_adv) != y_val[ok]
        if not hit.any():
            raise DlxError(f"LID's known attack '{opts.lid_attack}' fooled the classifier on no validation "
                           "input")
        dets["lid"].fit_supervised(target.observe(xv), target.observe(xv_adv[hit]))
        supervision["lid"] = f"supervised:{opts.lid_attack}"
    obs_clean = target.observe(x_clean)
    thr, clean_scores, fpr_rows = {}, {}, []
    for n, d in dets.items():
        d.calibrate(obs_val)
        val_scores = d.score(obs_val)
        clean_scores[n] = d.score(obs_clean)
        thr[n], rows = class_thresholds(n, val_scores, obs_val.pred, clean_scores[n], obs_clean.pred,
                                        opts, target.classes)
        fpr_rows += rows
    return dets, supervision, thr, clean_scores, (obs_train, y_train, obs_clean), fpr_rows


def class_thresholds(name: str, val_scores, val_pred, clean_scores, clean_pred, opts: Options, classes: int):
    """The detector's thresholds in force (global or per class), and fpr_per_class.csv's rows for it: the
    realized false-positive rate of each predicted class on clean validation (where thresholds are set)
    and clean test inputs, under both a global and per-class thresholds, the one in force marked."""
    from dlx.papers.idefender.detectors import class_fpr, thresholds

    rows, used = [], None
    for per_class in (False, True):
        t = thresholds(val_scores, val_pred, opts.fpr, per_class)
        if per_class == opts.per_class:
            used = t
        on_val = class_fpr(val_scores, val_pred, t, classes)
        on_test = class_fpr(clean_scores, clean_pred, t, classes)
        for v, te in zip(on_val, on_test, strict=True):
            rows.append({"detector": name, "thresholds": t.mode, "used": per_class == opts.per_class,
                         "class": v["class"], "threshold": v["threshold"], "fpr_target": opts.fpr,
                         "n_val": v["n"], "fpr_val": v["fpr"], "n_test": te["n"], "fpr_test": te["fpr"]})
    return used, rows


def class_spread(fpr_rows: list[dict], detector: str, split: str = "test") -> tuple[float, float]:
    """(lowest, highest) realized FPR over the predicted classes under the thresholds in force."""
    vals = [r[f"fpr_{split}"] for r in fpr_rows if r["detector"] == detector and r["used"]
            and r[f"fpr_{split}"] == r[f"fpr_{split}"]]
    return (float(min(vals)), float(max(vals))) if vals else (float("nan"), float("nan"))


def setting_attacks(opts: Options, setting: str) -> list[str]:
    """The attacks run in ``setting``: all on the classifier itself (gray-box), the transferable ones on
    the substitute (black-box)."""
    return opts.attacks if setting == "graybox" else [a for a in opts.attacks if a in opts.blackbox_attacks]


def attack_subset(cfg, attack: str, n: int, seed: int) -> np.ndarray:
    """Indices of the sources an attack runs on: all, or a seeded subset of its own max_examples."""
    cap = (cfg.attack.get(attack) or {}).get("max_examples")
    if cap is None or int(cap) >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed + 1).choice(n, int(cap), replace=False))


def blackbox_attacker(opts: Options, tcfg, target: Target, run: Run, val, x_te, y_te):
    """The substitute the black-box attacks are crafted on, and what describes it in every table: the
    protocol, the queries it took, how often it agrees with the target on the test split; training seconds."""
    from dlx.papers.idefender.substitute import substitute

    t0 = time.time()
    sub, queries = substitute(opts.substitute, tcfg, target, run, target.to_pixels(val[0]),
                              val[1].cpu().numpy())
    train_s = round(time.time() - t0, 3)
    sub_pred, y = predict(sub, x_te), y_te.cpu().numpy()
    info = {"substitute": f"{opts.substitute.labels}-labelled",  # query-labelled | true-labelled
            "substitute_model": opts.substitute.model or tcfg.model.name,
            "substitute_queries": np.nan if queries is None else int(queries),
            "substitute_agreement": float((sub_pred == predict(target.model, x_te)).mean()),
            "substitute_acc": float((sub_pred == y).mean())}
    return target.art(sub), info, opts.substitute.describe(queries), train_s


def run(cfg, run: Run):
    import pandas as pd

    from dlx.papers.idefender.attacks import LINF, craft, perturbation
    from dlx.papers.idefender.detectors import separation

    opts = options(cfg)
    t0 = time.time()
    tcfg, parts = classifier(cfg, run, check=lambda model: check_model_layers(cfg, model))
    target = Target.of(parts, cfg)
    val, (x_te, y_te), calib = splits(parts.data, target.seed)
    x_src, y_src, clean_acc = sources(target, x_te, y_te, cfg.attack.max_examples)
    dets, supervision, thresholds, clean_scores, (obs_train, y_train, obs_clean), fpr_rows = \
        fit_detectors(cfg, opts, target, parts.data, val, x_src)

    attackers = {"graybox": target.art()}
    sub_info = {"graybox": {"substitute": "none", "substitute_model": "", "substitute_queries": np.nan,
                            "substitute_agreement": np.nan, "substitute_acc": np.nan}}
    sub_desc, sub_s = None, None
    if "blackbox" in opts.settings:
        attackers["blackbox"], sub_info["blackbox"], sub_desc, sub_s = \
            blackbox_attacker(opts, tcfg, target, run, val, x_te, y_te)
    rows, adv_obs = [], {}
    clean_thr = {n: t.at(obs_clean.pred) for n, t in thresholds.items()}
    score_rows = [pd.DataFrame({"setting": "", "attack": "clean", "detector": n, "label": 0, "score": s,
                                "flagged": s > clean_thr[n]}) for n, s in clean_scores.items()]
    for setting in opts.settings:
        for a in setting_attacks(opts, setting):
            k = attack_subset(cfg, a, len(y_src), target.seed)
            ta = time.time()
            x_adv = craft(a, attackers[setting], x_src[k], y_src[k], cfg.attack, target.seed)
            attack_s = time.time() - ta
            fooled = target.predict(x_adv) != y_src[k]
            l2, linf = perturbation(x_src[k][fooled], x_adv[fooled])
            obs_adv = target.observe(x_adv[fooled])
            adv_pred = obs_adv.pred if len(obs_adv) else np.zeros(0, np.int64)  # nothing fooled: no logits
            if setting == "graybox":
                adv_obs[a] = obs_adv
            for n, d in dets.items():
                s = d.score(obs_adv) if len(obs_adv) else np.zeros(0)
                adv_thr = thresholds[n].at(adv_pred)
                lo, hi = class_spread(fpr_rows, n)
                rows.append({"setting": setting, "attack": a, "detector": n, "supervision": supervision[n],
                             **separation(clean_scores[n], s, clean_thr[n], adv_thr),
                             "fpr_target": opts.fpr, "thresholds": thresholds[n].mode,
                             "fpr_class_min": lo, "fpr_class_max": hi,
                             "success_rate": float(fooled.mean()),
                             "l2": float(l2.mean()) if len(l2) else np.nan,
                             "linf": float(linf.mean()) if len(linf) else np.nan, "clean_acc": clean_acc,
                             "n": int(fooled.sum()), "n_attacked": len(fooled), "n_clean": len(obs_clean),
                             "eps": float(cfg.attack.eps) if a in LINF else np.nan,
                             "attack_s": round(attack_s, 3), "calibration": calib, **sub_info[setting]})
                score_rows.append(pd.DataFrame({"setting": setting, "attack": a, "detector": n, "label": 1,
                                                "score": s, "flagged": s > adv_thr}))
    df = pd.DataFrame(rows)
    scores = pd.concat(score_rows, ignore_index=True)
    write_csv(run.path("results.csv"), df)
    write_csv(run.path("scores.csv"), scores)
    write_csv(run.path("fpr_per_class.csv"), pd.DataFrame(fpr_rows))
    if "graybox" in opts.settings:
        abl = ablation(cfg, obs_train, y_train, obs_clean, adv_obs, target.seed, dets.get("idefender"))
        write_csv(run.path("ablation.csv"), abl)
    metrics = {"clean_accuracy": clean_acc}
    for r in rows:
        metrics[f"{r['setting']}.{r['attack']}.{r['detector']}.auroc"] = r["auroc"]
        metrics[f"{r['setting']}.{r['attack']}.success_rate"] = r["success_rate"]
    fpr_classes = {}
    for n in dets:
        lo, hi = class_spread(fpr_rows, n)
        metrics[f"{n}.fpr_class_spread"] = hi - lo
        fpr_classes[n] = {"thresholds": thresholds[n].mode, "fpr_target": opts.fpr, "fpr_test_min": lo,
                          "fpr_test_max": hi, "fpr_val_min": class_spread(fpr_rows, n, "val")[0],
                          "fpr_val_max": class_spread(fpr_rows, n, "val")[1]}
    substitute = None
    if sub_desc is not None:
        info = sub_info["blackbox"]
        queries = info["substitute_queries"]
        substitute = {"protocol": sub_desc, "labels": opts.substitute.labels,
                      "model": info["substitute_model"],
                      "queries": None if queries != queries else int(queries),
                      "agreement": info["substitute_agreement"], "accuracy": info["substitute_acc"],
                      "train_s": sub_s}
        metrics["substitute_agreement"] = sub_info["blackbox"]["substitute_agreement"]
    said = claims(scores, df, opts.rules, fpr=opts.fpr, substitute=sub_desc, replicates=opts.replicates,
                  seed=opts.boot_seed)  # the bootstrap behind every claim's interval
    run.summary("completed", metrics, device=target.device, params=parts.params, model=tcfg.model.name,
                data=tcfg.data.name, calibration=calib, n_attacked=len(y_src),
                thresholds="per_class" if opts.per_class else "global", fpr_per_class=fpr_classes,
                substitute=substitute, experiment_s=round(time.time() - t0, 3), claims=said)
    plot(run.dir)
    return df


def ablation(cfg, obs_train, y_train, obs_clean, adv_obs: dict, seed: int, fitted=None):
    """I-defender AUROC per gray-box attack as the mixture size or the modelled layer(s) change; a variant
    whose mixtures the run's own I-defender (``fitted``, on the same training data) already holds takes them
    (the default's size and each of its layers) instead of refitting them."""
    import pandas as pd

    from dlx.papers.idefender.detectors import separation

    rows = []
    for kind, value, det in ablation_variants(cfg, seed):
        if not det.adopt(fitted):
            det.fit(obs_train, y_train)
        clean = det.score(obs_clean)
        for a, obs in adv_obs.items():
            auroc = separation(clean, det.score(obs), np.inf)["auroc"] if len(obs) else np.nan
            rows.append({"ablation": kind, "value": value, "attack": a, "auroc": auroc,
                         "layers": "+".join(det.layers), "components": det.k})
    return pd.DataFrame(rows)


def ablation_variants(cfg, seed: int) -> list[tuple[str, str, object]]:
    """(ablation, value, unfitted IDefender) for each mixture size and each modelled layer (set) ablated."""
    from dlx.papers.idefender.detectors.idefender import IDefender

    c = cfg.detector.idefender

    def det(layers, k):
        return IDefender(layers=layers, n_components=k, covariance=str(c.covariance), pca=c.pca,
                         reg_covar=float(c.reg_covar), seed=seed)

    return [("components", str(k), det(list(c.layers), int(k))) for k in cfg.ablation.components] + \
        [("layer", str(spec), det(str(spec).split("+"), int(c.components))) for spec in cfg.ablation.layers]


def plot(run_dir: Path) -> list[Path]:
    from dlx.papers.idefender.plots import plot_adversarial_run

    return plot_adversarial_run(Path(run_dir))
