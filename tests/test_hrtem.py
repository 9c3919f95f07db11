"""HR-TEM stage: labels, simulation frame and channel order, phonons, shards, bad input."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from ase import Atoms
from conftest import ROOT
from scipy.ndimage import maximum_filter, minimum_filter

from temflow.errors import TemflowError
from temflow.hrtem.columns import CLASSES, class_counts, find_columns, gaussian_targets
from temflow.hrtem.config import HrtemConfig, MicroscopeConfig, SampleConfig, SimulationConfig
from temflow.hrtem.generate import generate_shard, make_image, shard_sizes
from temflow.hrtem.microscope import (
    MicroscopeParams,
    draw_output_sampling,
    sample_microscope,
    scherzer_defocus_A,
    scherzer_semiangle_mrad,
)
from temflow.hrtem.samples import make_sample
from temflow.hrtem.shards import ImageRecord, open_dataset, write_shard
from temflow.hrtem.simulate import (
    abtem_device,
    abtem_device_name,
    exit_focal_series,
    frozen_phonons,
    image_field,
    make_ctf,
    potential_grid_sampling,
    simulate_image,
)
from temflow.md.structures import MOS2_A_A, MOS2_THICKNESS_A
from temflow.md.vibrations import lookup_sigmas

CUTOFFS = {"Mo-S": 2.9, "C-C": 1.8}
VIB = pd.DataFrame(
    {
        "system": ["mos2_sheet"] * 3 + ["graphene"],
        "element": ["Mo", "Mo", "S", "C"],
        "coordination": [6, 5, 3, 3],
        "sigma_xy": [0.05, 0.055, 0.07, 0.06],
        "sigma_z": [0.06, 0.065, 0.09, 0.1],
        "n_atoms": [10, 10, 10, 10],
    }
)
#: The default config's microscope ranges (the seeds' example values must lie inside them).
MICROSCOPE = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["hrtem"]["microscope"]
TINY = {
    "sample": {
        "field_of_view_A": [9.6, 9.6],
        "s_vacancy_fraction": [0.05, 0.1],
        "mo_vacancy_fraction": [0.0, 0.02],
        "graphene_spacing_A": 3.3,
        "vacuum_A": 1.0,
        "contamination_thickness_A": [0, 0],
        "contamination_sides": ["entrance", "exit"],
        "contamination_density_g_per_cm3": 2.0,
        "contamination_min_distance_A": 1.3,
    },
    "microscope": MICROSCOPE,
    "simulation": {
        "n_configs": 2,
        "potential_sampling_A": 0.1,
        "slice_thickness_A": 1.0,
        "output_sampling_A": [0.2, 0.24],  # per image: 40 to 48 px
    },
}
TINY_CONFIG = HrtemConfig.from_mapping(TINY)


def sample_config(**changes) -> SampleConfig:
    """TINY's sample section with ``changes``."""
    return SampleConfig.from_mapping({**TINY["sample"], **changes})


def rect_mos2(nx: int, ny: int, vacuum_A: float = 1.0) -> Atoms:
    """Hand-built 2H-MoS2 in an orthogonal a x a*sqrt(3) cell: 2 Mo and 2 S2 columns each."""
    a, t = MOS2_A_A, MOS2_THICKNESS_A
    b = a * np.sqrt(3)
    z = vacuum_A + t / 2
    positions, symbols = [], []
    for i in range(nx):
        for j in range(ny):
            for fx, fy in ((0.0, 0.0), (0.5, 0.5)):
                x, y = (i + fx) * a + 0.3, (j + fy) * b + 0.2
                positions.append((x, y, z))
                symbols.append("Mo")
                for dz in (-t / 2, t / 2):
                    positions.append((x + a / 2, y + b / 6, z + dz))
                    symbols.append("S")
    atoms = Atoms(
        symbols, positions=positions, cell=[nx * a, ny * b, z + t / 2 + vacuum_A], pbc=True
    )
    atoms.wrap()
    return atoms


def fixed_params(defoci=(-30.0, 20.0, 70.0), **kw) -> MicroscopeParams:
    values = dict(
        energy_eV=50e3,
        defoci_A=tuple(defoci),
        Cs_um=14.29,
        astigmatism_A=34.27,
        astigmatism_angle_rad=0.4,
        focal_spread_A=0.0,
        semiangle_cutoff_mrad=40.0,
        dose_e_per_A2=1e3,
        blur_sigma_A=0.0,
        mtf_floor=1.0,
        mtf_half_nyquist=0.5,
        mtf_power=2.0,
    )
    values.update(kw)
    return MicroscopeParams(**values)


IMAGE_IN_A_NEW_PROCESS = """
import sys, json
import numpy as np, pandas as pd
from temflow.hrtem.config import HrtemConfig
from temflow.hrtem.generate import make_image
hrtem = HrtemConfig.from_mapping(json.loads(sys.argv[1]))
cutoffs = json.loads(sys.argv[2])
vib, out = pd.read_csv(sys.argv[3]), sys.argv[4]
rec = make_image(hrtem, "graphene", 11, vib, cutoffs)
np.save(out, rec.images)
"""


def test_image_is_bit_identical_in_every_process(tmp_path):
    """abTEM's default FFTW planning (FFTW_MEASURE) times algorithms in each process, so the
    potential differed in the last bit between processes and the Poisson draws with it."""
    import abtem

    with abtem_device("cpu"):
        assert abtem.config.get("fftw.planning_effort") == "FFTW_ESTIMATE"
    VIB.to_csv(tmp_path / "vib.csv", index=False)
    args = [json.dumps(TINY), json.dumps(CUTOFFS), str(tmp_path / "vib.csv")]
    images = []
    for k in range(3):
        out = tmp_path / f"image{k}.npy"
        cmd = [sys.executable, "-c", IMAGE_IN_A_NEW_PROCESS, *args]
        subprocess.run([*cmd, str(out)], check=True, cwd=tmp_path)
        images.append(np.load(out))
    assert images[0].std() > 0
    for other in images[1:]:
        np.testing.assert_array_equal(other, images[0])


# --- labels ------------------------------------------------------------------------------


def test_hand_built_patch_column_counts():
    atoms = rect_mos2(3, 2)
    symbols = np.array(atoms.get_chemical_symbols())
    del atoms[int(np.flatnonzero(symbols == "S")[4])]  # one S vacancy -> one S1 column
    field = (atoms.cell[0, 0], atoms.cell[1, 1])
    assert class_counts(find_columns(atoms, field)) == {"Mo": 12, "S2": 11, "S1": 1}
    s_idx = np.flatnonzero(np.array(atoms.get_chemical_symbols()) == "S")
    del atoms[[int(s_idx[0]), int(s_idx[1])]]  # both S of one column -> column gone
    assert class_counts(find_columns(atoms, field)) == {"Mo": 12, "S2": 10, "S1": 1}


def test_columns_outside_field_dropped_and_graphene_unlabelled():
    atoms = rect_mos2(3, 2)
    field = (atoms.cell[0, 0] / 2, atoms.cell[1, 1])
    cols = find_columns(atoms, field)
    assert (cols["x_A"] < field[0]).all() and len(cols) < 24
    sample = make_sample(TINY_CONFIG.sample, "graphene", np.random.default_rng(3), CUTOFFS)
    symbols = np.array(sample.atoms.get_chemical_symbols())
    cols = find_columns(sample.atoms, sample.field_A)
    n_mo = int((symbols == "Mo").sum())
    assert (symbols == "C").sum() > 0 and class_counts(cols)["Mo"] == n_mo


def test_sample_vacancies_and_cell():
    config = sample_config(s_vacancy_fraction=[0.5, 0.5], mo_vacancy_fraction=[0.0, 0.0])
    sample = make_sample(config, "bare", np.random.default_rng(0), CUTOFFS)
    atoms = sample.atoms
    assert np.allclose(atoms.cell, np.diag([9.6, 9.6, atoms.cell[2, 2]]))
    assert atoms.positions[:, :2].min() >= 0 and (atoms.positions[:, 0] < 9.6).all()
    counts = class_counts(find_columns(atoms, sample.field_A))
    n_s = int((np.array(atoms.get_chemical_symbols()) == "S").sum())
    assert n_s == 2 * counts["S2"] + counts["S1"]
    assert counts["S1"] > 0 and counts["S2"] > 0  # p = 0.5: both kinds present


def test_gaussian_targets_peak_at_columns():
    cols = pd.DataFrame({"x_A": [1.0, 3.0], "y_A": [2.0, 0.5], "class": [0, 2]})
    t = gaussian_targets(cols, (40, 50), sampling_A=0.1)
    assert t.shape == (len(CLASSES), 40, 50) and t.dtype == np.float32
    assert t[0, 20, 10] == pytest.approx(1.0) and t[2, 5, 30] == pytest.approx(1.0)
    assert t[1].max() == 0 and t[0, 5, 30] < 1e-6


# --- simulation --------------------------------------------------------------------------


@pytest.mark.parametrize("sampling", [0.05, 0.0523])
def test_mo_columns_are_image_extrema_in_label_frame(sampling):
    """Zero sigmas, no noise, Cs = 0: at -10 A defocus Mo columns are bright maxima, at
    +10 A dark minima; the extremum nearest every Mo column lies within 0.2 A of it.
    0.0523 A/px: a per-image field of 245 px (12.81 A) whose potential grid abTEM would
    make 257 points (prime), raised to an FFT-friendly size."""
    field = image_field((12.8, 12.8), sampling)
    assert (sampling == 0.05) == (potential_grid_sampling(field, 0.05) == 0.05)
    config = sample_config(s_vacancy_fraction=[0.0, 0.0], mo_vacancy_fraction=[0.0, 0.0])
    sample = make_sample(config, "bare", np.random.default_rng(11), CUTOFFS, field_A=field)
    atoms = sample.atoms
    assert 0.1 < sample.info["mos2_angle_rad"] % (np.pi / 3) < np.pi / 3 - 0.1  # rotated
    cols = find_columns(atoms, sample.field_A)
    mp = fixed_params(
        defoci=(-10.0, 10.0), Cs_um=0.0, astigmatism_A=0.0, semiangle_cutoff_mrad=60.0
    )
    images = simulate_image(
        atoms,
        np.zeros((len(atoms), 3)),
        mp,
        n_configs=1,
        seed=0,
        potential_sampling_A=0.05,
        slice_thickness_A=1.0,
        output_sampling_A=sampling,
        rng=None,
    )
    mo = cols[
        (cols["class"] == 0) & cols["x_A"].between(1.5, 11.3) & cols["y_A"].between(1.5, 11.3)
    ]
    assert len(mo) >= 8
    for image, extremum in ((images[0], maximum_filter), (images[1], minimum_filter)):
        peaks = np.argwhere(image == extremum(image, size=15, mode="wrap"))
        peaks_xy = peaks[:, ::-1] * sampling  # (row, col) -> (x, y)
        for x, y in zip(mo["x_A"], mo["y_A"], strict=True):
            d = np.hypot(peaks_xy[:, 0] - x, peaks_xy[:, 1] - y).min()
            assert d < 0.2, f"Mo column ({x:.2f}, {y:.2f}): nearest extremum {d:.2f} A away"


def test_channel_order_and_defocus_sign_match_direct_abtem():
    import abtem

    config = sample_config(field_of_view_A=[6.4, 6.4])
    atoms = make_sample(config, "bare", np.random.default_rng(2), CUTOFFS).atoms
    mp = fixed_params(focal_spread_A=20.0)
    series = exit_focal_series(
        atoms,
        np.zeros((len(atoms), 3)),
        mp,
        n_configs=1,
        seed=1,
        potential_sampling_A=0.1,
        slice_thickness_A=1.0,
    )
    assert series.shape[0] == 3
    with abtem.config.set({"diagnostics.progress_bar": False}):
        pot = abtem.Potential(
            atoms,
            sampling=0.1,
            slice_thickness=1.0,
            parametrization="lobato",
            projection="infinite",
        )
        exit_wave = abtem.PlaneWave(energy=50e3).multislice(pot).compute()
        direct = []
        for d in mp.defoci_A:
            ctf = abtem.CTF(
                energy=50e3,
                defocus=d,
                Cs=mp.Cs_um * 1e4,
                astigmatism=mp.astigmatism_A,
                astigmatism_angle=mp.astigmatism_angle_rad,
                focal_spread=20.0,
                semiangle_cutoff=mp.semiangle_cutoff_mrad,
            )
            direct.append(exit_wave.apply_ctf(ctf).intensity().compute().array)
    for c, ref in enumerate(direct):
        assert np.abs(series[c] - ref).max() / np.abs(ref).max() < 1e-3
    assert np.abs(series[0] - direct[2]).max() / np.abs(direct[2]).max() > 1e-2
    # Through the full pipeline (MTF = 1, no blur, no noise): transposed, dose-scaled.
    images = simulate_image(
        atoms, np.zeros((len(atoms), 3)), mp, 1, 1, 0.1, 1.0, output_sampling_A=0.1, rng=None
    )
    for c, ref in enumerate(direct):
        np.testing.assert_allclose(images[c], ref.T * 1e3 * 0.01, rtol=2e-3, atol=1e-3)
    with pytest.raises(TemflowError, match="increasing"):
        make_ctf(fixed_params(defoci=(20.0, -30.0)))


def test_per_atom_sigmas_reach_frozen_phonons():
    atoms = rect_mos2(2, 1)
    zero = [c.positions for c in frozen_phonons(atoms, np.zeros((len(atoms), 3)), 3, 5)]
    assert all(np.array_equal(zero[0], p) for p in zero[1:])
    sig = np.zeros((len(atoms), 3))
    sig[4] = (0.0, 0.0, 0.1)  # only atom 4 moves, and only along z
    moved = [c.positions for c in frozen_phonons(atoms, sig, 3, 5)]
    assert not np.array_equal(moved[0], moved[1])
    diff = np.abs(moved[0] - atoms.positions)
    assert diff[4, 2] > 0 and np.count_nonzero(diff) == 1
    # And the images see them: vibrating configurations blur the mean image.
    mp = fixed_params()
    a = exit_focal_series(atoms, np.zeros((len(atoms), 3)), mp, 2, 5, 0.1, 1.0)
    b = exit_focal_series(atoms, np.full((len(atoms), 3), 0.1), mp, 2, 5, 0.1, 1.0)
    assert np.abs(a - b).max() > 1e-3


def test_abtem_device_name():
    """The config's device (auto|cpu|gpu) as abTEM's device name (cpu|gpu)."""
    assert abtem_device_name("cpu") == "cpu"
    assert abtem_device_name("auto") in ("cpu", "gpu")
    with pytest.raises(TemflowError, match="device must be auto, cpu or gpu"):
        abtem_device_name("cuda")


def test_gpu_focal_series_equals_cpu():
    """The CuPy path (abTEM device gpu) gives the CPU's images; runs where CuPy sees a GPU
    (skipped in CI). It once failed there: cupy.fft takes no ``overwrite_x``."""
    cupy = pytest.importorskip("cupy")
    if cupy.cuda.runtime.getDeviceCount() < 1:
        pytest.skip("CuPy sees no CUDA device")
    atoms, mp = rect_mos2(2, 1), fixed_params()
    sig = np.full((len(atoms), 3), 0.05)
    cpu = exit_focal_series(atoms, sig, mp, 2, 5, 0.1, 1.0, device="cpu")
    gpu = exit_focal_series(atoms, sig, mp, 2, 5, 0.1, 1.0, device="gpu")
    assert isinstance(gpu, np.ndarray)
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=1e-5 * np.abs(cpu).max())


def test_microscope_defaults_contain_seed_values():
    schema = yaml.safe_load(open("config/schema.yaml"))["properties"]["hrtem"]["properties"]
    m = {k: v["default"] for k, v in schema["microscope"]["properties"].items()}
    assert m["energy_keV"][0] <= 50 <= m["energy_keV"][1]
    assert m["Cs_um"][0] <= 14.29 <= m["Cs_um"][1]
    assert m["Cs_um"][0] <= -12 and m["Cs_um"][1] >= 12  # both signs, micrometres
    assert m["astigmatism_A"][0] <= 34.27 <= m["astigmatism_A"][1]
    offsets = np.array(m["defocus_offsets_A"])
    centre = 20 - offsets[1]
    assert m["defocus_centre_A"][0] <= centre <= m["defocus_centre_A"][1]
    assert m["defocus_scherzer_fraction"][0] == 0  # so the centre 20 A is drawn at any Cs
    assert list(centre + offsets) == [-30, 20, 70]
    assert m["dose_e_per_A2"][0] <= 1e2 and m["dose_e_per_A2"][1] >= 1e4
    p = sample_microscope(MicroscopeConfig.from_mapping(m), np.random.default_rng(0))
    assert np.all(np.diff(p.defoci_A) > 0) and m["dose_e_per_A2"][0] <= p.dose_e_per_A2


def test_focal_series_centre_follows_the_scherzer_defocus_of_the_drawn_cs():
    """Scherzer's defocus sign(Cs) sqrt(3/2 |Cs| lambda) is 107.14 A at 14.29 um and 50 keV
    (an overfocus for negative Cs). A fixed fraction moves every focal series by exactly
    that fraction of its image's Scherzer defocus and changes no other drawn value; a
    drawn fraction stays in its range, with the centre's own draw in ``defocus_centre_A``;
    a negative fraction is refused naming the key."""
    lam = _wavelength_A(50e3)
    assert scherzer_defocus_A(50e3, 14.29) == pytest.approx(np.sqrt(1.5 * 14.29e4 * lam), 1e-6)
    assert scherzer_defocus_A(50e3, 14.29) == pytest.approx(107.14, abs=0.01)
    assert scherzer_defocus_A(50e3, -14.29) == -scherzer_defocus_A(50e3, 14.29)
    assert scherzer_defocus_A(50e3, 0.0) == 0.0
    configs = {
        f: MicroscopeConfig.from_mapping({**MICROSCOPE, "defocus_scherzer_fraction": [f, f]})
        for f in (0.0, 1.0)
    }
    drawn = MicroscopeConfig.from_mapping({**MICROSCOPE, "defocus_scherzer_fraction": [0, 1]})
    offsets = np.array(MICROSCOPE["defocus_offsets_A"])
    fractions = []
    for seed in range(100):
        at_gauss, at_scherzer, free = (
            sample_microscope(c, np.random.default_rng(seed))
            for c in (configs[0.0], configs[1.0], drawn)
        )
        ds = scherzer_defocus_A(at_gauss.energy_eV, at_gauss.Cs_um)
        assert at_scherzer.scherzer_defocus_A == ds and at_scherzer.defocus_scherzer_fraction == 1
        np.testing.assert_allclose(np.subtract(at_scherzer.defoci_A, at_gauss.defoci_A), ds)
        for key, value in at_gauss.as_dict().items():
            if key not in ("defoci_A", "defocus_scherzer_fraction", "scherzer_defocus_A"):
                assert value == at_scherzer.as_dict()[key] == free.as_dict()[key], key
        f = free.defocus_scherzer_fraction
        centre = np.array(free.defoci_A) - offsets - f * ds
        np.testing.assert_allclose(centre, centre[0])
        assert MICROSCOPE["defocus_centre_A"][0] <= centre[0] <= MICROSCOPE["defocus_centre_A"][1]
        fractions.append(f)
    assert 0 <= min(fractions) < 0.1 and 0.9 < max(fractions) <= 1
    with pytest.raises(TemflowError, match=r"hrtem.microscope.defocus_scherzer_fraction must"):
        MicroscopeConfig.from_mapping({**MICROSCOPE, "defocus_scherzer_fraction": [-0.5, 1]})


# --- the corrected instrument: Cs in um, coma, three-fold astigmatism, spatial coherence --


def _wavelength_A(energy_eV: float) -> float:
    """Relativistic electron wavelength, A (h c / sqrt(E (E + 2 m c^2)))."""
    hc_eV_A, mc2_eV = 12398.419843, 510998.95
    return hc_eV_A / np.sqrt(energy_eV * (energy_eV + 2 * mc2_eV))


def _kernel(params: MicroscopeParams, n: int = 128, sampling_A: float = 0.1) -> np.ndarray:
    """The CTF kernel (n_defoci, n, n) temflow's multislice applies (abTEM's own)."""
    import abtem

    waves = abtem.Waves(np.zeros((n, n), np.complex64), energy=params.energy_eV, sampling=0.1)
    return np.asarray(make_ctf(params)._evaluate_kernel(waves))


def test_cs_in_micrometres_reaches_the_ctf_with_the_formula_phase():
    """At a known k along x: kernel = exp(-i chi), chi = (pi/2) Cs lambda^3 k^4 with Cs in A
    = Cs_um * 1e4 (abTEM's sign: exp(-i chi)); the coma adds (2 pi / lambda) C21 (lambda
    k)^3 / 3 cos(phi - phi21). 14.29 um is 26 rad at 50 mrad: no units slip passes."""
    bare = dict(
        defoci=(0.0,),
        astigmatism_A=0.0,
        focal_spread_A=0.0,
        semiangle_cutoff_mrad=200.0,
        mtf_floor=0.0,
    )
    lam = _wavelength_A(50e3)
    dk = 1 / (128 * 0.1)
    for n_k in (3, 5, 7):
        k = n_k * dk
        for cs_um in (14.29, -12.0):
            chi = np.pi / 2 * cs_um * 1e4 * lam**3 * k**4
            value = _kernel(fixed_params(Cs_um=cs_um, **bare))[0, n_k, 0]
            assert abs(value - np.exp(-1j * chi)) < 1e-3, (n_k, cs_um, value, chi)
        chi = 2 * np.pi / lam * 300.0 * (lam * k) ** 3 / 3 * np.cos(0.0 - 0.4)
        value = _kernel(fixed_params(Cs_um=0.0, C21_nm=30.0, phi21_rad=0.4, **bare))[0, n_k, 0]
        assert abs(value - np.exp(-1j * chi)) < 1e-3
    assert 20 < np.pi / 2 * 14.29e4 * lam**3 * (0.05 / lam) ** 4 < 30


def test_coma_and_threefold_astigmatism_change_a_noise_free_image():
    """Zero C21 and C23 (any angles) leave the kernel bit-identical to abTEM's CTF without
    them, and the noise-free focal series too; 30 nm of either changes the series."""
    import abtem

    base = fixed_params(angular_spread_mrad=0.0)
    zero = fixed_params(C21_nm=0.0, phi21_rad=1.1, C23_nm=0.0, phi23_rad=0.7)
    direct = abtem.CTF(
        energy=50e3,
        defocus=abtem.distributions.from_values(np.asarray(base.defoci_A)),
        Cs=base.Cs_um * 1e4,
        astigmatism=base.astigmatism_A,
        astigmatism_angle=base.astigmatism_angle_rad,
        focal_spread=base.focal_spread_A,
        semiangle_cutoff=base.semiangle_cutoff_mrad,
    )
    waves = abtem.Waves(np.zeros((64, 64), np.complex64), energy=50e3, sampling=0.1)
    np.testing.assert_array_equal(_kernel(zero, 64), np.asarray(direct._evaluate_kernel(waves)))
    atoms = rect_mos2(2, 1)
    sigmas = np.zeros((len(atoms), 3))
    reference = exit_focal_series(atoms, sigmas, base, 1, 5, 0.1, 1.0)
    np.testing.assert_array_equal(exit_focal_series(atoms, sigmas, zero, 1, 5, 0.1, 1.0), reference)
    for change in ({"C21_nm": 30.0, "phi21_rad": 0.3}, {"C23_nm": 30.0, "phi23_rad": 0.3}):
        changed = exit_focal_series(atoms, sigmas, fixed_params(**change), 1, 5, 0.1, 1.0)
        assert np.abs(changed - reference).max() > 0.02 * np.abs(reference).max(), change


def test_angular_spread_damps_the_transfer_at_the_aperture_edge():
    """abTEM's spatial-coherence envelope: 1 at k = 0, below 1 at high k, lower for a larger
    spread; each focal setting gets its own (the envelope depends on defocus)."""
    params = dict(Cs_um=20.0, astigmatism_A=0.0, semiangle_cutoff_mrad=200.0)
    sharp = np.abs(_kernel(fixed_params(angular_spread_mrad=0.0, **params)))
    wide = np.abs(_kernel(fixed_params(angular_spread_mrad=0.5, **params)))
    n_k = int(round(0.05 / _wavelength_A(50e3) * 12.8))  # 50 mrad
    assert wide[:, 0, 0] == pytest.approx(1.0) and sharp[:, n_k, 0] == pytest.approx(1.0, abs=1e-5)
    assert np.all(wide[:, n_k, 0] < 0.9)
    assert len(set(np.round(wide[:, n_k, 0], 4))) == 3


def test_residual_aberrations_are_drawn_after_the_others_and_stored(tmp_path):
    """Fixed residual ranges draw nothing: every other parameter is what it is without them
    (the Scherzer fraction, drawn after them, fixed here). Drawn ones lie in their ranges
    and are stored with the image."""
    base = {**MICROSCOPE, "defocus_scherzer_fraction": [0.5, 0.5]}
    fixed = {**base, "C21_nm": [0, 0], "C23_nm": [0, 0], "phi21_rad": [0, 0]}
    fixed.update(phi23_rad=[0, 0], angular_spread_mrad=[0.2, 0.2])
    a = sample_microscope(MicroscopeConfig.from_mapping(fixed), np.random.default_rng(3))
    b = sample_microscope(MicroscopeConfig.from_mapping(base), np.random.default_rng(3))
    residual = ("C21_nm", "phi21_rad", "C23_nm", "phi23_rad", "angular_spread_mrad")
    for key, value in a.as_dict().items():
        if key not in residual:
            assert value == b.as_dict()[key], key
    assert a.C21_nm == 0 and a.angular_spread_mrad == 0.2
    for key in residual:
        lo, hi = MICROSCOPE[key]
        assert lo <= getattr(b, key) <= hi and hi > lo
    path = tmp_path / "shard_0000.h5"
    generate_shard(path, TINY_CONFIG, "val_bare", "bare", 0, 1, 3, VIB, CUTOFFS)
    _, _, meta = open_dataset(path)[0]
    for key in (*residual, "Cs_um", "contamination_total_thickness_A"):
        assert key in meta, key
    assert meta["n_contamination_atoms"] == 0


def test_old_cs_key_names_the_new_one():
    cfg = copy.deepcopy(TINY)
    cfg["microscope"]["Cs_A"] = cfg["microscope"].pop("Cs_um")
    with pytest.raises(TemflowError, match=r"Cs_A was renamed hrtem.microscope.Cs_um"):
        HrtemConfig.from_mapping(cfg)


# --- amorphous carbon contamination ------------------------------------------------------


def _periodic_nearest(positions: np.ndarray, box) -> np.ndarray:
    from scipy.spatial import cKDTree

    d, _ = cKDTree(positions, boxsize=box).query(positions, k=2)
    return d[:, 1]


@pytest.mark.parametrize(("density", "min_distance"), [(2.0, 1.3), (1.5, 1.6)])
def test_contamination_density_and_minimum_distance_are_as_configured(density, min_distance):
    from temflow.hrtem.samples import random_carbon_layer

    field, thickness = (20.0, 17.0), 10.0
    layer = random_carbon_layer(field, thickness, density, min_distance, np.random.default_rng(1))
    volume_cm3 = field[0] * field[1] * thickness * 1e-24
    n_expected = density / 12.011 * 6.02214076e23 * volume_cm3
    assert len(layer) == round(n_expected)
    assert len(layer) * 12.011 / 6.02214076e23 / volume_cm3 == pytest.approx(density, rel=3e-3)
    assert layer.min(axis=0).min() >= 0 and np.all(layer.max(axis=0) < (*field, thickness))
    # x and y periodic as the simulation cell; z is not (a period larger than the slab).
    nearest = _periodic_nearest(layer, (*field, 10 * thickness))
    assert nearest.min() >= min_distance
    assert nearest.min() < 1.5 * min_distance  # dense, not a sparse lattice
    again = random_carbon_layer(field, thickness, density, min_distance, np.random.default_rng(1))
    np.testing.assert_array_equal(layer, again)


@pytest.mark.parametrize("substrate", ["bare", "graphene"])
def test_contamination_is_unlabelled_and_leaves_the_specimen_as_drawn(substrate):
    """Same seed with and without contamination: the same specimen (shifted along z), the
    same labels; the C layers lie min_distance beyond its outer planes on the drawn sides."""
    plain = make_sample(sample_config(), substrate, np.random.default_rng(4), CUTOFFS)
    dirty_config = sample_config(contamination_thickness_A=[4.0, 8.0])
    dirty = make_sample(dirty_config, substrate, np.random.default_rng(4), CUTOFFS)
    n_c, n = dirty.info["n_contamination_atoms"], len(plain.atoms)
    assert n_c > 0 and len(dirty.atoms) == n + n_c
    assert set(dirty.atoms.get_chemical_symbols()[n:]) == {"C"}
    entrance = dirty.info["contamination_entrance_thickness_A"]
    exit_ = dirty.info["contamination_exit_thickness_A"]
    assert 4 <= entrance <= 8 and 4 <= exit_ <= 8
    assert dirty.info["contamination_total_thickness_A"] == entrance + exit_
    specimen = dirty.atoms.positions[:n]
    np.testing.assert_allclose(specimen[:, :2], plain.atoms.positions[:, :2], atol=0)
    shift = specimen[:, 2] - plain.atoms.positions[:, 2]
    np.testing.assert_allclose(shift, np.ceil(entrance + 1.3))
    pd.testing.assert_frame_equal(
        find_columns(dirty.atoms, dirty.field_A), find_columns(plain.atoms, plain.field_A)
    )
    carbon = dirty.atoms.positions[n:]
    below = carbon[carbon[:, 2] < specimen[:, 2].min()]
    assert below[:, 2].max() <= specimen[:, 2].min() - 1.3
    above = carbon[carbon[:, 2] > specimen[:, 2].max()]
    assert len(below) + len(above) == n_c and above[:, 2].min() >= specimen[:, 2].max() + 1.3
    vacuum = dirty_config.vacuum_A
    assert carbon[:, 2].min() == pytest.approx(vacuum, abs=0.05)
    assert dirty.atoms.cell[2, 2] >= carbon[:, 2].max() + vacuum - 1e-9
    np.testing.assert_array_equal(dirty.coordination[:n], plain.coordination)
    assert np.all(dirty.coordination[n:] == 3)
    one_side = make_sample(
        sample_config(contamination_thickness_A=[5.0, 5.0], contamination_sides=["exit"]),
        substrate,
        np.random.default_rng(4),
        CUTOFFS,
    )
    assert one_side.info["contamination_entrance_thickness_A"] == 0
    assert one_side.atoms.positions[:, 2].min() == plain.atoms.positions[:, 2].min()


def test_contamination_changes_nothing_else_of_an_image():
    """Same seed, contamination on and off: the same microscope parameters, phonon seed and
    labels (its own random stream), different images; the C atoms are stored last."""
    dirty_cfg = copy.deepcopy(TINY)
    dirty_cfg["sample"]["contamination_thickness_A"] = [3.0, 5.0]
    dirty_config = HrtemConfig.from_mapping(dirty_cfg)
    plain = make_image(TINY_CONFIG, "graphene", 21, VIB, CUTOFFS)
    dirty = make_image(dirty_config, "graphene", 21, VIB, CUTOFFS)
    n_c = dirty.attrs["n_contamination_atoms"]
    assert n_c > 0 and len(dirty.numbers) == len(plain.numbers) + n_c
    assert np.all(dirty.numbers[-n_c:] == 6)
    sample_keys = {"n_contamination_atoms"} | {k for k in plain.attrs if "contamination" in k}
    for key, value in plain.attrs.items():
        if key not in sample_keys:
            np.testing.assert_array_equal(dirty.attrs[key], value, err_msg=key)
    pd.testing.assert_frame_equal(dirty.columns, plain.columns)
    assert not np.array_equal(dirty.images, plain.images)


# --- shards ------------------------------------------------------------------------------


def _read_everything(path):
    out = {}
    with h5py.File(path, "r") as f:
        out["attrs"] = {k: v for k, v in f.attrs.items() if k != "software_versions"}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
            out[name + "@attrs"] = dict(obj.attrs)

        f.visititems(visit)
    return out


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            _assert_same(a[k], b[k])
        else:
            assert np.array_equal(np.asarray(a[k]), np.asarray(b[k])), k


def test_same_seed_same_shard_and_round_trip(tmp_path):
    paths = [tmp_path / f"r{i}" / "shard_0000.h5" for i in range(3)]
    for path, seed in zip(paths, (4, 4, 5), strict=True):
        generate_shard(path, TINY_CONFIG, "train_graphene", "graphene", 0, 2, seed, VIB, CUTOFFS)
    first, second, other = (_read_everything(p) for p in paths)
    _assert_same(first, second)
    assert not np.array_equal(first["image_00000/images"], other["image_00000/images"])

    ds = open_dataset([paths[0], paths[1]])
    assert len(ds) == 4 and ds.sampling_range_A == (0.2, 0.24) and ds.classes == CLASSES
    images, cols, meta = ds[3]
    assert images.dtype == np.float32 and images.shape[0] == 3
    assert list(cols.columns) == ["x_A", "y_A", "class"]
    # Each image is reproducible from its stored seed alone.
    again = make_image(TINY_CONFIG, "graphene", meta["seed"], VIB, CUTOFFS)
    np.testing.assert_array_equal(again.images, images)
    pd.testing.assert_frame_equal(again.columns, cols, check_dtype=False)
    np.testing.assert_array_equal(ds.atoms(3).positions, again.positions_A)
    np.testing.assert_array_equal(ds.sigmas(3), again.sigmas_A)
    assert meta["defoci_A"] == list(again.attrs["defoci_A"])
    assert meta["sampling_A"] == again.attrs["sampling_A"]


def test_output_sampling_per_image_shape_and_field(tmp_path):
    """Per image: sampling drawn in the range (and different), (H, W) = round(fov / s),
    cell = field = (W s, H s), columns inside it; all stored and read back; compressed."""
    path = tmp_path / "shard_0000.h5"
    generate_shard(path, TINY_CONFIG, "val_bare", "bare", 0, 3, 7, VIB, CUTOFFS)
    ds = open_dataset(path)
    samplings = []
    for k, (images, cols, meta) in enumerate(ds):
        s = meta["sampling_A"]
        samplings.append(s)
        assert 0.2 <= s <= 0.24
        shape = (round(9.6 / s), round(9.6 / s))
        assert images.shape == (3, *shape) and meta["image_shape_px"] == list(shape)
        field = meta["field_of_view_A"]
        assert field == pytest.approx([shape[1] * s, shape[0] * s], rel=1e-12)
        assert abs(field[0] - 9.6) <= s / 2
        np.testing.assert_allclose(np.diag(ds.atoms(k).cell)[:2], field, rtol=1e-12)
        assert cols["x_A"].between(0, field[0]).all() and cols["y_A"].between(0, field[1]).all()
    assert len(set(samplings)) == 3
    assert len({tuple(ds[k][0].shape) for k in range(3)}) > 1  # shapes differ too
    with h5py.File(path, "r") as f:
        assert list(f.attrs["sampling_A"]) == [0.2, 0.24]
        assert "images" not in f  # no stack: each image in its group
        for name in ("images", "columns", "positions_A", "sigmas_A"):
            assert f["image_00000"][name].compression == "gzip", name


def output_sampling(value) -> tuple[float, float]:
    """``hrtem.simulation.output_sampling_A`` as parsed by SimulationConfig."""
    section = {**TINY["simulation"], "potential_sampling_A": 0.05, "output_sampling_A": value}
    return SimulationConfig.from_mapping(section).output_sampling_A


def test_sampling_range_draw_and_degenerate_range():
    rng = np.random.default_rng(0)
    draws = [draw_output_sampling((0.095, 0.105), rng) for _ in range(200)]
    assert 0.095 <= min(draws) < 0.096 and 0.104 < max(draws) <= 0.105
    # [s, s] is the degenerate range and draws nothing from the generator.
    assert output_sampling([0.1, 0.2]) == (0.1, 0.2)
    a, b = np.random.default_rng(1), np.random.default_rng(1)
    assert draw_output_sampling(output_sampling([0.1, 0.1]), a) == 0.1
    assert draw_output_sampling((0.1, 0.1), a) == 0.1
    assert a.random() == b.random()


def test_potential_grid_is_fft_friendly():
    import abtem
    import scipy.fft

    assert potential_grid_sampling((25.6, 12.8), 0.05) == 0.05  # 512 x 256: unchanged
    field = (257 * 0.0999, 255 * 0.0999)  # ceil(L / 0.05) = 514 = 2 * 257, 510
    sx, sy = potential_grid_sampling(field, 0.05)
    atoms = Atoms("Mo", positions=[(1, 1, 1)], cell=[*field, 3.0])
    pot = abtem.Potential(atoms, sampling=(sx, sy), slice_thickness=1.0)
    assert pot.gpts[0] >= 514 and pot.gpts[1] >= 510
    assert all(scipy.fft.next_fast_len(n) == n for n in pot.gpts)
    assert max(pot.sampling) <= 0.05


def test_coordination_fallback_logged_once_per_process(caplog):
    table = pd.DataFrame(
        {
            "system": ["s", "s"],
            "element": ["Mo", "S"],
            "coordination": [6, 3],
            "sigma_xy": [0.05, 0.07],
            "sigma_z": [0.04, 0.06],
            "n_atoms": [10, 20],
        }
    )
    caplog.set_level("INFO", logger="temflow.md.vibrations")
    for _ in range(2):  # two images
        sig = lookup_sigmas(table, ["Mo", "Mo", "S"], np.array([97, 97, 3]))
        np.testing.assert_allclose(sig[1], [0.05, 0.05, 0.04])
    lines = [r.getMessage() for r in caplog.records if "coordination 97" in r.getMessage()]
    assert lines == ["no sigma for Mo with coordination 97; using coordination 6"]


def test_reader_round_trip_exact(tmp_path):
    rec = ImageRecord(
        images=np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4),
        columns=pd.DataFrame({"x_A": [0.5, 1.25], "y_A": [0.1, 2.0], "class": [2, 0]}),
        positions_A=np.ones((2, 3)),
        numbers=np.array([42, 16]),
        cell_A=np.eye(3),
        sigmas_A=np.full((2, 3), 0.07),
        coordination=np.array([6, 3]),
        attrs={"seed": 9, "defoci_A": [1.0, 2.0], "substrate": "bare"},
    )
    small = ImageRecord(**{**rec.__dict__, "images": rec.images[:, :2, :3],
                           "attrs": {**rec.attrs, "sampling_A": 0.15}})  # fmt: skip
    rec.attrs["sampling_A"] = 0.1
    path = tmp_path / "shard_0000.h5"
    write_shard(path, [rec, small], {"sampling_A": [0.1, 0.15], "classes": list(CLASSES)})
    ds = open_dataset(tmp_path)
    images, cols, meta = ds[0]
    np.testing.assert_array_equal(images, rec.images)
    pd.testing.assert_frame_equal(cols, rec.columns)
    assert meta["seed"] == 9 and meta["defoci_A"] == [1.0, 2.0] and meta["substrate"] == "bare"
    images, _, meta = ds[1]
    np.testing.assert_array_equal(images, rec.images[:, :2, :3])
    assert meta["sampling_A"] == 0.15 and meta["image_shape_px"] == [2, 3]
    assert ds.sampling_range_A == (0.1, 0.15)
    assert [p.name for p in tmp_path.iterdir()] == ["shard_0000.h5"]  # no temp left
    with pytest.raises(IndexError):
        ds[2]


def _minimal_shard(path, drop_file_attr=None, drop_image=None, sampling=(0.1, 0.1)):
    """A one-image shard of the current layout, less one field (file attr or image field)."""
    cols = np.zeros(1, dtype=[("x_A", "f8"), ("y_A", "f8"), ("class", "i1")])
    with h5py.File(path, "w") as f:
        attrs = {"sampling_A": sampling, "n_images": 1, "classes": '["Mo", "S2", "S1"]'}
        f.attrs.update({k: v for k, v in attrs.items() if k != drop_file_attr})
        g = f.create_group("image_00000")
        data = {"images": np.zeros((3, 4, 5), np.float32), "columns": cols}
        for name, value in data.items():
            if name != drop_image:
                g.create_dataset(name, data=value)
        if drop_image != "sampling_A":
            g.attrs["sampling_A"] = 0.1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"drop_file_attr": "classes"}, "file attributes has no 'classes'"),
        ({"drop_file_attr": "sampling_A"}, "file attributes has no 'sampling_A'"),
        ({"sampling": 0.1}, "'sampling_A' must be the range"),
        ({"drop_image": "images"}, "image_00000 has no 'images'"),
        ({"drop_image": "columns"}, "image_00000 has no 'columns'"),
        ({"drop_image": "sampling_A"}, r"image_00000 \(attributes\) has no 'sampling_A'"),
    ],
)
def test_reader_names_the_file_and_the_missing_field(tmp_path, kwargs, match):
    """Shards of other layouts (an earlier (n, C, H, W) stack, a scalar sampling, no
    classes) are not read: one error naming the file and the field."""
    path = tmp_path / "shard_0000.h5"
    _minimal_shard(path, **kwargs)
    with pytest.raises(TemflowError, match=match) as err:
        open_dataset(path)[0]
    assert str(path) in str(err.value)
    _minimal_shard(path)
    ds = open_dataset(path)
    images, _, meta = ds[0]  # the complete one reads
    assert images.shape == (3, 4, 5) and meta["image_shape_px"] == [4, 5]
    with pytest.raises(TemflowError, match="image_00000 has no 'sigmas_A'"):
        ds.sigmas(0)  # the minimal shard has no atoms


def test_shard_sizes():
    assert shard_sizes(5, 2) == [2, 2, 1] and shard_sizes(4, 2) == [2, 2]


@pytest.mark.parametrize(
    ("section", "key", "value", "match"),
    [
        ("microscope", "defocus_offsets_A", [], "defocus_offsets_A is empty"),
        ("microscope", "defocus_offsets_A", [0, 0, 50], "strictly increasing"),
        ("microscope", "dose_e_per_A2", [0, 100], "dose_e_per_A2"),
        ("microscope", "Cs_um", [30, 0], r"hrtem.microscope.Cs_um: lo 30.0 > hi 0.0"),
        ("microscope", "C21_nm", [-5, 10], r"hrtem.microscope.C21_nm must be >= 0"),
        ("microscope", "C23_nm", [20, 10], r"hrtem.microscope.C23_nm: lo 20.0 > hi 10.0"),
        ("microscope", "angular_spread_mrad", [-0.1, 0], r"angular_spread_mrad must be >= 0"),
        ("sample", "contamination_thickness_A", [-1, 5], r"contamination_thickness_A must be"),
        ("sample", "contamination_thickness_A", [5, 1], r"contamination_thickness_A must be"),
        ("sample", "contamination_sides", ["top"], r"contamination_sides must be a non-empty"),
        ("sample", "contamination_sides", [], r"contamination_sides must be a non-empty"),
        ("sample", "contamination_density_g_per_cm3", 0, r"density_g_per_cm3 must be > 0"),
        ("sample", "contamination_density_g_per_cm3", 20.0, r"packs the carbon to"),
        ("sample", "contamination_min_distance_A", -1.3, r"min_distance_A must be > 0"),
        ("microscope", "energy_keV", 50, r"hrtem.microscope.energy_keV must be a range"),
        ("microscope", "focal_spread_A", [-1, 0], r"hrtem.microscope.focal_spread_A must be >= 0"),
        ("simulation", "output_sampling_A", 0.05, r"must be a range \[min, max\]"),
        ("simulation", "output_sampling_A", [0.05, 0.2], r"\(min 0.05\) is finer than"),
        ("simulation", "output_sampling_A", [0.24, 0.2], "output_sampling_A: min 0.24 > max 0.2"),
        ("simulation", "output_sampling_A", [0.2], "output_sampling_A must be a range"),
        ("simulation", "n_configs", 0, r"hrtem.simulation.n_configs must be >= 1"),
        ("simulation", "n_configs", 1.5, r"hrtem.simulation.n_configs must be an integer"),
        ("simulation", "slice_thickness_A", 0, r"hrtem.simulation.slice_thickness_A must be"),
        ("sample", "s_vacancy_fraction", [0.2, 0.1], "s_vacancy_fraction"),
        ("sample", "vacuum_A", "1.5", r"hrtem.sample.vacuum_A must be a number"),
        ("sample", "field_of_view_A", [0.3, 9.6], "less than 2 pixels"),
        ("sample", "graphene_spacing_A", None, r"hrtem.sample.graphene_spacing_A is missing"),
        ("sample", "vaccum_A", 1.0, r"hrtem.sample: unknown key\(s\) \['vaccum_A'\]"),
    ],
)
def test_bad_config_names_the_key(section, key, value, match):
    cfg = copy.deepcopy(TINY)
    if value is None:
        del cfg[section][key]
    else:
        cfg[section][key] = value
    with pytest.raises(TemflowError, match=match):
        HrtemConfig.from_mapping(cfg)


def test_config_keeps_values_as_written():
    """Parsed once; ``as_dict`` gives back the sections as written (the shards store it);
    the output sampling is a range, one number is refused."""
    assert TINY_CONFIG.as_dict() == json.loads(json.dumps(TINY))
    section = {**TINY["simulation"], "output_sampling_A": 0.2}
    with pytest.raises(TemflowError, match=r"output_sampling_A must be a range \[min, max\]"):
        SimulationConfig.from_mapping(section)
    with pytest.raises(TemflowError, match="hrtem.microscope is missing"):
        HrtemConfig.from_mapping({"sample": TINY["sample"], "simulation": TINY["simulation"]})


def test_unknown_substrate_leaves_no_shard(tmp_path):
    """The substrates are ``bare`` and ``graphene`` (the segmentation's words too)."""
    path = tmp_path / "shard_0000.h5"
    with pytest.raises(TemflowError, match="substrate must be 'bare' or 'graphene', got 'none'"):
        generate_shard(path, TINY_CONFIG, "val_bare", "none", 0, 1, 1, VIB, CUTOFFS)
    assert list(tmp_path.iterdir()) == []


def test_missing_vibration_element_leaves_no_shard(tmp_path):
    path = tmp_path / "shard_0000.h5"
    with pytest.raises(TemflowError, match="element 'C'"):
        generate_shard(
            path, TINY_CONFIG, "val_graphene", "graphene", 0, 1, 1, VIB[VIB.element != "C"], CUTOFFS
        )
    assert list(tmp_path.iterdir()) == []


# --- end to end (config/test.yaml) -------------------------------------------------------


@pytest.mark.workflow
def test_workflow_hrtem_shards(workflow_results, test_config):
    hr = test_config["hrtem"]
    for name, spec in hr["datasets"].items():
        shards = sorted((workflow_results / "hrtem" / name).glob("shard_*.h5"))
        assert len(shards) == -(-spec["n_images"] // hr["images_per_shard"])
        ds = open_dataset(shards)
        assert len(ds) == spec["n_images"]
        fov = hr["sample"]["field_of_view_A"]
        lo, hi = hr["simulation"]["output_sampling_A"]
        assert ds.sampling_range_A == (lo, hi)
        seeds = set()
        for images, cols, meta in ds:
            s = meta["sampling_A"]
            assert lo <= s <= hi
            shape = (round(fov[1] / s), round(fov[0] / s))
            assert images.shape == (len(hr["microscope"]["defocus_offsets_A"]), *shape)
            assert np.isfinite(images).all() and images.std() > 0
            assert np.all(np.diff(meta["defoci_A"]) > 0)
            assert meta["substrate"] == spec["substrate"]
            field = meta["field_of_view_A"]
            assert cols["x_A"].between(0, field[0]).all()
            assert cols["y_A"].between(0, field[1]).all()
            assert (cols["class"] == 0).sum() > 0
            seeds.add(meta["seed"])
        assert len(seeds) == len(ds)
    assert (workflow_results / "figures" / "hrtem_examples.png").stat().st_size > 0


def test_scherzer_limit_caps_the_aperture_and_changes_nothing_else():
    """At 50 keV (lambda 0.05355 A) Scherzer's aperture (6 lambda / |Cs|)^(1/4) is 35.6 mrad
    at 20 um, whatever the sign; every drawn aperture stays below it (and >= the range's
    lo), and every other parameter is the one drawn without the limit."""
    assert scherzer_semiangle_mrad(50e3, 20.0) == pytest.approx(35.602, abs=0.001)
    assert scherzer_semiangle_mrad(50e3, -20.0) == scherzer_semiangle_mrad(50e3, 20.0)
    assert scherzer_semiangle_mrad(50e3, 0.0) == float("inf")
    limited = MicroscopeConfig.from_mapping({**MICROSCOPE, "semiangle_limit": "scherzer"})
    free = MicroscopeConfig.from_mapping({**MICROSCOPE, "semiangle_limit": "none"})
    capped = 0
    for seed in range(200):
        a = sample_microscope(limited, np.random.default_rng(seed))
        b = sample_microscope(free, np.random.default_rng(seed))
        cap = scherzer_semiangle_mrad(a.energy_eV, a.Cs_um)
        lo, hi = MICROSCOPE["semiangle_cutoff_mrad"]
        assert lo <= a.semiangle_cutoff_mrad <= max(lo, min(hi, cap)) + 1e-9
        capped += b.semiangle_cutoff_mrad > cap
        for key, value in a.as_dict().items():
            if key != "semiangle_cutoff_mrad":
                assert value == b.as_dict()[key], key
    assert capped > 50  # the default ranges make the limit matter
    with pytest.raises(TemflowError, match="hrtem.microscope.semiangle_limit: expected one of"):
        MicroscopeConfig.from_mapping({**MICROSCOPE, "semiangle_limit": "loose"})
