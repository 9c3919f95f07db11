"""Frozen-phonon HR-TEM focal series with abTEM (>= 1.0.10), then detector effects.

Pipeline per image (see :func:`simulate_image`):

1. ``abtem.FrozenPhonons`` with per-atom anisotropic sigmas (N, 3) = (sxy, sxy, sz);
2. the potential of every configuration, built eagerly;
3. the exit wave of every configuration, computed once; slices that are empty in every
   configuration are skipped exactly (the plane wave is unchanged by leading vacuum, and
   consecutive free-space propagators compose into one);
4. ONE CTF with a defocus ensemble applied to the exit waves; intensities averaged over
   the frozen-phonon axis, located by its metadata (abTEM returns (defocus, configs, x, y));
5. the focal series is transposed to the image frame (H, W) = (y, x) (see
   :mod:`temflow.hrtem.columns`), Fourier-resampled to the output sampling, blurred,
   Poisson noise at the drawn dose is added and the detector MTF applied.

Channels are the focal settings in increasing-defocus order.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

import numpy as np
from ase import Atoms

from temflow.errors import TemflowError
from temflow.hrtem.microscope import MicroscopeParams

log = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    """``auto`` -> ``gpu`` when CuPy sees a CUDA device, else ``cpu``; ``gpu`` requires it."""
    if device not in ("auto", "cpu", "gpu"):
        raise TemflowError(f"device must be auto, cpu or gpu, got {device!r}")
    if device == "cpu":
        return "cpu"
    try:
        import cupy

        has_gpu = cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - any CuPy/CUDA failure means no usable GPU
        has_gpu = False
    if device == "gpu" and not has_gpu:
        raise TemflowError("device: gpu requested but CuPy with a CUDA device is not available")
    return "gpu" if has_gpu else "cpu"


@contextlib.contextmanager
def abtem_device(device: str) -> Iterator[None]:
    """Run abTEM on ``device`` (cpu|gpu) inside the block, without progress bars."""
    import abtem

    with abtem.config.set({"device": device, "diagnostics.progress_bar": False}):
        yield


def check_sampling(potential_sampling_A: float, output_sampling_A: float) -> None:
    """The output grid may not be finer than the potential grid it is resampled from."""
    if potential_sampling_A <= 0 or output_sampling_A <= 0:
        raise TemflowError(
            "hrtem.simulation.potential_sampling_A and "
            "hrtem.simulation.output_sampling_A must be positive"
        )
    if output_sampling_A < potential_sampling_A:
        raise TemflowError(
            f"hrtem.simulation.output_sampling_A={output_sampling_A} A is finer than "
            f"potential_sampling_A={potential_sampling_A} A: the potential must be sampled at "
            "least as finely as the output images (lower potential_sampling_A)"
        )


def make_ctf(params: MicroscopeParams):
    """abTEM CTF with the focal series as a defocus ensemble (angles rad, aperture mrad)."""
    import abtem

    defoci = np.asarray(params.defoci_A, dtype=float)
    if len(defoci) == 0 or np.any(np.diff(defoci) <= 0):
        raise TemflowError(
            f"focal series must be non-empty and strictly increasing, got {list(defoci)}"
        )
    return abtem.CTF(
        energy=params.energy_eV,
        defocus=abtem.distributions.from_values(defoci),
        Cs=params.Cs_A,
        astigmatism=params.astigmatism_A,
        astigmatism_angle=params.astigmatism_angle_rad,
        focal_spread=params.focal_spread_A,
        semiangle_cutoff=params.semiangle_cutoff_mrad,
    )


def frozen_phonons(atoms: Atoms, sigmas: np.ndarray, n_configs: int, seed: int):
    """``abtem.FrozenPhonons`` with per-atom (N, 3) sigmas in A, displacing x, y and z."""
    import abtem

    sigmas = np.asarray(sigmas, dtype=float)
    if sigmas.shape != (len(atoms), 3):
        raise TemflowError(f"sigmas must have shape ({len(atoms)}, 3), got {sigmas.shape}")
    return abtem.FrozenPhonons(
        atoms,
        num_configs=n_configs,
        sigmas=sigmas,
        directions="xyz",
        ensemble_mean=True,
        seed=int(seed),
    )


def _potential(fp, sampling_A: float, slice_thickness_A: float):
    import abtem

    return abtem.Potential(
        fp,
        sampling=sampling_A,
        slice_thickness=slice_thickness_A,
        parametrization="lobato",
        projection="infinite",
    )


def _mean_over_configs(images) -> np.ndarray:
    """(defocus, configs, x, y) -> (defocus, x, y), locating axes by their metadata."""
    from abtem.core.axes import FrozenPhononsAxis, ParameterAxis

    kinds = [type(m) for m in images.ensemble_axes_metadata]
    array = images.array
    if hasattr(array, "get"):  # CuPy -> NumPy
        array = array.get()
    array = np.asarray(array)
    if FrozenPhononsAxis in kinds:
        array = array.mean(axis=kinds.index(FrozenPhononsAxis))
        kinds.remove(FrozenPhononsAxis)
    if kinds != [ParameterAxis]:
        raise RuntimeError(f"unexpected abTEM ensemble axes {kinds}; expected one defocus axis")
    return array


def _compact_potential(potential_array):
    """Drop slices empty in every configuration; fold their thickness into propagation.

    Leading empty slices leave a plane wave unchanged, and free-space propagators compose
    (P(d1) P(d2) = P(d1 + d2)), so the exit wave is the same as with every slice.
    """
    from abtem.potentials.iam import PotentialArray

    array = potential_array.array
    thickness = np.asarray(potential_array.slice_thickness, dtype=float)
    occupied = np.flatnonzero(np.any(array != 0, axis=(0, 2, 3)))
    if len(occupied) == 0:
        return potential_array
    ends = [*occupied[1:], len(thickness)]
    merged = tuple(float(thickness[k:e].sum()) for k, e in zip(occupied, ends, strict=True))
    return PotentialArray(
        array[:, occupied],
        slice_thickness=merged,
        sampling=potential_array.sampling,
        ensemble_axes_metadata=potential_array.ensemble_axes_metadata,
    )


def exit_focal_series(
    atoms: Atoms,
    sigmas: np.ndarray,
    params: MicroscopeParams,
    n_configs: int,
    seed: int,
    potential_sampling_A: float,
    slice_thickness_A: float,
    device: str = "cpu",
) -> np.ndarray:
    """Noise-free focal series (n_defoci, nx, ny) in abTEM's grid (x first), eager.

    Intensity of a unit plane wave (vacuum = 1), averaged over ``n_configs`` frozen-phonon
    configurations drawn with ``seed``.
    """
    import abtem

    with abtem_device(device):
        fp = frozen_phonons(atoms, sigmas, n_configs, seed)
        potential = _potential(fp, potential_sampling_A, slice_thickness_A)
        built = _compact_potential(potential.build(lazy=False))
        waves = abtem.PlaneWave(energy=params.energy_eV).multislice(built, lazy=False)
        images = waves.apply_ctf(make_ctf(params)).intensity()
        return _mean_over_configs(images)


def reference_focal_series(
    atoms: Atoms,
    sigmas: np.ndarray,
    params: MicroscopeParams,
    n_configs: int,
    seed: int,
    potential_sampling_A: float,
    slice_thickness_A: float,
) -> np.ndarray:
    """The documented abTEM pattern (lazy, default scheduler), for tests and benchmarks:
    FrozenPhonons -> Potential -> PlaneWave.multislice -> CTF with a defocus ensemble ->
    intensity -> mean over configurations. Returns (n_defoci, nx, ny)."""
    import abtem

    with abtem_device("cpu"):
        fp = frozen_phonons(atoms, sigmas, n_configs, seed)
        potential = _potential(fp, potential_sampling_A, slice_thickness_A)
        waves = abtem.PlaneWave(energy=params.energy_eV).multislice(potential)
        images = waves.apply_ctf(make_ctf(params)).intensity().compute()
        return _mean_over_configs(images)


def fourier_resample(images: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Band-limited (periodic) resampling of (..., H, W) images to (..., h, w), h <= H."""
    h_in, w_in = images.shape[-2:]
    h, w = shape
    if h > h_in or w > w_in:
        raise TemflowError(f"cannot resample {images.shape[-2:]} up to {shape}")
    spectrum = np.fft.fft2(images)
    ky = np.round(np.fft.fftfreq(h) * h).astype(int) % h_in
    kx = np.round(np.fft.fftfreq(w) * w).astype(int) % w_in
    cropped = spectrum[..., ky[:, None], kx[None, :]]
    return np.real(np.fft.ifft2(cropped)) * (h * w) / (h_in * w_in)


def _frequencies(shape: tuple[int, int], sampling_A: float) -> np.ndarray:
    ky = np.fft.fftfreq(shape[0], d=sampling_A)
    kx = np.fft.fftfreq(shape[1], d=sampling_A)
    return np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)


def detector(
    images: np.ndarray,
    sampling_A: float,
    params: MicroscopeParams,
    rng: np.random.Generator | None,
) -> np.ndarray:
    """Blur (Gaussian, sigma in A), Poisson counts at the dose, detector MTF.

    ``images`` (..., H, W) are intensities relative to vacuum (= 1). With ``rng=None``
    the noise is skipped and the result is the expected count per pixel. The MTF is
    ``(1 - floor) / (1 + (f / (half * f_nyquist)) ** power) + floor`` and acts on the
    noisy counts, as a scintillator does. Returns float32 counts per pixel.
    """
    k = _frequencies(images.shape[-2:], sampling_A)
    spectrum = np.fft.fft2(images) * np.exp(-2 * (np.pi * params.blur_sigma_A * k) ** 2)
    expected = np.clip(np.real(np.fft.ifft2(spectrum)), 0, None)
    expected = expected * params.dose_e_per_A2 * sampling_A**2
    counts = rng.poisson(expected).astype(float) if rng is not None else expected
    f = k * sampling_A / 0.5  # fraction of Nyquist
    mtf = (1 - params.mtf_floor) / (1 + (f / params.mtf_half_nyquist) ** params.mtf_power)
    mtf = mtf + params.mtf_floor
    return np.real(np.fft.ifft2(np.fft.fft2(counts) * mtf)).astype(np.float32)


def output_shape(field_A: Sequence[float], output_sampling_A: float) -> tuple[int, int]:
    """(H, W) of the output images: the field of view at the output sampling (rounded)."""
    return (int(round(field_A[1] / output_sampling_A)), int(round(field_A[0] / output_sampling_A)))


def simulate_image(
    atoms: Atoms,
    sigmas: np.ndarray,
    params: MicroscopeParams,
    n_configs: int,
    seed: int,
    potential_sampling_A: float,
    slice_thickness_A: float,
    output_sampling_A: float,
    rng: np.random.Generator | None,
    device: str = "cpu",
) -> np.ndarray:
    """Focal series (n_defoci, H, W) float32 in the image frame, counts per pixel.

    The field of view is the cell's in-plane size; the output grid is the cell at
    ``output_sampling_A`` (which must divide it, within 1e-6 relative). ``rng=None`` gives
    the noise-free expected counts.
    """
    check_sampling(potential_sampling_A, output_sampling_A)
    field = (float(atoms.cell[0, 0]), float(atoms.cell[1, 1]))
    shape = output_shape(field, output_sampling_A)
    if (
        abs(shape[0] * output_sampling_A - field[1]) > 1e-6 * field[1]
        or abs(shape[1] * output_sampling_A - field[0]) > 1e-6 * field[0]
    ):
        raise TemflowError(
            f"hrtem.simulation.output_sampling_A={output_sampling_A} does not "
            f"divide the field of view {field} A into whole pixels"
        )
    series = exit_focal_series(
        atoms,
        sigmas,
        params,
        n_configs,
        seed,
        potential_sampling_A,
        slice_thickness_A,
        device=device,
    )
    series = np.swapaxes(series, -1, -2)  # (x, y) -> (y, x) = (H, W)
    series = fourier_resample(series, shape)
    return detector(series, output_sampling_A, params, rng)
