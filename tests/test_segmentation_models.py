"""MSD-net (memory-efficient vs. concatenating reference) and U-net: values, shapes."""

from __future__ import annotations

import pytest
import torch

from temflow.models.msdnet import (
    MSDNet,
    MSDNetReference,
    msd_dilations,
    msd_receptive_field,
)
from temflow.models.unet import UNet


def _pair(depth: int, width: int, dtype=torch.float64) -> tuple[MSDNet, MSDNetReference]:
    torch.manual_seed(depth * 10 + width)
    net = MSDNet(3, 3, depth, width).to(dtype)
    # Non-zero final layer and biases so every gradient path is exercised.
    with torch.no_grad():
        for b in net.biases:
            b.uniform_(-0.1, 0.3)
    net.final.reset_parameters()  # PyTorch's default: MSDNet starts it at zero
    ref = MSDNetReference(3, 3, depth, width).to(dtype)
    ref.load_state_dict(net.state_dict())
    return net, ref


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("depth", "width"), [(1, 1), (12, 1), (5, 3), (23, 1)])
def test_msdnet_equals_reference_outputs_and_gradients(
    depth: int, width: int, dtype: torch.dtype
) -> None:
    net, ref = _pair(depth, width, dtype)
    x = torch.randn(2, 3, 19, 24, dtype=dtype)
    xa = x.clone().requires_grad_()
    xb = x.clone().requires_grad_()
    ya, yb = net(xa), ref(xb)
    assert ya.shape == yb.shape == (2, 3, 19, 24)
    torch.testing.assert_close(ya, yb, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(ya)
    (ya * g).sum().backward()
    (yb * g).sum().backward()

    def close(a: torch.Tensor, b: torch.Tensor, msg: str) -> None:
        # float32 sums over ~10^3 pixels in another order: the error scales with the
        # gradient's size (weight gradients reach ~30), so the bound does too.
        scale = 1.0 if dtype == torch.float64 else max(1.0, float(b.abs().max()))
        torch.testing.assert_close(a, b, atol=1e-5 * scale, rtol=1e-5, msg=msg)

    close(xa.grad, xb.grad, "input")
    for (name, p), q in zip(net.named_parameters(), ref.parameters(), strict=True):
        assert p.grad is not None, name
        close(p.grad, q.grad, name)


def test_msdnet_gradcheck_double() -> None:
    net, _ = _pair(4, 2)
    x = torch.randn(1, 3, 12, 13, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: net(t), (x,), eps=1e-6, atol=1e-6)


def test_msdnet_dilations_cycle() -> None:
    d = msd_dilations(12, 1)
    assert [row[0] for row in d] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2]
    assert msd_dilations(2, 3) == [[1, 2, 3], [4, 5, 6]]


def test_msdnet_receptive_field_matches_gradient_support() -> None:
    # Analytic field: 1 + 2 * sum of the largest dilation per layer.
    assert msd_receptive_field(3, 1) == 1 + 2 * (1 + 2 + 3)
    assert msd_receptive_field(2, 3) == 1 + 2 * (3 + 6)
    # Empirical: the gradient of one (centre) output pixel is non-zero exactly inside it.
    torch.manual_seed(1)
    net = MSDNet(3, 1, depth=3, width=1).double()
    with torch.no_grad():
        for b in net.biases:
            b.fill_(1.0)  # keep every ReLU open so no path is cut off
        for w in net.weights:
            w.abs_()
        net.final.weight.fill_(1.0)  # the final layer starts at zero
    x = torch.rand(1, 3, 41, 41, dtype=torch.float64, requires_grad=True)
    net(x)[0, 0, 20, 20].backward()
    support = (x.grad[0].abs().sum(0) > 0).nonzero()
    extent = support.max(0).values - support.min(0).values + 1
    assert extent.tolist() == [net.receptive_field] * 2 == [13, 13]


def test_msdnet_starts_at_zero_output_and_learns_every_layer() -> None:
    # The final layer starts at zero (no early dying of width-1 ReLU layers); one Adam
    # step makes it non-zero, after which every dense layer gets a gradient.
    torch.manual_seed(0)
    net = MSDNet(3, 3, depth=5, width=1)
    x, target = torch.randn(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    assert torch.count_nonzero(net(x)) == 0
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), target).backward()
        opt.step()
    assert torch.count_nonzero(net.final.weight) > 0
    for i, w in enumerate(net.weights):
        assert w.grad.abs().sum() > 0, f"layer {i} got no gradient"


def test_msdnet_rejects_bad_input() -> None:
    net = MSDNet(3, 3, depth=10, width=1)
    with pytest.raises(ValueError, match="expects input"):
        net(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="larger than 10 px"):
        net(torch.zeros(1, 3, 10, 32))


@pytest.mark.parametrize("size", [(32, 32), (37, 50), (17, 9)])
def test_unet_output_shape_any_size(size: tuple[int, int]) -> None:
    net = UNet(3, 3, depth=3, base_width=4).eval()
    y = net(torch.randn(2, 3, *size))
    assert y.shape == (2, 3, *size)


def test_unet_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    net = UNet(3, 3, depth=2, base_width=4)
    net(torch.randn(2, 3, 20, 22)).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_architecture_round_trip() -> None:
    m = MSDNet(3, 3, depth=7, width=2)
    assert MSDNet(**m.architecture()).state_dict().keys() == m.state_dict().keys()
    u = UNet(3, 3, depth=2, base_width=8)
    assert UNet(**u.architecture()).state_dict().keys() == u.state_dict().keys()


def test_msdnet_under_autocast_matches_float32() -> None:
    # The training loop autocasts on GPU; the same code path runs with CPU bf16 autocast.
    torch.manual_seed(0)
    net = MSDNet(3, 3, depth=6, width=2)
    net.final.reset_parameters()  # PyTorch's default: MSDNet starts it at zero
    x = torch.randn(2, 3, 20, 20)
    y32 = net(x)
    y32.square().mean().backward()
    g32 = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = net(x)
    assert y.dtype == torch.bfloat16
    y.float().square().mean().backward()
    torch.testing.assert_close(y.float(), y32, atol=0.05, rtol=0.05)
    for p, g in zip(net.parameters(), g32, strict=True):
        assert p.grad.dtype == torch.float32
        assert (p.grad - g).abs().max() <= 0.05 * g.abs().max() + 1e-6
