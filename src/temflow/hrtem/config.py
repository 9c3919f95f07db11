"""The ``hrtem.sample``, ``hrtem.microscope`` and ``hrtem.simulation`` config sections as
typed values, parsed and checked once (at the script boundary).

``HrtemConfig.from_mapping(config["hrtem"])`` (or each section's ``from_mapping``) raises
one TemflowError naming the key (``hrtem.microscope.dose_e_per_A2``, ...) for a missing,
unknown or impossible value; the library (:mod:`~temflow.hrtem.samples`,
:mod:`~temflow.hrtem.microscope`, :mod:`~temflow.hrtem.generate`) then takes these objects
and checks nothing per image. Keys and units: config/README.md.

Numbers keep the type they were given (an int stays an int), so the config stored with a
shard (``as_dict``) reads as it was written; ranges and lists become tuples.
``output_sampling_A`` is always stored as a range ``(min, max)`` of floats.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from temflow.config import renamed_key_error
from temflow.errors import TemflowError

Range = tuple[float, float]

#: Sides of the specimen an amorphous-carbon contamination layer can cover, along the beam.
CONTAMINATION_SIDES: tuple[str, ...] = ("entrance", "exit")
#: Highest packing fraction (number density x pi/6 x min_distance^3) the contamination's
#: random sequential addition is asked for: its jamming limit is about 0.38.
MAX_CONTAMINATION_PACKING = 0.3
#: Molar mass of carbon (g/mol) and the Avogadro constant (1/mol).
CARBON_MOLAR_MASS_G_PER_MOL = 12.011
AVOGADRO_PER_MOL = 6.02214076e23


def carbon_number_density_per_A3(density_g_per_cm3: float) -> float:
    """C atoms per A^3 of carbon at ``density_g_per_cm3`` (2 g/cm^3 -> 0.100 per A^3)."""
    return density_g_per_cm3 * AVOGADRO_PER_MOL / CARBON_MOLAR_MASS_G_PER_MOL * 1e-24


#: Lowest allowed lower bound of each ``hrtem.microscope`` range (dose: must be > 0).
MICROSCOPE_LOWER_BOUNDS: dict[str, float] = {
    "energy_keV": 1e-9,
    "defocus_centre_A": -np.inf,
    "defocus_scherzer_fraction": 0.0,
    "Cs_um": -np.inf,
    "C21_nm": 0.0,
    "phi21_rad": -np.inf,
    "C23_nm": 0.0,
    "phi23_rad": -np.inf,
    "angular_spread_mrad": 0.0,
    "astigmatism_A": 0.0,
    "astigmatism_angle_rad": -np.inf,
    "focal_spread_A": 0.0,
    "semiangle_cutoff_mrad": 1e-9,
    "dose_e_per_A2": 1e-300,
    "blur_sigma_A": 0.0,
    "mtf_floor": 0.0,
    "mtf_half_nyquist": 1e-9,
    "mtf_power": 1e-9,
    "frame_shift_A": 0.0,
    "frame_rotation_deg": 0.0,
}
#: Largest frame rotation accepted, degrees: "a small rotation" between exposures.
MAX_FRAME_ROTATION_DEG = 2.0


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _number(value: Any, name: str) -> float:
    if not _is_number(value):
        raise TemflowError(f"{name} must be a number, got {value!r}")
    return value


def _numbers(value: Any, name: str, what: str, length: int | None = None) -> tuple:
    """A list of numbers as a tuple (values as given); ``length``: exactly that many."""
    try:
        items = tuple(value)
    except TypeError:
        items = None
    if (
        items is None
        or isinstance(value, (str, bytes, Mapping))
        or (length is not None and len(items) != length)
        or not all(_is_number(v) for v in items)
    ):
        raise TemflowError(f"{name} must be {what}, got {value!r}")
    return items


def _sides(value: Any, name: str) -> tuple[str, ...]:
    """A non-empty list of distinct :data:`CONTAMINATION_SIDES`."""
    items = list(value) if isinstance(value, (list, tuple)) else None
    if (
        not items
        or len(set(items)) != len(items)
        or not all(isinstance(v, str) and v in CONTAMINATION_SIDES for v in items)
    ):
        raise TemflowError(
            f"{name} must be a non-empty list of distinct sides out of "
            f"{list(CONTAMINATION_SIDES)}, got {value!r}"
        )
    return tuple(items)


def _fields(cls: type, section: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The section's values by field name; a missing or unknown key names the key."""
    if not isinstance(section, Mapping):
        raise TemflowError(f"{name} must be a mapping of keys to values, got {section!r}")
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(section) - set(names))
    renamed = renamed_key_error(name, unknown)
    if renamed:
        raise TemflowError(renamed)
    if unknown:
        raise TemflowError(f"{name}: unknown key(s) {unknown}; expected {names}")
    missing = [n for n in names if n not in section]
    if missing:
        raise TemflowError(f"{name}.{missing[0]} is missing")
    return {n: section[n] for n in names}


def _as_dict(obj: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(obj).items()}


@dataclass(frozen=True)
class SampleConfig:
    """``hrtem.sample``: the specimen (lengths in A).

    ``s_vacancy_fraction`` and ``mo_vacancy_fraction`` are ranges [lo, hi] of the
    per-image probability that a site is empty; ``graphene_spacing_A`` is the distance
    from the lower S plane to the graphene plane; ``vacuum_A`` the vacuum above and below.
    The amorphous-carbon contamination: ``contamination_thickness_A`` the range [lo, hi]
    of each covered side's layer thickness, drawn per image and side (``[0, 0]``: none),
    ``contamination_sides`` which sides (``entrance``, ``exit`` of the beam),
    ``contamination_density_g_per_cm3`` and ``contamination_min_distance_A`` (closest
    C-C distance).
    """

    field_of_view_A: tuple[float, float]
    s_vacancy_fraction: Range
    mo_vacancy_fraction: Range
    graphene_spacing_A: float
    vacuum_A: float
    contamination_thickness_A: Range
    contamination_sides: tuple[str, ...]
    contamination_density_g_per_cm3: float
    contamination_min_distance_A: float

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any]) -> SampleConfig:
        name = "hrtem.sample"
        v = _fields(cls, section, name)
        return cls(
            field_of_view_A=_numbers(
                v["field_of_view_A"], f"{name}.field_of_view_A", "two positive lengths", 2
            ),
            s_vacancy_fraction=_numbers(
                v["s_vacancy_fraction"], f"{name}.s_vacancy_fraction", "a range [lo, hi]", 2
            ),
            mo_vacancy_fraction=_numbers(
                v["mo_vacancy_fraction"], f"{name}.mo_vacancy_fraction", "a range [lo, hi]", 2
            ),
            graphene_spacing_A=_number(v["graphene_spacing_A"], f"{name}.graphene_spacing_A"),
            vacuum_A=_number(v["vacuum_A"], f"{name}.vacuum_A"),
            contamination_thickness_A=_numbers(
                v["contamination_thickness_A"],
                f"{name}.contamination_thickness_A",
                "a range [lo, hi] of layer thicknesses in A",
                2,
            ),
            contamination_sides=_sides(v["contamination_sides"], f"{name}.contamination_sides"),
            contamination_density_g_per_cm3=_number(
                v["contamination_density_g_per_cm3"], f"{name}.contamination_density_g_per_cm3"
            ),
            contamination_min_distance_A=_number(
                v["contamination_min_distance_A"], f"{name}.contamination_min_distance_A"
            ),
        )

    def __post_init__(self) -> None:
        fov = self.field_of_view_A
        if len(fov) != 2 or min(fov) <= 0:
            raise TemflowError(
                f"hrtem.sample.field_of_view_A must be two positive lengths, got {list(fov)}"
            )
        for key in ("s_vacancy_fraction", "mo_vacancy_fraction"):
            lo, hi = getattr(self, key)
            if not 0 <= lo <= hi < 1:
                raise TemflowError(
                    f"hrtem.sample.{key} must be [lo, hi] with 0 <= lo <= hi < 1, got {[lo, hi]}"
                )
        if self.vacuum_A < 0:
            raise TemflowError(f"hrtem.sample.vacuum_A must be >= 0, got {self.vacuum_A}")
        if self.graphene_spacing_A <= 0:
            raise TemflowError(
                f"hrtem.sample.graphene_spacing_A must be > 0, got {self.graphene_spacing_A}"
            )
        lo, hi = self.contamination_thickness_A
        if not 0 <= lo <= hi:
            raise TemflowError(
                "hrtem.sample.contamination_thickness_A must be [lo, hi] with 0 <= lo <= hi "
                f"(A), got {[lo, hi]}"
            )
        for key in ("contamination_density_g_per_cm3", "contamination_min_distance_A"):
            if not getattr(self, key) > 0:
                raise TemflowError(f"hrtem.sample.{key} must be > 0, got {getattr(self, key)}")
        d = self.contamination_min_distance_A
        packing = carbon_number_density_per_A3(self.contamination_density_g_per_cm3)
        packing *= np.pi / 6 * d**3
        if packing > MAX_CONTAMINATION_PACKING:
            raise TemflowError(
                f"hrtem.sample.contamination_density_g_per_cm3="
                f"{self.contamination_density_g_per_cm3} with contamination_min_distance_A={d} "
                f"packs the carbon to {packing:.2f} (> {MAX_CONTAMINATION_PACKING}): random "
                "placement cannot reach it; lower the density or the distance"
            )

    def as_dict(self) -> dict[str, Any]:
        return _as_dict(self)


#: ``hrtem.microscope.semiangle_limit``: cap the aperture at Scherzer's for the image's Cs.
SEMIANGLE_LIMITS = ("scherzer", "none")


@dataclass(frozen=True)
class MicroscopeConfig:
    """``hrtem.microscope``: ranges [lo, hi] drawn per image (``lo == hi`` fixes a value).

    Units: keV, A, um (``Cs_um``), nm (``C21_nm``, ``C23_nm``), rad, mrad, e/A^2; the MTF
    terms are fractions. The focal series is the drawn ``defocus_centre_A``, plus the drawn
    ``defocus_scherzer_fraction`` of the image's Scherzer defocus, plus
    ``defocus_offsets_A`` (non-empty, strictly increasing).
    ``frame_shift_A`` is the range of the drift of each frame against the reference
    (middle) channel, whose frame the labels are in (:mod:`temflow.hrtem.frames`); its
    ``hi`` may be at most a quarter of the field of view (checked by :class:`HrtemConfig`).
    ``frame_rotation_deg`` is the range of each such frame's rotation magnitude, at most
    ``MAX_FRAME_ROTATION_DEG``.
    """

    energy_keV: Range
    defocus_offsets_A: tuple[float, ...]
    defocus_centre_A: Range
    defocus_scherzer_fraction: Range
    Cs_um: Range
    C21_nm: Range
    phi21_rad: Range
    C23_nm: Range
    phi23_rad: Range
    angular_spread_mrad: Range
    astigmatism_A: Range
    astigmatism_angle_rad: Range
    focal_spread_A: Range
    semiangle_cutoff_mrad: Range
    dose_e_per_A2: Range
    blur_sigma_A: Range
    mtf_floor: Range
    mtf_half_nyquist: Range
    mtf_power: Range
    frame_shift_A: Range
    frame_rotation_deg: Range
    semiangle_limit: str

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any]) -> MicroscopeConfig:
        name = "hrtem.microscope"
        v = _fields(cls, section, name)
        values: dict[str, Any] = {
            "defocus_offsets_A": _numbers(
                v["defocus_offsets_A"],
                f"{name}.defocus_offsets_A",
                "a strictly increasing list of focal offsets in A, e.g. [-50, 0, 50]",
            )
        }
        for key in MICROSCOPE_LOWER_BOUNDS:
            values[key] = _numbers(v[key], f"{name}.{key}", "a range [lo, hi]", 2)
        values["semiangle_limit"] = v["semiangle_limit"]
        return cls(**values)

    def __post_init__(self) -> None:
        if self.semiangle_limit not in SEMIANGLE_LIMITS:
            raise TemflowError(
                f"hrtem.microscope.semiangle_limit: expected one of {list(SEMIANGLE_LIMITS)}, "
                f"got {self.semiangle_limit!r}"
            )
        rotation = float(self.frame_rotation_deg[1])
        if rotation > MAX_FRAME_ROTATION_DEG:
            raise TemflowError(
                f"hrtem.microscope.frame_rotation_deg={list(self.frame_rotation_deg)} deg: "
                f"a frame rotation may be at most {MAX_FRAME_ROTATION_DEG:g} deg"
            )
        offsets = list(self.defocus_offsets_A)
        if len(offsets) == 0:
            raise TemflowError(
                "hrtem.microscope.defocus_offsets_A is empty; expected a strictly "
                "increasing list of focal offsets in A, e.g. [-50, 0, 50]"
            )
        if np.any(np.diff(offsets) <= 0):
            raise TemflowError(
                f"hrtem.microscope.defocus_offsets_A must be strictly increasing, got {offsets}"
            )
        for key, lower in MICROSCOPE_LOWER_BOUNDS.items():
            value = getattr(self, key)
            if len(value) != 2:
                raise TemflowError(f"hrtem.microscope.{key} must be a range [lo, hi], got {value}")
            lo, hi = float(value[0]), float(value[1])
            if lo > hi:
                raise TemflowError(f"hrtem.microscope.{key}: lo {lo} > hi {hi}")
            if lo < lower or (key == "dose_e_per_A2" and lo <= 0):
                what = "> 0" if lower > 0 or key == "dose_e_per_A2" else ">= 0"
                raise TemflowError(f"hrtem.microscope.{key} must be {what}, got {[lo, hi]}")

    def as_dict(self) -> dict[str, Any]:
        return _as_dict(self)


def _sampling_range(value: Any) -> Range:
    """``output_sampling_A`` as ``(min, max)`` floats."""
    name = "hrtem.simulation.output_sampling_A"
    lo, hi = (float(v) for v in _numbers(value, name, "a range [min, max] of A/px", 2))
    if not (lo > 0 and hi > 0):
        raise TemflowError(f"{name} must be positive, got {value!r}")
    return lo, hi


@dataclass(frozen=True)
class SimulationConfig:
    """``hrtem.simulation``: multislice and output grid (A).

    ``output_sampling_A`` is the range ``(min, max)`` of the image pixel size, A/px, drawn
    per image (``[s, s]`` fixes it). Its min may not be finer than ``potential_sampling_A``.
    """

    n_configs: int
    potential_sampling_A: float
    slice_thickness_A: float
    output_sampling_A: Range

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any]) -> SimulationConfig:
        name = "hrtem.simulation"
        v = _fields(cls, section, name)
        n_configs = v["n_configs"]
        if not isinstance(n_configs, numbers.Integral) or isinstance(n_configs, bool):
            raise TemflowError(f"{name}.n_configs must be an integer >= 1, got {n_configs!r}")
        return cls(
            n_configs=n_configs,
            potential_sampling_A=_number(v["potential_sampling_A"], f"{name}.potential_sampling_A"),
            slice_thickness_A=_number(v["slice_thickness_A"], f"{name}.slice_thickness_A"),
            output_sampling_A=_sampling_range(v["output_sampling_A"]),
        )

    def __post_init__(self) -> None:
        if self.n_configs < 1:
            raise TemflowError(f"hrtem.simulation.n_configs must be >= 1, got {self.n_configs}")
        for key in ("potential_sampling_A", "slice_thickness_A"):
            if not getattr(self, key) > 0:
                raise TemflowError(
                    f"hrtem.simulation.{key} must be positive, got {getattr(self, key)}"
                )
        lo, hi = self.output_sampling_A
        if lo > hi:
            raise TemflowError(
                f"hrtem.simulation.output_sampling_A: min {lo} > max {hi}; expected a range "
                "[min, max] of A/px"
            )
        if lo < self.potential_sampling_A:
            raise TemflowError(
                f"hrtem.simulation.output_sampling_A={list(self.output_sampling_A)} A "
                f"(min {lo}) is finer than potential_sampling_A={self.potential_sampling_A} A: "
                "the potential must be sampled at least as finely as the output images "
                "(lower potential_sampling_A)"
            )

    def as_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class HrtemConfig:
    """The three sections the simulation uses; checked together (a field of view of at
    least 2 pixels at the coarsest output sampling, frame shifts of at most a quarter of
    the field)."""

    sample: SampleConfig
    microscope: MicroscopeConfig
    simulation: SimulationConfig

    @classmethod
    def from_mapping(cls, hrtem: Mapping[str, Any]) -> HrtemConfig:
        """From the ``hrtem`` config section (its other keys, datasets and shards, are
        not read here)."""
        for key in ("sample", "microscope", "simulation"):
            if key not in hrtem:
                raise TemflowError(f"hrtem.{key} is missing")
        return cls(
            SampleConfig.from_mapping(hrtem["sample"]),
            MicroscopeConfig.from_mapping(hrtem["microscope"]),
            SimulationConfig.from_mapping(hrtem["simulation"]),
        )

    def __post_init__(self) -> None:
        from temflow.hrtem.simulate import output_shape

        fov = self.sample.field_of_view_A
        _, coarsest = self.simulation.output_sampling_A
        if min(output_shape(fov, coarsest)) < 2:
            raise TemflowError(
                f"hrtem.sample.field_of_view_A={list(fov)} is less than 2 pixels of "
                f"hrtem.simulation.output_sampling_A={coarsest} A"
            )
        shift = float(self.microscope.frame_shift_A[1])
        if shift > min(fov) / 4:
            raise TemflowError(
                f"hrtem.microscope.frame_shift_A={list(self.microscope.frame_shift_A)} A: "
                "a frame shift may be at most a quarter of the field of view "
                f"{list(fov)} A, i.e. hi <= {min(fov) / 4:g} A"
            )

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """``{"sample": {...}, "microscope": {...}, "simulation": {...}}`` (lists)."""
        return {
            "sample": self.sample.as_dict(),
            "microscope": self.microscope.as_dict(),
            "simulation": self.simulation.as_dict(),
        }


#: The sections of ``hrtem`` a dataset may override (``hrtem.datasets.<name>.<section>``).
DATASET_OVERRIDE_SECTIONS = ("sample", "microscope")


def dataset_section(hrtem: Mapping[str, Any], dataset: str) -> dict[str, Any]:
    """The ``hrtem`` section as one dataset is simulated with: its ``sample`` and
    ``microscope`` keys replaced by the dataset's own (``hrtem.datasets.<name>.sample``,
    ``.microscope``), e.g. a validation set with contamination drawn.

    Raises :class:`TemflowError` naming the dataset's key when an override names no key of
    the section or makes the section invalid."""
    datasets = hrtem.get("datasets", {})
    if dataset not in datasets:
        raise TemflowError(f"hrtem.datasets has no dataset {dataset!r}; has {list(datasets)}")
    entry = datasets[dataset]
    merged = dict(hrtem)
    for section in DATASET_OVERRIDE_SECTIONS:
        overrides = entry.get(section) or {}
        where = f"hrtem.datasets.{dataset}.{section}"
        unknown = sorted(set(overrides) - set(hrtem[section]))
        if unknown:
            raise TemflowError(
                f"{where}: unknown key(s) {unknown}; expected keys of hrtem.{section}"
            )
        merged[section] = {**hrtem[section], **overrides}
    if any(entry.get(s) for s in DATASET_OVERRIDE_SECTIONS):
        try:
            HrtemConfig.from_mapping(merged)
        except TemflowError as err:
            where = f"hrtem.datasets.{dataset} (its own sample/microscope)"
            raise TemflowError(f"{where}: {err}") from None
    return merged
