"""`dlx detect-adversarial`: I-defender (Zheng & Hong, NeurIPS 2018) and baselines against standard attacks.

A classifier (trained here into classifier/, or an existing dlx train run) is attacked with ART's
FGSM/BIM/PGD/DeepFool/CW on its correctly classified test inputs, in [0, 1] pixels with normalization
inside the model: gray-box (on the classifier itself) and black-box (crafted on a separately trained
substitute, transferred). Detectors are fit on clean training data, thresholded on clean validation
data at `detector.fpr`, and scored on the successful adversarials against the clean test inputs.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from dlx.errors import DlxError
from dlx.runs import Run, write_csv

# what the terminal shows (results.csv has every column: realized FPR, L2/Linf, clean accuracy, ...)
TABLE_COLUMNS = ["setting", "attack", "detector", "supervision", "auroc", "tpr", "success_rate", "n"]
TRAIN_KEYS = ("model", "data", "precision", "task", "optimizer", "trainer", "seed", "device")
SETTINGS = ("graybox", "blackbox")


# ----------------------------------------------------------------------------------------- classifiers
def train_overrides(tcfg) -> list[str]:
    """Overrides that make `compose("train", ...)` rebuild ``tcfg`` exactly, so a child run we train
    here is itself a valid ``classifier.run`` (and `dlx eval` target)."""
    from omegaconf import OmegaConf

    from dlx.config import flatten

    out = [f"{g}={tcfg[g].name}" for g in ("model", "data", "precision", "task", "optimizer")]
    for key, value in flatten(OmegaConf.masked_copy(tcfg, list(TRAIN_KEYS))).items():
        out.append(f"{key}={'null' if value is None else value}")
    return out


def train_child(tcfg, run_dir: Path):
    """Train ``tcfg`` into ``run_dir`` (a normal dlx train run) and return it loaded, in eval mode."""
    from dlx.experiments import train

    child = Run(run_dir, "train")
    ov = train_overrides(tcfg)
    child.save_config(tcfg, ov)
    summary = train.run(tcfg, child, draw=False)
    if summary["status"] != "completed":
        raise DlxError(f"training the classifier in {run_dir} ended '{summary['status']}'")
    return load_run(run_dir)


def load_run(run_dir) -> tuple[object, object]:
    """(train cfg, Parts with the checkpoint's weights) of a dlx train run directory."""
    from dlx.config import compose
    from dlx.experiments.train import build
    from dlx.runs import read_overrides
    from dlx.train.checkpoint import load_weights, read_checkpoint

    run_dir = Path(str(run_dir)).expanduser()
    if not run_dir.is_dir():
        raise DlxError(f"classifier.run {run_dir} is not a directory (give a dlx train run directory)")
    ckpt = read_checkpoint(run_dir / "checkpoint.pt")
    tcfg = compose("train", read_overrides(run_dir))
    parts = build(tcfg)
    load_weights(parts.model, ckpt["model"], run_dir / "checkpoint.pt")
    parts.model.eval()
    return tcfg, parts


def classifier(cfg, run: Run):
    from omegaconf import OmegaConf

    if cfg.classifier.run:
        return load_run(cfg.classifier.run)
    tcfg = OmegaConf.masked_copy(cfg, list(TRAIN_KEYS))
    return train_child(tcfg, run.path("classifier"))


def substitute(cfg, tcfg, run: Run):
    """The black-box attacker's own model: same data, another seed and (by default) another family."""
    from omegaconf import OmegaConf

    from dlx.config import compose

    scfg = OmegaConf.to_container(tcfg, resolve=True)
    if cfg.substitute.model:
        scfg["model"] = OmegaConf.to_container(compose("train", [f"model={cfg.substitute.model}"]).model)
    scfg["seed"] = int(cfg.substitute.seed)
    return train_child(OmegaConf.create(scfg), run.path("substitute"))[1].model


# ----------------------------------------------------------------------------------------------- data
@torch.no_grad()
def predict(model, x: torch.Tensor, bs: int = 1024) -> np.ndarray:
    model.eval()
    return torch.cat([model(x[i : i + bs]).argmax(1).cpu() for i in range(0, len(x), bs)]).numpy() \
        if len(x) else np.zeros(0, np.int64)


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


# ------------------------------------------------------------------------------------------------ run
def run(cfg, run: Run):
    import pandas as pd

    from dlx.adversarial import attacks as atk
    from dlx.adversarial.detectors import build_detector, check_detectors, separation, threshold
    from dlx.adversarial.features import check_layers, observe
    from dlx.adversarial.wrap import PixelModel, from_pixels, norm_stats, to_pixels

    attack_names = atk.check_attacks(cfg.attacks, "attacks")
    det_names = check_detectors(cfg.detectors, "detectors")
    settings = [str(s) for s in cfg.settings]
    for s in settings:
        if s not in SETTINGS:
            raise DlxError(f"unknown setting '{s}' (choose from: {', '.join(SETTINGS)})")
    fpr, mc, seed = float(cfg.detector.fpr), int(cfg.detector.mc_samples), int(cfg.seed)
    if not 0.0 < fpr < 1.0:
        raise DlxError(f"detector.fpr must be in (0, 1), got {fpr}")
    lid_attack = str(cfg.detector.lid.train_attack)
    if "lid" in det_names:
        atk.check_attacks([lid_attack], "detector.lid.train_attack")

    t0 = time.time()
    tcfg, parts = classifier(cfg, run)
    model, data, device = parts.model, parts.data, parts.device
    for name in ("idefender", "mahalanobis", "lid"):
        check_layers(model, cfg.detector[name].layers)
    check_layers(model, [cfg.detector.kd_bu.layer])
    for spec in cfg.ablation.layers:
        check_layers(model, str(spec).split("+"))
    shape, classes = tuple(data.meta.input_shape), int(data.meta.num_classes)
    mean, std = norm_stats(data.meta, shape)
    mean, std = mean.to(device), std.to(device)
    lo, hi = float(cfg.attack.clip[0]), float(cfg.attack.clip[1])

    def pixel_clf(m):
        pixel_model = PixelModel(m, mean, std).to(device).eval()
        return atk.art_classifier(pixel_model, shape, classes, (lo, hi), device)

    (x_val, y_val), (x_te, y_te), calib = splits(data, seed)
    pred_te = predict(model, x_te)
    y_te_np = y_te.cpu().numpy()
    clean_acc = float((pred_te == y_te_np).mean())
    idx = np.flatnonzero(pred_te == y_te_np)
    if cfg.attack.max_examples is not None and len(idx) > int(cfg.attack.max_examples):
        idx = np.sort(np.random.default_rng(seed).choice(idx, int(cfg.attack.max_examples), replace=False))
    if len(idx) == 0:
        raise DlxError("the classifier gets no test input right; nothing to attack")
    x_src = to_pixels(x_te[idx], mean, std).clamp(lo, hi)
    x_src_np, y_src = x_src.cpu().numpy(), y_te_np[idx]

    def obs_of(x_pix_np):
        x = from_pixels(torch.as_tensor(x_pix_np, device=device), mean, std)
        return observe(model, x, mc_samples=mc, seed=seed)

    # detectors: fit on clean train, calibrate + threshold on clean validation
    obs_train = observe(model, data.train.x)
    obs_val = observe(model, x_val, mc_samples=mc, seed=seed)
    obs_clean = obs_of(x_src_np)
    y_train = data.train.y.cpu().numpy()
    dets = {n: build_detector(n, cfg.detector, seed).fit(obs_train, y_train) for n in det_names}
    target = pixel_clf(model)
    supervision = {n: "unsupervised" for n in det_names}
    if "lid" in dets:
        y_val_np = y_val.cpu().numpy()
        ok = np.flatnonzero(predict(model, x_val) == y_val_np)
        xv = to_pixels(x_val[ok], mean, std).clamp(lo, hi).cpu().numpy()
        xv_adv = atk.craft(lid_attack, target, xv, y_val_np[ok], cfg.attack, seed)
        hit = predict(model, from_pixels(torch.as_tensor(xv_adv, device=device), mean, std)) != y_val_np[ok]
        if not hit.any():
            raise DlxError(f"LID's known attack '{lid_attack}' fooled the classifier on no validation input")
        dets["lid"].fit_supervised(obs_of(xv), obs_of(xv_adv[hit]))
        supervision["lid"] = f"supervised:{lid_attack}"
    thresholds, clean_scores = {}, {}
    for n, d in dets.items():
        d.calibrate(obs_val)
        thresholds[n] = threshold(d.score(obs_val), fpr)
        clean_scores[n] = d.score(obs_clean)

    rows, score_rows, adv_obs = [], [], {}
    for n in dets:
        score_rows.append(pd.DataFrame({"setting": "", "attack": "clean", "detector": n, "label": 0,
                                        "score": clean_scores[n]}))
    sources = {"graybox": target}
    if "blackbox" in settings:
        sources["blackbox"] = pixel_clf(substitute(cfg, tcfg, run))
    blackbox_attacks = atk.check_attacks(cfg.substitute.attacks, "substitute.attacks")
    for setting in settings:
        for a in attack_names if setting == "graybox" else [b for b in attack_names if b in blackbox_attacks]:
            cap = (cfg.attack.get(a) or {}).get("max_examples")
            k = np.arange(len(y_src)) if cap is None or int(cap) >= len(y_src) else \
                np.sort(np.random.default_rng(seed + 1).choice(len(y_src), int(cap), replace=False))
            ta = time.time()
            x_adv = atk.craft(a, sources[setting], x_src_np[k], y_src[k], cfg.attack, seed)
            attack_s = time.time() - ta
            fooled = predict(model, from_pixels(torch.as_tensor(x_adv, device=device), mean, std)) != y_src[k]
            l2, linf = atk.perturbation(x_src_np[k][fooled], x_adv[fooled])
            obs_adv = obs_of(x_adv[fooled])
            if setting == "graybox":
                adv_obs[a] = obs_adv
            for n, d in dets.items():
                s = d.score(obs_adv) if len(obs_adv) else np.zeros(0)
                rows.append({"setting": setting, "attack": a, "detector": n, "supervision": supervision[n],
                             **separation(clean_scores[n], s, thresholds[n]), "fpr_target": fpr,
                             "success_rate": float(fooled.mean()),
                             "l2": float(l2.mean()) if len(l2) else np.nan,
                             "linf": float(linf.mean()) if len(linf) else np.nan, "clean_acc": clean_acc,
                             "n": int(fooled.sum()), "n_attacked": len(fooled), "n_clean": len(obs_clean),
                             "eps": float(cfg.attack.eps) if a in atk.LINF else np.nan,
                             "attack_s": round(attack_s, 3), "calibration": calib})
                score_rows.append(pd.DataFrame({"setting": setting, "attack": a, "detector": n, "label": 1,
                                                "score": s}))
    df = pd.DataFrame(rows)
    write_csv(run.path("results.csv"), df)
    write_csv(run.path("scores.csv"), pd.concat(score_rows, ignore_index=True))
    if "graybox" in settings:
        write_csv(run.path("ablation.csv"), ablation(cfg, obs_train, y_train, obs_clean, adv_obs, seed))
    metrics = {"clean_accuracy": clean_acc}
    for r in rows:
        metrics[f"{r['setting']}.{r['attack']}.{r['detector']}.auroc"] = r["auroc"]
        metrics[f"{r['setting']}.{r['attack']}.success_rate"] = r["success_rate"]
    run.summary("completed", metrics, device=device, params=parts.params, model=tcfg.model.name,
                data=tcfg.data.name, calibration=calib, n_attacked=len(idx),
                experiment_s=round(time.time() - t0, 3))
    plot(run.dir)
    return df


def ablation(cfg, obs_train, y_train, obs_clean, adv_obs: dict, seed: int):
    """I-defender AUROC per gray-box attack as the mixture size or the modelled layer(s) change."""
    import pandas as pd

    from dlx.adversarial.detectors import separation
    from dlx.adversarial.detectors.idefender import IDefender

    c = cfg.detector.idefender
    variants = [("components", str(k), list(c.layers), int(k)) for k in cfg.ablation.components]
    variants += [("layer", str(spec), str(spec).split("+"), int(c.components))
                 for spec in cfg.ablation.layers]
    rows = []
    for kind, value, layers, k in variants:
        det = IDefender(layers=layers, n_components=k, covariance=str(c.covariance), pca=c.pca,
                        reg_covar=float(c.reg_covar), seed=seed).fit(obs_train, y_train)
        clean = det.score(obs_clean)
        for a, obs in adv_obs.items():
            auroc = separation(clean, det.score(obs), np.inf)["auroc"] if len(obs) else np.nan
            rows.append({"ablation": kind, "value": value, "attack": a, "auroc": auroc,
                         "layers": "+".join(layers), "components": k})
    return pd.DataFrame(rows)


def plot(run_dir: Path) -> list[Path]:
    from dlx.plots.adversarial import plot_adversarial_run

    return plot_adversarial_run(Path(run_dir))
