"""Metrics shared by tasks and analyses: pure functions, array-likes (lists, numpy arrays, torch tensors)
in, a Python float out, bad input a one-line :class:`~dlx.errors.DlxError`.

Importing this package loads only numpy (scikit-learn is imported inside :func:`auc`).

- :func:`auc` -- ROC AUC.
- :func:`precision_at_k`, :func:`mrr` -- per-group ranking quality, ties broken at random (seeded).
- :func:`rmse`, :func:`quantile_loss` -- point and quantile forecast errors.
- :func:`asimov_z` -- median discovery significance with background uncertainty.
- :func:`perplexity` -- exp of the mean per-token negative log-likelihood.
"""

from dlx.metrics.language import perplexity
from dlx.metrics.ranking import auc, mrr, precision_at_k
from dlx.metrics.regression import quantile_loss, rmse
from dlx.metrics.significance import asimov_z

__all__ = ["asimov_z", "auc", "mrr", "perplexity", "precision_at_k", "quantile_loss", "rmse"]
