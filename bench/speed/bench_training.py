"""Training speed of every network at the default config's sizes, against the FLOP floor.

For MSD-net, U-net (segmentation crops) and the MoNet classifier (tracks), in one run:
the median time of one Adam step (forward, loss, backward, update) at the config's batch
and input size, the images (tracks) per second, the FLOPs of that step and the ratio of
the step time to its FLOP floor: FLOPs / the machine's matmul rate, measured in the same
run with a large float32 matrix product on the same threads. A ratio of 1 would be a step
that runs at GEMM speed; anything above it is overhead (small kernels, memory traffic,
Python). MSD-net is also timed in its plain-autograd form (``MSDNetReference``: the same
function as per-layer convolutions), interleaved with the fast one, as the peer.

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and
matrix products, forward and backward); for MSD-net on the reference form, so that the
count is that of the network and not of one implementation.

Usage:
    python -m bench.speed.bench_training [--configfile config/config.yaml] [--threads 1]
        [--repeats 20] [--out results/bench/training.json]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.common import interleaved_median_times, print_table, write_result
from temflow.config import load_config
from temflow.models.msdnet import MSDNetReference
from temflow.monet.tasks import get_task
from temflow.segmentation.train import build_network


def matmul_gflops(n: int = 1024, repeats: int = 20) -> float:
    """The float32 GEMM rate (GFLOP/s) of this process's threads: the FLOP floor's rate."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def adam_step(
    model: torch.nn.Module, inputs: torch.Tensor, loss_fn: Callable[[torch.Tensor], torch.Tensor]
) -> Callable[[], None]:
    """One training step of ``model`` on ``inputs`` as a closure (Adam, as the loop)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()

    def step() -> None:
        loss = loss_fn(model(inputs))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def step_flops(model: torch.nn.Module, inputs: torch.Tensor, loss_fn) -> int:
    """FLOPs of one forward and backward pass (FlopCounterMode)."""
    with FlopCounterMode(display=False) as counter:
        loss_fn(model(inputs)).backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def contenders(config: dict) -> dict[str, dict]:
    """The networks at the config's sizes: model, peer, inputs, loss, batch."""
    seg, tr = config["segmentation"], config["trajectories"]
    crop, seg_batch = seg["crop_px"], seg["training"]["batch_size"]
    images = torch.randn(seg_batch, 3, crop, crop)
    targets = torch.rand(seg_batch, 3, crop, crop)

    def mse(out: torch.Tensor) -> torch.Tensor:
        return (out - targets).square().mean()

    msd_arch = dict(seg["msdnet"])
    torch.manual_seed(0)
    msdnet = build_network("msdnet", msd_arch, 3, 3)
    torch.nn.init.normal_(msdnet.final.weight, 0.0, 0.1)  # zero init would cut the gradient
    reference = MSDNetReference(3, 3, **msd_arch)
    reference.load_state_dict(msdnet.state_dict())
    unet = build_network("unet", dict(seg["unet"]), 3, 3)

    task = get_task("classify")
    monet = task.build_model()
    monet_batch = config["monet"]["training"]["batch_size"]
    tracks = torch.cumsum(torch.randn(monet_batch, tr["length"], 2), dim=1)
    labels = torch.randint(0, 3, (monet_batch,))

    def nll(out: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.nll_loss(out, labels)

    size = f"{seg_batch} x {crop}^2 px"
    return {
        "msdnet": {"model": msdnet, "peer": reference, "inputs": images, "loss": mse,
                   "batch": seg_batch, "size": size, "arch": msd_arch},
        "unet": {"model": unet, "inputs": images, "loss": mse, "batch": seg_batch,
                 "size": size, "arch": dict(seg["unet"])},
        "monet_classify": {"model": monet, "inputs": tracks, "loss": nll, "batch": monet_batch,
                           "size": f"{monet_batch} x {tr['length']} frames", "arch": {}},
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", default="config/config.yaml")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the workflow: 1)")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", default="results/bench/training.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config([args.configfile])
    gflops = matmul_gflops()
    rows = []
    for name, c in contenders(config).items():
        flops = step_flops(c.get("peer", c["model"]), c["inputs"], c["loss"])
        fns = {"temflow": adam_step(c["model"], c["inputs"], c["loss"])}
        if "peer" in c:
            fns["plain autograd"] = adam_step(c["peer"], c["inputs"], c["loss"])
        for fn in fns.values():  # warm-up: allocator, oneDNN primitive caches
            fn(), fn()
        times = interleaved_median_times(fns, args.repeats)
        floor_s = flops / (gflops * 1e9)
        for impl, seconds in times.items():
            rows.append({
                "network": name, "implementation": impl, "input": c["size"],
                "step_s": seconds, "items_per_s": c["batch"] / seconds,
                "step_gflop": flops / 1e9, "floor_s": floor_s,
                "x_floor": seconds / floor_s, "arch": c["arch"],
            })  # fmt: skip
    for row in rows:
        if row["implementation"] == "plain autograd":
            fast = next(r for r in rows if r["network"] == row["network"] and r is not row)
            row["speedup"] = row["step_s"] / fast["step_s"]
    print(f"matmul floor: {gflops:.1f} GFLOP/s on {args.threads} thread(s)")
    print_table(
        rows,
        ["network", "implementation", "input", "step_s", "items_per_s", "step_gflop",
         "floor_s", "x_floor"],
    )  # fmt: skip
    out = Path(args.out)
    path = write_result(
        out.stem,
        {"threads": args.threads, "matmul_gflops": gflops, "configfile": args.configfile,
         "rows": rows},
        out_dir=out.parent,
    )  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
