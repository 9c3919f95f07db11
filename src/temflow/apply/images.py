"""Reading users' focal series and resampling them to a model's training sampling.

Accepted inputs (a :class:`FocalSeries` holds N focal series ``(C, H, W)`` float32 with a
pixel size each; N = 1 except for pipeline shards and ``(N, C, H, W)`` arrays):

* one multi-page TIFF (C pages, or one (C, H, W) page stack), or C single-page TIFFs
  given in focal order; sampling from ImageJ / resolution tags when present;
* ``.npy``: an array (C, H, W) (or (N, C, H, W)); no metadata, so ``--sampling`` is needed;
* an HDF5 shard written by the pipeline (:mod:`temflow.hrtem.shards`: per image a group
  with ``images`` (C, H, W) and its own ``sampling_A``), or any HDF5 file with a root
  ``images`` (N, C, H, W) dataset and a ``sampling_A`` attribute (A/px);
* microscope files ``.dm3``, ``.dm4``, ``.emd``, ``.ser`` read with rosettasciio: one
  (C, H, W) signal, or C 2-D signals of one size; sampling from the axes' scale and units.

The sampling found in the file wins over ``--sampling`` only when the file has one;
otherwise ``--sampling`` is required. Every check names the file and what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from temflow.errors import TemflowError

TIFF_SUFFIXES = {".tif", ".tiff"}
RSCIIO_SUFFIXES = {".dm3": "digitalmicrograph", ".dm4": "digitalmicrograph"}
RSCIIO_SUFFIXES |= {".emd": "emd", ".ser": "tia"}
# Length units -> Angstrom.
UNITS_A = {"a": 1.0, "å": 1.0, "angstrom": 1.0, "ang": 1.0, "nm": 10.0, "pm": 0.01}
UNITS_A |= {"um": 1e4, "µm": 1e4, "μm": 1e4, "micron": 1e4, "m": 1e10}


@dataclass
class FocalSeries:
    """Focal series with their pixel sizes; ``source`` names the input.

    ``images[n]`` is one (C, H, W) float32 focal series and ``sampling_A[n]`` its pixel
    size in A (images of a pipeline shard may differ in both).
    """

    images: list[np.ndarray]
    sampling_A: list[float]
    source: str
    sampling_from: str = ""  # where the sampling came from (file metadata or --sampling)


def unit_to_A(unit: str | None) -> float | None:
    """Angstrom per ``unit`` (A, nm, pm, um, m), None for unknown or pixel units."""
    if not unit:
        return None
    key = str(unit).strip().lower().replace("\\u00c5", "å")
    return UNITS_A.get(key)


def _tiff_sampling(path: Path) -> float | None:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        ij = tif.imagej_metadata or {}
        tags = page.tags
        if "XResolution" not in tags:
            return None
        num, den = tags["XResolution"].value
        if not num:
            return None
        per_unit = den / num  # length units per pixel
        unit = ij.get("unit")
        if unit is None:
            res_unit = tags["ResolutionUnit"].value if "ResolutionUnit" in tags else 1
            unit = {3: "cm", 2: "inch"}.get(int(res_unit))
            if unit == "cm":
                return per_unit * 1e8
            return None  # inches or no unit: not a physical sampling
        scale = unit_to_A(unit)
        return None if scale is None else per_unit * scale


def _read_tiffs(paths: Sequence[Path]) -> tuple[np.ndarray, float | None]:
    import tifffile

    arrays = []
    for p in paths:
        arrays.append(np.asarray(tifffile.imread(p)))
    if len(arrays) == 1:
        data = arrays[0]
    else:
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1 or arrays[0].ndim != 2:
            raise TemflowError(
                f"{', '.join(map(str, paths))}: single TIFFs of a focal series must be 2-D "
                f"images of one size, got shapes {[a.shape for a in arrays]}"
            )
        data = np.stack(arrays)
    samplings = {_tiff_sampling(p) for p in paths}
    sampling = samplings.pop() if len(samplings) == 1 else None
    return data, sampling


def _read_shard(path: Path) -> tuple[np.ndarray | list[np.ndarray], float | list[float] | None]:
    import h5py

    with h5py.File(path, "r") as f:
        stacked = "images" in f
        if stacked:
            data = f["images"][()]
            sampling = f.attrs.get("sampling_A")
        elif "image_00000" not in f:
            raise TemflowError(
                f"{path}: HDF5 file has no 'images' dataset or image groups (not a temflow shard)"
            )
    if stacked:
        return data, None if sampling is None else float(np.ravel(sampling)[0])
    from temflow.hrtem.shards import open_dataset

    images, samplings = [], []
    for img, _, meta in open_dataset(path):
        images.append(img)
        samplings.append(float(meta["sampling_A"]))
    return images, samplings


def _read_rsciio(path: Path) -> tuple[np.ndarray, float | None]:
    import importlib

    module = importlib.import_module(f"rsciio.{RSCIIO_SUFFIXES[path.suffix.lower()]}")
    signals = [s for s in module.file_reader(str(path)) if np.asarray(s["data"]).ndim >= 2]
    if not signals:
        raise TemflowError(f"{path}: no image in the file")
    if len(signals) == 1:
        data = np.asarray(signals[0]["data"])
        axes = signals[0]["axes"]
    else:
        arrays = [np.asarray(s["data"]) for s in signals]
        if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 2:
            raise TemflowError(
                f"{path}: {len(arrays)} signals that are not 2-D images of one size "
                f"({[a.shape for a in arrays]})"
            )
        data = np.stack(arrays)
        axes = signals[0]["axes"]
    # the last two axes are the image plane; their scale and units give the sampling
    plane = sorted(axes, key=lambda a: a.get("index_in_array", 0))[-2:]
    scales = []
    for ax in plane:
        factor = unit_to_A(ax.get("units"))
        if factor is None or not ax.get("scale"):
            return data, None
        scales.append(float(ax["scale"]) * factor)
    if not np.isclose(scales[0], scales[1], rtol=1e-3):
        raise TemflowError(f"{path}: non-square pixels ({scales[0]:g} x {scales[1]:g} A)")
    return data, scales[1]


def read_focal_series(
    paths: Sequence[str | Path], sampling_A: float | None = None, channels: int = 3
) -> FocalSeries:
    """Read one focal series (or a shard of several) from ``paths``; see the module doc.

    ``sampling_A`` (``--sampling``) is used when the file has no sampling of its own.
    Raises TemflowError for missing, empty or unreadable files, a channel count other than
    ``channels``, NaN or infinite pixels, and an unknown sampling.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise TemflowError("segment: no input file given")
    name = ", ".join(map(str, paths))
    for p in paths:
        if not p.is_file():
            raise TemflowError(f"{p}: image file not found")
        if p.stat().st_size == 0:
            raise TemflowError(f"{p}: file is empty")
    suffixes = {p.suffix.lower() for p in paths}
    if len(paths) > 1 and not suffixes <= TIFF_SUFFIXES:
        raise TemflowError(f"{name}: several input files must all be single-image TIFFs")
    suffix = suffixes.pop() if len(suffixes) == 1 else ""
    try:
        if suffix in TIFF_SUFFIXES:
            data, found = _read_tiffs(paths)
        elif suffix == ".npy":
            data, found = np.load(paths[0], allow_pickle=False), None
        elif suffix in (".h5", ".hdf5"):
            data, found = _read_shard(paths[0])
        elif suffix in RSCIIO_SUFFIXES:
            data, found = _read_rsciio(paths[0])
        else:
            raise TemflowError(
                f"{name}: unknown image file type {suffix!r}; expected .tif/.tiff, .npy, "
                ".h5 (temflow shard), .dm3, .dm4, .emd or .ser"
            )
    except TemflowError:
        raise
    except Exception as err:  # noqa: BLE001 - any parse failure is a bad file
        raise TemflowError(f"{name}: cannot read the file: {err}") from err
    arrays = [np.asarray(a) for a in data] if isinstance(data, list) else [np.asarray(data)]
    for a in arrays:
        if not (np.issubdtype(a.dtype, np.number) and not np.iscomplexobj(a)):
            raise TemflowError(f"{name}: expected real-valued pixels, got dtype {a.dtype}")
    if len(arrays) == 1 and arrays[0].ndim == 2:
        raise TemflowError(
            f"{name}: got one 2-D image; expected a focal series of {channels} images"
        )
    if len(arrays) == 1 and arrays[0].ndim == 4:
        arrays = list(arrays[0])
    for a in arrays:
        if a.ndim != 3 or a.shape[0] != channels:
            raise TemflowError(
                f"{name}: expected {channels} images (channels) of one focal series, got an "
                f"array of shape {a.shape}"
            )
    for n, a in enumerate(arrays):
        if min(a.shape[-2:]) < 2:
            raise TemflowError(f"{name}: images of {a.shape[-2:]} px are too small")
        bad = ~np.isfinite(a)
        if bad.any():
            c, i, j = np.argwhere(bad)[0]
            raise TemflowError(
                f"{name}: {int(bad.sum())} NaN or infinite pixel(s) (first: image {n}, "
                f"channel {c}, pixel [{i}, {j}])"
            )
    found_list = [] if found is None else [float(v) for v in np.ravel(found)]
    if found_list and all(v > 0 for v in found_list):
        samplings = found_list * len(arrays) if len(found_list) == 1 else found_list
        source = "file metadata"
    elif sampling_A is not None:
        samplings, source = [float(sampling_A)] * len(arrays), "--sampling"
    else:
        raise TemflowError(f"{name}: the file has no pixel size; give it with --sampling (A/px)")
    if not all(v > 0 for v in samplings):
        raise TemflowError(f"--sampling: expected > 0 A/px, got {sampling_A}")
    images = [np.ascontiguousarray(a, dtype=np.float32) for a in arrays]
    return FocalSeries(images, samplings, name, source)


def resample(images: np.ndarray, from_A: float, to_A: float) -> np.ndarray:
    """Resample (..., H, W) images from ``from_A`` to ``to_A`` per pixel.

    Output pixel ``[i, j]`` samples the input at ``(i, j) * to_A / from_A`` (cubic
    spline), so positions in Angstrom (x = j * sampling) keep their meaning. When
    shrinking, a Gaussian prefilter (sigma = (factor - 1) / 2 input px) avoids aliasing.
    Equal samplings return the input unchanged.
    """
    from scipy import ndimage

    if np.isclose(from_A, to_A, rtol=1e-6):
        return images
    step = to_A / from_A  # input pixels per output pixel
    h, w = images.shape[-2:]
    oh, ow = int(np.floor((h - 1) / step)) + 1, int(np.floor((w - 1) / step)) + 1
    rows, cols = np.meshgrid(np.arange(oh) * step, np.arange(ow) * step, indexing="ij")
    flat = images.reshape(-1, h, w)
    out = np.empty((flat.shape[0], oh, ow), dtype=np.float32)
    for k, img in enumerate(flat):
        if step > 1:
            img = ndimage.gaussian_filter(img, (step - 1) / 2)
        out[k] = ndimage.map_coordinates(img, [rows, cols], order=3, mode="reflect")
    return out.reshape(*images.shape[:-2], oh, ow)
