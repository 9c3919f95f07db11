"""The conda environment lists the same packages as pyproject.toml."""

from __future__ import annotations

import re
import tomllib

import yaml
from conftest import ROOT

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


def test_every_rule_names_the_conda_env():
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        n_rules = len(re.findall(r"^rule \w+:", text, flags=re.M))
        assert text.count("conda:") == n_rules, smk.name


def test_every_rule_has_log_benchmark_threads_resources():
    n_rules = 0
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        rules = re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", smk.read_text(), flags=re.M)
        n_rules += len(rules)
        for name, body in rules:
            for directive in ("log:", "benchmark:", "threads:", "resources:", "conda:"):
                assert f"\n    {directive}" in f"\n{body}", (
                    f"{smk.name}: rule {name} lacks {directive}"
                )
    assert n_rules >= 10  # the regex really sees the rules
