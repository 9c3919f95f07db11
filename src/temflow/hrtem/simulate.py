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

Channels are the focal settings in increasing-defocus order. Steps 3 and 4 call abTEM
functions outside its public API; pyproject.toml pins abTEM to the minor versions they were
tested with, and tests/test_abtem_internals.py names any that is missing or changed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

import numpy as np
from ase import Atoms

from temflow.errors import TemflowError
from temflow.hrtem.frames import rotate_frames, shift_frames
from temflow.hrtem.microscope import MicroscopeParams

log = logging.getLogger(__name__)


def abtem_device_name(device: str) -> str:
    """abTEM's device name for the config's ``device``: ``auto`` -> ``"gpu"`` when CuPy
    sees a CUDA device, else ``"cpu"``; ``gpu`` requires one; ``cpu`` -> ``"cpu"``."""
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
    """Run abTEM on ``device`` (cpu|gpu) inside the block, without progress bars.

    FFTW plans are made with ``FFTW_ESTIMATE``, not abTEM's default ``FFTW_MEASURE``:
    measuring times the candidate algorithms afresh in every process and keeps the
    fastest, so the rounding, and with it the potential and the Poisson draws, could
    differ between processes; estimated plans are the same in every process
    (docs/2026-11-23-fftw-reproducibility.md).
    """
    import abtem

    settings = {
        "device": device,
        "diagnostics.progress_bar": False,
        "fftw.planning_effort": "FFTW_ESTIMATE",
    }
    with abtem.config.set(settings):
        yield


#: A per nm and per um: abTEM takes aberrations in A.
A_PER_NM = 10.0
A_PER_UM = 1e4


def make_ctf(params: MicroscopeParams):
    """abTEM CTF with the focal series as a defocus ensemble (angles rad, aperture mrad).

    Cs (um), coma C21 and three-fold astigmatism C23 (nm) become abTEM's polar
    coefficients C30, C21, C23 in A; the phase is abTEM's
    chi = (2 pi / lambda) sum C_nm (lambda k)^(n+1) / (n+1) cos(m (phi - phi_nm)), with
    the kernel exp(-i chi). ``angular_spread_mrad`` is abTEM's spatial-coherence envelope.
    """
    import abtem

    defoci = np.asarray(params.defoci_A, dtype=float)
    if len(defoci) == 0 or np.any(np.diff(defoci) <= 0):
        raise TemflowError(
            f"focal series must be non-empty and strictly increasing, got {list(defoci)}"
        )
    return abtem.CTF(
        energy=params.energy_eV,
        defocus=abtem.distributions.from_values(defoci),
        Cs=params.Cs_um * A_PER_UM,
        astigmatism=params.astigmatism_A,
        astigmatism_angle=params.astigmatism_angle_rad,
        C21=params.C21_nm * A_PER_NM,
        phi21=params.phi21_rad,
        C23=params.C23_nm * A_PER_NM,
        phi23=params.phi23_rad,
        focal_spread=params.focal_spread_A,
        angular_spread=params.angular_spread_mrad,
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
    occupied = (array != 0).any(axis=(0, 2, 3))
    occupied = np.flatnonzero(occupied.get() if hasattr(occupied, "get") else occupied)
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


def abs2(x):
    """|x|^2 of a complex array as float32 (NumPy: numba ufunc from abTEM; CuPy: plain)."""
    from abtem.core.complex import abs2 as _abs2

    return _abs2(x)


def _fft_module(xp):
    """SciPy's FFT for NumPy arrays, CuPy's SciPy-compatible one (``overwrite_x``) on GPU."""
    if xp is np:
        import scipy.fft

        return scipy.fft
    import cupyx.scipy.fft

    return cupyx.scipy.fft


def multislice_focal_series(
    potential: np.ndarray,
    slice_thickness_A: Sequence[float],
    sampling_A: tuple[float, float],
    params: MicroscopeParams,
    threads: int = 1,
    out_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Exit waves of all configurations and the focal series, as abTEM computes them.

    ``potential`` (configs, slices, nx, ny) from an abTEM potential build. Each slice
    transmits (``exp(i sigma V)`` band-limited by abTEM's antialias aperture) and then
    propagates (abTEM's Fresnel propagator times the aperture); the CTF kernel with the
    defocus ensemble is abTEM's own. Mathematically exact shortcuts: the first slice acts on
    a unit plane wave, so its transmitted wave is the band-limited transmission function
    and its spectrum feeds the propagator directly; the exit wave stays in Fourier space
    for the CTF. Returns the configuration-mean intensities (n_defoci, *out_shape) as
    NumPy, Fourier-resampled from the potential grid (nx, ny) to ``out_shape`` (default:
    the potential grid itself).
    """
    import abtem
    from abtem.antialias import antialias_aperture
    from abtem.core.backend import get_array_module
    from abtem.core.complex import complex_exponential
    from abtem.core.energy import energy2sigma
    from abtem.multislice import _fresnel_propagator_array

    xp = get_array_module(potential)
    fft = _fft_module(xp)
    kw = {"workers": threads} if xp is np else {}
    n_configs, n_slices = potential.shape[:2]
    gpts = tuple(int(n) for n in potential.shape[-2:])
    energy = params.energy_eV
    device = "cpu" if xp is np else "gpu"
    aperture = xp.asarray(antialias_aperture(gpts, sampling_A, xp)).astype(xp.float32)
    propagators: dict[float, np.ndarray] = {}
    sigma = xp.float32(energy2sigma(energy))
    spectrum = None
    for k in range(n_slices):
        d = float(slice_thickness_A[k])
        if d not in propagators:
            prop = _fresnel_propagator_array(d, gpts, sampling_A, energy, device)
            propagators[d] = (prop * aperture).astype(xp.complex64)
        t_spec = fft.fft2(complex_exponential(sigma * potential[:, k]), overwrite_x=True, **kw)
        t_spec *= aperture
        if spectrum is None:  # unit plane wave in: transmitted wave = band-limited t
            spectrum = t_spec
        else:
            psi = fft.ifft2(spectrum, overwrite_x=True, **kw)
            psi *= fft.ifft2(t_spec, overwrite_x=True, **kw)
            spectrum = fft.fft2(psi, overwrite_x=True, **kw)
        spectrum *= propagators[d]
    probe = abtem.Waves(xp.zeros(gpts, dtype=xp.complex64), energy=energy, sampling=sampling_A)
    kernel = xp.asarray(make_ctf(params)._evaluate_kernel(probe)).astype(xp.complex64)
    # The objective aperture band-limits the image wave to |k| <= k_max, so its intensity
    # holds no frequency above 2 k_max: a grid whose Nyquist frequency exceeds that samples
    # it exactly. Crop the aberrated spectra to such a small grid before the inverse FFTs
    # and Fourier-resample the intensity to ``out_shape`` (identical to computing it on
    # the full grid and resampling, up to rounding).
    k = xp.sqrt(
        sum(
            g**2
            for g in xp.meshgrid(
                xp.fft.fftfreq(gpts[0], sampling_A[0]),
                xp.fft.fftfreq(gpts[1], sampling_A[1]),
                indexing="ij",
            )
        )
    )
    k_max = float(k[(kernel != 0).any(axis=0)].max())
    small = tuple(
        min(n, 2 * (int(np.ceil(2 * k_max * n * s)) + 2))
        for n, s in zip(gpts, sampling_A, strict=True)
    )
    ix = xp.asarray(np.round(np.fft.fftfreq(small[0]) * small[0]).astype(int) % gpts[0])
    iy = xp.asarray(np.round(np.fft.fftfreq(small[1]) * small[1]).astype(int) % gpts[1])
    kernel = kernel[:, ix[:, None], iy[None, :]]
    scale = (small[0] * small[1]) / (gpts[0] * gpts[1])
    out = xp.zeros((kernel.shape[0], *small), dtype=xp.float32)
    for c in range(n_configs):
        waves = fft.ifft2(spectrum[c][ix[:, None], iy[None, :]][None] * kernel, **kw)
        out += abs2(waves)
    out *= scale**2 / n_configs
    out = out.get() if hasattr(out, "get") else np.asarray(out)
    return fourier_resample(out, out_shape if out_shape is not None else gpts)


def exit_focal_series(
    atoms: Atoms,
    sigmas: np.ndarray,
    params: MicroscopeParams,
    n_configs: int,
    seed: int,
    potential_sampling_A: float,
    slice_thickness_A: float,
    device: str = "cpu",
    threads: int = 1,
    out_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Noise-free focal series (n_defoci, nx, ny) in abTEM's grid (x first), eager.

    ``out_shape`` (x, y) Fourier-resamples the result (default: the potential grid).

    Intensity of a unit plane wave (vacuum = 1), averaged over ``n_configs`` frozen-phonon
    configurations drawn with ``seed``: abTEM builds the potential of every configuration
    (eagerly), slices empty in all configurations are dropped exactly, and
    :func:`multislice_focal_series` runs all configurations as one batch.
    """
    with abtem_device(device):
        fp = frozen_phonons(atoms, sigmas, n_configs, seed)
        potential = _potential(fp, potential_sampling_A, slice_thickness_A)
        built = _compact_potential(potential.build(lazy=False))
        return multislice_focal_series(
            built.array,
            built.slice_thickness,
            tuple(built.sampling),
            params,
            threads=threads,
            out_shape=out_shape,
        )


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
    """Band-limited (periodic) resampling of (..., H, W) images to (..., h, w).

    Fourier coefficients present on both grids are kept (crop or zero-pad); exact for
    images whose spectrum vanishes at and above the smaller grid's Nyquist frequency.
    """
    h_in, w_in = images.shape[-2:]
    h, w = shape
    if (h, w) == (h_in, w_in):
        return np.asarray(images, dtype=float)
    spectrum = np.fft.fft2(images)
    out = np.zeros((*images.shape[:-2], h, w), dtype=complex)
    fy = np.round(np.fft.fftfreq(min(h, h_in)) * min(h, h_in)).astype(int)
    fx = np.round(np.fft.fftfreq(min(w, w_in)) * min(w, w_in)).astype(int)
    out[..., (fy % h)[:, None], (fx % w)[None, :]] = spectrum[
        ..., (fy % h_in)[:, None], (fx % w_in)[None, :]
    ]
    return np.real(np.fft.ifft2(out)) * (h * w) / (h_in * w_in)


def _frequencies(shape: tuple[int, int], sampling_A: float) -> np.ndarray:
    ky = np.fft.fftfreq(shape[0], d=sampling_A)
    kx = np.fft.fftfreq(shape[1], d=sampling_A)
    return np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)


def detector_mtf(
    shape: tuple[int, int], sampling_A: float, floor: float, half_nyquist: float, power: float
) -> np.ndarray:
    """The detector MTF on the (H, W) FFT grid of an image at ``sampling_A``:
    ``(1 - floor) / (1 + (f / half) ** power) + floor``, ``f`` the fraction of Nyquist."""
    f = _frequencies(shape, sampling_A) * sampling_A / 0.5  # fraction of Nyquist
    return (1 - floor) / (1 + (f / half_nyquist) ** power) + floor


def detector(
    images: np.ndarray,
    sampling_A: float,
    params: MicroscopeParams,
    rng: np.random.Generator | None,
) -> np.ndarray:
    """Blur (Gaussian, sigma in A), Poisson counts at the dose, detector MTF.

    ``images`` (..., H, W) are intensities relative to vacuum (= 1). With ``rng=None``
    the noise is skipped and the result is the expected count per pixel. The MTF
    (:func:`detector_mtf`) acts on the noisy counts, as a scintillator does. Returns
    float32 counts per pixel.
    """
    k = _frequencies(images.shape[-2:], sampling_A)
    spectrum = np.fft.fft2(images) * np.exp(-2 * (np.pi * params.blur_sigma_A * k) ** 2)
    expected = np.clip(np.real(np.fft.ifft2(spectrum)), 0, None)
    expected = expected * params.dose_e_per_A2 * sampling_A**2
    counts = rng.poisson(expected).astype(float) if rng is not None else expected
    mtf = detector_mtf(
        images.shape[-2:],
        sampling_A,
        params.mtf_floor,
        params.mtf_half_nyquist,
        params.mtf_power,
    )
    return np.real(np.fft.ifft2(np.fft.fft2(counts) * mtf)).astype(np.float32)


def output_shape(field_A: Sequence[float], output_sampling_A: float) -> tuple[int, int]:
    """(H, W) of the output images: the field of view at the output sampling (rounded).

    H comes from the field's y extent, W from its x extent.
    """
    return (int(round(field_A[1] / output_sampling_A)), int(round(field_A[0] / output_sampling_A)))


def image_field(field_A: Sequence[float], output_sampling_A: float) -> tuple[float, float]:
    """The field of view (Lx, Ly) in A of an image of :func:`output_shape` pixels at
    ``output_sampling_A``: ``(W * s, H * s)``, within half a pixel of ``field_A``.

    The per-image specimen cell is this field, so the pixels tile the periodic cell
    exactly at the drawn sampling (square pixels, no seam in the pixel grid).
    """
    h, w = output_shape(field_A, output_sampling_A)
    return (w * output_sampling_A, h * output_sampling_A)


def potential_grid_sampling(
    field_A: Sequence[float], potential_sampling_A: float
) -> float | tuple[float, float]:
    """The sampling to give abTEM for the potential of a ``field_A`` cell.

    abTEM takes ``ceil(L / s)`` grid points per axis. A field drawn per image makes that an
    arbitrary number, often with a large prime factor (514 = 2 * 257), for which every FFT
    of the multislice is slow. Where that happens the grid is raised to
    ``scipy.fft.next_fast_len`` points per axis (the returned per-axis sampling is
    ``L / n``, a hair larger so abTEM's ceil lands on ``n``): never coarser than
    ``potential_sampling_A``. Fields whose grids are already fast get
    ``potential_sampling_A`` back unchanged.
    """
    import scipy.fft

    lengths = [float(field_A[0]), float(field_A[1])]
    gpts = [int(np.ceil(n / potential_sampling_A)) for n in lengths]
    fast = [scipy.fft.next_fast_len(n) for n in gpts]
    if fast == gpts:
        return potential_sampling_A
    sx, sy = (L / n * (1 + 1e-9) for L, n in zip(lengths, fast, strict=True))
    return (sx, sy)


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
    frame_shifts_A: np.ndarray | None = None,
    frame_rotations_deg: np.ndarray | None = None,
) -> np.ndarray:
    """Focal series (n_defoci, H, W) float32 in the image frame, counts per pixel.

    The field of view is the cell's in-plane size; the output grid is the cell at
    ``output_sampling_A`` (which must divide it, within 1e-6 relative: a per-image
    sampling comes with its own field, :func:`image_field`). The potential grid is at
    most ``potential_sampling_A`` and FFT-friendly (:func:`potential_grid_sampling`).
    ``rng=None`` gives the noise-free expected counts. ``frame_shifts_A`` (n_defoci, 2):
    each channel's drift (dx, dy) in A (:func:`temflow.hrtem.frames.shift_frames`), applied
    to the noise-free intensity before the detector, so the noise is not shifted;
    ``frame_rotations_deg`` (n_defoci,) rotates each channel about the image centre first
    (:func:`temflow.hrtem.frames.rotate_frames`).
    """
    if not 0 < potential_sampling_A <= output_sampling_A:
        raise TemflowError(
            f"output sampling {output_sampling_A} A is finer than the potential sampling "
            f"{potential_sampling_A} A (or not positive): the potential must be sampled at "
            "least as finely as the output image"
        )
    field = (float(atoms.cell[0, 0]), float(atoms.cell[1, 1]))
    shape = output_shape(field, output_sampling_A)
    if (
        min(shape) < 1
        or abs(shape[0] * output_sampling_A - field[1]) > 1e-6 * field[1]
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
        potential_grid_sampling(field, potential_sampling_A),  # type: ignore[arg-type]
        slice_thickness_A,
        device=device,
        out_shape=(shape[1], shape[0]),
    )
    series = np.swapaxes(series, -1, -2)  # (x, y) -> (y, x) = (H, W)
    if frame_rotations_deg is not None:
        series = rotate_frames(series, frame_rotations_deg)
    if frame_shifts_A is not None:
        series = shift_frames(series, frame_shifts_A, output_sampling_A)
    return detector(series, output_sampling_A, params, rng)
