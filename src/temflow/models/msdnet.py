"""Mixed-scale dense network (MSD-net; Pelt & Sethian, PNAS 115:254, 2018).

Layer ``i`` (0-based) has ``width`` output channels; channel ``j`` of it is a 3x3
convolution with dilation ``((i * width + j) mod 10) + 1`` over the input and *every*
previous feature map, followed by ReLU. The output is a 1x1 convolution over the input
and every feature map. Padding is reflective, so the image size is unchanged (each side
must be longer than the largest dilation, 10 pixels by default).

:class:`MSDNet` keeps all feature maps in one preallocated buffer of shape
``(C_in + depth * width, N, H, W)`` (channel first) that each layer writes in place, computes
each layer as one matrix product and a shifted sum, and computes the gradients of the dense
part in a custom autograd function that walks the layers backwards with one gradient buffer
of the same size. Memory therefore grows linearly
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


def _tap_windows(d: int, h: int, w: int) -> list[tuple[slice, slice]]:
    """Window of each 3x3 tap (row-major, as the kernel) in a map reflect-padded by ``d``."""
    return [
        (slice(ky * d, ky * d + h), slice(kx * d, kx * d + w)) for ky in range(3) for kx in range(3)
    ]


class _MSDDense(torch.autograd.Function):
    """The dense part of MSD-net computed in one buffer; returns that buffer.

    forward(x, dilations, *weights_and_biases) -> buffer (C_in + D*W, N, H, W): channel
    first, so the input of every layer, ``buffer[:c]``, is one contiguous (c, N*H*W)
    matrix. Each layer is then one matrix product and a shifted sum: a layer channel with
    few outputs is a 3x3 convolution over many inputs, which the CPU convolution kernels run
    at a few GFLOP/s, while ``taps = W (9, c) @ X (c, N*H*W)`` is a plain GEMM; reflect
    padding is per channel, so it commutes with the product and is applied to the 9 tap
    maps, which are then summed at their dilated offsets. The backward pass is the same in
    reverse (two GEMMs per layer). Only the buffer is saved (ReLU outputs give the ReLU
    gradient) and one gradient buffer of the same size accumulates, so memory is linear in
    depth (bench/speed/bench_msdnet.py measures speed and memory).
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
        buf = x.new_empty((c_in + depth * width, n, h, w_px), dtype=dtype)
        buf[:c_in] = x.transpose(0, 1)
        with torch.autocast(x.device.type, enabled=False):
            for i in range(depth):
                c = c_in + i * width
                taps = _layer_taps(weights[i].to(dtype), buf[:c])
                for j, d in enumerate(dilations[i]):
                    padded = F.pad(taps[j], (d, d, d, d), mode="reflect")
                    out = buf[c + j]
                    out.copy_(biases[i][j].to(dtype).expand_as(out))
                    for t, (rows, cols) in enumerate(_tap_windows(d, h, w_px)):
                        out.add_(padded[t, :, rows, cols])
                    torch.relu_(out)
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
        _, n, h, w_px = buf.shape
        dtype = buf.dtype
        gbuf = grad_buf.to(dtype).contiguous().clone()
        grad_w: list[torch.Tensor | None] = [None] * depth
        grad_b: list[torch.Tensor | None] = [None] * depth
        tap_shape = buf.new_empty((9, n, h, w_px))  # only its shape is read
        with torch.autocast(buf.device.type, enabled=False):
            for i in reversed(range(depth)):
                c = c_in + i * width
                g_taps = buf.new_empty((width, 9, n, h, w_px))
                gb = torch.empty(width, dtype=dtype, device=buf.device)
                for j, d in enumerate(dilations[i]):
                    g_out = gbuf[c + j] * (buf[c + j] > 0)
                    gb[j] = g_out.sum()
                    g_padded = buf.new_zeros((9, n, h + 2 * d, w_px + 2 * d))
                    for t, (rows, cols) in enumerate(_tap_windows(d, h, w_px)):
                        g_padded[t, :, rows, cols] = g_out
                    g_taps[j] = torch.ops.aten.reflection_pad2d_backward(
                        g_padded, tap_shape, [d, d, d, d]
                    )
                g_taps = g_taps.view(width * 9, -1)
                x = buf[:c].view(c, -1)
                weight = weights[i].to(dtype)
                # rows of the tap matrix: (output channel, ky, kx); columns: input channel
                gw = (g_taps @ x.T).view(width, 3, 3, c).permute(0, 3, 1, 2)
                gbuf[:c].view(c, -1).addmm_(_tap_matrix(weight).T, g_taps)
                grad_w[i] = gw.to(weights[i].dtype).contiguous()
                grad_b[i] = gb.to(weights[i].dtype)
        grad_x = gbuf[:c_in].transpose(0, 1) if ctx.needs_input_grad[0] else None
        return (grad_x, None, *grad_w, *grad_b)


def _tap_matrix(weight: torch.Tensor) -> torch.Tensor:
    """A layer's weights (W, c, 3, 3) as the (W * 9, c) matrix of per-tap input weights."""
    width, c = weight.shape[:2]
    return weight.permute(0, 2, 3, 1).reshape(width * 9, c)


def _layer_taps(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per output channel and tap, the input channels weighted: (W, 9, N, H, W_px)."""
    c, n, h, w_px = x.shape
    return (_tap_matrix(weight) @ x.view(c, -1)).view(weight.shape[0], 9, n, h, w_px)


class MSDNet(_MSDNetBase):
    """Memory-efficient MSD-net: one in-place feature buffer, linear memory in depth.

    Args:
        in_channels: input channels (3: the focal series).
        out_channels: output maps (3: Mo, S2, S1).
        depth: number of layers.
        width: channels per layer.
        n_dilations: dilations cycle through 1..n_dilations.
    """

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The input and every ReLU feature map, channel first: (C_in + D*W, N, H, W)."""
        self._check_input(x)
        return _MSDDense.apply(x, self.dilations, *self.weights, *self.biases)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        buf = self.features(x)
        c, n, h, w_px = buf.shape
        # the final 1x1 convolution as one GEMM over the channel-first buffer
        weight = self.final.weight.view(self.out_channels, c).to(buf.dtype)
        out = (weight @ buf.view(c, -1)).view(self.out_channels, n, h, w_px).transpose(0, 1)
        return out + self.final.bias.to(buf.dtype).view(1, -1, 1, 1)


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
