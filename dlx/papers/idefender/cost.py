"""`--estimate` for `dlx detect-adversarial` (`dlx reproduce idefender`): each phase of the run is timed on
this device at a bounded size, then scaled to the configured one. Nothing is written.

- classifier: a few real training steps and one evaluation (dlx/estimate.py), or loading ``classifier.run``;
- substitute: its training steps timed on its own model, summed over the Jacobian rounds (the labelled set
  doubles per round), plus the queries and augmentation passes; a whole train run for ``labels=true``;
- attacks: each crafted on one batch of inputs (``attack.batch_size``) with BIM/PGD/CW cut to PILOT_ITERS
  iterations (their cost is linear in iterations), scaled to its inputs and iterations; DeepFool as set;
- detectors and the ablation: fit on up to PILOT_TRAIN training inputs (scaled to the training split) and
  scored on the validation inputs (scaled to every input the run scores);
- tables, claims and figures: written, decided (the claims' bootstrap) and drawn from stand-in tables of the
  run's sizes.

The pilot classifier has had only the timed training steps, so the run's attack sources (correctly classified
test inputs) are counted as every test input up to ``attack.max_examples`` — an upper bound — and every
attacked input is counted as fooled (each is observed and scored).
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import numpy as np

PILOT_ITERS = 5  # BIM/PGD iterations and CW iterations (one binary-search step) timed
PILOT_TRAIN = 500  # training inputs the detectors are fit on while timing


def cost(exp, cfg, overrides=(), say=None):
    """The `--estimate` hook (dlx/registry.py)."""
    return estimate(cfg)


def estimate(cfg):
    """The expected cost (dlx.estimate.Cost) of running the I-defender experiment ``cfg``."""
    from dlx.estimate import Cost, rss_mb
    from dlx.papers.idefender.experiment import Target, check_model_layers, options, splits

    opts = options(cfg)
    tcfg, parts, clf = classifier_cost(cfg, lambda model: check_model_layers(cfg, model))
    target = Target.of(parts, cfg)
    val, (x_te, y_te), _ = splits(parts.data, target.seed)
    n_src = len(y_te) if cfg.attack.max_examples is None else min(len(y_te), int(cfg.attack.max_examples))
    runs = attack_runs(cfg, opts, n_src)
    attacks, per_input, warm = attack_costs(cfg, opts, tcfg, target, runs, target.to_pixels(x_te),
                                            y_te.cpu().numpy(), len(val[1]))
    detectors = detector_cost(cfg, opts, target, parts.data, val, n_src, runs, per_input)
    sub = substitute_cost(opts.substitute, tcfg, parts, len(val[1])) if "blackbox" in opts.settings else 0.0
    with tempfile.TemporaryDirectory() as tmp:
        figures, tables_mb = figures_cost(cfg, opts, Path(tmp), n_src, runs)
    wall = clf.wall_s + sub + warm + attacks + detectors + figures
    detail = {"classifier_s": round(clf.wall_s, 1), "substitute_s": round(sub, 1),
              "attacks_s": round(warm + attacks, 1), "detectors_s": round(detectors, 1),
              "figures_s": round(figures, 1), "attacked<=": n_src}
    return Cost(wall, rss_mb(), clf.disk_mb + tables_mb, detail)


def classifier_cost(cfg, check):
    """(train cfg, Parts to time the rest on, Cost of getting the classifier): ``classifier.run`` loaded
    (timed whole), or the training the run will do, timed by its steps."""
    from omegaconf import OmegaConf

    from dlx.build import build
    from dlx.estimate import Cost, time_train, train_cost
    from dlx.papers.idefender.classifier import TRAIN_KEYS, load_run

    if cfg.classifier.run:
        t = time.perf_counter()
        tcfg, parts = load_run(cfg.classifier.run)
        check(parts.model)
        return tcfg, parts, Cost(time.perf_counter() - t, 0.0, 0.0, {})
    tcfg = OmegaConf.masked_copy(cfg, list(TRAIN_KEYS))
    t = time.perf_counter()
    check(build(tcfg).model)
    first = time.perf_counter() - t  # with the imports and data generation a first build pays
    t = time.perf_counter()
    parts = build(tcfg)
    again = time.perf_counter() - t
    # the run builds the classifier three times: to check its layers, to train it, to load the result
    timing = {**time_train(tcfg, parts), "setup_s": first + 2 * again}
    parts.model.eval()
    return tcfg, parts, train_cost(tcfg, timing)


def attack_runs(cfg, opts, n_src: int) -> list[tuple[str, str, int]]:
    """(setting, attack, inputs) of every attack the run crafts; LID's known attack on validation inputs is
    added by the caller that knows their number."""
    from dlx.papers.idefender.experiment import attack_subset, setting_attacks

    return [(setting, a, len(attack_subset(cfg, a, n_src, 0)))
            for setting in opts.settings for a in setting_attacks(opts, setting)]


def cut(name: str, acfg):
    """(the attack settings cut for timing, the factor from their cost to the configured one)."""
    from omegaconf import OmegaConf

    c = OmegaConf.to_container(acfg, resolve=True)
    a = c.get(name) or {}
    if name in ("bim", "pgd"):
        iters = int(a["max_iter"])
        a["max_iter"] = min(iters, PILOT_ITERS)
        factor = iters / max(a["max_iter"], 1)
    elif name == "cw":
        iters = int(a["max_iter"]) * int(a["binary_search_steps"])
        a["max_iter"], a["binary_search_steps"] = min(int(a["max_iter"]), PILOT_ITERS), 1
        factor = iters / max(a["max_iter"], 1)
    else:  # FGSM is one step; DeepFool stops per input as it crosses the boundary: timed as configured
        factor = 1.0
    c[name] = a
    return OmegaConf.create(c), factor


def attack_costs(cfg, opts, tcfg, target, runs, x_pix: np.ndarray, y: np.ndarray, n_lid: int):
    """(seconds of every attack the run crafts, seconds per input of each (model, attack) timed, the one-time
    cost of ART's first use). Gray-box attacks run on the classifier, black-box ones on the substitute,
    timed on its own model when it is a different one."""
    from dlx.papers.idefender.attacks import craft

    t = time.perf_counter()
    craft("fgsm", target.art(), x_pix[:2], y[:2], cfg.attack, target.seed)  # imports ART, first autograd pass
    warm = time.perf_counter() - t
    clfs = {"graybox": target.art()}
    if opts.substitute.model and opts.substitute.model != tcfg.model.name:
        from dlx.models import build_model
        from dlx.papers.idefender.substitute import substitute_train_cfg

        scfg = substitute_train_cfg(opts.substitute, tcfg)
        clfs["blackbox"] = target.art(build_model(scfg.model, target.meta).to(target.device))
    per_input: dict[tuple[str, str], float] = {}

    def seconds(clf_key: str, name: str, n: int) -> float:
        if (clf_key, name) not in per_input:  # one batch of the attack (ART crafts batch by batch)
            k = max(1, min(n, int(cfg.attack.batch_size), len(y)))
            acfg, factor = cut(name, cfg.attack)
            t0 = time.perf_counter()
            craft(name, clfs[clf_key], x_pix[:k], y[:k], acfg, target.seed)
            per_input[(clf_key, name)] = (time.perf_counter() - t0) * factor / k
        return per_input[(clf_key, name)]

    total = sum(n * seconds(s if s in clfs else "graybox", a, n) for s, a, n in runs)
    if "lid" in opts.detectors:
        per_input[("lid", opts.lid_attack)] = seconds("graybox", opts.lid_attack, n_lid)
    return total, per_input, warm


def detector_cost(cfg, opts, target, data, val, n_src: int, runs, per_input) -> float:
    """Observing, fitting, calibrating and scoring every detector as the run does, and the ablation's fits
    and scores; LID's crafting of its known attack on the validation inputs."""
    from dlx.papers.idefender.detectors import build_detector
    from dlx.papers.idefender.experiment import ablation_variants
    from dlx.papers.idefender.features import observe

    n_train, n_val = len(data.train), len(val[1])
    n_sub = min(n_train, PILOT_TRAIN)
    grow = n_train / n_sub
    t = time.perf_counter()
    obs_train = observe(target.model, data.train.x[:n_sub])
    y_sub = data.train.y[:n_sub].cpu().numpy()
    train_s = (time.perf_counter() - t) * grow
    t = time.perf_counter()
    obs_val = observe(target.model, val[0], mc_samples=target.mc, seed=target.seed)
    observe_s = (time.perf_counter() - t) / max(n_val, 1)  # per input observed with MC dropout
    adv = sum(n for _, _, n in runs)
    observed = n_val + n_src + adv  # validation, clean test and every adversarial set
    scored = 2 * n_val + n_src + adv  # validation twice: calibrated on, then scored for thresholds
    total = train_s + observed * observe_s
    fitted = {}
    for name in opts.detectors:
        det = fitted[name] = build_detector(name, cfg.detector, target.seed)
        t = time.perf_counter()
        det.fit(obs_train, y_sub)
        total += (time.perf_counter() - t) * grow
        if name == "lid":  # learns from its known attack's adversarials of the validation inputs
            half = max(1, n_val // 2)
            t = time.perf_counter()
            det.fit_supervised(obs_val.take(np.arange(half)), obs_val.take(np.arange(half, n_val)))
            total += time.perf_counter() - t + n_val * (per_input[("lid", opts.lid_attack)] + 2 * observe_s)
        t = time.perf_counter()
        det.calibrate(obs_val)
        det.score(obs_val)
        per = (time.perf_counter() - t) / max(2 * n_val, 1) * (grow if det.scales_with_train else 1.0)
        total += scored * per
    if "graybox" in opts.settings:  # each variant fit on training, scored on clean and gray-box inputs
        gray = sum(n for s, _, n in runs if s == "graybox")
        for _, _, det in ablation_variants(cfg, target.seed):
            if not det.adopt(fitted.get("idefender")):  # as the run: the default's mixtures are reused
                t = time.perf_counter()
                det.fit(obs_train, y_sub)
                total += (time.perf_counter() - t) * grow
            t = time.perf_counter()
            det.score(obs_val)
            total += (time.perf_counter() - t) / max(n_val, 1) * (n_src + gray)
    return total


def substitute_cost(opts, tcfg, parts, n_pool: int) -> float:
    """Seconds to get the black-box attacker's substitute: its training steps over the Jacobian rounds and
    the passes that label and augment its set (query), or a whole train run (true labels)."""
    from dlx.estimate import step_seconds, time_train, train_cost
    from dlx.models import build_model
    from dlx.papers.idefender.substitute import substitute_train_cfg

    scfg = substitute_train_cfg(opts, tcfg)
    if opts.labels == "true":
        return train_cost(scfg, time_train(scfg)).wall_s
    model = build_model(scfg.model, parts.data.meta).to(parts.device)
    step_s = step_seconds(parts, model, scfg)
    bs = int(scfg.trainer.batch_size)
    sizes = [min(opts.n_query, n_pool) * 2**r for r in range(opts.rounds + 1)]
    steps = opts.epochs * sum(math.ceil(n / bs) for n in sizes)
    # per round: the target labels the new points, the substitute is evaluated on its set once, and all but
    # the last round take a Jacobian pass (forward + backward) over it: about a step's work per batch each
    # per round the target labels the new points and the substitute is evaluated on its set (a forward pass
    # each, about a third of a training step per batch); all but the last round take a Jacobian pass
    # (forward + backward, about two thirds)
    batches = [math.ceil(n / bs) for n in sizes]
    return (steps + (2 * sum(batches) + 2 * sum(batches[:-1])) / 3) * step_s


def figures_cost(cfg, opts, tmp: Path, n_src: int, runs) -> tuple[float, float]:
    """(seconds to write the run's tables, decide its claims (the bootstrap) and draw its figures, megabytes
    of the tables): timed on stand-in tables of the run's sizes in ``tmp``."""
    import pandas as pd

    from dlx.papers.idefender.plots import plot_adversarial_run
    from dlx.papers.idefender.verdicts import claims
    from dlx.runs import write_csv

    rng = np.random.default_rng(0)
    dets = list(opts.detectors)
    results = pd.DataFrame([{"setting": s, "attack": a, "detector": d, "supervision": "unsupervised",
                             "auroc": 0.9, "success_rate": 1.0, "n_attacked": n}
                            for s, a, n in runs for d in dets])
    scores = [pd.DataFrame({"setting": "", "attack": "clean", "detector": d, "label": 0,
                            "score": rng.normal(size=n_src), "flagged": False}) for d in dets]
    scores += [pd.DataFrame({"setting": s, "attack": a, "detector": d, "label": 1,
                             "score": rng.normal(1.0, size=n), "flagged": True})
               for s, a, n in runs for d in dets]
    values = [("components", str(k)) for k in cfg.ablation.components] + \
        [("layer", str(v)) for v in cfg.ablation.layers]
    abl = pd.DataFrame([{"ablation": kind, "value": v, "attack": a, "auroc": 0.9}
                        for kind, v in values for s, a, _ in runs if s == "graybox"])
    t = time.perf_counter()
    write_csv(tmp / "results.csv", results)
    scores = pd.concat(scores, ignore_index=True)
    write_csv(tmp / "scores.csv", scores)
    claims(scores, results, opts.rules, fpr=opts.fpr, replicates=opts.replicates, seed=opts.boot_seed)
    if "graybox" in opts.settings:
        write_csv(tmp / "ablation.csv", abl)
    plot_adversarial_run(tmp)
    seconds = time.perf_counter() - t
    return seconds, sum(p.stat().st_size for p in tmp.iterdir()) / 2**20
