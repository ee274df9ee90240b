"""Package list only (metadata lives in pyproject.toml): ship the top-level conf/ as dlx/conf, each
config group as a data-only package so setuptools neither drops nor warns about them."""

from pathlib import Path

from setuptools import find_packages, setup

groups = sorted(p.name for p in (Path(__file__).parent / "conf").iterdir() if p.is_dir())
setup(
    packages=find_packages(include=["dlx", "dlx.*"]) + ["dlx.conf"] + [f"dlx.conf.{g}" for g in groups],
    package_dir={"dlx.conf": "conf"},
    package_data={"dlx.conf": ["*.yaml"], **{f"dlx.conf.{g}": ["*.yaml"] for g in groups}},
)
