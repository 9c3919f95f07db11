"""The conda environment lists the same packages as pyproject.toml."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml
from conftest import ROOT
from workflow_api import query

# conda-forge names that differ from PyPI names
CONDA_TO_PYPI = {"pytorch": "torch"}
CONDA_ONLY = {"python", "pip", "kim-api", "openkim-models"}


def _name(requirement: str) -> str:
    return re.split(r"[ <>=!~\[]", requirement.strip(), maxsplit=1)[0].lower()


def test_conda_env_matches_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pypi = {_name(r) for r in pyproject["project"]["dependencies"]}
    env = yaml.safe_load((ROOT / "envs" / "temflow.yaml").read_text())
    conda = {
        CONDA_TO_PYPI.get(_name(d), _name(d)) for d in env["dependencies"] if isinstance(d, str)
    }
    assert conda - CONDA_ONLY == pypi
    assert {"kim-api", "openkim-models"} <= conda  # asap3 needs OpenKIM for MoS2


@pytest.fixture(scope="module")
def rules(tmp_path_factory) -> dict:
    """Every rule of the workflow but `all`, as Snakemake's API describes it."""
    described = query(tmp_path_factory.mktemp("results"))["rules"]
    return {name: rule for name, rule in described.items() if name != "all"}


def test_every_rule_names_the_conda_env(rules):
    assert len(rules) >= 10
    for name, rule in rules.items():
        assert rule["conda"] == "../../envs/temflow.yaml", name


def test_every_rule_has_log_benchmark_threads_resources(rules):
    for name, rule in rules.items():
        for directive in ("log", "benchmark", "threads", "resources", "conda_env"):
            assert directive in rule["declares"], f"rule {name} lacks {directive}:"
        assert rule["log"] and rule["benchmark"], name
        # what a SLURM job is sized by
        assert {"mem_mb", "runtime"} <= set(rule["resources"]), name
