"""Microscope parameters drawn per image from configured ranges.

Every range is ``[lo, hi]`` (``lo == hi`` fixes the value). The focal series is
``centre + offsets`` with the centre drawn per image; offsets must be non-empty and
strictly increasing, so channels come out in increasing-defocus order. Dose is drawn
log-uniformly. Defocus follows abTEM (``defocus = -C10``; positive = underfocus).

The output pixel size (``hrtem.simulation.output_sampling_A``, a range ``[min, max]`` or
one number) is drawn per image too (:func:`draw_output_sampling`, uniformly), before the
sample; a degenerate range draws nothing, so such configs give the same images as when
the key was a single number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from temflow.errors import TemflowError

#: Keys of ``hrtem.microscope`` that are [lo, hi] ranges, with the lower bound allowed.
RANGE_KEYS: dict[str, float] = {
    "energy_keV": 1e-9,
    "defocus_centre_A": -np.inf,
    "Cs_A": -np.inf,
    "astigmatism_A": 0.0,
    "astigmatism_angle_rad": -np.inf,
    "focal_spread_A": 0.0,
    "semiangle_cutoff_mrad": 1e-9,
    "dose_e_per_A2": 1e-300,
    "blur_sigma_A": 0.0,
    "mtf_floor": 0.0,
    "mtf_half_nyquist": 1e-9,
    "mtf_power": 1e-9,
}


@dataclass(frozen=True)
class MicroscopeParams:
    """Parameters of one image (A, eV, rad, mrad, e/A^2). Stored with every image."""

    energy_eV: float
    defoci_A: tuple[float, ...]
    Cs_A: float
    astigmatism_A: float
    astigmatism_angle_rad: float
    focal_spread_A: float
    semiangle_cutoff_mrad: float
    dose_e_per_A2: float
    blur_sigma_A: float
    mtf_floor: float
    mtf_half_nyquist: float
    mtf_power: float

    def as_dict(self) -> dict[str, float | list[float]]:
        d = asdict(self)
        d["defoci_A"] = list(self.defoci_A)
        return d


def check_microscope_params(params: Mapping) -> None:
    """Raise TemflowError naming the key for an empty or non-increasing focal series,
    a non-positive dose, a reversed range or a value outside its physical bounds."""
    offsets = list(params.get("defocus_offsets_A", []))
    if len(offsets) == 0:
        raise TemflowError(
            "hrtem.microscope.defocus_offsets_A is empty; expected a strictly "
            "increasing list of focal offsets in A, e.g. [-50, 0, 50]"
        )
    if np.any(np.diff(offsets) <= 0):
        raise TemflowError(
            f"hrtem.microscope.defocus_offsets_A must be strictly increasing, got {offsets}"
        )
    for key, lower in RANGE_KEYS.items():
        value = params.get(key)
        if value is None or len(value) != 2:
            raise TemflowError(f"hrtem.microscope.{key} must be a range [lo, hi], got {value}")
        lo, hi = float(value[0]), float(value[1])
        if lo > hi:
            raise TemflowError(f"hrtem.microscope.{key}: lo {lo} > hi {hi}")
        if lo < lower or (key == "dose_e_per_A2" and lo <= 0):
            what = "> 0" if lower > 0 or key == "dose_e_per_A2" else ">= 0"
            raise TemflowError(f"hrtem.microscope.{key} must be {what}, got {[lo, hi]}")


def sample_microscope(params: Mapping, rng: np.random.Generator) -> MicroscopeParams:
    """Draw one image's parameters from the ``hrtem.microscope`` config section."""
    check_microscope_params(params)

    def uniform(key: str) -> float:
        lo, hi = params[key]
        return float(rng.uniform(lo, hi)) if hi > lo else float(lo)

    centre = uniform("defocus_centre_A")
    lo, hi = params["dose_e_per_A2"]
    dose = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else float(lo)
    return MicroscopeParams(
        energy_eV=uniform("energy_keV") * 1e3,
        defoci_A=tuple(float(centre + o) for o in params["defocus_offsets_A"]),
        Cs_A=uniform("Cs_A"),
        astigmatism_A=uniform("astigmatism_A"),
        astigmatism_angle_rad=uniform("astigmatism_angle_rad"),
        focal_spread_A=uniform("focal_spread_A"),
        semiangle_cutoff_mrad=uniform("semiangle_cutoff_mrad"),
        dose_e_per_A2=dose,
        blur_sigma_A=uniform("blur_sigma_A"),
        mtf_floor=uniform("mtf_floor"),
        mtf_half_nyquist=uniform("mtf_half_nyquist"),
        mtf_power=uniform("mtf_power"),
    )


def sampling_range(
    value: float | Sequence[float], key: str = "output_sampling_A"
) -> tuple[float, float]:
    """``hrtem.simulation.output_sampling_A`` as ``(min, max)`` in A/px.

    A single number is the degenerate range ``(v, v)`` (configs written before the key
    became a range). Raises TemflowError naming the key for anything but one or two
    positive numbers with ``min <= max``.
    """
    name = f"hrtem.simulation.{key}"
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        lo = hi = float(value)
    else:
        try:
            lo, hi = (float(v) for v in value)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise TemflowError(
                f"{name} must be a range [min, max] of A/px (or one number), got {value!r}"
            ) from None
    if not (lo > 0 and hi > 0):
        raise TemflowError(f"{name} must be positive, got {value!r}")
    if lo > hi:
        raise TemflowError(f"{name}: min {lo} > max {hi}; expected a range [min, max] of A/px")
    return lo, hi


def draw_output_sampling(value: float | Sequence[float], rng: np.random.Generator) -> float:
    """One image's output pixel size (A), uniform in the configured range.

    A degenerate range returns its value without drawing from ``rng``.
    """
    lo, hi = sampling_range(value)
    return float(rng.uniform(lo, hi)) if hi > lo else lo
