"""Every experiment dlx knows: importing a package registers its record (dlx/registry.py). Listed here
explicitly — no discovery — so the registry is always complete; the registry imports this module on its
first lookup, and nothing else needs to."""

# each package's __init__ registers its record and imports nothing heavy
from dlx.kinds import fit, forecast, grid, train, tune  # noqa: F401
from dlx.papers import (  # noqa: F401
    batchnorm,
    bench,
    deepmatch,
    deepstate,
    double_descent,
    fp8,
    higgs,
    idefender,
    muir,
    symnets,
)
