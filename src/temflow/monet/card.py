"""Loading a trained MoNet with the checks its model card allows."""

from __future__ import annotations

from pathlib import Path

from temflow.errors import TemflowError
from temflow.models.monet import MoNet
from temflow.monet.tasks import get_task
from temflow.training import load_model


def load_monet(path: str | Path, task: str) -> tuple[MoNet, dict]:
    """The network of ``task`` saved at ``path`` and its card, in eval mode.

    Raises TemflowError naming the file when the card's architecture is not MoNet with
    the task's arguments, its classes are not the task's, or it lacks the trained track
    length (``input.length_frames``).
    """
    spec = get_task(task)
    model, card = load_model(
        path,
        MoNet,
        expected={
            "architecture": {"class": "MoNet", "args": dict(spec.model_args)},
            "classes": list(spec.classes),
        },
    )
    length = (card.get("input") or {}).get("length_frames")
    if not isinstance(length, int) or length < 2:
        raise TemflowError(
            f"{path}: model card has no input.length_frames (the trained track length)"
        )
    return model, card
