"""MoNet (Jamali et al., PNAS 118:e2017616118, 2021): a multi-branch 1-D CNN for tracks.

Input: positions (B, L, 2), or (B, L, 3) with ``noise_input`` (below). Each axis is
normalised on its own (subtract the mean, take increments, divide by their std) and
passed through the same network (shared weights):
six parallel convolutional branches (Conv1d -> ReLU -> BatchNorm, 32 filters, 'same'
zero padding, global max pooling over time), concatenated, Dense 512 -> Dense 128 ->
head. x and y of isotropic 2-D motion are statistically identical, so sharing the
weights doubles the evidence per trajectory and keeps the reference's parameter count
(about 248k). Where the two axes meet is ``combine``:

* ``outputs`` (the reference): each axis is classified on its own and the per-axis
  outputs are averaged. ``classify`` returns log-probabilities (B, n_classes) = log of
  the mean of the per-axis softmax outputs; ``regress`` returns alpha (B,) =
  ``alpha_max`` x the mean of the per-axis sigmoid outputs.
* ``features``: the per-axis branch features (after max pooling) are averaged and one
  dense stack reads the mean, so the evidence of both axes is pooled before any
  decision, as a likelihood ratio pools it (the axes share H, D and the noise level).
  ``classify`` returns log-softmax, ``regress`` ``alpha_max`` x sigmoid. The parameter
  count is the same. ``outputs`` is the default because pooling did not make trained
  classifiers more accurate (docs/2026-11-23-monet-pooling-fresh-tracks.md).

Train ``classify`` with ``nll_loss`` in both cases.

``noise_input`` (off in the reference): the network is also told the localisation
precision. The input is then (B, L, 3): x, y and sigma, the localisation error std of
each frame in the units of x and y (a constant column when one precision holds for the
track). Each axis gets one more feature next to its pooled branch features: the ratio
sqrt(mean sigma^2) / std(increments of that axis), which is scale-free like the
normalised increments (for Brownian motion it is sigma / sqrt(step^2 + 2 sigma^2),
between 0 and 1/sqrt(2)). Localisation noise and FBM both anti-correlate successive
increments; a network told the noise level need not infer it from the track, which is
what bounds one that is not (docs/2026-11-23-monet-bayes-bound.md). The ratio is
clipped at 1: a larger one (a stuck track, or a precision larger than the scatter of the
positions allows) lies outside anything seen in training.
"""

from __future__ import annotations

import torch
from torch import nn

from temflow.errors import TemflowError

# (kernel size, dilations) per branch, as in the reference code.
BRANCHES: tuple[tuple[int, tuple[int, ...]], ...] = (
    (4, (1, 2, 4)),
    (2, (1, 2, 4)),
    (3, (1, 2, 4)),
    (10, (1, 4, 8)),
    (20, (1, 2, 8)),
    (20, (1,)),
)
TASKS = ("classify", "regress")
COMBINE = ("outputs", "features")


def receptive_field(kernel: int, dilations: tuple[int, ...]) -> int:
    """Number of input increments that one output of a branch depends on."""
    return 1 + sum((kernel - 1) * d for d in dilations)


def increments_and_std(
    positions: torch.Tensor, eps: float = 1e-8
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L, 2) positions -> ((B, 2, L-1) increments divided by their std, (B, 2) std)."""
    inc = torch.diff(positions, dim=1)
    std = inc.std(dim=1, keepdim=True)
    return (inc / (std + eps)).transpose(1, 2), std.squeeze(1)


def normalise_increments(positions: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(B, L, 2) positions -> (B, 2, L-1) increments with zero mean removed, unit std."""
    return increments_and_std(positions - positions.mean(dim=1, keepdim=True), eps)[0]


def with_precision(positions: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, L, 2) positions -> (B, L, 3) with a constant localisation error std column, the
    input of a noise-aware MoNet (``noise_input``)."""
    return torch.cat([positions, torch.full_like(positions[..., :1], float(sigma))], dim=-1)


def noise_ratio(sigma: torch.Tensor, increment_std: torch.Tensor, eps: float = 1e-8):
    """(B, L) localisation error std per frame, (B, 2) increment std per axis ->
    (B, 2) ratio sqrt(mean sigma^2) / increment std, clipped at 1: the noise level MoNet
    is told. Brownian motion with noise gives at most 1/sqrt(2)."""
    rms = sigma.pow(2).mean(dim=1).sqrt()
    return (rms[:, None] / (increment_std + eps)).clamp(max=1.0)


class _Branch(nn.Sequential):
    def __init__(self, kernel: int, dilations: tuple[int, ...], filters: int) -> None:
        layers: list[nn.Module] = []
        channels = 1
        for d in dilations:
            total = (kernel - 1) * d  # 'same' zero padding, written out for even kernels
            layers += [
                nn.ConstantPad1d((total // 2, total - total // 2), 0.0),
                nn.Conv1d(channels, filters, kernel, dilation=d),
                nn.ReLU(),
                nn.BatchNorm1d(filters),
            ]
            channels = filters
        super().__init__(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).amax(dim=-1)


class MoNet(nn.Module):
    """MoNet classifier (3 classes) or alpha regressor; see the module docstring."""

    def __init__(
        self,
        task: str = "classify",
        n_classes: int = 3,
        filters: int = 32,
        dense: tuple[int, int] | list[int] = (512, 128),
        alpha_max: float = 1.0,
        combine: str = "outputs",
        noise_input: bool = False,
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise TemflowError(f"monet task: expected one of {TASKS}, got {task!r}")
        if combine not in COMBINE:
            raise TemflowError(f"monet combine_axes: expected one of {COMBINE}, got {combine!r}")
        if alpha_max <= 0:
            raise TemflowError(f"monet alpha_max: expected > 0, got {alpha_max}")
        self.hparams = {
            "task": task,
            "n_classes": int(n_classes),
            "filters": int(filters),
            "dense": [int(v) for v in dense],
            "alpha_max": float(alpha_max),
            "combine": combine,
            "noise_input": bool(noise_input),
        }
        self.task = task
        self.combine = combine
        self.alpha_max = float(alpha_max)
        self.noise_input = bool(noise_input)
        self.branches = nn.ModuleList(_Branch(k, d, filters) for k, d in BRANCHES)
        width = filters * len(BRANCHES) + int(self.noise_input)
        self.dense = nn.Sequential(
            nn.Linear(width, dense[0]), nn.ReLU(), nn.Linear(dense[0], dense[1]), nn.ReLU()
        )
        self.head = nn.Linear(dense[1], n_classes if task == "classify" else 1)

    @staticmethod
    def min_length() -> int:
        """Shortest accepted track (frames): 2 x the largest kernel (20), i.e. 40 increments.

        With 'same' padding the network runs on any length, but the dilated branches
        (up to 210 increments wide) then mostly see padding; 300 frames is the design length.
        """
        return 2 * max(k for k, _ in BRANCHES) + 1

    @staticmethod
    def receptive_fields() -> list[int]:
        """Receptive field (increments) of each branch."""
        return [receptive_field(k, d) for k, d in BRANCHES]

    @property
    def input_columns(self) -> int:
        """2 (x, y) or, with ``noise_input``, 3 (x, y, localisation error std)."""
        return 3 if self.noise_input else 2

    def forward(self, tracks: torch.Tensor) -> torch.Tensor:
        cols = self.input_columns
        if tracks.ndim != 3 or tracks.shape[-1] != cols:
            what = "x, y, sigma" if self.noise_input else "x, y"
            raise TemflowError(
                f"MoNet input: expected (B, L, {cols}) ({what}), got {tuple(tracks.shape)}"
            )
        if tracks.shape[1] < self.min_length():
            raise TemflowError(
                f"trajectory length: MoNet needs >= {self.min_length()} frames "
                f"(2 x its largest kernel), got {tracks.shape[1]}"
            )
        b = tracks.shape[0]
        tracks = tracks.float()
        positions = tracks[..., :2]
        inc, inc_std = increments_and_std(positions - positions.mean(dim=1, keepdim=True))
        feats = torch.cat([branch(inc.reshape(2 * b, 1, -1)) for branch in self.branches], 1)
        if self.noise_input:
            ratio = noise_ratio(tracks[..., 2], inc_std).to(feats.dtype)
            feats = torch.cat([feats, ratio.reshape(2 * b, 1)], dim=1)
        if self.combine == "features":
            feats = feats.reshape(b, 2, -1).mean(dim=1)
            out = self.head(self.dense(feats)).float()
            if self.task == "classify":
                return out.log_softmax(dim=-1)
            return self.alpha_max * torch.sigmoid(out).reshape(b)
        out = self.head(self.dense(feats)).float()
        if self.task == "classify":
            probs = out.softmax(dim=-1).reshape(b, 2, -1).mean(dim=1)
            return probs.clamp_min(1e-12).log()
        return self.alpha_max * torch.sigmoid(out).reshape(b, 2).mean(dim=1)
