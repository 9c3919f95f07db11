"""Glue for Snakemake scripts: logging to the rule's log file and clear failures."""

from __future__ import annotations

import contextlib
import glob
import importlib.metadata
import logging
import sys
from collections.abc import Iterator
from typing import Any

from temflow.errors import TemflowError


@contextlib.contextmanager
def script_context(snakemake: Any) -> Iterator[logging.Logger]:
    """Send logging and stderr (tqdm progress) to the rule's log file.

    A TemflowError ends the job with its one-line message in the log and on stderr and a
    non-zero exit; Snakemake then removes the job's outputs (which temflow writes
    atomically, so nothing half-written is ever in place).
    """
    log_file = snakemake.log[0] if len(snakemake.log) else None
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    stream = None
    if log_file:
        stream = open(log_file, "a", buffering=1)  # noqa: SIM115 - closed below
        handlers = [logging.StreamHandler(stream)]
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        handlers=handlers,
        force=True,
    )
    logger = logging.getLogger(f"temflow.rule.{snakemake.rule}")
    saved_stderr = sys.stderr
    if stream is not None:
        sys.stderr = stream
    try:
        yield logger
    except TemflowError as err:
        logger.error("%s", err)
        sys.stderr = saved_stderr
        print(f"temflow: error in rule {snakemake.rule}: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        sys.stderr = saved_stderr
        if stream is not None:
            stream.close()


def local_cuda_gpu() -> bool:
    """Whether torch would train on a CUDA GPU on this machine, judged without importing
    torch (that takes seconds, at every Snakemake start): a CUDA build of torch (not a
    ``+cpu`` wheel) and an NVIDIA device node."""
    try:
        build = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return False
    return "+cpu" not in build and bool(glob.glob("/dev/nvidia[0-9]*"))
