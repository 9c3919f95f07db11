"""abTEM internals temflow.hrtem.simulate relies on: present, same signature, same result.

The fast multislice path (:func:`temflow.hrtem.simulate.multislice_focal_series`) calls
abTEM functions that are not its public API. pyproject.toml pins abTEM to the minor
versions it was tested with; when a newer abTEM drops or changes one of them, these tests
name it and that range.
"""

from __future__ import annotations

import importlib
import inspect
import re
import tomllib

import numpy as np
import pytest
from ase import Atoms
from conftest import ROOT

from temflow.hrtem.microscope import MicroscopeParams
from temflow.hrtem.simulate import exit_focal_series, reference_focal_series


def _tested_abtem_range() -> str:
    """The abTEM requirement of pyproject.toml, e.g. ``>=1.0.10,<1.1``."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [d for d in deps if re.match(r"abtem\b", d, flags=re.I)]
    return spec[len("abtem") :].strip()


TESTED = f"temflow.hrtem.simulate is tested with abtem{_tested_abtem_range()}"


#: (module, attribute, leading parameters in the order temflow passes them).
INTERNALS = [
    ("abtem.multislice", "_fresnel_propagator_array",
     ["thickness", "gpts", "sampling", "energy", "device"]),
    ("abtem.antialias", "antialias_aperture", ["gpts", "sampling", "xp"]),
    ("abtem.core.backend", "get_array_module", ["x"]),
    ("abtem.core.complex", "complex_exponential", ["x"]),
    ("abtem.core.complex", "abs2", ["x"]),
    ("abtem.core.energy", "energy2sigma", ["energy"]),
    ("abtem.potentials.iam", "PotentialArray", ["array", "slice_thickness"]),
    ("abtem.transfer", "CTF._evaluate_kernel", ["self", "waves"]),
    ("abtem", "Waves", ["array", "energy"]),
]  # fmt: skip
#: Keyword parameters temflow passes by name.
KEYWORDS = {
    "PotentialArray": ["sampling", "ensemble_axes_metadata"],
    "Waves": ["sampling"],
}
#: Classes located by type in the ensemble axes metadata.
AXIS_CLASSES = [("abtem.core.axes", "FrozenPhononsAxis"), ("abtem.core.axes", "ParameterAxis")]


def _lookup(module: str, attribute: str):
    import abtem

    where = f"{module}.{attribute}"
    hint = f"{TESTED}, found abtem {abtem.__version__}"
    try:
        obj = importlib.import_module(module)
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        pytest.fail(f"abTEM internal {where} is missing ({err}); {hint}")
    return obj, where, hint


@pytest.mark.parametrize(("module", "attribute", "leading"), INTERNALS)
def test_internal_exists_with_the_signature_temflow_calls(module, attribute, leading):
    obj, where, hint = _lookup(module, attribute)
    params = inspect.signature(obj).parameters
    names = list(params)
    if names[: len(leading)] != leading:
        pytest.fail(
            f"abTEM internal {where}: signature changed, expected leading parameters "
            f"{leading}, got {names}; {hint}"
        )
    missing = [k for k in KEYWORDS.get(attribute, []) if k not in params]
    if missing:
        pytest.fail(f"abTEM internal {where}: no keyword parameter(s) {missing} ({names}); {hint}")


@pytest.mark.parametrize(("module", "attribute"), AXIS_CLASSES)
def test_ensemble_axis_classes_exist(module, attribute):
    obj, where, hint = _lookup(module, attribute)
    assert inspect.isclass(obj), f"abTEM internal {where} is no longer a class; {hint}"


def test_fftw_planning_setting_exists():
    """temflow.hrtem.simulate.abtem_device sets it for reproducible images; an unknown key
    would be ignored silently."""
    import abtem

    _, _, hint = _lookup("abtem", "config")
    assert abtem.config.get("fftw.planning_effort") is not None, (
        f"abTEM setting fftw.planning_effort is gone; {hint}"
    )


def test_fast_path_equals_the_documented_abtem_path():
    """A tiny MoS2 cell with vibrations, 2 frozen-phonon configurations: temflow's path
    (abTEM internals) and the documented lazy abTEM pattern give the same focal series."""
    a, t = 3.19, 3.13
    b = a * np.sqrt(3)
    positions = [(0.3, 0.2, 2.6), (0.3 + a / 2, 0.2 + b / 2, 2.6)]
    positions += [(x + a / 2, y + b / 6, z + dz) for x, y, z in positions for dz in (-t / 2, t / 2)]
    atoms = Atoms("Mo2S4", positions=positions, cell=[a, b, 5.2], pbc=True)
    sigmas = np.full((len(atoms), 3), 0.08)
    params = MicroscopeParams(
        50e3,
        (-30.0, 20.0),
        10.0,
        20.0,
        0.4,
        20.0,
        40.0,
        1e3,
        0,
        0,
        0.5,
        2,
        C21_nm=30.0,
        phi21_rad=0.5,
        C23_nm=20.0,
        phi23_rad=1.0,
        angular_spread_mrad=0.3,
    )
    args = (atoms, sigmas, params, 2, 5, 0.1, 1.0)
    ours, reference = exit_focal_series(*args), reference_focal_series(*args)
    assert ours.shape == reference.shape == (2, 32, 56)
    rel = np.abs(ours - reference).max() / np.abs(reference).max()
    assert rel < 1e-3, (
        f"temflow's multislice path differs from abTEM's documented one (max relative "
        f"difference {rel:.1e}); {TESTED}"
    )
