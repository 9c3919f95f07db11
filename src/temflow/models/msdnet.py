"""Mixed-scale dense network (MSD-net; Pelt & Sethian, PNAS 115:254, 2018).

Layer ``i`` (0-based) has ``width`` output channels; channel ``j`` of it is a 3x3
convolution with dilation ``((i * width + j) mod 10) + 1`` over the input and *every*
previous feature map, followed by ReLU. The output is a 1x1 convolution over the input
and every feature map. Padding is reflective, so the image size is unchanged (each side
must be longer than the largest dilation, 10 pixels by default).

:class:`MSDNet` keeps all feature maps in one preallocated buffer of shape
``(N, C_in + depth * width, H, W)`` that each layer writes in place, and computes the
gradients of the dense part in a custom autograd function that walks the layers
backwards with one gradient buffer of the same size. Memory therefore grows linearly
with depth. :class:`MSDNetReference` computes the same function with a per-layer
``torch.cat`` (quadratic memory) and plain autograd; it exists so that tests can check
the efficient implementation against it (same parameters, same state-dict keys).

Outputs are linear per-class maps (no activation); temflow trains them with a mean
squared error against Gaussian target maps of the column positions.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: Number of distinct dilations; layer channel k uses dilation (k mod N_DILATIONS) + 1.
N_DILATIONS = 10


def msd_dilations(depth: int, width: int, n_dilations: int = N_DILATIONS) -> list[list[int]]:
    """Dilation of every channel: ``result[i][j] = ((i * width + j) mod n) + 1``."""
    return [[((i * width + j) % n_dilations) + 1 for j in range(width)] for i in range(depth)]


def msd_receptive_field(depth: int, width: int, n_dilations: int = N_DILATIONS) -> int:
    """Side length in pixels of the square receptive field of an output pixel.

    A 3x3 convolution with dilation ``d`` widens the field by ``2 d``. Because every
    layer sees every previous layer, the widest path chains the largest dilation of each
    layer: ``1 + 2 * sum_i max_j dilation(i, j)``.
    """
    return 1 + 2 * sum(max(row) for row in msd_dilations(depth, width, n_dilations))


class _MSDNetBase(nn.Module):
    """Parameters shared by :class:`MSDNet` and :class:`MSDNetReference`."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        depth: int = 100,
        width: int = 1,
        n_dilations: int = N_DILATIONS,
    ) -> None:
        super().__init__()
        if min(in_channels, out_channels, depth, width, n_dilations) < 1:
            raise ValueError(
                "MSDNet: in_channels, out_channels, depth, width and n_dilations must be >= 1"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.depth = depth
        self.width = width
        self.n_dilations = n_dilations
        self.dilations = msd_dilations(depth, width, n_dilations)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i in range(depth):
            fan_in = in_channels + i * width
            w = torch.empty(width, fan_in, 3, 3)
            # He initialisation for the ReLU layers (Pelt & Sethian use the same scale).
            nn.init.normal_(w, 0.0, math.sqrt(2.0 / (9 * fan_in)))
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(width)))
        self.final = nn.Conv2d(in_channels + depth * width, out_channels, kernel_size=1)
        # The output starts at zero. With a random final layer, the first Adam steps
        # shrink the large random output mostly by pushing ReLU channels negative, and a
        # width-1 layer that dies stays dead. From zero, none die
        # (docs/2026-11-23-msdnet-fixes.md). Gradients still reach every layer from the
        # second step on.
        nn.init.zeros_(self.final.weight)
        nn.init.zeros_(self.final.bias)
        self.hparams = self.architecture()

    @property
    def receptive_field(self) -> int:
        """Side length in pixels of the receptive field of one output pixel."""
        return msd_receptive_field(self.depth, self.width, self.n_dilations)

    @property
    def receptive_radius_px(self) -> int:
        """Pixels of context on each side that one output pixel depends on."""
        return self.receptive_field // 2

    @property
    def tile_alignment_px(self) -> int:
        """Convolutions only: any tile corner gives the whole-image result."""
        return 1

    def architecture(self) -> dict[str, int]:
        """Constructor arguments (stored in the model card)."""
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "depth": self.depth,
            "width": self.width,
            "n_dilations": self.n_dilations,
        }

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"MSDNet expects input (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        largest = min(self.n_dilations, self.depth * self.width)
        if min(x.shape[2], x.shape[3]) <= largest:
            raise ValueError(
                f"MSDNet reflect padding needs images larger than {largest} px per side, "
                f"got {tuple(x.shape[2:])}"
            )


def _layer_forward(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, dilations: list[int]
) -> torch.Tensor:
    """One MSD layer before ReLU: per output channel a dilated 3x3 conv, reflect padded."""
    outs = []
    for j, d in enumerate(dilations):
        xp = F.pad(x, (d, d, d, d), mode="reflect")
        outs.append(F.conv2d(xp, weight[j : j + 1], bias[j : j + 1], dilation=d))
    return torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]


def _conv_backward(
    grad_out: torch.Tensor, xp: torch.Tensor, weight: torch.Tensor, dilation: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of ``conv2d(xp, weight, dilation=dilation)`` (one output channel, no
    padding) with respect to ``xp``, ``weight`` and the bias.

    On the CPU, PyTorch's generic backward of a dilated convolution is an im2col loop that
    is much slower than its forward (oneDNN). Both gradients are convolutions, so
    they are computed as forward convolutions: the input gradient is the zero-padded
    output gradient correlated with the flipped kernel (channels swapped); the weight
    gradient is a correlation of the input with the output gradient taken as the kernel,
    batch and channels swapped, stride = dilation (bench/speed/bench_msdnet.py measures it).
    Elsewhere (CUDA) the library's backward is used.
    """
    d = dilation
    if xp.device.type != "cpu":
        return torch.ops.aten.convolution_backward(
            grad_out, xp, weight, [1], [1, 1], [0, 0], [d, d], False, [0, 0], 1,
            [True, True, True],
        )  # fmt: skip
    grad_xp = F.conv2d(
        F.pad(grad_out, (2 * d, 2 * d, 2 * d, 2 * d)),
        weight.flip(-1, -2).transpose(0, 1),
        dilation=d,
    )
    grad_w = F.conv2d(xp.transpose(0, 1), grad_out.transpose(0, 1), stride=d).transpose(0, 1)
    return grad_xp, grad_w, grad_out.sum(dim=(0, 2, 3))


class _MSDDense(torch.autograd.Function):
    """The dense part of MSD-net computed in one buffer; returns that buffer.

    forward(x, dilations, n_layers, *weights_and_biases) -> buffer (N, C_in + D*W, H, W)
    with the input in the first C_in channels and ReLU feature maps after it. Only the
    buffer is saved for backward (ReLU outputs determine the ReLU gradient), and the
    backward pass accumulates into a single gradient buffer, so memory is linear in depth.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, dilations: list[list[int]], *params: torch.Tensor):
        depth = len(dilations)
        weights, biases = params[:depth], params[depth:]
        n, c_in, h, w_px = x.shape
        width = len(dilations[0])
        dtype = x.dtype
        if torch.is_autocast_enabled(x.device.type):
            dtype = torch.get_autocast_dtype(x.device.type)
        buf = x.new_empty((n, c_in + depth * width, h, w_px), dtype=dtype)
        buf[:, :c_in] = x
        with torch.autocast(x.device.type, enabled=False):
            for i in range(depth):
                c = c_in + i * width
                out = _layer_forward(
                    buf[:, :c], weights[i].to(dtype), biases[i].to(dtype), dilations[i]
                )
                torch.relu_(out)
                buf[:, c : c + width] = out
        ctx.dilations = dilations
        ctx.c_in = c_in
        ctx.save_for_backward(buf, *weights)
        return buf

    @staticmethod
    def backward(ctx: Any, grad_buf: torch.Tensor):
        buf, *weights = ctx.saved_tensors
        dilations = ctx.dilations
        c_in = ctx.c_in
        depth = len(dilations)
        width = len(dilations[0])
        dtype = buf.dtype
        gbuf = grad_buf.to(dtype).clone()
        grad_w: list[torch.Tensor | None] = [None] * depth
        grad_b: list[torch.Tensor | None] = [None] * depth
        with torch.autocast(buf.device.type, enabled=False):
            for i in reversed(range(depth)):
                c = c_in + i * width
                out = buf[:, c : c + width]
                g_out = gbuf[:, c : c + width] * (out > 0)
                x = buf[:, :c]
                weight = weights[i].to(dtype)
                gw = torch.empty_like(weight)
                gb = torch.empty(width, dtype=dtype, device=buf.device)
                for j, d in enumerate(dilations[i]):
                    pad = (d, d, d, d)
                    xp = F.pad(x, pad, mode="reflect")
                    g_xp, g_wj, g_bj = _conv_backward(
                        g_out[:, j : j + 1].contiguous(), xp, weight[j : j + 1], d
                    )
                    del xp
                    gbuf[:, :c] += torch.ops.aten.reflection_pad2d_backward(g_xp, x, pad)
                    gw[j : j + 1] = g_wj
                    gb[j] = g_bj[0]
                grad_w[i] = gw.to(weights[i].dtype)
                grad_b[i] = gb.to(weights[i].dtype)
        grad_x = gbuf[:, :c_in] if ctx.needs_input_grad[0] else None
        return (grad_x, None, *grad_w, *grad_b)


class MSDNet(_MSDNetBase):
    """Memory-efficient MSD-net: one in-place feature buffer, linear memory in depth.

    Args:
        in_channels: input channels (3: the focal series).
        out_channels: output maps (3: Mo, S2, S1).
        depth: number of layers.
        width: channels per layer.
        n_dilations: dilations cycle through 1..n_dilations.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        buf = _MSDDense.apply(x, self.dilations, *self.weights, *self.biases)
        return self.final(buf)


class MSDNetReference(_MSDNetBase):
    """MSD-net by per-layer concatenation and plain autograd (quadratic memory).

    Same parameters and state-dict keys as :class:`MSDNet`; used as the test reference
    and as the baseline of bench/speed/bench_msdnet.py.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        feats = x
        for i in range(self.depth):
            out = torch.relu(
                _layer_forward(feats, self.weights[i], self.biases[i], self.dilations[i])
            )
            feats = torch.cat([feats, out], dim=1)
        return self.final(feats)
