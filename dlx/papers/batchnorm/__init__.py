"""Understanding Batch Normalization (Bjorck et al., NeurIPS 2018)."""

from dlx.registry import Experiment, Sweep, register

# the claims' numeric lines (<paper>.rules) and their bounds, checked before anything runs
RULES = {"stable_lr_ratio": (1, None), "best_gain": (-1, 1), "close_tol": (0, 1), "large_lr_gain": (-1, 1),
         "init_step_decades": (None, None), "grad_ratio": (1e-12, None), "kurtosis_gap": (None, None)}

register(Experiment(
    name="batchnorm", impl="dlx.papers.batchnorm.experiment",
    cite="Bjorck et al., NeurIPS 2018",
    title="Understanding Batch Normalization (Bjorck et al., NeurIPS 2018)",
    claim="BN works by allowing larger learning rates",
    table_columns=("bn", "lr", "seed", "train_acc", "test_acc", "diverged", "diverged_epoch", "epochs",
                   "train_s"),
    sweep=Sweep(swept_by={"optimizer.lr": "set sweep.lrs=[...]", "model.batchnorm": "set sweep.bn=[...]",
                          "seed": "set sweep.seeds=N (seeds 0..N-1)"}),
    rules=RULES,
))
