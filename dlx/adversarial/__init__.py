"""Adversarial attacks (through ART) and detectors of adversarial inputs: I-defender and baselines."""
