"""HDF5 shards of HR-TEM images with labels: writer and reader (shared API).

Layout of ``results/hrtem/{dataset}/shard_{k:04d}.h5``::

    attrs:   sampling_A (the configured range [min, max] of the images' pixel size, A),
             field_of_view_A (the configured, nominal field), classes (JSON list),
             defocus_offsets_A, n_images, dataset, substrate, shard, shard_seed,
             image_frame, software_versions (JSON), config (JSON of the parameters used)
    image_{i:05d}/            one group per image
        images       (C, H, W) float32 focal series (counts per pixel), C = focal settings
                     in increasing-defocus order; frame: pixel [i, j] <-> (x = j*s, y = i*s)
                     with s = this image's sampling_A; each image keeps its own (H, W)
        columns      compound (x_A f8, y_A f8, class i1); class indexes ``classes``
        positions_A  (N, 3) undisplaced atom positions; numbers (N,); cell_A (3, 3)
        sigmas_A     (N, 3) frozen-phonon sigmas (sx, sy, sz); coordination (N,)
        attrs: sampling_A (this image's pixel size, A), image_shape_px (H, W),
               field_of_view_A (this image's field W*s, H*s), every microscope
               parameter (energy_eV, defoci_A, Cs_um, C21_nm, phi21_rad, C23_nm,
               phi23_rad, angular_spread_mrad, defocus_scherzer_fraction,
               scherzer_defocus_A, ...), seed, phonon_seed, the frame
               shifts (frame_shift_x_A, frame_shift_y_A per channel, frame_shift_max_A,
               reference_channel: the unshifted channel whose frame ``columns`` are in;
               :mod:`temflow.hrtem.frames`), and the sample's drawn values (rotation,
               vacancies, contamination thicknesses and n_contamination_atoms: the last
               atoms of positions_A, unlabelled C)

Arrays are gzip-compressed (level 4, byte shuffle; one chunk per image), which h5py and
every HDF5 reader decode transparently. The reader needs the file attributes
``sampling_A`` ([min, max]), ``n_images`` and ``classes``, and per image ``images``,
``columns`` and the ``sampling_A`` attribute; a file without one of them stops with a
TemflowError naming the file and the field (regenerate shards written by other versions).

Reading::

    from temflow.hrtem.shards import open_dataset
    ds = open_dataset(sorted(Path("results/hrtem/train_bare").glob("shard_*.h5")))
    images, columns, meta = ds[0]     # (C, H, W) float32, DataFrame x_A/y_A/class, dict
    meta["sampling_A"], ds.sampling_range_A, ds.classes, len(ds)
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from temflow.errors import TemflowError
from temflow.io import atomic_path

COLUMN_DTYPE = np.dtype([("x_A", "f8"), ("y_A", "f8"), ("class", "i1")])
IMAGE_FRAME = (
    "pixel [i, j] samples x = j * sampling_A, y = i * sampling_A (the image group's sampling_A)"
)
#: h5py dataset options of every array (gzip level 4 after a byte shuffle).
COMPRESSION: dict[str, Any] = {"compression": "gzip", "compression_opts": 4, "shuffle": True}


@dataclass
class ImageRecord:
    """Everything stored for one image."""

    images: np.ndarray  # (C, H, W) float32; H, W may differ between the images of a shard
    columns: pd.DataFrame  # x_A, y_A, class
    positions_A: np.ndarray
    numbers: np.ndarray
    cell_A: np.ndarray
    sigmas_A: np.ndarray
    coordination: np.ndarray
    attrs: dict[str, Any]


def _attr(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return np.asarray(value, dtype=float)
    return value


def _compressed(group: h5py.Group, name: str, data: np.ndarray, options: Mapping[str, Any]) -> None:
    """A dataset in one chunk with the filter ``options`` (empty arrays, which HDF5
    cannot chunk, and no options: a plain contiguous dataset)."""
    if data.size == 0 or not options:
        group.create_dataset(name, data=data)
    else:
        group.create_dataset(name, data=data, chunks=data.shape, **options)


def write_shard(
    path: str | Path,
    records: Sequence[ImageRecord],
    attrs: Mapping[str, Any],
    compression: Mapping[str, Any] | None = None,
) -> None:
    """Write ``records`` to ``path`` atomically (temp name + rename).

    ``compression``: h5py filter options of every array (default :data:`COMPRESSION`;
    ``{}`` writes uncompressed, as bench/speed/bench_shards.py compares).
    """
    options = COMPRESSION if compression is None else dict(compression)
    if not records:
        raise TemflowError(f"refusing to write an empty shard {path}")
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=True) as f:
        for key, value in attrs.items():
            if isinstance(value, dict):
                f.attrs[key] = json.dumps(value, sort_keys=True)
            elif isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
                f.attrs[key] = json.dumps(list(value))
            else:
                f.attrs[key] = _attr(value)
        f.attrs["n_images"] = len(records)
        f.attrs["image_frame"] = IMAGE_FRAME
        for i, r in enumerate(records):
            g = f.create_group(f"image_{i:05d}")
            images = np.asarray(r.images, dtype=np.float32)
            if images.ndim != 3:
                raise TemflowError(f"image {i} for {path}: expected (C, H, W), got {images.shape}")
            _compressed(g, "images", images, options)
            cols = np.zeros(len(r.columns), dtype=COLUMN_DTYPE)
            for name in COLUMN_DTYPE.names:
                cols[name] = r.columns[name].to_numpy()
            _compressed(g, "columns", cols, options)
            _compressed(g, "positions_A", np.asarray(r.positions_A, dtype=float), options)
            _compressed(g, "numbers", np.asarray(r.numbers, dtype=np.int16), options)
            g.create_dataset("cell_A", data=np.asarray(r.cell_A, dtype=float))
            _compressed(g, "sigmas_A", np.asarray(r.sigmas_A, dtype=float), options)
            _compressed(g, "coordination", np.asarray(r.coordination, dtype=np.int16), options)
            for key, value in r.attrs.items():
                g.attrs[key] = _attr(value)


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_attrs(path: str | Path) -> dict[str, Any]:
    """File attributes of one shard (JSON attributes decoded)."""
    with h5py.File(path, "r") as f:
        return {k: _decode(v) for k, v in f.attrs.items()}


#: File attributes the reader needs.
REQUIRED_FILE_ATTRS = ("sampling_A", "n_images", "classes")
#: Per image: datasets and group attributes the reader needs.
REQUIRED_IMAGE_DATASETS = ("images", "columns")
REQUIRED_IMAGE_ATTRS = ("sampling_A",)


def _missing(path: Path, where: str, field: str) -> TemflowError:
    return TemflowError(
        f"{path}: {where} has no {field!r}; not a shard of this temflow version (regenerate it)"
    )


def _sampling_range(path: Path, attrs: Mapping[str, Any]) -> tuple[float, float]:
    """The file attribute ``sampling_A``: the configured range [min, max] (A/px)."""
    value = np.ravel(np.asarray(attrs["sampling_A"], dtype=float))
    if value.shape != (2,) or not 0 < value[0] <= value[1]:
        raise TemflowError(
            f"{path}: file attribute 'sampling_A' must be the range [min, max] of the images' "
            f"pixel size (A), got {attrs['sampling_A']!r}"
        )
    return float(value[0]), float(value[1])


class Dataset:
    """Images and labels across one or more shards, indexed 0..len-1 in shard order.

    ``ds[i] -> (images (C, H, W) float32, columns DataFrame[x_A, y_A, class], meta dict)``;
    ``meta`` holds the image's ``sampling_A`` (A/px) and ``image_shape_px``, its
    microscope parameters, seeds and sample values, plus ``shard`` (path) and ``index``
    (within the shard). Images of one dataset may differ in sampling and shape.
    ``ds.sampling_range_A`` is the union of the shards' configured ranges.
    ``ds.atoms(i)`` returns the atoms, ``ds.sigmas(i)`` the per-atom sigmas. Files are
    opened per access (fork/worker safe).
    """

    def __init__(self, paths: Sequence[str | Path]):
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise TemflowError("open_dataset needs at least one shard path")
        self._index: list[tuple[int, int]] = []
        self.attrs: list[dict[str, Any]] = []
        for k, p in enumerate(self.paths):
            if not p.is_file():
                raise TemflowError(f"HR-TEM shard {p} does not exist")
            a = read_attrs(p)
            for field in REQUIRED_FILE_ATTRS:
                if field not in a:
                    raise _missing(p, "file attributes", field)
            self.attrs.append(a)
            self._index += [(k, i) for i in range(int(a["n_images"]))]
        first = self.attrs[0]
        for p, a in zip(self.paths, self.attrs, strict=True):
            if list(a["classes"]) != list(first["classes"]):
                raise TemflowError(f"shard {p} differs from {self.paths[0]} in classes")
        ranges = [_sampling_range(p, a) for p, a in zip(self.paths, self.attrs, strict=True)]
        self.sampling_range_A: tuple[float, float] = (
            min(r[0] for r in ranges),
            max(r[1] for r in ranges),
        )
        self.classes: tuple[str, ...] = tuple(first["classes"])

    def __len__(self) -> int:
        return len(self._index)

    def _locate(self, i: int) -> tuple[Path, int]:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        k, j = self._index[i]
        return self.paths[k], j

    def __getitem__(self, i: int) -> tuple[np.ndarray, pd.DataFrame, dict[str, Any]]:
        path, j = self._locate(i)
        name = f"image_{j:05d}"
        with h5py.File(path, "r") as f:
            if name not in f:
                raise _missing(path, "the file", name)
            g = f[name]
            for field in REQUIRED_IMAGE_DATASETS:
                if field not in g:
                    raise _missing(path, name, field)
            images = g["images"][()]
            cols = g["columns"][()]
            meta = {k: _decode(v) for k, v in g.attrs.items()}
        for field in REQUIRED_IMAGE_ATTRS:
            if field not in meta:
                raise _missing(path, f"{name} (attributes)", field)
        columns = pd.DataFrame(
            {"x_A": cols["x_A"], "y_A": cols["y_A"], "class": cols["class"].astype(np.int64)}
        )
        meta["image_shape_px"] = list(images.shape[-2:])  # (H, W) of the stored array
        meta.update(shard=str(path), index=j)
        return images, columns, meta

    def __iter__(self) -> Iterator[tuple[np.ndarray, pd.DataFrame, dict[str, Any]]]:
        for i in range(len(self)):
            yield self[i]

    def _group(self, i: int, names: Sequence[str]) -> list[np.ndarray]:
        path, j = self._locate(i)
        name = f"image_{j:05d}"
        with h5py.File(path, "r") as f:
            g = f[name]
            for field in names:
                if field not in g:
                    raise _missing(path, name, field)
            return [g[n][()] for n in names]

    def atoms(self, i: int):
        """The undisplaced atoms of image ``i`` as ``ase.Atoms``."""
        from ase import Atoms

        positions, numbers, cell = self._group(i, ["positions_A", "numbers", "cell_A"])
        return Atoms(numbers=numbers, positions=positions, cell=cell, pbc=True)

    def sigmas(self, i: int) -> np.ndarray:
        """Per-atom frozen-phonon sigmas (N, 3) in A of image ``i``."""
        return self._group(i, ["sigmas_A"])[0]


def open_dataset(paths: Sequence[str | Path] | str | Path) -> Dataset:
    """Open shards (a list of files, one file, or a directory of ``shard_*.h5``)."""
    if isinstance(paths, (str, Path)):
        p = Path(paths)
        paths = sorted(p.glob("shard_*.h5")) if p.is_dir() else [p]
    return Dataset(list(paths))
