"""U-net (Ronneberger, Fischer & Brox 2015) for per-class column maps.

An encoder of ``depth`` downsampling steps (two 3x3 conv + BatchNorm + ReLU blocks, then
2x2 max pooling), a bottleneck block, and a decoder that upsamples by a 2x2 transposed
convolution, concatenates the encoder features of the same scale (skip connection) and
applies a block. Channels double at every level from ``base_width``. Convolutions are
zero-padded ("same"), unlike the original's valid convolutions, so the output has the
input's size.

Any input size works: the input is reflect-padded on the bottom/right up to the next
multiple of ``2**depth`` and the output cropped back. Outputs are linear per-class maps
(no activation), trained like MSD-net with a mean squared error against Gaussian maps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-net with configurable depth and base width.

    Args:
        in_channels: input channels (3: the focal series).
        out_channels: output maps (3: Mo, S2, S1).
        depth: number of 2x downsampling steps.
        base_width: channels of the first level; level k has ``base_width * 2**k``.
    """

    def __init__(
        self, in_channels: int = 3, out_channels: int = 3, depth: int = 4, base_width: int = 32
    ) -> None:
        super().__init__()
        if min(in_channels, out_channels, depth, base_width) < 1:
            raise ValueError("UNet: in_channels, out_channels, depth, base_width must be >= 1")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.depth = depth
        self.base_width = base_width
        widths = [base_width * 2**k for k in range(depth + 1)]
        self.down = nn.ModuleList()
        c = in_channels
        for k in range(depth):
            self.down.append(_block(c, widths[k]))
            c = widths[k]
        self.bottleneck = _block(c, widths[depth])
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for k in reversed(range(depth)):
            self.up.append(nn.ConvTranspose2d(widths[k + 1], widths[k], 2, stride=2))
            self.dec.append(_block(2 * widths[k], widths[k]))
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        self.hparams = self.architecture()

    @property
    def receptive_radius_px(self) -> int:
        """Pixels of context on each side that one output pixel depends on (upper bound):
        at level k each of the 3x3 convolutions on either side of the U widens the field
        by 2**k input pixels per side, pooling and up-convolutions included."""
        return 8 * 2**self.depth

    @property
    def tile_alignment_px(self) -> int:
        """Tile corners on a 2**depth grid keep the pooling windows of a whole-image pass."""
        return 2**self.depth

    def architecture(self) -> dict[str, int]:
        """Constructor arguments (stored in the model card)."""
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "depth": self.depth,
            "base_width": self.base_width,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet expects input (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        h, w = x.shape[2:]
        m = 2**self.depth
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips), strict=True):
            x = dec(torch.cat([skip, up(x)], dim=1))
        return self.head(x)[:, :, :h, :w]
