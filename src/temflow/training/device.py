"""Torch device and mixed-precision helpers."""

from __future__ import annotations

import contextlib
import logging

import torch

from temflow.errors import TemflowError

log = logging.getLogger(__name__)
DEVICES = ("auto", "cpu", "cuda", "gpu")
AMP_MODES = ("none", "bf16", "fp16")


def torch_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when torch sees a GPU, else CPU; ``gpu``/``cuda`` require one.

    The choice is logged (the rule log then says where a job ran).
    """
    if device not in DEVICES:
        raise TemflowError(f"device: expected one of {DEVICES}, got {device!r}")
    has_cuda = torch.cuda.is_available()
    if device in ("gpu", "cuda") and not has_cuda:
        raise TemflowError(f"device: {device!r} requested but torch sees no CUDA GPU")
    chosen = torch.device("cuda" if device != "cpu" and has_cuda else "cpu")
    name = torch.cuda.get_device_name(chosen) if chosen.type == "cuda" else "CPU"
    log.info("device %s -> %s (%s)", device, chosen, name)
    return chosen


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``amp`` (none|bf16|fp16) on ``device``; None on CPU (logged)."""
    if amp not in AMP_MODES:
        raise TemflowError(f"amp: expected one of {AMP_MODES}, got {amp!r}")
    if amp == "none":
        return None
    if device.type != "cuda":
        log.info("amp %s requested; mixed precision is used on GPU only -> fp32 on %s", amp, device)
        return None
    return torch.bfloat16 if amp == "bf16" else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``dtype`` or a no-op context when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
