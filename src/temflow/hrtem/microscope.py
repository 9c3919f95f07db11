"""Microscope parameters drawn per image from the configured ranges.

The ranges come checked in a :class:`~temflow.hrtem.config.MicroscopeConfig`; every range
is ``[lo, hi]`` (``lo == hi`` fixes the value and draws nothing). The focal series is
``centre + offsets`` with the centre drawn per image; offsets are strictly increasing, so
channels come out in increasing-defocus order. With ``defocus_scherzer_fraction`` the
centre is also moved by a drawn fraction of the image's Scherzer defocus, the focus an
operator sets for its Cs (:func:`scherzer_defocus_A`). Dose is drawn log-uniformly. Defocus
follows abTEM (``defocus = -C10``; positive = underfocus). Cs is in micrometres and the
residual coma (C21) and three-fold astigmatism (C23) in nanometres, as instruments report
them; :func:`~temflow.hrtem.simulate.make_ctf` converts them to abTEM's A.

The output pixel size is drawn per image too (:func:`draw_output_sampling`, uniformly in
``hrtem.simulation.output_sampling_A``), before the sample.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from abtem.core.energy import energy2wavelength
from abtem.transfer import scherzer_defocus

from temflow.hrtem.config import MicroscopeConfig


@dataclass(frozen=True)
class MicroscopeParams:
    """Parameters of one image (A, eV, um, nm, rad, mrad, e/A^2). Stored with every image.

    ``C21_nm``/``phi21_rad`` are the axial coma and its angle, ``C23_nm``/``phi23_rad`` the
    three-fold astigmatism and its angle (abTEM's polar coefficients), and
    ``angular_spread_mrad`` abTEM's partial spatial coherence (illumination spread).
    """

    energy_eV: float
    defoci_A: tuple[float, ...]
    Cs_um: float
    astigmatism_A: float
    astigmatism_angle_rad: float
    focal_spread_A: float
    semiangle_cutoff_mrad: float
    dose_e_per_A2: float
    blur_sigma_A: float
    mtf_floor: float
    mtf_half_nyquist: float
    mtf_power: float
    C21_nm: float = 0.0
    phi21_rad: float = 0.0
    C23_nm: float = 0.0
    phi23_rad: float = 0.0
    angular_spread_mrad: float = 0.0
    #: the focal series' centre is ``defocus_centre_A`` draw + this x ``scherzer_defocus_A``
    defocus_scherzer_fraction: float = 0.0
    scherzer_defocus_A: float = 0.0

    def as_dict(self) -> dict[str, float | list[float]]:
        d = asdict(self)
        d["defoci_A"] = list(self.defoci_A)
        return d


#: Drawn after the other parameters, in this order (a dict keeps it).
RESIDUAL_KEYS: tuple[str, ...] = (
    "C21_nm",
    "phi21_rad",
    "C23_nm",
    "phi23_rad",
    "angular_spread_mrad",
)


def scherzer_semiangle_mrad(energy_eV: float, Cs_um: float) -> float:
    """The objective semi-angle (mrad) that Scherzer's condition allows for this Cs:
    ``(6 lambda / |Cs|)^(1/4)``, the aperture at which the best defocus still keeps the
    phase of the transfer function flat (Scherzer, J. Appl. Phys. 20, 20 (1949)); beyond it
    the spherical-aberration phase grows as k^4 and delocalises the contrast, so no operator
    images with a wider aperture. Infinite for Cs = 0."""
    if Cs_um == 0:
        return float("inf")
    wavelength_A = float(energy2wavelength(energy_eV))
    return 1e3 * (6 * wavelength_A / (abs(Cs_um) * 1e4)) ** 0.25


def scherzer_defocus_A(energy_eV: float, Cs_um: float) -> float:
    """abTEM's Scherzer defocus (A, abTEM's sign: positive = underfocus) for this Cs:
    ``sign(Cs) sqrt(3/2 |Cs| lambda)``, the focus whose phase plate is flattest up to the
    first zero (Scherzer, J. Appl. Phys. 20, 20 (1949)). For a negative Cs it is an
    overfocus, the negative-Cs imaging condition (Jia, Lentzen & Urban, Science 299, 870
    (2003)). Zero for Cs = 0."""
    return float(scherzer_defocus(Cs_um * 1e4, energy_eV))


def sample_microscope(config: MicroscopeConfig, rng: np.random.Generator) -> MicroscopeParams:
    """Draw one image's parameters from the ``hrtem.microscope`` ranges.

    With ``semiangle_limit: scherzer`` the aperture is drawn uniformly up to the smaller of
    its range's ``hi`` and :func:`scherzer_semiangle_mrad` of the image's Cs (never below
    ``lo``), with one draw as without the limit, so every other value is unchanged.
    The residual aberrations, the angular spread and then the Scherzer fraction of the
    focal-series centre are drawn after the other parameters, and a fixed range
    (``lo == hi``) draws nothing, so with them fixed the other values are the same as
    without them. The defoci are ``centre + fraction * scherzer_defocus_A(Cs) + offsets``.
    """

    def uniform(key: str) -> float:
        lo, hi = getattr(config, key)
        return float(rng.uniform(lo, hi)) if hi > lo else float(lo)

    centre = uniform("defocus_centre_A")
    lo, hi = config.dose_e_per_A2
    dose = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else float(lo)
    energy_eV = uniform("energy_keV") * 1e3
    cs_um = uniform("Cs_um")
    astigmatism_A = uniform("astigmatism_A")
    astigmatism_angle_rad = uniform("astigmatism_angle_rad")
    focal_spread_A = uniform("focal_spread_A")
    lo, hi = config.semiangle_cutoff_mrad
    if config.semiangle_limit == "scherzer":
        hi = max(lo, min(hi, scherzer_semiangle_mrad(energy_eV, cs_um)))
    semiangle_mrad = float(rng.uniform(lo, hi)) if hi > lo else float(lo)
    blur_sigma_A = uniform("blur_sigma_A")
    mtf = {key: uniform(key) for key in ("mtf_floor", "mtf_half_nyquist", "mtf_power")}
    residuals = {key: uniform(key) for key in RESIDUAL_KEYS}
    fraction = uniform("defocus_scherzer_fraction")
    scherzer_A = scherzer_defocus_A(energy_eV, cs_um)
    centre += fraction * scherzer_A
    defoci_A = tuple(float(centre + o) for o in config.defocus_offsets_A)
    return MicroscopeParams(
        energy_eV=energy_eV,
        defoci_A=defoci_A,
        Cs_um=cs_um,
        astigmatism_A=astigmatism_A,
        astigmatism_angle_rad=astigmatism_angle_rad,
        focal_spread_A=focal_spread_A,
        semiangle_cutoff_mrad=semiangle_mrad,
        dose_e_per_A2=dose,
        blur_sigma_A=blur_sigma_A,
        **mtf,
        **residuals,
        defocus_scherzer_fraction=fraction,
        scherzer_defocus_A=scherzer_A,
    )


def draw_output_sampling(range_A: tuple[float, float], rng: np.random.Generator) -> float:
    """One image's output pixel size (A), uniform in ``range_A`` = (min, max).

    A degenerate range returns its value without drawing from ``rng``.
    """
    lo, hi = range_A
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)
