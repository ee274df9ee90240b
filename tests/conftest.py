"""Shared fixtures: tiny configs that train in a second."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# generated datasets (dlx/data/generated.py) are kept inside the checkout, not in the user's cache
os.environ.setdefault("DLX_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "dlx"))

from dlx.config import compose

FAST = ["trainer=quick", "trainer.batch_size=64", "trainer.threads=1"]


@pytest.fixture
def fast_cfg():
    def make(*overrides: str):
        return compose("train", [*FAST, *overrides])

    return make


@pytest.fixture
def run_cli(capsys):
    """Call the CLI in-process; returns (exit code, stdout, stderr)."""
    from dlx.cli import main

    def call(*args: str):
        rc = main(list(args))
        out = capsys.readouterr()
        return rc, out.out, out.err

    return call
