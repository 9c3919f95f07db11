"""Every `snakemake` command line README.md shows works: each runs as a dry run here."""

from __future__ import annotations

import os
import re
import shlex
import subprocess

import pytest
from conftest import BIN, ROOT, SNAKEMAKE

README = ROOT / "README.md"


def readme_commands() -> list[list[str]]:
    """The `snakemake ...` commands of README.md's ```bash blocks, as argument lists
    (continued lines joined, comments dropped, `a && b` split)."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", README.read_text(), flags=re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words:
                command = words[: words.index("&&")] if "&&" in words else words
                words = words[len(command) + 1 :]
                if command and command[0].rsplit("/", 1)[-1] == "snakemake":
                    commands.append(command[1:])
    return commands


def _param(args: list[str]):
    marks = []
    if "--report" in args:
        # a report collects the outputs of a finished run
        marks.append(pytest.mark.workflow)
    return pytest.param(args, id=" ".join(args), marks=marks)


def test_readme_shows_snakemake_commands():
    commands = readme_commands()
    assert any("--configfile" in c for c in commands) and any("--config" in c for c in commands)


@pytest.mark.parametrize("args", [_param(a) for a in readme_commands()])
def test_readme_command_works(args, tmp_path, request):
    args = list(args)
    if "--profile" in args and "slurm" in args[args.index("--profile") + 1]:
        pytest.importorskip("snakemake_executor_plugin_slurm")
    if "--report" in args:
        results = request.getfixturevalue("workflow_results")
        report = args.index("--report") + 1
        args[report] = str(tmp_path / args[report].rsplit("/", 1)[-1])
    else:
        results = tmp_path / "results"
        args.append("-n")
    # the user's results directory would be results/...: point it at a temporary one
    if "--config" in args:
        args.insert(args.index("--config") + 1, f"results_dir={results}")
    else:
        args += ["--config", f"results_dir={results}"]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([SNAKEMAKE, *args], cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
