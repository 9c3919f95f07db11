"""Snakemake's own view of this workflow, for the tests: its rules, the jobs a run would
plan and the config it runs with, read through ``snakemake.api`` (not with regexes over
the .smk text or over ``snakemake -n`` output).

Each query builds the workflow in a fresh Python process (this file run as a script), so
that no Snakemake state is shared between queries or with pytest::

    python tests/workflow_api.py OUT.json --configfile config/test.yaml \
        --config results_dir=/tmp/r [KEY=VALUE ...] [--forceall] [--target FILE ...]

``--config`` is parsed by Snakemake's own command-line parser. ``--record-finished``
instead writes every job's outputs as empty files, in dependency order, with the metadata
record Snakemake keeps for a finished job: a results directory whose rerun decisions
(params, input, mtime) are those of a real run's, at no compute cost.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def query(
    results_dir: str | Path,
    configfiles: tuple[str, ...] = ("config/test.yaml",),
    overrides: tuple[str, ...] = (),
    targets: tuple[str, ...] = (),
    forceall: bool = False,
    record_finished: bool = False,
) -> dict[str, Any]:
    """The workflow as Snakemake sees it with these settings (see :func:`_describe`).

    ``overrides`` are ``--config`` items (``key=value``) after ``results_dir``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "workflow.json"
        cmd = [sys.executable, __file__, str(out), "--configfile", *configfiles]
        cmd += ["--config", f"results_dir={results_dir}", *overrides]
        if targets:
            cmd += ["--target", *targets]
        cmd += ["--forceall"] * forceall + ["--record-finished"] * record_finished
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
            )
        return json.loads(out.read_text())


def planned(result: dict[str, Any]) -> set[str]:
    """The rules of the jobs a run would execute (``rule all`` left out)."""
    return {job["rule"] for job in result["jobs"]} - {"all"}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=repr))


def _resource(value: Any) -> Any:
    value = getattr(value, "_value", value)
    return "<function>" if callable(value) else _jsonable(value)


def _describe(workflow) -> dict[str, Any]:
    """config: the validated config; rules: name -> what each rule declares; jobs: the jobs
    that need to run (rule, wildcards, params, input, output, Snakemake's reason)."""
    rules = {}
    for rule in workflow.rules:
        resources = {k: _resource(v) for k, v in rule.resources.items() if not k.startswith("_")}
        rules[rule.name] = {
            "params": list(rule.params.keys()),
            "input": list(rule.input.keys()),
            "output": list(rule.output.keys()),
            "resources": resources,
            "threads": _resource(rule.resources["_cores"]),
            "log": [str(f) for f in rule.log],
            "benchmark": str(rule.benchmark) if rule.benchmark is not None else None,
            "conda": str(rule.conda_env) if rule.conda_env is not None else None,
            "script": rule.script,
            "localrule": rule.name in workflow._localrules,
            # the directives the rule file writes out (RuleInfo: None where not given)
            "declares": sorted(
                directive
                for directive in ("log", "benchmark", "threads", "resources", "conda_env")
                if getattr(rule.ruleinfo, directive) is not None
            ),
            # the rule's own constraints over the workflow's global ones, for its wildcards
            "wildcard_constraints": {
                k: str(v)
                for k, v in {**workflow.wildcard_constraints, **rule.wildcard_constraints}.items()
                if k in rule.wildcard_names
            },
        }
    dag = workflow.dag
    jobs = [
        {
            "rule": job.rule.name,
            "wildcards": dict(job.wildcards_dict),
            "params": {k: _jsonable(v) for k, v in job.params.items()},
            "input": {k: _jsonable(v) for k, v in job.input.items()},
            "output": {k: str(v) for k, v in job.output.items()},
            "reason": str(dag.reason(job)),
        }
        for job in dag.needrun_jobs()
    ]
    jobs.sort(key=lambda j: (j["rule"], sorted(j["wildcards"].items())))
    return {"config": _jsonable(workflow.config), "rules": rules, "jobs": jobs}


def main() -> None:
    from snakemake.api import SnakemakeApi
    from snakemake.cli import parse_config
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        Quietness,
        ResourceSettings,
    )

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--configfile", nargs="+", default=[])
    ap.add_argument("--config", nargs="*", default=[])
    ap.add_argument("--target", nargs="*", default=[])
    ap.add_argument("--forceall", action="store_true")
    ap.add_argument("--record-finished", action="store_true")
    args = ap.parse_args()
    args.forceall = args.forceall or args.record_finished
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=2),
            config_settings=ConfigSettings(
                configfiles=[Path(f) for f in args.configfile], config=parse_config(args.config)
            ),
            snakefile=ROOT / "Snakefile",
            workdir=ROOT,
        )
        workflow_api.dag(DAGSettings(targets=frozenset(args.target), forceall=args.forceall))
        workflow = workflow_api._workflow
        workflow._prepare_dag(
            forceall=args.forceall, ignore_incomplete=False, lock_warn_only=True, nolock=True
        )
        workflow._build_dag()
        description = _describe(workflow)
        if args.record_finished:
            _record_finished(workflow)
        args.out.write_text(json.dumps(description, indent=1))


def _record_finished(workflow) -> None:
    import time

    from snakemake.settings.types import ExecutionSettings, RemoteExecutionSettings

    workflow.execution_settings = ExecutionSettings()
    workflow.remote_execution_settings = RemoteExecutionSettings()

    for level in workflow.dag.toposorted():
        for job in level:
            for f in job.output:
                Path(f).parent.mkdir(parents=True, exist_ok=True)
                Path(f).touch()
            for f in [*job.log, *([job.benchmark] if job.benchmark else [])]:
                Path(f).parent.mkdir(parents=True, exist_ok=True)
                Path(f).touch()
            workflow.async_run(workflow.persistence.finished(job))
        time.sleep(0.01)  # each level's files newer than its inputs


if __name__ == "__main__":
    main()
