"""MSD-net memory and speed: in-place buffer (temflow) vs. per-layer concatenation.

For each depth, in one run, forward+backward time (median of ``repeats``, the two
implementations alternating in one process) and peak memory of
``temflow.models.msdnet.MSDNet`` and ``MSDNetReference`` (same weights), and training
throughput (images/s, Adam steps) of MSD-net and U-net.

Memory: on CUDA ``torch.cuda.max_memory_allocated`` (peak over forward+backward minus
the memory held before); on CPU each measurement runs in a fresh subprocess and reports
the peak resident set size increase over forward+backward (the peak is reset through
/proc/self/clear_refs first, then read as VmHWM - VmRSS before; glibc's mmap threshold is
fixed so that freed tensors leave the RSS), plus the bytes
of tensors autograd saves for backward (``saved_tensors_hooks``, unique storages).

Usage:
    python -m bench.speed.bench_msdnet [--device cpu|cuda] [--depths 25 50 100] [--size 128]
        [--batch 4] [--repeats 3] [--out results/bench/msdnet.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from temflow.models.msdnet import MSDNet, MSDNetReference
from temflow.models.unet import UNet


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def saved_bytes(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd saves for backward in one forward."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return sum(n for ptr, n in seen.items() if ptr not in params and ptr != x.data_ptr())


def interleaved_times(
    depth: int, width: int, size: int, batch: int, device: str, repeats: int
) -> dict[str, float]:
    """Median forward+backward time of each implementation over ``repeats`` passes after
    one warm-up, the two alternating in one process (so other load hits both alike)."""
    torch.manual_seed(0)
    models = {"buffer": MSDNet(3, 3, depth, width).to(device)}
    models["concat"] = MSDNetReference(3, 3, depth, width).to(device)
    models["concat"].load_state_dict(models["buffer"].state_dict())
    x = torch.randn(batch, 3, size, size, device=device)
    times: dict[str, list[float]] = {k: [] for k in models}
    for i in range(repeats + 1):
        for name, model in models.items():
            model.zero_grad()
            _sync(device)
            t0 = time.perf_counter()
            model(x).square().mean().backward()
            _sync(device)
            if i > 0:
                times[name].append(time.perf_counter() - t0)
    return {f"{k}_time_s": statistics.median(v) for k, v in times.items()}


def _malloc_env() -> dict[str, str]:
    """Environment for a measuring subprocess: a fixed glibc mmap threshold (128 kB), so
    every large tensor is its own mapping, returned to the OS when freed. Without it glibc
    raises the threshold after the first large free and serves later tensors from a heap
    that keeps freed blocks, and RSS then counts dead tensors too."""
    return {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}


def _status_kB(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status")


def _reset_peak_rss_kB() -> int:
    """Reset the peak resident set size (Linux: ``5`` to /proc/self/clear_refs) and return
    the current one (kB), so that VmHWM afterwards is the peak of what follows."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kB("VmRSS")


def fwd_bwd(
    impl: str, depth: int, width: int, size: int, batch: int, device: str, repeats: int
) -> dict[str, float]:
    """Time and memory of forward+backward for one implementation."""
    torch.manual_seed(0)
    cls = MSDNet if impl == "buffer" else MSDNetReference
    model = cls(3, 3, depth, width).to(device)
    x = torch.randn(batch, 3, size, size, device=device)
    out: dict[str, float] = {}
    model.zero_grad()
    # Warm-up (also the memory measurement: the first pass allocates everything).
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _reset_peak_rss_kB()
    model(x).square().mean().backward()
    _sync(device)
    if device == "cuda":
        out["peak_MB"] = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        out["peak_MB"] = (_status_kB("VmHWM") - base) / 1024
    out["saved_MB"] = saved_bytes(model, x) / 2**20
    times = []
    for _ in range(repeats):
        model.zero_grad()
        t0 = time.perf_counter()
        model(x).square().mean().backward()
        _sync(device)
        times.append(time.perf_counter() - t0)
    out["time_s"] = statistics.median(times)
    return out


def throughput(
    net: str,
    size: int,
    batch: int,
    device: str,
    steps: int,
    msd_depth: int,
    msd_width: int,
    unet_depth: int,
    unet_width: int,
) -> float:
    """Training images/s (forward, MSE loss, backward, Adam step)."""
    torch.manual_seed(0)
    if net == "msdnet":
        model = MSDNet(3, 3, msd_depth, msd_width)
    else:
        model = UNet(3, 3, unet_depth, unet_width)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.rand(batch, 3, size, size, device=device)
    for i in range(steps + 1):
        if i == 1:
            _sync(device)
            t0 = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    _sync(device)
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--depths", type=int, nargs="+", default=[25, 50, 100])
    ap.add_argument("--width", type=int, default=1)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--unet-depth", type=int, default=3)
    ap.add_argument("--unet-width", type=int, default=16)
    ap.add_argument("--out", default="results/bench/msdnet.json")
    ap.add_argument("--one", nargs=2, metavar=("IMPL", "DEPTH"), help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.one:  # child process: one CPU measurement, JSON on stdout
        r = fwd_bwd(a.one[0], int(a.one[1]), a.width, a.size, a.batch, a.device, a.repeats)
        print(json.dumps(r))
        return

    rows = []
    for depth in a.depths:
        row: dict[str, float | int] = {"depth": depth}
        for impl in ("buffer", "concat"):
            if a.device == "cpu":
                cmd = [
                    sys.executable,
                    "-m",
                    "bench.speed.bench_msdnet",
                    "--one",
                    impl,
                    str(depth),
                    "--device",
                    "cpu",
                    "--width",
                    str(a.width),
                    "--size",
                    str(a.size),
                    "--batch",
                    str(a.batch),
                    "--repeats",
                    str(a.repeats),
                ]
                r = json.loads(
                    subprocess.run(
                        cmd, check=True, capture_output=True, text=True, env=_malloc_env()
                    )
                    .stdout.strip()
                    .splitlines()[-1]
                )
            else:
                r = fwd_bwd(impl, depth, a.width, a.size, a.batch, a.device, a.repeats)
            for k, v in r.items():
                row[f"{impl}_{k}"] = v
        # Times from one process, alternating the implementations (overrides the above).
        row.update(interleaved_times(depth, a.width, a.size, a.batch, a.device, a.repeats))
        # An RSS increase below 1 MB is within page-level noise: no ratio then.
        row["memory_ratio_concat_over_buffer"] = (
            row["concat_peak_MB"] / row["buffer_peak_MB"]
            if row["buffer_peak_MB"] >= 1.0
            else float("nan")
        )
        row["time_ratio_concat_over_buffer"] = row["concat_time_s"] / row["buffer_time_s"]
        rows.append(row)

    tp = {
        net: throughput(
            net,
            a.size,
            a.batch,
            a.device,
            a.steps,
            a.depths[0],
            a.width,
            a.unet_depth,
            a.unet_width,
        )
        for net in ("msdnet", "unet")
    }
    header = (
        f"MSD-net width {a.width}, {a.batch}x3x{a.size}x{a.size}, device {a.device}\n"
        f"{'depth':>5} | {'buffer s':>9} {'concat s':>9} | {'buffer MB':>10} "
        f"{'concat MB':>10} {'ratio':>6} | {'saved buf MB':>12} {'saved cat MB':>12}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['depth']:>5} | {r['buffer_time_s']:9.3f} {r['concat_time_s']:9.3f} | "
            f"{r['buffer_peak_MB']:10.1f} {r['concat_peak_MB']:10.1f} "
            f"{r['memory_ratio_concat_over_buffer']:6.2f} | {r['buffer_saved_MB']:12.1f} "
            f"{r['concat_saved_MB']:12.1f}"
        )
    print(
        f"training throughput (images/s): MSD-net depth {a.depths[0]}: {tp['msdnet']:.2f}, "
        f"U-net depth {a.unet_depth} width {a.unet_width}: {tp['unet']:.2f}"
    )
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "args": vars(a),
                "fwd_bwd": rows,
                "train_images_per_s": tp,
                "torch": torch.__version__,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
