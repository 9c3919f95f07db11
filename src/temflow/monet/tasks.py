"""MoNet's three tasks as objects: what each trains on, predicts, and is scored by.

``classify`` (brownian / fbm / ctrw), ``fbm_alpha`` and ``ctrw_alpha`` (regression of
the anomalous exponent of FBM / CTRW tracks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from temflow.errors import TemflowError
from temflow.models.monet import MoNet
from temflow.trajectories.io import CLASSES, TrajectorySet, simulate_classes, simulate_process

#: Step std 1 (D = 0.5 px^2/frame): the unit of :func:`temflow.monet.data.inputs_of`.
UNIT_STEP_DIFFUSION = 0.5


def _accuracy(out: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    return {"accuracy": float((out.argmax(1) == y).float().mean())}


def _mae(out: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    return {"mae": float((out - y).abs().mean())}


@dataclass(frozen=True)
class MonetTask:
    """One MoNet task.

    ``model_args``: the :class:`MoNet` arguments that define the task (checked against a
    loaded model's card); ``classes``: output names; ``loss``: training loss on the
    network's output; ``metric``: validation metrics ``(output, targets) -> dict``.
    """

    name: str
    model_args: Mapping[str, Any]
    classes: tuple[str, ...]
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    metric: Callable[[torch.Tensor, torch.Tensor], dict[str, float]]
    process: str | None = field(default=None)  # the regressed process (fbm / ctrw)

    @property
    def is_classifier(self) -> bool:
        return self.process is None

    def build_model(self, combine_axes: str = "outputs", noise_input: bool = False) -> MoNet:
        return MoNet(**self.model_args, combine=combine_axes, noise_input=noise_input)

    def targets(self, data: TrajectorySet) -> torch.Tensor:
        """Class labels (int64) or alphas (float32) of ``data``."""
        if self.is_classifier:
            return torch.from_numpy(data.label.astype(np.int64))
        return torch.from_numpy(data.alpha.astype(np.float32))

    def simulate(
        self,
        targets: torch.Tensor,
        length: int,
        generator: Mapping[str, Any],
        rng: np.random.Generator,
    ) -> torch.Tensor:
        """Fresh tracks ``(N, length, 2)`` in step units for ``targets``.

        Classifier: a new track of each item's class with a new alpha drawn uniformly
        from ``generator['fbm_alpha_range']`` / ``['ctrw_alpha_range']``, as the training
        sets were drawn. Regressors: a new FBM / CTRW track with the item's own alpha.
        Motion blur as ``generator['exposure_time_range_frames']`` gives.
        ``generator`` is a ``trajectories`` config section (``ctrw_waiting_time`` too).
        """
        n = int(targets.shape[0])
        diffusion = np.full(n, UNIT_STEP_DIFFUSION)
        if self.is_classifier:
            out, _ = simulate_classes(targets.numpy(), length, diffusion, generator, rng)
        else:
            alpha = targets.double().numpy()
            out = simulate_process(self.process, alpha, length, diffusion, generator, rng)
        return torch.from_numpy(out.astype(np.float32))


#: FBM alpha lies in (0, 2), CTRW alpha in (0, 1]: the sigmoid head spans that range.
TASKS: dict[str, MonetTask] = {
    task.name: task
    for task in (
        MonetTask(
            "classify",
            {"task": "classify", "n_classes": len(CLASSES)},
            tuple(CLASSES),
            F.nll_loss,  # MoNet outputs log-probabilities
            _accuracy,
        ),
        MonetTask(
            "fbm_alpha",
            {"task": "regress", "alpha_max": 2.0},
            ("alpha",),
            F.l1_loss,
            _mae,
            process="fbm",
        ),
        MonetTask(
            "ctrw_alpha",
            {"task": "regress", "alpha_max": 1.0},
            ("alpha",),
            F.l1_loss,
            _mae,
            process="ctrw",
        ),
    )
}


def get_task(name: str) -> MonetTask:
    """The task called ``name``; TemflowError for an unknown one."""
    if name not in TASKS:
        raise TemflowError(f"monet task: expected one of {sorted(TASKS)}, got {name!r}")
    return TASKS[name]
