"""The detector registry: the ``Detector`` protocol, ``@register_detector(name)`` on a Detector class and
the lookups over them. It imports no detector module (they import it), so it loads without them;
``dlx.papers.idefender.detectors`` imports them all."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Detector(ABC):
    name = "detector"
    supervised = False
    scales_with_train = False  # scoring an input compares it with every training point (its cost grows)

    @classmethod
    def from_config(cls, c, seed: int = 0) -> Detector:
        """The detector with its settings from ``c`` (its block of the ``detector`` config)."""
        return cls()

    def fit(self, train, y: np.ndarray):
        """Learn from clean training inputs (an Observed) and their labels."""
        return self

    def calibrate(self, val) -> None:
        """See clean validation inputs once before thresholds are set (default: nothing to learn)."""
        return None

    def fit_supervised(self, clean, adv) -> None:
        """Learn from adversarials of a known attack; only supervised detectors (LID) take this."""
        raise TypeError(f"{self.name} is unsupervised: it never sees adversarial examples")

    @abstractmethod
    def score(self, obs) -> np.ndarray:
        """Higher = more likely adversarial."""


DETECTORS: dict[str, type[Detector]] = {}


def register_detector(name: str):
    """Class decorator: make the Detector subclass available as ``detectors=[<name>]`` (its ``name``
    attribute, which the tables print, must agree)."""

    def deco(cls: type[Detector]) -> type[Detector]:
        if name in DETECTORS:
            raise ValueError(f"detector '{name}' registered twice")
        if cls.name != name:
            raise ValueError(f"detector '{name}': its class says name = '{cls.name}'")
        DETECTORS[name] = cls
        return cls

    return deco


def check_detectors(names, key: str = "detectors") -> list[str]:
    """``names`` as a list of registered detectors, or one DlxError naming ``key`` and the choices."""
    from dlx.config import name_list

    return name_list(names, list(DETECTORS), key, "detector")


def build_detector(name: str, cfg, seed: int = 0) -> Detector:
    """The detector ``name`` with its settings from ``cfg`` (the ``detector`` config block)."""
    check_detectors([name])
    return DETECTORS[name].from_config(cfg.get(name, {}) or {}, seed)
