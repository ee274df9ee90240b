"""I-defender (Zheng & Hong, NeurIPS 2018): unsupervised detection of adversarial inputs."""

from dlx.registry import Experiment, register

# the claims' numeric lines (<paper>.rules) and their bounds, checked before anything runs
RULES = {"auroc": (0, 1), "margin": (-1, 1), "fpr_tolerance": (0, 1), "transfer": (0, 1)}

register(Experiment(
    name="idefender", impl="dlx.papers.idefender.experiment", cost_impl="dlx.papers.idefender.cost",
    commands=("reproduce", "detect-adversarial"),
    cite="Zheng & Hong, NeurIPS 2018",
    title="Robust Detection of Adversarial Attacks by Modeling the Intrinsic Properties of DNNs "
          "(Zheng & Hong, NeurIPS 2018)",
    claim="hidden-layer likelihoods flag adversarial inputs",
    table_columns=("setting", "attack", "detector", "supervision", "auroc", "tpr", "success_rate", "n"),
    rules=RULES,
))
