"""Shared fixtures: the repository root and one end-to-end run of config/test.yaml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from temflow.config import load_config

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake")


def run_snakemake(
    *args: str,
    results_dir: Path,
    check: bool = True,
    configfile: str | tuple[str, ...] = "config/test.yaml",
    overrides: tuple[str, ...] = (),
) -> subprocess.CompletedProcess:
    """Run snakemake on the repository with ``configfile`` (one or several, merged in
    order over config/config.yaml) writing below ``results_dir``; ``overrides`` are extra
    ``--config`` items (key=value)."""
    configfiles = (configfile,) if isinstance(configfile, str) else tuple(configfile)
    cmd = [
        SNAKEMAKE,
        "--configfile",
        *configfiles,
        "--config",
        f"results_dir={results_dir}",
        *overrides,
        *args,
    ]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


@pytest.fixture(scope="session")
def test_config() -> dict:
    """The config the workflow runs config/test.yaml with (merged over config/config.yaml,
    schema defaults filled in)."""
    return load_config(["config/test.yaml"], root=ROOT)


@pytest.fixture(scope="session")
def workflow_results(tmp_path_factory) -> Path:
    """Run the whole workflow once on config/test.yaml; every end-to-end test reads it."""
    results_dir = tmp_path_factory.mktemp("results")
    run_snakemake("--cores", "2", results_dir=results_dir)
    return results_dir


def pytest_collection_modifyitems(config, items):
    """A test that reads the end-to-end run must be deselectable with -m "not workflow"."""
    unmarked = [
        item.nodeid
        for item in items
        if "workflow_results" in getattr(item, "fixturenames", ())
        and item.get_closest_marker("workflow") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "tests using workflow_results lack @pytest.mark.workflow: " + ", ".join(unmarked)
        )
