"""Package list only (metadata lives in pyproject.toml): ship the top-level conf/ as dlx/conf."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["dlx", "dlx.*"]) + ["dlx.conf"],
    package_dir={"dlx.conf": "conf"},
)
