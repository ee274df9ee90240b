"""A thin adapter over the Adversarial Robustness Toolbox (ART): name + config -> adversarial pixels.

Everything here is in [0, 1] pixel units (see wrap.PixelModel); ART clips to ``clip`` and keeps
L-inf attacks inside ``eps``. Untargeted attacks get the true labels so no label leaking shapes them.
"""

from __future__ import annotations

import numpy as np
import torch

ATTACKS = ("fgsm", "bim", "pgd", "deepfool", "cw")
LINF = ("fgsm", "bim", "pgd")  # bounded by eps; deepfool and cw are minimal-perturbation attacks


def check_attacks(names, key: str = "attacks") -> list[str]:
    from dlx.config import name_list

    return name_list(names, list(ATTACKS), key, "attack")


# each attack's settings in the ``attack`` block: key -> (lowest value, integer?)
SETTINGS = {
    "bim": {"eps_step": (0.0, False), "max_iter": (1, True)},
    "pgd": {"eps_step": (0.0, False), "max_iter": (1, True), "random_init": (0, True)},
    "deepfool": {"max_iter": (1, True), "overshoot": (0.0, False), "nb_grads": (1, True)},
    "cw": {"confidence": (0.0, False), "learning_rate": (0.0, False), "binary_search_steps": (1, True),
           "max_iter": (1, True), "initial_const": (0.0, False)},
}


def check_settings(acfg, names) -> None:
    """The ``attack`` block's numbers for the attacks ``names``: one clear line before anything is trained."""
    from dlx.config import number

    number(acfg.eps, "attack.eps", lo=0.0, hi=1.0)
    number(acfg.batch_size, "attack.batch_size", lo=1, integer=True)
    for key in ("max_examples",):
        if acfg.get(key) is not None:
            number(acfg[key], f"attack.{key}", lo=1, integer=True)
    for name in dict.fromkeys(names):
        a = acfg.get(name) or {}
        for key, (lo, integer) in SETTINGS.get(name, {}).items():
            number(a.get(key), f"attack.{name}.{key}", lo=lo, integer=integer)
        if a.get("max_examples") is not None:
            number(a.max_examples, f"attack.{name}.max_examples", lo=1, integer=True)


def art_classifier(pixel_model: torch.nn.Module, input_shape, num_classes: int, clip, device: str):
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(model=pixel_model.eval(), loss=torch.nn.CrossEntropyLoss(),
                             input_shape=tuple(int(s) for s in input_shape), nb_classes=int(num_classes),
                             clip_values=(float(clip[0]), float(clip[1])),
                             device_type="gpu" if str(device).startswith("cuda") else "cpu")


def make_attack(name: str, clf, cfg):
    """The ART attack object for ``name`` with settings from the ``attack`` config block."""
    from art.attacks.evasion import (
        BasicIterativeMethod,
        CarliniL2Method,
        DeepFool,
        FastGradientMethod,
        ProjectedGradientDescent,
    )

    eps, bs = float(cfg.eps), int(cfg.batch_size)  # checked by check_settings
    a = cfg.get(name, {}) or {}
    if name == "fgsm":
        return FastGradientMethod(clf, norm=np.inf, eps=eps, eps_step=eps, batch_size=bs)
    if name == "bim":
        return BasicIterativeMethod(clf, eps=eps, eps_step=float(a.eps_step), max_iter=int(a.max_iter),
                                    batch_size=bs, verbose=False)
    if name == "pgd":
        return ProjectedGradientDescent(clf, norm=np.inf, eps=eps, eps_step=float(a.eps_step),
                                        max_iter=int(a.max_iter), num_random_init=int(a.random_init),
                                        batch_size=bs, verbose=False)
    if name == "deepfool":
        return DeepFool(clf, max_iter=int(a.max_iter), epsilon=float(a.overshoot),
                        nb_grads=int(a.nb_grads), batch_size=bs, verbose=False)
    if name == "cw":
        return CarliniL2Method(clf, confidence=float(a.confidence), learning_rate=float(a.learning_rate),
                               binary_search_steps=int(a.binary_search_steps), max_iter=int(a.max_iter),
                               initial_const=float(a.initial_const), batch_size=bs, verbose=False)
    check_attacks([name])
    raise AssertionError(name)


def craft(name: str, clf, x_pix: np.ndarray, y: np.ndarray, cfg, seed: int = 0) -> np.ndarray:
    """Adversarial versions of ``x_pix`` (float32 pixels in the clip range) for true labels ``y``."""
    check_attacks([name])
    np.random.seed(seed)  # ART draws PGD's random start from numpy's global RNG
    torch.manual_seed(seed)
    onehot = np.eye(clf.nb_classes, dtype=np.float32)[np.asarray(y)]
    if len(x_pix) == 0:
        return x_pix.copy()
    x_adv = make_attack(name, clf, cfg).generate(x=x_pix.astype(np.float32), y=onehot)
    return np.asarray(x_adv, dtype=np.float32)


def perturbation(x: np.ndarray, x_adv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-example (L2, L-inf) norms of the perturbation in pixel units."""
    d = (x_adv - x).reshape(len(x), int(np.prod(x.shape[1:])))  # -1 is ambiguous when nothing was fooled
    return np.linalg.norm(d, axis=1), np.abs(d).max(axis=1, initial=0.0)
